"""Test set-up: offline Hub (fail fast instead of retrying), deterministic seeds, shared tiny inputs."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # must precede any huggingface_hub import
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "ASYM_CACHE" not in os.environ:  # the training scripts' decoded-image cache: never the user's ~/.cache in tests
    import tempfile

    os.environ["ASYM_CACHE"] = tempfile.mkdtemp(prefix="asym-test-cache-")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


def run_evaluate(argv: list[str], capture: bool = False):
    """``evaluate.py argv`` in this process: what its verb returns, or with ``capture`` (that, what it printed)."""
    import io
    from contextlib import redirect_stdout

    import evaluate

    if not capture:
        return evaluate.main(evaluate.parse_args(argv))
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        result = evaluate.main(evaluate.parse_args(argv))
    return result, buffer.getvalue()


def sr_record(model, metric, score, loss, backbone, source=None, norm=None) -> dict:
    """One evaluate.py sr record (as sr_results.json holds it) of a model trained with ``loss`` on ``backbone``."""
    return {"model": model, "metric": metric, "dataset": "set", "score": score, "score_norm": norm, "status": "ok",
            "images": 4, "fingerprint": "0123456789abcdef", "source": source or model, "loss": loss,
            "per_backbone": backbone}  # fmt: skip


@pytest.fixture(scope="session")
def random_iqa_models(tmp_path_factory):
    """A folder with two random-weight VGG-16 IQAModels saved as train_iqa.py would: ``iqa`` (NR) and ``fr_iqa``."""
    from asym import IQAModel

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    IQAModel(backbone="vgg16", mode="nr", weights="random").save_pretrained(folder / "iqa")
    IQAModel(backbone="vgg16", mode="fr", weights="random").save_pretrained(folder / "fr_iqa")
    return folder


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
    from asym.core import decoded_cache

    decoded_cache.configure(enabled=False)  # a script run in-process turned it on: off for the next test


@pytest.fixture
def pair():
    """An image batch and a mildly distorted copy, odd-sized on purpose."""
    y = torch.rand(2, 3, 67, 83)
    x = (y + 0.1 * torch.randn_like(y)).clamp(0, 1)
    return x, y


def reset_accelerate_state():
    """Each in-process training run gets fresh Accelerator settings, as a new `accelerate launch` would."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of small tensors: on a shared 2-core VM, OpenMP threads waiting for a busy
    core made such modules several times slower (measured: 38 s instead of 11 s; 221 s instead of 34 s for
    test_train_robust.py); results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def kill_after_checkpoint(monkeypatch):
    """``kill(script_module, step, call)``: runs ``call()`` with the script's ``save_checkpoint`` raising right after
    it has written the checkpoint of ``step`` (the process killed there), then puts the real one back."""

    def kill(script_module, step: int, call) -> None:
        real_save = script_module.save_checkpoint

        def save_then_die(accelerator, output_dir, saved_step, limit):
            real_save(accelerator, output_dir, saved_step, limit)
            if saved_step == step:
                raise KeyboardInterrupt  # the process is killed here

        monkeypatch.setattr(script_module, "save_checkpoint", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            call()
        monkeypatch.setattr(script_module, "save_checkpoint", real_save)

    return kill


@pytest.fixture
def fresh_accelerate_state():
    reset_accelerate_state()
    yield


def ramp_image(h: int = 20, w: int = 24) -> np.ndarray:
    """An HxWx3 uint8 image whose pixels are all distinct, so a crop identifies its window."""
    return (np.arange(h * w * 3, dtype=np.uint32).reshape(h, w, 3) % 251).astype(np.uint8)


def find_window(crop: torch.Tensor, image: np.ndarray):
    """(top, left, flipped) of the (3, c, c) ``crop`` in the uint8 ``image``, or None."""
    full = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    c = crop.shape[-1]
    for top in range(image.shape[0] - c + 1):
        for left in range(image.shape[1] - c + 1):
            window = full[:, top : top + c, left : left + c]
            for flipped, view in ((False, window), (True, window.flip(-1))):
                if torch.allclose(view, crop):
                    return top, left, flipped
    return None


def perturbed_tiny(seed: int, scale: int = 4, card: dict | None = None, strength: float = 0.005):
    """A ``tiny`` generator that is *not* bicubic: an untrained ``SRModel("tiny")`` is exactly bicubic up-sampling
    (its last convolution starts at zero), so tests that compare "a model" with ``bicubic``, or two models with each
    other, would compare identical outputs. Every parameter here is drawn from ``seed`` and the zero tail gets
    ``strength``-sized noise: each seed gives outputs distinct from bicubic and from every other seed (about 0.02 mean
    absolute difference at the default strength, a PSNR a few dB from bicubic's)."""
    from asym import SRModel

    generator = torch.Generator().manual_seed(seed)
    model = SRModel("tiny", scale, card=card)
    with torch.no_grad():
        for name, parameter in model.net.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.startswith("tail."):
                parameter.copy_(strength * noise)
            else:  # the default init's scale, drawn from this seed
                parameter.copy_(noise * parameter.std().clamp_min(1e-3) if parameter.numel() > 1 else noise * 0.01)
    return model.eval()


def snippets(path=None) -> list[tuple[int, str]]:
    """The commands of a Markdown file (default the README) as (line number, text), in reading order: each ```bash
    block whole, and each inline code span that is a whole command (starts with ``python `` or ``accelerate launch ``,
    no placeholder such as ``<run>``, ``[--model NAME]``, ``a|b``, ``N`` or ``...``; spread over lines, joined into
    one). The one reader of the documents' commands (test_readme.py, test_demo.py)."""
    import re
    from pathlib import Path

    text = Path(path or Path(__file__).resolve().parents[1] / "README.md").read_text()
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        if match.group(1) == "bash":
            found.append((match.start(2), match.group(2)))
    fenced = re.sub(r"^```.*?^```", lambda m: " " * len(m.group(0)), text, flags=re.S | re.M)
    for match in re.finditer(r"`([^`]+)`", fenced):
        span = " ".join(match.group(1).split())
        placeholder = re.search(r"[<>\[\]|]", span) or {"N", "NAME", "DIR", "FILE", "PATH", "..."} & set(span.split())
        if span.startswith(("python ", "accelerate launch ")) and not placeholder:
            found.append((match.start(1), span + "\n"))
    return [(text.count("\n", 0, start) + 1, snippet) for start, snippet in sorted(found)]
