"""DriveVLA configuration: the single source of truth saved as ``config.json`` beside the
weights (lerobot style), in four sections:

- ``model``: architecture and inputs (what the weights mean; changing one changes tensors);
- ``inference``: how decisions are read from the outputs (no tensor depends on them);
- ``loss``: training only, loss weights and dropouts (inference never reads them);
- ``vocabularies``: the label lists the heads index (see :mod:`drivevla.vla.vocabularies`).

Options are modules chosen by name (``model.head``, ``model.refusal_head``,
``model.intent_head``, ``model.explanation``, the ``model.odometry`` channels), not booleans.
Unknown keys are errors that list the valid ones. The flat ``config.json`` of earlier
checkpoints (every key at the top level) still loads: :data:`LEGACY_KEYS` maps its keys into
the sections, and options removed since (docs/experiments/removed-options.md) are accepted
at their "off" value only. Overrides (``--set``) take the dotted form ``loss.w_intent=0.3``
or an old flat name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivevla.core.errors import DriveVLAError, read_json
from drivevla.core.types import CameraSpec
from drivevla.language.sentence_encoder import WEIGHTS_SHA256 as MINILM_SHA256
from drivevla.vla.odometry import check_channels
from drivevla.vla.vocabularies import Vocabularies

CONFIG_VERSION = 2


class CheckpointError(DriveVLAError, ValueError):
    """A checkpoint that cannot be loaded (missing or malformed files, missing or mismatched
    tensors); the message names the file."""

BACKBONE_FAMILIES = ("default", "idefics3", "qwen2_vl", "qwen2_5_vl")
HEADS = ("gru", "regression")  # vla/heads/action.py
REFUSAL_HEADS = (None, "bag")  # vla/heads/refusal.py
INTENT_HEADS = (None, "bag", "by_sentence")  # vla/heads/intent.py
EXPLANATIONS = ("free", "grounded")  # vla/heads/explanation.py
NAVIGATION_MODES = ("language", "target_point")
INSTRUCTION_ENCODERS = (None, "minilm")  # vla/instruction_encoder.py


def default_lm() -> dict[str, Any]:
    """A small Llama-architecture decoder, trained from scratch by us (transformers config)."""
    return {
        "hidden_size": 192,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 512,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    }


@dataclass
class ModelConfig:
    """Architecture and inputs."""

    # "default": timm vision encoder + projector + a causal LM built from ``lm``;
    # otherwise a pretrained VLM family loaded from ``pretrained_path`` (or a tiny config)
    backbone_family: str = "default"
    vision_model: str = "mobilenetv3_small_100"  # timm name (default family), random init
    pretrained_path: str | None = None  # local directory of a pretrained VLM (no hub access)
    # a tiny config of the pretrained family's real classes (tests, smoke runs), used when
    # pretrained_path is None for a non-default family
    vlm_config: dict[str, Any] = field(default_factory=dict)
    lora_rank: int = 0  # LoRA (peft) on the pretrained LM; 0 = full fine-tuning
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    freeze_vision: bool = False
    gradient_checkpointing: bool = False
    lm: dict[str, Any] = field(default_factory=default_lm)
    cameras: tuple[str, ...] = ("front",)
    # the cameras' mounts and resolutions (CameraSpec dicts, in ``cameras`` order), written by
    # training from its dataset so that evaluation, DAgger and the CARLA agent render the rig
    # the weights learned; () (checkpoints before 2026-12-07): the simulator's default mount
    camera_rig: tuple[dict[str, Any], ...] = ()
    image_height: int = 96
    image_width: int = 160
    # "language": the instruction is the only navigation input (LangAuto); "target_point":
    # the route target points are given too
    navigation_mode: str = "language"
    use_instruction: bool = True  # False: the ablation without the instruction
    route_targets: int = 5
    # odometry channels appended to the ego state (vla/odometry.py: heading_change,
    # lateral_offset, distance_travelled), kept in that order
    odometry: tuple[str, ...] = ()
    n_action_queries: int = 4
    head: str = "gru"  # the action decoder
    future_steps: int = 6
    future_dt_s: float = 0.5
    max_instruction_tokens: int = 36
    max_explanation_tokens: int = 24
    tokenizer_vocab_size: int = 1024
    # ego-state normalisation: speed m/s, accel m/s^2, yaw rate rad/s, steer
    ego_scale: tuple[float, ...] = (10.0, 3.0, 0.5, 1.0)
    waypoint_scale_m: float = 10.0
    # "bag": a text-only classifier of the instruction decides refusals, so what the cameras
    # show cannot make the car refuse a safe instruction
    refusal_head: str | None = None
    # "bag": a text-only classifier names the navigation intent, its probabilities enter the
    # sequence as one token; "by_sentence": it reads each sentence alone with a "no
    # navigation" class and the token carries the most navigational sentence's intents
    intent_head: str | None = None
    text_head_dim: int = 192  # embedding width of the text-only heads
    # None: the instruction is read through embeddings learned from scratch (our tokenizer);
    # "minilm": through the frozen token states of the pretrained all-MiniLM-L6-v2 (its own
    # tokenizer), for the language model and the text heads alike; its weights are checked
    # against the hash (vla/instruction_encoder.py)
    instruction_encoder: str | None = None
    instruction_encoder_sha256: str = MINILM_SHA256
    # memory: the camera features of ``memory_frames`` earlier frames, ``memory_stride``
    # control ticks apart, enter the sequence as one token each (0: none); the policy keeps
    # each tick's features, so a tick still runs the camera encoder once
    memory_frames: int = 0
    memory_stride: int = 5
    # "grounded": the explanation is generated after an embedding of the decided reason
    explanation: str = "free"
    # training-only auxiliary heads on the prefix (BEV raster, governing signal, lead object;
    # vla/heads/perception.py): they need a schema 2 dataset's perception targets
    perception_heads: bool = False

    def __post_init__(self) -> None:
        checks = (("backbone_family", self.backbone_family, BACKBONE_FAMILIES),
                  ("head", self.head, HEADS), ("navigation_mode", self.navigation_mode,
                                               NAVIGATION_MODES),
                  ("refusal_head", self.refusal_head, REFUSAL_HEADS),
                  ("intent_head", self.intent_head, INTENT_HEADS),
                  ("explanation", self.explanation, EXPLANATIONS),
                  ("instruction_encoder", self.instruction_encoder, INSTRUCTION_ENCODERS))
        for key, value, valid in checks:
            if value not in valid:
                raise ValueError(f"model.{key}={value!r}; valid: {list(valid)}")
        if self.image_height < 32 or self.image_width < 32:
            raise ValueError(
                f"image size {self.image_height}x{self.image_width} is too small (min 32x32)")
        if not self.cameras:
            raise ValueError("at least one camera is needed")
        if self.memory_frames < 0 or self.memory_stride < 1:
            raise ValueError(f"memory_frames={self.memory_frames} must be >= 0 and "
                             f"memory_stride={self.memory_stride} >= 1")
        for key in ("refusal_head", "intent_head", "instruction_encoder", "memory_frames"):
            if getattr(self, key) and self.backbone_family != "default":
                raise ValueError(f"{key} reads our processor's inputs: it needs "
                                 f"backbone_family='default', got {self.backbone_family!r}")
        if self.text_head_dim < 1:
            raise ValueError(f"text_head_dim={self.text_head_dim} must be >= 1")
        self.odometry = check_channels(tuple(self.odometry))
        self.cameras = tuple(self.cameras)
        self.camera_rig = tuple(dict(c) for c in self.camera_rig)
        if self.camera_rig:
            names = tuple(spec.name for spec in self.camera_specs())
            if names != self.cameras:
                raise ValueError(f"camera_rig names {list(names)} must be the cameras "
                                 f"{list(self.cameras)}, in that order")
        self.lora_targets = tuple(self.lora_targets)
        self.ego_scale = tuple(float(x) for x in self.ego_scale)

    def camera_specs(self) -> tuple[CameraSpec, ...]:
        """The rig: ``camera_rig``'s specs, else each camera at the default mount."""
        if not self.camera_rig:
            return tuple(CameraSpec(name=name) for name in self.cameras)
        try:
            return tuple(CameraSpec.from_dict(dict(c)) for c in self.camera_rig)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model.camera_rig: {exc}") from None

    @property
    def ego_dim(self) -> int:
        """Width of the ego input: speed, accel, yaw rate, steer + the odometry channels."""
        return 4 + len(self.odometry)


@dataclass
class InferenceConfig:
    """How decisions are read from the outputs."""

    refusal_threshold: float = 0.5  # refuse when the refusal head's probability is above

    def __post_init__(self) -> None:
        if not 0.0 < self.refusal_threshold < 1.0:
            raise ValueError(f"refusal_threshold={self.refusal_threshold} must be in (0, 1)")


@dataclass
class LossConfig:
    """Training only: loss weights and input dropouts."""

    w_waypoints: float = 1.0
    w_speeds: float = 0.5
    w_meta: float = 0.2
    w_reason: float = 0.2
    w_explanation: float = 0.3
    w_refusal: float = 0.5
    w_intent: float = 0.5
    # the perception heads' losses (model.perception_heads)
    w_bev: float = 1.0
    w_signal: float = 0.5
    w_lead: float = 0.5
    # probability of hiding the motion state (speed, accel, yaw rate, steer) from a sample,
    # against the inertia problem ("I was stopped, so I stay stopped"); odometry stays
    ego_dropout: float = 0.0
    # share of the instruction tokens the language model reads that become <unk>
    instruction_word_dropout: float = 0.0
    # share of the tokens the text-only heads read that become <unk>
    text_word_dropout: float = 0.25

    def __post_init__(self) -> None:
        for key in ("instruction_word_dropout", "text_word_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"{key}={getattr(self, key)} must be in [0, 1)")
        if not 0.0 <= self.ego_dropout <= 1.0:
            raise ValueError(f"ego_dropout={self.ego_dropout} must be in [0, 1]")


SECTIONS: dict[str, type] = {"model": ModelConfig, "inference": InferenceConfig,
                             "loss": LossConfig, "vocabularies": Vocabularies}

# flat key of a config.json before the sections -> (section, key)
LEGACY_KEYS: dict[str, tuple[str, str]] = {
    **{f.name: ("model", f.name) for f in dataclasses.fields(ModelConfig)
       if f.name not in ("odometry", "explanation", "text_head_dim")},
    **{f.name: ("loss", f.name) for f in dataclasses.fields(LossConfig)
       if f.name != "text_word_dropout"},
    "refusal_dim": ("model", "text_head_dim"),
    "refusal_word_dropout": ("loss", "text_word_dropout"),
    "refusal_threshold": ("inference", "refusal_threshold"),
}
# flat boolean -> odometry channel
LEGACY_ODOMETRY = {"heading_feature": "heading_change", "lateral_feature": "lateral_offset",
                   "distance_feature": "distance_travelled"}
# removed options (docs/experiments/removed-options.md): accepted at their "off" value only
REMOVED = {"odometer_bias_m": 0.0, "refusal_by_sentence": False, "refusal_gate": False,
           "temporal_ensemble_s": 0.0, "temporal_ensemble_half_life_s": None,
           "motion_state_input": True}
# flat counts now taken from the saved vocabularies' lengths
LEGACY_COUNTS = {"n_meta_actions": "meta_actions", "n_reasons": "reasons"}


def _valid_keys() -> list[str]:
    return sorted(f"{sec}.{f.name}" for sec, cls in SECTIONS.items()
                  for f in dataclasses.fields(cls))


def _unknown(keys: list[str]) -> ValueError:
    return ValueError(f"unknown DriveVLA config key(s) {sorted(keys)}; valid keys: "
                      f"{_valid_keys()} (the flat names of older config.json files are "
                      "accepted too)")


def _sectioned(data: dict[str, Any], base: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """``base`` (sectioned) updated with ``data``: sections, dotted keys or flat legacy keys."""
    out = {sec: dict(base.get(sec, {})) for sec in SECTIONS}
    flags: dict[str, Any] = {}
    unknown = []
    for key, value in data.items():
        if key in ("model_type", "config_version"):
            continue
        if key in SECTIONS and isinstance(value, dict):
            out[key].update(value)
        elif "." in key and key.split(".", 1)[0] in SECTIONS:
            sec, sub = key.split(".", 1)
            out[sec][sub] = value
        elif key in LEGACY_KEYS:
            sec, sub = LEGACY_KEYS[key]
            out[sec][sub] = value
        elif key in LEGACY_ODOMETRY or key in LEGACY_COUNTS or key in REMOVED or key in (
                "intent_by_sentence", "grounded_explanation"):
            flags[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise _unknown(unknown)
    _apply_legacy_flags(flags, out)
    return out


def _apply_legacy_flags(flags: dict[str, Any], out: dict[str, dict]) -> None:
    """Old flat booleans and counts mapped onto the sections (``out`` changed in place)."""
    model = out["model"]
    for key in ("refusal_head", "intent_head"):  # old booleans: true means the bag head
        if isinstance(model.get(key), bool):
            model[key] = "bag" if model[key] else None
    if "intent_by_sentence" in flags:
        by_sentence = bool(flags["intent_by_sentence"])
        if by_sentence and not model.get("intent_head"):
            raise ValueError("intent_by_sentence=true needs intent_head=true")
        if model.get("intent_head"):
            model["intent_head"] = "by_sentence" if by_sentence else "bag"
    if "grounded_explanation" in flags:
        model["explanation"] = "grounded" if flags["grounded_explanation"] else "free"
    if any(key in flags for key in LEGACY_ODOMETRY):
        odometry = list(model.get("odometry", ()))
        for key, channel in LEGACY_ODOMETRY.items():
            if key in flags:
                odometry = [c for c in odometry if c != channel] + [channel] * bool(flags[key])
        model["odometry"] = odometry  # ModelConfig checks the names and orders them
    for key, off in REMOVED.items():
        if key in flags and off is not None and flags[key] != off:
            raise ValueError(f"{key}={flags[key]!r}: this option was removed (see "
                             "docs/experiments/removed-options.md); only its off value "
                             f"{off!r} is accepted")
    for key, vocab in LEGACY_COUNTS.items():
        if key in flags:
            names = out["vocabularies"].get(vocab) or Vocabularies().to_dict()[vocab]
            if int(flags[key]) != len(names):
                raise ValueError(f"{key}={flags[key]} does not match the {len(names)} "
                                 f"{vocab} of the vocabulary {list(names)}")


@dataclass
class DriveVLAConfig:
    """Architecture, decision rules, losses and label vocabularies of a DriveVLA policy."""

    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    vocabularies: Vocabularies = field(default_factory=Vocabularies)

    @property
    def n_meta_actions(self) -> int:
        return len(self.vocabularies.meta_actions)

    @property
    def n_reasons(self) -> int:
        return len(self.vocabularies.reasons)

    @property
    def n_intents(self) -> int:
        return len(self.vocabularies.navigation_intents)

    @classmethod
    def valid_keys(cls) -> list[str]:
        """Every key as ``section.name`` (the form ``--set`` and ``with_overrides`` take)."""
        return _valid_keys()

    @classmethod
    def _build(cls, sections: dict[str, dict[str, Any]]) -> DriveVLAConfig:
        parts = {}
        for sec, section_cls in SECTIONS.items():
            valid = {f.name for f in dataclasses.fields(section_cls)}
            unknown = sorted(f"{sec}.{k}" for k in set(sections[sec]) - valid)
            if unknown:
                raise _unknown(unknown)
            parts[sec] = (section_cls.from_dict(sections[sec]) if sec == "vocabularies"
                          else section_cls(**sections[sec]))
        return cls(**parts)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriveVLAConfig:
        """From a sectioned dict (``to_dict``), dotted keys or an older flat dict."""
        return cls._build(_sectioned(data, {}))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"config_version": CONFIG_VERSION}
        for sec in SECTIONS:
            part = getattr(self, sec)
            out[sec] = json.loads(json.dumps(
                part.to_dict() if sec == "vocabularies" else dataclasses.asdict(part)))
        return out

    def flat(self) -> dict[str, Any]:
        """Every value under its dotted key (for diffs and logs)."""
        d = self.to_dict()
        return {f"{sec}.{k}": v for sec in SECTIONS for k, v in d[sec].items()}

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> DriveVLAConfig:
        """The checkpoint's config; an older one without saved vocabularies gets today's lists
        (those it was trained with); saved names the code no longer has are an error."""
        path = Path(directory) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"no config.json in {directory}: not a DriveVLA checkpoint")
        data = read_json(path)
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
        try:
            config = cls.from_dict(data)
        except ValueError as exc:  # an unknown key or a bad value: the message names it
            raise CheckpointError(f"{path}: {exc}") from exc
        except (TypeError, AttributeError) as exc:  # a value of the wrong type
            raise CheckpointError(f"{path}: {type(exc).__name__}: {exc}") from exc
        config.vocabularies.check_against_code(str(path))
        return config

    def with_overrides(self, overrides: dict[str, Any]) -> DriveVLAConfig:
        base = {sec: v for sec, v in self.to_dict().items() if sec in SECTIONS}
        return DriveVLAConfig._build(_sectioned(overrides, base))
