"""Rewrite constraints.txt, the tested lock: every package requirements.txt pulls in, at its installed version.

Run after a green `python -m pytest -q` in an environment installed from requirements.txt:

    python scripts/update_lock.py
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# Tested lock: the exact versions the test suite last passed with (CI installs with it:
#   pip install -r requirements.txt -c constraints.txt). Users install the ranges of requirements.txt.
# Regenerate after a green run: python scripts/update_lock.py
"""


def installed_closure(requirements: list[Requirement]) -> dict[str, str]:
    """Installed version of every distribution the requirements reach, following extras and markers."""
    versions, done = {}, set()
    stack = [(canonicalize_name(r.name), frozenset(r.extras)) for r in requirements]
    while stack:
        name, extras = stack.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a dependency for another platform
        versions[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                stack.append((canonicalize_name(req.name), frozenset(req.extras)))
    return versions


def main() -> None:
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = [Requirement(line) for line in lines if line and not line.startswith("-")]
    versions = installed_closure(requirements)
    missing = [r.name for r in requirements if canonicalize_name(r.name) not in versions]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)}; run pip install -r requirements.txt first")
    body = "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))
    (ROOT / "constraints.txt").write_text(HEADER + body)
    print(f"constraints.txt: {len(versions)} packages pinned")


if __name__ == "__main__":
    main()
