"""The one source resolver (asym.sources) every name, folder, file and Hub id goes through."""

from pathlib import Path

import pytest

import asym
from asym.errors import UserError
from asym.sources import resolve_source


@pytest.mark.parametrize(
    "text, kind",
    [("gan:runs/x", "gan"), ("timm:resnet50", "timm"), ("hf:facebook/dinov2-base", "hf"), ("owner/name", "hub"),
     ("psnr", "name"), ("./missing", "missing"), ("/no/such", "missing"), ("a/b/c", "missing"),
     ("weights.safetensors", "missing"), ("owner/name.pth", "missing"), ("~nobody", "missing"), ("tests", "folder"),
     ("README.md", "file")],
)  # fmt: skip
def test_one_resolver_decides_what_a_source_is(text, kind, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert resolve_source(text).kind == kind


def test_timm_refuses_a_path_instead_of_guessing():
    with pytest.raises(UserError, match="looks like a path, not a timm model name"):
        asym.create_backbone("timm:./my-folder", weights="random")
