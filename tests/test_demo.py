"""scripts/demo.py: the README's CPU demo is the script's (so its pictures come from the commands a user types),
every command parses, and the plot reads the validation curves the runs logged."""

import importlib
import importlib.util
import shlex
from pathlib import Path

import pytest
from conftest import snippets

from asym.core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


def _readme_demo_lines() -> list[str]:
    """The command lines of the README's CPU demo block (the first bash block after its heading)."""
    text = ROOT.joinpath("README.md").read_text()
    heading = text[: text.index("### CPU demo")].count("\n") + 1
    block = next(snippet for line, snippet in snippets() if line > heading)
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_demo_is_the_scripts_and_every_command_parses():
    commands = demo.demo_commands("output/demo")
    assert _readme_demo_lines() == [demo.command_line(script, argv) for script, argv in commands]
    stage1 = None
    for script, argv in commands:
        parsed = importlib.import_module(script.removesuffix(".py")).parse_args(argv)  # SystemExit on a bad flag
        if script == "train_sr.py" and parsed.loss == "rec":
            stage1 = parsed.output_dir
        elif script == "train_sr.py":  # stage 2 starts from stage 1, as in the paper
            assert parsed.init_generator == stage1 and parsed.loss in ("rec+per", "rec+per+adv")
    grid = shlex.split(demo.command_line(*commands[-1]))
    assert grid[:4] == ["python", "evaluate.py", "grid", "--models"]
    assert grid[4].split(",") == ["bicubic", stage1, "output/demo/rec+per", "output/demo/rec+per+adv"]
    # the plot's extra settings come on top, and the grid stays last
    full = demo.demo_commands("output/demo", plot=True)
    losses = [argv[argv.index("--loss") + 1] for script, argv in full if script == "train_sr.py"]
    assert losses == ["rec", *demo.PLOT_LOSSES] and full[-1] == commands[-1]


def test_the_held_out_photographs_are_the_ones_train_sr_validates_on():
    from asym.core.images import BUILTIN_IMAGES
    from asym.sr.data import split_train_validation

    _, held_out = split_train_validation(list(BUILTIN_IMAGES), 2, seed=0)  # train_sr.py's defaults
    assert sorted(held_out) == sorted(demo.HELD_OUT.split(","))


def _log(run: Path, values: dict[int, float], tag: str = "val/psnr_y", name: str = "a"):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run / "logs" / "train_sr" / name))
    for step, value in values.items():
        writer.add_scalar(tag, value, step)
    writer.close()


def test_validation_curves_are_read_back_and_plotted(tmp_path):
    _log(tmp_path / "run", {10: 28.0, 20: 29.0})
    _log(tmp_path / "run", {20: 29.5, 30: 30.0}, name="b")  # a resumed run: the later file wins at step 20
    assert demo.validation_curve(str(tmp_path / "run"), "val/psnr_y") == {10: 28.0, 20: 29.5, 30: 30.0}
    with pytest.raises(UserError, match="logged no val/ssim_y"):
        demo.validation_curve(str(tmp_path / "run"), "val/ssim_y")
    out = tmp_path / "demo"
    for run in ["stage1", *demo.PLOT_LOSSES]:
        for metric in ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"):
            _log(out / run, {10: 0.5, 20: 0.6}, tag=f"val/{metric}", name=metric)
    demo.plot_validation(str(out), str(tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_earlier_output_folder_is_refused_before_anything_runs(tmp_path, monkeypatch):
    (tmp_path / "stage1").mkdir()
    monkeypatch.setattr(demo.subprocess, "run", lambda *a, **k: pytest.fail("a command ran"))
    with pytest.raises(UserError, match="is not empty: pass a new --output_dir"):
        demo.main(demo.parse_args(["--output_dir", str(tmp_path)]))
