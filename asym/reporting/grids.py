"""Image grids with a label above each column: train_sr.py's validation grids (LR | bicubic | SR | HR) and
``evaluate.py grid`` (input | models | reference).

The labels are drawn into the image (Pillow's default font on a strip above the grid), so a grid read alone, in a
README or a paper draft, says what each column is. A label wider than its column is cut short with "…".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

FONT_SIZE = 12  # pixels (Pillow's default font, scalable where Pillow has FreeType)
LABEL_HEIGHT = FONT_SIZE + 8  # the strip above the grid


def _fit(draw, text: str, font, width: int) -> str:
    """``text``, cut short with an ellipsis until it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…" if text else ""


def label_strip(labels: Sequence[str], tile_width: int, padding: int, background: float = 1.0) -> torch.Tensor:
    """A (3, ``LABEL_HEIGHT``, W) strip naming each column of a ``torchvision.utils.make_grid`` grid of
    ``len(labels)`` columns of ``tile_width`` pixels with ``padding``: each label centred over its column, black on
    ``background`` (white by default) or white on a dark one."""
    from PIL import Image, ImageDraw, ImageFont

    width = len(labels) * (tile_width + padding) + padding
    shade = round(255 * background)
    strip = Image.new("RGB", (width, LABEL_HEIGHT), (shade,) * 3)
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=FONT_SIZE)
    ink = (0, 0, 0) if shade >= 128 else (255, 255, 255)
    for column, label in enumerate(labels):
        left = padding + column * (tile_width + padding)
        draw.text((left + tile_width / 2, LABEL_HEIGHT / 2), _fit(draw, str(label), font, tile_width), fill=ink,
                  font=font, anchor="mm")  # fmt: skip
    return torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1).float() / 255


def labelled_grid(tiles: torch.Tensor | Sequence[torch.Tensor], labels: Sequence[str], padding: int = 2,
                  pad_value: float = 1.0) -> torch.Tensor:  # fmt: skip
    """``make_grid`` of equal-sized (3, H, W) ``tiles`` in rows of ``len(labels)`` (row-major), with ``label_strip``
    above it: a (3, ``LABEL_HEIGHT`` + grid height, grid width) image in [0, 1]."""
    from torchvision.utils import make_grid

    tiles = torch.stack(list(tiles)) if not isinstance(tiles, torch.Tensor) else tiles
    grid = make_grid(tiles.detach().float().cpu().clamp(0, 1), nrow=len(labels), padding=padding, pad_value=pad_value)
    strip = label_strip(labels, tiles.shape[-1], padding, pad_value)
    return torch.cat([strip, grid], dim=1)


def save_labelled_grid(path: str, tiles: torch.Tensor | Sequence[torch.Tensor], labels: Sequence[str],
                       padding: int = 2, pad_value: float = 1.0) -> str:  # fmt: skip
    """Write ``labelled_grid(tiles, labels, ...)`` as a PNG at ``path``, atomically. Returns ``path``."""
    from torchvision.utils import save_image

    from ..core.atomic import atomic_path

    grid = labelled_grid(tiles, labels, padding, pad_value)
    with atomic_path(path) as tmp:
        save_image(grid, tmp, format="png")
    return path


__all__ = ["FONT_SIZE", "LABEL_HEIGHT", "label_strip", "labelled_grid", "save_labelled_grid"]
