"""Every numeric flag of every script, walked from the scripts' own parsers (sub-commands included): it has a
validating type, and 0 and -1 are refused while parsing (exit status 2, one ``error:`` line naming the flag) unless its
help says what that value means. Parse-time only: nothing is built or trained, so a flag added without a type fails
here at once."""

import argparse
import contextlib
import importlib.util
import io
import math
import re
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]

from asym.core.flags import float_in, int_in  # noqa: E402

SCRIPTS = ["train_sr.py", "train_metric.py", "train_iqa.py", "train_robust.py", "evaluate.py",
           "scripts/reproduce_paper.py", "scripts/demo.py",
           *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("*.py"))]  # fmt: skip
# a value a flag may accept only if its help says what it means there
MEANING = {"0": ("0:", "[0,"), "-1": ("-1:",)}


def _module(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Caught(Exception):
    pass


def _parser(script: str) -> argparse.ArgumentParser:
    """The parser a script's ``parse_args`` builds, caught as it starts parsing."""
    caught = []

    def catch(self, *args, **kwargs):
        caught.append(self)
        raise _Caught

    module = _module(script)
    with mock.patch.object(argparse.ArgumentParser, "parse_args", catch), pytest.raises(_Caught):
        module.parse_args([])
    return caught[0]


def _numeric(action: argparse.Action) -> bool:
    """Whether an option takes a number: a numeric ``type`` (asym's or a bare int/float), or a numeric default."""
    if not action.option_strings or action.nargs == 0:
        return False
    default_is_number = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
    return action.type in (int, float) or _validating(action) or default_is_number


def _validating(action: argparse.Action) -> bool:
    return getattr(action.type, "__module__", None) == "asym.core.flags" or action.choices is not None


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """Arguments that make ``parser`` accept an otherwise empty command line (placeholders: nothing is opened)."""
    argv = []
    for action in parser._actions:
        if action.required and action.option_strings:
            argv += [action.option_strings[0], str(action.choices[0]) if action.choices else "x"]
    for group in parser._mutually_exclusive_groups:
        if group.required:
            argv += [group._group_actions[0].option_strings[0], "x"]
    return argv


def numeric_flags(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(argv that reaches ``action``'s parser, the action) for every numeric option, sub-parsers walked."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from numeric_flags(sub, (*prefix, name))
        elif _numeric(action):
            yield [*prefix, *_required(parser)], action


FLAGS = {script: list(numeric_flags(_parser(script))) for script in SCRIPTS}


def test_the_walk_finds_every_scripts_flags():
    """The walker sees the flags the issue named (a walk that found nothing would pass everything)."""
    found = {(script, " ".join(a for a in argv if not a.startswith("-") and a != "x"), action.option_strings[0])
             for script, flags in FLAGS.items() for argv, action in flags}  # fmt: skip
    assert {
        ("train_sr.py", "", "--train_batch_size"),
        ("train_iqa.py", "", "--max_train_steps"),
        ("train_robust.py", "", "--max_train_steps"),
        ("train_metric.py", "", "--attack_eps"),
        ("evaluate.py", "grid", "--size"),
        ("evaluate.py", "grid", "--scale"),
        ("evaluate.py", "sr", "--tile"),
        ("evaluate.py", "classify", "--seed"),
        ("benchmarks/perceptual_loss.py", "", "--warmup"),
    } <= found
    assert sum(len(flags) for flags in FLAGS.values()) > 100


@pytest.mark.parametrize("script", SCRIPTS)
def test_numeric_flags_refuse_zero_and_negatives_at_parse_time(script):
    problems = []
    parser = _parser(script)
    for argv, action in numeric_flags(parser):
        flag = action.option_strings[0]
        if not _validating(action):
            problems.append(f"{flag}: type {getattr(action.type, '__name__', action.type)} validates no range")
            continue
        for value, meanings in MEANING.items():
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                try:
                    parser.parse_args([*argv, flag, value])
                except SystemExit as exit_info:
                    errors = [line for line in stderr.getvalue().splitlines() if "error:" in line]
                    if exit_info.code != 2 or len(errors) != 1 or f"argument {flag}:" not in errors[0]:
                        problems.append(f"{flag} {value}: exit {exit_info.code}, {stderr.getvalue()!r}")
                    continue
            if not any(m in (action.help or "") for m in meanings):
                problems.append(f"{flag} {value}: accepted, but the help does not say what it means: {action.help!r}")
    assert not problems, f"{script}:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "parse, text, expected",
    [
        (int_in(1), "1", 1),
        (int_in(1), "0", "must be at least 1, got 0"),
        (int_in(0, 2**32 - 1), str(2**32 - 1), 2**32 - 1),
        (int_in(0, 2**32 - 1), str(2**32), "must be an integer from 0 to 4294967295"),
        (int_in(1), "1.5", ValueError),  # argparse words it "invalid integer >= 1 value: '1.5'"
        (float_in(0, low_open=True), "1e-4", 1e-4),
        (float_in(0, low_open=True), "0", "must be a positive number, got 0"),
        (float_in(0), "0", 0.0),
        (float_in(0), "-0.5", "must be a non-negative number, got -0.5"),
        (float_in(0, 1, high_open=True), "0.999", 0.999),
        (float_in(0, 1, high_open=True), "1", "must be a number in [0, 1), got 1"),
        (float_in(0, 1, low_open=True), "1", 1.0),
        (float_in(0, 1, low_open=True), "0", "must be a number in (0, 1], got 0"),
        (float_in(0), "nan", "must be a non-negative number, got nan"),
        (float_in(0), "inf", "must be a non-negative number, got inf"),
        (float_in(0, fractions=True), "4/255", 4 / 255),
        (float_in(0, low_open=True, fractions=True), "0/255", "must be a positive number, got 0/255"),
        (float_in(0, fractions=True), "1/0", "not a number or a fraction a/b: '1/0'"),
        (float_in(0, fractions=True), "4/", "not a number or a fraction a/b: '4/'"),
        (float_in(0), "4/255", "not a number: '4/255'"),  # fractions only where asked for
        (float_in(0), "abc", "not a number: 'abc'"),
    ],
)
def test_the_types_bounds(parse, text, expected):
    if expected is ValueError:
        with pytest.raises(ValueError):
            parse(text)
    elif isinstance(expected, str):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(expected)):
            parse(text)
    else:
        assert math.isclose(parse(text), expected)
