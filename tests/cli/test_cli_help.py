"""Every ``drivevla`` command: its --help works and every option says what it does."""

from __future__ import annotations

import argparse

import pytest

from drivevla.cli import GROUPS, build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(argv path, parser) of every command and command group, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_every_group_registers_the_same_way():
    assert all(callable(getattr(group, "register", None)) for group in GROUPS)
    names = {path[0] for path, _ in COMMANDS if path}
    assert names == {"demo", "sim", "suite", "bench", "eval", "collect", "data", "train",
                     "fit-refusal", "fit-intent"}
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
    sim_drive = " ".join(dict(COMMANDS)[("sim", "drive")].format_help().split())
    assert "(default: runs/drive)" in sim_drive and "(default: 0)" in sim_drive
    train = " ".join(dict(COMMANDS)[("train",)].format_help().split())
    assert "optimiser steps before any DAgger round (default: 4000)" in train  # TrainConfig


def test_unknown_scenario_is_a_usage_error_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "drive", "--scenario", "urbn"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --scenario: invalid choice: 'urbn'" in err and "'urban'" in err


def test_unknown_intent_is_a_clean_error(capsys):
    assert main(["sim", "drive", "--scenario", "urban", "--intent", "fly"]) == 2
    assert "unknown intent 'fly'" in capsys.readouterr().err
