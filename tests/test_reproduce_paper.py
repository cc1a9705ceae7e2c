"""scripts/reproduce_paper.py: every command of both chains parses with its script's own parser (a renamed flag
breaks this test, not a GPU run a day later), and the chain is in dependency order (nothing reads a run that a
later command writes)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from asym.study.chains import LOSSES

ROOT = Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location("reproduce_paper", ROOT / "scripts" / "reproduce_paper.py")
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


@pytest.mark.parametrize("smoke", [False, True])
def test_every_command_parses_and_runs_after_what_it_reads(smoke, capsys):
    args = reproduce.parse_args(["--smoke", "--dry_run"] if smoke else ["--data", "d", "--dry_run"])
    commands = reproduce.main(args)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(commands)
    written, reads = set(), 0
    for script, argv in commands:
        module = importlib.import_module(script.removesuffix(".py"))
        parsed = module.parse_args(argv)  # raises SystemExit on an unknown flag or a bad value
        out = parsed.output_dir
        for value in argv[:-1]:  # every run folder this command reads was written by an earlier command
            for part in value.replace("gan:", "").split(","):
                if part.startswith("runs/") and not part.startswith(out):
                    assert "/".join(part.split("/")[:3]) in written, (script, part)
                    reads += 1
        written.add("/".join(out.split("/")[:3]))
    assert reads > 10
    scripts = {s for s, _ in commands}
    assert scripts == {"train_metric.py", "train_sr.py", "train_iqa.py", "evaluate.py"}
    subcommands = {argv[0] for s, argv in commands if s == "evaluate.py"}
    assert {"fr", "sr", "correlation", "init-comparison", "discriminators", "sweep"} <= subcommands
    reads = {line.split("] ", 1)[0]: line.split(" # reads: ")[1] for line in printed if " # reads: " in line}
    assert len(reads) > 10 and printed[0].startswith("[1/") and " # reads: " not in printed[0]
    if not smoke:  # the paper's settings: stage 2 starts from stage 1, 400K steps, every loss setting
        stage2 = [a for s, a in commands if s == "train_sr.py" and "--per_metric" in a and "--disc_type" not in a]
        assert len(stage2) == 6 * 4 and all("400000" in a and "runs/paper/sr-stage1" in a for a in stage2)
        assert all("accelerate launch" in line for line in printed if " train_" in line.split(" # ")[0])
        # on SLURM the plan first says the jobs' shape
        reproduce.main(reproduce.parse_args(["--data", "d", "--dry_run", "--launcher", "slurm", "--gpus_per_run",
                                             "8", "--partition", "gpu"]))  # fmt: skip
        header = capsys.readouterr().out.splitlines()[0]
        assert header.startswith("SLURM: each training run one job of 1 node(s) x 8 GPU(s)")
        assert "partition gpu" in header and "(afterok)" in header


@pytest.mark.slow  # a long end-to-end chain: the slow lane, which CI runs too
def test_smoke_chain_runs_end_to_end_and_hands_each_link_its_files(tmp_path):
    """The README's one command, as a user types it (a fresh process, offline: HF_HUB_OFFLINE=1 from conftest), then
    every table it promises, recomputed here from the files of the link before."""
    import csv
    import json
    import math
    import os
    import subprocess

    out = tmp_path / "smoke"
    cmd = [sys.executable, str(ROOT / "scripts" / "reproduce_paper.py"), "--smoke", "--output_dir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    commands = reproduce.smoke_commands(str(out))
    assert f"study {out}: all {len(commands)} runs done" in proc.stdout
    listing = proc.stdout.split(" runs done\n", 1)[1].splitlines()  # the study's end: where its tables and figures are
    assert listing[0] == f"its tables and figures, in {out}:" and listing[-1].endswith("docs/paper_results.md")
    for name in ("table4/fr_results.md", "table1/sr_results.md", "fig3/correlation.png", "table3/discriminators.md",
                 "nr/nr_results.md", "fig7/sweep.png"):  # fmt: skip
        assert any(name in line for line in listing) and (out / name).is_file(), (name, listing)

    # Table 1: one record per (model, metric); maniqa has no weights offline and says so, the rest is scored
    records = json.loads((out / "table1" / "sr_results.json").read_text())
    models = {r["model"] for r in records}
    assert len(records) == len(models) * 3 and {"bicubic", "hr", "sr-vgg16-rec+per+adv"} <= models
    by = {(r["model"], r["metric"]): r for r in records}
    assert all(by[m, "maniqa"]["status"].startswith("unavailable: ") for m in models)
    assert all(by[m, "piqe"]["status"] == "ok" and 1 <= by[m, "piqe"]["score_norm"] <= 100 for m in models)
    assert by["hr", "psnr"]["status"].startswith("n/a") and by["bicubic", "psnr"]["score"] > 20
    header = (out / "table1" / "sr_results.md").read_text().splitlines()[2]
    assert "| l1 (sr-stage1) | bicubic | Ref. (hr) |" in header and "Std. [per]" in header
    # piqe is lower-better: the references (lower raw piqe than the 2-step SR outputs) rank higher on 1..100
    assert by["hr", "piqe"]["score"] < by["sr-vgg16-per", "piqe"]["score"]
    assert by["hr", "piqe"]["score_norm"] > by["sr-vgg16-per", "piqe"]["score_norm"]
    # the means are those of the per-image scores, normalised with the saved, builtin-calibrated logistic
    (fit,) = json.loads((out / "table1" / "normalisation.json").read_text())["normalisations"]
    assert fit["metric"] == "piqe" and fit["calibration"] == "builtin" and fit["n"] == 160 and fit["lower_better"]
    rows = [r for r in csv.DictReader(open(out / "table1" / "sr_scores.csv")) if r["metric"] == "piqe"]
    for model in models:
        raw = [float(r["score"]) for r in rows if r["model"] == model]
        norm = [99 / (1 + math.exp(-(-x - fit["e3"]) / abs(fit["e4"]))) + 1 for x in raw]
        assert len(raw) == 2
        assert by[model, "piqe"]["score"] == pytest.approx(sum(raw) / 2, rel=1e-9)
        assert by[model, "piqe"]["score_norm"] == pytest.approx(sum(norm) / 2, rel=1e-9)

    # Fig. 3: each point joins its loss backbone's assessment SRCC (table4) with its leaderboard average (table1)
    srcc = {r["metric"]: r["srcc"] for r in json.loads((out / "table4" / "fr_results.json").read_text())}
    points = json.loads((out / "fig3" / "correlation.json").read_text())
    assert len(points) == 6 and {p["loss"] for p in points} == set(LOSSES)
    for p in points:
        assert p["srcc"] == srcc[f"metric-{p['backbone']}"]
        assert p["average"] == pytest.approx(by[p["model"], "piqe"]["score_norm"], rel=1e-12)  # the one NR metric
    assert (out / "fig3" / "correlation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Figs. 5/8 and 7, and the GAN-initialised quality model that feeds them
    config = json.loads((out / "iqa-vgg16-gan" / "config.json").read_text())
    assert "gan:" in config["weights_source"] and "discriminator on vgg16" in config["weights_source"]
    assert (out / "nr" / "nr_results.json").exists() and (out / "fig5-8" / "init_comparison.png").exists()
    sweep = json.loads((out / "fig7" / "sweep.json").read_text())
    assert sorted(p["lambda_adv"] for p in sweep if p["backbone"]) == [0.001, 0.005, 0.01]
    assert (out / "fig7" / "sweep.png").exists()

    # Table 3: each discriminator's row is its run's normalised piqe in table3-sr, the base last
    scored = {r["model"]: r for r in json.loads((out / "table3-sr" / "sr_results.json").read_text())}
    rows = json.loads((out / "table3" / "discriminators.json").read_text())
    groups = [(g, b) for g in ("vanilla", "patch") for b in ("vgg16", "resnet50")] + [("base", None)]
    assert [(r["group"], r["backbone"]) for r in rows] == groups
    for row in rows:
        assert row["average"] == pytest.approx(scored[row["model"]]["score_norm"], rel=1e-12)

    # the same command again trains nothing
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert again.returncode == 0 and again.stdout.count(": done, skipped") == len(commands)


def test_the_robust_loss_study_is_a_graph_too(capsys):
    """--study robust: every command parses with its script's parser, and the graph knows what reads what."""
    commands = reproduce.main(reproduce.parse_args(["--study", "robust", "--data", "d", "--dry_run"]))
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(commands) == 10
    for script, argv in commands:
        importlib.import_module(script.removesuffix(".py")).parse_args(argv)
    line = next(line for line in printed if "--output_dir runs/robust/mse+feat-robust" in line)
    assert line.endswith("# reads: robust-vgg19")
    table = next(line for line in printed if "evaluate.py sr " in line)
    assert table.endswith("# reads: E, mse+feat, mse+feat-robust, mse+feat+texture, mse+feat+texture-robust, rlpips")
