"""``DriveVLAPolicy``: the learned policy under the common contract.

    policy = DriveVLAPolicy.from_pretrained("checkpoints/drivevla-tiny")   # no network
    decision = policy.act(observation)       # one forward pass, no text generation
    text = policy.explain()                  # on demand, from the same forward's KV cache

A checkpoint directory holds ``config.json`` + ``model.safetensors`` + ``tokenizer.json`` +
``processor_config.json``. Loading checks every tensor: missing, unexpected or mismatched
tensors are errors that name them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drivevla.core.frames import lateral_offset, wrap_angle
from drivevla.core.types import Decision, MetaAction, Observation
from drivevla.language.reasons import Reason
from drivevla.planner.ensemble import TemporalEnsemble
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import ActionOutput, DriveVLAModel
from drivevla.vla.processor_drivevla import DriveVLAProcessor, split_sentences

WEIGHTS_NAME = "model.safetensors"
DEFAULT_CHECKPOINT = "drivevla-tiny"  # shipped in drivevla/checkpoints/
_META = list(MetaAction)
_REASONS = list(Reason)

@dataclass(frozen=True)
class InstructionScreen:
    """The refusal head's reading of one instruction, whole and sentence by sentence."""

    refused: bool
    probability: float  # the deciding refusal probability (whole text, or its worst sentence)
    kept: str  # the text the action path reads (flagged sentences removed when gated)
    sentences: tuple[str, ...]
    sentence_probabilities: tuple[float, ...]


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (missing files, missing or mismatched tensors)."""


class DriveVLAPolicy:
    """Processor + model; ``act`` returns a :class:`Decision` (ego frame, 0.5 s steps)."""

    def __init__(self, model: DriveVLAModel, processor: DriveVLAProcessor,
                 name: str = "drivevla", explain_every: int = 0) -> None:
        self.model = model.eval()
        self.processor = processor
        self.config = model.config
        self.name = name
        # explanations on a slower clock: 0 = only on demand via explain()
        self.explain_every = explain_every
        self._last: ActionOutput | None = None
        self._tick = 0
        self._last_explanation: str | None = None
        self._yaw_last: float | None = None  # odometry: heading at the last tick
        self._heading_change = 0.0  # unwrapped, since the route began
        self._start_pose: tuple[float, float, float] | None = None  # x, y, yaw at the start
        self._xy_last: tuple[float, float] | None = None  # odometer: position at the last tick
        self._distance = 0.0  # path length since the route began
        self._ensemble = (
            TemporalEnsemble(self.config.temporal_ensemble_s,
                             self.config.temporal_ensemble_half_life_s, self.config.future_dt_s)
            if self.config.temporal_ensemble_s > 0 else None)

    # ------------------------------------------------------------------ contract
    def reset(self, env: Any | None = None) -> None:
        self._last, self._tick, self._last_explanation = None, 0, None
        self._yaw_last, self._heading_change, self._start_pose = None, 0.0, None
        self._xy_last, self._distance = None, 0.0
        if self._ensemble is not None:
            self._ensemble.reset()

    def _track_heading(self, obs: Observation) -> float:
        """The heading change since the first observation after ``reset`` (a gyro's
        integral: unwrapped tick to tick, so a full circle reads 2 pi). Acting twice on the
        same observation adds nothing."""
        yaw = float(obs.ego.yaw)
        if not math.isfinite(yaw):
            raise ValueError(f"ego yaw is {yaw}: the heading change cannot be tracked")
        if self._yaw_last is not None:
            self._heading_change += wrap_angle(yaw - self._yaw_last)
        self._yaw_last = yaw
        return self._heading_change

    def _track_lateral(self, obs: Observation) -> float:
        """How far the ego has moved over (m, left +) since the first observation after
        ``reset``, across the heading it had then."""
        ego = obs.ego
        pose = (float(ego.x), float(ego.y), float(ego.yaw))
        if not all(math.isfinite(v) for v in pose):
            raise ValueError(f"ego pose is {pose}: the lateral offset cannot be tracked")
        if self._start_pose is None:
            self._start_pose = pose
        return float(lateral_offset(pose[0], pose[1], *self._start_pose))

    def _track_distance(self, obs: Observation) -> float:
        """Path length (m) driven since the first observation after ``reset``, summed tick to
        tick (an odometer), plus the config's ``odometer_bias_m`` (a test-time probe). Acting
        twice on the same observation adds nothing."""
        xy = (float(obs.ego.x), float(obs.ego.y))
        if not all(math.isfinite(v) for v in xy):
            raise ValueError(f"ego position is {xy}: the distance travelled cannot be tracked")
        if self._xy_last is not None:
            self._distance += math.hypot(xy[0] - self._xy_last[0], xy[1] - self._xy_last[1])
        self._xy_last = xy
        return self._distance + self.config.odometer_bias_m

    @torch.inference_mode()
    def screen_instruction(self, text: str) -> InstructionScreen:
        """The refusal head on ``text`` and, with ``refusal_by_sentence`` or
        ``refusal_gate``, on each of its sentences; see those config keys."""
        cfg = self.config
        if not cfg.refusal_head:
            raise ValueError("screen_instruction needs a checkpoint with refusal_head=true")
        sentences = split_sentences(text)
        texts = [text, *sentences] if len(sentences) > 1 else [text]
        logits = self.model._refusal_logit(self.processor.encode_instructions(texts))
        probs = torch.sigmoid(logits.float()).tolist()
        whole, per = probs[0], (probs[1:] or probs[:1])
        deciding = max(whole, *per) if cfg.refusal_by_sentence else whole
        refused = deciding > cfg.refusal_threshold
        kept = text
        if refused and cfg.refusal_gate and len(sentences) > 1:
            rest = [s for s, p in zip(sentences, per, strict=True) if p <= cfg.refusal_threshold]
            if rest:  # never leave the action path without an instruction
                kept = " ".join(rest)
        return InstructionScreen(refused, float(deciding), kept, tuple(sentences or [text]),
                                 tuple(float(p) for p in per))

    @torch.inference_mode()
    def act(self, obs: Observation) -> Decision:
        heading = [self._track_heading(obs)] if self.config.heading_feature else None
        lateral = [self._track_lateral(obs)] if self.config.lateral_feature else None
        distance = [self._track_distance(obs)] if self.config.distance_feature else None
        screen = None
        if self.config.screens_instruction:
            self.processor.validate(obs)  # bad input is named before it is read
            screen = self.screen_instruction(obs.instruction)
            if screen.kept != obs.instruction:
                obs = dataclasses.replace(obs, instruction=screen.kept)
        batch = self.processor.from_observations([obs], heading, lateral, distance)
        out = self.model.act(batch, use_cache=True)
        if screen is not None:  # the screen's decision, not the kept text's, is the refusal
            p = min(max(screen.probability, 1e-6), 1 - 1e-6)
            logit = torch.full_like(out.refusal_logit, math.log(p / (1 - p)))
            out = dataclasses.replace(out, refusal_logit=logit,
                                      reason=self.model.decide_reason(out.reason_logits, logit))
        self._last = out
        wps = out.waypoints[0].double().numpy()
        speeds = np.clip(out.speeds[0].double().numpy(), 0.0, None)
        if not (np.isfinite(wps).all() and np.isfinite(speeds).all()):
            raise FloatingPointError("the model produced NaN/inf waypoints or speeds")
        if self._ensemble is not None:
            wps, speeds = self._ensemble(float(obs.timestamp_s), obs.ego, wps, speeds)
        meta = _META[int(out.meta_logits[0].argmax())]
        reason = _REASONS[int(out.reason[0])]
        explanation = None
        if self.explain_every and self._tick % self.explain_every == 0:
            self._last_explanation = self.explain()
        if self.explain_every:
            explanation = self._last_explanation
        self._tick += 1
        return Decision(wps, speeds, dt_s=self.config.future_dt_s, meta_action=meta,
                        explanation=explanation, reason=reason.value)

    @torch.inference_mode()
    def explain(self, obs: Observation | None = None) -> str:
        """The explanation of the latest decision (or of ``obs``, acting on it first).

        Generation continues from a copy of the action pass's KV cache: it never changes
        the decision already returned."""
        if obs is not None:
            self.act(obs)
        if self._last is None:
            raise RuntimeError("explain() needs an observation first (call act or pass obs)")
        ids = self.model.generate_explanation(self._last)
        return self.processor.decode(ids[0])

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | Path, extra: dict[str, Any] | None = None) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory)
        self.processor.save(directory)
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        # tied embeddings share storage: safetensors stores a tensor once
        lm_head = "backbone.lm.lm_head.weight"
        if lm_head in state and self.config.lm.get("tie_word_embeddings", False):
            state.pop(lm_head)
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", **{
            k: json.dumps(v) for k, v in (extra or {}).items()}})

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> DriveVLAPolicy:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"checkpoint directory {str(directory)!r} does not exist")
        config = DriveVLAConfig.load(directory)
        processor = DriveVLAProcessor.load(directory, config)
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            raise CheckpointError(f"{weights} is missing")
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{weights} is not a readable safetensors file: {exc}") from exc
        model = DriveVLAModel(config, processor.vocab_size)
        load_state_checked(model, state, str(weights))
        return cls(model, processor, **kwargs)


def default_checkpoint_dir() -> Path:
    """Directory of drivevla-tiny inside the installed package."""
    from importlib import resources

    return Path(str(resources.files("drivevla") / "checkpoints" / DEFAULT_CHECKPOINT))


def load_default_policy(**kwargs: Any) -> DriveVLAPolicy:
    path = default_checkpoint_dir()
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"the default model is missing from the package ({path}); reinstall drivevla or "
            "pass a checkpoint directory"
        )
    policy = DriveVLAPolicy.from_pretrained(path, **kwargs)
    policy.name = DEFAULT_CHECKPOINT
    return policy


def load_state_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str
                       ) -> None:
    """Load ``state`` into ``model``; any missing, unexpected or mis-shaped tensor is an error."""
    expected = model.state_dict()
    tied = {k for k in expected if k.endswith("lm_head.weight")}
    missing = sorted(k for k in expected if k not in state and k not in tied)
    unexpected = sorted(k for k in state if k not in expected)
    mismatched = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model "
                        f"{tuple(expected[k].shape)}"
                        for k in state if k in expected and state[k].shape != expected[k].shape)
    problems = []
    if missing:
        problems.append(f"missing tensors {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:8]}")
    if mismatched:
        problems.append(f"mismatched shapes {mismatched[:8]}")
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(problems))
    model.load_state_dict(state, strict=False)
    if hasattr(model, "backbone") and hasattr(model.backbone, "lm"):
        model.backbone.lm.tie_weights()
