"""The README's commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_install_and_test_commands():
    readme = ROOT.joinpath("README.md").read_text()
    ci_commands = [
        line.strip()
        for line in ROOT.joinpath(".ci", "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci_commands == ["pip install -r requirements.txt", "python -m pytest -q"]
    for command in ci_commands:
        assert f"\n{command}" in readme, f"README does not show {command!r}"


def test_requirements_install_the_package_itself():
    lines = ROOT.joinpath("requirements.txt").read_text().splitlines()
    assert "-e ." in lines
