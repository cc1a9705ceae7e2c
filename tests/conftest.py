"""Test set-up: offline Hub (fail fast instead of retrying), deterministic seeds, shared tiny inputs."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # must precede any huggingface_hub import
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


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


@pytest.fixture
def fresh_accelerate_state():
    reset_accelerate_state()
    yield
