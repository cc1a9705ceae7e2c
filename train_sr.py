"""Perceptual super-resolution training: generator + composite loss (+ relativistic discriminator).

    accelerate launch train_sr.py --loss rec+per+adv          # builtin photographs, SwinIR x4

Loss (the asymmetry paper): l = lambda_rec * L1(x, y) + lambda_per * l_per(x, y) + lambda_adv * l_adv, with
l_per a DISTS-style distance on --per_backbone (or a saved metric, --per_metric) and l_adv the ESRGAN
relativistic loss against a --disc_type discriminator on --disc_backbone. Generator and discriminator
are updated alternately. Stage 1 of the paper is `--loss rec`; stage 2 starts from it with --init_generator.

The robust-loss study's terms: mse (E), feat (P: VGG-19 blocks 2 and 5 after ReLU, x 0.2 / 0.02) and texture (T:
Gram matrices of 16x16 patches, blocks 1/3/5 x 3e-7 / 1e-6 / 1e-6), on one --feat_backbone with --feat_weights
(e.g. a robust VGG-19), its feature maps normalised to mean 1 first:

    accelerate launch train_sr.py --model enhancenet --loss mse+feat+texture --feat_weights runs/robust-vgg19

Autoencoders (the paper's App. F): --model autoencoder-kl (diffusers AutoencoderKL, the SD VAE's layout; or -tiny)
with --scale 1 reconstruct the HR crop with the same losses, plus the VAE's KL term (--lambda_kl):

    accelerate launch train_sr.py --model autoencoder-kl --scale 1 --loss rec+per+adv --init_generator <SD VAE id>

The terms are one table (asym/sr/losses.LOSS_TERMS): a new term is one entry there, its flag, step and card follow.
GPU speed options (opt-in): --compile, --channels_last, --allow_tf32 and, for SwinIR, --attention sdpa.
"""

from __future__ import annotations

import argparse
import os

import torch

from asym import list_backbones
from asym.core.decoded_cache import add_cache_args, configure_from_args, log_cache_report
from asym.core.errors import UserError
from asym.core.flags import non_negative_int, positive_float, positive_int, unit_interval
from asym.core.model_card import push_to_hub, set_card_metadata
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
from asym.nets.discriminator import DISC_TYPES, discriminator_stats, relativistic_discriminator_loss
from asym.sr.cards import describe_validation, discriminator_card, sr_card, sr_eval_results
from asym.sr.data import SRImageDataset, SRPairDataset, load_sr_images, split_train_validation
from asym.sr.losses import GeneratorLoss, add_loss_args, check_loss_args
from asym.sr.models import GENERATORS, SRModel, load_generator
from asym.sr.validation import evaluate  # evaluate: the name the preflight times (study/costs.py)
from asym.sr.window_attention import ATTENTIONS, set_attention


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = parser.add_argument_group("model and loss")
    g.add_argument("--model", choices=list(GENERATORS), default="swinir", help="generator architecture")
    g.add_argument("--scale", type=int, default=4, choices=[1, 2, 3, 4],
                   help="up-scaling factor; 1 for the autoencoders (the input is the HR crop itself)")  # fmt: skip
    g.add_argument("--init_generator", default=None, help="saved generator folder / Hub id / official checkpoint")
    g.add_argument("--attention", choices=ATTENTIONS, default="eager",
                   help="SwinIR's window attention: eager (spandrel's own) or sdpa (F.scaled_dot_product_attention, "
                        "the same computation; a GPU speed option)")  # fmt: skip
    add_loss_args(g)  # --loss and --lambda_<term>, one per term of asym/sr/losses.LOSS_TERMS
    g.add_argument("--per_backbone", default="vgg16", help=f"DISTS-style loss backbone: {', '.join(list_backbones())}")
    g.add_argument("--per_alpha_beta", choices=["auto", "uniform", "random"], default="auto",
                   help="alpha/beta of --per_backbone: auto = the DISTS release for vgg16, random for vgg16-r, "
                   "uniform otherwise")  # fmt: skip
    g.add_argument("--per_metric", default=None, help="a saved DISTS metric (folder or Hub id) instead")
    g.add_argument("--weights", default="auto", help="perceptual backbone weights: auto, pretrained, random, a file")
    g.add_argument("--feat_backbone", default="vgg19", help="network of the feat and texture terms (one for both)")
    g.add_argument("--feat_weights", default="auto",
                   help="its weights: auto, pretrained, random, a file / folder / Hub id (e.g. a robust VGG-19 of "
                        "train_robust.py)")  # fmt: skip
    g.add_argument("--no_feat_normalisation", action="store_true",
                   help="keep the raw feature scale (default: maps normalised to mean 1 on training crops, as the "
                        "study does for both VGG-19s)")  # fmt: skip
    g.add_argument("--disc_type", choices=DISC_TYPES, default="vanilla", help="one logit per image or per location")
    g.add_argument("--disc_backbone", default="vgg16", help="discriminator backbone (any registry name)")
    g.add_argument(
        "--disc_weights", default="random", help="discriminator backbone start: random, pretrained, gan:<run>"
    )
    g.add_argument("--disc_learning_rate", type=positive_float, default=1e-4,
                   help="discriminator Adam lr (BasicSR's ESRGAN)")  # fmt: skip
    g.add_argument("--lr_milestones", default="150000,300000,350000,375000", help="steps where the lr halves")
    g.add_argument("--use_ema", action="store_true", help="keep an EMA of the generator and save it")
    g.add_argument("--ema_decay", type=unit_interval, default=0.999, help="EMA decay, in [0, 1)")
    d = parser.add_argument_group("data")
    d.add_argument("--dataset_name", default="builtin", help="'builtin', a Hub dataset id or a local dataset path")
    d.add_argument("--train_data_dir", default=None, help="folder of HR images (e.g. DIV2K_train_HR)")
    d.add_argument("--validation_data_dir", default=None, help="folder of HR validation images")
    d.add_argument("--image_column", default="image", help="image column of a Hub/local dataset")
    d.add_argument("--crop_size", type=positive_int, default=None,
                   help="HR training crop (default: 64 * scale, 256 for x4)")  # fmt: skip
    d.add_argument("--num_validation_images", type=positive_int, default=2, help="held out when no validation folder")
    d.add_argument("--validation_steps", type=positive_int, default=500,
                   help="validate every N steps (and at the end)")  # fmt: skip
    d.add_argument("--validation_tile", type=non_negative_int, default=512,
                   help="validation runs on whole images; larger ones are super-resolved in tiles of N LR pixels "
                   "(0: never tile)")  # fmt: skip
    add_common_args(parser, "output/sr")
    add_cache_args(parser)
    parser.set_defaults(adam_beta2=0.99)  # BasicSR's ESRGAN/SwinIR recipes: Adam betas (0.9, 0.99)
    args = parser.parse_args(input_args)
    args.crop_size = args.crop_size or (256 if args.scale == 1 else 64 * args.scale)  # LR crops of 64 pixels (SR)
    try:
        args.milestones = [positive_int(m) for m in args.lr_milestones.split(",") if m.strip()]
    except (ValueError, argparse.ArgumentTypeError):
        parser.error(f"--lr_milestones {args.lr_milestones!r}: expected comma-separated step numbers (at least 1), "
                     "e.g. 1000,2000")  # fmt: skip
    arch = GENERATORS.get(args.model, {}).get("arch")
    check_loss_args(parser, args, model_has_kl=arch == "autoencoder-kl")
    if args.attention != "eager" and arch != "swinir":
        parser.error(f"--attention {args.attention} is for window-attention generators (swinir, swinir-light), not "
                     f"{args.model}")  # fmt: skip
    return args


def main(args):
    accelerator = create_accelerator(args, SRModel)
    torch.manual_seed(args.seed)
    if args.crop_size % args.scale:
        raise UserError(f"--crop_size {args.crop_size} is not divisible by --scale {args.scale} "
                        f"(e.g. {64 * args.scale}, the default for x{args.scale})")  # fmt: skip

    # Data: HR crops with bicubic LR made on the fly; held-out whole images for validation. Each image is decoded
    # once into the cache (the main process first; the others then read its entries), crops read without decoding.
    configure_from_args(args)
    with accelerator.main_process_first():
        images = load_sr_images(args.dataset_name, args.train_data_dir, args.image_column)
        if args.validation_data_dir:
            train_images, val_images = images, load_sr_images(train_data_dir=args.validation_data_dir)
        else:
            train_images, val_images = split_train_validation(images, args.num_validation_images, seed=args.seed)
    log_cache_report(logger)
    train_set = SRPairDataset(train_images, args.scale, args.crop_size, train=True)
    val_set = SRImageDataset(val_images, args.scale)

    # Models: the generator and the loss's networks (asym/sr/losses.py: perceptual, feature, discriminator), as the
    # terms need them. The main process builds (and downloads) first, so every process reads the same cached weights.
    with accelerator.main_process_first():
        if args.init_generator:
            generator = load_generator(args.init_generator, args.model, args.scale)
        else:
            generator = SRModel(args.model, args.scale)
        generator.train()  # from_pretrained returns eval mode: an autoencoder would then train on its posterior's mode
        if args.attention != "eager":
            set_attention(generator, args.attention)
        loss = GeneratorLoss(args, train_images).to(accelerator.device)  # the terms' networks, built once
        discriminator = loss.discriminator  # trained below, on the same batches
    apply_channels_last(args, generator, *loss.networks.values())  # --channels_last
    if args.compile:  # the generator and the discriminator are compiled by prepare (Accelerate's dynamo plugin)
        loss.compile(args.compile_mode)

    # Optimisers and the paper's step schedule (lr halved at each milestone).
    betas = (args.adam_beta1, args.adam_beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.learning_rate, betas=betas)
    sched_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, args.milestones, gamma=0.5)
    models, optimizers, schedulers = [generator], [opt_g], [sched_g]
    if discriminator is not None:
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=args.disc_learning_rate, betas=betas)
        sched_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, args.milestones, gamma=0.5)
        models, optimizers, schedulers = models + [discriminator], optimizers + [opt_d], schedulers + [sched_d]
    ema = None
    if args.use_ema:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(generator.parameters(), decay=args.ema_decay)
        ema.to(accelerator.device)

    # Prepare everything with accelerator. Schedulers are stepped by hand once per optimiser step
    # (Accelerate would step them once per process), and checkpointed alongside.
    prepared = accelerator.prepare(*models, *optimizers)
    generator, opt_g = prepared[0], prepared[len(models)]
    if discriminator is not None:
        discriminator, opt_d = prepared[1], prepared[len(models) + 1]
    for obj in schedulers + ([ema] if ema is not None else []):
        accelerator.register_for_checkpointing(obj)
    global_step = resume(accelerator, args)

    # The data order is a function of (seed, step): a resumed run replays the very same batches.
    train_loader = create_train_loader(train_set, args, accelerator, global_step)
    if accelerator.is_main_process:
        config = {k: v for k, v in vars(args).items() if k not in ("terms", "milestones")}
        accelerator.init_trackers("train_sr", config=config)
        os.makedirs(os.path.join(args.output_dir, "validation"), exist_ok=True)

    # Train!
    logger.info("loss %s, %d training images, %d steps; writing to %s", args.loss, len(train_images),
                args.max_train_steps, args.output_dir)  # fmt: skip
    if accelerator.device.type == "cpu" and args.model.startswith(("swinir", "rrdb")):
        logger.warning("training %s on the CPU: at the paper's sizes a step takes about a minute on 2 cores; "
                       "--model tiny is the CPU try (the README's CPU demo)", args.model)  # fmt: skip
    progress = tqdm(range(args.max_train_steps), initial=global_step, disable=not accelerator.is_main_process)
    batches, history = DataWait(train_loader), []
    while global_step < args.max_train_steps:
        batch = next(batches)
        lr_img, hr = batch["lr"].to(accelerator.device), batch["hr"].to(accelerator.device)
        with accelerator.accumulate(*models):
            # Generator step: the discriminator is only read (its plain module, frozen, so no DDP sync).
            with accelerator.autocast():
                sr = generator(lr_img)
                losses = loss(sr, hr, plain_model(accelerator, generator))  # each term, unweighted
                loss_g = loss.total(losses)  # weighted by --lambda_<term>
            accelerator.backward(loss_g)
            if accelerator.sync_gradients and args.max_grad_norm > 0:
                accelerator.clip_grad_norm_(generator.parameters(), args.max_grad_norm)
            opt_g.step()
            opt_g.zero_grad(set_to_none=True)

            # Discriminator step on the same batch, the generator output detached.
            if discriminator is not None:
                with accelerator.autocast():
                    real_logits, fake_logits = discriminator(hr), discriminator(sr.detach())
                    loss_d = relativistic_discriminator_loss(real_logits, fake_logits)
                accelerator.backward(loss_d)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(discriminator.parameters(), args.max_grad_norm)
                opt_d.step()
                opt_d.zero_grad(set_to_none=True)
                losses["disc"] = loss_d
                disc_stats = discriminator_stats(real_logits, fake_logits)

        if not accelerator.sync_gradients:
            continue
        for scheduler in schedulers:
            scheduler.step()
        if ema is not None:
            ema.step(plain_model(accelerator, generator).parameters())
        global_step += 1
        progress.update(1)
        logs = {f"loss/{k}": v.detach().item() for k, v in losses.items()} | {"lr": sched_g.get_last_lr()[0]}
        logs |= batches.perf()  # perf/data_wait: the step's share spent waiting for data (near 1: data is the limit)
        if discriminator is not None:
            logs |= {f"disc/{k}": v for k, v in disc_stats.items()}
        progress.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in logs.items() if k.startswith(("loss", "lr"))})
        accelerator.log(logs, step=global_step)
        history.append(logs)

        if global_step % args.checkpointing_steps == 0:
            save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
        if accelerator.is_main_process and (global_step % args.validation_steps == 0):
            grid = os.path.join(args.output_dir, "validation", f"step-{global_step}.png")
            scores = evaluate(plain_model(accelerator, generator), val_set, accelerator.device, args.scale,
                              args.validation_tile, grid)  # fmt: skip
            accelerator.log({f"val/{k}": v for k, v in scores.items()}, step=global_step)
            logger.info("step %d validation: %s", global_step, describe_validation(scores))

    # Save the generator (EMA weights if kept) at the root, the discriminator in discriminator/.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        generator = plain_model(accelerator, generator)
        if ema is not None:
            ema.copy_to(generator.parameters())
        grid = os.path.join(args.output_dir, "validation", "final.png")
        final = evaluate(generator, val_set, accelerator.device, args.scale, args.validation_tile, grid)
        logger.info("final validation: %s; RGB: PSNR %.2f dB, SSIM %.4f; %s", describe_validation(final),
                    final["psnr"], final["ssim"], batches.summary())  # fmt: skip
        generator.card = sr_card(args, global_step, final, len(val_set), loss)
        results = sr_eval_results(args, final, len(val_set))
        set_card_metadata(generator, args, results, base_model=args.init_generator)
        generator.save_pretrained(args.output_dir)
        if loss.discriminator is not None:  # its card says what it trained against: read back by gan: weight sources
            loss.discriminator.card = discriminator_card(args, global_step)
            loss.discriminator.save_pretrained(os.path.join(args.output_dir, "discriminator"))
        accelerator.log({"final/" + k: v for k, v in final.items()}, step=global_step)
        if args.push_to_hub:
            push_to_hub(args)
    accelerator.wait_for_everyone()  # no process leaves while the main one still writes (gloo would abort it)
    accelerator.end_training()
    return history


if __name__ == "__main__":
    run_cli(main, parse_args())
