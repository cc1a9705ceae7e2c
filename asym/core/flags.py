"""Numeric command-line flags, validated at parse time.

Every numeric flag of every script takes one of these ``type=``s: a value out of range is refused by argparse (exit
status 2, one ``error: argument --flag: must be ...`` line) before anything is built or written. Where 0 (or a
bound) is accepted, the flag's help says what it means ("0: off", "in [0, 1)").
"""

from __future__ import annotations

import argparse
import math


def int_in(low: int, high: int | None = None):
    """An argparse ``type`` for integers in [``low``, ``high``] (no upper bound without ``high``)."""
    describe = f"at least {low}" if high is None else f"an integer from {low} to {high}"

    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {describe}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}" if high is None else f"integer in [{low}, {high}]"  # argparse's "invalid X"
    return parse


def int_at_least(low: int):
    """An argparse ``type`` for integers >= ``low`` (e.g. ``--max_eval_samples``: a correlation needs 3 scores)."""
    return int_in(low)


def float_in(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False,
             fractions: bool = False):  # fmt: skip
    """An argparse ``type`` for finite numbers between ``low`` and ``high`` (open ends with ``low_open`` /
    ``high_open``; None: unbounded); ``fractions`` also takes ``a/b`` (attack radii are written so: ``4/255``)."""
    if high is None:
        describe = f"a {'positive' if low_open else 'non-negative'} number" if low == 0 else \
            f"a number {'>' if low_open else '>='} {low:g}"  # fmt: skip
    else:
        describe = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        num, slash, den = text.partition("/") if fractions else (text, "", "")
        try:
            value = float(num) / float(den) if slash else float(num)
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"not a number{' or a fraction a/b' * fractions}: {text!r}") from None
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
        if not (math.isfinite(value) and above and below):
            raise argparse.ArgumentTypeError(f"must be {describe}, got {text}")
        return value

    return parse


positive_int = int_in(1)  # counts, sizes, steps
non_negative_int = int_in(0)  # where 0 has a meaning the flag's help gives (0: off, 0: keep all, 0: whole images)
positive_float = float_in(0, low_open=True)  # learning rates, radii, step sizes
non_negative_float = float_in(0)  # loss weights (0: the term is off), norms (0: no clipping)
unit_interval = float_in(0, 1, high_open=True)  # Adam's betas, momentum, decay, dropout: [0, 1)
seed_int = int_in(0, 2**32 - 1)  # numpy's and transformers.set_seed's range
positive_fraction = float_in(0, low_open=True, fractions=True)  # attack radii and steps, often written 4/255
non_negative_fraction = float_in(0, fractions=True)  # attack radii where 0 means no attack


__all__ = [
    "float_in",
    "int_at_least",
    "int_in",
    "non_negative_float",
    "non_negative_fraction",
    "non_negative_int",
    "positive_float",
    "positive_fraction",
    "positive_int",
    "seed_int",
    "unit_interval",
]
