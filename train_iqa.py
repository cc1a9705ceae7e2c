"""Train a quality model whose backbone starts from random, ImageNet or GAN-discriminator weights, and fine-tune it.

    accelerate launch train_iqa.py --mode nr --backbone vgg16 --weights gan:runs/rec+per+adv --dataset_name koniq10k
    accelerate launch train_iqa.py --mode fr --backbone resnet50 --weights pretrained --dataset_name kadid10k

The assessment half of the asymmetry study: is a discriminator that trained a good SR generator a good start for a
quality model? `--mode nr` scores an image, `--mode fr` a distorted image against its reference (``asym.IQAModel``).
The whole backbone is fine-tuned (`--backbone_learning_rate`), the head learns at `--learning_rate`.

Objective: L1 between the predicted and the true standardised score (z-scored on the training split, oriented so
that higher is better), plus `--plcc_weight` x (1 - PLCC) over the batch (Li et al., "Norm-in-Norm", 2020): the L1
term fixes the scale, the PLCC term the ranking-like linear agreement SRCC/PLCC evaluate. Training augmentation keeps
quality: random crops and horizontal flips, no resizing. Validation and test score full images (global pooling makes
the model size-agnostic), so every pixel counts. The model with the best validation SRCC is kept in --output_dir
(checked every --validation_steps); its test SRCC/PLCC/KRCC go to results.json (with a fingerprint of the exact test
set, which init-comparison checks) and the model card. The 6:2:2 split (by reference content when the dataset has
references: a release's, or a table's --ref_column / --ref_id_column; by image otherwise) is written to split.json;
--split_file reuses it, so runs with different initialisations are compared on the same test images. Before any of
that, every image the run reads is read once: a truncated or foreign file, or a constant score column, is one error.
"""

from __future__ import annotations

import argparse
import math
import os

import torch
import torch.nn.functional as F

from asym import IQAModel, list_backbones
from asym.core.decoded_cache import add_cache_args, configure_from_args, log_cache_report
from asym.core.errors import UserError
from asym.core.flags import int_at_least, non_negative_float, positive_int
from asym.core.model_card import (
    card_dataset_type,
    correlation_results,
    model_card_facts,
    push_to_hub,
    set_card_metadata,
)
from asym.core.processes import main_process_value
from asym.core.progress import tqdm
from asym.core.train_loader import DataWait, create_train_loader
from asym.core.training import (
    add_common_args,
    apply_channels_last,
    create_accelerator,
    logger,
    plain_model,
    resume,
    run_cli,
    save_checkpoint,
)
from asym.iqa.data import (
    add_iqa_dataset_args,
    fr_dataset_kwargs,
    load_fr_dataset,
    load_nr_dataset,
    nr_dataset_kwargs,
)
from asym.iqa.data.splits import add_split_args, dataset_eval_set, save_split, split_iqa_dataset
from asym.iqa.results import write_results
from asym.metrics import correlations, pearson_loss, score_images, score_pairs


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = parser.add_argument_group("model")
    g.add_argument("--mode", default="nr", choices=["nr", "fr"], help="nr: score an image; fr: image vs reference")
    g.add_argument("--backbone", default="vgg16", help=f"backbone: {', '.join(list_backbones())}, timm:, hf:")
    g.add_argument(
        "--weights",
        default="auto",
        help="initial backbone weights: random, pretrained (ImageNet), auto (pretrained if obtainable), "
        "gan:<train_sr.py run, its discriminator/ folder or a Hub id>, or a weights file / Hub id",
    )
    g.add_argument("--head_width", type=positive_int, default=256, help="hidden width of the regression head")
    g.add_argument("--backbone_learning_rate", type=non_negative_float, default=1e-5,
                   help="learning rate of the backbone (0: frozen, only the head learns)")  # fmt: skip
    g.add_argument("--plcc_weight", type=non_negative_float, default=1.0,
                   help="weight of the (1 - PLCC) term next to the L1 term (0: L1 only)")  # fmt: skip
    g.add_argument("--lr_scheduler", default="cosine", choices=["cosine", "constant"],
                   help="cosine decay of both learning rates to 0 over --max_train_steps, or constant")  # fmt: skip
    d = parser.add_argument_group("data")
    d.add_argument(
        "--dataset_name",
        default="builtin",
        help="builtin, an IQA folder (KonIQ-10k, KADID-10k, ...), a pyiqa meta-info csv or a Hub id",
    )
    d.add_argument("--crop_size", type=positive_int, default=224, help="training crop (capped at the smallest image)")
    d.add_argument("--validation_steps", type=positive_int, default=250,
                   help="validate every N steps (and at the end)")  # fmt: skip
    d.add_argument("--max_eval_samples", type=int_at_least(3), default=None,
                   help="evaluate on at most N validation and N test images, evenly spaced (quick runs)")  # fmt: skip
    add_iqa_dataset_args(parser)
    add_split_args(parser)
    add_common_args(parser, "output/iqa")
    add_cache_args(parser)
    parser.set_defaults(learning_rate=1e-4, max_train_steps=3000, train_batch_size=16)
    return parser.parse_args(input_args)


class BestValidation:
    """The best validation SRCC so far and its step; saved in checkpoints, so a resumed run keeps the same best."""

    def __init__(self):
        self.srcc, self.step = -math.inf, None

    def state_dict(self) -> dict:
        return {"srcc": self.srcc, "step": -1 if self.step is None else self.step}

    def load_state_dict(self, state: dict) -> None:
        self.srcc, self.step = float(state["srcc"]), None if int(state["step"]) < 0 else int(state["step"])


def evaluate(model, dataset, device, progress: bool) -> dict[str, float]:
    """SRCC/PLCC/KRCC of the model's scores (higher is better) against the oriented MOS, over full images."""
    was_training = model.training
    model.eval()
    score = score_images if model.mode == "nr" else score_pairs
    scores = score(model, dataset, device, desc="evaluating", progress=progress)
    model.train(was_training)
    return correlations(scores, dataset.quality())


def main(args):
    accelerator = create_accelerator(args, IQAModel)
    torch.manual_seed(args.seed)
    show = accelerator.is_main_process  # progress bars

    # Data: 6:2:2 by reference content (or by image), or the split of --split_file / --split official; images read
    # through the decoded-image cache (asym.core.decoded_cache) unless --no_cache.
    configure_from_args(args)
    if args.mode == "nr":
        data = load_nr_dataset(args.dataset_name, **nr_dataset_kwargs(args))
    else:
        data = load_fr_dataset(args.dataset_name, **fr_dataset_kwargs(args))
    logger.info("%s: %d %s, scores %s", data.name, len(data), "images" if args.mode == "nr" else "pairs",
                data.direction)  # fmt: skip
    data.check_scores_vary()  # a constant MOS column: nothing to learn, no correlation to report
    split = split_iqa_dataset(data, args)  # also caps --crop_size at the smallest training image
    train_set, val_set, test_set = split.train, split.validation, split.test
    train_set.check_scores_vary("the training split")
    with accelerator.main_process_first():  # every image the run reads, decoded once now (into the cache): a broken
        for part in (train_set, val_set, test_set):  # file fails here; the other processes then read the entries
            part.verify_images(show)
    log_cache_report(logger)
    quality = data.quality()[split.parts[0]]  # oriented: higher is better
    mean, std = float(quality.mean()), float(quality.std()) or 1.0
    sign = -1.0 if data.lower_better else 1.0

    # The model: backbone from --weights, fresh head; the head predicts z-scored training quality.
    with accelerator.main_process_first():  # downloads once; every process then reads the same cached weights
        model = IQAModel(args.backbone, args.mode, weights=args.weights, head_width=args.head_width,
                         score_mean=mean, score_std=std)  # fmt: skip
    logger.info("backbone %s: %s", args.backbone, model.backbone.weights_source)
    if args.crop_size < model.backbone.min_size:
        raise UserError(f"--crop_size {args.crop_size} is below the {args.backbone} backbone's minimum input "
                        f"({model.backbone.min_size}): use a larger crop or images")  # fmt: skip
    initial = evaluate(model.to(accelerator.device), val_set, accelerator.device, show)
    logger.info("untrained validation SRCC %.4f PLCC %.4f", initial["srcc"], initial["plcc"])

    betas = (args.adam_beta1, args.adam_beta2)
    optimizer = torch.optim.Adam(model.parameter_groups(args.backbone_learning_rate, args.learning_rate), betas=betas)
    steps = args.max_train_steps
    decay = (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(steps, 1)))) if args.lr_scheduler == "cosine" \
        else (lambda s: 1.0)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, decay)
    best = BestValidation()
    apply_channels_last(args, model)  # --channels_last
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler, best)
    global_step = resume(accelerator, args)
    if accelerator.is_main_process:  # written once the inputs are known to be good: a failed run leaves nothing
        save_split(os.path.join(args.output_dir, "split.json"), data, split.parts, split.how)
    plain = plain_model(accelerator, model)
    loader = create_train_loader(train_set, args, accelerator, global_step)
    if accelerator.is_main_process:
        accelerator.init_trackers("train_iqa", config={k: v for k, v in vars(args).items() if v is not None})

    # Train!
    progress = tqdm(range(steps), initial=global_step, disable=not accelerator.is_main_process or not steps)
    batches, history = DataWait(loader), []
    while global_step < steps:
        batch = next(batches)
        inputs = [batch[k].to(accelerator.device) for k in (("image",) if args.mode == "nr" else ("dist", "ref"))]
        target = (sign * batch["score"].to(accelerator.device) - mean) / std  # standardised quality
        with accelerator.accumulate(model), accelerator.autocast():
            pred = (model(*inputs).float() - mean) / std
            loss = F.l1_loss(pred, target) + args.plcc_weight * pearson_loss(pred, target)
            accelerator.backward(loss)
            if accelerator.sync_gradients and args.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        global_step += 1
        progress.update(1)
        logs = {"loss": loss.item(), "lr_head": scheduler.get_last_lr()[1], **batches.perf()}
        progress.set_postfix(loss=f"{logs['loss']:.4f}")
        if global_step % args.validation_steps == 0 or global_step == steps:
            if accelerator.is_main_process:
                val = evaluate(plain, val_set, accelerator.device, show)
                logs |= {"val/srcc": val["srcc"], "val/plcc": val["plcc"]}
                if val["srcc"] > best.srcc:  # NaN (constant scores) never wins
                    best.srcc, best.step = val["srcc"], global_step
                    plain.card = {"selected": f"best validation SRCC so far ({val['srcc']:.4f}, step {global_step})"}
                    plain.save_pretrained(args.output_dir)
            accelerator.wait_for_everyone()
            best.load_state_dict(
                main_process_value(accelerator, best.state_dict())
            )  # every process keeps the same best
        accelerator.log(logs, step=global_step)
        history.append(logs)
        if global_step % args.checkpointing_steps == 0:
            save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)

    # Test the kept model (best validation SRCC) and save it with its scores.
    accelerator.wait_for_everyone()
    results = None
    if accelerator.is_main_process:
        kept = IQAModel.from_pretrained(args.output_dir).to(accelerator.device) if best.step else plain
        val = evaluate(kept, val_set, accelerator.device, show)
        test = evaluate(kept, test_set, accelerator.device, show)
        logger.info("kept step %s: validation SRCC %.4f PLCC %.4f | test SRCC %.4f PLCC %.4f KRCC %.4f; %s", best.step,
                    val["srcc"], val["plcc"], test["srcc"], test["plcc"], test["krcc"], batches.summary())  # fmt: skip
        source = plain.backbone.weights_source
        kept.card = model_card_facts(args, ["mode", "dataset_name", "weights", "crop_size", "train_batch_size",
                                            "learning_rate", "backbone_learning_rate", "plcc_weight", "lr_scheduler",
                                            "max_train_steps", "seed"])  # fmt: skip
        kept.card |= {
            "initial weights": source,
            "objective": f"L1 on standardised MOS + {args.plcc_weight} x (1 - PLCC) per batch",
            "split": split.description,
            "kept": f"step {best.step} (best validation SRCC)" if best.step else f"step {global_step} (not validated)",
            "untrained validation": _fmt(initial),
            "validation": _fmt(val),
            "test": _fmt(test),
            "steps trained": global_step,
        }
        scores = correlation_results(args.mode, card_dataset_type(args.dataset_name), data.name, "test", test)
        set_card_metadata(kept, args, scores, args.weights)
        kept.save_pretrained(args.output_dir)
        results = write_results(args.output_dir, "train_iqa", args, mode=args.mode, weights_source=source,
                                dataset=data.name, split=split.description, steps=global_step, best_step=best.step,
                                initial=initial, validation=val, test=test,
                                test_set=dataset_eval_set(test_set))  # fmt: skip
        if args.push_to_hub:
            push_to_hub(args)
    accelerator.wait_for_everyone()  # no process leaves while the main one still writes (gloo would abort it)
    accelerator.end_training()
    return {"initial": initial, "history": history, "results": results}


def _fmt(scores: dict) -> str:
    return f"SRCC {scores['srcc']:.4f}, PLCC {scores['plcc']:.4f}, KRCC {scores['krcc']:.4f} (n = {scores['n']})"


if __name__ == "__main__":
    run_cli(main, parse_args())
