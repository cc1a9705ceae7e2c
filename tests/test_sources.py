"""The one source resolver (asym.core.sources) every name, folder, file and Hub id goes through."""

from pathlib import Path

import pytest

import asym
from asym.core.errors import UserError
from asym.core.sources import resolve_source


@pytest.mark.parametrize(
    "text, kind",
    [("gan:runs/x", "gan"), ("timm:resnet50", "timm"), ("hf:facebook/dinov2-base", "hf"), ("owner/name", "hub"),
     ("psnr", "name"), ("./missing", "missing"), ("/no/such", "missing"), ("a/b/c", "missing"),
     ("weights.safetensors", "missing"), ("owner/name.pth", "missing"), ("~nobody", "missing"), ("tests", "folder"),
     ("README.md", "file"), ("tests/kadid10k", "missing")],  # owner/name, but its owner is a folder here
)  # fmt: skip
def test_one_resolver_decides_what_a_source_is(text, kind, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert resolve_source(text).kind == kind


def test_timm_refuses_a_path_instead_of_guessing():
    with pytest.raises(UserError, match="looks like a path, not a timm model name"):
        asym.create_backbone("timm:./my-folder", weights="random")


def test_a_dataset_not_here_is_one_line_at_once_offline(tmp_path, monkeypatch):
    """data/kadid10k beside data/ is a dataset not placed yet, never a Hub id; an owner/name offline is looked up in
    the datasets cache only (no retries: they cost 33 s and 24 lines), each one line naming what to do."""
    from asym.iqa.data import load_fr_dataset

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(UserError, match=r"^dataset data/kadid10k does not exist \(a local path.*docs/datasets.md"):
        load_fr_dataset("data/kadid10k")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))  # conftest: HF_HUB_OFFLINE=1
    with pytest.raises(UserError, match="not a local dataset, nor in the datasets cache, and the Hub cannot be"):
        load_fr_dataset("someone/no-such-dataset")
