"""The layout cannot regress: read from the code's own imports (every ``import``, those inside functions too).

* no import circle among the library's modules, so every module has a floor and no arrow runs back up;
* the library never imports a script, a test or a benchmark, and only evaluate.py imports its commands;
* no private (``_name``) name is imported from another module of the project;
* no source file over 500 lines, evaluate.py at most 150 (a dispatcher: each verb lives in ``asym.commands``);
* the scripts reach metrics through ``asym.create_metric`` only: no script builds a pyiqa metric or a scorer class.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "asym").rglob("*.py"))
SCRIPTS = sorted([*ROOT.glob("*.py"), *(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])
MAX_LINES, MAX_DISPATCHER = 500, 150
# the domain packages, bottom up: a module of one imports only its own package and the packages below it;
# saved_models (from_pretrained: whatever asym class a folder holds) reads every domain's models, the study and the
# evaluation verbs stand on everything
PACKAGE_ORDER = ["asym.core", "asym.reporting", "asym.backbones", "asym.nets", "asym.metrics", "asym.sr", "asym.iqa",
                 "asym.robust", "asym.saved_models", "asym.study", "asym.commands"]  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in [*LIBRARY, *SCRIPTS]}


def imports(path: Path):
    """(imported module, names taken from it, line) of every import in ``path``, relative ones resolved; ``from
    package import submodule`` is an import of the submodule."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    yield sub, [], node.lineno
                else:
                    yield base, [alias.name], node.lineno


def graph() -> dict[str, set[str]]:
    """Library module -> the library modules it imports (a package's ``__init__`` is the package's name)."""
    edges = {}
    for path in LIBRARY:
        name = module_name(path)
        edges[name] = {target for target, _, _ in imports(path) if target in MODULES and target != name}
    return edges


def test_the_import_graph_is_read():
    """The reader sees the arrows it must (a reader that found none would pass every check below)."""
    edges = graph()
    assert "asym.core.errors" in edges["asym.metrics.scorers"] and "asym.metrics.table" in edges["asym.metrics.scorers"]
    assert "asym.backbones" in edges["asym.nets.perceptual"] and len(edges) > 40


def test_no_import_circle():
    """Every library module has a floor: a depth-first walk finds no module on its own import path."""
    edges, state, circles = graph(), {}, []

    def visit(node, path):
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_library_never_imports_upwards():
    """asym/ imports no script, test or benchmark, and asym.commands is imported by evaluate.py alone."""
    wrong = []
    for path in [*LIBRARY, *SCRIPTS]:
        name = module_name(path)
        for target, _, line in imports(path):
            top = target.split(".")[0]
            if name.startswith("asym") and (target in MODULES and not target.startswith("asym") or top == "tests"):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
            if target.startswith("asym.commands") and not name.startswith("asym.commands") and name != "evaluate":
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} (only evaluate.py dispatches to it)")
    assert not wrong, "\n".join(wrong)


def package_of(module: str) -> str | None:
    return next((p for p in PACKAGE_ORDER if module == p or module.startswith(p + ".")), None)


def test_the_packages_stand_in_their_order():
    edges, wrong = graph(), []
    for module, targets in sorted(edges.items()):
        own = package_of(module)
        for target in sorted(targets) if own else ():
            below = package_of(target)
            if below is None or PACKAGE_ORDER.index(below) > PACKAGE_ORDER.index(own):
                wrong.append(f"{module} -> {target}")
    assert len(edges) > 40 and any(package_of(m) for m in edges)  # the packages are read
    assert not wrong, f"imports against the package order {PACKAGE_ORDER}: {wrong}"


def test_the_library_is_its_packages():
    """asym/ holds its packages in the order above and nothing else but the public API and saved_models: a new module
    belongs to a package."""
    entries = sorted(p.name for p in (ROOT / "asym").iterdir() if p.name not in ("__init__.py", "__pycache__"))
    expected = [name.removeprefix("asym.") + (".py" if name == "asym.saved_models" else "") for name in PACKAGE_ORDER]
    assert entries == sorted(expected)
    assert len(entries) <= 12


def test_no_private_name_is_imported_from_another_module():
    wrong = []
    for path in [*LIBRARY, *SCRIPTS]:
        for target, names, line in imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if target in MODULES and private:
                wrong.append(f"{path.relative_to(ROOT)}:{line} takes {', '.join(private)} from {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", [*LIBRARY, *SCRIPTS], ids=lambda p: str(p.relative_to(ROOT)))
def test_source_files_stay_readable(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    limit = MAX_DISPATCHER if path == ROOT / "evaluate.py" else MAX_LINES
    assert lines <= limit, f"{path.relative_to(ROOT)} has {lines} lines (at most {limit}): split it by concept"


def test_scripts_reach_metrics_only_through_create_metric():
    """No script or command builds a metric another way (pyiqa directly, or a scorer class of asym.metrics)."""
    commands = sorted((ROOT / "asym" / "commands").glob("*.py"))
    wrong = []
    for path in [*SCRIPTS, *commands]:
        for target, names, line in imports(path):
            if target == "pyiqa" or target.startswith("pyiqa."):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports pyiqa")
            scorers = {"FRMetric", "NRMetric", "FidelityMetric"} & set(names)
            if target.startswith("asym.metrics") and scorers:
                wrong.append(f"{path.relative_to(ROOT)}:{line} takes {', '.join(sorted(scorers))} from {target}")
    assert not wrong, "\n".join(wrong)
