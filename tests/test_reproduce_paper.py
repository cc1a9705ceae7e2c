"""scripts/reproduce_paper.py: every command of both chains parses with its script's own parser (a renamed flag
breaks this test, not a GPU run a day later), and the chain is in dependency order (nothing reads a run that a
later command writes)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

spec = importlib.util.spec_from_file_location("reproduce_paper", ROOT / "scripts" / "reproduce_paper.py")
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


@pytest.mark.parametrize("smoke", [False, True])
def test_every_command_parses_and_runs_after_what_it_reads(smoke, capsys):
    args = reproduce.parse_args(["--smoke", "--dry_run"] if smoke else ["--data", "d", "--dry_run"])
    commands = reproduce.main(args)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(commands)
    written, reads = set(), 0
    for script, argv in commands:
        module = importlib.import_module(script.removesuffix(".py"))
        parsed = module.parse_args(argv)  # raises SystemExit on an unknown flag or a bad value
        out = parsed.output_dir
        for value in argv[:-1]:  # every run folder this command reads was written by an earlier command
            for part in value.replace("gan:", "").split(","):
                if part.startswith("runs/") and not part.startswith(out):
                    assert "/".join(part.split("/")[:3]) in written, (script, part)
                    reads += 1
        written.add("/".join(out.split("/")[:3]))
    assert reads > 10
    scripts = {s for s, _ in commands}
    assert scripts == {"train_metric.py", "train_sr.py", "train_iqa.py", "evaluate.py"}
    subcommands = {argv[0] for s, argv in commands if s == "evaluate.py"}
    assert {"fr", "sr", "correlation", "init-comparison"} <= subcommands
    if not smoke:  # the paper's settings: stage 2 starts from stage 1, 400K steps, every loss setting
        stage2 = [argv for s, argv in commands if s == "train_sr.py" and "--per_metric" in argv]
        assert len(stage2) == 6 * 4 and all("400000" in a and "runs/paper/sr-stage1" in a for a in stage2)
        assert "sweep" in subcommands
