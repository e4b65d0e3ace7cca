"""Typed configuration of the embedded simulator. Unknown keys are errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from drivevla.core.types import CameraSpec
from drivevla.sim_bridge.embedded.criteria import CriteriaConfig


def default_cameras() -> tuple[CameraSpec, ...]:
    return (CameraSpec(name="front", width=320, height=180, fov_deg=90.0),)


@dataclass(frozen=True)
class SimConfig:
    """Embedded simulator settings (units in the names or comments)."""

    scenario: str = "highway"
    # navigation intent; None picks one of the family's intents from the reset seed
    intent: str | None = None
    # overrides the generated instruction text
    instruction: str | None = None
    # phrasing of the generated navigation instruction: "canonical" (one fixed sentence per
    # intent), "train" or "heldout" (the language module's split) or "all"
    instruction_split: str = "canonical"
    # add hazard notices (e.g. a pedestrian about to cross the route) as instruction events
    notice_instructions: bool = True
    control_hz: float = 10.0
    # vehicle-dynamics integration steps per control step
    physics_substeps: int = 1
    cameras: tuple[CameraSpec, ...] = field(default_factory=default_cameras)
    # "auto" (software renderer on CPU), "tiny" (force software) or "gl" (GPU)
    render_backend: str = "auto"
    bev_size_px: int = 256
    bev_metres: float = 80.0
    # traffic vehicles per 100 m of lane at reset
    traffic_density: float = 1.0
    pedestrians: bool = True
    # green, yellow, red durations (s) of every signal
    light_cycle_s: tuple[float, float, float] = (10.0, 3.0, 15.0)
    # where t=0 falls in the cycle of the north-south group; None draws it from the seed
    light_offset_s: float | None = None
    guard_rails: bool = True
    # overrides of drivevla.sim_bridge.embedded.criteria.CriteriaConfig
    criteria: dict[str, Any] = field(default_factory=dict)
    # truncate after this many control steps (None: only the route criteria end it)
    max_steps: int | None = None
    route_target_points: int = 5
    route_target_spacing_m: float = 10.0
    # traffic farther than this from the ego is removed
    traffic_radius_m: float = 220.0
    # a traffic car in a collision stops, stands this long after its last contact and then
    # drives on (as CARLA's Traffic Manager cars do); None: it stands for good (highway-env's
    # rule, and this simulator's until 2026-11-27)
    npc_crash_hold_s: float | None = 3.0
    max_accel_mps2: float = 4.0
    max_brake_mps2: float = 8.0
    max_steer_deg: float = 35.0
    steer_tau_s: float = 0.1

    def __post_init__(self) -> None:
        if not (1.0 <= self.control_hz <= 100.0):
            raise ValueError(f"control_hz={self.control_hz} must be in [1, 100]")
        if self.physics_substeps < 1:
            raise ValueError(f"physics_substeps={self.physics_substeps} must be >= 1")
        if self.render_backend not in ("auto", "tiny", "gl"):
            raise ValueError(f"render_backend={self.render_backend!r}; valid: 'auto', 'tiny', 'gl'")
        if self.instruction_split not in ("canonical", "train", "heldout", "all"):
            raise ValueError(
                f"instruction_split={self.instruction_split!r}; valid: "
                "'canonical', 'train', 'heldout', 'all'"
            )
        if self.npc_crash_hold_s is not None and not self.npc_crash_hold_s >= 0:
            raise ValueError(f"npc_crash_hold_s={self.npc_crash_hold_s} must be >= 0 or None")
        if self.traffic_density < 0:
            raise ValueError(f"traffic_density={self.traffic_density} must be >= 0")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")

        CriteriaConfig.from_dict(dict(self.criteria))  # validates keys early

    @property
    def dt_s(self) -> float:
        return 1.0 / self.control_hz

    @classmethod
    def valid_keys(cls) -> list[str]:
        return sorted(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SimConfig:
        data = dict(data or {})
        unknown = set(data) - set(cls.valid_keys())
        if unknown:
            raise ValueError(
                f"unknown simulator config key(s) {sorted(unknown)}; valid keys: {cls.valid_keys()}"
            )
        if "cameras" in data:
            data["cameras"] = tuple(
                c if isinstance(c, CameraSpec) else CameraSpec.from_dict(c) for c in data["cameras"]
            )
        if "light_cycle_s" in data:
            data["light_cycle_s"] = tuple(float(x) for x in data["light_cycle_s"])
        return cls(**data)

    def replace(self, **changes: Any) -> SimConfig:
        return SimConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cameras"] = [dataclasses.asdict(c) for c in self.cameras]
        d["light_cycle_s"] = list(self.light_cycle_s)
        return d
