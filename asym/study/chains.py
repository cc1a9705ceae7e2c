"""The studies asym reproduces, as commands: the asymmetry paper's chain (``paper_commands``), the same chain on
``builtin`` with tiny models (``smoke_commands``), and the robust-loss study (``robust_commands``). Each is a list of
``(script, args)``; ``asym.study.graph.Study`` derives what each run reads from the arguments.

The paper's chain, by its tables and figures (arXiv:2509.20878; where the paper is silent, the choice is said here and
in docs/reproduce_paper.md):

* Table 4: a DISTS-style metric per backbone, trained on KADID-10k, scored on TID2013 / Liu13 / Ma17 / TQD.
* SR stage 1 (L1 only, 100K steps), then stage 2 from it (400K steps) with each metric as the perceptual loss under
  the four loss settings (Table 1, scored by four NR-IQA models on a 1..100 scale) and Fig. 3 (assessment vs loss).
* Table 3: the adversarial term's discriminator, vanilla (one logit per image) or patch-level (one per location), on
  VGG-16, ResNet-50 and DINOv2, every run L1 + ell_VGG-16 (the trained VGG-16 metric) + adversarial; the vanilla
  VGG-16 run is Table 1's VGG-16 ``rec+per+adv`` run, and "w/o (base)" its ``rec+per`` run.
* Table 2 (FR) and Fig. 5/8 (NR): quality models from random, ImageNet or GAN-discriminator weights. The paper does
  not say which discriminator type initialises them: here the vanilla ones of Table 3 (the discriminator of the
  paper's main GAN recipe), each trained with ell_VGG-16 as the paper's other adversarial runs are.
* Fig. 7: the adversarial weight swept for the patch-level discriminators (Sec. 3.4); the figure's weights are not in
  the text: 0.001, 0.005 (the default, so Table 3's patch runs) and 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence

LOSSES = ("per", "rec+per", "per+adv", "rec+per+adv")
METRIC_BACKBONES = ("vgg16-r", "vgg16", "resnet50", "convnext", "clip-vit", "swin-t")  # Table 4
GAN_BACKBONES = ("vgg16", "resnet50", "dinov2")  # Tables 2 and 3, Figs. 5, 7, 8
DISC_TYPES = ("vanilla", "patch")  # Table 3
SWEEP_WEIGHTS = ("0.001", "0.005", "0.01")  # Fig. 7 (0.005: train_sr.py's default --lambda_adv)
NR_METRICS = "maniqa,liqe,deqa,visualquality-r1"  # Table 1
FR_SETS = ("tid2013", "liu13", "ma17", "tqd")  # Tables 2 and 4


def _gan_run(out: str, disc_type: str, backbone: str) -> str:
    """The folder of the L1 + ell_VGG-16 + adversarial run with this discriminator: Table 1's own for vanilla VGG-16."""
    if (disc_type, backbone) == ("vanilla", "vgg16"):
        return f"{out}/sr-vgg16-rec+per+adv"
    return f"{out}/gan-{disc_type}-{backbone}"


def paper_commands(data: str, out: str) -> list[tuple[str, list[str]]]:
    """The full study on real data, with the paper's settings (the scripts' defaults)."""
    fr_sets = ",".join(f"{data}/{d}" for d in FR_SETS)
    div2k = ["--train_data_dir", f"{data}/DIV2K_train_HR", "--validation_data_dir", f"{data}/DIV2K_valid_HR"]
    bf16 = ["--mixed_precision", "bf16"]
    stage2 = ["--init_generator", f"{out}/sr-stage1", "--max_train_steps", "400000", *div2k, *bf16]
    ell_vgg16 = ["--per_metric", f"{out}/metric-vgg16"]
    table1_maps = ["--normalisation", f"{out}/table1/normalisation.json"]
    valid = ["--datasets", f"{data}/DIV2K_valid_HR"]
    cmds = [("train_metric.py", ["--backbone", b, "--dataset_name", f"{data}/kadid10k", *bf16,
                                 "--output_dir", f"{out}/metric-{b}"]) for b in METRIC_BACKBONES]  # fmt: skip
    metrics = ",".join(f"{out}/metric-{b}" for b in METRIC_BACKBONES)
    cmds.append(("evaluate.py", ["fr", "--metrics", metrics, "--datasets", fr_sets, "--output_dir", f"{out}/table4"]))
    cmds.append(("train_sr.py", ["--loss", "rec", "--max_train_steps", "100000", *div2k, *bf16,
                                 "--output_dir", f"{out}/sr-stage1"]))  # fmt: skip
    table1 = []
    for b in METRIC_BACKBONES:
        for loss in LOSSES:
            table1.append(f"{out}/sr-{b}-{loss}")
            cmds.append(("train_sr.py", ["--loss", loss, "--per_metric", f"{out}/metric-{b}", *stage2,
                                         "--output_dir", table1[-1]]))  # fmt: skip
    cmds.append(("evaluate.py", ["sr", "--models", ",".join([*table1, f"{out}/sr-stage1", "bicubic", "hr"]),
                                 "--metrics", NR_METRICS, *valid, "--calibration_dataset", f"{data}/koniq10k",
                                 "--output_dir", f"{out}/table1"]))  # fmt: skip
    cmds.append(("evaluate.py", ["correlation", "--fr_results", f"{out}/table4/fr_results.json", "--sr_results",
                                 f"{out}/table1/sr_results.json", "--output_dir", f"{out}/fig3"]))  # fmt: skip
    gans = [_gan_run(out, t, b) for t in DISC_TYPES for b in GAN_BACKBONES]
    for t in DISC_TYPES:  # Table 3 (its vanilla VGG-16 run is Table 1's)
        for b in GAN_BACKBONES:
            if _gan_run(out, t, b).startswith(f"{out}/gan-"):
                cmds.append(("train_sr.py", ["--loss", "rec+per+adv", *ell_vgg16, "--disc_type", t, "--disc_backbone",
                                             b, *stage2, "--output_dir", _gan_run(out, t, b)]))  # fmt: skip
    cmds += _table3(out, gans, f"{out}/sr-vgg16-rec+per", NR_METRICS, valid, table1_maps)
    fr_runs, nr_runs = [], []
    for b in GAN_BACKBONES:  # Table 2 and Fig. 5/8, from the vanilla discriminators' backbones
        for weights, name in (("random", "random"), ("pretrained", "imagenet"),
                              (f"gan:{_gan_run(out, 'vanilla', b)}", "gan")):  # fmt: skip
            fr_runs.append(f"{out}/fr-{b}-{name}")
            cmds.append(("train_metric.py", ["--backbone", b, "--weights", weights, "--dataset_name",
                                             f"{data}/kadid10k", *bf16, "--output_dir", fr_runs[-1]]))  # fmt: skip
            for d in ("kadid10k", "koniq10k"):
                nr_runs.append(f"{out}/nr-{d}-{b}-{name}")
                cmds.append(("train_iqa.py", ["--mode", "nr", "--backbone", b, "--weights", weights, "--dataset_name",
                                              f"{data}/{d}", *bf16, "--output_dir", nr_runs[-1]]))  # fmt: skip
    cmds.append(("evaluate.py", ["fr", "--metrics", ",".join(fr_runs), "--datasets", fr_sets, "--output_dir",
                                 f"{out}/table2"]))  # fmt: skip
    cmds.append(("evaluate.py", ["init-comparison", "--results", ",".join(nr_runs + fr_runs), "--output_dir",
                                 f"{out}/fig5-8"]))  # fmt: skip
    sweep = []
    for b in GAN_BACKBONES:  # Fig. 7: patch-level discriminators; 0.005 is Table 3's run
        for weight in SWEEP_WEIGHTS:
            sweep.append(_sweep_run(out, b, weight))
            if sweep[-1].startswith(f"{out}/sweep-"):
                cmds.append(("train_sr.py", ["--loss", "rec+per+adv", *ell_vgg16, "--disc_type", "patch",
                                             "--disc_backbone", b, "--lambda_adv", weight, *stage2, "--output_dir",
                                             sweep[-1]]))  # fmt: skip
    cmds += _sweep(out, sweep, NR_METRICS, valid, table1_maps)
    return cmds


def _sweep_run(out: str, backbone: str, weight: str) -> str:
    return _gan_run(out, "patch", backbone) if weight == "0.005" else f"{out}/sweep-{backbone}-{weight}"


def _table3(out: str, gans: list[str], base: str, metrics: str, datasets: list[str], maps: list[str]) -> list:
    """Table 3's evaluations: the GAN runs and the base scored (with Table 1's 1..100 maps), then the table."""
    return [("evaluate.py", ["sr", "--models", ",".join([*gans, base]), "--metrics", metrics, *datasets, *maps,
                             "--output_dir", f"{out}/table3-sr"]),
            ("evaluate.py", ["discriminators", "--runs", ",".join(gans), "--base", base, "--sr_results",
                             f"{out}/table3-sr/sr_results.json", "--output_dir", f"{out}/table3"])]  # fmt: skip


def _sweep(out: str, runs: list[str], metrics: str, datasets: list[str], maps: list[str]) -> list:
    """Fig. 7's evaluations: the sweep's runs scored (with Table 1's maps), then the figure."""
    return [("evaluate.py", ["sr", "--models", ",".join(runs), "--metrics", metrics, *datasets, *maps,
                             "--output_dir", f"{out}/sweep"]),
            ("evaluate.py", ["sweep", "--runs", ",".join(runs), "--sr_results", f"{out}/sweep/sr_results.json",
                             "--output_dir", f"{out}/fig7"])]  # fmt: skip


def smoke_commands(out: str) -> list[tuple[str, list[str]]]:
    """The same chain on ``builtin``: three metric backbones (vgg16-r is only evaluated), a 2-step ``rec`` stage 1, then
    from it the four loss settings on VGG-16 plus ``per`` on the other two (so Fig. 3's ``per`` setting has three
    points), Table 3 on VGG-16 and ResNet-50 discriminators (vanilla and patch), one GAN-initialised NR model, a
    three-point sweep of the patch-level VGG-16 discriminator, 2 steps of the tiny generator each, evaluations on a
    few images. Pretrained weights: none (random everywhere); scorers whose weights cannot be fetched (maniqa offline)
    are reported unavailable."""
    quiet = ["--report_to", "none"]
    metric = ["--weights", "random", "--max_train_steps", "3", "--crop_size", "64", "--train_batch_size", "4",
              "--max_eval_samples", "4", "--validation_steps", "3", *quiet]  # fmt: skip
    sr = ["--model", "tiny", "--crop_size", "32", "--max_train_steps", "2", "--num_validation_images", "1",
          "--weights", "random", *quiet]  # fmt: skip
    stage2 = [*sr, "--init_generator", f"{out}/sr-stage1"]
    ell_vgg16 = ["--per_metric", f"{out}/metric-vgg16"]
    backbones = ("vgg16-r", "vgg16", "resnet50")
    cmds = [("train_metric.py", [*metric, "--backbone", b, "--output_dir", f"{out}/metric-{b}"]) for b in backbones]
    cmds.append(("evaluate.py", ["fr", "--metrics", ",".join(f"{out}/metric-{b}" for b in backbones), "--datasets",
                                 "builtin", "--max_samples", "8", "--output_dir", f"{out}/table4"]))  # fmt: skip
    cmds.append(("train_sr.py", [*sr, "--loss", "rec", "--output_dir", f"{out}/sr-stage1"]))
    runs = [(b, loss) for b in ("vgg16",) for loss in LOSSES] + [(b, "per") for b in ("vgg16-r", "resnet50")]
    for b, loss in runs:
        cmds.append(("train_sr.py", [*stage2, "--loss", loss, "--per_metric", f"{out}/metric-{b}",
                                     "--output_dir", f"{out}/sr-{b}-{loss}"]))  # fmt: skip
    models = ",".join([f"{out}/sr-{b}-{loss}" for b, loss in runs] + [f"{out}/sr-stage1", "bicubic", "hr"])
    few = ["--datasets", "builtin", "--max_images", "2"]
    cmds.append(("evaluate.py", ["sr", "--models", models, "--metrics", "psnr,piqe,maniqa", *few,
                                 "--calibration_dataset", "builtin", "--output_dir", f"{out}/table1"]))  # fmt: skip
    cmds.append(("evaluate.py", ["correlation", "--fr_results", f"{out}/table4/fr_results.json", "--sr_results",
                                 f"{out}/table1/sr_results.json", "--output_dir", f"{out}/fig3"]))  # fmt: skip
    disc_backbones = ("vgg16", "resnet50")
    gans = [_gan_run(out, t, b) for t in DISC_TYPES for b in disc_backbones]
    for t in DISC_TYPES:
        for b in disc_backbones:
            if _gan_run(out, t, b).startswith(f"{out}/gan-"):
                cmds.append(("train_sr.py", [*stage2, "--loss", "rec+per+adv", *ell_vgg16, "--disc_type", t,
                                             "--disc_backbone", b, "--output_dir", _gan_run(out, t, b)]))  # fmt: skip
    maps = ["--normalisation", f"{out}/table1/normalisation.json"]
    cmds += _table3(out, gans, f"{out}/sr-vgg16-rec+per", "piqe", few, maps)
    cmds.append(("train_iqa.py", ["--mode", "nr", "--backbone", "vgg16", "--weights",
                                  f"gan:{_gan_run(out, 'vanilla', 'vgg16')}", "--max_train_steps", "2", "--crop_size",
                                  "64", "--train_batch_size", "4", "--max_eval_samples", "4", *quiet, "--output_dir",
                                  f"{out}/iqa-vgg16-gan"]))  # fmt: skip
    cmds.append(("evaluate.py", ["nr", "--models", f"{out}/iqa-vgg16-gan,piqe", "--datasets", "builtin",
                                 "--max_samples", "8", "--output_dir", f"{out}/nr"]))  # fmt: skip
    cmds.append(("evaluate.py", ["init-comparison", "--results", f"{out}/iqa-vgg16-gan,{out}/metric-vgg16",
                                 "--output_dir", f"{out}/fig5-8"]))  # fmt: skip
    sweep = [_sweep_run(out, "vgg16", weight) for weight in SWEEP_WEIGHTS]
    for run, weight in zip(sweep, SWEEP_WEIGHTS):
        if run.startswith(f"{out}/sweep-"):
            cmds.append(("train_sr.py", [*stage2, "--loss", "rec+per+adv", *ell_vgg16, "--disc_type", "patch",
                                         "--disc_backbone", "vgg16", "--lambda_adv", weight, "--output_dir",
                                         run]))  # fmt: skip
    cmds += _sweep(out, sweep, "piqe", few, maps)
    return cmds


def robust_commands(data: str, out: str) -> list[tuple[str, list[str]]]:
    """The robust-loss study (Uelwer et al.) on real data: a robust VGG-19 (PGD + ALP on ImageNet), EnhanceNet x4 with
    E, E+P and E+P+T on standard and robust features, R-LPIPS on BAPPS, the table on the five test sets, and Fig. 1
    (classifiers' top-1 error on super-resolved ImageNet validation images)."""
    div2k = ["--train_data_dir", f"{data}/DIV2K_train_HR"]
    imagenet = ["--dataset_name", "ILSVRC/imagenet-1k", "--crop_size", "224"]
    cmds = [
        ("train_robust.py", ["--backbone", "vgg19", *imagenet, "--output_dir", f"{out}/robust-vgg19"]),
        ("train_sr.py", ["--model", "enhancenet", "--loss", "mse", *div2k, "--output_dir", f"{out}/E"]),
    ]
    models = [f"{out}/E"]
    for loss in ("mse+feat", "mse+feat+texture"):
        for features, suffix in (("pretrained", ""), (f"{out}/robust-vgg19", "-robust")):
            models.append(f"{out}/{loss}{suffix}")
            cmds.append(("train_sr.py", ["--model", "enhancenet", "--loss", loss, "--feat_weights", features, *div2k,
                                         "--output_dir", models[-1]]))  # fmt: skip
    cmds.append(("train_metric.py", ["--objective", "2afc", "--dataset_name", f"{data}/bapps", "--attack", "pgd",
                                     "--output_dir", f"{out}/rlpips"]))  # fmt: skip
    listed = ",".join([*models, "bicubic", "hr"])
    sets = ",".join(f"{data}/{s}" for s in ("Set5", "Set14", "BSD100", "Urban100", "Manga109"))
    cmds.append(("evaluate.py", ["sr", "--models", listed, "--metrics", f"psnr,ssim,uqi,ifc,gmsd,lpips,{out}/rlpips",
                                 "--datasets", sets, "--output_dir", f"{out}/enhancenet"]))  # fmt: skip
    cmds.append(("evaluate.py", ["robust-table", "--sr_results", f"{out}/enhancenet/sr_results.json", "--output_dir",
                                 f"{out}/robust-table"]))  # fmt: skip
    cmds.append(("evaluate.py", ["classify", "--classifiers", f"vgg19,resnet50,{out}/robust-vgg19",
                                 "--classifier_weights", "IMAGENET1K_V1", "--models", listed, "--dataset",
                                 f"{data}/imagenet/val", "--max_images", "5000", "--output_dir",
                                 f"{out}/fig1"]))  # fmt: skip
    return cmds


STUDIES = {"paper": paper_commands, "robust": robust_commands}  # --study: the real-data chains; --smoke: the paper's


def command_flags(argv: Sequence[str]) -> dict[str, str | bool]:
    """A command's flags in order: ``--name value`` pairs, and switches on their own (``--compile``: True). The one
    reader of the study's command lines (stages, measured commands, what a run reads)."""
    flags, i = {}, 0
    while i < len(argv):
        valued = i + 1 < len(argv) and not argv[i + 1].startswith("--")
        flags[argv[i]] = argv[i + 1] if valued else True
        i += 2 if valued else 1
    return flags


def command_argv(flags: dict[str, str | bool]) -> list[str]:
    """``command_flags`` written back as arguments."""
    return [token for name, value in flags.items() for token in ((name,) if value is True else (name, value))]


TRAINING_SCRIPTS = ("train_sr.py", "train_metric.py", "train_iqa.py", "train_robust.py")
SPEED_FLAGS = {"--compile": 0, "--compile_mode": 1, "--channels_last": 0, "--allow_tf32": 0, "--attention": 1}


def with_speed_flags(commands: list[tuple[str, list[str]]], flags: list[str]) -> list[tuple[str, list[str]]]:
    """The commands with the GPU speed options ``flags`` added to every training run (``--compile``,
    ``--compile_mode M``, ``--channels_last``, ``--allow_tf32``; ``--attention sdpa`` to train_sr.py's SwinIR runs
    only), so that the runs and the preflight that measures them use the same options. A flag that is not a speed
    option is a UserError."""
    from ..core.errors import UserError
    from ..sr.models import GENERATORS

    pairs, i = [], 0
    while i < len(flags):
        flag = flags[i]
        if flag not in SPEED_FLAGS:
            raise UserError(f"--speed_flags: {flag!r} is not a speed option ({', '.join(SPEED_FLAGS)})")
        width = SPEED_FLAGS[flag]
        if width and i + 1 >= len(flags):
            raise UserError(f"--speed_flags: {flag} needs a value")
        pairs.append(flags[i : i + 1 + width])
        i += 1 + width
    added = []
    for script, argv in commands:
        if script in TRAINING_SCRIPTS:
            model = command_flags(argv).get("--model", "swinir")
            windows = script == "train_sr.py" and GENERATORS.get(model, {}).get("arch") == "swinir"
            argv = [*argv, *(a for pair in pairs if pair[0] != "--attention" or windows for a in pair)]
        added.append((script, argv))
    return added
