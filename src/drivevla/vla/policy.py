"""``DriveVLAPolicy``: the learned policy under the common contract.

    policy = DriveVLAPolicy.from_pretrained("checkpoints/drivevla-tiny")   # no network
    decision = policy.act(observation)       # one forward pass, no text generation
    text = policy.explain()                  # on demand, from the same forward's KV cache

A checkpoint directory holds ``config.json`` + ``model.safetensors`` + ``tokenizer.json`` +
``processor_config.json``. Loading checks every tensor: missing, unexpected or mismatched
tensors are errors that name them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drivevla.core.errors import InvalidObservationError
from drivevla.core.types import Decision, Observation
from drivevla.vla.configuration_drivevla import CheckpointError, DriveVLAConfig
from drivevla.vla.memory import FrameMemory
from drivevla.vla.modeling_drivevla import LEGACY_TENSOR_PREFIXES, ActionOutput, DriveVLAModel
from drivevla.vla.odometry import OdometryTracker
from drivevla.vla.processor_drivevla import EOS, DriveVLAProcessor

WEIGHTS_NAME = "model.safetensors"
DEFAULT_CHECKPOINT = "drivevla-tiny"  # shipped in drivevla/checkpoints/
# CheckpointError (configuration_drivevla, which raises it for a bad config.json) is
# importable from here too, as before


class ExplanationClock:
    """Explanations on a slower clock than the decisions: every ``explain_every`` ticks
    (0 = only on demand via ``explain()``), the latest one repeated in between."""

    explain_every: int = 0
    _tick: int = 0
    _last_explanation: str | None = None

    def explain(self, obs: Observation | None = None) -> str:
        raise NotImplementedError

    def clocked_explanation(self) -> str | None:
        """This tick's explanation (None when the clock is off); advances the tick."""
        if self.explain_every and self._tick % self.explain_every == 0:
            self._last_explanation = self.explain()
        self._tick += 1
        return self._last_explanation if self.explain_every else None


class DriveVLAPolicy(ExplanationClock):
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
        # the odometry channels the model reads, integrated since the route began
        self._odometry = OdometryTracker(self.config.model.odometry)
        m = self.config.model
        self._memory = (FrameMemory(m.memory_frames, m.memory_stride,
                                    model.backbone.vision_channels) if m.memory_frames else None)
        self._refusals: dict[str, bool] = {}  # instruction text -> refused (refuses())

    # ------------------------------------------------------------------ contract
    def reset(self, privileged: Any | None = None) -> None:  # learned: ignores ground truth
        self._last, self._tick, self._last_explanation = None, 0, None
        self._odometry.reset()
        if self._memory is not None:
            self._memory.reset()

    def shift_odometer(self, bias_m: float) -> None:
        """Add ``bias_m`` metres to every odometer reading from now on (the odometer-shift
        probe, ``--faults policy.odometer_bias_m=M``); a model without the
        ``distance_travelled`` channel reads no odometer and refuses."""
        if "distance_travelled" not in self._odometry.channels:
            raise ValueError(f"{self.name}: the model reads no odometer (its odometry channels "
                             f"are {list(self._odometry.channels)}); the odometer-shift probe "
                             "does not apply")
        self._odometry.odometer_bias_m = float(bias_m)

    @torch.inference_mode()
    def act(self, obs: Observation) -> Decision:
        out = self.action_output(obs, self._odometry.read(obs))
        self._last = out
        self.keep(out)
        meta = int(out.meta_logits[0].argmax())
        return decision_from_outputs(self.config, out.waypoints[0].double().cpu().numpy(),
                                     out.speeds[0].double().cpu().numpy(), meta,
                                     int(out.reason[0]),
                                     self.clocked_explanation())

    def keep(self, out: ActionOutput) -> None:
        """Keep an action pass's camera summary for the memory of the coming ticks (what
        :meth:`act` does after each pass; nothing without a memory)."""
        if self._memory is not None:
            self._memory.keep(out.frame_summary[0])

    @torch.inference_mode()
    def refuses(self, instruction: str) -> bool:
        """Whether the text-only refusal head refuses ``instruction`` (False without one); the
        runtime's instruction gate asks before the action path sees the text. Cached per text
        (most ticks repeat it)."""
        if self.model.safety_head is None:
            return False

        def probability() -> float:
            batch = self._on_model_device(self.processor.encode_instructions([instruction]))
            return float(torch.sigmoid(self.model.safety_head.logit(batch).float())[0])

        return cached_refusal(self._refusals, instruction, probability,
                              float(self.config.inference.refusal_threshold))

    def _on_model_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch``'s tensors on the model's device (unchanged on the CPU)."""
        device = next(self.model.parameters()).device
        if device.type == "cpu":
            return batch
        return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def to(self, device: str | torch.device) -> DriveVLAPolicy:
        """The model on ``device`` (e.g. ``"cuda"``); inputs follow it, decisions come back
        to the CPU."""
        self.model.to(device)
        return self

    @torch.inference_mode()
    def action_output(self, obs: Observation, odometry: dict[str, float]) -> ActionOutput:
        """The action pass on one observation (with its KV cache, for explanations);
        ``odometry``: the readings of the model's channels at ``obs``."""
        batch = self.processor.from_observations([obs], [odometry])
        check_finite_inputs(batch, obs)
        if self._memory is not None:  # what act() kept of the earlier ticks
            batch |= self._memory.inputs()
        return self.model.act(self._on_model_device(batch), use_cache=True)

    @torch.inference_mode()
    def explain(self, obs: Observation | None = None) -> str:
        """The explanation of the latest decision (or of ``obs``, acting on it first).

        Generation continues from a copy of the action pass's KV cache: it never changes
        the decision already returned."""
        if obs is not None:
            self.act(obs)
        if self._last is None:
            raise RuntimeError("explain() needs an observation first (call act or pass obs)")
        return self.explain_output(self._last)

    @torch.inference_mode()
    def explanation_tokens(self) -> Iterator[int]:
        """The latest decision's explanation token id by token id, as they are generated
        (``<eos>`` not included): a stream for a display, and what times the first token;
        :meth:`explain` is their text."""
        if self._last is None:
            raise RuntimeError("explanation_tokens() needs an act() first")
        for step in self.model.stream_explanation(self._last):
            if int(step[0]) == EOS:
                return
            yield int(step[0])

    @torch.inference_mode()
    def explain_output(self, out: ActionOutput) -> str:
        """The explanation text generated from an :meth:`action_output`'s KV cache."""
        return self.processor.decode(self.model.generate_explanation(out)[0])

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
        if lm_head in state and self.config.model.lm.get("tie_word_embeddings", False):
            state.pop(lm_head)
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", **{
            k: json.dumps(v) for k, v in (extra or {}).items()}})

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> DriveVLAPolicy:
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"checkpoint directory {str(directory)!r} does not exist")
        config = DriveVLAConfig.load(directory)
        processor = DriveVLAProcessor.load(directory, config)
        weights = directory / WEIGHTS_NAME
        state = load_weights(weights)
        model = DriveVLAModel(config, processor.vocab_size)
        load_state_checked(model, upgrade_state_dict(state), str(weights))
        return cls(model, processor, **kwargs)


REFUSAL_CACHE_TEXTS = 256  # instruction texts a policy remembers its refusal of


def cached_refusal(cache: dict[str, bool], instruction: str, probability: Callable[[], float],
                   threshold: float) -> bool:
    """Whether ``instruction`` is refused: from ``cache``, else ``probability()`` (the refusal
    head's) over ``threshold``, remembered (the cache starts over past
    :data:`REFUSAL_CACHE_TEXTS` texts). Shared by every policy with ``refuses``."""
    refused = cache.get(instruction)
    if refused is None:
        refused = probability() > threshold
        if len(cache) >= REFUSAL_CACHE_TEXTS:
            cache.clear()
        cache[instruction] = refused
    return refused


def check_finite_inputs(inputs: dict[str, Any], obs: Observation) -> None:
    """Raise :class:`InvalidObservationError` naming the floating-point inputs that hold NaN
    or inf (NaN in, NaN out: refuse by name instead of a decision from garbage)."""
    bad = sorted(k for k, v in inputs.items() if torch.is_tensor(v) and v.is_floating_point()
                 and not bool(torch.isfinite(v).all()))
    if bad:
        raise InvalidObservationError(
            f"observation at t={obs.timestamp_s!r} s: model input(s) {bad} are not finite "
            f"(ego {obs.ego}; target points {obs.route.target_points.tolist()})")


def decision_from_outputs(config: DriveVLAConfig, waypoints: np.ndarray, speeds: np.ndarray,
                          meta_index: int, reason_index: int,
                          explanation: str | None = None) -> Decision:
    """The :class:`Decision` of one tick's action outputs: ``waypoints`` (T, 2) m in the ego
    frame, ``speeds`` (T,) m/s (clipped at 0), the meta-action's arg-max and the decided
    reason's index in the checkpoint's own vocabularies."""
    wps = np.asarray(waypoints, dtype=np.float64)
    speeds = np.clip(np.asarray(speeds, dtype=np.float64), 0.0, None)
    if not (np.isfinite(wps).all() and np.isfinite(speeds).all()):
        raise FloatingPointError("the model produced NaN/inf waypoints or speeds")
    vocab = config.vocabularies
    return Decision(wps, speeds, dt_s=config.model.future_dt_s,
                    meta_action=vocab.meta_action_of(meta_index), explanation=explanation,
                    reason=vocab.reason_of(reason_index).value)


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``model.safetensors``; a missing or unreadable file raises
    :class:`CheckpointError` naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc


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


def upgrade_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the tensor names of earlier checkpoints renamed to today's
    (``LEGACY_TENSOR_PREFIXES``: the same tensors, so the same outputs)."""
    out = {}
    for key, value in state.items():
        for old, new in LEGACY_TENSOR_PREFIXES.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


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
