"""DriveVLA configuration: the single source of truth saved as ``config.json`` beside the
weights (lerobot style). Unknown keys are errors that list the valid ones."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKBONE_FAMILIES = ("default", "idefics3", "qwen2_vl", "qwen2_5_vl")
HEADS = ("gru", "regression")
NAVIGATION_MODES = ("language", "target_point")


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


HEADING_SCALE_RAD = 1.5  # normalisation of the heading-change input
LATERAL_SCALE_M = 3.5  # normalisation of the lateral-offset input: one lane width
LATERAL_CLIP_M = 14.0  # beyond four lanes the offset says only "turned": clipped there
DISTANCE_SCALE_M = 100.0  # normalisation of the distance-travelled input
DISTANCE_CLIP_M = 500.0  # the odometer input saturates there (longer than any route's maneuver)


@dataclass
class DriveVLAConfig:
    """Architecture, inputs, outputs and loss weights of a DriveVLA policy."""

    # "default": timm vision encoder + projector + a causal LM built from ``lm``;
    # otherwise a pretrained VLM family loaded from ``pretrained_path`` (or a tiny config)
    backbone_family: str = "default"
    # timm model name (default family), randomly initialised: we train it on our data
    vision_model: str = "mobilenetv3_small_100"
    pretrained_path: str | None = None  # local directory of a pretrained VLM (no hub access)
    # a tiny config of the pretrained family's real classes (tests, smoke runs): used when
    # pretrained_path is None for a non-default family
    vlm_config: dict[str, Any] = field(default_factory=dict)
    # LoRA (peft) on the pretrained language model: rank 0 = full fine-tuning
    lora_rank: int = 0
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    freeze_vision: bool = False
    lm: dict[str, Any] = field(default_factory=default_lm)
    cameras: tuple[str, ...] = ("front",)
    image_height: int = 96
    image_width: int = 160
    # "language": the instruction is the only navigation input (LangAuto); "target_point":
    # the route target points are given too
    navigation_mode: str = "language"
    use_instruction: bool = True  # False: the ablation without the instruction
    route_targets: int = 5
    n_action_queries: int = 4
    head: str = "gru"
    future_steps: int = 6
    future_dt_s: float = 0.5
    n_meta_actions: int = 8
    n_reasons: int = 15
    max_instruction_tokens: int = 36
    max_explanation_tokens: int = 24
    tokenizer_vocab_size: int = 1024
    # ego-state normalisation: speed m/s, accel m/s^2, yaw rate rad/s, steer
    ego_scale: tuple[float, ...] = (10.0, 3.0, 0.5, 1.0)
    waypoint_scale_m: float = 10.0
    # training only: probability of hiding the ego state from a sample (against the inertia
    # problem: a stopped car that learns "I was stopped, so I stay stopped")
    ego_dropout: float = 0.0
    # False: the model never reads the motion state (speed, accel, yaw rate, steer; zeros in
    # training and at inference, as ego dropout does), so its target speeds come from the
    # scene and cannot copy the current speed. A model trained with ego dropout can be run so.
    motion_state_input: bool = True
    # odometry input: the heading change since the route began (rad, unwrapped; a gyro's
    # reading, no map), appended to the ego state. Lets a memoryless model tell how far it
    # has come round a roundabout or through a turn.
    heading_feature: bool = False
    # odometry input: how far the car has moved over since the route began (m, left +,
    # across its heading then). A memoryless model cannot otherwise tell "change to the left
    # lane" still to do from already done: the instruction stays the same all route.
    lateral_feature: bool = False
    # odometry input: the path length driven since the route began (m, an odometer). The
    # instruction says *where* ("within the next 140 metres, get over to the left"); on a
    # straight motorway nothing in the image does, so without it a memoryless model cannot
    # time a lane change and averages "not yet" with "now" into never.
    distance_feature: bool = False
    # inference only, a robustness probe: metres added to the odometer reading the model sees
    # (how much does it time maneuvers by distance rather than by the camera?); 0: off
    odometer_bias_m: float = 0.0
    # a text-only classifier of the instruction (a bag of words with its own embeddings)
    # decides refusals: what the cameras show cannot make the car refuse a safe instruction
    refusal_head: bool = False
    refusal_threshold: float = 0.5
    refusal_dim: int = 192
    refusal_word_dropout: float = 0.25  # training only: tokens replaced by <unk>
    # inference only: the refusal head also reads each sentence of the instruction alone and
    # refuses when any is over the threshold (the simulator appends event sentences to the
    # navigation phrase, and a mean-pooled bag dilutes one unsafe sentence among safe ones)
    refusal_by_sentence: bool = False
    # inference only: when a refusal is decided, the sentences the refusal head flags are
    # removed from the instruction the action path (LM, intent head) reads: a refused request
    # cannot steer the car; the navigation phrase and safe requests stay
    refusal_gate: bool = False
    # the explanation is generated after an embedding of the decided reason, so the text
    # names the reason the reason head gave (trained on the expert's reason)
    grounded_explanation: bool = False
    # a second text-only bag-of-words classifier (same size and word dropout as the refusal
    # head) names the navigation intent (instructions.NAVIGATION_INTENTS); its probabilities,
    # detached, enter the sequence as one token after the ego state. Trained on the frames'
    # route intents and on texts rendered from every train phrasing, so phrasings never
    # recorded still map to "left" or "second exit" without going through the LM.
    intent_head: bool = False
    # the intent head reads each sentence of the instruction alone (up to the processor's
    # MAX_INTENT_SENTENCES; later ones join the last) and has one more class, "no
    # navigation" (an event's sentence: a hazard notice, a speed or unsafe request); the
    # intent token carries the intents of the sentence least likely to be "no navigation",
    # so an appended event text cannot pull the intent away from the navigation phrase.
    # Frames teach it that at least one sentence names the route's intent; rendered texts
    # label every sentence.
    intent_by_sentence: bool = False
    # training only: this share of the instruction tokens the language model reads become
    # <unk> (the text-only heads have their own dropout)
    instruction_word_dropout: float = 0.0
    # inference only: fuse the trajectories predicted over the last `temporal_ensemble_s`
    # seconds, each carried to the current pose and time, recent ones weighing more (weight
    # halves every `temporal_ensemble_half_life_s`); 0: off (planner/ensemble.py)
    temporal_ensemble_s: float = 0.0
    temporal_ensemble_half_life_s: float = 0.3
    # loss weights
    w_waypoints: float = 1.0
    w_speeds: float = 0.5
    w_meta: float = 0.2
    w_reason: float = 0.2
    w_explanation: float = 0.3
    w_refusal: float = 0.5
    w_intent: float = 0.5
    gradient_checkpointing: bool = False

    @property
    def screens_instruction(self) -> bool:
        """The refusal head reads the instruction sentence by sentence before the action
        pass (``refusal_by_sentence`` or ``refusal_gate``; see ``DriveVLAPolicy``)."""
        return self.refusal_head and (self.refusal_by_sentence or self.refusal_gate)

    def __post_init__(self) -> None:
        checks = (
            ("backbone_family", self.backbone_family, BACKBONE_FAMILIES),
            ("head", self.head, HEADS),
            ("navigation_mode", self.navigation_mode, NAVIGATION_MODES),
        )
        for key, value, valid in checks:
            if value not in valid:
                raise ValueError(f"{key}={value!r}; valid: {list(valid)}")
        if self.image_height < 32 or self.image_width < 32:
            raise ValueError(
                f"image size {self.image_height}x{self.image_width} is too small (min 32x32)"
            )
        if not self.cameras:
            raise ValueError("at least one camera is needed")
        for key in ("refusal_head", "intent_head", "instruction_word_dropout"):
            if getattr(self, key) and self.backbone_family != "default":
                raise ValueError(f"{key} reads our tokenizer's instruction ids: it needs "
                                 f"backbone_family='default', got {self.backbone_family!r}")
        if self.intent_by_sentence and not self.intent_head:
            raise ValueError("intent_by_sentence=true needs intent_head=true")
        if not math.isfinite(self.odometer_bias_m):
            raise ValueError(f"odometer_bias_m={self.odometer_bias_m} must be finite")
        if self.temporal_ensemble_s < 0 or self.temporal_ensemble_half_life_s <= 0:
            raise ValueError(f"temporal_ensemble_s={self.temporal_ensemble_s} must be >= 0 and "
                             f"temporal_ensemble_half_life_s="
                             f"{self.temporal_ensemble_half_life_s} > 0")
        if not 0.0 <= self.instruction_word_dropout < 1.0:
            raise ValueError(f"instruction_word_dropout={self.instruction_word_dropout} must be "
                             "in [0, 1)")
        if not 0.0 <= self.refusal_word_dropout < 1.0 or self.refusal_dim < 1:
            raise ValueError(f"refusal_word_dropout={self.refusal_word_dropout} must be in "
                             f"[0, 1) and refusal_dim={self.refusal_dim} >= 1")
        if not 0.0 < self.refusal_threshold < 1.0:
            raise ValueError(f"refusal_threshold={self.refusal_threshold} must be in (0, 1)")
        if not 0.0 <= self.ego_dropout <= 1.0:
            raise ValueError(f"ego_dropout={self.ego_dropout} must be in [0, 1]")
        self.cameras = tuple(self.cameras)
        self.lora_targets = tuple(self.lora_targets)
        self.ego_scale = tuple(float(x) for x in self.ego_scale)

    @property
    def ego_dim(self) -> int:
        """Width of the ego-state input: speed, accel, yaw rate, steer (+ heading change)
        (+ lateral offset) (+ distance travelled)."""
        return (4 + int(self.heading_feature) + int(self.lateral_feature)
                + int(self.distance_feature))

    @classmethod
    def valid_keys(cls) -> list[str]:
        return sorted(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriveVLAConfig:
        unknown = set(data) - set(cls.valid_keys())
        if unknown:
            raise ValueError(
                f"unknown DriveVLA config key(s) {sorted(unknown)}; valid keys: {cls.valid_keys()}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cameras"] = list(self.cameras)
        d["ego_scale"] = list(self.ego_scale)
        d["lora_targets"] = list(self.lora_targets)
        return d

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> DriveVLAConfig:
        path = Path(directory) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"no config.json in {directory}: not a DriveVLA checkpoint")
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("model_type", None)
        return cls.from_dict(data)

    def with_overrides(self, overrides: dict[str, Any]) -> DriveVLAConfig:
        return DriveVLAConfig.from_dict({**self.to_dict(), **overrides})
