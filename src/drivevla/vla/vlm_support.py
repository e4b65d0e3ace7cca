"""Support for the pretrained-VLM backbones (:mod:`drivevla.vla.backbones_vlm`): the
families' transformers classes, tiny configs of those real classes (tests and smoke runs),
the image statistics and pre-processing settings, the local tokenizer, and Qwen's patch
layout."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280

TINY_VOCAB = 1280


def _tiny_text(**extra: Any) -> dict[str, Any]:
    return {
        "vocab_size": TINY_VOCAB,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 1024,
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
        **extra,
    }


# Tiny configs of the real classes (merged under ``config.vlm_config``). Reserved multimodal
# token ids are put at the top of the vocabulary (filled in by ``_tiny_config``).
TINY_DEFAULTS: dict[str, dict[str, Any]] = {
    "qwen2_vl": {
        "text_config": _tiny_text(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        "vision_config": {
            "depth": 2,
            "embed_dim": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
    },
    "qwen2_5_vl": {
        "text_config": _tiny_text(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        "vision_config": {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
        },
    },
    "idefics3": {
        "text_config": _tiny_text(model_type="llama"),
        "vision_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 8,
        },
        "scale_factor": 2,
        "pad_token_id": None,  # Idefics3Config's own default (128002) is outside a tiny vocab
    },
}

_QWEN_SPECIALS = (
    "image_token_id",
    "video_token_id",
    "vision_end_token_id",
    "vision_start_token_id",
)


def _classes(family: str):
    import transformers as tf

    return {
        "qwen2_vl": (tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration),
        "qwen2_5_vl": (tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration),
        "idefics3": (tf.Idefics3Config, tf.Idefics3ForConditionalGeneration),
    }[family]


def tiny_vlm_config(family: str, overrides: dict[str, Any] | None = None):
    """The transformers config of a tiny ``family`` model: defaults + ``overrides`` (nested
    ``text_config`` / ``vision_config`` dicts are merged key by key)."""
    overrides = copy.deepcopy(overrides or {})
    cfg = copy.deepcopy(TINY_DEFAULTS[family])
    for key in ("text_config", "vision_config"):
        cfg[key].update(overrides.pop(key, {}) or {})
    cfg.update(overrides)
    text, vision = cfg["text_config"], cfg["vision_config"]
    vocab = int(text["vocab_size"])
    if family in ("qwen2_vl", "qwen2_5_vl"):
        for i, key in enumerate(_QWEN_SPECIALS):
            cfg.setdefault(key, vocab - 1 - i)
        out_key = "hidden_size" if family == "qwen2_vl" else "out_hidden_size"
        vision.setdefault(out_key, text["hidden_size"])
        rope = text.setdefault("rope_parameters", {"rope_type": "default"})
        if "mrope_section" not in rope:
            half = text["hidden_size"] // text["num_attention_heads"] // 2
            hw = 3 * half // 8
            rope["mrope_section"] = [half - 2 * hw, hw, hw]
    else:
        cfg.setdefault("image_token_id", vocab - 1)
    config_cls, _ = _classes(family)
    return config_cls(**cfg)


def _preprocessor_settings(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    file = Path(path) / "preprocessor_config.json"
    if not file.is_file():
        return {}
    return json.loads(file.read_text(encoding="utf-8"))


def _load_tokenizer(path: str | None):
    if path is None:
        return None
    p = Path(path)
    if not any(
        (p / f).is_file()
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
    ):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def qwen_patchify(images: torch.Tensor, patch: int, merge: int, temporal: int) -> torch.Tensor:
    """(M, C, H, W) normalised frames -> (M * gh * gw, C * temporal * patch * patch) in the
    flattened layout of ``Qwen2VLImageProcessor`` (merge-window order, frame repeated
    ``temporal`` times)."""
    m, c, h, w = images.shape
    gh, gw = h // patch, w // patch
    x = images.reshape(m, c, gh // merge, merge, patch, gw // merge, merge, patch)
    # -> (M, gh/merge, gw/merge, merge, merge, C, patch, patch)
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)
    x = x.unsqueeze(6).expand(*x.shape[:6], temporal, patch, patch)
    return x.reshape(m * gh * gw, c * temporal * patch * patch)
