"""The tiny training setup shared by tests/training: a tiny model config, a config builder
and frame counting."""

from __future__ import annotations

from pathlib import Path

from drivevla.training.train import TrainConfig

TINY_SUITE = Path(__file__).parents[1] / "datasets" / "tiny_suite.yaml"
TINY = {"image_height": 32, "image_width": 48, "vision_model": "resnet10t",
        "lm": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 1, "intermediate_size": 64,
               "max_position_embeddings": 128, "tie_word_embeddings": True},
        "max_instruction_tokens": 16, "max_explanation_tokens": 12,
        "tokenizer_vocab_size": 300}
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json")


def train_cfg(data, out, cache, **kw) -> TrainConfig:
    """A few steps of the tiny model on ``data``, its frame cache in ``cache``."""
    base = dict(data=(str(data),), out=str(out), steps=4, batch_size=4, warmup_steps=1,
                save_every=100, val_frames=0, progress=False, model=dict(TINY),
                cache_dir=str(cache))
    return TrainConfig(**{**base, **kw})


def n_frames(root: Path, split: str | None) -> int:
    from drivevla.datasets.torch_dataset import FrameDataset

    return len(FrameDataset(root, split=split, cameras=["front"]))
