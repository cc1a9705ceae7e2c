"""asym.iqa.results: the initialisation a backbone's weights provenance stands for."""

import pytest

from asym.iqa.results import init_label


@pytest.mark.parametrize(
    "source, label",
    [
        ("random", "random"),
        ("random (pretrained unavailable)", "random"),
        ("pretrained", "pretrained"),
        ("gan:runs/sr (vanilla discriminator on vgg16, 400 steps, started from random weights)", "gan"),
        ("stored in runs/iqa, from gan:runs/sr/discriminator (vanilla discriminator on vgg16, 4 steps)", "gan"),
        ("stored in runs/iqa, from pretrained", "pretrained"),
        ("stored in runs/iqa, from random (pretrained unavailable)", "random"),
        ("stored in runs/iqa", "file"),
        ("weights/robust_vgg19.safetensors", "file"),
        ("owner/robust-vgg", "file"),
    ],
)
def test_init_label(source, label):
    assert init_label(source) == label
