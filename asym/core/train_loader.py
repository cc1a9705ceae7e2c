"""Training batches that keep a GPU fed and replay exactly: the step sampler, per-sample seeds, loader defaults, and
the share of each step spent waiting for data.

* ``StepSampler``: batch indices as a pure function of (seed, step), so a resumed run replays the same batches.
* ``SeededSamples``: each sample's random crop and flips drawn from its own seed (a function of the run's seed and
  the sample's place in the stream), not from the process's RNG: the same crops for the same seed whatever
  ``--dataloader_num_workers`` is, and after a resume.
* ``create_train_loader``: workers (default: ``default_num_workers``), pinned memory on CUDA, persistent workers,
  prefetch.
* ``DataWait``: the time ``next(batches)`` blocks, as a share of each step (``perf/data_wait`` in the logs), and the
  step's wall time (``perf/step_seconds``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator

import numpy as np
import torch

EPOCH_ORDER, SAMPLE = 0, 1  # the streams derived from a run's seed: each epoch's order, each sample's crop and flips
PREFETCH_FACTOR = 4  # batches each worker keeps ready


def derived_seed(seed: int, stream: int, index: int) -> int:
    """A 63-bit seed for item ``index`` of ``stream`` in a run seeded ``seed``: numpy's ``SeedSequence`` hash of the
    three, so seeds of different runs, streams or items are unrelated (``seed + epoch`` made run s + 1 replay run s
    one epoch later)."""
    state = np.random.SeedSequence([seed, stream, index]).generate_state(2, np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & (2**63 - 1)


class StepSampler(torch.utils.data.Sampler):
    """Batches of ``(index, sample_seed)`` as a pure function of (seed, step): resuming at step N replays exactly.

    Every epoch is a fresh permutation; process ``rank`` of ``world`` takes every ``world``-th index, so the
    processes of a multi-GPU run see disjoint samples. A sample's seed is derived from its place in the run's whole
    stream (step, slot across all processes), so it does not depend on which process or worker loads it
    (``SeededSamples``). Both are ``derived_seed`` s of the run's seed: runs with seeds s and s + 1 are independent
    (no shared epochs, no shifted streams).
    """

    def __init__(self, length: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0, world: int = 1):
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.start_step, self.rank, self.world = start_step, rank, world

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per_step = self.batch_size * self.world
        steps_per_epoch = max(1, self.length // per_step)
        step = self.start_step
        while True:
            epoch, position = divmod(step, steps_per_epoch)
            shuffle = torch.Generator().manual_seed(derived_seed(self.seed, EPOCH_ORDER, epoch))
            order = torch.randperm(self.length, generator=shuffle)
            if self.length < per_step:  # tiny sets: repeat the permutation to fill a step
                order = order.repeat(per_step // self.length + 1)
            chunk = order[position * per_step : (position + 1) * per_step].tolist()
            slots = range(step * per_step, (step + 1) * per_step)
            seeds = [derived_seed(self.seed, SAMPLE, slot) for slot in slots]
            yield list(zip(chunk, seeds))[self.rank :: self.world]
            step += 1


class SeededSamples(torch.utils.data.Dataset):
    """``dataset[index]`` drawn under ``torch.manual_seed(sample_seed)`` for each ``(index, sample_seed)`` key, the
    process's own RNG left as it was: a sample's random crop and flips depend on its key alone."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


def default_num_workers(device: torch.device, num_processes: int = 1) -> int:
    """Loader processes per training process when ``--dataloader_num_workers`` is not given: min(8, CPUs per process)
    on an accelerator (decoding and cropping then run beside the GPU step), 0 on CPU (the step itself uses every core;
    workers would only compete with it)."""
    if device.type == "cpu":
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cpus // max(num_processes, 1)))


def num_workers(args: argparse.Namespace, device: torch.device, num_processes: int = 1) -> int:
    """``--dataloader_num_workers``, or ``default_num_workers`` where it was not given."""
    given = args.dataloader_num_workers
    return default_num_workers(device, num_processes) if given is None else given


def create_train_loader(dataset, args: argparse.Namespace, accelerator, global_step: int):
    """An endless DataLoader whose batches depend only on (seed, step), starting at ``global_step``; the worker count
    ``--dataloader_num_workers`` (default ``default_num_workers``) changes its speed, never its batches.

    It draws nothing from the global RNG that ``resume`` restored: samples have their own seeds, and the loader its own
    generator.
    """
    start = global_step * args.gradient_accumulation_steps  # the sampler counts batches, not optimiser steps
    sampler = StepSampler(
        len(dataset), args.train_batch_size, args.seed, start, accelerator.process_index, accelerator.num_processes
    )
    workers = num_workers(args, accelerator.device, accelerator.num_processes)
    return torch.utils.data.DataLoader(
        SeededSamples(dataset),
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=accelerator.device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=PREFETCH_FACTOR if workers > 0 else None,
        generator=torch.Generator().manual_seed(args.seed),  # its workers' base seed: not from the global RNG
    )


class DataWait:
    """Batches from ``loader``, timing how long each ``next`` blocks. ``perf()`` gives the part of the wall time since
    the previous call spent waiting (0: data is never the bottleneck; near 1: the step waits for data) and that time."""

    def __init__(self, loader):
        self.batches = iter(loader)
        self.waited = self.total_waited = 0.0
        self.since = self.started = time.perf_counter()

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        batch = next(self.batches)
        waited = time.perf_counter() - start
        self.waited += waited
        self.total_waited += waited
        return batch

    def perf(self) -> dict[str, float]:
        """Since the previous call: ``perf/data_wait``, the share of the wall time spent waiting for batches, and
        ``perf/step_seconds``, the wall time itself (one optimiser step when called once a step)."""
        now = time.perf_counter()
        elapsed = max(now - self.since, 1e-9)
        share = self.waited / elapsed
        self.waited, self.since = 0.0, now
        return {"perf/data_wait": share, "perf/step_seconds": elapsed}

    def overall(self) -> float:
        """The share of the whole run's wall time (since the first batch was asked for) spent waiting."""
        return self.total_waited / max(time.perf_counter() - self.started, 1e-9)

    def summary(self) -> str:
        """The final log line's words on data: the whole run's waiting share."""
        return f"{100 * self.overall():.1f}% of the training time spent waiting for data (perf/data_wait)"
