"""scripts/reproduce_paper.py --preflight: every missing source named at once (exit 2, nothing written), the VLM
scorers' Hub files resolved one by one, --download's links, each distinct stage measured (asym.study.preflight: stage
grouping, OOM fallback and its recommended run, what each run validates, saves and calibrates, the table)."""

import fnmatch
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from stand_in import REVISION, VLM_REPOS, _point_main_at, save_qwen25_vl, tiny_tokenizer
from test_pyiqa_datasets import kadid_sources  # noqa: F401 - a fixture: pyiqa's KADID-10k mirror in a Hub cache

from asym.core.errors import UserError
from asym.study.chains import paper_commands
from asym.study.costs import (
    MEASURED_STEPS,
    STAGE_KEYS,
    duration,
    evaluation_sizes,
    measure_stage,
    measurement_argv,
    run_counts,
    stage_key,
    stage_table,
)
from asym.study.preflight import OK, check_requirements, missing_hub_files

ROOT = Path(__file__).resolve().parents[1]

import reproduce_paper  # noqa: E402


def test_an_empty_data_folder_names_all_eight_datasets_at_once_and_writes_nothing(tmp_path):
    out = tmp_path / "runs"
    run = subprocess.run([sys.executable, "scripts/reproduce_paper.py", "--preflight", "--data", str(tmp_path / "d"),
                          "--output_dir", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)  # fmt: skip
    assert run.returncode == 2
    for folder in reproduce_paper.DATASETS:
        assert f"| {tmp_path / 'd' / folder} |" in run.stdout and f"({folder}) | dataset |" in run.stdout
    assert run.stderr.strip().splitlines()[-1].startswith("error: 18 of the study's 18 sources cannot be had")
    assert not out.exists()  # nothing trained, nothing written


def test_speed_flags_reach_every_training_run_and_count_in_its_stage():
    """reproduce_paper.py --speed_flags: every training command gets them (--attention only train_sr.py's SwinIR
    runs); the preflight's stage key reads a switch as a switch and tells a compiled stage from an eager one."""
    from asym.core.errors import UserError
    from asym.study.chains import with_speed_flags

    commands = paper_commands("data", "runs")
    fast = with_speed_flags(commands, ["--compile", "--channels_last", "--attention", "sdpa"])
    for (script, argv), (_, sped) in zip(commands, fast, strict=True):
        trains = script != "evaluate.py"
        assert ("--compile" in sped and "--channels_last" in sped) == trains
        assert ("--attention" in sped) == (script == "train_sr.py")  # the paper's generator is SwinIR throughout
        if trains:
            assert stage_key(script, sped) != stage_key(script, argv)
            assert dict(stage_key(script, sped)[1])["--compile"] is True
    assert dict(stage_key("train_sr.py", ["--use_ema", "--loss", "rec"])[1]) == {"--use_ema": True, "--loss": "rec"}
    stage1 = next(a for s, a in fast if s == "train_sr.py" and "--init_generator" not in a)
    measured = measurement_argv("train_sr.py", stage1, {}, "tmp/x")  # the command the preflight times
    assert measured[measured.index("--attention") + 1] == "sdpa" and {"--compile", "--channels_last"} <= set(measured)
    switch = ["--use_ema", "--loss", "rec"]
    assert measurement_argv("train_sr.py", switch, {}, "t")[:3] == switch
    with pytest.raises(UserError, match="'--lr' is not a speed option"):
        with_speed_flags(commands, ["--lr", "1"])


def test_stages_group_runs_of_the_same_cost_and_stand_in_what_earlier_links_write():
    commands = paper_commands("data", "runs")
    producers = {dict(zip(a[::2], a[1::2])).get("--output_dir"): a for _, a in commands}
    keys = {stage_key(s, a) for s, a in commands if s != "evaluate.py"}
    trained = [a for s, a in commands if s != "evaluate.py"]
    # 6 metrics + stage 1 + 24 stage-2 runs + Table 3's 5 GAN runs (vanilla VGG-16 is a stage-2 run; the sweep points
    # cost what their patch runs cost) + Table 2's FR metric on dinov2 (on vgg16 / resnet50 it costs what Table 4's
    # does, whatever the start) + 6 NR models
    assert len(trained) == 69 and len(keys) == 43
    stage2 = next(a for s, a in commands if "runs/sr-clip-vit-per" in a)
    measured = measurement_argv("train_sr.py", stage2, producers, "tmp/x")
    given = dict(zip(measured[::2], measured[1::2]))
    assert given["--per_backbone"] == "clip-vit" and "--per_metric" not in given and "--init_generator" not in given
    assert (given["--weights"], given["--disc_weights"], given["--output_dir"]) == ("random", "random", "tmp/x")
    assert given["--train_data_dir"] == "data/DIV2K_train_HR" and "--validation_data_dir" not in given
    assert given["--checkpointing_steps"] == str(MEASURED_STEPS)  # one save after the last step: timed, not a step


def test_the_paper_chain_validates_28236_times_over_100_whole_images_each():
    """The counts come from each command's own arguments: train_sr.py validates every --validation_steps (500) and
    once at the end, over every image of DIV2K_valid_HR (100), and saves every --checkpointing_steps (500)."""
    runs = [(s, importlib.import_module(s.removesuffix(".py")).parse_args(a))
            for s, a in paper_commands("data", "runs") if s == "train_sr.py"]  # fmt: skip
    counts = [run_counts(script, parsed, (100, 0)) for script, parsed in runs]
    # stage 1 (100K steps) and 24 + 5 + 6 runs of 400K: 201 + 35 x 801 validations, 200 + 35 x 800 checkpoints
    assert sum(c["validations"] for c in counts) == 28236 and sum(c["checkpoints"] for c in counts) == 28200
    assert sum(c["validation_images"] for c in counts) == 2823600


def test_out_of_memory_halves_the_batch_until_a_step_fits_and_the_eta_is_of_the_recommended_run():
    tried = []

    def run(batch):
        tried.append(batch)
        if batch > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return [{"perf/step_seconds": s} for s in (9.0, 2.0, 2.5, 3.0)], 1000

    row = measure_stage({**dict.fromkeys(STAGE_KEYS), "steps": 3600}, run, 32, "cpu")
    assert tried == [32, 16, 8]
    # the recommended run: batch 8, 4 accumulated batches per step (32 samples, as configured): 4 x 2.5 s a step
    assert row["seconds_per_step"] == 2.5 and row["eta_seconds"] == 3600 * 4 * 2.5 and row["gpu_hours"] == 10
    assert row["recommended"] == "--train_batch_size 8 --gradient_accumulation_steps 4" and row["params"] == 1000
    assert row["status"].startswith("out of memory at --train_batch_size 32: run it with --train_batch_size 8 "
                                    "--gradient_accumulation_steps 4 (32 samples a step")  # fmt: skip
    assert row["eta_includes"] == "3,600 steps x 4 accumulated batches of 8 10.0 h"
    table = stage_table([{**row, "stage": "s", "runs": 2}])
    assert "| s | 2 | 0.0 M |" in table and "| 2.500 | 3600 | 10.0 h | 3,600 steps x 4" in table
    assert "Total: 10.00 device-hours" in table
    assert (duration(59), duration(600), duration(3 * 86400)) == ("59 s", "10.0 min", "3.0 days")
    tried.clear()  # a batch that halves unevenly: the smaller batches divide it, so the samples stay the same
    row = measure_stage({**dict.fromkeys(STAGE_KEYS), "steps": 100}, run, 50, "cpu")
    assert tried == [50, 25, 10, 5] and row["gradient_accumulation_steps"] == 10
    assert row["eta_seconds"] == 100 * 10 * 2.5


@pytest.mark.parametrize("script, argv", [
    ("train_sr.py", ["--model", "tiny", "--crop_size", "32", "--train_batch_size", "2", "--num_validation_images", "1",
                     "--loss", "rec"]),
    ("train_metric.py", ["--backbone", "timm:resnet10t", "--crop_size", "32", "--train_batch_size", "4",
                         "--max_eval_samples", "5"]),
    ("train_iqa.py", ["--mode", "nr", "--backbone", "timm:resnet10t", "--crop_size", "32", "--train_batch_size", "4",
                      "--max_eval_samples", "5"]),
])  # fmt: skip
@pytest.mark.filterwarnings("ignore::asym.metrics.agreement.FitWarning")  # random weights: scores barely vary
def test_run_counts_are_the_validations_and_checkpoints_a_run_makes(script, argv, tmp_path, monkeypatch, one_thread,
                                                                     fresh_accelerate_state):  # fmt: skip
    """A real run on builtin (5 steps, validation and checkpoints every 2): its evaluate and save_checkpoint calls
    counted as they happen, against what run_counts reads from the same arguments."""
    argv = [*argv, "--weights", "random", "--report_to", "none", "--max_train_steps", "5", "--validation_steps", "2",
            "--checkpointing_steps", "2", "--output_dir", str(tmp_path)]  # fmt: skip
    module = importlib.import_module(script.removesuffix(".py"))
    scored, saved = [], []
    evaluate, save = module.evaluate, module.save_checkpoint
    monkeypatch.setattr(module, "evaluate", lambda *a, **k: scored.append(len(a[1])) or evaluate(*a, **k))
    monkeypatch.setattr(module, "save_checkpoint", lambda *a, **k: saved.append(a[2]) or save(*a, **k))
    parsed = module.parse_args(argv)
    module.main(module.parse_args(argv))
    counts = run_counts(script, parsed, evaluation_sizes(script, parsed, str(tmp_path)))
    assert counts == {"steps": 5, "validations": len(scored), "validation_images": sum(scored), "checkpoints": 2}
    assert saved == [2, 4]


def test_the_eta_holds_validations_checkpoints_and_calibration_and_scorers_run_on_one_device(tmp_path, monkeypatch,
                                                                                              capsys):  # fmt: skip
    """Two runs of one tiny SR stage and a calibrated evaluate.py sr, preflighted as on 4 GPUs (on CPU here): the
    stage's ETA adds its validation images and checkpoint saves, measured once, counted per run from the arguments;
    each NR scorer's adds the calibration set (builtin: 160 images); evaluate.py runs as one process."""
    out = tmp_path / "runs"
    sr = ["--model", "tiny", "--crop_size", "32", "--train_batch_size", "2", "--num_validation_images", "1", "--loss",
          "rec", "--weights", "random", "--report_to", "none", "--validation_steps", "100", "--checkpointing_steps",
          "300"]  # fmt: skip
    commands = [("train_sr.py", [*sr, "--max_train_steps", "1000", "--output_dir", f"{out}/sr"]),
                ("train_sr.py", [*sr, "--max_train_steps", "500", "--output_dir", f"{out}/sr-again"]),
                ("evaluate.py", ["sr", "--models", f"{out}/sr,{out}/sr-again,bicubic", "--metrics", "psnr,piqe",
                                 "--datasets", "builtin", "--max_images", "2", "--calibration_dataset", "builtin",
                                 "--output_dir", f"{out}/table1"])]  # fmt: skip
    monkeypatch.setattr(reproduce_paper, "requirements", lambda *args: [])
    monkeypatch.setattr(reproduce_paper, "training_processes", lambda: 4)  # not torch's count: Accelerate reads it
    args = reproduce_paper.parse_args(["--smoke", "--preflight"])
    rows = {row["stage"]: row for row in reproduce_paper.preflight(args, commands, str(out))}
    sr, piqe, psnr = rows["sr"], rows["score piqe"], rows["score psnr"]
    assert (sr["runs"], sr["steps"], sr.get("checkpoints")) == (2, 1500, 3 + 1)
    assert sr.get("validations") == 11 + 6 and sr.get("validation_images") == 17  # one held-out image each
    assert sr.get("seconds_per_validation_image") > 0 and sr.get("seconds_per_checkpoint") > 0
    expected = (sr["seconds_per_step"] * 1500 + sr["seconds_per_validation_image"] * 17
                + sr["seconds_per_checkpoint"] * 4)  # fmt: skip
    assert sr["eta_seconds"] == pytest.approx(expected, rel=1e-12) and sr["gpu_hours"] == pytest.approx(expected / 900)
    assert (piqe.get("calibration_images"), psnr.get("calibration_images")) == (160, 0)  # FR scorers are not mapped
    expected = piqe["seconds_per_step"] * 6 + piqe["seconds_per_calibration_image"] * 160  # 3 models x 2 images
    assert piqe["eta_seconds"] == pytest.approx(expected, rel=1e-12)
    assert piqe["gpu_hours"] == pytest.approx(expected / 3600) and psnr["processes"] == 1  # one device, not 4
    printed = capsys.readouterr().out
    assert "| ETA | ETA includes | status |" in printed and "1,500 steps " in printed
    assert " + 17 validations (17 images) " in printed and " + 4 checkpoint saves " in printed
    assert "6 images " in printed and " + calibration (160 images) " in printed
    record = json.loads((out / "preflight.json").read_text())
    parts = record["total_gpu_hours_by_part"]
    assert set(parts) == {"steps", "validation", "checkpoints", "calibration"}
    assert record["total_gpu_hours"] == pytest.approx(sum(parts.values()), rel=1e-12)
    assert record["eta_includes"].startswith("steps ") and "left out: the other evaluate.py" in printed
    assert all(row["eta_includes"] for row in record["stages"])


def _hub_files(hub: Path, repo: str, files: dict[str, str]) -> Path:
    """``files`` (name: text) as the cached snapshot of Hub model ``repo`` that refs/main names."""
    root = hub / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (snapshot / name).write_text(text)
    _point_main_at(root)
    return snapshot


def _vlm_statuses() -> dict[str, str]:
    """The two VLM scorers' preflight statuses (their requirements alone, as the paper preflight checks them)."""
    vlms = [r for r in reproduce_paper.requirements("data", False) if r.name in VLM_REPOS]
    return {row["name"]: row["status"] for row in check_requirements(vlms)}


def test_a_vlm_snapshot_of_config_json_alone_is_missing_its_weights_tokenizer_and_processor(tmp_path, monkeypatch):
    """What `snapshot_download(repo, allow_patterns=["config.json"])` leaves: the real run found both unavailable."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    for repo in VLM_REPOS.values():
        _hub_files(tmp_path / "hub", repo, {"config.json": "{}"})
    statuses = _vlm_statuses()
    for name, status in statuses.items():
        assert status.startswith("missing: the weights (model.safetensors, or model.safetensors.index.json"), name
        assert "a tokenizer (tokenizer.json or tokenizer.model" in status and "preprocessor_config.json" in status
    assert "a chat template" in statuses["visualquality-r1"] and "chat template" not in statuses["deqa"]


def test_every_shard_its_index_names_must_resolve_and_a_saved_model_does(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    repo, shards = VLM_REPOS["deqa"], ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = json.dumps({"weight_map": {"a.weight": shards[0], "b.weight": shards[1]}})
    snapshot = _hub_files(tmp_path / "hub", repo, {"config.json": "{}", "model.safetensors.index.json": index,
                                                   shards[0]: "", "tokenizer.model": "", "tokenizer_config.json": "{}",
                                                   "preprocessor_config.json": "{}"})  # fmt: skip
    assert missing_hub_files(repo) == [shards[1]]
    assert missing_hub_files(repo, listing=["special_tokens_map.json"]) == ["special_tokens_map.json", shards[1]]
    (snapshot / shards[1]).write_text("")
    assert missing_hub_files(repo) == [] and _vlm_statuses()["deqa"] == OK
    # VisualQuality-R1's layout as transformers saves a Qwen2.5-VL and its processor (tiny: the same files)
    repo = VLM_REPOS["visualquality-r1"]
    text = dict(vocab_size=len(tiny_tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=4, num_key_value_heads=2,
                rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]})  # fmt: skip
    vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32,
                  fullatt_block_indexes=[0])  # fmt: skip
    snapshot = _hub_files(tmp_path / "hub", repo, {})
    save_qwen25_vl(snapshot, text, vision)
    assert missing_hub_files(repo, chat_template=True) == []
    os.remove(snapshot / "model.safetensors")
    assert _vlm_statuses()["visualquality-r1"].startswith("missing: the weights (model.safetensors")


def test_download_fetches_every_file_the_vlm_loads_not_only_its_config(tmp_path, monkeypatch):
    """--download with the Hub reachable (a stand-in Hub here): the repo's file list says what to fetch, all but
    its README and pictures (and the weights of the other format), and then the scorer is ok."""
    hub, asked = tmp_path / "hub", []
    listing = ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
               "model-00002-of-00002.safetensors", "pytorch_model.bin", "tokenizer.json", "tokenizer_config.json",
               "vocab.json", "merges.txt", "preprocessor_config.json", "chat_template.json", "README.md",
               "figure.png"]  # fmt: skip
    index = json.dumps({"weight_map": {"a": listing[2], "b": listing[3]}})

    def snapshot_download(repo, allow_patterns=None, **kwargs):
        asked.append(allow_patterns)
        fetched = [f for f in listing if any(fnmatch.fnmatch(f, p) for p in allow_patterns or ["*"])]
        return str(_hub_files(hub, repo, {f: index if f.endswith("index.json") else "{}" for f in fetched}))

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    monkeypatch.setattr("huggingface_hub.list_repo_files", lambda repo, **kwargs: listing)
    monkeypatch.setattr("asym.core.offline.hub_reachable", lambda: True)
    for name in ("DATASETS", "GAN_BACKBONES"):  # the VLM scorers alone: no dataset, no backbone, nothing to measure
        monkeypatch.setattr(reproduce_paper, name, type(getattr(reproduce_paper, name))())
    monkeypatch.setattr(reproduce_paper, "METRIC_BACKBONES", ("vgg16-r",))  # evaluated only: no pretrained weights
    monkeypatch.setattr(reproduce_paper, "NR_METRICS", "visualquality-r1")
    argv = ["--preflight", "--download", "--data", str(tmp_path / "d"), "--output_dir", str(tmp_path / "out")]
    args = reproduce_paper.parse_args(argv)
    reproduce_paper.preflight(args, [], args.output_dir)
    snapshot = hub / f"models--{VLM_REPOS['visualquality-r1'].replace('/', '--')}" / "snapshots" / REVISION
    assert sorted(os.listdir(snapshot)) == sorted(set(listing) - {"README.md", "figure.png", "pytorch_model.bin"})
    assert len(asked) == 1 and "*.safetensors" in asked[0]
    record = json.loads((tmp_path / "out" / "preflight.json").read_text())
    assert [(s["name"], s["status"]) for s in record["sources"]] == [("visualquality-r1", OK)]


@pytest.mark.usefixtures("kadid_sources")
def test_download_links_by_absolute_path_and_replaces_only_its_own_dangling_links(tmp_path, monkeypatch):
    """A relative $ASYM_CACHE (the datasets' folder as a relative path, whatever the cache makes of it): the link into
    --data must still resolve; a dangling link an earlier --download made (relative, as before this fix) is made
    again, someone else's is a one-line error naming it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASYM_CACHE", "asym-cache")
    relative = os.path.join("asym-cache", "datasets", "pyiqa")
    monkeypatch.setattr("asym.iqa.data.pyiqa_datasets.pyiqa_dataset_root", lambda: relative)
    link = Path("d") / "kadid10k"
    reproduce_paper.download_datasets("d")
    assert link.is_symlink() and os.path.isabs(os.readlink(link)) and (link / "images").is_dir()
    os.remove(link)
    os.symlink(os.path.join("asym-cache", "datasets", "pyiqa", "kadid10k"), link)  # what the previous version made
    assert not link.exists()
    reproduce_paper.download_datasets("d")
    assert os.readlink(link) == str(tmp_path / "asym-cache" / "datasets" / "pyiqa" / "kadid10k") and link.exists()
    os.remove(link)
    os.symlink(str(tmp_path / "elsewhere" / "kadid10k"), link)
    dangling = f"^d/kadid10k is a link to {tmp_path}/elsewhere/kadid10k, which does not exist: remove it \\(rm d/"
    with pytest.raises(UserError, match=dangling):
        reproduce_paper.download_datasets("d")
    assert os.readlink(link) == str(tmp_path / "elsewhere" / "kadid10k")  # left as it was


@pytest.mark.slow
def test_the_smoke_chain_is_measured_stage_by_stage(tmp_path):
    run = subprocess.run([sys.executable, "scripts/reproduce_paper.py", "--smoke", "--preflight", "--output_dir",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads((tmp_path / "preflight.json").read_text())
    stages = {row["stage"]: row for row in record["stages"]}
    assert stages.pop("score maniqa")["status"].startswith("unavailable: ")  # no weights offline: said, not fatal
    # Table 1's vanilla VGG-16 run alone; the sweep's two points cost what Table 3's patch-level VGG-16 run costs
    assert len(stages) == 16 and stages["sr-vgg16-rec+per+adv"]["runs"] == 1 and stages["gan-patch-vgg16"]["runs"] == 3
    assert stages["score piqe"]["steps"] == (9 + 5 + 3) * 2  # Table 1's 9 sources, Table 3's 5, the sweep's 3; 2 images
    for name, row in stages.items():
        assert set(STAGE_KEYS) <= set(row) and row["status"].startswith(OK), name
        assert row["peak_memory_bytes"] > 2**20 and (row["params"] > 0 or name.startswith("score"))
        if name != "metric-vgg16-r":  # trains no step: evaluated only
            assert row["seconds_per_step"] > 0 and row["eta_seconds"] > 0
    assert stages["sr-vgg16-per+adv"]["params"] > stages["sr-vgg16-per"]["params"]  # its discriminator is saved too
    for name, row in stages.items():  # what each ETA holds: every run validates; a stage that trains saved a checkpoint
        if not name.startswith("score"):
            assert row["validations"] >= row["runs"] and row["seconds_per_validation_image"] > 0, name
            if row["steps"]:  # one checkpoint measured after the last step; the smoke runs' 2-3 steps save none
                assert row["seconds_per_checkpoint"] > 0 and row["checkpoints"] == 0, name
    assert stages["metric-vgg16-r"]["steps"] == 0  # trains none: its alpha/beta stay random
    # piqe fits its 1..100 map on builtin's 160 images once (Table 1; Table 3 and the sweep reuse it); psnr: FR, no map
    assert stages["score piqe"]["calibration_images"] == 160 and stages["score piqe"]["seconds_per_calibration_image"]
    assert stages["score psnr"]["calibration_images"] == 0 and "calibration" not in stages["score psnr"]["eta_parts"]
    assert "| stage | runs | params | peak memory |" in run.stdout and record["total_gpu_hours"] > 0
    assert "for the stages measured: steps " in run.stdout and "left out: " in record["eta_includes"]
