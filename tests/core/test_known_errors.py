"""drivevla's known errors: files named with the line, and errors that survive the trip from
a worker process to its parent."""

from __future__ import annotations

import pickle

import pytest

from drivevla.core.errors import DriveVLAError, InvalidFileError, read_json, read_utf8
from drivevla.datasets.format import CorruptDataError


def test_read_utf8_and_read_json_name_the_file_and_where(tmp_path):
    path = tmp_path / "f.json"
    path.write_bytes(b'{"a": 1}\n{"b": "\xff"}')
    with pytest.raises(InvalidFileError, match=rf"{path}: not UTF-8 text: byte 0xff .*line 2"):
        read_utf8(path)
    path.write_text('{"a": 1,\n "b": }')
    with pytest.raises(InvalidFileError, match=rf"{path}: not valid JSON: line 2 column 7"):
        read_json(path)
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "missing.json")


def test_known_errors_keep_their_builtin_bases_and_pickle():
    invalid = InvalidFileError("/x/config.json", "not valid JSON")
    corrupt = CorruptDataError("/x/episodes.jsonl", None, "not JSON", line=3, skippable=False)
    assert isinstance(invalid, ValueError) and isinstance(invalid, DriveVLAError)
    assert isinstance(corrupt, RuntimeError) and isinstance(corrupt, DriveVLAError)
    for error in (invalid, corrupt):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
    back = pickle.loads(pickle.dumps(corrupt))
    assert (back.line, back.skippable, back.path) == (3, False, "/x/episodes.jsonl")
