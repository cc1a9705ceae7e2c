"""Progress bars: tqdm, redrawn in place on a terminal, plain and sparse lines in a log.

On a terminal a bar redraws itself with ``\\r`` and, nested under another bar, with cursor moves (``ESC[A``).
Written to a file or a pipe (``> train.log``, ``nohup``, a SLURM job, CI), every redraw is appended instead, and
the log fills with ``\\r`` / ``[A`` debris. There the bars of ``asym.core.progress.tqdm`` write plain lines: a bar that
stays (``leave``, e.g. the training steps) one line when it starts, at most one every ``LOG_INTERVAL`` seconds while
it runs and one with its final state; a transient bar (``leave=False``: an evaluation pass) only its progress lines
while it runs longer than that. Notebooks keep their widgets (tqdm.auto's choice).

``close_all()`` closes the bars still open, so that a message printed after an error or a Ctrl-C starts on a line
of its own instead of behind a half-drawn bar.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import weakref
from typing import ClassVar

from tqdm.auto import tqdm as auto_tqdm
from tqdm.autonotebook import tqdm as chosen_tqdm
from tqdm.std import tqdm as std_tqdm

LOG_INTERVAL = 30.0  # seconds between two lines of a running bar in a log
IN_NOTEBOOK = chosen_tqdm is not std_tqdm  # tqdm.auto's choice (without importing IPython to ask again)


def writes_to_terminal(file) -> bool:
    """Whether ``file`` is a terminal (a closed or file-less stream counts as not)."""
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


def terminal_stream():
    """Where bars and log lines go: stderr, or stdout where only stdout is a terminal. ``accelerate launch`` (1.16)
    pipes its child's stderr to relay it, so the child's stderr is no terminal though the user's is: bars written
    there came out as a line every 30 s, and a log line relayed through the pipe could land inside a redrawn bar."""
    if writes_to_terminal(sys.stderr) or not writes_to_terminal(sys.stdout):
        return sys.stderr
    return sys.stdout


class tqdm(auto_tqdm):  # noqa: N801 - a drop-in for tqdm.auto.tqdm
    """``tqdm.auto.tqdm`` whose output is plain lines where it does not go to a terminal (see the module)."""

    still_open: ClassVar[weakref.WeakSet] = weakref.WeakSet()  # for close_all (a class attribute: alive at exit)

    def __init__(self, *args, **kwargs):
        if kwargs.get("file") is None:
            kwargs["file"] = terminal_stream()
        # set before tqdm's __init__, which draws the bar once
        self.as_lines = not IN_NOTEBOOK and not writes_to_terminal(kwargs["file"])
        self.last_line = time.monotonic() if kwargs.get("leave", True) is False else -math.inf
        self.last_line_n = None
        super().__init__(*args, **kwargs)
        if not self.disable:
            self.still_open.add(self)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if not self.as_lines:
            return super().display(msg, pos)
        if msg == "":  # tqdm clearing the bar: nothing to clear in a log
            return True
        now = time.monotonic()
        if msg is None and now - self.last_line < LOG_INTERVAL:
            return True
        self.last_line, self.last_line_n = now, self.n
        self.fp.write(f"{self.__str__() if msg is None else msg}\n")
        self.fp.flush()
        return True

    def clear(self, nolock: bool = False) -> None:
        if not self.as_lines:
            super().clear(nolock)

    def close(self) -> None:
        self.still_open.discard(self)
        if self.as_lines and not self.disable:
            if ((self.pos == 0) if self.leave is None else self.leave) and self.last_line_n != self.n:
                self.last_line = -math.inf
                self.display()  # the final state, unless the last line showed it
            self.sp = None  # tqdm's close then writes nothing more (as for its GUI bars): the line is out
        super().close()


class LogHandler(logging.Handler):
    """Log records written where the bars are (``terminal_stream()``, looked up at each record) through
    ``tqdm.write``, which clears the open bars first and redraws them after: a line never lands inside a bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=terminal_stream())
        except Exception:  # noqa: BLE001 - logging's own contract: a failing handler reports, never raises
            self.handleError(record)


def close_all() -> None:
    """Close every ``asym.core.progress.tqdm`` bar still open, the innermost first (a bar that stays is drawn once more,
    at the state it reached, and ends its line; a transient one is cleared)."""
    for bar in sorted(tqdm.still_open, key=lambda bar: -abs(getattr(bar, "pos", 0))):
        bar.close()


__all__ = ["LOG_INTERVAL", "LogHandler", "close_all", "terminal_stream", "tqdm", "writes_to_terminal"]
