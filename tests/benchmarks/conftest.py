"""Fixtures shared by the benchmark tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised DriveVLA checkpoint (it drives badly; only plumbing matters)."""
    import torch

    from drivevla.vla.configuration_drivevla import DriveVLAConfig
    from drivevla.vla.modeling_drivevla import DriveVLAModel
    from drivevla.vla.policy import DriveVLAPolicy
    from drivevla.vla.processor_drivevla import DriveVLAProcessor

    torch.manual_seed(0)
    cfg = DriveVLAConfig.from_dict({
        "image_height": 48, "image_width": 80, "vision_model": "resnet10t",
        "lm": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 1, "intermediate_size": 64,
               "max_position_embeddings": 96, "tie_word_embeddings": True},
        "max_instruction_tokens": 36, "max_explanation_tokens": 6, "tokenizer_vocab_size": 300,
    })
    proc = DriveVLAProcessor.build(cfg, ["Stopping: the light is red.", "Following the route."])
    path = tmp_path_factory.mktemp("ckpt") / "tiny-ckpt"
    DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def nuscenes_export(tiny_dataset, tmp_path_factory) -> Path:
    """``drivevla data export-nuscenes`` of the tiny collection (6 episodes of 4 s: 48
    keyframes, 12 with a full 3 s future), made once; tests that change it change a copy."""
    from drivevla.cli import main as cli_main

    out = tmp_path_factory.mktemp("openloop") / "nuscenes"
    assert cli_main(["data", "export-nuscenes", str(tiny_dataset), str(out)]) == 0
    return out
