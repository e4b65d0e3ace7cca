"""What the exported action graph is: the module that torch.onnx traces, its inputs and
outputs (:class:`~drivevla.export.deploy.TensorSpec`), and the constants it bakes in.

The graph is one tick of DriveVLA's action path from the tensors a vehicle has to the
decision tensors. Its pre-processing is the processor's own code
(:meth:`DriveVLAProcessor.model_inputs`: resize, scaling, ego and odometry normalisation),
traced, not re-written; tokenisation stays outside (``tokenizer.json``), as does reading a
Decision from the outputs (:func:`drivevla.vla.policy.decision_from_outputs`).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn as nn
from transformers import DynamicCache

from drivevla.core.types import CameraSpec
from drivevla.export.deploy import ENCODER_FILE, TensorSpec
from drivevla.vla.backbones import IMAGENET_MEAN, IMAGENET_STD
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.instruction_encoder import STATE_DIM, loaded_encoder
from drivevla.vla.modeling_drivevla import ActionOutput, DriveVLAModel
from drivevla.vla.odometry import CHANNELS
from drivevla.vla.processor_drivevla import (
    BOS,
    EXPL,
    MAX_INTENT_SENTENCES,
    PAD,
    SPECIAL_TOKENS,
    DriveVLAProcessor,
)

OUTPUT_NAMES = ("waypoints", "target_speeds", "meta_action_logits", "reason_logits", "reason",
                "refusal_probability")
EGO_CHANNELS = ("speed_mps", "accel_mps2", "yaw_rate_rps", "steer")


def action_tensors(model: DriveVLAModel, out: ActionOutput) -> tuple[torch.Tensor, ...]:
    """The graph's outputs (:data:`OUTPUT_NAMES` order) of an action pass. The refusal
    probability is the refusal head's sigmoid, or without one the reason head's softmax at
    the refusal (then that head alone decides refusals)."""
    if out.refusal_logit is not None:
        refusal = torch.sigmoid(out.refusal_logit.float())
    else:
        refusal = torch.softmax(out.reason_logits.float(), dim=-1)[:, model.refused_index]
    return (out.waypoints, out.speeds, out.meta_logits, out.reason_logits, out.reason, refusal)


def action_output_names(config: DriveVLAConfig) -> list[str]:
    """The decision outputs of the action graph, then with a memory ``frame_summary`` (what
    the runtime keeps for the next ticks); the cache outputs follow them."""
    return [*OUTPUT_NAMES, *(["frame_summary"] if config.model.memory_frames else [])]


def cache_names(n_layers: int, prefix: str = "past") -> list[str]:
    """Names of a KV cache's tensors after its attention mask: ``past.{i}.key/value``."""
    return [f"{prefix}.{i}.{kind}" for i in range(n_layers) for kind in ("key", "value")]


def cache_output_names(n_layers: int) -> list[str]:
    """action.onnx's outputs after the decision: the prefix mask and KV cache, named as the
    explainer's inputs so that they feed it by name."""
    return ["attention_mask", *cache_names(n_layers)]


def decoder_output_names(n_layers: int) -> list[str]:
    """The explainer graphs' outputs: next-token logits, the grown mask and cache."""
    return ["logits", "present_mask", *cache_names(n_layers, "present")]


def cache_tensors(out: ActionOutput) -> tuple[torch.Tensor, ...]:
    """The action pass's attention mask (1, P) and KV cache, layer by layer (1, kv heads, P,
    head dim): what the explainer continues from."""
    return (out.attention_mask, *[t for layer in out.cache.layers
                                  for t in (layer.keys, layer.values)])


def cache_specs(out: ActionOutput) -> list[TensorSpec]:
    """Specs of :func:`cache_tensors` (their shapes as the action pass made them)."""
    tensors = cache_tensors(out)
    names = cache_output_names(len(out.cache.layers))
    return [TensorSpec(name, "int64" if i == 0 else "float32", tuple(t.shape),
                       "1/0" if i == 0 else "-", "prefix attention mask" if i == 0 else
                       "the language model's keys/values of the prefix + action queries, "
                       "for the explainer") for i, (name, t) in enumerate(zip(names, tensors,
                                                                               strict=True))]


class ExplainDecoder(nn.Module):
    """One greedy step of the explainer on a KV cache: ``prefill`` (``<expl>`` and, grounded,
    the decided reason's embedding, after the action pass's cache) or a ``step`` (one
    token). Returns the next-token logits (``<pad>`` never chosen), the attention mask with
    the new positions, and the grown cache, as :meth:`DriveVLAModel.generate_explanation`."""

    def __init__(self, model: DriveVLAModel, prefill: bool) -> None:
        super().__init__()
        self.model = model.eval()
        self.prefill = prefill

    def forward(self, token_or_reason: torch.Tensor, attention_mask: torch.Tensor,
                *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        backbone = self.model.backbone
        cache = DynamicCache(ddp_cache_data=list(zip(past[0::2], past[1::2], strict=True)))
        if self.prefill:  # token_or_reason: (1,) the decided reason
            emb = backbone.embed_tokens(torch.full_like(token_or_reason[:, None], EXPL))
            emb = self.model.explanation.first_step(emb, token_or_reason)
        else:  # token_or_reason: (1, 1) the previous token
            emb = backbone.embed_tokens(token_or_reason)
        mask = torch.cat([attention_mask, attention_mask.new_ones(1, emb.shape[1])], dim=1)
        hidden, cache = backbone.run(emb, mask, past_key_values=cache, use_cache=True)
        logits = backbone.lm_logits(hidden[:, -1]).float()
        is_pad = torch.arange(logits.shape[-1], device=logits.device) == PAD
        logits = logits.masked_fill(is_pad, float("-inf"))
        return (logits, mask, *[t for layer in cache.layers for t in (layer.keys, layer.values)])


class CameraResize(nn.Module):
    """The processor's image resize (bilinear, antialiased) for one camera size, as the two
    constant matrices it amounts to (it is linear and separable): ``rows @ image @ cols``.

    Why not ONNX ``Resize(antialias=1)``: ONNX Runtime's differs from torch's by up to 5e-6
    per pixel in [0, 1], which moved drivevla-tiny's waypoints by up to 1e-4 m; the matrices
    are read off the processor's own resize (its response to unit impulses), so they agree
    with it to float rounding, and two MatMuls run on every runtime (TensorRT included)."""

    def __init__(self, processor: DriveVLAProcessor, height: int, width: int) -> None:
        super().__init__()
        m = processor.config.model
        rows = torch.eye(height).view(height, 1, 1, height, 1).expand(-1, 1, 3, -1, m.image_width)
        cols = torch.eye(width).view(width, 1, 1, 1, width).expand(-1, 1, 3, m.image_height, -1)
        with torch.no_grad():
            self.register_buffer("rows", processor.images_to_tensor(rows)[:, 0, 0, :, 0].T
                                 .contiguous())  # (h, H)
            self.register_buffer("cols", processor.images_to_tensor(cols)[:, 0, 0, 0, :]
                                 .contiguous())  # (W, w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, N, H, W, 3) uint8 -> (B, N, h, w, 3) float in [0, 1]."""
        x = images.permute(0, 1, 4, 2, 3).float() / 255.0
        return (self.rows @ x @ self.cols).permute(0, 1, 3, 4, 2)


class ActionGraph(nn.Module):
    """Raw tick inputs -> :data:`OUTPUT_NAMES` (the inputs a config does not use are None).
    ``camera_hw``: the cameras' (height, width) px as the vehicle delivers them."""

    def __init__(self, model: DriveVLAModel, processor: DriveVLAProcessor,
                 camera_hw: tuple[int, int]) -> None:
        super().__init__()
        self.model = model.eval()
        self.processor = processor
        m = processor.config.model
        self.resize = (None if camera_hw == (m.image_height, m.image_width)
                       else CameraResize(processor, *camera_hw))

    def forward(self, images: torch.Tensor, instruction_ids: torch.Tensor,
                instruction_mask: torch.Tensor, ego: torch.Tensor,
                odometry: torch.Tensor | None = None, route: torch.Tensor | None = None,
                intent_sentence_ids: torch.Tensor | None = None,
                intent_sentence_mask: torch.Tensor | None = None,
                instruction_states: torch.Tensor | None = None,
                memory_summaries: torch.Tensor | None = None,
                memory_current: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        if self.resize is not None:
            images = self.resize(images)  # the processor resizes no more (already its size)
        raw = {"images": images, "instruction_ids": instruction_ids,
               "instruction_mask": instruction_mask, "ego": ego, "odometry": odometry,
               "route": route, "intent_sentence_ids": intent_sentence_ids,
               "intent_sentence_mask": intent_sentence_mask,
               "memory_summaries": memory_summaries,
               "memory_current": None if memory_current is None else memory_current.bool()}
        batch = self.processor.model_inputs({k: v for k, v in raw.items() if v is not None})
        encoder = self.model.instruction_states  # the pretrained encoder: states are an input
        with encoder.given(instruction_states) if encoder is not None else nullcontext():
            out = self.model.act(batch, use_cache=True)
        memory = (out.frame_summary,) if self.model.config.model.memory_frames else ()
        return action_tensors(self.model, out) + memory + cache_tensors(out)


class InstructionEncoderGraph(nn.Module):
    """The pretrained instruction encoder (``model.instruction_encoder``) as its own graph:
    the instruction's token ids and mask -> its token states (through float16), zero at
    padding. A runtime runs it when the instruction changes and feeds the states to the
    action graph every tick."""

    def __init__(self, model: DriveVLAModel) -> None:
        super().__init__()
        self.encoder = loaded_encoder(model.config.model.instruction_encoder_sha256).model.eval()

    def forward(self, instruction_ids: torch.Tensor, instruction_mask: torch.Tensor
                ) -> torch.Tensor:
        states = self.encoder(input_ids=instruction_ids,
                              attention_mask=instruction_mask).last_hidden_state
        # rounded through float16, as FrozenTokenStates keeps them (the states trained on)
        states = states.to(torch.float16).to(torch.float32)
        return states * instruction_mask.unsqueeze(-1).to(states.dtype)


def input_specs(config: DriveVLAConfig, cameras: list[CameraSpec], channels: int = 0
                ) -> list[TensorSpec]:
    """The graph's inputs for one tick (batch 1, static shapes), in the forward's order;
    ``channels``: the camera features' width (a memory's summaries)."""
    m = config.model
    n_tok = m.max_instruction_tokens
    size = f"{m.image_height}x{m.image_width}"
    specs = [
        TensorSpec("images", "uint8", (1, len(cameras), cameras[0].height, cameras[0].width, 3),
                   "RGB 0-255", f"cameras {list(m.cameras)} in that order, HWC; resized to "
                   f"{size} and normalised inside the graph"),
        TensorSpec("instruction_ids", "int64", (1, n_tok), "token id",
                   f"<bos> + the instruction's tokens (tokenizer.json), padded with <pad>={PAD}"),
        TensorSpec("instruction_mask", "int64", (1, n_tok), "1/0", "1 for a token, 0 for padding"),
        TensorSpec("ego", "float32", (1, 4), "m/s, m/s^2, rad/s, [-1, 1]",
                   "raw ego state: speed, longitudinal acceleration, yaw rate (left +), steer"),
    ]
    if m.odometry:
        specs.append(TensorSpec("odometry", "float32", (1, len(m.odometry)),
                                ", ".join(CHANNELS[c].unit for c in m.odometry),
                                f"raw readings since the route began: {list(m.odometry)}"))
    if m.navigation_mode == "target_point":
        specs.append(TensorSpec("route", "float32", (1, m.route_targets, 2), "m",
                                "route target points, ego frame (x forward, y left)"))
    if m.intent_head == "by_sentence":
        shape = (1, MAX_INTENT_SENTENCES, n_tok)
        specs += [TensorSpec("intent_sentence_ids", "int64", shape, "token id",
                             "each sentence of the instruction encoded alone"),
                  TensorSpec("intent_sentence_mask", "int64", shape, "1/0",
                             "1 for a token, 0 for padding (or a missing sentence)")]
    if m.instruction_encoder:
        specs.append(TensorSpec("instruction_states", "float32", (1, n_tok, STATE_DIM), "-",
                                f"{ENCODER_FILE}'s output for instruction_ids/_mask (run it "
                                "when the instruction changes)"))
    if m.memory_frames:
        if channels < 1:
            raise ValueError("a memory's input specs need the camera features' width")
        specs += [TensorSpec("memory_summaries", "float32", (1, m.memory_frames, channels),
                             "-", f"frame_summary of the ticks t - k * {m.memory_stride} "
                             f"(k = 1..{m.memory_frames}, clamped to the route's first tick)"),
                  TensorSpec("memory_current", "int64", (1, m.memory_frames), "1/0",
                             "1: no earlier tick yet, this tick's summary stands in")]
    return specs


def encoder_specs(config: DriveVLAConfig) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The instruction encoder graph's inputs and output."""
    n_tok = config.model.max_instruction_tokens
    return ([TensorSpec("instruction_ids", "int64", (1, n_tok), "token id",
                        "[CLS] + the instruction's WordPiece ids (tokenizer of the encoder) "
                        "+ [SEP], padded with 0"),
             TensorSpec("instruction_mask", "int64", (1, n_tok), "1/0",
                        "1 for a token, 0 for padding")],
            [TensorSpec("instruction_states", "float32", (1, n_tok, STATE_DIM), "-",
                        "the encoder's last hidden states, 0 at padding")])


def output_specs(config: DriveVLAConfig, channels: int = 0) -> list[TensorSpec]:
    m = config.model
    steps, dt = m.future_steps, m.future_dt_s
    memory = [TensorSpec("frame_summary", "float32", (1, channels), "-",
                         "this tick's camera summary: keep it for memory_summaries")
              ] if m.memory_frames else []
    return [
        TensorSpec("waypoints", "float32", (1, steps, 2), "m",
                   f"future positions every {dt} s from {dt} s, ego frame (x forward, y left)"),
        TensorSpec("target_speeds", "float32", (1, steps), "m/s",
                   "target speed at each waypoint (the policy clips it at 0)"),
        TensorSpec("meta_action_logits", "float32", (1, config.n_meta_actions), "logit",
                   "over decision.meta_actions"),
        TensorSpec("reason_logits", "float32", (1, config.n_reasons), "logit",
                   "over decision.reasons (the reason head alone)"),
        TensorSpec("reason", "int64", (1,), "index",
                   "the decided reason in decision.reasons (the refusal rule applied)"),
        TensorSpec("refusal_probability", "float32", (1,), "probability",
                   "that the instruction is unsafe; refused above decision.refusal_threshold"),
        *memory,
    ]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def normalisation(config: DriveVLAConfig) -> dict[str, Any]:
    """What the graph does to its raw inputs, with the constants it bakes in."""
    m = config.model
    return {
        "images": {"resize_to_hw": [m.image_height, m.image_width],
                   "resize": "bilinear, antialias, align_corners=False (torch F.interpolate), "
                             "in the graph as two constant matrices: rows @ image @ cols",
                   "scale": 1.0 / 255.0, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                   "formula": "((x / 255) - mean) / std, per RGB channel"},
        "ego": {"channels": list(EGO_CHANNELS), "divide_by": list(m.ego_scale)},
        "odometry": {name: {"unit": CHANNELS[name].unit, "divide_by": CHANNELS[name].scale,
                            "clip": [_finite_or_none(CHANNELS[name].low),
                                     _finite_or_none(CHANNELS[name].high)]}
                     for name in m.odometry},
        "route": {"divide_by": m.waypoint_scale_m,
                  "used": m.navigation_mode == "target_point"},
    }


def tokenizer_info(config: DriveVLAConfig) -> dict[str, Any]:
    return {"file": "tokenizer.json", "special_tokens": SPECIAL_TOKENS,
            "max_instruction_tokens": config.model.max_instruction_tokens,
            "encoding": f"[<bos>={BOS}] + tokenizer.encode(text).ids, truncated to "
                        f"max_instruction_tokens, padded with <pad>={PAD}; mask 1 per token"}


def decision_info(config: DriveVLAConfig) -> dict[str, Any]:
    return {"future_steps": config.model.future_steps,
            "future_dt_s": config.model.future_dt_s,
            "refusal_threshold": config.inference.refusal_threshold,
            "meta_actions": list(config.vocabularies.meta_actions),
            "reasons": list(config.vocabularies.reasons),
            "refused_index": config.vocabularies.refused_index}
