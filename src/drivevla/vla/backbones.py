"""Backbones: what turns cameras + instruction into a prefix of embeddings and runs the
causal language model over it.

Every backbone implements the small :class:`Backbone` protocol; ``build_backbone`` picks one
from ``config.backbone_family`` through a registry. The default is a timm vision encoder with
a linear projector into a transformers causal LM built from a config (trained from scratch).
Pretrained VLM families (Idefics3/SmolVLM, Qwen2-VL, Qwen2.5-VL) register themselves from
:mod:`drivevla.vla.backbones_vlm`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn as nn

from drivevla.vla.configuration_drivevla import DriveVLAConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(Protocol):
    hidden_size: int

    def embed_prefix(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings (B, P, d), attention mask (B, P)) of cameras + instruction."""

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor: ...

    def run(self, embeds: torch.Tensor, mask: torch.Tensor, past_key_values: Any = None,
            use_cache: bool = False) -> tuple[torch.Tensor, Any]:
        """(last hidden states of ``embeds``, KV cache). ``mask`` covers cache + embeds."""

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor: ...


_REGISTRY: dict[str, Callable[[DriveVLAConfig, int], nn.Module]] = {}


def register_backbone(family: str, factory: Callable[[DriveVLAConfig, int], nn.Module]) -> None:
    _REGISTRY[family] = factory


def build_backbone(config: DriveVLAConfig, vocab_size: int) -> nn.Module:
    family = config.model.backbone_family
    if family not in _REGISTRY:
        raise ValueError(f"unknown backbone family {family!r}; valid: {sorted(_REGISTRY)}")
    return _REGISTRY[family](config, vocab_size)


def causal_lm_run(lm_model: nn.Module, embeds: torch.Tensor, mask: torch.Tensor,
                  past_key_values: Any, use_cache: bool) -> tuple[torch.Tensor, Any]:
    """Run a transformers decoder (``XxxModel``) on ``inputs_embeds`` with explicit positions."""
    past = 0 if past_key_values is None else past_key_values.get_seq_length()
    n = embeds.shape[1]
    position_ids = torch.arange(past, past + n, device=embeds.device)[None].expand(
        embeds.shape[0], -1)
    out = lm_model(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids,
                   cache=past_key_values, use_cache=use_cache)
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = getattr(out, "past_key_values", None)
    return out.last_hidden_state, cache


class DefaultBackbone(nn.Module):
    """timm vision encoder (no pretrained weights) + projector + Llama-architecture LM."""

    def __init__(self, config: DriveVLAConfig, vocab_size: int) -> None:
        super().__init__()
        import timm
        from transformers import LlamaConfig, LlamaForCausalLM

        self.config = config = config.model  # architecture section only
        self.vision = timm.create_model(config.vision_model, pretrained=False, num_classes=0,
                                        global_pool="")
        with torch.no_grad():
            feat = self.vision(torch.zeros(1, 3, config.image_height, config.image_width))
        channels, h, w = feat.shape[1:]
        self.tokens_per_camera = h * w
        self.vision_channels = channels
        lm_cfg = LlamaConfig(vocab_size=vocab_size, pad_token_id=0, bos_token_id=2,
                             eos_token_id=3, **config.lm)
        self.lm = LlamaForCausalLM(lm_cfg)
        if config.gradient_checkpointing:
            self.lm.gradient_checkpointing_enable()
        self.hidden_size = lm_cfg.hidden_size
        self.projector = nn.Sequential(nn.Linear(channels, self.hidden_size), nn.GELU(),
                                       nn.Linear(self.hidden_size, self.hidden_size))
        n_tok = self.tokens_per_camera * len(config.cameras)
        self.camera_pos = nn.Parameter(torch.randn(n_tok, self.hidden_size) * 0.02)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def vision_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, N * h * w, C) camera features of ``images`` (B, N, 3, H, W) in [0, 1]."""
        b, n = images.shape[:2]
        x = (images.flatten(0, 1) - self.mean) / self.std
        feat = self.vision(x)  # (B*N, C, h, w)
        return feat.flatten(2).transpose(1, 2).reshape(b, n * self.tokens_per_camera, -1)

    def embed_prefix(self, batch):
        tokens = batch.get("vision_tokens")  # computed already (the model's memory)
        if tokens is None:
            tokens = self.vision_tokens(batch["images"])
        b = tokens.shape[0]
        vis = self.projector(tokens) + self.camera_pos[None]
        text = batch.get("instruction_embeds")  # a pretrained encoder's, projected
        if text is None:
            text = self.embed_tokens(batch["instruction_ids"])
        mask = torch.cat([batch["instruction_mask"].new_ones(b, vis.shape[1]),
                          batch["instruction_mask"]], dim=1)
        return torch.cat([vis, text.to(vis.dtype)], dim=1), mask

    def embed_tokens(self, ids):
        return self.lm.model.embed_tokens(ids)

    def run(self, embeds, mask, past_key_values=None, use_cache=False):
        return causal_lm_run(self.lm.model, embeds, mask, past_key_values, use_cache)

    def lm_logits(self, hidden):
        return self.lm.lm_head(hidden)


register_backbone("default", DefaultBackbone)
