"""The errors drivevla raises for something the user can fix: a bad value, file or state.

Each derives from :class:`DriveVLAError` (and keeps the builtin base its callers catch, e.g.
``ValueError``). The ``drivevla`` command prints their message on one line and exits 2; an
error of any other class is a bug and shows its traceback (see :mod:`drivevla.cli`). A
message names the file, and the line, row or field where there is one.

:func:`read_utf8` and :func:`read_json` read a text file a user hands us and raise
:class:`InvalidFileError` naming it (undecodable bytes, JSON syntax with line and column)
instead of the decoder's bare message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class DriveVLAError(Exception):
    """Base of the errors about bad input, files or state (not bugs): see the module doc."""


class InvalidFileError(DriveVLAError, ValueError):
    """A file drivevla reads cannot be decoded or parsed; the message starts with its path."""

    def __init__(self, path: str | Path, detail: str) -> None:
        self.path, self.detail = str(path), detail
        super().__init__(f"{path}: {detail}")

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return (type(self), (self.path, self.detail))


class InvalidObservationError(DriveVLAError, ValueError):
    """An observation a policy cannot act on (e.g. a non-finite ego state or target point);
    the message names the inputs."""


def read_utf8(path: str | Path) -> str:
    """The text of ``path``; bytes that are not UTF-8 raise :class:`InvalidFileError` with the
    offset of the first (``OSError`` such as ``FileNotFoundError`` propagates unchanged)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidFileError(
            path, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                  f"(line {line}); save the file as UTF-8"
        ) from exc


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``; bad bytes or syntax raise :class:`InvalidFileError` naming
    the file, line and column."""
    text = read_utf8(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFileError(
            path, f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
