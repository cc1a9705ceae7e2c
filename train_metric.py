"""Learn a DISTS-style metric on any backbone: the backbone stays frozen, only alpha/beta are trained.

    accelerate launch train_metric.py --backbone resnet50 --dataset_name path/to/kadid10k

The paper's recipe is the default: Adam 1e-4 halved every 1000 steps, 5000 steps, batch 32, KADID-10k,
alpha/beta kept non-negative and normalised with the zeroth-stage weights in [0.02, 1]. Objective: 1 - PLCC
between -D and the MOS of each batch (scale- and shift-invariant, as the metric's scale is arbitrary).
`vgg16-r` keeps its random, fixed alpha/beta and is only evaluated. Images are split 6:2:2 by reference (split.json;
--split_file reuses a split); test SRCC/PLCC/KRCC go to results.json (with the test set's fingerprint) and the model
card. Every image the run reads is read once before it starts: a truncated or foreign file is one error naming it.

`--objective 2afc` trains an LPIPS (its per-channel linear weights, the backbone frozen: LPIPS's "lin" mode) on the
BAPPS 2AFC judgements with LPIPS's recipe, and with `--attack pgd` on adversarial triplets (R-LPIPS):

    accelerate launch train_metric.py --objective 2afc --dataset_name path/to/bapps                  # LPIPS
    accelerate launch train_metric.py --objective 2afc --dataset_name path/to/bapps --attack pgd     # R-LPIPS

Recipe (the lpips package's trainer): a Dist2Logit network maps the two distances to the predicted human judgement,
binary cross-entropy against it; Adam 1e-4, betas (0.5, 0.999), batch 50, dropout 0.5 before the linear weights,
which are clamped >= 0 after each step; 10 epochs, the learning rate constant for the first half, then linearly to
0. Distances are ``D(ref, p)``, LPIPS's order. The 2AFC score of every BAPPS val subset (and their mean) goes to
results.json and the model card.
"""

from __future__ import annotations

import argparse
import os

import torch

from asym import DISTS, LPIPS, list_backbones
from asym.core.atomic import atomic_path
from asym.core.decoded_cache import add_cache_args, configure_from_args, log_cache_report
from asym.core.errors import UserError
from asym.core.flags import float_in, int_at_least, positive_fraction, positive_int, unit_interval
from asym.core.model_card import (
    card_dataset_type,
    correlation_results,
    model_card_facts,
    push_to_hub,
    set_card_metadata,
)
from asym.core.progress import tqdm
from asym.core.train_loader import DataWait, create_train_loader
from asym.core.training import (
    add_common_args,
    apply_channels_last,
    create_accelerator,
    evenly_spaced,
    logger,
    plain_model,
    resume,
    run_cli,
    save_checkpoint,
)
from asym.iqa.data import add_fr_dataset_args, fr_dataset_kwargs, load_fr_dataset
from asym.iqa.data.layouts.bapps import BAPPS_SIZE, BAPPS_SUBSETS, TwoAFCDataset, load_two_afc, verify_triplets
from asym.iqa.data.splits import add_split_args, dataset_eval_set, eval_set_record, save_split, split_iqa_dataset
from asym.iqa.results import write_results
from asym.iqa.two_afc import (
    LPIPS_INITS,
    TRIPLET,
    Dist2Logit,
    build_lpips,
    describe_2afc,
    describe_attack,
    evaluate_2afc,
    lpips_lr_factor,
    perturb_triplet,
    ranking_loss,
    triplet_distances,
    two_afc_results,
    two_afc_scores,
)
from asym.metrics import correlations, pearson_loss, score_pairs
from asym.nets.pgd import NORMS

PLCC_INITS = ("uniform", "dists", "random")  # alpha/beta
STUDY_ATTACK = {"attack_norm": "l2", "attack_eps": 1.33, "attack_steps": 10, "attack_inputs": "ref,p0,p1"}
# per objective: flag -> default where the objectives differ (None in the parser, so that a given value is seen)
OBJECTIVE_DEFAULTS = {
    "plcc": {"init": "uniform", "train_batch_size": 32, "adam_beta1": 0.9, "max_train_steps": 5000},
    "2afc": {"init": "random", "train_batch_size": 50, "adam_beta1": 0.5, "max_train_steps": None, "load_size":
             BAPPS_SIZE, "lpips_dropout": 0.5},
}  # fmt: skip
TWO_AFC_ONLY = ("train_subsets", "val_subsets", "load_size", "lpips_dropout", *STUDY_ATTACK, "attack_step_size")
LPIPS_EPOCHS = 10  # the lpips trainer's 5 epochs at the base rate + 5 decaying ones


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = parser.add_argument_group("metric")
    g.add_argument("--backbone", default="vgg16", help=f"feature backbone: {', '.join(list_backbones())}, timm:, hf:")
    g.add_argument(
        "--weights", default="auto", help="backbone weights: auto, pretrained, random, file, Hub id, gan:<run>"
    )
    g.add_argument("--objective", default="plcc", choices=["plcc", "2afc"],
                   help="plcc: alpha/beta of a DISTS on MOS (1 - PLCC per batch); 2afc: the linear weights of an "
                        "LPIPS on BAPPS 2AFC judgements (LPIPS's recipe; R-LPIPS with --attack pgd)")  # fmt: skip
    g.add_argument("--init", default=None,
                   help=f"initial weights. plcc: alpha/beta {', '.join(PLCC_INITS)} (default uniform); 2afc: linear "
                        f"weights {', '.join(LPIPS_INITS)} (default random: LPIPS's; lpips: its release) or an "
                        "lpips-format .pth/.safetensors file (LPIPS.from_lpips_state_dict)")  # fmt: skip
    g.add_argument("--lr_halving_steps", type=positive_int, default=1000, help="halve the learning rate every N steps")
    g.add_argument("--stage0_min", type=float_in(0, 1), default=0.02,
                   help="lower bound of the raw-image alpha/beta, in [0, 1] (0: none; at most 1 / (2 x the "
                        "backbone's input channels): alpha and beta sum to 1)")  # fmt: skip
    d = parser.add_argument_group("data")
    d.add_argument("--dataset_name", default="builtin", help="builtin, an IQA folder (KADID-10k, ...) or a Hub id")
    d.add_argument(
        "--crop_size",
        type=positive_int,
        default=256,
        help="training crop, same window in both images (capped at the smallest training image)",
    )
    d.add_argument("--validation_steps", type=positive_int, default=500,
                   help="validate every N steps (and at the end)")  # fmt: skip
    d.add_argument(
        "--max_eval_samples",
        type=int_at_least(3),
        default=None,
        help="evaluate on at most N validation and N test pairs, evenly spaced (quick runs, debugging)",
    )
    add_fr_dataset_args(parser)
    add_split_args(parser)
    t = parser.add_argument_group("2afc objective (--objective 2afc: LPIPS / R-LPIPS on BAPPS; --dataset_name is the "
                                  "folder holding 2afc/, or builtin)")  # fmt: skip
    t.add_argument("--train_subsets", default=None,
                   help=f"comma-separated 2afc/train subsets (default: all found; BAPPS: "
                        f"{','.join(BAPPS_SUBSETS['train'])})")  # fmt: skip
    t.add_argument("--val_subsets", default=None,
                   help=f"comma-separated 2afc/val subsets (default: all found; BAPPS: "
                        f"{','.join(BAPPS_SUBSETS['val'])})")  # fmt: skip
    t.add_argument("--load_size", type=int_at_least(16), default=None, help="images resized to this square (64)")
    t.add_argument("--lpips_dropout", type=unit_interval, default=None,
                   help="dropout before the linear weights, in [0, 1) (0.5; 0: none)")  # fmt: skip
    t.add_argument("--attack", default="none", choices=["none", "pgd"],
                   help="pgd: train on PGD triplets (R-LPIPS); the attack defaults are the robust-loss study's: L2, "
                        "eps 1.33, 10 steps, all three images")  # fmt: skip
    t.add_argument("--attack_norm", default=None, choices=NORMS, help="ball of the attack (l2)")
    t.add_argument("--attack_eps", type=positive_fraction, default=None,
                   help="radius in [0, 1] image space, per image (1.33); a radius for [-1, 1] images is halved: the "
                        "public R-LPIPS code's L-inf 8/255 is 4/255 here")  # fmt: skip
    t.add_argument("--attack_steps", type=int_at_least(1), default=None, help="PGD steps (10)")
    t.add_argument("--attack_step_size", type=positive_fraction, default=None,
                   help="PGD step (default 2.5 eps / steps)")  # fmt: skip
    t.add_argument("--attack_inputs", default=None, help="which images are perturbed: some of ref,p0,p1 (all three)")
    t.add_argument("--attack_random_start", action="store_true", help="start PGD at a random point of the ball")
    add_common_args(parser, "output/metric")
    add_cache_args(parser)
    parser.set_defaults(learning_rate=1e-4, max_train_steps=None, train_batch_size=None, adam_beta1=None)
    args = parser.parse_args(input_args)
    _resolve_objective(parser, args)
    return args


def _resolve_objective(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill in the defaults of ``--objective`` and refuse flags that do not apply to it."""
    for key, value in OBJECTIVE_DEFAULTS[args.objective].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.objective == "plcc":
        given = [f"--{k}" for k in TWO_AFC_ONLY if getattr(args, k) is not None]
        given += ["--attack"] * (args.attack != "none") + ["--attack_random_start"] * args.attack_random_start
        if given:
            parser.error(f"{given[0]} applies to --objective 2afc only")
        if args.init not in PLCC_INITS:
            parser.error(f"argument --init: invalid choice: {args.init!r} (choose from {', '.join(PLCC_INITS)})")
        return
    if args.split_file or args.split != "random":
        parser.error("--split / --split_file do not apply to --objective 2afc: BAPPS has its own train and val")
    attack_flags = [*STUDY_ATTACK, "attack_step_size"]
    if args.attack == "none":
        given = [f"--{k}" for k in attack_flags if getattr(args, k) is not None]
        if given or args.attack_random_start:
            parser.error(f"{(given or ['--attack_random_start'])[0]} needs --attack pgd")
        return
    for key, value in STUDY_ATTACK.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    inputs = [name.strip() for name in args.attack_inputs.split(",") if name.strip()]
    if not inputs or any(name not in TRIPLET for name in inputs) or len(set(inputs)) != len(inputs):
        parser.error(f"--attack_inputs {args.attack_inputs!r}: name some of ref, p0, p1 once each, comma-separated")
    args.attack_inputs = ",".join(name for name in TRIPLET if name in inputs)


def evaluate(metric, dataset, device, progress: bool) -> dict[str, float]:
    """SRCC/PLCC/KRCC of -D against the MOS (oriented "higher is better") over full images."""
    preds = -score_pairs(metric, dataset, device, desc="evaluating", progress=progress)
    return correlations(preds, dataset.quality())


def main(args):
    if args.objective == "2afc":
        return train_2afc(args)
    accelerator = create_accelerator(args, DISTS)
    torch.manual_seed(args.seed)

    # Data: triplets split 6:2:2 by reference image, so no reference is seen in two splits; images read through the
    # decoded-image cache (asym.core.decoded_cache) unless --no_cache.
    configure_from_args(args)
    data = load_fr_dataset(args.dataset_name, **fr_dataset_kwargs(args))
    logger.info("%s: %d pairs, scores %s", data.name, len(data), data.direction)
    data.check_scores_vary()  # a constant MOS column: nothing to learn, no correlation to report
    split = split_iqa_dataset(data, args)  # also caps --crop_size at the smallest training image
    train_set, val_set, test_set = split.train, split.validation, split.test
    train_set.check_scores_vary("the training split")
    sign = -1.0 if data.lower_better else 1.0  # MOS oriented "higher is better"
    show = accelerator.is_main_process  # progress bars
    with accelerator.main_process_first():  # every image the run reads, decoded once now (into the cache): a broken
        for part in (train_set, val_set, test_set):  # file fails here; the other processes then read the entries
            part.verify_images(show)
    log_cache_report(logger)

    # The metric: frozen backbone, trainable alpha/beta (vgg16-r: random and fixed).
    init = "random" if args.backbone == "vgg16-r" else args.init
    with accelerator.main_process_first():  # downloads once; every process then reads the same cached weights
        metric = DISTS(args.backbone, weights=args.weights, alpha_beta=init, seed=args.seed)
    trainable = args.backbone != "vgg16-r"
    raw = 2 * metric.backbone.channels[0]  # alpha and beta of each raw-image channel, bounded below by --stage0_min
    if trainable and raw * args.stage0_min > 1:
        raise UserError(f"--stage0_min {args.stage0_min} leaves no alpha/beta summing to 1 on {args.backbone} "
                        f"({raw} raw-image weights): use at most {1 / raw:.4g}")  # fmt: skip
    initial = evaluate(metric.to(accelerator.device), val_set, accelerator.device, show)
    logger.info("initial validation SRCC %.4f PLCC %.4f", initial["srcc"], initial["plcc"])

    betas = (args.adam_beta1, args.adam_beta2)
    optimizer = torch.optim.Adam([metric.alpha, metric.beta], lr=args.learning_rate, betas=betas)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_halving_steps, gamma=0.5)
    global_step = 0
    if trainable:
        apply_channels_last(args, metric)  # --channels_last
        metric, optimizer = accelerator.prepare(metric, optimizer)
        accelerator.register_for_checkpointing(scheduler)
        global_step = resume(accelerator, args)
    if accelerator.is_main_process:  # written once the inputs are known to be good: a failed run leaves nothing
        save_split(os.path.join(args.output_dir, "split.json"), data, split.parts, split.how)
    plain = plain_model(accelerator, metric)
    loader = create_train_loader(train_set, args, accelerator, global_step)
    if accelerator.is_main_process:
        accelerator.init_trackers("train_metric", config=vars(args))

    # Train!
    steps = args.max_train_steps if trainable else 0
    progress = tqdm(range(steps), initial=global_step, disable=not accelerator.is_main_process or not steps)
    batches, history = DataWait(loader), []
    val, val_step = initial, 0  # the latest validation, and the step it was taken at
    while global_step < steps:
        batch = next(batches)
        dist, ref = batch["dist"].to(accelerator.device), batch["ref"].to(accelerator.device)
        with accelerator.accumulate(metric), accelerator.autocast():
            loss = pearson_loss(-metric(dist, ref), sign * batch["score"].to(accelerator.device))
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            continue
        plain.project_((args.stage0_min, 1.0))  # back onto the constraint set after every step
        scheduler.step()
        global_step += 1
        progress.update(1)
        logs = {"loss": loss.item(), "lr": scheduler.get_last_lr()[0], **batches.perf()}
        progress.set_postfix(loss=f"{logs['loss']:.4f}")
        if global_step % args.validation_steps == 0 or global_step == steps:
            val, val_step = evaluate(plain, val_set, accelerator.device, show), global_step
            logs |= {"val/srcc": val["srcc"], "val/plcc": val["plcc"]}
        accelerator.log(logs, step=global_step)
        history.append(logs)
        if global_step % args.checkpointing_steps == 0:
            save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)

    # Save the metric with its validation and test agreement in the model card.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if val_step != global_step:  # not validated after the last step (e.g. resumed at the end)
            val = evaluate(plain, val_set, accelerator.device, show)
        test = evaluate(plain, test_set, accelerator.device, show)
        logger.info("validation SRCC %.4f PLCC %.4f | test SRCC %.4f PLCC %.4f; %s",
                    val["srcc"], val["plcc"], test["srcc"], test["plcc"], batches.summary())  # fmt: skip
        plain.card = model_card_facts(args, ["dataset_name", "weights", "init", "learning_rate", "lr_halving_steps",
                                             "max_train_steps", "train_batch_size", "crop_size", "seed"])  # fmt: skip
        plain.card |= {
            "objective": "1 - PLCC(-D, MOS) per batch; alpha/beta projected after each step",
            "split": split.description,
            "initial validation": f"SRCC {initial['srcc']:.4f}, PLCC {initial['plcc']:.4f}",
            "validation": f"SRCC {val['srcc']:.4f}, PLCC {val['plcc']:.4f}",
            "test": f"SRCC {test['srcc']:.4f}, PLCC {test['plcc']:.4f}",
            "steps trained": global_step,
        }
        dataset_type = card_dataset_type(args.dataset_name)
        set_card_metadata(plain, args, correlation_results("fr", dataset_type, data.name, "test", test), args.weights)
        plain.save_pretrained(args.output_dir)
        source = plain.backbone.weights_source
        write_results(args.output_dir, "train_metric", args, mode="fr", weights_source=source, dataset=data.name,
                      split=split.description, steps=global_step, best_step=None, initial=initial, validation=val,
                      test=test, test_set=dataset_eval_set(test_set))  # fmt: skip
        if args.push_to_hub:
            push_to_hub(args)
    accelerator.wait_for_everyone()  # no process leaves while the main one still writes (gloo would abort it)
    accelerator.end_training()
    return {"initial": initial, "history": history}


# --- 2AFC objective: LPIPS / R-LPIPS on BAPPS --------------------------------------------------------------------


def _subsets(text: str | None) -> list[str] | None:
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def train_2afc(args):
    """``--objective 2afc``: LPIPS's linear weights on BAPPS judgements, on adversarial triplets with ``--attack``."""
    accelerator = create_accelerator(args, LPIPS)
    torch.manual_seed(args.seed)
    show = accelerator.is_main_process

    # Data: BAPPS train subsets for training, every val subset scored apart (BAPPS has no test split).
    train_sets = load_two_afc(args.dataset_name, "train", _subsets(args.train_subsets))
    val_sets = load_two_afc(args.dataset_name, "val", _subsets(args.val_subsets))
    if args.max_eval_samples:
        val_sets = {s: [t[i] for i in evenly_spaced(list(range(len(t))), args.max_eval_samples)]
                    for s, t in val_sets.items()}  # fmt: skip
    train_triplets = [t for triplets in train_sets.values() for t in triplets]
    per_step = args.train_batch_size * accelerator.num_processes
    if args.max_train_steps is None:  # LPIPS's 10 epochs
        args.max_train_steps = LPIPS_EPOCHS * max(1, len(train_triplets) // per_step)
    name = "builtin" if args.dataset_name == "builtin" else os.path.basename(os.path.normpath(args.dataset_name))
    split = (f"2afc/train {', '.join(train_sets)} ({len(train_triplets)} triplets); 2afc/val "
             + ", ".join(f"{s} ({len(t)})" for s, t in val_sets.items())
             + (" (--max_eval_samples)" if args.max_eval_samples else "")
             + "; BAPPS has no test split: its val subsets are the benchmark, test = final validation")  # fmt: skip
    logger.info("%s: %s", name, split)
    verify_triplets([*train_triplets, *(t for triplets in val_sets.values() for t in triplets)], show)  # fail now

    # The metric (frozen backbone, trainable linear weights) and LPIPS's Dist2Logit on top.
    with accelerator.main_process_first():  # downloads once; every process then reads the same cached weights
        metric = build_lpips(args)
    logit = Dist2Logit()
    initial = evaluate_2afc(metric.to(accelerator.device), val_sets, args, accelerator.device, show)
    logger.info("initial validation 2AFC %s", describe_2afc(initial))

    optimizer = torch.optim.Adam([*metric.lins, *logit.parameters()], lr=args.learning_rate,
                                 betas=(args.adam_beta1, args.adam_beta2))  # fmt: skip
    steps = args.max_train_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lpips_lr_factor(step, steps))
    apply_channels_last(args, metric)  # --channels_last
    metric, logit, optimizer = accelerator.prepare(metric, logit, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    global_step = resume(accelerator, args)
    plain, plain_logit = plain_model(accelerator, metric), plain_model(accelerator, logit)
    loader = create_train_loader(TwoAFCDataset(train_triplets, args.load_size), args, accelerator, global_step)
    if accelerator.is_main_process:
        accelerator.init_trackers("train_metric", config=vars(args))
    inputs = args.attack_inputs.split(",") if args.attack == "pgd" else []

    # Train!
    progress = tqdm(range(steps), initial=global_step, disable=not show or not steps)
    batches, history = DataWait(loader), []
    val, val_step = initial, 0  # the latest validation, and the step it was taken at
    while global_step < steps:
        batch = next(batches)
        ref, p0, p1 = (batch[k].to(accelerator.device) for k in TRIPLET)
        judge = batch["judge"].to(accelerator.device)
        if inputs:  # R-LPIPS: the step trains on the triplet PGD made worst for the current weights
            generator = torch.Generator().manual_seed(args.seed * 1_000_003 + global_step)  # resumable
            ref, p0, p1 = perturb_triplet(plain, plain_logit, ref, p0, p1, judge, inputs, eps=args.attack_eps,
                                          steps=args.attack_steps, step_size=args.attack_step_size,
                                          norm=args.attack_norm, random_start=args.attack_random_start,
                                          generator=generator)  # fmt: skip
        with accelerator.accumulate(metric, logit), accelerator.autocast():
            d0, d1 = triplet_distances(metric, ref, p0, p1, dropout=args.lpips_dropout)
            loss = ranking_loss(logit, d0, d1, judge)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            continue
        plain.clamp_()  # LPIPS's clamp_weights: linear weights >= 0 after every step
        scheduler.step()
        global_step += 1
        progress.update(1)
        logs = {"loss": loss.item(), **batches.perf(),
                "acc": float(two_afc_scores(d0.detach(), d1.detach(), judge).mean()),
                "lr": scheduler.get_last_lr()[0]}  # fmt: skip
        progress.set_postfix(loss=f"{logs['loss']:.4f}")
        if global_step % args.validation_steps == 0 or global_step == steps:
            val, val_step = evaluate_2afc(plain, val_sets, args, accelerator.device, show), global_step
            logs |= {"val/2afc": val["mean"]} | {f"val/2afc_{s}": v for s, v in val["2afc"].items()}
        accelerator.log(logs, step=global_step)
        history.append(logs)
        if global_step % args.checkpointing_steps == 0:
            save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)

    # Save the metric (and the Dist2Logit it was trained with) with its 2AFC scores in the model card.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if val_step != global_step:  # not validated after the last step (e.g. resumed at the end)
            val = evaluate_2afc(plain, val_sets, args, accelerator.device, show)
        logger.info("validation 2AFC %s; %s", describe_2afc(val), batches.summary())
        attack = describe_attack(args) if inputs else "none"
        plain.card = model_card_facts(args, ["objective", "dataset_name", "weights", "init", "learning_rate",
                                             "adam_beta1", "adam_beta2", "max_train_steps", "train_batch_size",
                                             "load_size", "lpips_dropout", "attack", "seed"])  # fmt: skip
        plain.card |= {
            "objective": "2AFC: binary cross-entropy of LPIPS's Dist2Logit(d0, d1) against the human judgement; "
            "linear weights clamped >= 0 after each step, backbone frozen",
            "adversarial training": attack,
            "data": split,
            "initial validation 2AFC": describe_2afc(initial),
            "validation 2AFC": describe_2afc(val),
            "steps trained": global_step,
        }
        set_card_metadata(plain, args, two_afc_results(val, card_dataset_type(args.dataset_name), name), args.weights)
        plain.save_pretrained(args.output_dir)
        from safetensors.torch import save_file

        with atomic_path(os.path.join(args.output_dir, "dist2logit.safetensors")) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in plain_logit.state_dict().items()}, tmp)
        tested = eval_set_record([(t.key, t.judge) for triplets in val_sets.values() for t in triplets], "2afc val")
        write_results(args.output_dir, "train_metric", args, mode="2afc", weights_source=plain.backbone.weights_source,
                      dataset=name, split=split, steps=global_step, best_step=None, initial=initial, validation=val,
                      test=val, test_set=tested)  # fmt: skip
        if args.push_to_hub:
            push_to_hub(args)
    accelerator.wait_for_everyone()  # no process leaves while the main one still writes (gloo would abort it)
    accelerator.end_training()
    return {"initial": initial, "validation": val, "history": history}


if __name__ == "__main__":
    run_cli(main, parse_args())
