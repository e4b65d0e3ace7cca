"""The ego-status MLP baseline (AD-MLP-like): ``drivevla train-baseline ego-mlp`` on our
nuScenes export of the tiny expert collection, its row in ``eval open-loop``, and its files
(safetensors + JSON; missing or corrupt ones are named errors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from drivevla.benchmarks.ego_mlp import (
    EGO_MLP_NAME,
    EgoMLPConfig,
    EgoMLPFileError,
    default_ego_mlp_path,
    load_ego_mlp,
)
from drivevla.benchmarks.open_loop import RECORDS_FILE
from drivevla.cli import main as cli_main
from drivevla.core.errors import DriveVLAError
from drivevla.datasets.nuscenes_openloop import open_openloop_source
from drivevla.training.ego_mlp_fit import fit_ego_mlp

pytest.importorskip("nuscenes.nuscenes", reason="nuscenes-devkit is not installed (see "
                    "docs/nuscenes.md)")

VERSION = "v1.0-drivevla"


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _eval(nuscenes_export: Path, out: Path, capsys, *extra: str) -> tuple[int, str, str]:
    return _run(["eval", "open-loop", "--policy", "expert", "--dataroot", str(nuscenes_export),
                 "--version", VERSION, "--split", "train", "--out", str(out), *extra], capsys)


def _stp3_avg(l2_per_step: np.ndarray) -> float:
    """ST-P3 avg: mean over samples, then the running mean up to 1/2/3 s, averaged."""
    mean = l2_per_step.mean(0)
    return float(np.mean([mean[:2].mean(), mean[:4].mean(), mean[:6].mean()]))


def test_trains_and_beats_zero_motion_on_its_train_split(nuscenes_export, tmp_path, capsys):
    weights = tmp_path / "ego"
    code, printed, _ = _run(["train-baseline", "ego-mlp", "--dataroot", str(nuscenes_export),
                             "--version", VERSION, "--out", str(weights)], capsys)
    assert code == 0 and "12 samples" in printed
    assert sorted(p.name for p in weights.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((weights / "config.json").read_text())
    assert config["trained_on"]["split"] == "train" and config["trained_on"]["n_samples"] == 12
    assert config["training"]["seconds"] < 30
    out = tmp_path / "eval"
    code, printed, _ = _eval(nuscenes_export, out, capsys, "--ego-mlp", str(weights))
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    names = [r["name"] for r in summary["rows"]]
    assert names.index(EGO_MLP_NAME) < names.index("expert (log replay)")
    row = next(r for r in summary["rows"] if r["name"] == EGO_MLP_NAME)
    assert row["kind"] == "baseline" and "command" in row["inputs"]
    # zero motion (stay at the origin): its L2 is the logged waypoints' distance from it
    records = [json.loads(line) for line in (out / RECORDS_FILE).read_text().splitlines()]
    zero = _stp3_avg(np.array([np.linalg.norm(r["gt_waypoints"], axis=1) for r in records]))
    assert zero > 1.0  # the expert moves
    assert row["l2_m"]["stp3"]["avg"] < 0.5 * zero
    assert summary["baseline_models"][EGO_MLP_NAME]["sha256"]
    # the table prints it above the policy and says it is scored on its own train scenes
    assert printed.index(EGO_MLP_NAME) < printed.index("expert (log replay)")
    assert "trained on" in printed and "not a held-out score" in printed
    # another export whose scenes share the names (episode ids) is not "its own train scenes"
    other = tmp_path / "other"
    shutil.copytree(nuscenes_export, other)
    code, printed, _ = _eval(other, tmp_path / "eval-other", capsys, "--ego-mlp", str(weights))
    assert code == 0 and EGO_MLP_NAME in printed and "not a held-out score" not in printed


def test_default_location_and_named_errors(nuscenes_export, tmp_path, capsys):
    root = tmp_path / "nus"
    shutil.copytree(nuscenes_export, root)
    code, printed, _ = _eval(root, tmp_path / "a", capsys)
    assert code == 0 and "no ego-status MLP row" in printed and "train-baseline" in printed
    assert _run(["train-baseline", "ego-mlp", "--dataroot", str(root), "--version", VERSION,
                 "--epochs", "50"], capsys)[0] == 0
    default = default_ego_mlp_path(root, VERSION, "train")
    assert (default / "model.safetensors").is_file()
    code, printed, _ = _eval(root, tmp_path / "b", capsys)
    assert code == 0 and EGO_MLP_NAME in printed and "no ego-status MLP row" not in printed
    # a missing file: one line, exit 2, naming it
    code, _, err = _eval(root, tmp_path / "c", capsys, "--ego-mlp", str(tmp_path / "nope"))
    assert code == 2 and "nope" in err and "train-baseline" in err
    code, _, err = _eval(root, tmp_path / "d", capsys, "--ego-mlp", str(default),
                         "--no-baselines")
    assert code == 2 and "--ego-mlp" in err
    # corrupt weights, corrupt config, weights of another shape
    bad = tmp_path / "bad.safetensors"
    shutil.copy(default / "config.json", bad.with_suffix(".json"))
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(EgoMLPFileError, match="bad.safetensors") as info:
        load_ego_mlp(bad)
    assert isinstance(info.value, DriveVLAError)
    shutil.copy(default / "model.safetensors", bad)
    bad.with_suffix(".json").write_text('{"hidden_sizes": [128, ')
    with pytest.raises(EgoMLPFileError, match="bad.json"):
        load_ego_mlp(bad)
    config = json.loads((default / "config.json").read_text())
    bad.with_suffix(".json").write_text(json.dumps({**config, "hidden_sizes": [8]}))
    with pytest.raises(EgoMLPFileError, match="do not match"):
        load_ego_mlp(bad)
    bad.with_suffix(".json").write_text(json.dumps({**config, "pickle": True}))
    with pytest.raises(EgoMLPFileError, match="unknown key"):
        load_ego_mlp(bad)


def test_training_is_seeded(nuscenes_export):
    samples = open_openloop_source(nuscenes_export, VERSION, "train").samples
    a, b, c = (fit_ego_mlp(samples, EgoMLPConfig(epochs=20, seed=s)) for s in (0, 0, 1))
    sa, sb, sc = (m.state_dict() for m in (a, b, c))
    assert all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)
    assert not all(np.array_equal(sa[k].numpy(), sc[k].numpy()) for k in sa)
