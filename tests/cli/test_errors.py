"""The CLI's one error boundary (issue #22, item 5): a bad file or value prints one line that
names the file (and its line, row or field) and exits 2; any other error is a bug and prints
its traceback and a request to report it (exit 1). Each defect of the issue has a test here,
run in-process through ``drivevla.cli.main``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drivevla.cli import BUG_REPORT, main
from drivevla.vla.policy import default_checkpoint_dir

TRAIN = ["--steps", "1", "--batch-size", "2", "--val-frames", "0", "--threads", "1",
         "--no-progress"]


def _one_line_error(capsys, *names: str) -> str:
    """The single stderr line of a known error; it names each of ``names``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("drivevla: error: "), err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _train(data: Path, tmp_path: Path) -> int:
    return main(["train", "--data", str(data), "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), *TRAIN])


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(default_checkpoint_dir(), dst)
    return dst


def _bench_refusal(checkpoint: Path, tmp_path: Path) -> int:
    return main(["bench", "refusal", "--policy", str(checkpoint), "--out",
                 str(tmp_path / "refusal.json"), "--n", "4"])


# ----------------------------------------------------------------------- the defects


def test_corrupt_data_during_train_is_one_line_naming_the_shard(tiny_copy, tmp_path, capsys):
    # before: a CorruptDataError traceback
    for shard in (tiny_copy / "data").rglob("*.parquet"):
        shard.write_bytes(shard.read_bytes()[:200])
    assert _train(tiny_copy, tmp_path) == 2
    _one_line_error(capsys, "corrupt data in", str(tiny_copy / "data"), ".parquet")


def test_an_empty_object_in_episodes_jsonl_names_its_line(tiny_copy, tmp_path, capsys):
    # before: KeyError: 'episode_id' with a traceback, in data stats and in train
    path = tiny_copy / "meta" / "episodes.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], "{}", *lines[2:]]) + "\n")
    assert main(["data", "stats", str(tiny_copy)]) == 2
    _one_line_error(capsys, str(path), "line 3", "episode_id", "--skip-corrupt")
    assert _train(tiny_copy, tmp_path) == 2
    _one_line_error(capsys, str(path), "line 3", "episode_id", "--skip-corrupt")
    assert main(["data", "stats", str(tiny_copy), "--skip-corrupt"]) == 0
    out = capsys.readouterr().out
    assert "episodes 6" in out and "1 line(s) of meta/episodes.jsonl" in out
    assert "line 3" in out


def test_a_bad_tokenizer_json_is_one_line_naming_it(checkpoint, tmp_path, capsys):
    # before: the tokenizers library's bare "Exception: EOF while parsing ..." traceback
    (checkpoint / "tokenizer.json").write_text('{"version": "1.0", "trunc')
    assert _bench_refusal(checkpoint, tmp_path) == 2
    _one_line_error(capsys, str(checkpoint / "tokenizer.json"), "tokenizer")


def test_a_non_utf8_suite_file_is_one_line_naming_it(tmp_path, capsys):
    # before: "'utf-8' codec can't decode byte 0xe9 in position 9" without the file
    suite = tmp_path / "suite.yaml"
    suite.write_bytes(b"name: caf\xe9\nroutes: []\n")
    assert main(["suite", "show", str(suite)]) == 2
    _one_line_error(capsys, str(suite), "UTF-8", "0xe9")
    assert main(["collect", "--suite", str(suite), "--episodes", "1",
                 "--out", str(tmp_path / "ds")]) == 2
    _one_line_error(capsys, str(suite), "UTF-8")


def test_bad_yaml_in_a_suite_file_is_one_line_with_its_line(tmp_path, capsys):
    # before: the YAML error over five lines
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: x\nroutes: [\n  - {a: 1\n")
    assert main(["suite", "show", str(suite)]) == 2
    _one_line_error(capsys, str(suite), "not valid YAML", "line 3")


@pytest.mark.parametrize("text, says", [
    ('{"model": {"cameras": ', "line 1 column 23"),  # before: no file named
    ("[1, 2]", "expected a JSON object"),  # before: AttributeError traceback
    ('{"model": {"cameras": 5}}', "TypeError"),  # before: TypeError traceback
])
def test_a_bad_config_json_is_one_line_naming_it(checkpoint, tmp_path, capsys, text, says):
    (checkpoint / "config.json").write_text(text)
    assert _bench_refusal(checkpoint, tmp_path) == 2
    _one_line_error(capsys, str(checkpoint / "config.json"), says)


def test_a_garbled_last_line_of_episodes_jsonl_is_never_dropped_silently(tiny_copy, tmp_path,
                                                                       capsys):
    # before: exit 0 in data stats and train, with one episode fewer
    path = tiny_copy / "meta" / "episodes.jsonl"
    path.write_text(path.read_text()[:-40])  # an append cut short: no newline at the end
    assert main(["data", "stats", str(tiny_copy)]) == 2
    _one_line_error(capsys, str(path), "line 6", "unfinished", "--skip-corrupt")
    assert _train(tiny_copy, tmp_path) == 2
    _one_line_error(capsys, str(path), "line 6", "drivevla collect")
    # a garbled last line that does end in a newline: corruption, named the same way
    path.write_text(path.read_text() + "\n")
    assert main(["data", "stats", str(tiny_copy)]) == 2
    _one_line_error(capsys, str(path), "line 6", "not JSON")
    assert main(["data", "stats", str(tiny_copy), "--skip-corrupt"]) == 0
    out = capsys.readouterr().out
    assert "episodes 5" in out
    assert "skipped as corrupt: 0 shard(s), 0 frame(s), 1 line(s) of meta/episodes.jsonl" in out


def test_a_bad_info_json_is_one_line_naming_it(tiny_copy, capsys):
    # before: "Expecting property name enclosed in double quotes" without the file
    (tiny_copy / "meta" / "info.json").write_text("{")
    assert main(["data", "stats", str(tiny_copy)]) == 2
    line = _one_line_error(capsys, str(tiny_copy / "meta" / "info.json"), "line 1 column 2")
    assert "--skip-corrupt" not in line  # it cannot skip that


# ----------------------------------------------------------------------- the boundary


def test_an_unknown_error_is_a_bug_with_its_traceback(monkeypatch, capsys):
    from drivevla.cli import suite

    def broken(name):
        raise RuntimeError("something drivevla did not expect")

    monkeypatch.setattr(suite, "load_suite", broken)
    assert main(["suite", "show", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: something drivevla did not expect" in err
    assert err.strip().splitlines()[-1] == BUG_REPORT


def test_a_known_error_shows_its_traceback_with_verbose(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_bytes(b"\xff\xfe")
    assert main(["-v", "suite", "show", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("drivevla: error: ")


def test_an_interrupt_exits_130_without_a_traceback(monkeypatch, capsys):
    from drivevla.cli import suite

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(suite, "load_suite", interrupted)
    assert main(["suite", "show", "smoke"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip() == "drivevla: interrupted"
