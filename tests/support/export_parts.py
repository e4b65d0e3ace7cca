"""Shared pieces of the export tests: a tiny random DriveVLA checkpoint that uses every input
the graph can have (odometry, target points, sentence-wise intent, a refusal head), exported
at the tiny dataset's camera size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from drivevla.core.types import CameraSpec, EgoState, HighLevelCommand, Observation, RouteInfo
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.vla_parts import CORPUS, TINY

# every optional input of the graph, and the other action decoder
TINY_ALL_INPUTS = {**TINY, "model.odometry": ["heading_change", "lateral_offset",
                                              "distance_travelled"],
                   "model.navigation_mode": "target_point", "model.refusal_head": "bag",
                   "model.intent_head": "by_sentence", "model.head": "regression",
                   "model.explanation": "grounded"}
TINY_CAMERA = (64, 48)  # (width, height) of tests/datasets/tiny_suite.yaml's camera


def save_tiny_checkpoint(directory: Path, seed: int = 0,
                         settings: dict | None = None) -> Path:
    """A random tiny checkpoint with every graph input (or the config ``settings``), saved
    to ``directory``."""
    torch.manual_seed(seed)
    config = DriveVLAConfig.from_dict(settings or TINY_ALL_INPUTS)
    processor = DriveVLAProcessor.build(config, CORPUS)
    DriveVLAPolicy(DriveVLAModel(config, processor.vocab_size), processor).save_pretrained(
        directory)
    return directory


def camera_obs(width: int, height: int, seed: int = 0, instruction: str = CORPUS[0],
               x: float = 0.0, speed: float = 5.0) -> Observation:
    """An observation with one front camera of ``width`` x ``height`` px (random image)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Observation(
        images={"front": img}, cameras={"front": CameraSpec(name="front", width=width,
                                                            height=height)},
        ego=EgoState(x, 0.5 * x, 0.1 * x, speed, 0.3, 0.05, 0.1), instruction=instruction,
        route=RouteInfo(np.cumsum(rng.uniform(0, 8, (5, 2)), axis=0),
                        HighLevelCommand.LANE_FOLLOW, "turn_left", 50.0),
        timestamp_s=float(seed))


def require_export_extra() -> None:
    """Skip the calling test module where the ``export`` extra is not installed."""
    for name in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(name, reason=f"the export extra ({name}) is not installed")
