"""User mistakes versus bugs.

A ``UserError`` is a mistake in the command line or the data (a bad path, an unknown name, a malformed csv, a
truncated checkpoint): the scripts report it as one line and exit with status 2. Anything else is a bug and keeps its
traceback. ``UserError`` is a ``ValueError``, so library users who catch ``ValueError`` still catch it.

Ctrl-C ends a script with one line too (a training script's says where its last checkpoint is and how to resume)
instead of a ``KeyboardInterrupt`` traceback; the process still ends as Python ends on Ctrl-C (status 130).

Files named by the user are parsed inside ``reading(path, what)``: whatever the parser raises on a truncated, foreign
or garbage file becomes one ``UserError`` naming the file, instead of a deserialiser's traceback.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import signal
import stat
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .progress import close_all as close_progress_bars


class UserError(ValueError):
    """A mistake in the command line or the data: reported as one line, exit status 2."""


def run_cli(main: Callable, args: argparse.Namespace,
            interrupted: Callable[[argparse.Namespace], str] | None = None):  # fmt: skip
    """Run ``main(args)`` as a script's entry point.

    A ``UserError`` ends with one line on stderr (``error: ...``) and exit status 2. Ctrl-C ends with one line
    (``interrupted(args)``, default ``interrupted``; from the main process only) and no traceback: the
    ``KeyboardInterrupt`` goes on, so CPython still cleans up and then ends the process by SIGINT (status 130 in the
    shell; a shell loop of runs stops too). Anything else propagates with its traceback. Open progress bars are
    closed first, so that the line or the traceback starts a line of its own.
    """
    interrupt_on_signals()
    one_line_warnings()
    try:
        return main(args)
    except UserError as err:
        close_progress_bars()
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":
            await_launcher_sigterm()
        close_progress_bars()
        if os.environ.get("RANK", "0") == "0":  # one line per run, not one per process
            print(interrupted(args) if interrupted else "interrupted", file=sys.stderr, flush=True)
        sys.excepthook = quiet_on_interrupt(sys.excepthook)
        raise
    except BaseException:
        close_progress_bars()
        raise


_signals = {"interrupted": False, "terminated": False}  # this process's: an interrupt under way, a SIGTERM seen
LAUNCHER_GRACE = 2.0  # seconds to wait for the launcher's SIGTERM after a Ctrl-C, where stderr is a pipe


def interrupt_on_signals() -> None:
    """Make SIGTERM a Ctrl-C too (``KeyboardInterrupt``), and once an interrupt is under way ignore a SIGTERM, so that
    its one line gets out: ``accelerate launch`` (1.16) SIGTERMs its child right after the terminal's SIGINT reached
    both, which killed the child before its line in 3 of 7 tries; SLURM's ``scancel`` and preemption send SIGTERM.
    A second SIGINT (Ctrl-C again) still interrupts. Signals the process ignores stay ignored (``nohup``)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        if signum == signal.SIGTERM:
            _signals["terminated"] = True
            if _signals["interrupted"]:
                return
        _signals["interrupted"] = True
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, handler)


def await_launcher_sigterm(timeout: float = LAUNCHER_GRACE) -> None:
    """After a Ctrl-C, where stderr is a pipe (``accelerate launch`` 1.16 relays it), wait until the launcher's
    SIGTERM has come (at most ``timeout``) before writing anything: the launcher starts the thread that goes on
    relaying only when it handles its own SIGINT, just before that SIGTERM, and drops what its main thread read at
    that moment, so a line written at once was lost in 7 of 10 tries (tiny, Accelerate 1.16); without a launcher
    nothing comes and the wait is ``timeout``. A terminal or a file as stderr: no wait."""
    try:
        piped = stat.S_ISFIFO(os.fstat(sys.stderr.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # no real stderr (a test's capture)
        return
    deadline = time.monotonic() + timeout
    while piped and not _signals["terminated"] and time.monotonic() < deadline:
        time.sleep(0.01)


def one_line_warnings() -> None:
    """asym's own warnings (a fit that fell back, scores that are constant, an unparsable VLM answer) as one line
    each, ``warning: <message>``, without Python's ``file:line: Category:`` and the source line under it (the smoke
    chain printed 16 such pairs), and each message once per process: Python's own once-per-place memory is reset by
    every ``warnings.catch_warnings`` (the correlations use one), so a run's validations repeated the same fit warning
    at each. Other libraries' warnings keep Python's form and rules."""
    python_form, python_show = warnings.formatwarning, warnings.showwarning
    if getattr(python_form, "one_line", False):  # once per process
        return
    shown = set()

    def asym_category(category) -> bool:
        return category.__module__.split(".")[0] == "asym"

    def formatwarning(message, category, filename, lineno, line=None):
        if asym_category(category):
            return f"warning: {message}\n"
        return python_form(message, category, filename, lineno, line)

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if asym_category(category):
            if (category, str(message)) in shown:
                return
            shown.add((category, str(message)))
        python_show(message, category, filename, lineno, file, line)

    formatwarning.one_line = True
    warnings.formatwarning, warnings.showwarning = formatwarning, showwarning


def quiet_on_interrupt(hook: Callable) -> Callable:
    """``hook`` (a ``sys.excepthook``) printing nothing for a ``KeyboardInterrupt``, whose line is already out."""

    def quiet(kind, value, traceback):
        if not issubclass(kind, KeyboardInterrupt):
            hook(kind, value, traceback)

    return quiet


def _parse_errors() -> tuple[type[BaseException], ...]:
    """What deserialisers and image decoders raise on a file that is not what it claims to be."""
    from PIL import Image
    from safetensors import SafetensorError

    return (OSError, ValueError, RuntimeError, KeyError, IndexError, EOFError, TypeError, SyntaxError,
            pickle.UnpicklingError, SafetensorError, Image.DecompressionBombError)  # fmt: skip


def summarize(err: BaseException) -> str:
    """One line on what went wrong: the exception's type and the first line of its message."""
    if isinstance(err, pickle.UnpicklingError):  # torch's message would suggest weights_only=False: never
        return "not a tensors-only torch file; only safetensors and weights_only torch files are loaded"
    if type(err).__name__ == "LocalEntryNotFoundError":  # huggingface_hub's four sentences, in a table cell
        return "LocalEntryNotFoundError: not in the local Hub cache, and the Hub cannot be reached"
    # the first line, and the one after it where the first only announces a list ("Error(s) in ...:")
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [""]
    reason = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]
    reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "(encoded bytes)", reason)[:300]
    return f"{type(err).__name__}: {reason}" if reason else type(err).__name__


@contextmanager
def reading(path: str | Callable[[], str], what: str = "", as_what: str = "") -> Iterator[None]:
    """Parse a user-given file: a failure inside the block becomes a ``UserError`` naming ``what`` and ``path``
    (``path`` may be a callable, called only on failure, where naming the source costs something: a table's row).

    Keep the block to the parsing call itself, so that only the file can be at fault.
    """
    try:
        yield
    except UserError:
        raise
    except _parse_errors() as err:
        name = " ".join(filter(None, [what, path() if callable(path) else str(path)]))
        as_what = f" as {as_what}" if as_what else ""
        raise UserError(
            f"{name} cannot be read{as_what} ({summarize(err)}); is it truncated or not the right file?"
        ) from err


class MetricUnavailable(UserError):
    """A metric that exists but cannot be built here: its weights could not be downloaded (offline, no cache), or a
    package it needs is missing. Not the user's mistake in naming it: a leaderboard reports it and goes on.

    ``reason``: why, in one line (the underlying error's type and message).
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


def list_names(names: list[str], limit: int = 5) -> str:
    """``"a, b, c, d, e, ... (3 more)"``: the first ``limit`` of ``names`` for a message, and how many are left out."""
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


__all__ = [
    "MetricUnavailable",
    "UserError",
    "interrupt_on_signals",
    "list_names",
    "quiet_on_interrupt",
    "reading",
    "run_cli",
    "summarize",
]
