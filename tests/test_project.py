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
    assert ci_commands == [
        "pip install -r requirements.txt -c constraints.txt",
        "python -m pytest -q",
        "python -m pytest -q -m slow",
        'NEWEST_VENV="$(mktemp -d -t asym-newest-XXXXXX)"',
        'python -m venv --system-site-packages "$NEWEST_VENV"',
        'PATH="$NEWEST_VENV/bin:$PATH" pip install --upgrade -r requirements.txt',
        'PATH="$NEWEST_VENV/bin:$PATH" python -m pytest -q',
        'export SLURM_CI_DIR="$(mktemp -d -t asym-slurm-XXXXXX)"',
        "trap 'SLURM_WIPE=1 bash .ci/slurm/stop-slurm.sh || true' EXIT",
        "SLURM_INSTALL=1 bash .ci/slurm/start-slurm.sh",
        "python -m pytest -q -m slurm",
    ]  # the README's test command, the slow lane, the suite on the newest allowed versions, the SLURM lane on a cluster
    # started (and stopped) here; the README shows every line but the cluster's plumbing
    pytest_lines = [c for c in ci_commands if "SLURM" not in c]
    for command in [*pytest_lines, "pip install -r requirements.txt"]:  # the lock for CI, the ranges for users
        assert f"\n{command}" in readme, f"README does not show {command!r}"


def test_the_lock_pins_every_requirement():
    """constraints.txt pins each package requirements.txt names (and everything they pull in) to one version."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def names(path, pinned):
        lines = [line.split("#")[0].strip() for line in ROOT.joinpath(path).read_text().splitlines()]
        reqs = [Requirement(line) for line in lines if line and not line.startswith("-")]
        assert not pinned or all(str(r.specifier).startswith("==") for r in reqs), path
        return {canonicalize_name(r.name) for r in reqs}

    assert names("requirements.txt", pinned=False) <= names("constraints.txt", pinned=True)


def test_requirements_install_the_package_itself():
    lines = ROOT.joinpath("requirements.txt").read_text().splitlines()
    assert "-e ." in lines


def _load_script(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_run_and_compare_like_for_like(capsys):
    """Smoke run at toy size (speed itself is measured by the scripts, never asserted in tests)."""
    bench = _load_script(ROOT / "benchmarks" / "perceptual_loss.py")
    ratio = bench.main(bench.parse_args(["--device", "cpu", "--batch_size", "1", "--resolution", "32",
                                         "--steps", "1", "--warmup", "0"]))  # fmt: skip
    out = capsys.readouterr().out
    assert ratio > 0 and "speed-up asym vs pyiqa" in out
    gap = float(out.split("max|asym-pyiqa|=")[1].split()[0])
    assert gap < 1e-5  # both sides really hold the same weights
    backbones = _load_script(ROOT / "benchmarks" / "backbones.py")
    backbones.main(backbones.parse_args(["--device", "cpu", "--backbones", "resnet50", "--dtypes", "fp32", "bf16",
                                         "--batch_size", "1", "--resolution", "32", "--steps", "1"]))  # fmt: skip
    assert "resnet50   bf16" in capsys.readouterr().out
    step = _load_script(ROOT / "benchmarks" / "train_sr_step.py")
    rows = step.main(step.parse_args(["--device", "cpu", "--model", "swinir-light", "--batch_size", "1", "--crop_size",
                                      "32", "--loss", "rec+adv", "--steps", "1", "--warmup", "1",
                                      "--options", "eager,sdpa"]))  # fmt: skip
    assert list(rows) == ["eager", "sdpa"] and "x1.00 vs eager" in capsys.readouterr().out
