"""Batches/s of train_sr.py's data at the paper's shape (batch 32, 256x256 HR crops, x4) from a DIV2K-sized folder.

    python benchmarks/sr_data.py                       # 8 synthetic 2040x1356 PNGs, 0 and 2 workers
    python benchmarks/sr_data.py --images 16 --workers 0,4,8 --batches 10

Three ways to the same crops, each measured in this run on the same machine:

* naive: decode the whole PNG for every sample (asym without its cache, ``--no_cache``);
* cached: asym's default, each image decoded once into ``asym.core.decoded_cache`` and cropped through a memory map;
* BasicSR: DIV2K cut once into 480x480 sub-images (``extract_subimages.py``: step 240, PNG, compression 3), one
  sub-image file decoded per sample (read here from PNG files rather than LMDB, which stores the same PNG bytes).

Each path runs through train_sr.py's loader (``create_train_loader``, the same sampler and per-sample seeds) at each
worker count; the first batches (worker start-up, the page cache warming) are not timed. The folder and the cache
are made in a temporary folder (``--work_dir`` to keep them), the cache's one-off build is timed apart.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from asym.core import decoded_cache
from asym.core.flags import positive_int
from asym.core.train_loader import create_train_loader
from asym.sr.data import SRPairDataset, load_sr_images

DIV2K_SIZE = (1356, 2040)  # a typical DIV2K training image, (H, W)
SUB_SIZE, SUB_STEP = 480, 240  # BasicSR's extract_subimages.py for DIV2K HR


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=positive_int, default=8, help="synthetic 2040x1356 PNGs to make")
    parser.add_argument("--batch_size", type=positive_int, default=32, help="crops per batch")
    parser.add_argument("--crop_size", type=positive_int, default=256, help="HR crop side")
    parser.add_argument("--scale", type=positive_int, default=4, help="up-scaling factor")
    parser.add_argument("--workers", default="0,2", help="comma-separated DataLoader worker counts to measure")
    parser.add_argument("--batches", type=positive_int, default=3, help="timed batches per setting (after warm-up)")
    parser.add_argument("--work_dir", default=None, help="keep the folders here (default: a temporary folder)")
    return parser.parse_args(input_args)


def photo_like(seed: int) -> np.ndarray:
    """A 2040x1356 image with a photograph's PNG cost: smooth shapes plus sensor-like noise (about 4 MB as PNG)."""
    rng = np.random.default_rng(seed)
    h, w = DIV2K_SIZE
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([np.sin(rows / (40 + 9 * c) + seed) * np.cos(cols / (55 + 7 * c)) for c in range(3)], axis=2)
    noisy = 127 + 90 * base + rng.normal(0, 6, (h, w, 3))
    return noisy.clip(0, 255).astype(np.uint8)


def make_folders(root: str, count: int) -> tuple[str, str]:
    """The DIV2K-sized HR folder and its BasicSR sub-image folder (made once; reused from ``root`` when present)."""
    hr, sub = os.path.join(root, "hr"), os.path.join(root, "hr_sub")
    if not os.path.isdir(hr) or len(os.listdir(hr)) != count:
        shutil.rmtree(hr, ignore_errors=True), shutil.rmtree(sub, ignore_errors=True)
        os.makedirs(hr), os.makedirs(sub)
        for i in range(count):
            image = photo_like(i)
            Image.fromarray(image).save(os.path.join(hr, f"{i:04d}.png"), compress_level=3)
            h, w = image.shape[:2]  # extract_subimages.py: every 480x480 window at step 240, the last flush right
            tops = [*range(0, h - SUB_SIZE + 1, SUB_STEP)] + ([h - SUB_SIZE] if (h - SUB_SIZE) % SUB_STEP else [])
            lefts = [*range(0, w - SUB_SIZE + 1, SUB_STEP)] + ([w - SUB_SIZE] if (w - SUB_SIZE) % SUB_STEP else [])
            for n, (top, left) in enumerate((t, x) for t in tops for x in lefts):
                crop = image[top : top + SUB_SIZE, left : left + SUB_SIZE]
                Image.fromarray(crop).save(os.path.join(sub, f"{i:04d}_s{n + 1:03d}.png"), compress_level=3)
    return hr, sub


def batches_per_second(dataset, workers: int, args) -> float:
    """Median batches/s over ``args.batches`` timed batches of train_sr.py's loader, after warm-up ones."""
    loader_args = argparse.Namespace(train_batch_size=args.batch_size, seed=0, gradient_accumulation_steps=1,
                                     dataloader_num_workers=workers)  # fmt: skip
    process = argparse.Namespace(process_index=0, num_processes=1, device=torch.device("cpu"))
    batches = iter(create_train_loader(dataset, loader_args, process, 0))
    for _ in range(max(1, workers)):  # start-up: every worker's first batch
        next(batches)
    times = []
    for _ in range(args.batches):
        start = time.perf_counter()
        next(batches)
        times.append(time.perf_counter() - start)
    del batches
    return 1.0 / statistics.median(times)


def main(args):
    root = args.work_dir or tempfile.mkdtemp(prefix="asym-sr-data-")
    hr, sub = make_folders(root, args.images)
    print(f"{args.images} PNGs of {DIV2K_SIZE[1]}x{DIV2K_SIZE[0]} in {hr} ({len(os.listdir(sub))} BasicSR sub-images)")
    print(f"batch {args.batch_size}, {args.crop_size}x{args.crop_size} HR crops, x{args.scale}; "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip

    decoded_cache.configure(enabled=False)
    naive = SRPairDataset(load_sr_images(train_data_dir=hr), args.scale, args.crop_size, train=True)
    basicsr = SRPairDataset(load_sr_images(train_data_dir=sub), args.scale, args.crop_size, train=True)
    cache_dir = os.path.join(root, "cache")
    shutil.rmtree(cache_dir, ignore_errors=True)
    decoded_cache.configure(cache_dir)
    start = time.perf_counter()
    cached = SRPairDataset(load_sr_images(train_data_dir=hr), args.scale, args.crop_size, train=True)
    build = time.perf_counter() - start
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(cache_dir) for f in files)
    print(f"cache build (once per machine): {build:.1f} s for {args.images} images, {size / 1e9:.2f} GB on disk\n")

    print("| path | workers | batches/s | ms / batch | vs naive (same workers) |")
    print("| --- | --- | --- | --- | --- |")
    for workers in [int(w) for w in args.workers.split(",")]:
        rates = {name: batches_per_second(data, workers, args)
                 for name, data in (("naive", naive), ("cached", cached), ("BasicSR sub-images", basicsr))}  # fmt: skip
        for name, rate in rates.items():
            print(f"| {name} | {workers} | {rate:.2f} | {1000 / rate:.0f} | {rate / rates['naive']:.1f}x |")
    if not args.work_dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(parse_args())
