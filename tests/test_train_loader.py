"""asym.core.train_loader: batches a pure function of (seed, step) whatever the worker count, a resume that replays
them, loader defaults, and the data-wait share."""

import argparse
import types

import numpy as np
import pytest
import torch

import asym.core.train_loader as train_loader
from asym.core.train_loader import DataWait, StepSampler, create_train_loader, default_num_workers
from asym.sr.data import SRPairDataset


def _args(workers, batch=3, seed=5):
    return argparse.Namespace(train_batch_size=batch, seed=seed, gradient_accumulation_steps=1,
                              dataloader_num_workers=workers)  # fmt: skip


def _accelerator(rank=0, world=1, device="cpu"):
    return types.SimpleNamespace(process_index=rank, num_processes=world, device=torch.device(device))


@pytest.fixture(scope="module")
def crops():
    """Random crops and flips of 4 images: what a worker draws decides every sample."""
    images = [np.random.default_rng(i).integers(0, 256, (40, 44, 3), dtype=np.uint8) for i in range(4)]
    return SRPairDataset(images, scale=2, crop_size=16, train=True)


def _take(loader, n):
    batches = iter(loader)
    return [next(batches)["hr"] for _ in range(n)]


def test_the_same_crops_whatever_the_worker_count_and_after_a_resume(crops):
    torch.manual_seed(123)
    alone = _take(create_train_loader(crops, _args(0), _accelerator(), 0), 6)
    torch.manual_seed(456)  # the process's RNG plays no part
    workers = _take(create_train_loader(crops, _args(2), _accelerator(), 0), 6)
    resumed = _take(create_train_loader(crops, _args(2), _accelerator(), 4), 2)  # a run resumed at step 4
    assert all(torch.equal(a, b) for a, b in zip(alone, workers))
    assert torch.equal(alone[4], resumed[0]) and torch.equal(alone[5], resumed[1])
    assert not torch.equal(alone[0], alone[1])  # epochs differ: 4 images, batches of 3
    other_seed = _take(create_train_loader(crops, _args(0, seed=6), _accelerator(), 0), 1)
    assert not torch.equal(alone[0], other_seed[0])
    state = torch.get_rng_state()
    _take(create_train_loader(crops, _args(0), _accelerator(), 0), 2)
    assert torch.equal(state, torch.get_rng_state())  # loading draws nothing from the restored global RNG


def test_processes_split_each_step_and_draw_what_one_process_would():
    one = next(iter(StepSampler(10, 2, seed=1, world=1)))  # a step of 2 on one process
    a = next(iter(StepSampler(10, 1, seed=1, rank=0, world=2)))
    b = next(iter(StepSampler(10, 1, seed=1, rank=1, world=2)))
    assert a + b == one[0::2] + one[1::2] and {a[0][0], b[0][0]} == {one[0][0], one[1][0]}
    assert len({seed for _, seed in one}) == 2  # each sample its own seed


def test_default_workers_feed_an_accelerator_and_leave_the_cpu_to_the_step(monkeypatch):
    monkeypatch.setattr(train_loader.os, "sched_getaffinity", lambda pid: set(range(32)), raising=False)
    assert default_num_workers(torch.device("cpu")) == 0
    assert default_num_workers(torch.device("cuda")) == 8
    assert default_num_workers(torch.device("cuda"), num_processes=8) == 4
    monkeypatch.setattr(train_loader.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert default_num_workers(torch.device("cuda"), num_processes=2) == 1


def test_data_wait_is_the_share_of_the_step_spent_waiting(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(train_loader.time, "perf_counter", lambda: clock[0])

    def slow_batches():
        while True:
            clock[0] += 0.3  # the batch takes 0.3 s to arrive
            yield None

    batches = DataWait(slow_batches())
    next(batches)
    clock[0] += 0.1  # the step computes for 0.1 s
    assert batches.perf() == {"perf/data_wait": pytest.approx(0.75), "perf/step_seconds": pytest.approx(0.4)}
    next(batches), next(batches)
    clock[0] += 0.6
    assert batches.perf()["perf/data_wait"] == pytest.approx(0.5) and batches.overall() == pytest.approx(0.9 / 1.6)
    assert batches.summary().startswith("56.2% of the training time spent waiting for data")


def test_runs_with_neighbouring_seeds_are_independent_not_shifted_by_an_epoch():
    """Seeds meant as independent runs (error bars, a sweep) share no epoch order and no sample seed."""

    def epochs(seed, n=6):  # a step of 8 on 8 items: each step is one epoch's whole order
        steps = iter(StepSampler(8, 8, seed=seed))
        return [next(steps) for _ in range(n)]

    for seed in (0, 1, 7):
        this, neighbour = epochs(seed), epochs(seed + 1)
        orders = [[index for index, _ in step] for step in this]
        shifted = [[index for index, _ in step] for step in neighbour]
        assert all(order != other for order in orders for other in shifted)  # 8! orders: a match is no chance
        assert not {s for step in this for _, s in step} & {s for step in neighbour for _, s in step}
