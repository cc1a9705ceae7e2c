"""evaluate.py discriminators (Table 3): vanilla vs patch-level discriminators per backbone, against the base run."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

import evaluate  # noqa: E402
from asym.core.errors import UserError, run_cli  # noqa: E402

NORMALISED, RAW = ("maniqa", "liqe", "deqa", "visualquality-r1"), ("psnr",)
# folder -> (disc type, backbone), None for the base; the folder names say nothing of the type, and the order given
# interleaves the groups: the table must group by the card and keep the backbones' order of first mention
RUNS = {"a": ("patch", "resnet50"), "b": ("vanilla", "vgg16"), "c": ("patch", "vgg16"), "d": ("vanilla", "dinov2"),
        "e": ("vanilla", "resnet50"), "f": ("patch", "dinov2")}  # fmt: skip
ORDER = [("vanilla", "resnet50"), ("vanilla", "vgg16"), ("vanilla", "dinov2"),
         ("patch", "resnet50"), ("patch", "vgg16"), ("patch", "dinov2")]  # fmt: skip


def card(kind=None, backbone=None):
    """A card as train_sr.py writes it: --loss and, with a discriminator, its ``discriminator`` fact."""
    facts = {"--loss": "rec+per+adv" if kind else "rec+per", "perceptual loss": "DISTS-style on vgg16 (pretrained)"}
    if kind:
        facts["discriminator"] = f"{kind} on {backbone} (random), lr 0.0001"
    return facts


def save_run(folder: Path, facts: dict) -> str:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"card": facts}))
    return str(folder)


def record(run, metric, per_image, norm=None, fingerprint="0123456789abcdef"):
    """An sr_results.json record as evaluate.py sr writes it: score / score_norm are means over the images."""
    return {"model": Path(run).name, "metric": metric, "dataset": "DIV2K-x4", "status": "ok",
            "score": float(np.mean(per_image)), "score_norm": None if norm is None else float(np.mean(norm)),
            "images": len(per_image), "fingerprint": fingerprint, "source": run}  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Six discriminator runs and the base, their cards, and an sr_results.json with per-image scores behind it."""
    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(0)
    runs = {name: save_run(root / "runs" / name, card(*spec)) for name, spec in RUNS.items()}
    runs["base"] = save_run(root / "runs" / "base", card())
    records, expected = [], {}
    for name, run in runs.items():
        cells = {}
        for metric in NORMALISED + RAW:
            raw = rng.normal(0.5, 0.2, size=5)
            norm = None if metric in RAW else rng.uniform(40, 70, size=5)
            records.append(record(run, metric, raw, norm))
            cells[metric] = np.mean(raw) if norm is None else np.mean(norm)
        cells["average"] = np.mean([cells[m] for m in NORMALISED])  # the raw scorer stays out of it
        expected[name] = cells
    records.append(record(str(root / "runs" / "other"), "maniqa", [0.1] * 5, [10.0] * 5))  # a model not in the table
    sr = root / "sr_results.json"
    sr.write_text(json.dumps(records))
    return {"root": root, "runs": runs, "sr": str(sr), "records": records, "expected": expected}


def table(study, out, runs=None, base=None, sr=None, extra=()):
    runs = runs if runs is not None else [study["runs"][name] for name in RUNS]
    argv = ["discriminators", "--runs", ",".join(runs), "--base", base or study["runs"]["base"],
            "--sr_results", sr or study["sr"], "--output_dir", str(out), *extra]  # fmt: skip
    return evaluate.main(evaluate.parse_args(argv))


@pytest.fixture(scope="module")
def made(study, tmp_path_factory):
    """The table of the whole study, made once: (rows returned, what it printed, the output folder)."""
    out, printed = tmp_path_factory.mktemp("table3"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        rows = table(study, out)
    return rows, printed.getvalue(), out


def test_cells_are_the_means_of_the_records(study, made):
    rows, printed, out = made
    saved = json.loads((out / "discriminators.json").read_text())
    assert saved == json.loads(json.dumps(rows))
    for row in saved:
        cells = study["expected"][row["run"]]
        for metric in NORMALISED:
            assert row[metric] == pytest.approx(cells[metric], abs=1e-9)
        assert row["psnr (raw)"] == pytest.approx(cells["psnr"], abs=1e-9)
        assert row["average"] == pytest.approx(cells["average"], abs=1e-9)
    md = (out / "discriminators.md").read_text()
    assert md.strip() in printed
    base_line = next(line for line in md.splitlines() if line.startswith("| w/o (base) |"))
    cells = study["expected"]["base"]
    want = [f"{cells[m]:.2f}" for m in NORMALISED]
    want += [f"{cells['psnr']:.4f}", f"{cells['average']:.2f}", "base"]
    assert base_line == "| w/o (base) | " + " | ".join(want) + " |"
    assert "| Discriminator | maniqa | liqe | deqa | visualquality-r1 | psnr (raw) | Average | Run |" in md
    assert "Average: the mean over the normalised (1..100) scorers (maniqa, liqe, deqa, visualquality-r1)" in md
    assert "(raw): the raw mean score, left out of the Average: psnr." in md
    csv_lines = (out / "discriminators.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(RUNS) + 1 and "patch_minus_vanilla" in csv_lines[0]


def test_rows_are_grouped_and_ordered_by_the_cards_with_the_base_last(made):
    rows, printed, out = made
    assert [(r["group"], r["backbone"]) for r in rows[:-1]] == ORDER
    assert [r["run"] for r in rows[:-1]] == [next(n for n, s in RUNS.items() if s == key) for key in ORDER]
    assert rows[-1]["group"] == "base" and rows[-1]["run"] == "base"
    labels = [line.split(" | ")[0][2:] for line in (out / "discriminators.md").read_text().splitlines()[2:10]]
    assert labels == ["*Vanilla*", "resnet50", "vgg16", "dinov2", "*Patch-level*", "resnet50", "vgg16", "dinov2"]
    assert "| w/o (base) |" in printed.split("*Patch-level*")[1]


def test_patch_minus_vanilla_is_the_difference_of_the_averages(study, made):
    rows, printed, _ = made
    expected = study["expected"]
    by_key = {(k, b): name for name, (k, b) in RUNS.items()}
    gains = {b: expected[by_key["patch", b]]["average"] - expected[by_key["vanilla", b]]["average"]
             for b in ("resnet50", "vgg16", "dinov2")}  # fmt: skip
    for row in rows:
        assert ("patch_minus_vanilla" in row) == (row["group"] == "patch")
        if row["group"] == "patch":
            assert row["patch_minus_vanilla"] == pytest.approx(gains[row["backbone"]], abs=1e-9)
    line = ", ".join(f"{gains[b]:+.2f} ({b})" for b in ("resnet50", "vgg16", "dinov2"))
    assert f"Patch-level minus vanilla on the Average: {line}." in printed


def test_a_backbone_in_one_group_only_gets_no_difference(study, tmp_path):
    rows = table(study, tmp_path, runs=[study["runs"][name] for name in "bcda"])  # dinov2 vanilla only, resnet50 patch
    assert [(r["group"], r["backbone"]) for r in rows[:-1]] == [("vanilla", "vgg16"), ("vanilla", "dinov2"),
                                                                ("patch", "vgg16"), ("patch", "resnet50")]  # fmt: skip
    assert ["patch_minus_vanilla" in r for r in rows] == [False, False, True, False, False]
    line = (tmp_path / "discriminators.md").read_text().splitlines()[-1]
    assert line.startswith("Patch-level minus vanilla on the Average: ") and line.endswith(" (vgg16).")


def test_a_run_without_an_adversarial_term_is_refused_as_a_row(study, tmp_path, capsys):
    plain = save_run(tmp_path / "runs" / "plain", card())
    runs = f"{study['runs']['b']},{plain}"
    args = evaluate.parse_args(["discriminators", "--runs", runs, "--base", study["runs"]["base"],
                                "--sr_results", study["sr"], "--output_dir", str(tmp_path)])  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        run_cli(evaluate.main, args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err == f"error: {plain} was trained without an adversarial term (its card's --loss: rec+per): not a " \
                  "discriminator row (the run without one is --base)\n"  # fmt: skip
    with pytest.raises(UserError, match="--base .* was trained with an adversarial term"):
        table(study, tmp_path / "o", base=study["runs"]["b"], runs=[study["runs"]["c"]])


def test_a_run_missing_from_the_sr_results_is_refused(study, tmp_path):
    unscored = save_run(tmp_path / "runs" / "unscored", card("patch", "convnext"))
    with pytest.raises(UserError, match=rf"^{unscored} has no scores of DIV2K-x4 in .*sr_results.json: run "
                                        r"evaluate.py sr on it first$"):  # fmt: skip
        table(study, tmp_path / "out", runs=[study["runs"]["b"], unscored])
    assert not (tmp_path / "out" / "discriminators.json").exists()


def test_records_of_one_test_set_on_different_images_are_refused(study, tmp_path):
    records = [dict(r) for r in study["records"]]
    records[-2]["fingerprint"], records[-2]["images"] = "fedcba9876543210", 4  # one record made on other images
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(records))
    with pytest.raises(UserError, match="DIV2K-x4 was scored on different images in .*mixed.json \\(5 images"):
        table(study, tmp_path / "out", sr=str(mixed))


def test_a_base_of_another_recipe_is_said_under_the_table(study, tmp_path):
    other = save_run(tmp_path / "runs" / "base", {**card(), "perceptual loss": "DISTS-style on resnet50 (pretrained)"})
    table(study, tmp_path / "out", runs=[study["runs"]["b"]], base=other)
    md = (tmp_path / "out" / "discriminators.md").read_text()
    assert md.rstrip().endswith("Not the base's recipe without adv (--loss rec+per, perceptual loss on resnet50): b.")
    table(study, tmp_path / "same", runs=[study["runs"]["b"]])
    assert "Not the base's recipe" not in (tmp_path / "same" / "discriminators.md").read_text()


def test_one_test_set_and_the_chosen_scorers(study, tmp_path):
    two = tmp_path / "two.json"
    two.write_text(json.dumps(study["records"] + [{**r, "dataset": "Set5-x4"} for r in study["records"]]))
    with pytest.raises(UserError, match=r"two.json holds 2 test sets \(DIV2K-x4, Set5-x4\): pick one with --dataset"):
        table(study, tmp_path / "out", sr=str(two))
    chosen = ["--dataset", "Set5-x4", "--metrics", "liqe,psnr"]
    rows = table(study, tmp_path / "set5", runs=[study["runs"]["a"]], sr=str(two), extra=chosen)
    assert [r["dataset"] for r in rows] == ["Set5-x4"] * 2 and "maniqa" not in rows[0]
    assert rows[0]["average"] == pytest.approx(study["expected"]["a"]["liqe"], abs=1e-9)  # psnr is raw: left out
    with pytest.raises(UserError, match=r"--metrics niqe: not scored in .*sr_results.json \(maniqa, liqe, deqa"):
        table(study, tmp_path / "bad", extra=["--metrics", "niqe"])
