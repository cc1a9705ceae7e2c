import pytest
import torch

from asym.models import GENERATORS, SRModel, build_generator, load_generator


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("model", ["tiny", "rrdb"])
def test_generators_upscale_odd_sizes(model, scale):
    generator = SRModel(model, scale)
    with torch.no_grad():
        out = generator(torch.rand(1, 3, 11, 13))
    assert out.shape == (1, 3, 11 * scale, 13 * scale)


def test_paper_configurations_are_the_swinir_release_ones():
    assert GENERATORS["swinir"]["embed_dim"] == 180 and GENERATORS["swinir"]["depths"] == [6] * 6
    light = build_generator("swinir-light", 4)
    assert 0.9e6 < sum(p.numel() for p in light.parameters()) < 0.95e6  # SwinIR-light x4 has ~0.93M


def test_official_release_checkpoint_loads_through_spandrel(tmp_path):
    release = SRModel("tiny", 4)
    torch.save({"params": release.net.state_dict()}, tmp_path / "001_SwinIR_tiny_x4.pth")  # release layout
    loaded = load_generator(str(tmp_path / "001_SwinIR_tiny_x4.pth"), "tiny", 4)
    lr = torch.rand(1, 3, 12, 12)
    torch.testing.assert_close(loaded(lr), release(lr), atol=0, rtol=0)
    with pytest.raises(ValueError, match="does not fit --model tiny --scale 2"):
        load_generator(str(tmp_path / "001_SwinIR_tiny_x4.pth"), "tiny", 2)


def test_saved_model_must_match_the_requested_configuration(tmp_path):
    SRModel("tiny", 2).save_pretrained(tmp_path)
    assert load_generator(str(tmp_path), "tiny", 2).scale == 2
    with pytest.raises(ValueError, match="tiny x2 model, not --model tiny --scale 4"):
        load_generator(str(tmp_path), "tiny", 4)


@pytest.mark.parametrize("model, scale, match", [("edsr", 4, "unknown generator 'edsr'"), ("tiny", 8, "x8")])
def test_bad_generator_requests(model, scale, match):
    with pytest.raises(ValueError, match=match):
        build_generator(model, scale)
