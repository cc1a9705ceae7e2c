"""EnhanceNet (asym.sr.enhancenet): shapes, the bicubic skip, the architecture as described, save / load."""

import pytest
import torch
import torch.nn.functional as F

from asym import SRModel
from asym.sr.enhancenet import EnhanceNet


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shapes_and_zero_residual_is_exactly_bicubic(scale):
    torch.manual_seed(0)
    net = EnhanceNet(scale)
    lr = torch.rand(2, 3, 11, 13)
    assert net(lr).shape == (2, 3, 11 * scale, 13 * scale)
    torch.nn.init.zeros_(net.tail.weight)
    torch.nn.init.zeros_(net.tail.bias)
    bicubic = F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)
    assert torch.equal(net(lr), bicubic)  # residual path exactly 0: the output is the bicubic image itself


def test_architecture_as_the_paper_describes_it():
    net = EnhanceNet(4)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) for c in convs)
    # head + 10 blocks x 2 + 2 up-sampling stages + 1 + tail
    assert len(convs) == 1 + 20 + 2 + 1 + 1 and len(net.blocks) == 10
    assert [c.out_channels for c in convs[:-1]] == [64] * 24 and convs[-1].out_channels == 3
    # a residual block is conv-ReLU-conv plus the identity
    block, x = net.blocks[0], torch.randn(1, 64, 5, 5)
    assert torch.allclose(block(x), x + block.conv2(torch.relu(block.conv1(x))))


def test_srmodel_registry_save_and_load(tmp_path):
    torch.manual_seed(1)
    model = SRModel("enhancenet", 4, card={"--loss": "mse+feat+texture"})
    model.save_pretrained(tmp_path)
    again = SRModel.from_pretrained(str(tmp_path))
    lr = torch.rand(1, 3, 8, 8)
    assert again.model_name == "enhancenet" and torch.equal(model(lr), again(lr))


def test_init_generator_from_a_state_dict_file(tmp_path):
    from safetensors.torch import save_file

    from asym.core.errors import UserError
    from asym.sr.models import load_generator

    torch.manual_seed(2)
    model = SRModel("enhancenet", 4)
    save_file(model.net.state_dict(), str(tmp_path / "enhancenet.safetensors"))
    loaded = load_generator(str(tmp_path / "enhancenet.safetensors"), "enhancenet", 4)
    lr = torch.rand(1, 3, 6, 6)
    assert torch.equal(loaded(lr), model(lr))
    torch.save({"params": model.net.state_dict()}, tmp_path / "basicsr.pth")  # BasicSR's wrapper
    assert torch.equal(load_generator(str(tmp_path / "basicsr.pth"), "enhancenet", 4)(lr), model(lr))
    with pytest.raises(UserError, match="does not fit --model enhancenet --scale 2"):
        load_generator(str(tmp_path / "enhancenet.safetensors"), "enhancenet", 2)
