"""How to train DriveVLA: :class:`TrainConfig` (the model itself is described by
:class:`drivevla.vla.configuration_drivevla.DriveVLAConfig`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    """How to train (the model itself is described by :class:`DriveVLAConfig`)."""

    data: tuple[str, ...] = ()
    out: str = "runs/train"
    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16" (GPU)
    balance_reasons: float = 0.5  # 0: uniform sampling over frames
    # against the copycat / inertia failure (a policy that keeps its current speed because
    # the expert's next speed is almost always its current one): frames where the expert's
    # speed 1.5 s ahead differs from the current speed by SPEED_CHANGE_FULL_MPS or more are
    # drawn (1 + keyframe_weight) times as often, smaller changes proportionally. 0: off.
    keyframe_weight: float = 0.0
    # models with a refusal or intent head: each step also trains them on this many texts
    # drawn from a pool of `refusal_text_pool` instructions rendered from the *train*
    # phrasings (instructions.synthetic_instruction_records), so they see every phrasing, not
    # only those that occurred in the recorded episodes. 0: off.
    refusal_text_batch: int = 64
    refusal_text_pool: int = 20000
    # share of those texts whose event follows a second, safe one (speed request or notice),
    # as the simulator composes overlapping events (stacked_share of
    # synthetic_instruction_records). 0: one event per text.
    refusal_text_stacked_share: float = 0.0
    # recovery examples: a share `pose_aug_prob` of the frames is shown as if the ego stood up
    # to `pose_aug_lateral_m` to the side and `pose_aug_yaw_deg` turned (image warped through
    # the ground plane, targets re-expressed in the perturbed frame so they lead back to the
    # recorded path; see perception.augment). 0: off.
    pose_aug_prob: float = 0.0
    pose_aug_lateral_m: float = 0.6
    pose_aug_yaw_deg: float = 4.0
    log_every: int = 25
    save_every: int = 500
    keep_checkpoints: int = 2
    val_frames: int = 2048  # validation frames evaluated at the end (0: none)
    cache_dir: str | None = None  # None: DIR/cache of each dataset (if writable)
    # leave out corrupt shards, frames and lines of meta/episodes.jsonl instead of failing;
    # what was left out is logged and listed in train_info.json (data.skipped_as_corrupt)
    skip_corrupt: bool = False
    # DAgger
    dagger: int = 0
    dagger_steps: int = 1000
    dagger_episodes: int = 40
    dagger_beta: float = 0.3  # expert share of the applied controls while collecting
    dagger_suite: str = "train"
    dagger_workers: int = 2
    # from round 2 on, this share of a round's routes is drawn towards the scenario families
    # the policy drove worst in the round before (family weight: 1 - its mean driving score /
    # 100, from that round's route results); the rest uniformly. 0: every round uniform.
    dagger_focus: float = 0.0
    # cap on the steps of a DAgger episode: a policy stuck at a junction otherwise fills the
    # data with thousands of near-identical frames until the route times out (measured: 21 of
    # 204 episodes held 56 % of the frames without a cap)
    dagger_max_steps: int = 600
    threads: int = 0  # torch CPU threads (0: torch's default)
    progress: bool = True
    model: dict[str, Any] = field(default_factory=dict)  # DriveVLAConfig overrides

    def __post_init__(self) -> None:
        self.data = tuple(str(d) for d in self.data)
        if not self.data:
            raise ValueError("no training data: pass --data DIR (a drivevla dataset)")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision={self.mixed_precision!r}; valid: no, bf16, fp16")
        for name in ("steps", "batch_size", "log_every", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if (self.dagger < 0 or self.dagger_steps < 1 or self.dagger_episodes < 1
                or self.dagger_max_steps < 1):
            raise ValueError("dagger rounds must be >= 0, dagger_steps, _episodes and "
                             "_max_steps >= 1")
        if self.refusal_text_batch < 0 or self.refusal_text_pool < 1:
            raise ValueError("refusal_text_batch must be >= 0 and refusal_text_pool >= 1")
        if not 0.0 <= self.refusal_text_stacked_share <= 1.0:
            raise ValueError(f"refusal_text_stacked_share={self.refusal_text_stacked_share} "
                             "must be in [0, 1]")
        if self.keyframe_weight < 0:
            raise ValueError(f"keyframe_weight={self.keyframe_weight} must be >= 0")
        if not 0.0 <= self.dagger_beta <= 1.0:
            raise ValueError(f"dagger_beta={self.dagger_beta} must be in [0, 1]")
        if not 0.0 <= self.dagger_focus <= 1.0:
            raise ValueError(f"dagger_focus={self.dagger_focus} must be in [0, 1]")
        if not 0.0 <= self.pose_aug_prob <= 1.0:
            raise ValueError(f"pose_aug_prob={self.pose_aug_prob} must be in [0, 1]")
        if not (0.0 <= self.pose_aug_lateral_m <= 1.5 and 0.0 <= self.pose_aug_yaw_deg <= 15.0):
            raise ValueError(f"pose_aug_lateral_m={self.pose_aug_lateral_m} must be in [0, 1.5] "
                             f"and pose_aug_yaw_deg={self.pose_aug_yaw_deg} in [0, 15] (the "
                             "ground-plane warp shears anything standing on the road)")

    @property
    def total_steps(self) -> int:
        return self.steps + self.dagger * self.dagger_steps

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"] = list(self.data)
        return d
