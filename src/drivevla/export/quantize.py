"""Lower precisions of the action graph, by ONNX Runtime's own tools: INT8 by static
quantization (QDQ, per-channel weights) calibrated on recorded ticks (``drivevla export onnx
--int8 --calib DATA``), FP16 by its float16 converter (``--fp16``, inputs and outputs kept
FP32).

Only the convolutions and matrix products are quantized: the attention masks carry -inf,
whose calibration ranges break the scales (every output became garbage when all ops were
quantized). The explainer graphs stay FP32 and read the INT8 action pass's cache. What INT8
costs is measured against PyTorch and written to deploy.json's ``parity``, never hidden:
FP32's figures stay under ``parity_fp32`` and hold the export to the tolerance.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.types import Observation
from drivevla.export.deploy import ExportError
from drivevla.vla.processor_drivevla import DriveVLAProcessor

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


def calibration_feeds(processor: DriveVLAProcessor, names: list[str],
                      ticks: Iterable[tuple[Observation, dict[str, float]]]
                      ) -> list[dict[str, np.ndarray]]:
    """The action graph's inputs of each (observation, odometry readings) tick."""
    channels = processor.config.model.odometry
    feeds = []
    for obs, readings in ticks:
        raw = processor.raw_inputs([obs], [{k: v for k, v in readings.items()
                                            if k in channels}])
        feeds.append({name: raw[name].numpy() for name in names})
    if not feeds:
        raise ExportError("--calib: no frames to calibrate INT8 on")
    return feeds


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_int8(path: Path, feeds: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Replace the FP32 graph at ``path`` by its INT8 QDQ quantization; returns what
    deploy.json records of it."""
    # lazy: the optional `export` extra
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(path), _Reader(feeds),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(QUANTIZED_OPS))
    return {"precision": "int8", "tool": "onnxruntime.quantization.quantize_static",
            "format": "QDQ", "per_channel": True, "activations": "int8", "weights": "int8",
            "ops": list(QUANTIZED_OPS), "calibration_frames": len(feeds),
            "explainer": "fp32 graphs on the int8 action pass's cache"}


def convert_fp16(path: Path) -> dict[str, Any]:
    """Replace the FP32 graph at ``path`` by its FP16 conversion (inputs and outputs stay
    FP32, so the contract and the explainer are unchanged); returns what deploy.json
    records of it."""
    import onnx  # lazy: the optional `export` extra
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(path))
    return {"precision": "fp16", "tool": "onnxruntime.transformers.float16."
            "convert_float_to_float16(keep_io_types=True)",
            "explainer": "fp32 graphs on the fp16 action pass's cache"}
