"""Parity of an exported deployment folder on recorded frames of a drivevla dataset.

    drivevla export parity --onnx DIR --data DATASET [--frames 200] [--out FILE.json]

Each recorded tick (:func:`drivevla.datasets.replay.recorded_ticks`: frames spread evenly
over the dataset's episodes, with the odometry readings the dataset derives for them) goes
through the PyTorch policy of the folder's checkpoint and through action.onnx in ONNX
Runtime (:class:`~drivevla.export.onnx_policy.OnnxPolicy`), explanation included;
:mod:`drivevla.export.parity` compares the outputs and the texts. The result holds the
summary, every frame's row, and provenance.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from drivevla.core.provenance import provenance
from drivevla.core.types import Observation
from drivevla.export import parity
from drivevla.export.onnx_policy import OnnxPolicy
from drivevla.vla.policy import DriveVLAPolicy

BENCHMARK = "export_parity"


class Tick(Protocol):  # drivevla.datasets.replay.RecordedTick (a layer above this one's peers)
    episode_id: str
    frame_index: int
    observation: Observation
    odometry: dict[str, float]


def run_parity(deployment: Path, ticks: Iterable[Tick], total: int | None = None
               ) -> dict[str, Any]:
    """ONNX Runtime vs PyTorch on recorded ``ticks``: the summary (``parity``), per-frame
    rows and provenance."""
    onnx_policy = OnnxPolicy(deployment)
    torch_policy = DriveVLAPolicy.from_pretrained(deployment)
    channels = onnx_policy.config.model.odometry
    rows = []
    for tick in tqdm(ticks, total=total, desc="parity", unit="frame"):
        readings = {k: v for k, v in tick.odometry.items() if k in channels}
        exported = onnx_policy.action_outputs(tick.observation, readings)
        row = parity.compare_tick(torch_policy, tick.observation, readings, exported,
                                  onnx_policy.explain_outputs(exported), keep=True)
        onnx_policy.tick_state.keep(exported)  # both memories hold the same ticks
        rows.append({"episode_id": tick.episode_id, "frame_index": tick.frame_index, **row})
    return {"benchmark": BENCHMARK, "deployment": str(deployment),
            "parity": parity.summarise(rows)
            | {"runtime": onnx_policy.deploy["parity"].get("runtime"),
               "reference": "PyTorch eager, fp32, CPU"},
            "frames": rows, "provenance": provenance()}
