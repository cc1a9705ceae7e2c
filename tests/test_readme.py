"""The README's and the docs' commands cannot rot: each command of the bash blocks, and each inline `python ...` /
`accelerate launch ...` command of the text, of README.md and of every docs/*.md parses with its script's own parser
(a renamed flag or a bad value fails here, not on a reader's machine), and each run folder or file it reads is written
by an earlier command: a folder read as a model by a training command (not an evaluation's output folder), a file by
any command. Data the documents tell the user to place (``data/``, ``DIV2K/``, ``path/to/``, Hub ids: nothing under a
folder the documents' commands write into) and ``builtin`` are not checked.

"Earlier" is one reading order for all documents: README.md first, then the docs/*.md pages in the order of the
README's docs map (its "## Documentation" table), all of them concatenated into one chain. So a page may read what the
README or any page listed above it in the map writes (docs/evaluate.md scores ``runs/metric-resnet50`` from
docs/train_metric.md), never what a later page writes. Every docs/*.md is in the map, and every bash block of every
document records at least one command (no page or block is silently left unread).

The blocks are expanded by bash itself (loops, variables, ``${w%%:*}``, ``$(ls -d runs/fr-* | paste -sd,)``) with
``python``, ``accelerate``, ``pip``, ``cp`` and ``rm`` replaced by functions that record their arguments and create the
``--output_dir`` they name (so a later ``ls`` finds it), ``mktemp`` by one that names a folder; nothing runs, and any
other command is reported as unknown.

The docs' other promises are checked here too: every relative link (and image) of README.md and docs/*.md points at an
existing file, each page starts with a one-line title and links back to the README, and the README, a front page,
stays within ``README_MAX_LINES`` lines.
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
from conftest import snippets

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 400
DOCS_MAP_HEADING = "## Documentation"

# Read by the documents' commands, made by hand as the documents describe (not by a command).
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
rm() { record "${BASH_LINENO[0]}" rm "$@"; }
mktemp() { echo "$PWD/mktemp"; }
command_not_found_handle() { record "${BASH_LINENO[0]}" unknown "$@"; }
"""


def bash_blocks(path: Path) -> list[range]:
    """The lines of each ```bash block's body in ``path``."""
    text, blocks = path.read_text(), []
    for match in re.finditer(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        first = text.count("\n", 0, match.start(1)) + 1
        blocks.append(range(first, first + match.group(1).count("\n")))
    return blocks


def docs_map() -> list[Path]:
    """The docs/*.md pages in the order the README's docs map (the table under ``DOCS_MAP_HEADING``, a page linked
    first in each row) lists them."""
    text = README.read_text()
    assert f"\n{DOCS_MAP_HEADING}\n" in text, f"README.md has no {DOCS_MAP_HEADING!r} section (the docs map)"
    section = text.split(f"\n{DOCS_MAP_HEADING}\n", 1)[1].split("\n## ", 1)[0]
    rows = [row for row in section.splitlines() if row.startswith("|")]  # the table's rows, not the prose around it
    cells = [re.match(r"\|\s*\[[^\]]*\]\((docs/[^)#\s]+\.md)\)", row) for row in rows]
    return [ROOT / p for p in dict.fromkeys(cell.group(1) for cell in cells if cell)]


def documents() -> list[Path]:
    """README.md, then the docs in the docs map's order: the reading order of the commands' chain."""
    return [README, *docs_map()]


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def expand(docs: list[Path], sandbox: Path) -> list[tuple[str, list[str]]]:
    """(``"<document> line <n>"``, argv) of every command the documents' snippets run, in order (the documents
    concatenated into one bash script), expanded by bash in ``sandbox``."""
    bin_dir, log = sandbox / "bin", sandbox / "commands.log"
    bin_dir.mkdir()
    for tool in ("ls", "paste", "mkdir"):  # the only real programs the blocks may call
        os.symlink(shutil.which(tool), bin_dir / tool)
    script, where = STUBS, {}  # script line -> "document line n"
    for doc in docs:
        for line, text in snippets(doc):
            first = script.count("\n") + 1
            where |= {first + i: f"{name(doc)} line {line + i}" for i in range(text.count("\n") + 1)}
            script += text if text.endswith("\n") else text + "\n"
    env = {"PATH": str(bin_dir), "LOG": str(log), "HOME": str(sandbox)}
    done = subprocess.run([shutil.which("bash"), "-c", script], cwd=sandbox, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    fields, commands = log.read_text().split("\0")[:-1], []
    while fields:
        argc, fields = int(fields[0]), fields[1:]
        commands.append((where.get(int(fields[0]), "?"), fields[1:argc]))
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


def test_every_documented_command_parses_and_reads_only_what_an_earlier_command_wrote(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash expands the documents' blocks")
    docs = documents()
    commands = expand(docs, tmp_path)
    recorded = {where for where, _ in commands}  # every bash block of every document is read: each records a command
    unread = [f"{name(doc)} line {block.start}" for doc in docs for block in bash_blocks(doc)
              if not {f"{name(doc)} line {n}" for n in block} & recorded]  # fmt: skip
    assert not unread, f"bash blocks from which no command was recorded: {unread}"
    # (order, where, output folder, the script that wrote it); (order, where, script, what it reads)
    writes: list[tuple[int, str, str, str]] = []
    reads: list[tuple[int, str, str, list[str]]] = []
    for order, (where, argv) in enumerate(commands):
        assert argv[0] != "unknown", f"{where}: {argv[1:]} is no command this test knows"
        try:
            call = script_call(argv)
        except SystemExit as err:
            pytest.fail(f"{where}: {' '.join(argv)}: the launcher's flags do not parse (exit {err.code})")
        if call is None:
            if argv[:2] == ["python", "-c"]:
                read, written = python_c_paths(argv[2])
                reads.append((order, where, "python -c", read))
                writes += [(order, where, os.path.normpath(path), "save_pretrained") for path in written]
            elif argv[0] == "cp":
                reads.append((order, where, "cp", argv[1:-1]))
            else:
                tool = argv[0] in ("pip", "rm") or argv[:2] == ["accelerate", "config"]
                known = tool or argv[1:3] in (["-m", "pytest"], ["-m", "venv"])
                assert known, f"{where}: {argv} runs no script of this repository and no known tool"
            continue
        script, args = call
        assert (ROOT / script).is_file(), f"{where}: {script} does not exist"
        parse = getattr(script_module(script), "parse_args", None)
        if parse is None:  # a script without flags (scripts/update_lock.py)
            assert not args, f"{where}: {script} takes no arguments"
            continue
        try:
            parsed = parse(args)
        except SystemExit as err:
            pytest.fail(f"{where}: {script} {' '.join(args)} does not parse (exit {err.code})")
        reads.append((order, where, script, values(args)))
        if getattr(parsed, "output_dir", None):  # the parser's default where the command gives none
            writes.append((order, where, os.path.normpath(parsed.output_dir), script))
    roots = {out.split(os.sep)[0] for _, _, out, _ in writes}  # where the commands write: output/, runs/, ...

    checked, problems = 0, []
    for order, where, script, pieces in reads:
        for path in (os.path.normpath(p) for p in pieces if p.split("/")[0] in roots and p not in PLACED):
            earlier = [(written, out, by, at) for written, at, out, by in writes
                       if written < order and (path == out or path.startswith(out + os.sep))]  # fmt: skip
            if not earlier:
                problems.append(f"{where}: {script} reads {path}, which no earlier command writes (the README's, "
                                "then each doc's in the docs map's order)")  # fmt: skip
                continue
            _, out, by, at = max(earlier, key=lambda e: (len(e[1]), e[0]))  # the innermost folder, the latest writer
            model_maker = by in TRAINING_SCRIPTS or by == "save_pretrained"
            if path == out and not model_maker:  # a folder read is a model, or a run a table is made of
                problems.append(f"{where}: {script} reads {path}, the output folder of {by} ({at}), as a model: "
                                "name a training run's folder")  # fmt: skip
            elif path != out:
                part = path[len(out) + 1 :]
                # a training run's own parts; an evaluation's files, in its folder itself
                if not (part.split(os.sep)[0] in RUN_PARTS if model_maker else os.sep not in part and "." in part):
                    problems.append(f"{where}: {script} reads {path}; {by} ({at}) writes no {part}")
            checked += 1
    assert not problems, "\n".join(dict.fromkeys(problems))  # once each, not once per loop iteration
    assert checked > 100  # the chains of all documents were looked at (128 reads today), not nothing


def test_the_docs_map_lists_every_doc_once_and_only_existing_ones():
    listed = docs_map()
    on_disk = sorted((ROOT / "docs").glob("*.md"))
    assert listed, "the README's docs map links no docs/*.md"
    missing = [name(p) for p in on_disk if p not in listed]
    assert not missing, f"docs not in the README's docs map (so their commands are never checked): {missing}"
    absent = [name(p) for p in listed if not p.is_file()]
    assert not absent, f"the README's docs map lists docs that do not exist: {absent}"


def test_the_readme_is_a_front_page():
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move a section to docs/"
    )


def test_each_doc_has_a_title_and_links_back_to_the_readme():
    for doc in docs_map():
        lines = doc.read_text().splitlines()
        assert lines[0].startswith("# ") and not lines[1].strip(), f"{name(doc)}: no one-line title first"
        assert "](../README.md)" in doc.read_text(), f"{name(doc)}: no link back to the README"


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of each Markdown link and image of ``path`` that points into the repository (no scheme, not a
    bare ``#anchor``); code blocks and code spans are not links."""
    text = path.read_text()
    text = re.sub(r"^```.*?^```", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", lambda m: " " * len(m.group(0)), text)
    found = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue
        found.append((text.count("\n", 0, match.start()) + 1, target))
    return found


def test_every_relative_link_points_at_an_existing_file():
    broken, checked = [], 0
    for doc in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for line, target in relative_links(doc):
            checked += 1
            if not (doc.parent / target.split("#")[0]).exists():
                broken.append(f"{name(doc)} line {line}: {target} does not exist")
    assert not broken, "\n".join(broken)
    assert checked > 2 * len(docs_map())  # the docs map, the pages' links back, the pictures: not nothing
