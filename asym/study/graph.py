"""A study as data: its runs (script, arguments, the folder each writes) and the graph of what each run reads.

A run reads another when one of its arguments names that run's folder or a file inside it (``--per_metric
runs/metric-vgg16``, ``--weights gan:runs/gan-vgg16``, ``--normalisation runs/table1/normalisation.json``, a
comma-separated ``--models`` list); the graph is derived from the arguments alone, so the commands are the one place
that says what a study does. ``Study`` checks it: folder names unique, no run reading a path under the study's folder
that no run writes, no cycle; and it orders the runs so that each comes after everything it reads.

    >>> study = Study("runs/smoke", [("train_sr.py", ["--loss", "rec", "--output_dir", "runs/smoke/sr-stage1"])])
    >>> [run.name for run in study.runs]
    ['sr-stage1']
"""

from __future__ import annotations

import fnmatch
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.errors import UserError
from .chains import command_flags

EVALUATE = "evaluate.py"


@dataclass(frozen=True)
class Run:
    """One command of a study: ``script`` with ``args``, writing ``output_dir``; ``name`` is that folder relative to
    the study's folder (``metric-vgg16``); ``reads`` the names of the runs whose folders its arguments name."""

    name: str
    script: str
    args: tuple[str, ...]
    output_dir: str
    reads: tuple[str, ...] = ()

    @property
    def trains(self) -> bool:
        """A training run (checkpoints, a model at the end), as opposed to an ``evaluate.py`` verb."""
        return os.path.basename(self.script) != EVALUATE

    def command_line(self) -> str:
        """``script args...`` as a shell would take it: what the run's record is keyed by."""
        return shlex.join([self.script, *self.args])

    def flag(self, name: str, default: str | None = None) -> str | None:
        """The value of ``--name`` in the arguments (``command_flags``; a switch has none: ``default``)."""
        value = command_flags(self.args).get(name)
        return value if isinstance(value, str) else default


def _output_dir(script: str, args: Sequence[str]) -> str:
    if "--output_dir" not in args[:-1]:
        raise UserError(f"a study command without --output_dir: {shlex.join([script, *args])}")
    return args[list(args).index("--output_dir") + 1]


def _paths(value: str) -> list[str]:
    """The paths an argument value may name: each comma-separated part, a ``gan:`` source's folder."""
    return [part.removeprefix("gan:") for part in value.split(",") if part]


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


class Study:
    """The runs of ``commands`` (``(script, args)`` pairs, every run writing under ``folder``), with what each reads.

    Raises:
        UserError: two runs writing one folder, a run writing outside ``folder``, a run reading a path under ``folder``
            that no run writes (naming both), or a cycle (naming its runs).
    """

    def __init__(self, folder: str, commands: Sequence[tuple[str, Sequence[str]]]):
        self.folder = folder
        root = os.path.abspath(folder)
        found: dict[str, Run] = {}
        for script, args in commands:
            out = os.path.abspath(_output_dir(script, args))
            if not _inside(out, root) or out == root:
                raise UserError(f"{script} writes {out}, outside the study's folder {root}")
            name = os.path.relpath(out, root)
            if name in found:
                raise UserError(f"two runs of the study write {out}: {found[name].command_line()} and "
                                f"{shlex.join([script, *args])}")  # fmt: skip
            found[name] = Run(name, script, tuple(args), out)
        folders = sorted(((run.output_dir, name) for name, run in found.items()), key=lambda x: -len(x[0]))
        for name, run in list(found.items()):
            reads = []
            for i, value in enumerate(run.args):
                if i and run.args[i - 1] == "--output_dir":
                    continue
                for path in (os.path.abspath(p) for p in _paths(value)):
                    if not _inside(path, root) or _inside(path, run.output_dir):
                        continue  # data outside the study (checked by the preflight), or its own folder
                    producer = next((n for folder, n in folders if _inside(path, folder)), None)
                    if producer is None:
                        raise UserError(f"run {name} reads {value}, which no run of the study writes "
                                        f"({run.command_line()})")  # fmt: skip
                    reads.append(producer)
            found[name] = Run(name, run.script, run.args, run.output_dir, tuple(dict.fromkeys(reads)))
        self.runs = _ordered(list(found.values()))
        self.by_name = {run.name: run for run in self.runs}

    def __len__(self) -> int:
        return len(self.runs)

    def needs(self, names: Sequence[str]) -> list[str]:
        """``names`` and every run they read, directly or not, in study order."""
        wanted, stack = set(), list(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.by_name[name].reads)
        return [run.name for run in self.runs if run.name in wanted]

    def dependents(self, name: str) -> list[str]:
        """Every run that reads ``name``, directly or not, in study order."""
        hit = {name}
        for run in self.runs:
            if hit & set(run.reads):
                hit.add(run.name)
        return [run.name for run in self.runs if run.name in hit and run.name != name]

    def select(self, patterns: Sequence[str]) -> list[Run]:
        """The runs whose names match one of ``patterns`` (shell patterns: ``sr-vgg16-*``, ``table3``) and everything
        they read: the part of the study they need.

        Raises:
            UserError: a pattern that matches no run (naming a few runs).
        """
        chosen = []
        for pattern in patterns:
            matched = [run.name for run in self.runs if fnmatch.fnmatchcase(run.name, pattern)]
            if not matched:
                some = ", ".join(run.name for run in self.runs[:6])
                raise UserError(f"--only {pattern!r} matches no run of the study (its runs: {some}, ...; "
                                "--dry_run lists them all)")  # fmt: skip
            chosen += matched
        return [self.by_name[name] for name in self.needs(chosen)]


def _ordered(runs: list[Run]) -> list[Run]:
    """The runs, each after everything it reads, otherwise in the order given (Kahn's algorithm, stable).

    Raises:
        UserError: a cycle, naming its runs.
    """
    done: set[str] = set()
    left, ordered = list(runs), []
    while left:
        ready = next((run for run in left if set(run.reads) <= done), None)
        if ready is None:
            cycle = " -> ".join(run.name for run in left if set(run.reads) - done)
            raise UserError(f"the study's runs read each other in a cycle: {cycle}")
        ordered.append(ready)
        done.add(ready.name)
        left.remove(ready)
    return ordered
