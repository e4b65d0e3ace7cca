"""A deployment folder that cannot be trusted gets an error naming the problem (a missing
file, a changed config hash, a corrupted action.onnx, a wrong input shape or dtype, a camera
of another size), and the export and parity commands report bad arguments on one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from drivevla.agents.registry import policy_folder
from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.benchmarks.export_parity import run_parity
from drivevla.cli import main
from drivevla.core.errors import DriveVLAError, InvalidObservationError
from drivevla.datasets.replay import recorded_ticks
from drivevla.export import onnx_export
from drivevla.export.deploy import (
    DEPLOY_FILE,
    DeploymentError,
    DeploymentInputError,
    ExportError,
    file_sha256,
)
from drivevla.export.onnx_export import export_onnx
from drivevla.export.onnx_policy import OnnxActionModel, OnnxPolicy
from support.export_parts import (
    TINY_CAMERA,
    camera_obs,
    require_export_extra,
    save_tiny_checkpoint,
)

require_export_extra()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(checkpoint, deployment folder) of a tiny random model, exported once."""
    root = tmp_path_factory.mktemp("deploy_errors")
    ckpt = save_tiny_checkpoint(root / "ckpt", seed=1)
    export_onnx(str(ckpt), root / "deploy", camera_size=TINY_CAMERA, samples=2)
    return ckpt, root / "deploy"


@pytest.fixture
def folder(exported, tmp_path):
    """A private copy of the deployment folder, to damage."""
    return shutil.copytree(exported[1], tmp_path / "deploy")


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.parametrize("name", ["action.onnx", "explain_step.onnx", "tokenizer.json",
                                  "model.safetensors", "config.json"])
def test_a_missing_file_is_named(folder, name):
    (folder / name).unlink()
    with pytest.raises(DeploymentError, match=f"{name} is missing"):
        OnnxPolicy(folder)


def test_a_folder_without_deploy_json_says_how_to_make_one(folder):
    (folder / DEPLOY_FILE).unlink()
    with pytest.raises(DeploymentError, match="has no deploy.json.*drivevla export onnx"):
        OnnxPolicy(folder)


def test_a_changed_config_is_a_config_hash_error(folder):
    _edit_json(folder / "config.json",
               lambda c: c["inference"].__setitem__("refusal_threshold", 0.7))
    with pytest.raises(DeploymentError, match=r"config.json: config hash .* differs from the "
                                              r"export's"):
        OnnxPolicy(folder)


def test_a_changed_config_hash_in_deploy_json_is_named(folder):
    _edit_json(folder / DEPLOY_FILE,
               lambda d: d["model"].__setitem__("config_sha256", "0" * 64))
    with pytest.raises(DeploymentError, match="config hash .* 0000000000000000"):
        OnnxPolicy(folder)


def test_a_corrupted_onnx_file_is_named(folder):
    data = (folder / "action.onnx").read_bytes()
    (folder / "action.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(DeploymentError, match="action.onnx changed since export"):
        OnnxPolicy(folder)
    # even with its hash rewritten, ONNX Runtime's refusal is reported naming the file
    _edit_json(folder / DEPLOY_FILE, lambda d: d["files"].__setitem__(
        "action.onnx", file_sha256(folder / "action.onnx")))
    with pytest.raises(DeploymentError, match="action.onnx: ONNX Runtime cannot load it"):
        OnnxPolicy(folder)


def test_a_wrong_input_shape_or_dtype_is_named(exported):
    model = OnnxActionModel(exported[1])
    feeds = {s.name: np.zeros(s.shape, dtype=s.dtype) for s in model.inputs}
    assert set(model.run(feeds)) >= {"waypoints", "refusal_probability"}
    bad_shape = dict(feeds, images=np.zeros((1, 1, 60, 100, 3), dtype=np.uint8))
    with pytest.raises(DeploymentInputError, match=r"'images' has shape \(1, 1, 60, 100, 3\), "
                                                   r"expected \(1, 1, 48, 64, 3\)"):
        model.run(bad_shape)
    bad_dtype = dict(feeds, ego=np.zeros((1, 4), dtype=np.float64))
    with pytest.raises(DeploymentInputError, match="'ego' has dtype float64, expected float32"):
        model.run(bad_dtype)
    missing = {k: v for k, v in feeds.items() if k != "odometry"}
    with pytest.raises(DeploymentInputError, match=r"missing \['odometry'\]"):
        model.run(missing)


def test_a_camera_of_another_size_names_the_export_size(exported):
    with pytest.raises(InvalidObservationError, match=r"camera 'front': image 100x60 .* "
                                                      r"exported for 64x48"):
        OnnxPolicy(exported[1]).act(camera_obs(100, 60))


def test_export_refuses_what_it_cannot_export(exported, tmp_path):
    ckpt = exported[0]
    with pytest.raises(ExportError, match="opset >= 18"):
        export_onnx(str(ckpt), tmp_path / "a", opset=17)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an earlier export"):
        export_onnx(str(ckpt), tmp_path / "b")
    with pytest.raises(ExportError, match="only DriveVLA checkpoints export"):
        export_onnx("expert", tmp_path / "c")


def test_export_without_the_extra_names_it(exported, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "EXPORT_EXTRA", ("onnx", "no_such_onnx_tool"))
    with pytest.raises(ExportError, match=r"\['no_such_onnx_tool'\] missing: pip install "
                                          r"'drivevla\[export\]'"):
        export_onnx(str(exported[0]), tmp_path / "a")


@pytest.mark.parametrize("argv, match", [
    (["export", "onnx", "--policy", "idm", "--out", "{tmp}/x"], "only DriveVLA checkpoints"),
    (["export", "onnx", "--policy", "drivevla-tiny", "--out", "{tmp}/x", "--camera-size",
      "320by180"], "expected WIDTHxHEIGHT"),
    (["export", "parity", "--onnx", "{tmp}/none", "--data", "{tmp}", "--out", "{tmp}/p.json"],
     "does not exist"),
])
def test_cli_errors_are_one_line_exit_2(argv, match, tmp_path, capsys):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("drivevla: error:") and match in err and "\n" not in err


def test_parity_on_recorded_frames(exported, tiny_dataset, tmp_path, capsys):
    result = run_parity(exported[1], recorded_ticks(tiny_dataset, ["front"], 6), total=6)
    assert result["parity"]["passed"] and result["parity"]["frames"] == 6
    assert len({(r["episode_id"], r["frame_index"]) for r in result["frames"]}) == 6
    out = tmp_path / "parity.json"
    assert main(["export", "parity", "--onnx", str(exported[1]), "--data", str(tiny_dataset),
                 "--frames", "3", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["parity"]["frames"] == 3
    assert "PASS" in capsys.readouterr().out


def test_closed_loop_drives_an_onnx_folder_and_checks_it_first(exported, tmp_path):
    ckpt, folder = exported
    assert policy_folder(f"onnx:{folder}") == folder and policy_folder(str(ckpt)) == ckpt
    assert policy_folder(f"onnx:{tmp_path / 'none'}") is None and policy_folder("idm") is None
    suite = Path(__file__).parents[1] / "datasets" / "tiny_suite.yaml"  # a 64x48 camera
    summary = run_closed_loop(f"onnx:{folder}", suite, tmp_path / "eval", workers=0,
                              max_steps=4, progress=False, print_table=False)
    assert summary["policy"] == f"onnx:{folder}" and summary["run"]["routes_run"] == 3
    assert not summary.get("failed_routes")
    (folder.parent / "broken").mkdir()
    with pytest.raises(DriveVLAError, match="broken' has no deploy.json"):
        run_closed_loop(f"onnx:{folder.parent / 'broken'}", suite, tmp_path / "eval2",
                        workers=0, max_steps=4, progress=False, print_table=False)
