"""SR evaluation side: test-set layouts and their errors, model sources, tiled inference, the output cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import perturbed_tiny
from PIL import Image
from torch import nn

from asym.core.errors import UserError
from asym.core.images import to_tensor
from asym.sr.data import bicubic_downscale, bicubic_upsample
from asym.sr.eval_sets import load_sr_test_set
from asym.sr.inference import SRSource, load_sr_source
from asym.sr.models import SRModel, upscale
from asym.sr.output_cache import SROutputCache, run_sr

NAMES = ("baby", "bird")


def _write(path, h: int, w: int, seed: int = 0) -> np.ndarray:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    return image


def _basicsr(root, scales=(4,), lr_size: int = 6):
    """BasicSR's layout: <set>/GTmod12/<name>.png and <set>/LRbicx<k>/<name>.png."""
    for i, name in enumerate(NAMES):
        _write(os.path.join(root, "GTmod12", f"{name}.png"), 24, 24, i)
        for k in scales:
            _write(os.path.join(root, f"LRbicx{k}", f"{name}.png"), lr_size if k == 4 else 24 // k, 24 // k, 10 + i)
    return str(root)


def _swinir(root, scale: int = 4):
    """SwinIR's layout: <set>/HR/<name>.png and <set>/LR_bicubic/X<k>/<name>x<k>.png."""
    for i, name in enumerate(NAMES):
        _write(os.path.join(root, "HR", f"{name}.png"), 24, 26, i)  # 26: not a multiple of 4, mod-cropped to 24
        _write(os.path.join(root, "LR_bicubic", f"X{scale}", f"{name}x{scale}.png"), 24 // scale, 26 // scale, 10 + i)
    return str(root)


def test_basicsr_layout(tmp_path):
    test_set = load_sr_test_set(_basicsr(tmp_path / "Set5"), 4)
    assert (test_set.name, len(test_set), test_set.names) == ("Set5-x4", 2, list(NAMES))
    item = test_set[1]
    assert item.name == "bird" and item.hr.shape == (3, 24, 24) and item.lr.shape == (3, 6, 6)
    expected = to_tensor(np.asarray(Image.open(tmp_path / "Set5" / "LRbicx4" / "bird.png")))
    assert torch.equal(item.lr, expected)  # the released LR, not a remade one


def test_swinir_layout(tmp_path):
    test_set = load_sr_test_set(_swinir(tmp_path / "Set14"), 4)
    assert test_set.name == "Set14-x4" and test_set.names == list(NAMES)
    item = test_set[0]
    assert item.hr.shape == (3, 24, 24) and item.lr.shape == (3, 6, 6)  # HR mod-cropped from 24x26
    hr = to_tensor(np.asarray(Image.open(tmp_path / "Set14" / "HR" / "baby.png")))
    assert torch.equal(item.hr, hr[:, :24, :24])


def test_hr_folder_and_builtin_make_bicubic_lr(tmp_path):
    _write(str(tmp_path / "hr" / "a.png"), 26, 27)
    _write(str(tmp_path / "hr" / "sub" / "b.png"), 24, 24, 1)
    test_set = load_sr_test_set(str(tmp_path / "hr"), 4)
    assert test_set.names == ["a", "sub/b"]
    item = test_set[0]
    assert item.hr.shape == (3, 24, 24) and item.lr.shape == (3, 6, 6)
    assert torch.equal(item.lr, bicubic_downscale(item.hr, (6, 6)))
    builtin = load_sr_test_set("builtin", 4)
    assert builtin.name == "builtin-x4" and len(builtin) == 13 and builtin.names[0] == "astronaut"
    first = builtin[0]
    assert first.hr.shape[-1] % 4 == 0 and first.lr.shape[-1] * 4 == first.hr.shape[-1]


def test_a_subset_keeps_the_set_name_and_its_images(tmp_path):
    """subset / one: the chosen images, in that order, under the set's name (so they share its cached outputs)."""
    for i, name in enumerate(("a", "b", "c")):
        _write(str(tmp_path / "hr" / f"{name}.png"), 24, 20 + 4 * i, i)
    test_set = load_sr_test_set(str(tmp_path / "hr"), 4)
    part = test_set.subset([2, 0])
    assert (part.name, part.scale, part.names, len(part)) == (test_set.name, 4, ["c", "a"], 2)
    assert all(torch.equal(x, y) for x, y in zip(part[0], test_set[2]) if isinstance(x, torch.Tensor))
    one = test_set.one(1)
    assert one.names == ["b"] and [item.name for item in one] == ["b"] and torch.equal(one[0].lr, test_set[1].lr)


def test_test_set_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_sr_test_set(str(tmp_path / "missing"), 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no images"):
        load_sr_test_set(str(tmp_path / "empty"), 4)
    (tmp_path / "gt_only" / "GTmod12").mkdir(parents=True)
    with pytest.raises(UserError, match="no LRbicx"):
        load_sr_test_set(str(tmp_path / "gt_only"), 4)
    os.makedirs(tmp_path / "empty_gt" / "GTmod12")
    os.makedirs(tmp_path / "empty_gt" / "LRbicx4")
    with pytest.raises(UserError, match="GTmod12 holds no images"):
        load_sr_test_set(str(tmp_path / "empty_gt"), 4)
    x2 = _basicsr(tmp_path / "x2only", scales=(2,))
    with pytest.raises(UserError, match=r"no x4 LR images; it has LRbicx2 \(x2\)"):
        load_sr_test_set(x2, 4)
    swinir_x2 = _swinir(tmp_path / "swinir_x2", scale=2)
    with pytest.raises(UserError, match=r"it has X2 \(x2\)"):
        load_sr_test_set(swinir_x2, 4)
    wrong = _basicsr(tmp_path / "wrong", lr_size=7)
    with pytest.raises(UserError, match=r"LRbicx4/baby.png is 6x7 \(WxH\), expected 6x6"):
        load_sr_test_set(wrong, 4)
    missing = _basicsr(tmp_path / "missing_lr")
    os.remove(os.path.join(missing, "LRbicx4", "bird.png"))
    with pytest.raises(UserError, match="GTmod12/bird.png has no LR image"):
        load_sr_test_set(missing, 4)
    _write(str(tmp_path / "dot" / "a.png"), 1, 1)  # a 1x1 photograph: no LR pixel at x4
    with pytest.raises(UserError, match=r"dot/a.png is 1x1 \(WxH\): at x4 an HR test image needs at least 4x4 pixels"):
        load_sr_test_set(str(tmp_path / "dot"), 4)
    _write(str(tmp_path / "small" / "GTmod12" / "a.png"), 3, 5)
    _write(str(tmp_path / "small" / "LRbicx4" / "a.png"), 1, 1)
    with pytest.raises(UserError, match=r"GTmod12/a.png is 5x3 \(WxH\): at x4 an HR test image needs at least 4x4"):
        load_sr_test_set(str(tmp_path / "small"), 4)
    missing = _swinir(tmp_path / "missing_swinir_lr")
    os.remove(os.path.join(missing, "LR_bicubic", "X4", "babyx4.png"))
    with pytest.raises(UserError, match=r"HR/baby.png has no LR image .*X4/babyx4.png"):
        load_sr_test_set(missing, 4)


def test_bicubic_and_hr_sources():
    lr, hr = torch.rand(1, 3, 7, 9), torch.rand(1, 3, 28, 36)
    bicubic = load_sr_source("bicubic", 4)
    out = bicubic(lr)
    expected = F.interpolate(lr, size=(28, 36), mode="bicubic", align_corners=False).clamp(0, 1)
    assert out.shape == (1, 3, 28, 36) and torch.allclose(out, expected, atol=1e-6)
    assert out.min() >= 0 and out.max() <= 1
    reference = load_sr_source("hr", 4)
    assert reference(lr, hr) is hr
    assert (bicubic.kind, reference.kind) == ("bicubic", "hr")
    assert bicubic.cache_key == load_sr_source("bicubic", 4).cache_key != load_sr_source("bicubic", 2).cache_key


def test_model_sources(tmp_path):
    model = SRModel("swinir-light", 4)
    model.save_pretrained(tmp_path / "run")
    torch.save({"params": model.net.state_dict()}, tmp_path / "001_SwinIR_tiny_x4.pth")  # release layout
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = model.eval()(lr)
    asym_source = load_sr_source(str(tmp_path / "run"), 4)
    release = load_sr_source(str(tmp_path / "001_SwinIR_tiny_x4.pth"), 4)
    assert (asym_source.kind, release.kind) == ("asym", "spandrel")
    assert torch.allclose(asym_source(lr), expected, atol=1e-5) and torch.allclose(release(lr), expected, atol=1e-5)
    assert asym_source.cache_key != release.cache_key  # the kind (and the module's class) is part of the key
    assert load_sr_source(str(tmp_path / "run"), 4).cache_key == asym_source.cache_key  # stable across loads
    with pytest.raises(UserError, match="is a x4 model, not x2"):
        load_sr_source(str(tmp_path / "run"), 2)
    with pytest.raises(UserError, match="is a x4 model, not x3"):
        load_sr_source(str(tmp_path / "001_SwinIR_tiny_x4.pth"), 3)
    (tmp_path / "no_config").mkdir()
    with pytest.raises(UserError, match="holds no config.json"):
        load_sr_source(str(tmp_path / "no_config"), 4)


def test_tiled_equals_whole_image(one_thread):
    """Tiles give the whole-image output when their overlap covers the receptive field: tiny (BicubicResidualSR) sees
    10 LR pixels on each side (a 3x3 head, 4 residual blocks of two 3x3 convolutions, a 3x3 tail; its bicubic part 2),
    so 10 pixels of overlap are exact (float64: to rounding) and 9 are not. A perturbed tiny: an untrained one is
    bicubic, whose 2-pixel reach any overlap covers."""
    generator = perturbed_tiny(1).double()
    lr = torch.rand(1, 3, 24, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))  # 2x3 tiles of 12
    with torch.no_grad():
        whole = generator(lr)
        tiled = upscale(generator, lr, 4, tile=12, overlap=10)
        short = upscale(generator, lr, 4, tile=12, overlap=9)
        through_source = SRSource.from_module("tiny", generator, 4)(lr, tile=12, overlap=10)
    assert (whole - bicubic_upsample(lr, 4)).abs().max() > 1e-2  # not bicubic
    assert tiled.shape == whole.shape == (1, 3, 96, 112)
    assert (tiled - whole).abs().max() < 1e-12
    assert (short - whole).abs().max() > 1e-8  # one pixel short of the field: seams
    assert torch.equal(through_source, tiled.float())


class _Counting(nn.Module):
    """A generator wrapper that counts forward calls."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, lr):
        self.calls += 1
        return self.net(lr)


def test_output_cache(tmp_path):
    _write(str(tmp_path / "hr" / "a.png"), 24, 24)
    _write(str(tmp_path / "hr" / "b.png"), 24, 28, 1)
    test_set = load_sr_test_set(str(tmp_path / "hr"), 4)
    counting = _Counting(SRModel("tiny", 4).net)
    cache = SROutputCache(str(tmp_path / "cache"))
    first = run_sr(SRSource.from_module("tiny", counting, 4), test_set, cache)
    assert counting.calls == 2 and first["b"].shape == (1, 3, 24, 28)
    second = run_sr(SRSource.from_module("tiny", counting, 4), test_set, cache)
    assert counting.calls == 2  # no forward: everything came from the cache
    assert all(torch.equal(first[name], second[name]) for name in first)
    with torch.no_grad():
        fresh = counting.net(test_set[0].lr[None]).clamp(0, 1)
    assert (first["a"] - fresh).abs().max() <= 0.5 / 65535 + 1e-6  # 16-bit storage precision
    files = [f for _, _, fs in os.walk(tmp_path / "cache") for f in fs]
    assert len(files) == 2 and all(f.endswith(".safetensors") for f in files)  # no temporary files left over

    with torch.no_grad():
        next(counting.parameters()).add_(0.1)  # new weights: a new key, everything recomputed
    changed = SRSource.from_module("tiny", counting, 4)
    run_sr(changed, test_set, cache)
    assert counting.calls == 4
    run_sr(changed, test_set, cache, tile=4)  # a tiled run is its own entry
    assert counting.calls > 4

    bicubic = load_sr_source("bicubic", 4)
    assert bicubic.cache_key != changed.cache_key
    assert cache.get(bicubic, test_set.name, "a") is None
    outputs = run_sr(load_sr_source("hr", 4), test_set, cache)
    assert torch.equal(outputs["a"], test_set[0].hr[None])
    with pytest.raises(UserError, match="x2 model but hr-x4 is a x4 set"):
        run_sr(load_sr_source("bicubic", 2), test_set, cache)
