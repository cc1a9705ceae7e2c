"""The verbs of ``evaluate.py``, one module each: its parser (``register_subcommand(subparsers)``, which sets the
sub-parser's ``run``) beside its code. ``COMMANDS`` lists them in the order ``evaluate.py --help`` shows them.

Only ``evaluate.py`` imports this package: the library below never depends on a command."""

from . import (
    classify,
    correlation,
    discriminators,
    features,
    fr,
    grid,
    init_comparison,
    metric_as_loss,
    nr,
    robust_table,
    sr,
    sweep,
)

COMMANDS = (fr, nr, init_comparison, features, metric_as_loss, sr, grid, correlation, sweep, discriminators,
            robust_table, classify)  # fmt: skip

__all__ = ["COMMANDS"]
