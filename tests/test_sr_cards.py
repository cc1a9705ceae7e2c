"""asym.sr.cards: what a train_sr.py card records (loss, backbones, feature weights), and the metric of a backbone."""

import json

import pytest

from asym.core.errors import UserError
from asym.sr.cards import (
    card_disc_backbone,
    card_feat_weights,
    card_loss,
    card_per_backbone,
    metric_for_backbone,
    read_run_card,
)


def test_card_facts_from_flags_or_from_the_written_facts():
    card = {"--loss": "rec+per+adv", "perceptual loss": "L1 on resnet50 (pretrained), layers 1-4",
            "discriminator": "vanilla on convnext (gan), lr 0.0001", "--feat_weights": "runs/robust"}  # fmt: skip
    assert (card_loss(card), card_per_backbone(card), card_disc_backbone(card)) == (
        "rec+per+adv",
        "resnet50",
        "convnext",
    )
    assert card_feat_weights(card) == "runs/robust"
    assert card_per_backbone({**card, "--per_backbone": "vgg16"}) == "vgg16"
    assert [f(None) for f in (card_loss, card_per_backbone, card_disc_backbone, card_feat_weights)] == [None] * 4


def test_the_metric_named_after_a_backbone():
    metrics = ["psnr", "metric-vgg16", "runs/metric_resnet50"]
    assert metric_for_backbone("vgg16", metrics) == "metric-vgg16"
    assert metric_for_backbone("resnet50", metrics) == "runs/metric_resnet50"
    assert metric_for_backbone("convnext", metrics) is None
    with pytest.raises(UserError, match="all match backbone vgg16"):
        metric_for_backbone("vgg16", [*metrics, "vgg16"])


def test_a_run_card_is_read_or_refused(tmp_path):
    with pytest.raises(UserError, match="holds no config.json"):
        read_run_card(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"scale": 4}))
    with pytest.raises(UserError, match="has no card of training facts"):
        read_run_card(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"card": {"--loss": "rec"}}))
    assert read_run_card(str(tmp_path)) == {"--loss": "rec"}
