"""Every registered backbone loads its pretrained weights through the real loaders at full size, offline: stand-in
weights (random values, tests/stand_in.py) in torchvision's and huggingface_hub's cache layouts.

Slow (about 2.6 GB of stand-in files, written once per session): ``python -m pytest -q -m slow`` runs these, the
default suite leaves them out (``.ci/run`` runs both).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from stand_in import HUB, TORCHVISION, read_json_lines, write_all

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
NAMES = [*TORCHVISION, *HUB]
# (channels per stage, spatial side of each stage at 224x224) of the real networks
SHAPES = {
    "vgg16": ([3, 64, 128, 256, 512, 512], [224, 224, 112, 56, 28, 14]),
    "vgg19": ([3, 64, 128, 256, 512, 512], [224, 224, 112, 56, 28, 14]),
    "alexnet": ([3, 64, 192, 384, 256, 256], [224, 55, 27, 13, 13, 13]),
    "resnet50": ([3, 64, 256, 512, 1024, 2048], [224, 112, 56, 28, 14, 7]),
    "convnext": ([3, 96, 192, 384, 768], [224, 56, 28, 14, 7]),
    "swin-t": ([3, 96, 192, 384, 768], [224, 56, 28, 14, 7]),
    "clip-vit": ([3, 768, 768, 768, 768], [224, 14, 14, 14, 14]),
    "dinov2": ([3, 768, 768, 768, 768], [224, 16, 16, 16, 16]),
}
LOAD_ALL = """
import json, sys, torch
from asym import create_backbone
torch.manual_seed(0)
for name in sys.argv[1:]:
    backbone = create_backbone(name, weights="auto")
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 224, 224))
    state = backbone.model.state_dict()
    print(json.dumps({"name": name, "source": backbone.weights_source, "channels": backbone.channels,
                      "sides": [f.shape[-1] for f in feats], "params": sum(p.numel() for p in backbone.parameters()),
                      "probe": {k: state[k].flatten()[:4].tolist() for k in list(state)[:2]}}), flush=True)
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Each backbone built with ``weights="auto"`` in a fresh process whose TORCH_HOME / HF_HOME hold the stand-ins
    (so the real download code reads them), its records and everything it printed."""
    home = tmp_path_factory.mktemp("stand-in")
    env = {**os.environ, **write_all(home)}
    run = subprocess.run([sys.executable, "-c", LOAD_ALL, *NAMES], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return home, read_json_lines(run.stdout), run.stderr


@pytest.mark.parametrize("name", NAMES)
def test_each_backbone_loads_its_pretrained_weights_at_full_size(loaded, name):
    home, records, _ = loaded
    record = records[name]
    assert record["source"] == "pretrained"  # not the random fallback: the cached file was found and loaded
    assert (record["channels"], record["sides"]) == SHAPES[name]
    if name in HUB:  # the loaded tensors are the snapshot's, not a fresh initialisation
        snapshot = next((home / "hf" / "hub").glob(f"models--{HUB[name].replace('/', '--')}/snapshots/*"))
        stored = load_file(snapshot / "model.safetensors")
        prefix = "vision_model." if name == "clip-vit" else ""  # the tower's keys within the whole CLIP checkpoint
        for key, values in record["probe"].items():
            assert stored[prefix + key].flatten()[:4].tolist() == pytest.approx(values), key
    else:
        import torch
        from stand_in import write_torchvision

        stored = torch.load(write_torchvision(home / "torch", name), weights_only=True)
        for key, values in record["probe"].items():
            assert stored[key].flatten()[:4].tolist() == pytest.approx(values), key


def test_clip_vit_loads_from_the_whole_clip_checkpoint_without_a_key_report(loaded):
    _, records, stderr = loaded
    assert records["clip-vit"]["params"] == pytest.approx(85.8e6, rel=0.01)  # the vision tower alone (ViT-B/16)
    assert "UNEXPECTED" not in stderr and "LOAD REPORT" not in stderr, stderr[-2000:]
    assert json.dumps(records["clip-vit"]["probe"])  # read back above, key by key


LOAD_PYIQA = """
import json, sys
from pathlib import Path
import torch
sys.path.insert(0, "tests")
from stand_in import PYIQA, write_openai_clip, write_pyiqa_checkpoint, write_timm
import pyiqa.archs.clip_model
import asym
home = Path(sys.argv[1])
clip_file = write_openai_clip(home / "torch")
pyiqa.archs.clip_model._download = lambda url, root: str(clip_file)  # the SHA-256 check no stand-in passes
for name in sys.argv[2:]:
    if PYIQA[name][0]:
        write_timm(home / "hf", PYIQA[name][0])
    checkpoint = write_pyiqa_checkpoint(home / "torch", name)
    metric = asym.create_metric(name, "cpu")
    with torch.no_grad():
        score = metric(torch.rand(1, 3, 384, 512, generator=torch.Generator().manual_seed(0)))
    stored = torch.load(checkpoint, weights_only=True)
    stored = stored.get(PYIQA[name][2], stored) if PYIQA[name][2] else stored
    state = metric.model.net.state_dict()
    same = all(torch.equal(state[k], v) for k, v in stored.items() if k in state)
    print(json.dumps({"name": name, "params": sum(v.numel() for v in state.values()), "same": same,
                      "shared": sum(k in state for k in stored), "stored": len(stored),
                      "score": score.tolist(), "kind": metric.kind}), flush=True)
"""


@pytest.fixture(scope="module")
def pyiqa_loaded(tmp_path_factory):
    """Table 1's pyiqa NR scorers (and TOPIQ) built by ``asym.create_metric`` in a fresh process whose caches hold
    stand-ins for their timm / OpenAI CLIP networks and pyiqa's checkpoints, so that pyiqa's own loaders read them
    (LIQE's CLIP file: all but its SHA-256 check, see ``stand_in.write_openai_clip``)."""
    home = tmp_path_factory.mktemp("stand-in-pyiqa")
    env = {**os.environ, "TORCH_HOME": str(home / "torch"), "HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1"}
    names = ["maniqa", "liqe", "topiq_nr"]
    run = subprocess.run([sys.executable, "-c", LOAD_PYIQA, str(home), *names], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return read_json_lines(run.stdout)


@pytest.mark.parametrize("name, params", [("maniqa", 135.7e6), ("liqe", 151.3e6), ("topiq_nr", 45.2e6)])
def test_pyiqa_nr_scorers_load_their_released_checkpoints_at_full_size(pyiqa_loaded, name, params):
    record = pyiqa_loaded[name]
    assert record["kind"] == "nr" and len(record["score"]) == 1
    assert record["shared"] == record["stored"] and record["same"]  # every checkpoint tensor is what was loaded
    assert record["params"] == pytest.approx(params, rel=0.02)


LOAD_VLM = """
import json, math, sys, warnings
from pathlib import Path
import torch
sys.path.insert(0, "tests")
from stand_in import write_vlm
import asym
home = Path(sys.argv[1])
for name in sys.argv[2:]:
    write_vlm(home / "hf", name)
    metric = asym.create_metric(name, "cpu")
    scorer = metric.model
    scorer.max_new_tokens = 4  # a random model never answers: 4 generated tokens show the path runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = metric(torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    shapes = {k: list(v.shape) for k, v in scorer.model.state_dict().items() if "embed_tokens" in k or "lm_head" in k}
    print(json.dumps({"name": name, "params": sum(p.numel() for p in scorer.model.parameters()),
                      "dtype": str(next(scorer.model.parameters()).dtype), "identity": scorer.identity,
                      "shapes": shapes, "score": [None if math.isnan(s) else s for s in score.tolist()]}), flush=True)
    del metric, scorer
"""


@pytest.fixture(scope="module")
def vlm_loaded(tmp_path_factory):
    """Table 1's VLM scorers built by ``asym.create_metric`` in a fresh process from Hub-cache stand-ins at their real
    widths and vocabularies, 2 blocks deep (a 7B model in fp32 does not fit this 24 GB machine)."""
    home = tmp_path_factory.mktemp("stand-in-vlm")
    env = {**os.environ, "HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", LOAD_VLM, str(home), "visualquality-r1", "deqa"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=1800)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return read_json_lines(run.stdout)


@pytest.mark.parametrize("name, vocab, width, params", [("visualquality-r1", 152064, 3584, 1.64e9),
                                                        ("deqa", 32000, 4096, 0.79e9)])  # fmt: skip
def test_vlm_scorers_load_their_real_configuration_through_the_real_path(vlm_loaded, name, vocab, width, params):
    record = vlm_loaded[name]
    assert all(shape == [vocab, width] for shape in record["shapes"].values()) and record["shapes"]
    assert record["params"] == pytest.approx(params, rel=0.05) and record["dtype"] == "torch.float32"  # fp32 on CPU
    assert f"revision {'0' * 40}" in record["identity"]  # the Hub snapshot it was read from, as a 1..100 map records
    assert len(record["score"]) == 1
