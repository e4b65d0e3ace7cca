"""Every ``drivevla`` command: its --help works, every option says what it does and shows its
default, and a bad argument is one line ``drivevla: error: ...`` with exit status 2.

The commands are found by walking the parser's sub-parsers, so a command added later is
checked without a change here."""

from __future__ import annotations

import argparse

import pytest

from drivevla.cli import GROUPS, WORKFLOWS, build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(argv path, parser) of every command and command group, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))
LEAVES = [(path, parser) for path, parser in COMMANDS if parser.get_default("fn")]


def _options(parser: argparse.ArgumentParser):
    """The options (and positionals) of a parser other than --help and sub-commands."""
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def _shows_default(action: argparse.Action) -> bool:
    """Whether --help must show the action's default: an option with one worth showing."""
    default = action.default
    return bool(action.option_strings) and not (
        default is None or default is False or default == argparse.SUPPRESS
        or (isinstance(default, list) and not default)
    )


def _usage_error(capsys, argv: list[str], *names: str) -> str:
    """Runs ``drivevla ARGV``, which must be a usage error: exit 2 and one stderr line
    ``drivevla: error: ...`` naming each of ``names``; returns the line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2, argv
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("drivevla: error: "), (argv, captured.err)
    assert not captured.out, argv
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def test_every_group_registers_the_same_way():
    assert all(callable(getattr(group, "register", None)) for group in GROUPS)
    names = {path[0] for path, _ in COMMANDS if path}
    # groups added later are walked by the tests below as well
    assert {"demo", "sim", "suite", "bench", "eval", "collect", "data", "train",
            "fit-refusal", "fit-intent"} <= names
    leaves = {" ".join(path) for path, p in COMMANDS if p.get_default("fn")}
    assert {"sim list", "sim drive", "bench refusal", "data export-nuscenes",
            "eval closed-loop"} <= leaves


@pytest.mark.parametrize("path", [" ".join(path) for path, _ in COMMANDS])
def test_help_works_and_shows_no_rest_markup(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*path.split(), "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: drivevla") and "``" not in out


def test_every_option_has_help_and_shows_its_default():
    missing = [
        f"{' '.join(path) or 'drivevla'} {'/'.join(action.option_strings) or action.dest}"
        for path, parser in COMMANDS
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert not missing, f"options without help text: {missing}"
    no_default = []
    for path, parser in COMMANDS:
        for action in filter(_shows_default, _options(parser)):
            text = " ".join(parser._get_formatter()._format_action(action).split())
            if f"(default: {action.default})" not in text:
                no_default.append(f"{' '.join(path)} {action.option_strings[0]}: {text}")
    assert not no_default, f"options whose --help does not show the default: {no_default}"
    sim_drive = " ".join(dict(COMMANDS)[("sim", "drive")].format_help().split())
    assert "(default: runs/drive)" in sim_drive and "(default: 0)" in sim_drive
    train = " ".join(dict(COMMANDS)[("train",)].format_help().split())
    assert "optimiser steps before any DAgger round (default: 4000)" in train  # TrainConfig


def test_unknown_scenario_is_a_usage_error_naming_the_choices(capsys):
    # before: exit 1 without the "drivevla: error:" prefix
    line = _usage_error(capsys, ["sim", "drive", "--scenario", "urbn"],
                        "argument --scenario: invalid choice: 'urbn'", "'urban'")
    assert line.startswith("drivevla: error: sim drive: ")


def test_unknown_intent_is_a_clean_error(capsys):
    assert main(["sim", "drive", "--scenario", "urban", "--intent", "fly"]) == 2
    assert "unknown intent 'fly'" in capsys.readouterr().err


def test_top_level_help_shows_the_common_workflows(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "common workflows:" in out and "``" not in out
    for command in ("drivevla demo", "drivevla eval closed-loop", "drivevla eval report",
                    "drivevla collect", "drivevla data stats", "drivevla train",
                    "drivevla bench latency"):
        assert f"    {command} " in out, command
    # every workflow command parses as written (the epilog does not go stale)
    commands = [line.split()[1:] for line in WORKFLOWS.splitlines()
                if line.strip().startswith("drivevla ")]
    assert len(commands) >= 9
    for argv in commands:
        assert build_parser().parse_args(argv).fn, argv


@pytest.mark.parametrize("path", [" ".join(path) for path, _ in LEAVES])
def test_bad_choices_and_values_are_one_line_usage_errors(path, capsys):
    parser = dict(LEAVES)[tuple(path.split())]
    for action in _options(parser):
        if not action.option_strings:
            continue
        flag = action.option_strings[-1]
        if action.choices is not None:
            _usage_error(capsys, [*path.split(), flag, "no-such-choice"], flag,
                         "invalid choice: 'no-such-choice'", f"drivevla {path} --help")
        elif action.type is not None and action.nargs is None:
            # every typed option in drivevla takes a number
            _usage_error(capsys, [*path.split(), flag, "not-a-number"], flag, "not-a-number")
    if any(a.required for a in _options(parser)):
        _usage_error(capsys, path.split(), "required", f"drivevla {path} --help")


@pytest.mark.parametrize("argv, says", [
    (["no-such-command"], "invalid choice: 'no-such-command'"),
    (["sim"], "required"),
    (["sim", "drive", "--scenario", "urban", "--no-such-option"], "unrecognized arguments"),
    (["collect", "--suite", "smoke", "--out", "x", "--episodes", "0"], "expected an integer >= 1"),
    (["collect", "--suite", "smoke", "--out", "x", "--episodes", "1", "--workers", "-1"],
     "expected an integer >= 0"),
    (["collect", "--suite", "smoke", "--out", "x", "--episodes", "1", "--jpeg-quality", "101"],
     "from 1 to 100"),
    (["bench", "refusal", "--policy", "p", "--out", "o", "--stacked-share", "1.5"],
     "from 0 to 1"),
    (["data", "show", "ds", "--out", "g.png", "--n", "0"], "--n"),
])
def test_usage_errors_everywhere_are_one_line_exit_2(argv, says, capsys):
    _usage_error(capsys, argv, says)
