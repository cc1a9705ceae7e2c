"""Hub persistence: a saved model reloads exactly as saved, or fails with one UserError; never on substitute weights."""

import json
import os

import numpy as np
import pytest
import torch
import torchvision

from asym import DISTS, SRModel
from asym.core.errors import UserError
from asym.core.hub import HubModel
from asym.core.model_card import (
    card_dataset_type,
    correlation_results,
    eval_results,
    hub_dataset_id,
    hub_model_id,
    set_card_metadata,
)
from asym.core.training import add_common_args


def _save_as_pretrained(metric, folder):
    """Save ``metric`` as if its backbone held the downloadable ImageNet weights (then they are not stored)."""
    metric.backbone.weights_source = "pretrained"
    metric.save_pretrained(folder)


def test_a_pretrained_backbone_is_not_replaced_by_random_weights_on_reload(tmp_path):
    """Offline, the ImageNet VGG-16 a metric was saved with cannot be had: reloading must fail, not go random."""
    metric = DISTS("vgg16", weights="random", alpha_beta="random")
    _save_as_pretrained(metric, tmp_path / "metric")
    config = json.loads((tmp_path / "metric" / "config.json").read_text())
    assert config["weights"] == "pretrained" and config["asym_class"] == "DISTS"
    with pytest.raises(UserError, match="relies on pretrained backbone weights it does not store"):
        DISTS.from_pretrained(tmp_path / "metric")
    # a folder written before this rule (weights "auto" in its config) is held to the same standard
    config["weights"] = "auto"
    (tmp_path / "metric" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="could not be obtained"):
        DISTS.from_pretrained(tmp_path / "metric")


def test_a_pretrained_backbone_is_reloaded_when_obtainable(tmp_path, monkeypatch):
    """With the ImageNet weights obtainable (simulated: a seeded VGG-16 stands in for the download), the reload uses
    them and scores exactly as the saved metric."""

    def vgg16(weights=None, **kwargs):
        torch.manual_seed(123)  # the same "downloaded" weights every time
        return torchvision.models.vgg.VGG(torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"]))

    monkeypatch.setattr(torchvision.models, "vgg16", vgg16)
    metric = DISTS("vgg16", weights="pretrained", alpha_beta="random")
    assert metric.backbone.weights_source == "pretrained"
    metric.save_pretrained(tmp_path / "metric")
    from safetensors.torch import load_file

    assert not any(k.startswith("backbone.") for k in load_file(tmp_path / "metric" / "model.safetensors"))
    again = DISTS.from_pretrained(tmp_path / "metric")
    assert again.backbone.weights_source == "pretrained"
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(again(x, y), metric(x, y), atol=0, rtol=0)


def test_a_stored_backbone_reloads_bit_identically_with_its_provenance(tmp_path):
    metric = DISTS("resnet50", weights="random", alpha_beta="random", seed=3)
    metric.save_pretrained(tmp_path / "metric")
    again = DISTS.from_pretrained(tmp_path / "metric")
    assert again.backbone.weights_source == f"stored in {tmp_path / 'metric'}, from random"
    assert again.alpha_beta_source == f"as saved in {tmp_path / 'metric'}"
    for a, b in zip(metric.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


@pytest.fixture(scope="module")
def saved_metric(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metric")
    DISTS("vgg16", weights="random").save_pretrained(folder)
    return folder


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "copy")


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no-config", "holds no config.json"),
        ("garbage-config", "model config .*config.json cannot be read"),
        ("list-config", "is not a JSON object"),
        ("other-class", "holds an asym SRModel, not a DISTS: load it with SRModel.from_pretrained"),
        ("legacy-other-class", "describes another kind of model"),
        ("no-weights", "holds no model.safetensors"),
        ("truncated-weights", "model weights .*model.safetensors cannot be read"),
        ("garbage-weights", "model weights .*model.safetensors cannot be read"),
        ("foreign-weights", "does not fit DISTS"),
        ("missing", "is not a folder saved by asym"),
        ("offline-hub-id", "no local folder and could not be downloaded"),
    ],
)
def test_broken_folders_are_one_user_error(saved_metric, tmp_path, damage, message):
    from safetensors.torch import save_file

    folder = _copy(saved_metric, tmp_path)
    config, weights = folder / "config.json", folder / "model.safetensors"
    if damage == "no-config":
        config.unlink()
    elif damage == "garbage-config":
        config.write_text("{not json")
    elif damage == "list-config":
        config.write_text("[1, 2]")
    elif damage == "other-class":
        SRModel("tiny", 2).save_pretrained(folder)
    elif damage == "legacy-other-class":
        config.write_text(json.dumps({"model": "tiny", "scale": 2}))
    elif damage == "no-weights":
        weights.unlink()
    elif damage == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "garbage-weights":
        weights.write_bytes(b"\x00garbage" * 100)
    elif damage == "foreign-weights":  # another metric's weights file copied into this folder
        save_file({"alpha": torch.zeros(7), "beta": torch.zeros(7), "backbone.model.fc.weight": torch.zeros(2)},
                  str(weights))  # fmt: skip
    elif damage == "missing":
        folder = tmp_path / "nowhere" / "metric"
    elif damage == "offline-hub-id":
        folder = "nobody/no-such-metric"
    with pytest.raises(UserError, match=message):
        DISTS.from_pretrained(folder)


# --- model card metadata --------------------------------------------------------------------------------------------


class _Tiny(torch.nn.Module, HubModel):
    """A HubModel of one 1x1 convolution: saves in milliseconds; an image-to-image model, as SRModel is."""

    card_pipeline_tag = "image-to-image"
    model_name = "tiny"  # (in the card's title)

    def __init__(self, width: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width, 1)


def test_card_metadata_is_what_model_card_load_reads_back(tmp_path):
    """License, pipeline tag, datasets, base model and the model-index are Hub metadata: huggingface_hub's own parser
    returns exactly what was set (a NaN score is left out: no leaderboard ranks it); the Markdown text is kept."""
    from huggingface_hub import EvalResult, ModelCard

    model = _Tiny()
    model.card = {"test": "SRCC 0.5"}
    model.card_license, model.card_datasets, model.card_base_model = "cc-by-nc-4.0", ["owner/data"], "owner/base"
    scores = {"srcc": np.float32(0.625), "plcc": 0.7071067811865476, "krcc": float("nan"), "n": 32}
    val = eval_results("image-quality-assessment", "No-reference IQA", "owner/data", "Data", "val",
                       [("2afc", "2AFC score (cnn)", 0.875)], dataset_config="cnn",
                       metric_args={"eps": 1.33})  # fmt: skip
    model.card_results = correlation_results("nr", "owner/data", "Data", "test", scores) + val
    model.save_pretrained(tmp_path / "model")
    card = ModelCard.load(tmp_path / "model" / "README.md")
    data = card.data
    assert (data.library_name, data.license, data.pipeline_tag) == ("asym", "cc-by-nc-4.0", "image-to-image")
    assert (data.datasets, data.base_model, data.model_name) == (["owner/data"], "owner/base", "_Tiny (tiny)")
    test = dict(task_type="image-quality-assessment", task_name="No-reference image quality assessment",
                dataset_type="owner/data", dataset_name="Data", dataset_split="test")  # fmt: skip
    assert data.eval_results == [
        EvalResult(**test, metric_type="spearmanr", metric_name="Test SRCC", metric_value=0.625),
        EvalResult(**test, metric_type="pearsonr", metric_name="Test PLCC", metric_value=0.7071067811865476),
        EvalResult(task_type="image-quality-assessment", task_name="No-reference IQA", dataset_type="owner/data",
                   dataset_name="Data", dataset_split="val", dataset_config="cnn", metric_type="2afc",
                   metric_name="2AFC score (cnn)", metric_value=0.875, metric_args={"eps": 1.33}),
    ]  # fmt: skip
    assert "- **test**: SRCC 0.5" in card.text and "_Tiny.from_pretrained" in card.text


def test_a_card_without_metadata_has_no_license_and_no_model_index(saved_metric):
    """A model saved outside the training scripts claims nothing: no license (the scripts write --license, default
    unknown), no datasets, no base model, no pipeline tag (no Hub pipeline fits a metric), no model-index."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(saved_metric / "README.md")
    data = card.data
    assert data.library_name == "asym" and "dists" in data.tags
    assert [data.license, data.pipeline_tag, data.datasets, data.base_model, data.eval_results] == [None] * 5
    assert "model-index" not in card.content and "license" not in card.content


def test_set_card_metadata_links_only_hub_ids(tmp_path, monkeypatch):
    """Datasets and base model are Hub ids only: not builtin, not a local folder (even one named like owner/name),
    not a prefixed source (gan:, timm:) or keyword; the license comes from --license (default unknown)."""
    import argparse
    from types import SimpleNamespace

    monkeypatch.chdir(tmp_path)
    (tmp_path / "local" / "data").mkdir(parents=True)
    parser = argparse.ArgumentParser()
    add_common_args(parser, "output/test")
    assert parser.parse_args([]).license == "unknown"

    def metadata(dataset_name, base_model, train_data_dir=None, results=()):
        model = SimpleNamespace()
        args = SimpleNamespace(license="mit", dataset_name=dataset_name, train_data_dir=train_data_dir)
        set_card_metadata(model, args, list(results), base_model)
        return model.card_license, model.card_datasets, model.card_base_model, model.card_results

    assert metadata("owner/data", "owner/model") == ("mit", ["owner/data"], "owner/model", None)
    assert metadata("imagenet-1k", None) == ("mit", ["imagenet-1k"], None, None)  # a canonical (ownerless) dataset
    assert metadata("local/data", "local/data") == ("mit", None, None, None)  # existing folders, not Hub ids
    assert metadata("builtin", "random") == ("mit", None, None, None)
    assert metadata("owner/data", "gan:owner/run", train_data_dir="hr") == ("mit", None, None, None)
    for source in ("pretrained", "auto", "timm:owner/name", "./owner/name", "/owner/name", "a/b/c", "owner--x/y"):
        assert hub_model_id(source) is None, source
    assert hub_dataset_id("gan:owner/run") is None and hub_dataset_id("local/data") is None
    result = eval_results("image-classification", "Image classification", "builtin", "builtin", "validation",
                          [("accuracy", "Clean accuracy", np.float64(0.5))])  # fmt: skip
    assert metadata("builtin", None, results=result)[3] == result and type(result[0]["metric_value"]) is float
    assert card_dataset_type("owner/data") == "owner/data" and card_dataset_type("builtin") == "builtin"
    assert card_dataset_type("local/data/") == "data" and card_dataset_type("owner/data", "x/DIV2K_train_HR") == (
        "DIV2K_train_HR")  # fmt: skip


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_files_get_the_mode_the_umask_gives(tmp_path):
    """safetensors (>= 0.8) and mkstemp create files 0600: a model, results or a grid then became unreadable to the
    group or a container user that the umask lets read everything else."""
    from PIL import Image
    from safetensors.torch import save_file

    from asym.core.atomic import atomic_path, write_json

    umask = os.umask(0o027)  # not the usual 022: the mode must follow the umask, not be a constant 0644
    try:
        SRModel("autoencoder-kl-tiny", 1).save_pretrained(tmp_path / "model")  # also vae/, through diffusers
        write_json(str(tmp_path / "results.json"), {"srcc": 0.5})
        with atomic_path(str(tmp_path / "dist2logit.safetensors")) as tmp:
            save_file({"w": torch.zeros(2)}, tmp)
        with atomic_path(str(tmp_path / "grid.png")) as tmp:
            Image.new("RGB", (2, 2)).save(tmp)
    finally:
        os.umask(umask)
    modes = {path.relative_to(tmp_path).as_posix(): path.stat().st_mode & 0o777 for path in tmp_path.rglob("*")
             if path.is_file()}  # fmt: skip
    assert {"model/model.safetensors", "model/vae/diffusion_pytorch_model.safetensors", "results.json",
            "dist2logit.safetensors", "grid.png"} <= set(modes)  # fmt: skip
    assert modes == dict.fromkeys(modes, 0o640)


@pytest.fixture
def hub_endpoint(monkeypatch):
    """``set(url)``: the Hub's endpoint for ``asym.core.offline.hub_reachable``, online mode on, the check not made
    yet."""
    from huggingface_hub import constants

    from asym.core.offline import hub_reachable

    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # put back after the test (the check may set it)

    def set_endpoint(url: str) -> None:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", url)
        hub_reachable.cache_clear()

    yield set_endpoint
    hub_reachable.cache_clear()


def test_an_unreachable_hub_is_said_once_then_downloads_fail_at_once(hub_endpoint, tmp_path, caplog):
    import logging
    import socket
    import time

    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from asym.core.offline import hub_reachable

    with socket.socket() as free:  # a port nothing listens on: the connection is refused
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    hub_endpoint(f"http://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="asym"):
        assert hub_reachable() is False and hub_reachable() is False
    [record] = [record for record in caplog.records if "cannot be reached" in record.getMessage()]
    assert f"127.0.0.1:{port}" in record.getMessage() and "HF_HUB_OFFLINE=1" in record.getMessage()
    assert constants.HF_HUB_OFFLINE is True
    start = time.monotonic()
    with pytest.raises(LocalEntryNotFoundError) as raised:  # the cache only, no retries (23 s per file otherwise)
        hf_hub_download("asym-tests/never-downloaded", "model.safetensors", cache_dir=str(tmp_path))
    assert time.monotonic() - start < 5
    from asym.core.errors import summarize  # what a table's "unavailable: ..." cell says of it: one short clause

    expected = "LocalEntryNotFoundError: not in the local Hub cache, and the Hub cannot be reached"
    assert summarize(raised.value) == expected


def test_a_hub_that_answers_is_reachable_whatever_its_status(hub_endpoint, caplog):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from huggingface_hub import constants

    from asym.core.offline import hub_reachable

    with HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as server:  # answers HEAD with 501
        threading.Thread(target=server.handle_request, daemon=True).start()
        hub_endpoint(f"http://127.0.0.1:{server.server_address[1]}")
        assert hub_reachable() is True
    assert constants.HF_HUB_OFFLINE is False and "cannot be reached" not in caplog.text
