"""INT8 and FP16 exports: the action graph quantized by onnxruntime.quantization (calibrated on
recorded frames) or converted by its float16 tool; FP32 parity still enforced, the lower
precision's reported; the folder runs as a policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.cli import main
from drivevla.datasets.replay import recorded_ticks
from drivevla.export.deploy import ExportError
from drivevla.export.onnx_export import export_onnx
from drivevla.export.onnx_policy import OnnxPolicy
from support.export_parts import (
    TINY_CAMERA,
    camera_obs,
    require_export_extra,
    save_tiny_checkpoint,
)

require_export_extra()
import onnx  # noqa: E402  (after the skip: the optional export extra)


def test_int8_export_is_quantized_reported_and_runs(tiny_dataset, tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", seed=3)
    ticks = ((t.observation, t.odometry) for t in recorded_ticks(tiny_dataset, ["front"], 8))
    deploy = export_onnx(str(ckpt), tmp_path / "int8", camera_size=TINY_CAMERA, samples=2,
                         calibration=ticks)
    action = deploy["action"]
    assert action["precision"] == "int8" and action["calibration_frames"] == 8
    assert deploy["parity_fp32"]["passed"]  # held to 1e-4 before quantization
    assert all(math.isfinite(deploy["parity"][k]) for k in ("max_abs_waypoints_m",
                                                             "max_abs_target_speeds_mps"))
    ops = {node.op_type for node in onnx.load(str(tmp_path / "int8" / "action.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    policy = OnnxPolicy(tmp_path / "int8")  # hashes, metadata and signature still check out
    decision = policy.act(camera_obs(*TINY_CAMERA))
    assert np.isfinite(decision.waypoints).all() and isinstance(policy.explain(), str)


def test_int8_needs_calibration_data(tmp_path, capsys):
    assert main(["export", "onnx", "--policy", "drivevla-tiny", "--out", str(tmp_path / "x"),
                 "--int8"]) == 2
    assert "--int8 and --calib DATA go together" in capsys.readouterr().err


def test_fp16_export_converts_keeps_fp32_io_and_runs(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", seed=4)
    deploy = export_onnx(str(ckpt), tmp_path / "fp16", camera_size=TINY_CAMERA, samples=2,
                         fp16=True)
    assert deploy["action"]["precision"] == "fp16" and deploy["parity_fp32"]["passed"]
    assert deploy["parity"]["max_abs_waypoints_m"] < 0.5  # reported; small for FP16
    graph = onnx.load(str(tmp_path / "fp16" / "action.onnx")).graph
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
    assert graph.input[3].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # ego: FP32
    policy = OnnxPolicy(tmp_path / "fp16")
    assert np.isfinite(policy.act(camera_obs(*TINY_CAMERA)).waypoints).all()
    assert isinstance(policy.explain(), str)
    with pytest.raises(ExportError, match="choose one precision"):
        export_onnx(str(ckpt), tmp_path / "both", fp16=True, calibration=[])
