"""TensorRT engines of a deployment folder: built where TensorRT is installed (skipped
elsewhere, with the reason), and one error naming TensorRT where it is not."""

from __future__ import annotations

import importlib.util
import json

import pytest

from drivevla.cli import main
from drivevla.export.deploy import ExportError
from drivevla.export.onnx_export import export_onnx
from drivevla.export.tensorrt import build_engines, step_profile
from support.export_parts import TINY_CAMERA, require_export_extra, save_tiny_checkpoint

require_export_extra()
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("trt")
    ckpt = save_tiny_checkpoint(root / "ckpt", seed=5)
    deploy = export_onnx(str(ckpt), root / "deploy", camera_size=TINY_CAMERA, samples=1)
    return root / "deploy", deploy


def test_step_profile_spans_one_token_to_a_full_explanation(folder):
    _, deploy = folder
    prefix = next(o["shape"][1] for o in deploy["action"]["outputs"]
                  if o["name"] == "attention_mask")
    low, opt, high = step_profile(deploy)
    assert low == prefix + 1 and high == prefix + 2 + deploy["explain"]["max_tokens"]
    assert low < opt < high


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_without_tensorrt_the_error_names_it(folder, tmp_path, capsys):
    with pytest.raises(ExportError, match="TensorRT is not installed"):
        build_engines(folder[0], tmp_path / "engines")
    assert main(["export", "tensorrt", "--onnx", str(folder[0]), "--out",
                 str(tmp_path / "engines")]) == 2
    assert "TensorRT is not installed" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_TENSORRT, reason="TensorRT is not installed (an NVIDIA GPU "
                                             "machine or a Jetson has it)")
def test_engines_are_built_with_a_manifest(folder, tmp_path):
    manifest = build_engines(folder[0], tmp_path / "engines", fp16=True, workspace_gb=1)
    for engine in manifest["engines"].values():
        assert (tmp_path / "engines" / engine).stat().st_size > 0
    assert json.loads((tmp_path / "engines" / "tensorrt.json").read_text())["fp16"] is True
    assert (tmp_path / "engines" / "timing.cache").is_file()
