"""The study on a real SLURM cluster (marked ``slurm``: `.ci/run` starts a single-node cluster, runs this lane with
``python -m pytest -q -m slurm``, and stops it; skipped where ``sbatch`` is absent): the smoke chain submitted through
``--launcher slurm`` writes the local chain's tables and a second submission submits nothing; a job cancelled mid-run
and submitted again ends with the weights of an uninterrupted run; a failed run cancels its dependents and
``--status`` names it with its log."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from study_fakes import chain, write_fakes

from asym.study.graph import Study
from asym.study.launch import Resources, submit_slurm, wait_slurm
from asym.study.state import DONE, FAILED, PARTIAL, read_record, run_state, slurm_state
from asym.study.status import status_rows, status_table

ROOT = Path(__file__).resolve().parents[1]
NO_SLURM = shutil.which("sbatch") is None
pytestmark = [pytest.mark.slurm, pytest.mark.skipif(NO_SLURM, reason="no SLURM here (sbatch not found)")]
CPU = Resources(gpus_per_run=0, accelerate=False, time_min=30)


def reproduce(*argv, cwd):
    script = [sys.executable, str(ROOT / "scripts" / "reproduce_paper.py"), *argv]
    # one thread on both sides: a job's threads are its CPUs (1 here), and a sum's rounding depends on how many
    # threads split it (2 threads against 1 moved a smoke PSNR by 0.009 dB after two training steps)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(script, cwd=cwd, capture_output=True, text=True, timeout=1800, env=env)


def test_the_smoke_chain_on_slurm_writes_the_local_chains_tables_and_is_submitted_once(tmp_path):
    local = reproduce("--smoke", "--output_dir", "local", cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-3000:]
    slurm = reproduce("--smoke", "--output_dir", "slurm", "--launcher", "slurm", "--gpus_per_run", "0", "--wait",
                      cwd=tmp_path)  # fmt: skip
    assert slurm.returncode == 0, slurm.stdout[-3000:] + slurm.stderr[-3000:]
    assert slurm.stdout.count("submitted as job") == 25 and "after " in slurm.stdout
    for table, key in (("table1/sr_results.json", "score"), ("table4/fr_results.json", "srcc"),
                       ("table3/discriminators.json", "average"), ("fig7/sweep.json", "average")):  # fmt: skip
        a, b = (json.loads((tmp_path / side / table).read_text()) for side in ("local", "slurm"))
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            assert x.get(key) == pytest.approx(y.get(key), rel=1e-6, nan_ok=True), (table, x, y)
    again = reproduce("--smoke", "--output_dir", "slurm", "--launcher", "slurm", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to submit" in again.stdout and "submitted as job" not in again.stdout
    status = reproduce("--smoke", "--output_dir", "slurm", "--status", cwd=tmp_path)
    assert "25 runs: 25 done" in status.stdout


def _wait_for(condition, timeout_s: float = 300, what: str = ""):
    start = time.time()
    while not condition():
        assert time.time() - start < timeout_s, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_a_cancelled_job_submitted_again_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    from safetensors.torch import load_file

    def commands(out):
        return [("train_sr.py", ["--model", "tiny", "--crop_size", "64", "--max_train_steps", "120",
                                 "--checkpointing_steps", "40", "--num_validation_images", "1", "--weights", "random",
                                 "--report_to", "none", "--output_dir", f"{out}/sr"])]  # fmt: skip

    cut, whole = (Study(str(tmp_path / side), commands(tmp_path / side)) for side in ("cut", "whole"))
    submit_slurm(whole, whole.runs, CPU, say=lambda _: None)  # the uninterrupted run, alongside
    (job,) = submit_slurm(cut, cut.runs, CPU, say=lambda _: None).values()
    _wait_for(lambda: (tmp_path / "cut" / "sr" / "checkpoints" / "checkpoint-40").is_dir(), what="a checkpoint")
    subprocess.run(["scancel", job], check=True)
    _wait_for(lambda: slurm_state(job) not in ("RUNNING", "PENDING", "COMPLETING", None), what="the cancel")
    state = run_state(cut.folder, cut.runs[0])
    assert state.state == PARTIAL and 40 <= state.steps_done < 120, state
    assert submit_slurm(cut, cut.runs, CPU, say=lambda _: None)  # the same command: submitted again, resumed
    assert wait_slurm(cut, cut.runs, poll_s=1) == [] and read_record(cut.folder, "sr")["resumed"] is True
    assert wait_slurm(whole, whole.runs, poll_s=1) == []
    a, b = (load_file(str(tmp_path / side / "sr" / "model.safetensors")) for side in ("cut", "whole"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() <= 1e-6, key


def test_a_failed_run_cancels_its_dependents_and_the_status_names_it_with_its_log(tmp_path):
    out, gate = str(tmp_path / "s"), str(tmp_path / "fixed")
    study = Study(out, chain(*write_fakes(str(tmp_path / "scripts")), out, gate=gate))
    jobs = submit_slurm(study, study.runs, CPU, say=lambda _: None)
    assert sorted(wait_slurm(study, study.runs, poll_s=1)) == ["b", "table"]
    _wait_for(lambda: slurm_state(jobs["table"]) == "CANCELLED", what="the dependent's cancellation")
    states = {run.name: run_state(out, run).state for run in study.runs}
    assert states["a"] == states["c"] == DONE and states["b"] == FAILED and states["table"] != DONE
    table = status_table(study, status_rows(study, study.runs))
    assert "| b | failed |" in table and "b failed; the end of its log:" in table and "loss is nan" in table
    open(gate, "w").close()  # fixed: the same submission runs b and table only
    assert sorted(submit_slurm(study, study.runs, CPU, say=lambda _: None)) == ["b", "table"]
    assert wait_slurm(study, study.runs, poll_s=1) == []
