"""Figures of the paper's analyses: PNG files drawn on matplotlib's Agg canvas, written atomically.

* ``plot_init_comparison``: test SRCC / PLCC of quality models per backbone and initialisation (random, ImageNet, GAN
  discriminator, file), one panel per dataset, mode and measure (Fig. 5/8).
* ``plot_correlation``: assessment SRCC against the SR leaderboard average, per loss setting (Fig. 3).
* ``plot_sweep``: the SR leaderboard average against the adversarial weight, per discriminator backbone (Fig. 7).
* ``plot_top1_errors``: top-1 error of classifiers on each SR model's restorations (the robust-loss study's Fig. 1).
* ``plot_stage_features``: ``asym.iqa.feature_maps.stage_feature_maps`` as a grid, a row per stage (Fig. 14).

``new_figure`` gives a figure on its own canvas (no pyplot, no global backend) and ``save_figure`` writes it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

INIT_COLOURS = {"random": "#9e9e9e", "pretrained": "#1f77b4", "gan": "#d62728", "file": "#2ca02c"}  # fixed per init


def new_figure(width: float, height: float):
    """A matplotlib ``Figure`` on its own Agg canvas: no pyplot, no global backend switch, nothing left open."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str, dpi: int = 100) -> str:
    """Write ``fig`` as a PNG at ``path`` atomically, so an interrupted run never leaves a truncated image in place of
    a previous one. Returns ``path``."""
    from ..core.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def plot_init_comparison(records: list[dict], path: str) -> str:
    """Grouped bar chart of quality models' test correlations by initialisation (the paper's Fig. 5/8).

    One row of panels per (dataset, mode), one column per measure (SRCC, PLCC); in each panel the x axis lists the
    backbones and each backbone has one bar per initialisation, in ``INIT_COLOURS`` order and colours, labelled
    with its value (``nan`` for an undefined correlation).

    Args:
        records: ``asym.iqa.results.init_comparison_records`` output (``dataset``, ``mode``, ``backbone``,
            ``init``, ``srcc``, ``plcc``).
        path: the PNG to write (atomically).

    Returns:
        ``path``.
    """
    import math

    from matplotlib.patches import Patch

    if not records:
        raise ValueError("plot_init_comparison needs at least one record")
    inits = [i for i in INIT_COLOURS if any(r["init"] == i for r in records)]
    groups = list(dict.fromkeys((r["dataset"], r["mode"]) for r in records))
    most = max(len({r["backbone"] for r in records if (r["dataset"], r["mode"]) == g}) for g in groups)
    fig = new_figure(2 * max(3.0, 0.9 + most * (0.35 + 0.45 * len(inits))), 3.4 * len(groups) + 0.4)
    axes = fig.subplots(len(groups), 2, squeeze=False)
    width = 0.8 / len(inits)
    for row, (dataset, mode) in enumerate(groups):
        group = [r for r in records if (r["dataset"], r["mode"]) == (dataset, mode)]
        backbones = list(dict.fromkeys(r["backbone"] for r in group))
        by_key = {(r["backbone"], r["init"]): r for r in group}
        for col, measure in enumerate(("srcc", "plcc")):
            ax = axes[row][col]
            values = []
            for k, init in enumerate(inits):
                xs, heights, labels = [], [], []
                for j, backbone in enumerate(backbones):
                    record = by_key.get((backbone, init))
                    if record is None:
                        continue
                    value = float(record[measure])
                    finite = math.isfinite(value)
                    xs.append(j + (k - (len(inits) - 1) / 2) * width)
                    heights.append(value if finite else 0.0)
                    labels.append(f"{value:.3f}" if finite else "nan")
                    values.append(value if finite else 0.0)
                if xs:
                    bars = ax.bar(xs, heights, width * 0.95, color=INIT_COLOURS[init])
                    ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
            ax.axhline(0, color="black", linewidth=0.6)
            ax.set_xticks(range(len(backbones)), backbones)
            ax.set_xlim(-0.6, len(backbones) - 0.4)
            ax.set_ylim(min(0.0, min(values) - 0.15), max(1.0, max(values)) + 0.12)
            ax.set_ylabel(f"test {measure.upper()}")
            ax.set_title(f"{dataset} ({str(mode).upper()}): {measure.upper()}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=INIT_COLOURS[i], label=i) for i in inits]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(inits), title="initialisation")
    return save_figure(fig, path)


def plot_correlation(points: list[dict], path: str) -> str:
    """Scatter of assessment SRCC (x) vs SR leaderboard average (y), one colour per loss setting, each point labelled
    with its backbone (the paper's Fig. 3).

    Args:
        points: dicts with ``backbone``, ``loss``, ``srcc`` and ``average``.
        path: the PNG to write (atomically).
    """
    if not points:
        raise ValueError("plot_correlation needs at least one point")
    fig = new_figure(6.0, 4.5)
    ax = fig.subplots()
    for loss in dict.fromkeys(p["loss"] for p in points):
        group = [p for p in points if p["loss"] == loss]
        ax.scatter([p["srcc"] for p in group], [p["average"] for p in group], label=str(loss))
        for p in group:
            ax.annotate(str(p["backbone"]), (p["srcc"], p["average"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.set_xlabel("assessment SRCC (mean over FR datasets)")
    ax.set_ylabel("SR leaderboard average")
    ax.grid(alpha=0.3)
    ax.legend(title="loss setting", fontsize=8)
    return save_figure(fig, path)


def plot_sweep(points: list[dict], path: str, baselines: list[dict] | None = None) -> str:
    """Leaderboard average vs the adversarial weight, one line per discriminator backbone (the paper's Fig. 7); a log
    x axis when the positive weights span more than a factor of 10; runs without an adversarial term are dashed
    horizontal lines.

    Args:
        points: dicts with ``backbone``, ``lambda_adv`` and ``average``.
        path: the PNG to write (atomically).
        baselines: dicts with ``run`` and ``average`` (runs trained without a discriminator).
    """
    if not points and not baselines:
        raise ValueError("plot_sweep needs at least one point")
    fig = new_figure(6.0, 4.5)
    ax = fig.subplots()
    for backbone in dict.fromkeys(p["backbone"] for p in points):
        line = sorted((p for p in points if p["backbone"] == backbone), key=lambda p: p["lambda_adv"])
        ax.plot([p["lambda_adv"] for p in line], [p["average"] for p in line], marker="o", label=str(backbone))
    for b in baselines or []:
        ax.axhline(b["average"], linestyle="--", color="grey", linewidth=1)
        ax.annotate(f"{b['run']} (no adv)", (0, b["average"]), xycoords=("axes fraction", "data"), fontsize=7)
    weights = [p["lambda_adv"] for p in points if p["lambda_adv"] > 0]
    if weights and max(weights) > 10 * min(weights):
        ax.set_xscale("log")
    ax.set_xlabel("adversarial weight (lambda_adv)")
    ax.set_ylabel("SR leaderboard average")
    ax.grid(alpha=0.3)
    if points:
        ax.legend(title="discriminator backbone", fontsize=8)
    return save_figure(fig, path)


def _colour_map(values: Tensor, size: int, cmap) -> np.ndarray:
    """A 2-D map normalised to [0, 1] (min to max; a constant map is 0), resized to ``size`` x ``size`` (nearest, so
    a coarse stage shows its real resolution) and colour-mapped: (size, size, 4) floats."""
    lo, hi = values.min(), values.max()
    unit = (values - lo) / (hi - lo) if hi > lo else torch.zeros_like(values)
    cell = F.interpolate(unit[None, None], size=(size, size), mode="nearest")[0, 0]
    return cmap(cell.numpy())


def plot_stage_features(stages: list[dict], image: Tensor, path: str, title: str = "", cell: int = 128,
                        cmap: str = "viridis") -> str:  # fmt: skip
    """Save ``stage_feature_maps`` output as a PNG grid: one row per stage; columns: the input, the channel-mean map,
    then the top-k channels. Each map is normalised to [0, 1] on its own, colour-mapped and resized to ``cell``
    pixels; rows are labelled with the stage number, channel count and map size, cells with the channel index.

    Args:
        stages: ``stage_feature_maps(...)`` output.
        image: the input image, (3, H, W) or (1, 3, H, W) in [0, 1].
        path: the PNG to write (atomically).
        title: the figure's title (e.g. the model and its weights' provenance).
        cell: side of each cell in pixels (at 100 dpi).
        cmap: a matplotlib colormap name.

    Returns:
        ``path``.
    """
    import matplotlib

    if not stages:
        raise ValueError("plot_stage_features needs at least one stage")
    colours = matplotlib.colormaps[cmap]
    image = image[0] if image.dim() == 4 else image
    shown = F.interpolate(image[None].detach().float().cpu(), size=(cell, cell), mode="bilinear", antialias=True,
                          align_corners=False)[0].clamp(0, 1).permute(1, 2, 0).numpy()  # fmt: skip
    columns = 2 + max(len(s["top"]) for s in stages)
    inches = cell / 100
    fig = new_figure(columns * inches * 1.1 + 0.9, len(stages) * inches * 1.25 + (0.8 if title else 0.2))
    axes = fig.subplots(len(stages), columns, squeeze=False)
    for row, stage in enumerate(stages):
        h, w = stage["size"]
        cells = [(shown, "input"), (_colour_map(stage["mean"], cell, colours), "channel mean")]
        cells += [(_colour_map(m, cell, colours), f"channel {c}") for c, m in zip(stage["top"], stage["maps"])]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(cells):
                ax.imshow(cells[col][0], interpolation="nearest")
                ax.set_title(cells[col][1], fontsize=7, pad=2)
        axes[row][0].set_ylabel(f"stage {stage['stage']}\n{stage['channels']} ch, {h}x{w}", fontsize=8)
    if title:  # wrapped to the figure's width: provenance strings are long
        import textwrap

        fig.suptitle("\n".join(textwrap.wrap(title, width=int(columns * inches * 1.1 * 12))), fontsize=9)
    return save_figure(fig, path)


def plot_top1_errors(records: list[dict], path: str, labels: dict[str, str] | None = None) -> str:
    """Figure 1: a group of bars per SR model (``labels`` may rename them), one bar per classifier, top-1 error in %,
    each bar labelled with its value. Returns ``path`` (PNG, written atomically)."""
    import textwrap

    classifiers = list(dict.fromkeys(r["classifier"] for r in records))
    models = list(dict.fromkeys(r["model"] for r in records))
    by_key = {(r["model"], r["classifier"]): r for r in records}
    width_in = max(4.0, 1.2 + len(models) * (0.3 + 0.35 * len(classifiers)))
    fig = new_figure(width_in, 3.8)
    ax = fig.subplots()
    width = 0.8 / len(classifiers)
    for k, classifier in enumerate(classifiers):
        xs = [j + (k - (len(classifiers) - 1) / 2) * width for j in range(len(models))]
        heights = [100 * by_key[(m, classifier)]["top1_error"] for m in models]
        bars = ax.bar(xs, heights, width, label=classifier)
        ax.bar_label(bars, labels=[f"{h:.0f}" for h in heights], fontsize=7, padding=1)
    ax.set_xticks(range(len(models)), [(labels or {}).get(m, m) for m in models], rotation=20, ha="right")
    ax.set_ylabel("top-1 error (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, title="classifier", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    # The title spans the figure (a suptitle, laid out by constrained layout above the axes and the legend), wrapped
    # to its width: an axes title is centred on the axes alone and was cut off at both edges of a narrow figure.
    sets = ", ".join(dict.fromkeys(r["dataset"] for r in records))
    title = f"Classifiers on super-resolved images ({sets}, {records[0]['images']} images)"
    lines = textwrap.wrap(title, width=int(width_in * 100 / 6.5), break_on_hyphens=False)  # ~6.5 px per glyph
    fig.suptitle("\n".join(lines), fontsize=9)
    return save_figure(fig, path)


__all__ = [
    "INIT_COLOURS",
    "new_figure",
    "plot_correlation",
    "plot_init_comparison",
    "plot_stage_features",
    "plot_sweep",
    "plot_top1_errors",
    "save_figure",
]
