"""``evaluate.py sr``: SR models' outputs on SR test sets, scored by FR and NR metrics (the paper's Table 1)."""

from __future__ import annotations

import argparse
import os
import warnings

import torch

from asym.core.atomic import write_text
from asym.core.errors import UserError
from asym.core.flags import int_at_least, non_negative_int, positive_int
from asym.core.processes import evaluation_state, process_state
from asym.iqa.data import add_nr_dataset_args, load_nr_dataset, nr_dataset_kwargs
from asym.metrics import MetricUnavailable, create_metric, metric_info
from asym.reporting.tables import unique_names, write_records
from asym.sr.cards import TrainingImagesWarning, card_loss, card_trained_on_builtin
from asym.sr.table import sr_table
from asym.sr.validation import sr_protocol

DESCRIPTION = """\
    python evaluate.py sr --models runs/sr-vgg16,runs/sr-resnet50,bicubic,hr --metrics psnr,ssim,piqe,maniqa \\
        --datasets builtin --calibration_dataset data/koniq10k --output_dir results/table1

`sr`: SR models (train_sr.py outputs, release checkpoints, `bicubic`, `hr` = the reference) on SR test sets, each
output computed once and cached in <output_dir>/sr_cache (a re-run with more metrics runs no model). psnr, ssim,
uqi and ifc are asym's (asym.metrics.fidelity), on the BT.601 Y channel with --scale border pixels cropped
(SR papers' convention); other FR metrics (pyiqa names, asym DISTS / LPIPS folders) and NR metrics (pyiqa names,
train_iqa.py outputs) as named. `hr` on an FR metric is `n/a: reference`. NR metrics are mapped to 1..100 (App. D)
by --normalisation FILE or fitted on --calibration_dataset (saved as normalisation.json); each map belongs to the
scorer it was fitted for (weights hash, pyiqa name + version, VLM Hub id + revision), and one of another scorer is
refused; without either, score_norm is null and raw means are shown. Writes sr_results.json / .csv / .md (one record
per model, metric, dataset: score = raw mean, score_norm = mean of the normalised per-image scores, images and
fingerprint = which images were scored, status = ok or why there is no number, e.g. an unparsable VLM answer) and
sr_scores.csv (per image, with its status); prints Table 1: a row per metric (two for a normalised one: the mean of
the normalised scores, then the raw mean), a column per model grouped by its card's --loss (with a Std. column per
group), bicubic and Ref.; rows Average / Std are the mean and population std across the normalised metrics (not
computed when none is: raw scales and directions differ)."""


def register_subcommand(subparsers) -> None:
    sr = subparsers.add_parser(
        "sr",
        help="score SR models' outputs with FR and NR metrics (the paper's Table 1)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sr.add_argument("--models", required=True,
                    help="comma-separated train_sr.py outputs / Hub ids, release checkpoints, bicubic, hr")  # fmt: skip
    sr.add_argument("--metrics", required=True,
                    help="comma-separated: psnr, ssim, uqi, ifc (Y channel, --scale border cropped), pyiqa FR/NR "
                         "names, asym metric folders (FR: DISTS, LPIPS such as an R-LPIPS) and train_iqa.py outputs "
                         "(NR)")  # fmt: skip
    sr.add_argument("--datasets", default="builtin", help="comma-separated test sets: builtin, HR folders, benchmarks")
    sr.add_argument("--scale", type=positive_int, default=4, help="up-scaling factor")
    sr.add_argument("--tile", type=non_negative_int, default=0, help="tile size of model inference (0: whole images)")
    sr.add_argument("--max_images", type=positive_int, default=None,
                    help="score only the first N images of each test set")  # fmt: skip
    sr.add_argument("--batch_size", type=int_at_least(1), default=None,
                    help="images per scorer forward: the models' outputs of one test image are scored together "
                         "(default 8 on GPU, 1 on CPU, where batching measured slower: "
                         "benchmarks/evaluate_sr.py)")  # fmt: skip
    sr.add_argument("--vlm_backend", default="transformers", choices=["transformers", "vllm"],
                    help="how visualquality-r1 generates: transformers (default, tested) or vLLM (an optional fast "
                         "path on GPUs where vllm is installed; greedy, the same prompt)")  # fmt: skip
    sr.add_argument("--mixed_precision", default="no", choices=["no", "bf16", "fp16"],
                    help="autocast dtype of the SR models' forward (cached apart); scorers keep their own "
                         "precision")  # fmt: skip
    norm = sr.add_mutually_exclusive_group()
    norm.add_argument("--normalisation", default=None, help="a normalisation.json of fitted 1..100 maps (NR metrics)")
    norm.add_argument("--calibration_dataset", default=None,
                      help="an NR dataset with MOS to fit the 1..100 maps on (saved: normalisation.json)")  # fmt: skip
    add_nr_dataset_args(sr)  # how --calibration_dataset is read
    sr.set_defaults(run=run)


def _sr_metric(source: str, scale: int, device: str, vlm_backend: str = "transformers") -> tuple[str, object]:
    """(``fr`` / ``nr``, the scorer) of a --metrics entry: asym's fidelity indices on the Y channel with ``scale``
    border pixels cropped (SR papers'), any other as named; the scorer is the ``unavailable: <reason>`` status of one
    that cannot be built here (weights not obtainable). An unknown name gets the NR scorers' message."""
    try:
        spec = metric_info(source)
    except UserError as err:
        if not str(err).startswith("unknown metric"):
            raise
        return "nr", create_metric(source, device, kind="nr")  # raises, naming close NR names
    protocol = sr_protocol(scale) if spec.loader == "asym" else {}
    if spec.name == "visualquality-r1" and vlm_backend != "transformers":
        protocol = {"backend": vlm_backend}
    try:
        return spec.kind, create_metric(source, device, **protocol)
    except MetricUnavailable as err:
        return spec.kind, f"unavailable: {err.reason}"


def _sr_normalisations(args, names: list[str], metrics: list, kinds: list[str]) -> dict:
    """{metric name: Normalisation} for the NR metrics: loaded (--normalisation) or fitted (--calibration_dataset,
    then written beside the results), each belonging to its scorer's identity, never to a name alone."""
    from asym.metrics.calibration import fit_normalisations, normalisations_from_file, save_normalisations

    usable = {n: m for n, m, k in zip(names, metrics, kinds) if k == "nr" and not isinstance(m, str)}
    if args.normalisation:
        return normalisations_from_file(usable, args.normalisation)
    if args.calibration_dataset:
        dataset = load_nr_dataset(args.calibration_dataset, **nr_dataset_kwargs(args))
        out = fit_normalisations(usable, dataset, args.device)
        path = os.path.join(args.output_dir, "normalisation.json")
        if process_state().is_main_process:  # every process fits the same maps; one writes them
            os.makedirs(args.output_dir, exist_ok=True)
            save_normalisations(path, list(out.values()))
            print(f"normalisation written to {path}")
        return out
    print("no --normalisation / --calibration_dataset: score_norm is null and the table shows raw means")
    return {}


def run(args) -> list[dict]:
    """The SR leaderboard: every model's outputs (cached) on every test set, scored by every metric."""
    from accelerate.utils import gather_object

    from asym.sr.eval_sets import load_sr_test_set
    from asym.sr.inference import load_sr_source
    from asym.sr.leaderboard import score_sr_leaderboard, sr_records
    from asym.sr.output_cache import SROutputCache
    from asym.sr.score_cache import ScoreCache

    state = evaluation_state(args)  # one process unless launched with `accelerate launch`: then each scores a shard

    model_sources = [m for m in args.models.split(",") if m]
    metric_sources = [m for m in args.metrics.split(",") if m]
    dataset_sources = [d for d in args.datasets.split(",") if d]
    if not model_sources or not metric_sources or not dataset_sources:
        raise UserError("--models, --metrics and --datasets must each name at least one entry")
    model_names = unique_names(model_sources, "model")
    metric_names = unique_names(metric_sources, "metric")
    dataset_names = unique_names(dataset_sources, "dataset")  # p/HR, q/HR: two sets, two names
    # before any model: typos cost nothing
    test_sets = [load_sr_test_set(d, args.scale, n) for d, n in zip(dataset_sources, dataset_names)]
    sources = [load_sr_source(m, args.scale, args.device, args.mixed_precision) for m in model_sources]
    losses = {n: card_loss(getattr(s.module, "card", None)) for n, s in zip(model_names, sources)}
    on_builtin = [n for n, s in zip(model_names, sources) if card_trained_on_builtin(getattr(s.module, "card", None))]
    if on_builtin and "builtin" in dataset_sources and state.is_main_process:
        warnings.warn(TrainingImagesWarning(
            f"{', '.join(on_builtin)} trained on builtin: the builtin test set holds its training photographs (all but "
            "the held-out ones), so its scores there measure fitting, not generalisation; for a test, pass a "
            "benchmark folder to --datasets (Set5, Set14, ...: docs/datasets.md)"), stacklevel=2)  # fmt: skip
    kinds = {n: s.kind for n, s in zip(model_names, sources)}
    metric_kinds, metrics = zip(*[_sr_metric(m, args.scale, args.device, args.vlm_backend) for m in metric_sources])
    for name, metric in zip(metric_names, metrics):
        if isinstance(metric, str):
            print(f"{name}: {metric}; reported as such, the other metrics are still scored")
    normalisations = _sr_normalisations(args, metric_names, metrics, metric_kinds)
    cache = SROutputCache(os.path.join(args.output_dir, "sr_cache"))
    scores = ScoreCache(cache.folder)  # every unit stored as it is scored: a rerun after a kill computes the rest
    batch_size = args.batch_size or (8 if torch.device(args.device).type == "cuda" else 1)
    units, digests = score_sr_leaderboard(test_sets, model_names, sources, metric_names, metrics, metric_kinds, cache,
                                          args.device, batch_size, args.tile, args.max_images, scores,
                                          (state.process_index, state.num_processes))  # fmt: skip
    counts = [scores.reused, scores.computed]
    if state.num_processes > 1:  # every process's units on the main process, which alone writes the files
        units, parts = gather_object(units), gather_object([digests])
        digests = {name: [d for part in parts for d in part[name]] for name in digests}
        counts = [sum(c) for c in zip(*gather_object([counts]))]
        if not state.is_main_process:
            return []
    print(f"score units: {counts[0]} reused from {scores.folder}, {counts[1]} computed")
    records, per_image = sr_records(units, digests, test_sets, model_names, sources, metric_names, metrics,
                                    metric_kinds, normalisations)  # fmt: skip
    write_records(records, args.output_dir, "sr_results")
    write_records(per_image, args.output_dir, "sr_scores")
    os.remove(os.path.join(args.output_dir, "sr_scores.json"))  # per-image scores: the csv only
    tables = []
    for test_set in test_sets:
        group = [r for r in records if r["dataset"] == test_set.name]
        tables.append(f"### {test_set.name}\n\n" + sr_table(group, model_names, metric_names, losses, kinds))
    text = "\n\n".join(tables)
    write_text(os.path.join(args.output_dir, "sr_results.md"), text + "\n")
    print(text)
    return records
