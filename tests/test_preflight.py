"""scripts/reproduce_paper.py --preflight: every missing source named at once (exit 2, nothing written), each
distinct stage measured (asym.preflight: stage grouping, OOM fallback, the table)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asym.preflight import OK, STAGE_KEYS, duration, measure_stage, measurement_argv, stage_key, stage_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

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


def test_stages_group_runs_of_the_same_cost_and_stand_in_what_earlier_links_write():
    commands = reproduce_paper.paper_commands("data", "runs")
    producers = {dict(zip(a[::2], a[1::2])).get("--output_dir"): a for _, a in commands}
    keys = {stage_key(s, a) for s, a in commands if s != "evaluate.py"}
    trained = [a for s, a in commands if s != "evaluate.py"]
    # 6 metrics + stage 1 + 24 stage-2 runs + 3 GAN runs (their sweep points cost the same) + Table 2's FR metric
    # on dinov2 (on vgg16 / resnet50 it costs what Table 4's does, whatever the start) + 6 NR models
    assert len(trained) == 70 and len(keys) == 41
    stage2 = next(a for s, a in commands if "runs/sr-clip-vit-per" in a)
    measured = measurement_argv("train_sr.py", stage2, producers, "tmp/x")
    given = dict(zip(measured[::2], measured[1::2]))
    assert given["--per_backbone"] == "clip-vit" and "--per_metric" not in given and "--init_generator" not in given
    assert (given["--weights"], given["--disc_weights"], given["--output_dir"]) == ("random", "random", "tmp/x")
    assert given["--train_data_dir"] == "data/DIV2K_train_HR" and "--validation_data_dir" not in given


def test_out_of_memory_halves_the_batch_until_a_step_fits():
    tried = []

    def run(batch):
        tried.append(batch)
        if batch > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return [{"perf/step_seconds": s} for s in (9.0, 2.0, 2.5, 3.0)], 1000

    row = measure_stage({**dict.fromkeys(STAGE_KEYS), "steps": 3600}, run, 32, "cpu")
    assert tried == [32, 16, 8]
    assert row["seconds_per_step"] == 2.5 and row["eta_seconds"] == 9000 and row["gpu_hours"] == 2.5
    assert row["status"].startswith("out of memory at --train_batch_size 32: fits at 8")
    assert "--gradient_accumulation_steps 4" in row["status"] and row["params"] == 1000
    table = stage_table([{**row, "stage": "s", "runs": 2}])
    assert "| s | 2 | 0.0 M |" in table and "| 2.500 | 3600 | 2.5 h |" in table and "Total: 2.50 device-hours" in table
    assert (duration(59), duration(600), duration(3 * 86400)) == ("59 s", "10.0 min", "3.0 days")


@pytest.mark.slow
def test_the_smoke_chain_is_measured_stage_by_stage(tmp_path):
    run = subprocess.run([sys.executable, "scripts/reproduce_paper.py", "--smoke", "--preflight", "--output_dir",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads((tmp_path / "preflight.json").read_text())
    stages = {row["stage"]: row for row in record["stages"]}
    assert stages.pop("score maniqa")["status"].startswith("unavailable: ")  # no weights offline: said, not fatal
    assert len(stages) == 13 and stages["sr-vgg16-rec+per+adv"]["runs"] == 3  # with the two sweep points
    assert stages["score piqe"]["steps"] == 9 * 2 + 2 * 2  # Table 1's 9 sources and the sweep's 2, 2 images each
    for name, row in stages.items():
        assert set(STAGE_KEYS) <= set(row) and row["status"].startswith(OK), name
        assert row["peak_memory_bytes"] > 2**20 and (row["params"] > 0 or name.startswith("score"))
        if name != "metric-vgg16-r":  # trains no step: evaluated only
            assert row["seconds_per_step"] > 0 and row["eta_seconds"] > 0
    assert stages["sr-vgg16-per+adv"]["params"] > stages["sr-vgg16-per"]["params"]  # its discriminator is saved too
    assert "| stage | runs | params | peak memory |" in run.stdout and record["total_gpu_hours"] > 0
