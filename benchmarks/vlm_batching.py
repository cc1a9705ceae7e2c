"""Images/s of the VLM scorers one image per call vs ``--batch_size`` images per call, same images, same model.

    python benchmarks/vlm_batching.py                  # the tests' tiny random models, CPU
    python benchmarks/vlm_batching.py --device cuda --visualquality_r1 TianheWu/VisualQuality-R1-7B --deqa \\
        zhiyuanyou/DeQA-Score-Mix3                     # the released 7B scorers on a GPU

`evaluate.py sr` scores the outputs of all models of one test image together, ``--batch_size`` per forward /
``generate`` call (left-padded prompts); this times that against one image per call, alternating round by round,
and checks that both give the same scores (VisualQuality-R1: the same greedy replies). Without model ids, the tiny
random Qwen2.5-VL and mPLUG-Owl2 of the test suite (``tests/stand_in.py``) are built in a temporary folder: their
figures show the per-call overhead batching removes, not a 7B model's speed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from asym.core.flags import positive_int  # noqa: E402
from asym.metrics.vlm import DeQAScore, VisualQualityR1  # noqa: E402


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--batch_size", type=positive_int, default=8, help="images per call, batched")
    parser.add_argument("--images", type=positive_int, default=16, help="images scored per round")
    parser.add_argument("--size", type=positive_int, default=224, help="image side")
    parser.add_argument("--max_new_tokens", type=positive_int, default=16, help="VisualQuality-R1's reply bound")
    parser.add_argument("--rounds", type=positive_int, default=3, help="rounds of each, alternating")
    parser.add_argument("--visualquality_r1", default=None, help="a VisualQuality-R1 Hub id or folder (default: tiny)")
    parser.add_argument("--deqa", default=None, help="a DeQA-Score Hub id or folder (default: tiny)")
    return parser.parse_args(input_args)


def tiny_models(folder: str) -> tuple[str, str]:
    """The test suite's tiny random VisualQuality-R1 (Qwen2.5-VL) and DeQA-Score (mPLUG-Owl2), saved in ``folder``."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from stand_in import save_mplug_owl2, save_qwen25_vl, tiny_tokenizer

    qwen, owl = os.path.join(folder, "qwen"), os.path.join(folder, "owl")
    text = {"vocab_size": len(tiny_tokenizer()), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
            "rope_scaling": {"type": "mrope", "mrope_section": [4, 2, 2]}}  # fmt: skip
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
              "fullatt_block_indexes": [1]}  # fmt: skip
    save_qwen25_vl(qwen, text, vision, image_size={"shortest_edge": 56 * 56, "longest_edge": 224 * 224})
    visual = {"visual_model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                               "num_attention_heads": 2, "image_size": 224, "patch_size": 14},
              "visual_abstractor": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                    "intermediate_size": 64, "encoder_hidden_size": 32, "num_learnable_queries": 16,
                                    "grid_size": 16}}  # fmt: skip
    config = {"vocab_size": len(tiny_tokenizer()), "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "visual_config": visual}  # fmt: skip
    save_mplug_owl2(owl, config, image_size=224)
    return qwen, owl


def per_image_seconds(scorer, images: torch.Tensor, batch: int) -> tuple[float, list]:
    start, outputs = time.perf_counter(), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a random model's unparsable replies
        for i in range(0, len(images), batch):
            scores = scorer.score(images[i : i + batch])
            outputs += getattr(scorer, "last_text", None) or [float(s) for s in scores]
    return (time.perf_counter() - start) / len(images), outputs


def main(args):
    folder = tempfile.mkdtemp(prefix="asym-vlm-batching-")
    qwen, owl = (args.visualquality_r1, args.deqa) if args.visualquality_r1 and args.deqa else tiny_models(folder)
    images = torch.rand(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    scorers = {"VisualQuality-R1": VisualQualityR1.from_pretrained(qwen, args.device, args.max_new_tokens),
               "DeQA-Score": DeQAScore.from_pretrained(owl, args.device)}  # fmt: skip
    print(f"{args.images} images of {args.size}x{args.size}, {args.device}, torch {torch.__version__}, "
          f"{'tiny random models' if not args.visualquality_r1 else qwen + ', ' + owl}")  # fmt: skip
    print(f"| scorer | 1 per call (ms / image) | batch of {args.batch_size} (ms / image) | speed-up | same results |")
    print("| --- | --- | --- | --- | --- |")
    for name, scorer in scorers.items():
        times: dict[int, list[float]] = {1: [], args.batch_size: []}
        results = {}
        for _ in range(args.rounds):
            for batch in times:
                seconds, results[batch] = per_image_seconds(scorer, images, batch)
                times[batch].append(seconds)
        one, many = statistics.median(times[1]), statistics.median(times[args.batch_size])
        a, b = results[1], results[args.batch_size]
        same = a == b if isinstance(a[0], str) else all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(a, b))
        print(f"| {name} | {1000 * one:.1f} | {1000 * many:.1f} | {one / many:.2f}x | {same} |")


if __name__ == "__main__":
    main(parse_args())
