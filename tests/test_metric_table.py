"""The one metric table (asym.metrics.table), the one way in (asym.create_metric / asym.list_metrics), and
asym.from_pretrained (asym.saved_models)."""

import pyiqa
import pytest
import torch
from pyiqa.default_model_configs import DEFAULT_CONFIGS

import asym
from asym import DISTS, IQAModel
from asym.core.errors import UserError
from asym.metrics.fidelity import psnr, ssim

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (conftest)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A DISTS (FR) and two IQAModels (NR, FR) saved as train_metric.py / train_iqa.py save them."""
    root = tmp_path_factory.mktemp("saved")
    DISTS("vgg16", weights="random").save_pretrained(root / "metric")
    IQAModel(backbone="timm:resnet10t", mode="nr", weights="random").save_pretrained(root / "iqa")
    IQAModel(backbone="timm:resnet10t", mode="fr", weights="random").save_pretrained(root / "fr_iqa")
    return root


def test_every_metric_the_scripts_take_is_one_row():
    names = asym.list_metrics()
    assert names[:6] == ["psnr", "ssim", "uqi", "ifc", "deqa", "visualquality-r1"]
    pyiqa_names = set(pyiqa.list_models())
    listed = {n.removeprefix("pyiqa:") for n in names[6:]}
    assert listed == pyiqa_names - {"fid", "fid_dinov2", "sfid", "inception_score", "clipscore"}
    assert "pyiqa:psnr" in names and "psnr" not in names[6:]  # asym's psnr shadows pyiqa's, which keeps a name
    assert "fid" in asym.list_metrics(include_set_metrics=True)
    assert set(asym.list_metrics("nr")) | set(asym.list_metrics("fr")) == set(names)
    with pytest.raises(UserError, match="kind 'xr'"):
        asym.list_metrics("xr")


@pytest.mark.parametrize("name", ["maniqa", "piqe", "lpips", "dists", "niqe", "topiq_fr"])
def test_pyiqa_rows_carry_pyiqa_s_own_facts(name):
    row, config = asym.metric_info(name), DEFAULT_CONFIGS[name]
    assert (row.kind, row.loader) == (config["metric_mode"].lower(), "pyiqa")
    assert row.lower_better == config.get("lower_better", False) and row.score_range == config["score_range"]


def test_asym_and_vlm_rows():
    assert [(asym.metric_info(n).kind, asym.metric_info(n).loader) for n in ("psnr", "ifc", "deqa")] == [
        ("fr", "asym"), ("fr", "asym"), ("nr", "vlm")]  # fmt: skip
    assert asym.metric_info("visualquality-r1").weights == "TianheWu/VisualQuality-R1-7B"
    assert asym.metric_info("pyiqa:ssim").loader == "pyiqa" and not asym.metric_info("fid").per_image


def test_saved_models_are_rows_by_their_config(saved):
    metric, iqa, fr_iqa = (asym.metric_info(str(saved / n)) for n in ("metric", "iqa", "fr_iqa"))
    assert (metric.kind, metric.target, metric.lower_better) == ("fr", "DISTS", True)
    assert (iqa.kind, iqa.target, iqa.lower_better) == ("nr", "IQAModel", False)
    assert fr_iqa.kind == "fr"


def test_create_metric_builds_what_the_row_says(saved, pair):
    x, y = pair
    fidelity = asym.create_metric("psnr", border=4, y_channel=True)
    assert torch.equal(fidelity(x, y), psnr(x, y, border=4, y_channel=True)) and fidelity.kind == "fr"
    assert torch.equal(asym.create_metric("ssim")(x, y), ssim(x, y))
    dists = asym.create_metric(str(saved / "metric"))
    assert dists.lower_better and dists.name == "metric" and dists(x, y).shape == (2,)
    iqa = asym.create_metric(str(saved / "iqa"), kind="nr")
    assert iqa.kind == "nr" and iqa(x).shape == (2,)
    piqe = asym.create_metric("piqe")
    assert piqe.lower_better and piqe.kind == "nr"


def test_asym_psnr_is_pyiqa_s_and_a_loss_is_differentiable(pair):
    """``evaluate.py fr --metrics psnr`` used pyiqa's PSNR (RGB) and now scores asym's: the same to float32."""
    x, y = pair
    ours, theirs = asym.create_metric("psnr")(x, y), asym.create_metric("pyiqa:psnr")(x, y)
    assert torch.allclose(ours, theirs.float(), rtol=1e-6, atol=1e-5)
    loss = asym.create_metric("ssim", as_loss=True)  # asym's float64 SSIM has no gradient: pyiqa's is used
    x = x[:1].clone().requires_grad_()  # pyiqa's losses reduce the batch: one image
    loss(x, y[:1]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "name, kind, message",
    [("nosuchmetric", "fr", "unknown metric 'nosuchmetric'"),
     ("psnrr", None, "did you mean psnr"),
     ("fid", "nr", "does not score single images"),
     ("maniqa", "fr", "maniqa is a no-reference metric, not full-reference"),
     ("./no/such/folder", None, "does not exist"),
     ("psnr", None, "takes no mode")],
)  # fmt: skip
def test_bad_metric_names_are_one_clear_error(name, kind, message):
    kwargs = {"mode": "x"} if message == "takes no mode" else {}
    with pytest.raises(UserError, match=message):
        asym.create_metric(name, kind=kind, **kwargs)


def test_a_saved_model_that_is_no_metric_is_refused(tmp_path):
    from asym import SRModel

    SRModel("tiny", 4).save_pretrained(tmp_path / "sr")
    with pytest.raises(UserError, match="holds an asym SRModel, which is no metric"):
        asym.metric_info(str(tmp_path / "sr"))


def test_from_pretrained_loads_whatever_asym_saved(saved):
    assert type(asym.from_pretrained(str(saved / "metric"))).__name__ == "DISTS"
    assert asym.from_pretrained(str(saved / "iqa")).mode == "nr"
    with pytest.raises(UserError, match="holds no config.json"):
        asym.from_pretrained(str(saved))


def test_table_1_s_pyiqa_scorers_lack_only_their_weights_offline():
    """MANIQA and LIQE get as far as their weight download (no network here): every module they import is installed
    (LIQE's openai-clip imports pkg_resources, gone from setuptools 81: requirements.txt keeps it below)."""
    from asym.core.errors import MetricUnavailable

    for name in ("maniqa", "liqe"):
        with pytest.raises(MetricUnavailable) as caught:
            asym.create_metric(name, "cpu")
        assert "ModuleNotFoundError" not in caught.value.reason and "ImportError" not in caught.value.reason, name
