"""``evaluate.py discriminators`` (Table 3): vanilla vs patch-level discriminators per backbone, against the base."""

from __future__ import annotations

import argparse
import os

from asym.core.atomic import write_text
from asym.core.errors import UserError
from asym.reporting.tables import MISSING, escape_cell, unique_names, write_records
from asym.sr.cards import card_disc_backbone, card_disc_type, card_loss, card_per_backbone, read_run_card
from asym.sr.table import check_image_sets, format_sr_value, read_sr_results, record_number, sr_summary

DESCRIPTION = """\
    python evaluate.py discriminators --runs runs/gan-vgg16,runs/gan-patch-vgg16 --base runs/rec+per-vgg16 \\
        --sr_results results/table3/sr_results.json --output_dir results/table3

`discriminators` (Table 3): train_sr.py runs trained with an adversarial term, a row each, grouped by their card's
discriminator type (Vanilla: one logit per image, then Patch-level: one logit per location), backbones in the order
--runs first names them, then the "w/o (base)" row: --base, the same recipe without a discriminator. A column per
scorer of the sr_results.json of evaluate.py sr on them: the mean of the per-image 1..100 scores (score_norm) where
the file has them, else the raw mean, marked (raw); Average: the mean over the normalised scorers (raw scales and
directions differ, so raw ones are left out). Prints the table and patch minus vanilla on the Average per backbone
in both groups; writes discriminators.md / .csv / .json."""

GROUPS = {"vanilla": "Vanilla", "patch": "Patch-level"}  # card type -> the table's group heading, in table order
BASE = "w/o (base)"


def register_subcommand(subparsers) -> None:
    table = subparsers.add_parser(
        "discriminators",
        help="Table 3: vanilla vs patch-level discriminators per backbone, against the run without one",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    table.add_argument("--runs", required=True, help="comma-separated train_sr.py folders trained with --loss ...+adv")
    table.add_argument("--base", required=True, help="the train_sr.py folder of the same recipe without adv")
    table.add_argument("--sr_results", required=True, help="sr_results.json of evaluate.py sr on the runs and --base")
    table.add_argument("--metrics", default="", help="comma-separated scorers to show (default: all the file has)")
    table.add_argument("--dataset", default=None, help="the test set of the table (needed if the file has several)")
    table.set_defaults(run=run)


def _terms(loss: str | None) -> set[str]:
    return set((loss or "").split("+")) - {""}


def _rows(runs: list[str], names: list[str], base: str, base_name: str) -> list[dict]:
    """One row per run from its card (group, backbone, loss), in table order; the base row last."""
    rows = []
    for run, name in zip(runs, names):
        card = read_run_card(run)
        loss, kind, backbone = card_loss(card), card_disc_type(card), card_disc_backbone(card)
        if "adv" not in _terms(loss) or kind is None or backbone is None:
            raise UserError(f"{run} was trained without an adversarial term (its card's --loss: {loss}): not a "
                            "discriminator row (the run without one is --base)")  # fmt: skip
        if kind not in GROUPS:
            raise UserError(f"{run}: its card's discriminator type {kind!r} is none of {', '.join(GROUPS)}")
        rows.append({"group": kind, "backbone": backbone, "run": name, "source": run, "loss": loss,
                     "per_backbone": card_per_backbone(card)})  # fmt: skip
    card = read_run_card(base)
    if "adv" in _terms(card_loss(card)):
        raise UserError(f"--base {base} was trained with an adversarial term (--loss {card_loss(card)}): pass the "
                        "same recipe without a discriminator")  # fmt: skip
    seen: dict[tuple[str, str], str] = {}
    for row in rows:
        other = seen.setdefault((row["group"], row["backbone"]), row["source"])
        if other != row["source"]:
            raise UserError(f"{other} and {row['source']} both have a {row['group']} discriminator on "
                            f"{row['backbone']}: one run per type and backbone")  # fmt: skip
    order = list(dict.fromkeys(r["backbone"] for r in rows))  # backbones in the order --runs first names them
    rows.sort(key=lambda r: (list(GROUPS).index(r["group"]), order.index(r["backbone"])))
    base_row = {"group": "base", "backbone": None, "run": base_name, "source": base, "loss": card_loss(card),
                "per_backbone": card_per_backbone(card)}  # fmt: skip
    return rows + [base_row]


def _select(sr: list[dict], path: str, dataset: str | None, metrics: str) -> tuple[list[dict], str, list[str]]:
    """The records of the table's test set and scorers, the test set's name and the scorers in file order."""
    datasets = list(dict.fromkeys(r["dataset"] for r in sr))
    if dataset is None and len(datasets) != 1:
        raise UserError(f"{path} holds {len(datasets)} test sets ({', '.join(datasets) or 'none'}): pick one with "
                        "--dataset")  # fmt: skip
    dataset = dataset if dataset is not None else datasets[0]
    if dataset not in datasets:
        raise UserError(f"--dataset {dataset} is not in {path} (it holds {', '.join(datasets)})")
    records = [r for r in sr if r["dataset"] == dataset]
    present = list(dict.fromkeys(r["metric"] for r in records))
    chosen = [m for m in metrics.split(",") if m] or present
    unknown = [m for m in chosen if m not in present]
    if unknown:
        raise UserError(f"--metrics {', '.join(unknown)}: not scored in {path} ({', '.join(present)})")
    return [r for r in records if r["metric"] in chosen], dataset, chosen


def run(args) -> list[dict]:
    """Table 3: each discriminator run's scores and Average, grouped by type, then the run without a discriminator."""
    runs = [r for r in args.runs.split(",") if r]
    if not runs:
        raise UserError("--runs must name at least one train_sr.py output folder")
    *names, base_name = unique_names([*runs, args.base], "run")
    rows = _rows(runs, names, args.base, base_name)
    sr = read_sr_results(args.sr_results)
    check_image_sets([(args.sr_results, sr)])
    records, dataset, metrics = _select(sr, args.sr_results, args.dataset, args.metrics)
    by_source = {os.path.normpath(str(r.get("source", ""))): r["model"] for r in records}
    models = {r["model"] for r in records}
    for row in rows:
        row["model"] = by_source.get(os.path.normpath(row["source"]), row["run"] if row["run"] in models else None)
        if row["model"] is None:
            raise UserError(f"{row['source']} has no scores of {dataset} in {args.sr_results}: run evaluate.py sr on "
                            "it first")  # fmt: skip
    mine = [r for r in records if r["model"] in {row["model"] for row in rows}]
    normalised = [m for m in metrics if any(r.get("score_norm") is not None for r in mine if r["metric"] == m)]
    headers = {m: m if m in normalised else f"{m} (raw)" for m in metrics}
    summary = sr_summary(mine, [row["model"] for row in rows], metrics)
    by_key = {(r["model"], r["metric"]): r for r in mine}
    for row in rows:
        for m in metrics:
            record = by_key.get((row["model"], m))
            row[headers[m]] = None if record is None else record_number(record, m in normalised)
        row |= {"dataset": dataset, "average": summary["average"][row["model"]]}
    averages = {(r["group"], r["backbone"]): r["average"] for r in rows}
    for row in rows:
        vanilla = averages.get(("vanilla", row["backbone"]))
        if row["group"] == "patch" and vanilla is not None and row["average"] is not None:
            row["patch_minus_vanilla"] = row["average"] - vanilla
    text = _table(rows, metrics, headers, summary)
    write_records(rows, args.output_dir, "discriminators")
    write_text(os.path.join(args.output_dir, "discriminators.md"), text + "\n")
    print(text)
    return rows


def _table(rows: list[dict], metrics: list[str], headers: dict[str, str], summary: dict) -> str:
    """Markdown like the paper's Table 3, with the lines that say what its numbers are."""
    columns = [headers[m] for m in metrics] + ["Average"]
    lines = ["| Discriminator | " + " | ".join(escape_cell(c) for c in columns) + " | Run |",
             "|" + " --- |" * (len(columns) + 2)]  # fmt: skip
    for group in [*GROUPS, "base"]:
        members = [r for r in rows if r["group"] == group]
        if members and group in GROUPS:
            lines.append(f"| *{GROUPS[group]}* |" + " |" * (len(columns) + 1))
        for r in members:
            cells = [format_sr_value(r[headers[m]]) for m in metrics] + [format_sr_value(r["average"])]
            label = BASE if group == "base" else r["backbone"]
            lines.append(f"| {escape_cell(label)} | " + " | ".join(cells) + f" | {escape_cell(r['run'])} |")
    basis = ", ".join(summary["basis"])
    if basis:
        lines.append(f"\nAverage: the mean over the normalised (1..100) scorers ({basis}); each of their cells is the "
                     "mean over images of the per-image normalised score (score_norm).")  # fmt: skip
    else:
        lines.append("\nAverage: not computed: no scorer is normalised to 1..100, and raw means differ in scale and "
                     "direction (run evaluate.py sr with --normalisation or --calibration_dataset).")  # fmt: skip
    raw = [m for m in metrics if headers[m] != m]
    if raw:
        lines.append(f"(raw): the raw mean score, left out of the Average: {', '.join(raw)}.")
    if summary["partial"]:
        skipped = [r["run"] for r in rows if r["model"] in summary["partial"]]
        lines.append(f"Average of {', '.join(skipped)} skips the cells shown {MISSING}.")
    gains = [f"{r['patch_minus_vanilla']:+.2f} ({r['backbone']})" for r in rows if "patch_minus_vanilla" in r]
    if gains:
        lines.append(f"Patch-level minus vanilla on the Average: {', '.join(gains)}.")
    base = rows[-1]
    recipe = (_terms(base["loss"]), base["per_backbone"])
    differ = [r["run"] for r in rows[:-1] if (_terms(r["loss"]) - {"adv"}, r["per_backbone"]) != recipe]
    if differ:
        lines.append(f"Not the base's recipe without adv (--loss {base['loss']}, perceptual loss on "
                     f"{base['per_backbone']}): {', '.join(differ)}.")  # fmt: skip
    return "\n".join(lines)
