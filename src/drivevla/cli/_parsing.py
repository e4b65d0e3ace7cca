"""What every ``drivevla`` command shares: the parser class, its help format and the one
helper that adds a command."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help, except where there is nothing to show
    (no default, an off flag, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        if default is None or default is False or (isinstance(default, list) and not default):
            return action.help or ""
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that shows defaults; sub-command parsers inherit the class."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def add_command(subparsers: argparse._SubParsersAction, name: str, help: str) -> Parser:
    """A sub-command ``name`` whose one-line ``help`` is also its ``--help`` description."""
    return subparsers.add_parser(name, help=help, description=help.replace("%%", "%"))


def add_group(
    subparsers: argparse._SubParsersAction, name: str, help: str
) -> argparse._SubParsersAction:
    """A command ``name`` that holds sub-commands (``drivevla NAME SUB ...``)."""
    return add_command(subparsers, name, help).add_subparsers(dest=f"{name}_cmd", required=True)
