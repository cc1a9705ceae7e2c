"""The README's commands cannot rot: each command of its bash blocks, and each inline `python ...` / `accelerate
launch ...` command of its text, parses with its script's own parser (a renamed flag or a bad value fails here, not on
a reader's machine), and each run folder or file it reads is written by an earlier command of the README: a folder
read as a model by a training command (not an evaluation's output folder), a file by any command. Data the README
tells the user to place (``data/``, ``DIV2K/``, ``path/to/``, Hub ids: nothing under a folder the README's commands
write into) and ``builtin`` are not checked.

The blocks are expanded by bash itself (loops, variables, ``${w%%:*}``, ``$(ls -d runs/fr-* | paste -sd,)``) with
``python``, ``accelerate``, ``pip`` and ``cp`` replaced by functions that record their arguments and create the
``--output_dir`` they name (so a later ``ls`` finds it); nothing runs, and any other command is reported as unknown.
"""

import functools
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import readme_snippets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Read by README commands, made by hand as the README describes (not by a command).
PLACED = {"out/val-builtin": "a 13-class ImageFolder of the builtin photographs, described in a comment"}
# What a training run writes inside its folder, readable by later commands.
RUN_PARTS = ("discriminator", "vae", "checkpoints", "split.json", "results.json", "config.json", "README.md",
             "model.safetensors")  # fmt: skip
TRAINING_SCRIPTS = ("train_sr.py", "train_metric.py", "train_iqa.py", "train_robust.py")

STUBS = r"""record() { printf '%s\0' "$#" "$@" >> "$LOG"; }  # $1: the script line of the call
make_output_dir() { local previous=""; for a in "$@"; do
  if [ "$previous" = --output_dir ]; then mkdir -p -- "$a"; fi; previous=$a; done; }
python() { record "${BASH_LINENO[0]}" python "$@"; make_output_dir "$@"; }
accelerate() { record "${BASH_LINENO[0]}" accelerate "$@"; make_output_dir "$@"; }
pip() { record "${BASH_LINENO[0]}" pip "$@"; }
cp() { record "${BASH_LINENO[0]}" cp "$@"; }
command_not_found_handle() { record "${BASH_LINENO[0]}" unknown "$@"; }
"""


def expand(snippets: list[tuple[int, str]], sandbox: Path) -> list[tuple[int, list[str]]]:
    """(README line, argv) of every command the snippets run, in order, expanded by bash in ``sandbox``."""
    bin_dir, log = sandbox / "bin", sandbox / "commands.log"
    bin_dir.mkdir()
    for tool in ("ls", "paste", "mkdir"):  # the only real programs the blocks may call
        os.symlink(shutil.which(tool), bin_dir / tool)
    script, readme_line = STUBS, {}  # script line -> README line
    for line, text in snippets:
        first = script.count("\n") + 1
        readme_line |= {first + i: line + i for i in range(text.count("\n") + 1)}
        script += text if text.endswith("\n") else text + "\n"
    env = {"PATH": str(bin_dir), "LOG": str(log), "HOME": str(sandbox)}
    done = subprocess.run([shutil.which("bash"), "-c", script], cwd=sandbox, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    fields, commands = log.read_text().split("\0")[:-1], []
    while fields:
        argc, fields = int(fields[0]), fields[1:]
        commands.append((readme_line.get(int(fields[0]), 0), fields[1:argc]))
        fields = fields[argc:]
    return commands


def script_module(script: str):
    """The module of a README script (``train_sr.py``, ``scripts/demo.py``, ``benchmarks/x.py``), imported once."""
    name = script.removesuffix(".py").replace("/", ".")
    if name in sys.modules:
        return sys.modules[name]
    if "/" not in script:
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


@functools.cache
def launch_parser():
    """``accelerate launch``'s own argument parser (built once: it has 150 flags)."""
    from accelerate.commands.launch import launch_command_parser

    return launch_command_parser()


def script_call(argv: list[str]) -> tuple[str, list[str]] | None:
    """(script, its arguments) of ``python SCRIPT ...`` or ``accelerate launch [launcher flags] SCRIPT ...``; None for
    what runs no script of this repository (pip, ``accelerate config``, ``python -m pytest``, ``python -c``, cp)."""
    if argv[:2] == ["accelerate", "launch"]:
        launch = launch_parser().parse_args(argv[2:])  # SystemExit on a launcher flag that does not exist
        return launch.training_script, launch.training_script_args
    if argv[0] == "python" and argv[1].endswith(".py"):
        return argv[1], argv[2:]
    return None


def values(args: list[str]) -> list[str]:
    """The path-like pieces of a command's values: comma-separated items, ``gan:`` and ``NAME=`` prefixes dropped;
    ``--output_dir`` is what it writes, not a read."""
    pieces = []
    for i, token in enumerate(args):
        if token.startswith("--") or (i and args[i - 1] == "--output_dir"):
            continue
        for piece in token.split(","):
            piece = piece.removeprefix("gan:").split("=")[-1].rstrip("/")
            if piece:
                pieces.append(piece)
    return pieces


def python_c_paths(code: str) -> tuple[list[str], list[str]]:
    """(read, written) folders of a ``python -c`` line: quoted paths, those given to ``save_pretrained`` written."""
    written = re.findall(r"save_pretrained\(['\"]([^'\"]+)['\"]", code)
    quoted = re.findall(r"['\"]([^'\"]*/[^'\"]*)['\"]", code)
    return [p for p in quoted if p not in written], written


def test_every_readme_command_parses_and_reads_only_what_an_earlier_command_wrote(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash expands the README's blocks")
    commands = expand(readme_snippets(), tmp_path)
    # (order, README line, output folder, the script that wrote it); (order, README line, script, what it reads)
    writes: list[tuple[int, int, str, str]] = []
    reads: list[tuple[int, int, str, list[str]]] = []
    for order, (line, argv) in enumerate(commands):
        assert argv[0] != "unknown", f"README line {line}: {argv[1:]} is no command this test knows"
        try:
            call = script_call(argv)
        except SystemExit as err:
            pytest.fail(f"README line {line}: {' '.join(argv)}: the launcher's flags do not parse (exit {err.code})")
        if call is None:
            if argv[:2] == ["python", "-c"]:
                read, written = python_c_paths(argv[2])
                reads.append((order, line, "python -c", read))
                writes += [(order, line, os.path.normpath(path), "save_pretrained") for path in written]
            elif argv[0] == "cp":
                reads.append((order, line, "cp", argv[1:-1]))
            else:
                known = argv[0] == "pip" or argv[:2] == ["accelerate", "config"] or argv[1:3] == ["-m", "pytest"]
                assert known, f"README line {line}: {argv} runs no script of this repository and no known tool"
            continue
        script, args = call
        assert (ROOT / script).is_file(), f"README line {line}: {script} does not exist"
        parse = getattr(script_module(script), "parse_args", None)
        if parse is None:  # a script without flags (scripts/update_lock.py)
            assert not args, f"README line {line}: {script} takes no arguments"
            continue
        try:
            parsed = parse(args)
        except SystemExit as err:
            pytest.fail(f"README line {line}: {script} {' '.join(args)} does not parse (exit {err.code})")
        reads.append((order, line, script, values(args)))
        if getattr(parsed, "output_dir", None):  # the parser's default where the command gives none
            writes.append((order, line, os.path.normpath(parsed.output_dir), script))
    roots = {out.split(os.sep)[0] for _, _, out, _ in writes}  # where the README's commands write: output/, runs/, ...

    checked, problems = 0, []
    for order, line, script, pieces in reads:
        for path in (os.path.normpath(p) for p in pieces if p.split("/")[0] in roots and p not in PLACED):
            earlier = [(written, out, by, at) for written, at, out, by in writes
                       if written < order and (path == out or path.startswith(out + os.sep))]  # fmt: skip
            if not earlier:
                problems.append(f"README line {line}: {script} reads {path}, which no earlier README command writes")
                continue
            _, out, by, at = max(earlier, key=lambda e: (len(e[1]), e[0]))  # the innermost folder, the latest writer
            model_maker = by in TRAINING_SCRIPTS or by == "save_pretrained"
            if path == out and not model_maker:  # a folder read is a model, or a run a table is made of
                problems.append(f"README line {line}: {script} reads {path}, the output folder of {by} (README line "
                                f"{at}), as a model: name a training run's folder")  # fmt: skip
            elif path != out:
                part = path[len(out) + 1 :]
                # a training run's own parts; an evaluation's files, in its folder itself
                if not (part.split(os.sep)[0] in RUN_PARTS if model_maker else os.sep not in part and "." in part):
                    problems.append(f"README line {line}: {script} reads {path}; {by} (README line {at}) writes no "
                                    f"{part}")  # fmt: skip
            checked += 1
    assert not problems, "\n".join(dict.fromkeys(problems))  # once each, not once per loop iteration
    assert checked > 40  # the check looked at the README's chains, not at nothing
