"""The parser as a user meets it (#24 point 10): no prefix matching, a "did you mean" for a
misspelled flag, and an ``examples:`` section, whose lines parse, in every command's help."""

from __future__ import annotations

import argparse
import shlex

import pytest

from opro.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no commands")


def _examples(help_text: str) -> list[str]:
    _, found, tail = help_text.partition("\nexamples:\n")
    assert found, "no examples: section"
    return [line.strip() for line in tail.splitlines() if line.strip()]


def test_every_command_has_examples_that_parse() -> None:
    commands = _commands()
    assert {"optimize", "linreg", "tsp", "evaluate", "resume", "sweep", "report"} <= set(commands)
    for name, parser in commands.items():
        lines = _examples(parser.format_help())
        assert 2 <= len(lines) <= 4, name
        for line in lines:
            words = shlex.split(line, comments=True)
            assert words[0] == "opro", line
            args = build_parser().parse_args(words[1:])  # exits 2 on a flag that is not there
            assert args.command == name, line


def test_optimize_help_example_parses() -> None:
    line = _examples(_commands()["optimize"].format_help())[0]
    args = build_parser().parse_args(shlex.split(line, comments=True)[1:])
    assert args.command == "optimize"
    assert args.dataset


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["optimize", "--setps", "3"],
            "opro: error: unrecognized argument --setps: did you mean --steps? "
            "(see `opro optimize --help`)\n",
        ),
        (  # a prefix is no longer taken for the flag it starts
            ["evaluate", "--dataset", "x", "--max-ex", "3"],
            "opro: error: unrecognized argument --max-ex: did you mean --max-examples? "
            "(see `opro evaluate --help`)\n",
        ),
        (
            ["optimize", "--dataset", "x", "--stepz=3"],
            "opro: error: unrecognized argument --stepz: did you mean --steps? "
            "(see `opro optimize --help`)\n",
        ),
        (
            ["optimize", "--dataset", "x", "--zzzzzz"],
            "opro: error: unrecognized argument --zzzzzz (see `opro optimize --help`)\n",
        ),
    ],
)
def test_unknown_flag_is_one_line_with_a_suggestion(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == message


def test_no_prefix_matching_anywhere() -> None:
    parser = build_parser()
    assert parser.allow_abbrev is False
    assert all(p.allow_abbrev is False for p in _commands().values())
    with pytest.raises(SystemExit):
        parser.parse_args(["optimize", "--dataset", "x", "--ste", "3"])
