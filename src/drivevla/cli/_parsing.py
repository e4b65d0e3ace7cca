"""What every ``drivevla`` command shares: the parser class, its help format, its one error
style and the helpers that add a command and check a value."""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_USAGE = 2  # a bad argument: the same status as any other bad value or file


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help, except where there is nothing to show
    (no default, an off flag, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        if default is None or default is False or (isinstance(default, list) and not default):
            return action.help or ""
        return super()._get_help_string(action)


class TopHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """The top-level help: defaults as in :class:`HelpFormatter`, and its description and
    epilog (the common workflows) kept as written, line by line."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that shows defaults and reports a bad argument on one line,
    ``drivevla: error: ...`` with exit status 2, as the commands report any other bad value
    or file; sub-command parsers inherit the class."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("drivevla").strip()
        text = " ".join(part.strip() for part in message.splitlines() if part.strip())
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"drivevla: error: {where}{text} (see '{self.prog} --help')\n")


def add_command(subparsers: argparse._SubParsersAction, name: str, help: str) -> Parser:
    """A sub-command ``name`` whose one-line ``help`` is also its ``--help`` description."""
    return subparsers.add_parser(name, help=help, description=help.replace("%%", "%"))


def add_group(
    subparsers: argparse._SubParsersAction, name: str, help: str
) -> argparse._SubParsersAction:
    """A command ``name`` that holds sub-commands (``drivevla NAME SUB ...``)."""
    return add_command(subparsers, name, help).add_subparsers(dest=f"{name}_cmd", required=True)


# ------------------------------------------------------------------ value types (type=...)
def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (a count of steps, episodes, frames)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (0 usually meaning none or inline, as the option's help says)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 0")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (a distance, a duration)."""
    value = _number(text, float)
    if not value > 0.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number > 0")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1] (a share)."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number from 0 to 1")
    return value


def int_range(low: int, high: int):
    """An integer type accepting ``low`` to ``high``."""

    def check(text: str) -> int:
        value = _number(text, int)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: expected an integer from {low} to "
                                             f"{high}")
        return value

    check.__name__ = f"int_{low}_to_{high}"
    return check
