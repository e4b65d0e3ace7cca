"""Typed configuration of the embedded simulator. Unknown keys are errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from drivevla.core.types import CameraSpec
from drivevla.language.phrasing_sets import LOCKED, load_phrasing_set
from drivevla.sim_bridge.embedded.criteria import CriteriaConfig
from drivevla.sim_bridge.embedded.field_rules import Rule, check_fields
from drivevla.sim_bridge.embedded.geometry import GEOMETRY_SPLITS


def default_cameras() -> tuple[CameraSpec, ...]:
    return (CameraSpec(name="front", width=320, height=180, fov_deg=90.0),)


# named camera rigs (``drivevla collect --cameras NAME``). "front+sides": the front camera and
# two 90-degree cameras yawed 70 degrees left and right (230 degrees in all, 20 of overlap
# each side), so traffic arriving along a junction's or roundabout's arms is in view while
# the car waits at the line, where the front camera sees it last
CAMERA_RIGS: dict[str, tuple[CameraSpec, ...]] = {
    "front": default_cameras(),
    "front+sides": (*default_cameras(),
                    CameraSpec(name="left", width=320, height=180, fov_deg=90.0, yaw_deg=70.0),
                    CameraSpec(name="right", width=320, height=180, fov_deg=90.0,
                               yaw_deg=-70.0)),
}


# What every scalar field of SimConfig allows (cameras, light_cycle_s and criteria are checked
# in __post_init__: they hold several values each).
SIM_FIELD_RULES: dict[str, Rule] = {
    "scenario": Rule("str"),
    "geometry": Rule("choice", choices=GEOMETRY_SPLITS),
    "intent": Rule("str", optional=True),
    "instruction": Rule("str", optional=True),
    "instruction_split": Rule("choice", choices=("canonical", "train", "heldout", "all")),
    "notice_instructions": Rule("bool"),
    "control_hz": Rule("float", 1.0, 100.0),
    "physics_substeps": Rule("int", 1, 100),
    "render_backend": Rule("choice", choices=("auto", "tiny", "gl")),
    "bev_size_px": Rule("int", 16, 4096),
    "bev_metres": Rule("float", 0.0, 2000.0, lo_open=True),
    "traffic_density": Rule("float", 0.0, 50.0),
    "pedestrians": Rule("bool"),
    "light_offset_s": Rule("float", optional=True),
    "guard_rails": Rule("bool"),
    "max_steps": Rule("int", 1, None, optional=True),
    "route_target_points": Rule("int", 1, 100),
    "route_target_spacing_m": Rule("float", 0.0, 1000.0, lo_open=True),
    "traffic_radius_m": Rule("float", 0.0, 10000.0, lo_open=True),
    "npc_crash_hold_s": Rule("float", 0.0, None, optional=True),
    "max_accel_mps2": Rule("float", 0.0, 50.0, lo_open=True),
    "max_brake_mps2": Rule("float", 0.0, 100.0, lo_open=True),
    "max_steer_deg": Rule("float", 0.0, 90.0, lo_open=True, hi_open=True),
    "steer_tau_s": Rule("float", 0.0, 10.0),
    "radar": Rule("bool"),
    "radar_fov_deg": Rule("float", 0.0, 180.0, lo_open=True, hi_open=True),
    "radar_range_m": Rule("float", 0.0, 1000.0, lo_open=True),
    "radar_range_noise_m": Rule("float", 0.0, 100.0),
    "radar_rate_noise_mps": Rule("float", 0.0, 100.0),
}
# Each of green, yellow, red (s); their sum must be > 0.
LIGHT_PHASE_RULE = Rule("float", 0.0, 3600.0)


@dataclass(frozen=True)
class SimConfig:
    """Embedded simulator settings (units in the names or comments)."""

    scenario: str = "highway"
    # the map: "fixed" (the family's one map) or drawn from the seed in the "train", "val" or
    # "test" parameter bands (sim_bridge/embedded/geometry.py)
    geometry: str = "fixed"
    # navigation intent; None picks one of the family's intents from the reset seed
    intent: str | None = None
    # overrides the generated instruction text
    instruction: str | None = None
    # phrasing of the generated navigation instruction: "canonical" (one fixed sentence per
    # intent), "train" or "heldout" (the language module's split) or "all"
    instruction_split: str = "canonical"
    # wordings that replace the split's for the kinds and intents/categories they name:
    # "locked" (language.locked_phrasings) or a phrasing-set mapping (language.phrasing_sets)
    phrasings: str | dict[str, Any] | None = None
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
    # the forward radar (perception.radar): nearest object in a cone ahead of the front bumper
    radar: bool = True
    radar_fov_deg: float = 20.0
    radar_range_m: float = 80.0
    radar_range_noise_m: float = 0.1  # 1-sigma
    radar_rate_noise_mps: float = 0.1  # 1-sigma

    def __post_init__(self) -> None:
        check_fields("SimConfig", self, SIM_FIELD_RULES)
        cycle = self.light_cycle_s
        if (
            not isinstance(cycle, tuple | list)
            or len(cycle) != 3
            or not all(LIGHT_PHASE_RULE.allows(x) for x in cycle)
            or not sum(cycle) > 0
        ):
            raise ValueError(
                f"SimConfig.light_cycle_s={cycle!r} is invalid: must be 3 durations (green, "
                f"yellow, red), each {LIGHT_PHASE_RULE.describe()}, with a sum > 0"
            )
        if not isinstance(self.cameras, tuple) or not all(
            isinstance(c, CameraSpec) for c in self.cameras
        ):
            raise ValueError(
                f"SimConfig.cameras={self.cameras!r} is invalid: must be a list of cameras"
            )
        if not isinstance(self.criteria, dict):
            raise ValueError(
                f"SimConfig.criteria={self.criteria!r} is invalid: must be a mapping of "
                "criteria overrides"
            )
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")

        CriteriaConfig.from_dict(dict(self.criteria))  # validates keys early
        if self.phrasings is not None:
            if not isinstance(self.phrasings, dict) and self.phrasings != LOCKED:
                raise ValueError(f"SimConfig.phrasings={self.phrasings!r} is invalid: must be "
                                 f"{LOCKED!r} or a phrasing-set mapping (files are read by "
                                 "the caller: load_phrasing_set)")
            try:
                load_phrasing_set(self.phrasings)
            except ValueError as exc:
                raise ValueError(f"SimConfig.phrasings= (a phrasing set) is invalid: {exc}"
                                 ) from None

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
        if "cameras" in data and isinstance(data["cameras"], list | tuple) and all(
            isinstance(c, CameraSpec | dict) for c in data["cameras"]
        ):
            data["cameras"] = tuple(
                c if isinstance(c, CameraSpec) else CameraSpec.from_dict(c) for c in data["cameras"]
            )
        if "light_cycle_s" in data and isinstance(data["light_cycle_s"], list | tuple):
            data["light_cycle_s"] = tuple(
                float(x) if isinstance(x, int | float) and not isinstance(x, bool) else x
                for x in data["light_cycle_s"]
            )
        return cls(**data)

    def replace(self, **changes: Any) -> SimConfig:
        return SimConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cameras"] = [dataclasses.asdict(c) for c in self.cameras]
        d["light_cycle_s"] = list(self.light_cycle_s)
        return d
