"""Learn a DISTS-style metric on any backbone: the backbone stays frozen, only alpha/beta are trained.

    accelerate launch train_metric.py --backbone resnet50 --dataset_name path/to/kadid10k

The paper's recipe is the default: Adam 1e-4 halved every 1000 steps, 5000 steps, batch 32, KADID-10k,
alpha/beta kept non-negative and normalised with the zeroth-stage weights in [0.02, 1]. Objective: 1 - PLCC
between -D and the MOS of each batch (scale- and shift-invariant, as the metric's scale is arbitrary).
`vgg16-r` keeps its random, fixed alpha/beta and is only evaluated. Images are split 6:2:2 by reference (split.json;
--split_file reuses a split); test SRCC/PLCC/KRCC go to results.json and the model card.
"""

from __future__ import annotations

import argparse
import os

import torch
from tqdm.auto import tqdm

from asym import DISTS, list_backbones
from asym.iqa_data import add_fr_dataset_args, fr_dataset_kwargs, load_fr_dataset
from asym.iqa_data.splits import add_split_args, save_split
from asym.leaderboard import write_results
from asym.metrics import correlations, pearson_loss, score_pairs
from asym.training import (
    add_common_args,
    create_accelerator,
    create_train_loader,
    int_at_least,
    logger,
    model_card_facts,
    push_to_hub,
    resume,
    run_cli,
    save_checkpoint,
    split_iqa_dataset,
)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = parser.add_argument_group("metric")
    g.add_argument("--backbone", default="vgg16", help=f"feature backbone: {', '.join(list_backbones())}, timm:, hf:")
    g.add_argument(
        "--weights", default="auto", help="backbone weights: auto, pretrained, random, file, Hub id, gan:<run>"
    )
    g.add_argument("--init", default="uniform", choices=["uniform", "dists", "random"], help="initial alpha/beta")
    g.add_argument("--lr_halving_steps", type=int, default=1000, help="halve the learning rate every N steps")
    g.add_argument("--stage0_min", type=float, default=0.02, help="lower bound of the raw-image alpha/beta")
    d = parser.add_argument_group("data")
    d.add_argument("--dataset_name", default="builtin", help="builtin, an IQA folder (KADID-10k, ...) or a Hub id")
    d.add_argument(
        "--crop_size",
        type=int,
        default=256,
        help="training crop, same window in both images (capped at the smallest training image)",
    )
    d.add_argument("--validation_steps", type=int, default=500, help="validate every N steps (and at the end)")
    d.add_argument(
        "--max_eval_samples",
        type=int_at_least(3),
        default=None,
        help="evaluate on at most N validation and N test pairs, evenly spaced (quick runs, debugging)",
    )
    add_fr_dataset_args(parser)
    add_split_args(parser)
    add_common_args(parser)
    parser.set_defaults(learning_rate=1e-4, max_train_steps=5000, train_batch_size=32)
    return parser.parse_args(input_args)


def evaluate(metric, dataset, device, progress: bool) -> dict[str, float]:
    """SRCC/PLCC/KRCC of -D against the MOS (oriented "higher is better") over full images."""
    preds = -score_pairs(metric, dataset, device, desc="evaluating", progress=progress)
    return correlations(preds, dataset.quality())


def main(args):
    accelerator = create_accelerator(args)
    torch.manual_seed(args.seed)

    # Data: triplets split 6:2:2 by reference image, so no reference is seen in two splits.
    data = load_fr_dataset(args.dataset_name, **fr_dataset_kwargs(args))
    logger.info("%s: %d pairs, scores %s", data.name, len(data), data.direction)
    split = split_iqa_dataset(data, args)  # also caps --crop_size at the smallest training image
    train_set, val_set, test_set = split.train, split.validation, split.test
    sign = -1.0 if data.lower_better else 1.0  # MOS oriented "higher is better"
    show = accelerator.is_main_process  # progress bars

    # The metric: frozen backbone, trainable alpha/beta (vgg16-r: random and fixed).
    init = "random" if args.backbone == "vgg16-r" else args.init
    with accelerator.main_process_first():  # downloads once; every process then reads the same cached weights
        metric = DISTS(args.backbone, weights=args.weights, alpha_beta=init, seed=args.seed)
    trainable = args.backbone != "vgg16-r"
    initial = evaluate(metric.to(accelerator.device), val_set, accelerator.device, show)
    logger.info("initial validation SRCC %.4f PLCC %.4f", initial["srcc"], initial["plcc"])

    betas = (args.adam_beta1, args.adam_beta2)
    optimizer = torch.optim.Adam([metric.alpha, metric.beta], lr=args.learning_rate, betas=betas)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_halving_steps, gamma=0.5)
    global_step = 0
    if trainable:
        metric, optimizer = accelerator.prepare(metric, optimizer)
        accelerator.register_for_checkpointing(scheduler)
        global_step = resume(accelerator, args)
    if accelerator.is_main_process:  # written once the inputs are known to be good: a failed run leaves nothing
        save_split(os.path.join(args.output_dir, "split.json"), data, split.parts, split.how)
    plain = accelerator.unwrap_model(metric)
    loader = create_train_loader(train_set, args, accelerator, global_step)
    if accelerator.is_main_process:
        accelerator.init_trackers("train_metric", config=vars(args))

    # Train!
    steps = args.max_train_steps if trainable else 0
    progress = tqdm(range(steps), initial=global_step, disable=not accelerator.is_main_process or not steps)
    batches, history = iter(loader), []
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
        logs = {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}
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
        logger.info("validation SRCC %.4f PLCC %.4f | test SRCC %.4f PLCC %.4f",
                    val["srcc"], val["plcc"], test["srcc"], test["plcc"])  # fmt: skip
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
        plain.save_pretrained(args.output_dir)
        source = plain.backbone.weights_source
        write_results(args.output_dir, "train_metric", args, mode="fr", weights_source=source, dataset=data.name,
                      split=split.description, steps=global_step, best_step=None, initial=initial, validation=val,
                      test=test)  # fmt: skip
        if args.push_to_hub:
            push_to_hub(args)
    accelerator.end_training()
    return {"initial": initial, "history": history}


if __name__ == "__main__":
    run_cli(main, parse_args())
