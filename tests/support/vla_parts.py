"""Shared pieces of the DriveVLA tests: a tiny model config, a text corpus for its
tokenizer, random training samples and an observation (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import numpy as np
import torch

from drivevla.core.types import CameraSpec, EgoState, HighLevelCommand, Observation, RouteInfo

TINY = {"image_height": 48, "image_width": 80, "vision_model": "resnet10t",
        "lm": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "num_key_value_heads": 1, "intermediate_size": 128,
               "max_position_embeddings": 128, "tie_word_embeddings": True},
        "max_instruction_tokens": 16, "max_explanation_tokens": 12,
        "tokenizer_vocab_size": 300}
CORPUS = ["Turn left at the next junction.", "Take the second exit at the roundabout.",
          "Slowing down: the red car ahead is braking.", "Stopping: the light is red.",
          "Following the route.", "I won't run the red light; carrying on safely."] * 5


def tiny_samples(b: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {
        "images": torch.randint(0, 255, (b, 1, 3, 60, 100), dtype=torch.uint8, generator=g),
        "ego": torch.rand(b, 4, generator=g),
        "route": torch.rand(b, 5, 2, generator=g) * 20,
        "instruction": [CORPUS[i % 2] for i in range(b)],
        "explanation": [CORPUS[2 + i % 3] for i in range(b)],
        "target_waypoints": torch.cumsum(torch.rand(b, 6, 2, generator=g) * 3, dim=1),
        "target_speeds": torch.rand(b, 6, generator=g) * 10,
        "waypoint_mask": torch.ones(b, 6),
        "meta_action": torch.randint(0, 8, (b,), generator=g),
        "reason": torch.randint(0, 15, (b,), generator=g),
    }


def tiny_obs(**kw):
    spec = CameraSpec(name="front", width=100, height=60)
    img = np.random.default_rng(1).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    base = dict(images={"front": img}, cameras={"front": spec},
                ego=EgoState(0.0, 0.0, 0.0, 5.0), instruction="Turn left at the next junction.",
                route=RouteInfo(np.zeros((5, 2)), HighLevelCommand.LANE_FOLLOW, "turn_left", 50.0),
                timestamp_s=0.0)
    base.update(kw)
    return Observation(**base)
