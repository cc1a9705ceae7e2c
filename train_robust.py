"""Train an adversarially robust classifier (PGD adversarial training + adversarial logit pairing) whose backbone then
serves as perceptual-loss features: the robust VGG-19 / ResNet-50 of the robust-perceptual-loss study (Uelwer et al.).

    accelerate launch train_robust.py --backbone vgg19 --dataset_name ILSVRC/imagenet-1k --crop_size 224
    accelerate launch train_robust.py --max_train_steps 2          # smoke run on builtin (random VGG-19, CPU)

Objective per batch: CE(F(x_adv), y) + --alp_weight x ALP, where x_adv is a PGD-K example (--attack_steps, L2 ball of
--attack_eps, step --attack_step_size, default 2.5 eps / K as in the robustness library) that maximises the
cross-entropy of the current model (attacked in eval mode), and ALP = mean over the batch of 1/d ||F(x) - F(x_adv)||^2
(d classes). The cross-entropy is on the ADVERSARIAL logits (Madry et al., the robustness library); the clean and
adversarial images go through the model in one batch (so BatchNorm sees both). --no_adversarial (or --attack_steps 0)
trains on clean images with plain cross-entropy: the standard baseline of the same length and seed.

Before and after training the model is evaluated on the validation images: clean accuracy and PGD-K accuracy
(--eval_attack_steps/eps/step_size, the study's PGD-50, eps 3.88, step 0.155 by default; an image counts as robust if
no iterate is misclassified). Radii are L2 norms of whole-image perturbations in [0, 1] pixel units (see
asym.robust.classifier). The output folder holds the classifier (model.safetensors, config.json, README.md;
``asym.robust.classifier.Classifier``), usable as backbone weights (``create_backbone("vgg19",
weights=output_dir)``), and results.json.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

from asym import list_backbones
from asym.core.atomic import write_json
from asym.core.errors import UserError
from asym.core.flags import (
    float_in,
    int_at_least,
    non_negative_float,
    non_negative_fraction,
    non_negative_int,
    positive_fraction,
    positive_int,
    unit_interval,
)
from asym.core.model_card import card_dataset_type, eval_results, model_card_facts, push_to_hub, set_card_metadata
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
from asym.nets.pgd import default_step_size
from asym.robust.classifier import (
    Classifier,
    adversarial_examples,
    adversarial_logit_pairing,
    check_attack,
    robust_accuracy,
)
from asym.robust.data import load_classification_data, subset


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = parser.add_argument_group("model")
    g.add_argument("--backbone", default="vgg19", help=f"backbone: {', '.join(list_backbones())}, timm:, hf:")
    g.add_argument("--weights", default="auto",
                   help="initial backbone weights: random, pretrained (ImageNet), auto (pretrained if obtainable, "
                   "else random with a warning), a weights file / folder / Hub id, or gan:<run>")  # fmt: skip
    g.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="SGD with momentum (robustness "
                   "library) or Adam (--adam_beta1/2)")  # fmt: skip
    g.add_argument("--momentum", type=unit_interval, default=0.9, help="SGD momentum, in [0, 1) (0: plain SGD)")
    g.add_argument("--weight_decay", type=non_negative_float, default=1e-4,
                   help="weight decay (the robustness library's ImageNet; 0: none)")  # fmt: skip
    g.add_argument("--lr_step_size", type=int_at_least(1), default=None,
                   help="multiply the learning rate by --lr_step_gamma every N steps (default: a quarter of "
                   "--max_train_steps, like the robustness library's drops at epochs 50/100/150 of 200)")  # fmt: skip
    g.add_argument("--lr_step_gamma", type=float_in(0, 1, low_open=True), default=0.1,
                   help="learning-rate factor at each drop, in (0, 1] (1: constant)")  # fmt: skip
    a = parser.add_argument_group("adversarial training")
    a.add_argument("--no_adversarial", dest="adversarial", action="store_false",
                   help="standard training: clean images, plain cross-entropy (no attack, no ALP)")  # fmt: skip
    a.add_argument("--attack_norm", default="l2", help="threat model of the training attack: l2 or linf")
    a.add_argument(
        "--attack_eps",
        type=non_negative_fraction,
        default=5.82,
        help="radius of the training attack, [0, 1] pixel units (the study's 5.82: RMS 0.015 at 224x224; 0: standard "
        "training)",
    )
    a.add_argument("--attack_steps", type=non_negative_int, default=5,
                   help="PGD steps of the training attack (0: standard training)")  # fmt: skip
    a.add_argument("--attack_step_size", type=positive_fraction, default=None,
                   help="PGD step (default 2.5 eps / steps)")  # fmt: skip
    a.add_argument("--attack_random_start", action="store_true", help="start PGD at a random point of the ball")
    a.add_argument("--alp_weight", type=non_negative_float, default=0.5,
                   help="weight of adversarial logit pairing (0: off)")  # fmt: skip
    e = parser.add_argument_group("evaluation (before and after training)")
    e.add_argument("--eval_attack_norm", default=None, help="threat model of the evaluation (default: --attack_norm)")
    e.add_argument("--eval_attack_eps", type=non_negative_fraction, default=3.88,
                   help="radius (the study's 3.88: RMS 0.01 at 224; 0: no attack, PGD accuracy = clean)")  # fmt: skip
    e.add_argument("--eval_attack_steps", type=non_negative_int, default=50,
                   help="PGD steps (the study's PGD-50; 0: no attack, PGD accuracy = clean)")  # fmt: skip
    e.add_argument("--eval_attack_step_size", type=positive_fraction, default=None,
                   help="PGD step (default 2 eps / steps: 0.155 for the study's eps 3.88 and 50 steps)")  # fmt: skip
    e.add_argument("--eval_batch_size", type=int_at_least(1), default=64, help="evaluation batch size")
    e.add_argument(
        "--max_eval_samples",
        type=int_at_least(1),
        default=None,
        help="evaluate on at most N validation images, evenly spaced (ImageNet's 50000 x PGD-50 is long)",
    )
    d = parser.add_argument_group("data")
    d.add_argument("--dataset_name", default="builtin",
                   help="builtin, an image folder (DIR/<class>/*, or DIR/train/ + DIR/val/) or a Hub dataset id / "
                   "datasets folder with image and label columns (ILSVRC/imagenet-1k)")  # fmt: skip
    d.add_argument("--crop_size", type=positive_int, default=None, help="training and evaluation crop (default: 32 on "
                   "builtin, 224 otherwise)")  # fmt: skip
    d.add_argument("--num_validation_crops", type=positive_int, default=4,
                   help="builtin: validation crops per photograph")  # fmt: skip
    d.add_argument("--validation_fraction", type=float_in(0, 1, low_open=True, high_open=True), default=0.1,
                   help="image folder without val/: share of each class held out (by --seed)")  # fmt: skip
    d.add_argument("--train_split", default="train", help="Hub / datasets source: training split")
    d.add_argument("--validation_split", default="validation", help="Hub / datasets source: validation split")
    d.add_argument("--image_column", default="image", help="Hub / datasets source: image column")
    d.add_argument("--label_column", default="label", help="Hub / datasets source: integer class column")
    add_common_args(parser, "output/robust")
    parser.set_defaults(learning_rate=0.01, max_train_steps=1000, train_batch_size=8)
    args = parser.parse_args(input_args)
    args.eval_attack_norm = args.eval_attack_norm or args.attack_norm
    if args.crop_size is None:
        args.crop_size = 32 if args.dataset_name == "builtin" else 224
    return args


class RunRecord:
    """The evaluation before training, kept in the checkpoints: a resumed run reports the same starting point."""

    def __init__(self):
        self.initial: dict | None = None

    def state_dict(self) -> dict:
        return {"initial": dict(self.initial or {})}

    def load_state_dict(self, state: dict) -> None:
        self.initial = dict(state["initial"]) or None


def check_args(args) -> None:
    """The attack settings that no flag type checks alone (the norm's name, an L-inf radius that covers the pixel
    range), before anything is built or written; numbers out of range are refused while parsing."""
    check_attack("attack", args.attack_norm, args.attack_eps, args.attack_steps, args.attack_step_size)
    check_attack("eval_attack", args.eval_attack_norm, args.eval_attack_eps, args.eval_attack_steps,
                 args.eval_attack_step_size)  # fmt: skip


def main(args):
    check_args(args)
    accelerator = create_accelerator(args, Classifier)
    torch.manual_seed(args.seed)
    show = accelerator.is_main_process  # progress bars
    adversarial = args.adversarial and args.attack_steps > 0 and args.attack_eps > 0
    step_size = args.attack_step_size or default_step_size(args.attack_eps, args.attack_steps, 2.5)
    eval_step = args.eval_attack_step_size or default_step_size(args.eval_attack_eps, args.eval_attack_steps, 2.0)

    data = load_classification_data(args.dataset_name, args.crop_size, seed=args.seed,
                                    num_validation_crops=args.num_validation_crops,
                                    validation_fraction=args.validation_fraction, train_split=args.train_split,
                                    validation_split=args.validation_split, image_column=args.image_column,
                                    label_column=args.label_column)  # fmt: skip
    logger.info("%s", data.description)
    val_set = subset(data.validation, args.max_eval_samples)
    with accelerator.main_process_first():  # downloads once; every process then reads the same cached weights
        model = Classifier(args.backbone, len(data.class_names), weights=args.weights, class_names=data.class_names)
    logger.info("backbone %s: %s", args.backbone, model.backbone.weights_source)
    if args.crop_size < model.backbone.min_size:
        raise UserError(f"--crop_size {args.crop_size} is below the {args.backbone} backbone's minimum input "
                        f"({model.backbone.min_size}): use a larger crop")  # fmt: skip

    def evaluate(net) -> dict:
        return robust_accuracy(net, val_set, args.eval_attack_eps, args.eval_attack_steps, eval_step,
                               args.eval_attack_norm, args.eval_batch_size, accelerator.device, show)  # fmt: skip

    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=args.momentum,
                                    weight_decay=args.weight_decay)  # fmt: skip
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay,
                                     betas=(args.adam_beta1, args.adam_beta2))  # fmt: skip
    steps = args.max_train_steps
    lr_step = args.lr_step_size or max(1, steps // 4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step, gamma=args.lr_step_gamma)
    record = RunRecord()
    apply_channels_last(args, model)  # --channels_last
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler, record)
    global_step = resume(accelerator, args)
    plain = plain_model(accelerator, model)
    if record.initial is None:  # (no global RNG is drawn: a resumed run replays the same batches and attacks)
        if accelerator.is_main_process:
            record.initial = evaluate(plain)
        accelerator.wait_for_everyone()
        record.initial = main_process_value(accelerator, record.initial)
    logger.info("before training: %s", _fmt(record.initial))
    loader = create_train_loader(data.train, args, accelerator, global_step)
    if accelerator.is_main_process:
        accelerator.init_trackers("train_robust", config={k: v for k, v in vars(args).items() if v is not None})

    # Train!
    progress = tqdm(range(steps), initial=global_step, disable=not accelerator.is_main_process or not steps)
    batches, history = DataWait(loader), []
    while global_step < steps:
        batch = next(batches)
        x, y = batch["image"].to(accelerator.device), batch["label"].to(accelerator.device)
        with accelerator.accumulate(model):
            logs = {}
            with accelerator.autocast():
                if adversarial:  # the unwrapped model: no DDP synchronisation for the attack's input gradients
                    x_adv = adversarial_examples(plain, x, y, args.attack_eps, args.attack_steps, step_size,
                                                 args.attack_norm, args.attack_random_start)  # fmt: skip
                    if args.alp_weight > 0:
                        clean, adv = model(torch.cat([x, x_adv])).float().chunk(2)
                        alp = adversarial_logit_pairing(clean, adv)
                        logs["train/acc_clean"] = (clean.argmax(1) == y).float().mean().item()
                    else:
                        adv, alp = model(x_adv).float(), torch.zeros((), device=x.device)
                    ce = F.cross_entropy(adv, y)
                    loss = ce + args.alp_weight * alp
                    logs |= {"loss/alp": alp.item(), "train/acc_adv": (adv.argmax(1) == y).float().mean().item()}
                else:
                    logits = model(x).float()
                    ce = loss = F.cross_entropy(logits, y)
                    logs["train/acc_clean"] = (logits.argmax(1) == y).float().mean().item()
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
        logs |= {
            "loss": loss.item(),
            "loss/ce": ce.item(),
            "lr": scheduler.get_last_lr()[0],
            **batches.perf(),
        }
        progress.set_postfix(loss=f"{logs['loss']:.4f}")
        accelerator.log(logs, step=global_step)
        history.append(logs)
        if global_step % args.checkpointing_steps == 0:
            save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)

    # Evaluate the trained model, save it with its results.
    accelerator.wait_for_everyone()
    results = None
    if accelerator.is_main_process:
        final = evaluate(plain)
        initial = record.initial
        logger.info("after training: %s; %s", _fmt(final), batches.summary())
        attack = (f"PGD-{args.attack_steps}, {args.attack_norm.upper()} eps {args.attack_eps:g}, step "
                  f"{step_size:.4g}{', random start' if args.attack_random_start else ''}")  # fmt: skip
        objective = (f"CE on the adversarial logits + {args.alp_weight:g} x ALP (1/d ||F(x) - F(x_adv)||^2), "
                     f"x_adv: {attack}" if adversarial else "standard training: CE on clean images")  # fmt: skip
        plain.card = model_card_facts(args, ["dataset_name", "weights", "crop_size", "train_batch_size", "optimizer",
                                             "learning_rate", "weight_decay", "max_train_steps", "seed"])  # fmt: skip
        plain.card |= {
            "initial weights": plain.backbone.weights_source,
            "data": data.description,
            "objective": objective,
            "before training": _fmt(initial),
            "after training": _fmt(final),
            "steps trained": global_step,
        }
        task = ("image-classification", "Image classification", card_dataset_type(args.dataset_name), data.name,
                args.validation_split)  # fmt: skip
        eval_attack = {"norm": args.eval_attack_norm, "eps": args.eval_attack_eps, "steps": args.eval_attack_steps,
                       "step_size": eval_step}  # fmt: skip
        scores = eval_results(*task, [("accuracy", "Clean accuracy", final["clean_accuracy"])])
        scores += eval_results(*task, [("accuracy", f"PGD accuracy ({final['attack']})", final["pgd_accuracy"])],
                               metric_args=eval_attack)  # fmt: skip
        set_card_metadata(plain, args, scores, args.weights)
        plain.save_pretrained(args.output_dir)
        results = {
            "script": "train_robust", "backbone": args.backbone, "weights": args.weights,
            "weights_source": plain.backbone.weights_source, "dataset": data.name, "data": data.description,
            "num_classes": len(data.class_names), "steps": global_step, "adversarial": adversarial,
            "objective": objective, "alp_weight": args.alp_weight if adversarial else 0.0,
            "train_attack": {"norm": args.attack_norm, "eps": args.attack_eps, "steps": args.attack_steps,
                             "step_size": step_size, "random_start": args.attack_random_start} if adversarial else None,
            "eval_attack": eval_attack,
            "initial": initial, "final": final,
        }  # fmt: skip
        write_json(os.path.join(args.output_dir, "results.json"), results)
        if args.push_to_hub:
            push_to_hub(args)
    accelerator.wait_for_everyone()  # no process leaves while the main one still writes (gloo would abort it)
    accelerator.end_training()
    return {"initial": record.initial, "history": history, "results": results}


def _fmt(scores: dict) -> str:
    return (f"clean accuracy {scores['clean_accuracy']:.4f}, PGD accuracy {scores['pgd_accuracy']:.4f} "
            f"({scores['attack']}; n = {scores['n']})")  # fmt: skip


if __name__ == "__main__":
    run_cli(main, parse_args())
