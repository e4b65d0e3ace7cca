"""File names derived from input, and output folders one process writes at a time.

Every file name built from something a user hands us (a route id from a suite file, a
camera name, ...) goes through :func:`safe_child`: the name must be a plain name from a
safe character set, and the resulting path must stay under its output folder. A suite route
``id: ../../escaped`` (or an absolute path) is refused with :class:`UnsafeNameError` instead
of writing outside ``--out``.

:func:`exclusive_dir` holds an advisory lock on an output folder so that two runs into one
folder do not both do (and overwrite) the same work; the OS releases it if the process dies.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from drivevla.core.errors import DriveVLAError

SAFE_NAME_RULE = (
    "letters, digits, '.', '_' and '-' only, at most 128 characters, "
    "not starting with '.' or '-'"
)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


class UnsafeNameError(DriveVLAError, ValueError):
    """A name derived from input would not be a plain file name inside its folder."""


class OutputFolderBusyError(DriveVLAError, ValueError):
    """Another process holds the advisory lock on an output folder."""


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a safe file name (``None`` when it is)."""
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not _SAFE_NAME.fullmatch(name):
        return f"must use {SAFE_NAME_RULE}"
    if ".." in name:
        return "must not contain '..'"
    return None


def normalized_name(name: str) -> str:
    """The form two names must not share: names that differ only in case collide on
    case-insensitive file systems (macOS, Windows)."""
    return name.casefold()


def check_name(name: object, what: str = "name") -> str:
    """``name`` itself when it is a safe file name; else :class:`UnsafeNameError`."""
    problem = name_problem(name)
    if problem is not None:
        raise UnsafeNameError(f"{what} {name!r} {problem}")
    return name  # type: ignore[return-value]


def safe_child(root: str | Path, name: object, suffix: str = "", *, prefix: str = "",
               what: str = "name") -> Path:
    """``root / f"{prefix}{name}{suffix}"``, with ``name`` checked (:func:`check_name`) and
    the result confined under ``root`` (also through symlinks already in ``root``)."""
    check_name(name, what)
    root = Path(root)
    path = root / f"{prefix}{name}{suffix}"
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved.parent != resolved_root and resolved_root not in resolved.parents:
        raise UnsafeNameError(f"{what} {name!r} would write outside {root} ({resolved})")
    return path


def confined(root: str | Path, relative: str | Path, what: str = "path") -> Path:
    """``root / relative`` for a relative path read from a file we were handed (a shard's
    ``file`` in ``episodes.jsonl``), refused when it is absolute or leaves ``root``."""
    root = Path(root)
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise UnsafeNameError(f"{what} {str(relative)!r} must be a relative path inside {root}")
    path = root / rel
    if root.resolve() not in path.resolve().parents:
        raise UnsafeNameError(f"{what} {str(relative)!r} leads outside {root}")
    return path


@contextlib.contextmanager
def exclusive_dir(
    folder: str | Path, lock_name: str = ".lock", what: str = "run"
) -> Iterator[None]:
    """Hold an advisory lock on ``folder`` (file ``folder/lock_name``) while the block runs;
    :class:`OutputFolderBusyError` if another process holds it. Released by the OS if the
    process dies."""
    import fcntl  # POSIX only; imported here so that importing core never needs it

    folder = Path(folder)
    lock_file = folder / lock_name
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputFolderBusyError(
                f"another {what} is writing to {folder} right now (lock {lock_file})"
            ) from None
        yield
