"""Robust classifiers: ALP, PGD accuracy, the classification data, train_robust.py (adversarial training beats standard
training under attack, exact resume, the bare run) and its output as backbone weights, robustness-library checkpoints
included."""

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]

from conftest import find_window, reset_accelerate_state  # noqa: E402

import train_robust  # noqa: E402
from asym import create_backbone  # noqa: E402
from asym.backbones.base import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from asym.core.errors import UserError  # noqa: E402
from asym.robust.classifier import Classifier, adversarial_logit_pairing, robust_accuracy  # noqa: E402
from asym.robust.data import BuiltinCrops, load_classification_data  # noqa: E402

TINY = "timm:test_resnet"  # 0.37M parameters: trains from scratch in seconds on 2 cores
# Measured on builtin (seeds 0..9, 104 validation crops): after 100 Adam steps the adversarially trained model keeps
# 0.16-0.24 accuracy under PGD-10 (L2 eps 3 on 32x32 crops), the standard one 0.00-0.01.
QUICK = ["--backbone", TINY, "--weights", "random", "--crop_size", "32", "--train_batch_size", "32",
         "--optimizer", "adam", "--learning_rate", "2e-3", "--lr_step_size", "1000", "--report_to", "none",
         "--attack_eps", "3.0", "--attack_steps", "3", "--eval_attack_eps", "3.0",
         "--eval_attack_steps", "10"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (conftest)


def run(out, *argv):
    reset_accelerate_state()
    return train_robust.main(train_robust.parse_args([*QUICK, "--output_dir", str(out), *argv]))


# --- ALP and PGD accuracy ------------------------------------------------------------------------------------------


def test_alp_is_zero_for_identical_logits_and_the_formula_otherwise():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 7, generator=g) * 10
    assert adversarial_logit_pairing(a, a.clone()).item() == 0.0  # exactly, not approximately
    b = a + torch.randn(5, 7, generator=g)
    rows = [sum((float(a[i, j]) - float(b[i, j])) ** 2 for j in range(7)) / 7 for i in range(5)]  # 1/d ||.||^2
    assert adversarial_logit_pairing(a, b).item() == pytest.approx(sum(rows) / 5, rel=1e-6)
    assert adversarial_logit_pairing(a, b).item() == pytest.approx(adversarial_logit_pairing(b, a).item(), rel=0)
    with pytest.raises(ValueError, match="one shape"):
        adversarial_logit_pairing(a, b[:, :6])


class _Linear(torch.nn.Module):
    """Two-class linear classifier on flattened images: the smallest L2 perturbation that flips an image is known."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.w, self.b = torch.nn.Parameter(w), torch.nn.Parameter(b)

    def forward(self, x):
        return x.flatten(1) @ self.w.T + self.b


def test_pgd_accuracy_of_a_linear_classifier_is_its_margin_test():
    """For logits Wx + b the distance to the decision boundary is |margin| / ||w1 - w0||: PGD (L2, enough steps, no
    clamping at these pixel values) breaks exactly the images closer than eps, and the count is computed here from
    that formula alone."""
    g = torch.Generator().manual_seed(1)
    w, b = torch.randn(2, 48, generator=g), torch.zeros(2)
    images = 0.4 + 0.2 * torch.rand(64, 3, 4, 4, generator=g)  # in [0.4, 0.6]: a 0.05 step never hits 0 or 1
    labels = torch.randint(0, 2, (64,), generator=g)
    data = [{"image": x, "label": int(y)} for x, y in zip(images, labels)]
    model = _Linear(w, b).train()
    eps = 0.05
    logits = images.flatten(1) @ w.T
    margin = logits[torch.arange(64), labels] - logits[torch.arange(64), 1 - labels]
    distance = margin / (w[1] - w[0]).norm()
    clean = (margin > 0).float().mean().item()
    robust = (distance > eps).float().mean().item()
    assert 0 < robust < clean  # the test is informative: some correct images lie within eps of the boundary
    result = robust_accuracy(model, data, eps=eps, steps=20, batch_size=16)
    assert result["clean_accuracy"] == clean and result["pgd_accuracy"] == robust and result["n"] == 64
    assert model.training  # mode restored
    assert robust_accuracy(model, data, eps=eps, steps=0)["pgd_accuracy"] == clean  # no attack: clean accuracy


# --- Classifier and data -------------------------------------------------------------------------------------------


def test_classifier_normalises_inside_and_round_trips(tmp_path):
    model = Classifier(TINY, num_classes=3, class_names=["a", "b", "c"]).eval()
    x = torch.rand(2, 3, 32, 32)
    cfg = model.backbone.model.pretrained_cfg  # timm's own normalisation for this model: (0.5, 0.5, 0.5) both
    mean, std = (torch.tensor(cfg[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        expected = model.head(model.backbone.model((x - mean) / std)[-1].mean((-2, -1)))
        assert torch.allclose(model(x), expected, atol=1e-6)
    model.save_pretrained(tmp_path)
    again = Classifier.from_pretrained(tmp_path)
    assert again.class_names == ["a", "b", "c"] and again.num_classes == 3
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    with pytest.raises(ValueError, match="2 class names"):
        Classifier(TINY, num_classes=3, class_names=["a", "b"])


def test_builtin_crops_hold_out_a_band_and_are_seeded():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 40, 3), dtype=np.uint8) for _ in range(2)]  # every 8x8 window unique
    band = 40 // 4  # a quarter of the width (>= the crop)
    train = BuiltinCrops(images, crop_size=8, train=True)
    torch.manual_seed(0)
    for _ in range(10):
        item = train[1]
        top, left, _ = find_window(item["image"], images[1])
        assert item["label"] == 1 and left + 8 <= 40 - band  # never from the held-out band
    val = BuiltinCrops(images, crop_size=8, train=False, per_image=5, seed=3)
    assert len(val) == 10 and [val[i]["label"] for i in range(10)] == [0] * 5 + [1] * 5
    for i in range(10):
        top, left, flipped = find_window(val[i]["image"], images[val[i]["label"]])
        assert left >= 40 - band and not flipped
    same = BuiltinCrops(images, crop_size=8, train=False, per_image=5, seed=3)
    other = BuiltinCrops(images, crop_size=8, train=False, per_image=5, seed=4)
    assert all(torch.equal(val[i]["image"], same[i]["image"]) for i in range(10))
    assert not all(torch.equal(val[i]["image"], other[i]["image"]) for i in range(10))


def _image_folder(root: Path, classes: dict[str, int], size=(40, 48)) -> Path:
    for c, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            colour = np.zeros((*size, 3), np.uint8)
            colour[..., c % 3] = 60 + 15 * i
            Image.fromarray(colour).save(root / name / f"{i}.png")
    return root


def test_image_folder_split_and_layouts(tmp_path):
    folder = _image_folder(tmp_path / "flat", {"cat": 10, "dog": 5, "emu": 1})
    data = load_classification_data(str(folder), crop_size=16, seed=0, validation_fraction=0.2)
    assert data.class_names == ["cat", "dog", "emu"]
    assert len(data.train) + len(data.validation) == 16
    assert sorted(data.validation.labels) == [0, 0, 1]  # 20% of 10, at least 1 of 5, none of a single image
    item = data.train[0]
    assert item["image"].shape == (3, 16, 16) and 0 <= item["image"].min() and item["image"].max() <= 1
    again = load_classification_data(str(folder), crop_size=16, seed=0, validation_fraction=0.2)
    assert again.validation.sources == data.validation.sources  # the split is a function of the seed
    split = tmp_path / "split"
    _image_folder(split / "train", {"a": 2, "b": 2})
    _image_folder(split / "val", {"b": 1})
    data = load_classification_data(str(split), crop_size=16)
    assert data.class_names == ["a", "b"] and len(data.train) == 4 and data.validation.labels == [1]


def test_datasets_table_in_imagenet_layout(tmp_path):
    """A ``datasets`` folder with image + ClassLabel columns and train / validation / test splits (the layout of the
    Hub's ImageNet-1k, read through the same code as a Hub id); unlabelled test rows (-1) are refused."""
    import datasets

    def png(value: int) -> dict:
        buffer = io.BytesIO()
        Image.fromarray(np.full((20, 24, 3), value, np.uint8)).save(buffer, "PNG")
        return {"bytes": buffer.getvalue(), "path": None}

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["n01", "n02", "n03"])})
    splits = {"train": [0, 1, 2, 0, 1, 2], "validation": [2, 1, 0], "test": [-1, -1]}
    datasets.DatasetDict({
        split: datasets.Dataset.from_dict({"image": [png(40 * i + 20) for i in range(len(labels))], "label": labels},
                                          features=features)
        for split, labels in splits.items()
    }).save_to_disk(str(tmp_path / "imagenet"))  # fmt: skip
    data = load_classification_data(str(tmp_path / "imagenet"), crop_size=16)
    assert data.class_names == ["n01", "n02", "n03"] and len(data.train) == 6 and len(data.validation) == 3
    item = data.validation[1]
    assert item["label"] == 1 and item["image"].shape == (3, 16, 16)
    assert torch.allclose(item["image"], torch.full((3, 16, 16), 60 / 255), atol=1e-6)  # a flat image stays flat
    with pytest.raises(UserError, match=r"outside 0..2 \(e.g. -1, row 0; unlabelled .*: choose .* --train_split"):
        load_classification_data(str(tmp_path / "imagenet"), crop_size=16, validation_split="test")
    with pytest.raises(UserError, match="no split 'val'"):
        load_classification_data(str(tmp_path / "imagenet"), crop_size=16, validation_split="val")


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("no_classes", "has no class folders"),
        ("empty_class", "1 of its 2 class folders hold no images .*: b; add images or remove"),
        ("unreadable", "bad.png .*cannot be read as an image"),
        ("unknown_val_class", "classes that .*train lacks \\(zebra\\)"),
        ("one_class", "needs at least 2"),
        ("hub_offline", "could not load|cannot be read"),
    ],
)
def test_bad_classification_data_is_one_user_error(tmp_path, case, message):
    root = tmp_path / "data"
    if case == "missing":
        name = str(tmp_path / "nowhere")
    elif case == "hub_offline":
        name = "someone/no-such-imagenet"  # tests run with HF_HUB_OFFLINE=1
    else:
        root.mkdir()
        name = str(root)
        if case == "empty_class":
            _image_folder(root, {"a": 2})
            (root / "b").mkdir()
        elif case == "unreadable":
            _image_folder(root, {"a": 2, "b": 2})
            (root / "b" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
        elif case == "unknown_val_class":
            _image_folder(root / "train", {"a": 2, "b": 2})
            _image_folder(root / "val", {"zebra": 1})
        elif case == "one_class":
            _image_folder(root, {"a": 3})
        elif case == "no_classes":
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "loose.png")
    with pytest.raises(UserError, match=message) as caught:
        load_classification_data(name, crop_size=16)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--attack_norm", "linf"], "covers the whole \\[0, 1\\] pixel range"),
        (["--eval_attack_norm", "l1"], "--eval_attack_norm 'l1' is unknown"),
        (["--crop_size", "300"], "too large for the builtin photographs"),
        (["--crop_size", "16"], "below the timm:test_resnet backbone's minimum input \\(32\\)"),
    ],
)
def test_bad_settings_stop_before_the_output_folder_is_touched(tmp_path, argv, message):
    with pytest.raises(UserError, match=message):
        run(tmp_path / "out", *argv)
    assert not (tmp_path / "out").exists()


# --- train_robust.py -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def robust_and_standard(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    argv = ["--max_train_steps", "100", "--checkpointing_steps", "1000", "--num_validation_crops", "8"]
    run(out / "robust", *argv)
    run(out / "standard", *argv, "--no_adversarial")
    return out / "robust", out / "standard"


def test_adversarial_training_beats_standard_training_under_attack(robust_and_standard):
    robust, standard = (json.loads((d / "results.json").read_text()) for d in robust_and_standard)
    assert robust["adversarial"] and not standard["adversarial"] and robust["steps"] == standard["steps"] == 100
    assert robust["initial"] == standard["initial"]  # same seed, same untrained model, same validation crops
    n = robust["final"]["n"]
    assert n == 104  # 8 fixed crops of each of the 13 photographs
    p, q = robust["final"]["pgd_accuracy"], standard["final"]["pgd_accuracy"]
    # a two-proportion z test over the n crops: the gain must exceed 3 standard errors (measured: 5.6, seeds 0-9: 3.1+)
    assert p - q > 3 * np.sqrt((p * (1 - p) + q * (1 - q)) / n) and p - q > 3 / n, (p, q)
    assert standard["final"]["clean_accuracy"] > 0.4 > standard["initial"]["clean_accuracy"]  # it did learn
    assert robust["train_attack"] == {"norm": "l2", "eps": 3.0, "steps": 3, "step_size": 2.5, "random_start": False}
    assert robust["eval_attack"]["step_size"] == pytest.approx(0.6)  # 2 eps / steps
    card = (robust_and_standard[0] / "README.md").read_text()
    assert "CE on the adversarial logits + 0.5 x ALP" in card and "after training" in card
    # the card's Hub metadata: an image classifier whose model-index holds results.json's clean and PGD accuracy
    from huggingface_hub import ModelCard

    data = ModelCard.load(robust_and_standard[0] / "README.md").data
    assert (data.license, data.datasets, data.base_model, data.pipeline_tag) == ("unknown", None, None,
                                                                                 "image-classification")  # fmt: skip
    clean, pgd = data.eval_results
    assert (clean.task_type, clean.dataset_type, clean.dataset_split) == ("image-classification", "builtin",
                                                                          "validation")  # fmt: skip
    assert (clean.metric_type, clean.metric_args, pgd.metric_type) == ("accuracy", None, "accuracy")
    assert clean.metric_value == robust["final"]["clean_accuracy"]
    assert pgd.metric_value == robust["final"]["pgd_accuracy"]
    assert pgd.metric_args == robust["eval_attack"] and robust["final"]["attack"] in pgd.metric_name


def test_output_folder_loads_as_backbone_weights(robust_and_standard):
    robust, _ = robust_and_standard
    classifier = Classifier.from_pretrained(robust)
    x = torch.rand(2, 3, 48, 40)
    expected = classifier.backbone(x)
    for source in (robust, robust / "model.safetensors"):
        backbone = create_backbone(TINY, weights=str(source)).eval()
        assert backbone.weights_source == str(source)
        for a, b in zip(backbone(x), expected):
            assert torch.equal(a, b)
    with pytest.raises(UserError, match="asym Classifier on backbone 'timm:test_resnet', but the backbone asked for "
                                        "is 'timm:resnet10t'"):  # fmt: skip
        create_backbone("timm:resnet10t", weights=str(robust))


def test_resume_is_exact(tmp_path, kill_after_checkpoint):
    """Killed after its step-3 checkpoint and resumed: the same losses, learning rates and weights as 6 straight steps,
    and the same evaluation before training (kept in the checkpoint, not recomputed on the resumed model)."""
    argv = ["--max_train_steps", "6", "--checkpointing_steps", "3", "--lr_step_size", "2", "--attack_random_start",
            "--num_validation_crops", "1", "--eval_attack_steps", "2", "--train_batch_size", "8"]  # fmt: skip
    straight = run(tmp_path / "straight", *argv)["history"]
    kill_after_checkpoint(train_robust, 3, lambda: run(tmp_path / "split", *argv))
    resumed = run(tmp_path / "split", *argv, "--resume_from_checkpoint", "latest")["history"]
    assert len(straight) == 6 and len(resumed) == 3
    for a, b in zip(straight[3:], resumed):
        assert a["lr"] == b["lr"] and a["loss"] == b["loss"] and a["loss/alp"] == b["loss/alp"]
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("straight", "split"))
    assert ra == rb


def test_bf16_mixed_precision_runs(tmp_path):
    history = run(tmp_path, "--max_train_steps", "2", "--mixed_precision", "bf16", "--num_validation_crops", "1",
                  "--eval_attack_steps", "2", "--train_batch_size", "8")["history"]  # fmt: skip
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)


def test_bare_run(tmp_path, monkeypatch):
    """`accelerate launch train_robust.py --max_train_steps 2`: VGG-19, builtin, offline (random weights, one
    warning), the study's attacks; the classifier lands at the root of ./output/robust, the script's own default."""
    monkeypatch.chdir(tmp_path)
    reset_accelerate_state()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_robust.main(train_robust.parse_args(["--max_train_steps", "2"]))
    fallback = [w for w in caught if "falling back to RANDOM" in str(w.message)]
    assert len(fallback) == 1
    out = tmp_path / "output" / "robust"
    results = json.loads((out / "results.json").read_text())
    assert results["backbone"] == "vgg19" and results["steps"] == 2 and results["adversarial"]
    assert results["train_attack"]["eps"] == 5.82 and results["train_attack"]["step_size"] == pytest.approx(2.91)
    assert results["eval_attack"] == {"norm": "l2", "eps": 3.88, "steps": 50, "step_size": pytest.approx(0.1552)}
    config = json.loads((out / "config.json").read_text())  # (loading is tested on the tiny model above)
    assert config["asym_class"] == "Classifier" and config["class_names"][0] == "astronaut"
    assert config["num_classes"] == 13 and (out / "model.safetensors").stat().st_size > 80e6  # VGG-19 stored whole


# --- robustness-library checkpoints and bad weights ----------------------------------------------------------------


def test_robustness_library_vgg19_checkpoint_loads(tmp_path):
    """A checkpoint as the robustness library writes it: {"model": AttackerModel state under DataParallel, ...}, a
    torchvision-layout VGG-19 (``features.N``) under ``module.model.``, its attacker copy and the normalisers. The
    ``module.model.`` tensors are taken (here the attacker copy differs, to tell them apart), and the features equal
    torchvision's VGG-19 layers up to relu5_4 on ImageNet-normalised input."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["E"]).eval()  # torchvision's VGG-19 feature stack, as the robustness library builds
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    state = {}
    for k, v in features.state_dict().items():
        state[f"module.model.features.{k}"] = v
        state[f"module.attacker.model.features.{k}"] = torch.zeros_like(v)
    state |= {"module.model.classifier.6.weight": torch.zeros(10, 4), "module.normalizer.new_mean": mean,
              "module.normalizer.new_std": std, "module.attacker.normalize.new_mean": mean,
              "module.attacker.normalize.new_std": std}  # fmt: skip
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "schedule": None, "epoch": 90,
                "amp": None, "prec1": torch.tensor(60.0)}, tmp_path / "imagenet_l2_3_0.pt")  # fmt: skip
    backbone = create_backbone("vgg19", weights=str(tmp_path / "imagenet_l2_3_0.pt"))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        feats = backbone(x)
        h = (x - mean) / std
        assert torch.allclose(feats[1], features[:4](h), atol=1e-5)  # relu1_2
        assert torch.allclose(feats[-1], features[:36](h), atol=1e-5)  # relu5_4 (the last pool dropped)


def test_checkpoint_without_batchnorm_counters_loads(tmp_path):
    """Checkpoints written before PyTorch 0.4.1 have no ``num_batches_tracked``: the rest, running statistics
    included, still loads (under a DDP ``module.`` prefix here)."""
    source = create_backbone(TINY, weights="random").eval()
    for module in source.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    state = {f"module.{k}": v for k, v in source.model.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, tmp_path / "old.safetensors")
    loaded = create_backbone(TINY, weights=str(tmp_path / "old.safetensors")).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(loaded(x), source(x)))


def test_mismatched_and_garbage_weights_are_user_errors(tmp_path):
    Classifier("vgg19", num_classes=2).save_pretrained(tmp_path / "vgg")
    with pytest.raises(UserError, match="Classifier on backbone 'vgg19', but the backbone asked for is 'resnet50'"):
        create_backbone("resnet50", weights=str(tmp_path / "vgg"))
    with pytest.raises(UserError, match="'vgg19'.*'resnet50'"):
        create_backbone("resnet50", weights=str(tmp_path / "vgg" / "model.safetensors"))
    tiny = create_backbone(TINY, weights="random")  # any other file that merely lies in that folder is not judged by it
    other = tmp_path / "vgg" / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, other)
    assert create_backbone(TINY, weights=str(other)).weights_source == str(other)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text((tmp_path / "vgg" / "config.json").read_text())
    (garbage / "model.safetensors").write_bytes(b"<html>502 Bad Gateway</html>")
    with pytest.raises(UserError, match="model.safetensors cannot be read"):
        create_backbone("vgg19", weights=str(garbage))
    with pytest.raises(UserError, match="model.safetensors cannot be read"):
        Classifier.from_pretrained(garbage)
    torch.save({"model": {"module.model.fc.weight": torch.zeros(3, 3)}}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="foreign.pt do not fit backbone.*missing keys"):
        create_backbone("vgg19", weights=str(tmp_path / "foreign.pt"))
