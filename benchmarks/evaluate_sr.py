"""Images/s of `evaluate.py sr` scoring vs pyiqa's own inference, same metric, same weights, same images.

    python benchmarks/evaluate_sr.py                                      # piqe (no weights needed), CPU
    python benchmarks/evaluate_sr.py --metric maniqa --device cuda        # a learned scorer on a GPU

A leaderboard scores M models' outputs of each test image. `evaluate.py sr` stacks those M same-sized outputs and
scores them ``--batch_size`` at a time (``asym.sr.leaderboard.score_outputs``); pyiqa's own inference
(``pyiqa/inference_iqa.py``) calls the metric on one image file at a time. Both are timed here on the same images
(builtin photographs, centre crops, M mildly different versions of each standing in for M models), and also pyiqa
one in-memory tensor at a time, which isolates batching from file reading. The three alternate round by round, so
machine load drifts over all alike. Prints the best and median round of each in images/s, the ratios (>1: asym
faster) and the largest score difference (they must agree).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # evaluate.py's asym, uninstalled

from asym.core.flags import positive_int  # noqa: E402
from asym.core.images import BUILTIN_IMAGES, load_image  # noqa: E402
from asym.metrics import create_metric  # noqa: E402
from asym.sr.leaderboard import score_outputs  # noqa: E402


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metric", default="piqe", help="a pyiqa NR metric name (piqe needs no weight download)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--images", type=positive_int, default=4, help="test images (builtin photographs)")
    parser.add_argument(
        "--models", type=positive_int, default=8, help="outputs per test image (the leaderboard's models)"
    )
    parser.add_argument("--size", type=positive_int, default=256, help="centre crop side of each image")
    parser.add_argument(
        "--batch_size", type=positive_int, default=None, help="evaluate.py sr --batch_size (default: as it)"
    )
    parser.add_argument("--rounds", type=positive_int, default=5, help="timed rounds per implementation")
    return parser.parse_args(input_args)


def make_outputs(args) -> list[list[torch.Tensor]]:
    """[image][model] (1, 3, S, S) images: each photograph plus graded noise, one level per stand-in model."""
    generator = torch.Generator().manual_seed(0)
    images = []
    for i in range(args.images):
        hr = load_image(BUILTIN_IMAGES[i % len(BUILTIN_IMAGES)], args.size)
        noise = torch.randn(hr.shape, generator=generator)
        images.append([(hr + 0.01 * m * noise).clamp(0, 1) for m in range(args.models)])
    return images


def save_pngs(images: list[list[torch.Tensor]], folder: str) -> list[str]:
    """The outputs as 8-bit PNGs (what pyiqa's inference script reads); returns their paths."""
    from torchvision.utils import save_image

    paths = []
    for i, outputs in enumerate(images):
        for m, image in enumerate(outputs):
            paths.append(os.path.join(folder, f"{i}-{m}.png"))
            save_image(image, paths[-1])
    return paths


def timed(fn) -> tuple[float, list[float]]:
    """(seconds, scores) of one full pass, synchronised on GPU."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    scores = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, scores


def main(args):
    torch.manual_seed(0)
    args.batch_size = args.batch_size or (8 if torch.device(args.device).type == "cuda" else 1)  # evaluate.py's default
    metric = create_metric(args.metric, args.device, kind="nr")  # pyiqa.create_metric underneath: the same model
    pyiqa_model = metric.model
    with tempfile.TemporaryDirectory() as folder:
        images = make_outputs(args)
        paths = save_pngs(images, folder)
        quantised = [
            [load_image_file(paths[i * args.models + m]) for m in range(args.models)] for i in range(args.images)
        ]  # the very pixels pyiqa reads from the files
        n = len(paths)

        def asym_scoring():
            return [s for outputs in quantised for s in score_outputs(metric, outputs, None, args.device,
                                                                       args.batch_size)]  # fmt: skip

        def pyiqa_files():
            with torch.no_grad():
                return [float(pyiqa_model(path).reshape(())) for path in paths]

        def pyiqa_tensors():
            with torch.no_grad():
                return [float(pyiqa_model(x.to(args.device)).reshape(())) for outs in quantised for x in outs]

        peers = {"asym (evaluate.py sr)": asym_scoring, "pyiqa, files": pyiqa_files, "pyiqa, tensors": pyiqa_tensors}
        for fn in peers.values():  # warm-up: lazy initialisation, cudnn autotuning
            fn()
        seconds = {name: [] for name in peers}
        scores = {}
        for _ in range(args.rounds):
            for name, fn in peers.items():
                t, scores[name] = timed(fn)
                seconds[name].append(t)
    gap = max(abs(a - b) for name in peers for a, b in zip(scores[name], scores["pyiqa, files"]))
    cpu = f"cpu ({torch.get_num_threads()} threads)"
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu
    print(f"device={device} metric={args.metric} images={args.images} x models={args.models} ({n} scores per round) "
          f"size={args.size} batch_size={args.batch_size} max|score - pyiqa files|={gap:.2e}")  # fmt: skip
    rates = {}
    for name, times in seconds.items():
        rates[name] = (n / min(times), n / statistics.median(times))
        print(f"{name:22s} best {rates[name][0]:8.1f} images/s  median {rates[name][1]:8.1f} images/s")
    ours = rates["asym (evaluate.py sr)"]
    for name in ("pyiqa, files", "pyiqa, tensors"):
        best, median = ours[0] / rates[name][0], ours[1] / rates[name][1]
        print(f"speed-up asym vs {name}: {best:.2f}x (best), {median:.2f}x (median)")
    return ours[1] / rates["pyiqa, files"][1]


def load_image_file(path: str) -> torch.Tensor:
    """A PNG as (1, 3, H, W) float in [0, 1], read as pyiqa reads it (PIL, RGB)."""
    import numpy as np
    from PIL import Image

    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None]


if __name__ == "__main__":
    main(parse_args())
