"""What a script prints: progress bars as plain lines where they go to a log and tqdm's redraws on a terminal
(asym.core.progress), open bars closed before the one line an error ends with, and Ctrl-C as one line and death by
SIGINT (asym.core.errors.run_cli)."""

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from asym.core import progress
from asym.core.errors import UserError, run_cli


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _train(file, steps: int = 6, fail_at: int | None = None):
    """A training bar with a transient evaluation bar under it at every step, drawn as the scripts draw them (the
    training bar updated by hand: an exception leaves it open, where a bar iterated over closes as it unwinds)."""
    bar = progress.tqdm(range(steps), desc="train", file=file)
    for step in range(steps):
        for _ in progress.tqdm(range(3), desc="evaluating", leave=False, file=file):
            pass
        if step == fail_at:
            raise UserError("the training set holds a truncated image")
        bar.update(1)
        bar.set_postfix(loss=f"{step:.2f}")
    bar.close()


def test_a_log_gets_plain_lines_and_the_final_state(monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)  # a line at every redraw
    log = io.StringIO()
    _train(log)
    text = log.getvalue()
    assert "\r" not in text and "\x1b[" not in text  # no redraws, no cursor moves
    lines = text.splitlines()
    assert lines[0].startswith("train:   0%") and lines[-1].startswith("train: 100%") and "6/6" in lines[-1]
    assert any(line.startswith("evaluating:") for line in lines)  # transient bars show progress, never a final line
    assert sum(line.startswith("train: 100%") for line in lines) == 1  # the final state once, not again at close


def test_a_log_gets_one_line_per_interval_at_most(monkeypatch):
    clock = iter(range(0, 10_000, 10))  # every call of the clock 10 s later
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    log = io.StringIO()
    _train(log, steps=3)
    lines = log.getvalue().splitlines()
    # start, then at most one per 30 s of (fake) time, then the final state: fewer lines than redraws
    assert lines[0].startswith("train:   0%") and lines[-1].startswith("train: 100%")
    assert 2 <= len(lines) <= 6 and sum(line.startswith("train: 100%") for line in lines) == 1


def test_a_terminal_keeps_tqdm_redraws():
    screen = Terminal()
    _train(screen, steps=2)
    assert "\r" in screen.getvalue() and "\x1b[A" in screen.getvalue()  # tqdm's in-place, nested drawing


def test_the_error_line_starts_on_a_line_of_its_own(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)  # bars and the error line on one terminal, as in a shell
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda args: _train(sys.stderr, fail_at=2), None)
    assert exit_info.value.code == 2
    before, error = screen.getvalue().rsplit("error: ", 1)
    assert error == "the training set holds a truncated image\n"
    assert before.endswith("\n") and "2/6" in before.rsplit("\r", 1)[-1]  # the bar redrawn where it stopped, ended
    assert not progress.tqdm.still_open


# a script that draws a bar at 3/10, says "ready" and waits; only asym.core.errors and asym.core.progress are
# imported: the package's __init__ (torch, the models) would cost seconds
WAITING_SCRIPT = textwrap.dedent("""
    import os, sys, time, types
    sys.modules["asym"] = types.ModuleType("asym")
    sys.modules["asym"].__path__ = [sys.argv[1]]
    from asym.core.errors import run_cli
    from asym.core.progress import tqdm

    def main(args):
        bar = tqdm(total=10, desc="train")
        bar.update(3)
        print("ready", flush=True)
        for _ in range(300):
            time.sleep(0.1)

    run_cli(main, None)
    """)


def _start(command: list[str]) -> subprocess.Popen:
    """``command`` in a session of its own (a terminal's process group), SIGINT as a terminal's program has it (a
    test run started in the background, ``pytest &``, ignores it), once it has said "ready"."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    assert child.stdout.readline() == "ready\n"
    return child


@pytest.mark.parametrize("signals", [("SIGINT",), ("SIGINT", "SIGTERM"), ("SIGTERM",)],
                         ids=["ctrl-c", "ctrl-c-under-accelerate-1.16", "scancel"])  # fmt: skip
def test_ctrl_c_is_one_line_after_the_bar_and_the_process_dies_of_sigint(signals, tmp_path):
    """Ctrl-C, Ctrl-C as ``accelerate launch`` 1.16 relays it (the terminal's SIGINT, then the launcher's SIGTERM at
    once) and SLURM's SIGTERM alone: each the one line, after the bar, and death by SIGINT."""
    script = tmp_path / "wait.py"
    script.write_text(WAITING_SCRIPT)
    child = _start([sys.executable, str(script), str(Path(__file__).resolve().parents[1] / "asym")])
    for name in signals:  # back to back, as the launcher sends them
        child.send_signal(getattr(signal, name))
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGINT  # the shell reports 130, and a loop of runs stops, as after Python's own
    lines = stderr.splitlines()
    assert lines[-1] == "interrupted" and "3/10" in lines[-2] and "Traceback" not in stderr, stderr


def test_ctrl_c_under_accelerate_launch_prints_the_line_every_time(tmp_path):
    """The real launcher of the installed Accelerate (1.15 under the lock, 1.16 in CI's newest-versions lane, which
    relays the script's stderr and drops what it read at the moment of its own Ctrl-C): the terminal's SIGINT to the
    whole process group, three times; the line is out each time, the launcher's status 130."""
    script = tmp_path / "wait.py"
    script.write_text(WAITING_SCRIPT)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    for _ in range(3):
        child = _start([*launch, str(script), str(Path(__file__).resolve().parents[1] / "asym")])
        os.killpg(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
        # the launcher exits 130 (1.16) or dies of the SIGINT after its own traceback (1.15): a shell sees 130
        assert child.returncode in (130, -signal.SIGINT) and stderr.splitlines()[-1] == "interrupted", stderr


def test_bars_and_log_lines_go_to_the_terminal_where_stderr_is_a_pipe(monkeypatch):
    """Under ``accelerate launch`` 1.16 the script's stderr is the launcher's pipe while stdout is the terminal: the
    bars redraw there, and a log line clears the bar first and starts a line of its own."""
    import logging

    screen, pipe = Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", pipe)
    bar = progress.tqdm(total=10, desc="train", mininterval=0)
    bar.update(3)
    record = logging.LogRecord("asym", logging.WARNING, __file__, 1, "step %d validation", (3,), None)
    progress.LogHandler().handle(record)
    bar.update(1)
    bar.close()
    text = screen.getvalue()
    assert pipe.getvalue() == "" and "\r" in text and "4/10" in text  # redrawn in place, on the terminal
    before, after = text.split("step 3 validation\n")
    assert before.endswith("\r") and "3/10" in before and after.startswith("\rtrain:")  # cleared, then redrawn
    monkeypatch.setattr(sys, "stderr", Terminal())  # a terminal on stderr: stderr, as always
    assert progress.terminal_stream() is sys.stderr


def test_asym_warnings_are_one_line_and_others_keep_pythons_form():
    """asym's warnings: one line each, each message once (even under ``simplefilter("always")``, as inside
    ``catch_warnings``, which resets Python's once-per-place memory); others: Python's form."""
    code = textwrap.dedent("""
        import os, sys, types, warnings
        sys.modules["asym"] = types.ModuleType("asym")
        sys.modules["asym"].__path__ = [os.path.join(os.getcwd(), "asym")]
        from asym.core.errors import run_cli
        from asym.metrics.agreement import FitWarning

        def main(args):
            for n in (3, 3, 4, 3):  # the same message again (each validation of a run): shown once
                warnings.warn(f"the logistic PLCC fit needs at least 5 scores, got {n}", FitWarning)
            warnings.warn("a library's own", DeprecationWarning)

        warnings.simplefilter("always")
        run_cli(main, None)
        """)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    lines = done.stderr.splitlines()
    assert lines[:2] == ["warning: the logistic PLCC fit needs at least 5 scores, got 3",
                         "warning: the logistic PLCC fit needs at least 5 scores, got 4"], done.stderr  # fmt: skip
    assert lines[2:] == ["<string>:11: DeprecationWarning: a library's own"]  # Python's form (-c has no source line)


def test_offline_the_notice_of_a_download_about_to_fail_is_dropped(tmp_path, capsys):
    """torch.hub's and pyiqa's own loaders print `Downloading: "<url>"` before failing offline (HF_HUB_OFFLINE is set
    by conftest): inside no_download_notices nothing of it is printed, what else is printed still is."""
    import torch.hub
    from pyiqa.utils.download_util import load_file_from_url

    from asym.core.offline import no_download_notices

    url = "https://download.pytorch.org/models/asym-no-such-file.pth"
    loaders = [lambda: torch.hub.load_state_dict_from_url(url, model_dir=str(tmp_path)),
               lambda: load_file_from_url(url, model_dir=str(tmp_path))]  # fmt: skip
    for load in loaders:
        with pytest.raises(OSError):  # no network here: each load fails (URLError, HTTPError)
            load()
        assert 'Downloading: "' in capsys.readouterr().out  # printed without the context
        with no_download_notices(), pytest.raises(OSError):
            print("kept")
            load()
        assert capsys.readouterr().out == "kept\n"
