"""asym.sr.cards: what a train_sr.py card records (loss, backbones, feature weights), and the metric of a backbone."""

import json

import pytest

from asym.core.errors import UserError
from asym.sr.cards import (
    card_disc_backbone,
    card_disc_type,
    card_feat_weights,
    card_loss,
    card_per_backbone,
    card_trained_on_builtin,
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


def test_the_card_train_sr_writes_is_the_card_the_readers_read():
    """sr_card's facts, read back by the readers beside it: the loss, both backbones, the discriminator's head, the
    feature weights and whether it trained on builtin (a change to one side alone fails here)."""
    from types import SimpleNamespace

    from asym.sr.cards import sr_card

    backbone = SimpleNamespace(name="resnet50", weights_source="random (pretrained unavailable)")
    args = SimpleNamespace(loss="rec+per+adv+feat", lambda_rec=0.01, lambda_per=1.0, lambda_adv=0.005,
                           init_generator="runs/stage1", dataset_name="builtin", train_data_dir=None, crop_size=64,
                           train_batch_size=4, learning_rate=1e-4, lr_milestones="100", max_train_steps=10, seed=0,
                           feat_backbone="vgg19", feat_weights="runs/robust", no_feat_normalisation=False,
                           terms=["rec", "per", "adv", "feat"], lambda_feat=1.0, lambda_kl=0.0, disc_type="patch",
                           disc_backbone="dinov2", disc_learning_rate=1e-4, scale=4)  # fmt: skip
    final = {"psnr": 27.0, "ssim": 0.8, "psnr_y": 29.0, "ssim_y": 0.85}
    loss = SimpleNamespace(weights={"rec": 0.01, "per": 1.0, "feat": 1.0, "adv": 0.005},
                           perceptual=SimpleNamespace(backbone=backbone, alpha_beta_source="release"),
                           features=SimpleNamespace(backbone=SimpleNamespace(name="vgg19", weights_source="runs/x")),
                           discriminator=SimpleNamespace(backbone=backbone))  # fmt: skip
    card = sr_card(args, 10, final, 2, loss)
    read = (card_loss(card), card_per_backbone(card), card_disc_backbone(card), card_disc_type(card),
            card_feat_weights(card), card_trained_on_builtin(card))  # fmt: skip
    assert read == ("rec+per+adv+feat", "resnet50", "dinov2", "patch", "runs/robust", True)
    assert "--lambda_feat" in card and "--lambda_mse" not in card and "feat on vgg19 (runs/x)" in card["feature loss"]
    assert card["steps trained"] == 10 and card["validation"].startswith("Y (BT.601): PSNR 29.00 dB")
