"""Leaderboards and metric analyses: ``python evaluate.py VERB ...``; ``python evaluate.py VERB --help`` says what a
verb reads, computes and writes (its code: asym/commands/<verb>.py).

IQA leaderboards (the paper's Table 4) and what training runs learnt:
    python evaluate.py fr --metrics psnr,ssim,output/metric --datasets builtin --output_dir results
    python evaluate.py nr --models output/iqa,maniqa,musiq --datasets builtin,data/koniq10k --output_dir results
    python evaluate.py init-comparison --results runs/vgg-random,runs/vgg-gan/results.json --output_dir results
    python evaluate.py features --model runs/sr --image astronaut --output_dir results/features
Can a metric serve as a loss:
    python evaluate.py recover --metric output/metric --output_dir results/recover
    python evaluate.py texture --metric output/metric --output_dir results/texture
SR leaderboards (Table 1), side-by-side outputs, and what is built on them (Fig. 3, Fig. 7, Table 3):
    python evaluate.py sr --models runs/sr-vgg16,runs/sr-resnet50,bicubic,hr --metrics psnr,ssim,piqe,maniqa \\
        --datasets builtin --calibration_dataset data/koniq10k --output_dir results/table1
    python evaluate.py grid --models runs/sr-vgg16,bicubic --images astronaut,coffee --output_dir results/grid
    python evaluate.py correlation --fr_results results/table4/fr_results.json \\
        --sr_results results/table1/sr_results.json --output_dir results/fig3
    python evaluate.py sweep --runs runs/adv-0.001,runs/adv-0.005,runs/adv-0.01 \\
        --sr_results results/sweep/sr_results.json --output_dir results/fig7
    python evaluate.py discriminators --runs runs/gan-vgg16,runs/gan-patch-vgg16 --base runs/rec+per-vgg16 \\
        --sr_results results/table3/sr_results.json --output_dir results/table3
The robust-loss study (its table, its Fig. 1):
    python evaluate.py robust-table --sr_results results/enhancenet/sr_results.json --output_dir results/robust
    python evaluate.py classify --classifiers vgg19,resnet50,runs/robust-resnet50 --models runs/ep,runs/ep-robust,hr \\
        --dataset data/imagenet/val --max_images 1000 --output_dir results/fig1
"""

from __future__ import annotations

import argparse

import torch

from asym.commands import COMMANDS
from asym.core.errors import run_cli
from asym.core.flags import seed_int
from asym.core.processes import end_processes
from asym.core.training import check_output_dir


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register_subcommand(sub)
    for p in sub.choices.values():
        p.add_argument("--output_dir", default="results", help="where tables / images are written")
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
        p.add_argument("--seed", type=seed_int, default=0, help="seed of the noise initialisation, in [0, 2^32)")
    return parser.parse_args(input_args)


def main(args):
    check_output_dir(args.output_dir)
    result = args.run(args)
    end_processes()  # under `accelerate launch`: every process ends once the main one has written its files
    return result


if __name__ == "__main__":
    run_cli(main, parse_args())
