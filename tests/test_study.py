"""asym.study: the study as a graph of runs (dependencies from the arguments, cycles, missing producers, the paper's
chain checked against the paper), and launching it resumably: skip when done, resume when partial (equal to an
uninterrupted run), a failure stops its dependents, a changed run stops the launch, SLURM submissions depend
``afterok`` and a second submission submits nothing, ``--status`` on a half-finished study. The launchers run
stand-in scripts (tests/study_fakes.py) in this process, as submitit local jobs, or through a recording executor;
the real SLURM cluster is tests/test_slurm.py's."""

import json
import os
import runpy
import shutil
import sys

import pytest
from study_fakes import chain, write_fakes

import asym.study.launch as launch
from asym.core.errors import UserError
from asym.study.chains import GAN_BACKBONES, paper_commands, smoke_commands
from asym.study.graph import Study
from asym.study.launch import Resources, plan, run_inline, run_local, submit_slurm
from asym.study.state import DONE, FAILED, NOT_STARTED, PARTIAL, read_record, record_path, run_state, write_record
from asym.study.status import status_rows, status_table

PLAIN = Resources(accelerate=False)  # the stand-ins run as `python script`


@pytest.fixture
def fakes(tmp_path):
    return write_fakes(str(tmp_path / "scripts"))


@pytest.fixture
def in_process(monkeypatch):
    """The inline launcher runs a stand-in script in this process (as it runs asym's scripts' main)."""

    def run(script, argv):
        monkeypatch.setattr(sys, "argv", [script, *argv])
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise

    monkeypatch.setattr(launch, "run_in_process", run)


def model(folder) -> int:
    return int(open(os.path.join(folder, "model.safetensors")).read())


# ------------------------------------------------------------------------------------------------------------ graph
def test_the_graph_comes_from_the_arguments(tmp_path):
    out = str(tmp_path / "s")
    study = Study(out, [("evaluate.py", ["sr", "--models", f"{out}/b,bicubic", "--normalisation",
                                         f"{out}/a/normalisation.json", "--output_dir", f"{out}/t"]),
                        ("train_iqa.py", ["--weights", f"gan:{out}/a", "--output_dir", f"{out}/b"]),
                        ("train_sr.py", ["--output_dir", f"{out}/a", "--train_data_dir", "data/DIV2K"])])  # fmt: skip
    assert [run.name for run in study.runs] == ["a", "b", "t"]  # each after what it reads
    assert study.by_name["t"].reads == ("b", "a") and study.by_name["b"].reads == ("a",)
    assert study.by_name["a"].reads == ()  # data outside the study is the preflight's
    assert study.dependents("a") == ["b", "t"] and study.needs(["t"]) == ["a", "b", "t"]
    assert [run.name for run in study.select(["b"])] == ["a", "b"]
    with pytest.raises(UserError, match=r"--only 'x\*' matches no run"):
        study.select(["x*"])
    with pytest.raises(UserError, match=r"run t reads .*/s/missing, which no run of the study writes"):
        Study(out, [("evaluate.py", ["sr", "--models", f"{out}/missing", "--output_dir", f"{out}/t"])])
    with pytest.raises(UserError, match="cycle: a -> b"):
        Study(out, [("train_sr.py", ["--init_generator", f"{out}/b", "--output_dir", f"{out}/a"]),
                    ("train_sr.py", ["--init_generator", f"{out}/a", "--output_dir", f"{out}/b"])])  # fmt: skip
    with pytest.raises(UserError, match="two runs of the study write"):
        Study(out, [("train_sr.py", ["--output_dir", f"{out}/a"])] * 2)


def _flags(run) -> dict:
    return dict(zip(run.args[::2], run.args[1::2]))


@pytest.mark.parametrize("smoke", [False, True])
def test_the_chain_is_the_papers_and_trains_nothing_twice(smoke):
    out = "runs/x"
    study = Study(out, smoke_commands(out) if smoke else paper_commands("data", out))
    trains = [run for run in study.runs if run.trains]
    recipes = [tuple(a for i, a in enumerate(run.args) if i == 0 or run.args[i - 1] != "--output_dir")
               for run in trains]  # fmt: skip
    assert len(set(recipes)) == len(recipes)  # no two runs train the same thing
    backbones = ("vgg16", "resnet50") if smoke else GAN_BACKBONES
    # Table 3: vanilla and patch discriminators on each backbone, L1 + ell_VGG-16 + adversarial, the w/o base
    table3 = study.by_name["table3"]
    rows = [study.by_name[name] for name in table3.flag("--runs").replace(f"{out}/", "").split(",")]
    assert sorted((_flags(r).get("--disc_type", "vanilla"), _flags(r).get("--disc_backbone", "vgg16")) for r in rows) \
        == sorted((t, b) for t in ("vanilla", "patch") for b in backbones)  # fmt: skip
    assert all(r.flag("--loss") == "rec+per+adv" and r.flag("--per_metric") == f"{out}/metric-vgg16" for r in rows)
    assert "sr-vgg16-rec+per+adv" in [r.name for r in rows]  # Table 1's run is the vanilla VGG-16 row
    assert table3.flag("--base") == f"{out}/sr-vgg16-rec+per"
    # Fig. 7 sweeps patch-level discriminators, on ell_VGG-16
    sweep = [study.by_name[n] for n in study.by_name["fig7"].flag("--runs").replace(f"{out}/", "").split(",")]
    assert all(r.flag("--disc_type") == "patch" and r.flag("--per_metric") == f"{out}/metric-vgg16" for r in sweep)
    assert sorted({float(r.flag("--lambda_adv", "0.005")) for r in sweep}) == [0.001, 0.005, 0.01]
    if not smoke:  # Table 2 / Fig. 5/8: GAN weights from the vanilla discriminators, trained with ell_VGG-16
        gan = {r.flag("--weights") for r in study.runs if (r.flag("--weights") or "").startswith("gan:")}
        assert gan == {f"gan:{out}/sr-vgg16-rec+per+adv", f"gan:{out}/gan-vanilla-resnet50",
                       f"gan:{out}/gan-vanilla-dinov2"}  # fmt: skip
        assert len(trains) == 69 and len(study) - len(trains) == 9


# ---------------------------------------------------------------------------------------------------------- launch
def test_inline_skips_done_resumes_partial_and_stops_the_dependents_of_a_failure(tmp_path, fakes, in_process, capsys):
    out, gate = str(tmp_path / "s"), str(tmp_path / "fixed")
    study = Study(out, chain(*fakes, out, gate=gate))
    assert run_inline(study, study.runs) == ["b", "table"]  # b fails; table reads it; c still runs
    printed = capsys.readouterr().out
    assert "table: not started (it reads b, which did not finish)" in printed and "loss is nan" in printed
    states = {run.name: run_state(out, run).state for run in study.runs}
    assert states == {"a": DONE, "b": FAILED, "c": DONE, "table": NOT_STARTED}
    assert "loss is nan" in status_table(study, status_rows(study, study.runs))  # the failed run's log
    open(gate, "w").close()  # the cause fixed: the same command again runs b and table only
    assert run_inline(study, study.runs) == []
    printed = capsys.readouterr().out
    assert "a: done, skipped" in printed and "c: done, skipped" in printed and "[1/2] " in printed
    assert json.load(open(f"{out}/table/result.json"))["total"] == model(f"{out}/a") + model(f"{out}/b")


def test_local_jobs_resume_a_killed_run_exactly_and_skip_what_is_done(tmp_path, fakes, in_process):
    """As submitit local jobs (a process each): a run killed after its step-3 checkpoint continues from it and ends
    with the model of an uninterrupted run (made here in this process); a second launch starts nothing."""
    train, evaluate = fakes
    out = str(tmp_path / "s")
    study = Study(out, chain(train, evaluate, out, steps=6))
    straight = Study(str(tmp_path / "t"), chain(train, evaluate, str(tmp_path / "t"), steps=6))
    assert run_inline(straight, straight.runs, say=lambda _: None) == []
    killed = Study(out, [(train, ["--max_train_steps", "3", "--output_dir", f"{out}/a"])])
    run_inline(killed, killed.runs, say=lambda _: None)  # a killed run: checkpoints 1-3, no model, no final record
    for name in ("config.json", "model.safetensors", "README.md"):
        os.remove(f"{out}/a/{name}")
    os.remove(record_path(out, "a"))
    assert run_state(out, study.by_name["a"]).state == PARTIAL and run_state(out, study.by_name["a"]).steps_done == 3
    said = []
    assert run_local(study, study.runs, PLAIN, poll_s=0.1, say=said.append) == []
    assert read_record(out, "a")["resumed"] is True and any(line.startswith("a: started (job ") for line in said)
    for name in ("a", "b", "c"):
        assert model(f"{out}/{name}") == model(f"{tmp_path}/t/{name}")
    assert json.load(open(f"{out}/table/result.json")) == json.load(open(f"{tmp_path}/t/table/result.json"))
    said.clear()
    assert run_local(study, study.runs, PLAIN, poll_s=0.1, say=said.append) == []
    assert said == [f"{name}: done, skipped" for name in ("a", "b", "c", "table")]


def test_a_folder_made_with_other_arguments_stops_the_launch_before_anything_starts(tmp_path, fakes, in_process):
    train, evaluate = fakes
    out = str(tmp_path / "s")
    first = Study(out, chain(train, evaluate, out, steps=2))
    run_inline(first, first.runs, say=lambda _: None)
    changed = Study(out, chain(train, evaluate, out, steps=5))
    with pytest.raises(UserError, match=r"3 run folder\(s\) hold a run made with other arguments: .*/s/a \(made by: "):
        plan(changed, changed.runs)
    shutil.rmtree(f"{out}/a")  # a made again: b was trained on the old a, and table scored it
    run_inline(first, first.runs[:1], say=lambda _: None)
    with pytest.raises(UserError, match=r"1 run folder\(s\) .*/s/b \(made by: earlier a\)"):
        plan(first, first.runs)
    assert run_state(out, first.by_name["table"]).state == NOT_STARTED  # an evaluation is simply made again


class RecordingExecutor:
    """What submit_slurm asks of a submitit executor, recorded: each job's dependency and a job id."""

    def __init__(self):
        self.jobs, self.params = [], {}

    def update_parameters(self, **params):
        self.params.update(params)

    def submit(self, job):
        self.jobs.append((job.run.name, dict(self.params["slurm_additional_parameters"])))
        return type("Job", (), {"job_id": str(100 + len(self.jobs))})()


def test_slurm_submits_every_run_at_once_afterok_and_a_second_time_nothing(tmp_path, fakes, monkeypatch):
    out = str(tmp_path / "s")
    study = Study(out, chain(*fakes, out))
    executor = RecordingExecutor()
    jobs = submit_slurm(study, study.runs, Resources(sbatch={"qos": "high"}), executor, say=lambda _: None)
    assert jobs == {"a": "101", "b": "102", "c": "103", "table": "104"}
    deps = {name: params.get("dependency") for name, params in executor.jobs}
    assert deps == {"a": None, "b": "afterok:101", "c": None, "table": "afterok:101:102"}
    assert all(params["qos"] == "high" for _, params in executor.jobs)
    assert executor.jobs[3][1]["kill_on_invalid_dep"] == "yes" and executor.jobs[3][1]["job_name"] == "asym-table"
    monkeypatch.setattr("asym.study.state.slurm_state", lambda job: "PENDING")  # the scheduler still holds them
    again = RecordingExecutor()
    assert submit_slurm(study, study.runs, Resources(), again, say=lambda _: None) == {} and again.jobs == []
    rows = {r["run"]: r for r in status_rows(study, study.runs)}
    assert rows["table"]["state"] == "pending" and rows["table"]["job"] == "104"
    # a job's threads: its CPUs on the node shared among its processes, never over what the user set
    threads = launch.thread_environment
    assert threads({"SLURM_CPUS_ON_NODE": "16"}, Resources(gpus_per_run=4))["OMP_NUM_THREADS"] == "4"
    assert threads({"SLURM_CPUS_PER_TASK": "2", "SLURM_CPUS_ON_NODE": "8"}, Resources())["OMP_NUM_THREADS"] == "2"
    assert threads({"SLURM_CPUS_ON_NODE": "8", "OMP_NUM_THREADS": "3"}, Resources())["OMP_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in threads({}, Resources())


def test_status_of_a_half_finished_study(tmp_path, fakes, in_process):
    """Done, failed (with its log), partial (steps from its checkpoints) and not started, the ETA from preflight.json's
    cost of the run's stage, GPU-hours from the record."""
    train, evaluate = fakes
    out, gate = str(tmp_path / "s"), str(tmp_path / "fixed")
    study = Study(out, chain(train, evaluate, out, gate=gate, steps=10))
    run_inline(study, [study.by_name["a"], study.by_name["b"]], say=lambda _: None)  # a done, b failed
    os.makedirs(f"{out}/c/checkpoints/checkpoint-4")  # c interrupted after 4 of its 10 steps
    write_record(out, study.by_name["a"], gpus=8, seconds_used=1800.0)
    c = study.by_name["c"]
    # c's stage: 2 runs, 20 steps in 75 s of steps, validations and checkpoint saves (3.75 s a step, all included)
    preflight = {"stages": [{"command": c.command_line(), "eta_seconds": 75.0, "steps": 20, "runs": 2}]}
    json.dump(preflight, open(f"{out}/preflight.json", "w"))
    rows = {r["run"]: r for r in status_rows(study, study.runs, gpus_per_run=2)}
    assert [rows[n]["state"] for n in ("a", "b", "c", "table")] == [DONE, FAILED, PARTIAL, NOT_STARTED]
    assert (rows["c"]["steps_done"], rows["c"]["steps_total"], rows["c"]["eta_seconds"]) == (4, 10, 6 * 3.75)
    assert rows["c"]["gpu_hours_left"] == pytest.approx(22.5 * 2 / 3600)
    assert rows["a"]["gpu_hours_used"] == pytest.approx(4.0) and rows["b"]["eta_seconds"] is None
    table = status_table(study, list(rows.values()))
    assert "| c | partial | 4 / 10 |" in table and "b failed; the end of its log:" in table
    assert "4 runs: 1 done, 1 failed, 1 partial, 1 not started" in table
