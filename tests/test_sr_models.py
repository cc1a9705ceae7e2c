import warnings

import pytest
import torch

from asym.sr.models import GENERATORS, SRModel, build_generator, load_generator, quiet_swinir_meshgrid


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("model", ["tiny", "rrdb"])
def test_generators_upscale_odd_sizes(model, scale):
    generator = SRModel(model, scale)
    with torch.no_grad():
        out = generator(torch.rand(1, 3, 11, 13))
    assert out.shape == (1, 3, 11 * scale, 13 * scale)


TORCH_MESHGRID_WARNING = (
    "torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument. "
    "(Triggered internally at /pytorch/aten/src/ATen/native/TensorShape.cpp:4221.)"
)


def test_paper_configurations_are_the_swinir_release_ones():
    assert GENERATORS["swinir"]["embed_dim"] == 180 and GENERATORS["swinir"]["depths"] == [6] * 6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        light = build_generator("swinir-light", 4)
    assert 0.9e6 < sum(p.numel() for p in light.parameters()) < 0.95e6  # SwinIR-light x4 has ~0.93M
    # SwinIR's torch.meshgrid deprecation warning is not shown (torch warns once per process: the first build's)...
    assert not [w for w in caught if "meshgrid" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_swinir_meshgrid():
            warnings.warn(TORCH_MESHGRID_WARNING, UserWarning, stacklevel=1)
            warnings.warn("a warning of something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning of something else"]  # ...and nothing else is hidden


def test_official_release_checkpoint_loads_through_spandrel(tmp_path):
    release = SRModel("swinir-light", 4).eval()
    torch.save({"params": release.net.state_dict()}, tmp_path / "002_lightweightSR_x4.pth")  # release layout
    loaded = load_generator(str(tmp_path / "002_lightweightSR_x4.pth"), "swinir-light", 4).eval()
    lr = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr), release(lr), atol=0, rtol=0)
    with pytest.raises(ValueError, match="does not fit --model swinir-light --scale 2"):
        load_generator(str(tmp_path / "002_lightweightSR_x4.pth"), "swinir-light", 2)


def test_tiny_starts_as_bicubic_upsampling_and_loads_its_own_state_dict(tmp_path):
    """The untrained ``tiny`` is PyTorch's bicubic up-sampling (computed here directly), to float32 rounding."""
    lr = torch.rand(2, 3, 11, 13)
    for scale in (2, 3, 4):
        with torch.no_grad():
            out = SRModel("tiny", scale)(lr)
        expected = torch.nn.functional.interpolate(lr.double(), scale_factor=scale, mode="bicubic", align_corners=False)
        torch.testing.assert_close(out.double(), expected, atol=1e-6, rtol=0)
    trained = SRModel("tiny", 4)
    torch.nn.init.normal_(trained.net.tail.weight, std=0.01)  # as if trained: no longer bicubic
    torch.save({"params": trained.net.state_dict()}, tmp_path / "tiny.pth")  # BasicSR's wrapper key
    loaded = load_generator(str(tmp_path / "tiny.pth"), "tiny", 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr), trained(lr), atol=0, rtol=0)
        assert (loaded(lr) - SRModel("tiny", 4)(lr)).abs().max() > 1e-4


def test_saved_model_must_match_the_requested_configuration(tmp_path):
    SRModel("tiny", 2).save_pretrained(tmp_path)
    assert load_generator(str(tmp_path), "tiny", 2).scale == 2
    with pytest.raises(ValueError, match="tiny x2 model, not --model tiny --scale 4"):
        load_generator(str(tmp_path), "tiny", 4)


@pytest.mark.parametrize("model, scale, match", [("edsr", 4, "unknown generator 'edsr'"), ("tiny", 8, "x8")])
def test_bad_generator_requests(model, scale, match):
    with pytest.raises(ValueError, match=match):
        build_generator(model, scale)
