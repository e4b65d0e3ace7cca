"""The contracts every backend, policy and benchmark shares.

Frames and units are documented in :mod:`drivevla.core.frames`. Everything here is a
small typed dataclass that validates itself on construction, so bad values fail where they
are made, with the bad value named.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import numpy as np

MAX_CAMERA_SIDE_PX = (
    4096  # refuse absurd resolutions: a 4K side is already above any sensor we model
)
MIN_CAMERA_SIDE_PX = 16


class HighLevelCommand(str, Enum):
    """Route command at the next decision point (CARLA's ``RoadOption`` vocabulary)."""

    LANE_FOLLOW = "lane_follow"
    LEFT = "left"
    RIGHT = "right"
    STRAIGHT = "straight"
    CHANGE_LANE_LEFT = "change_lane_left"
    CHANGE_LANE_RIGHT = "change_lane_right"

    @property
    def index(self) -> int:
        return list(HighLevelCommand).index(self)


class MetaAction(str, Enum):
    """Discrete driving decision attached to a ``Decision`` (and to expert labels)."""

    KEEP_LANE = "keep_lane"
    CHANGE_LEFT = "change_left"
    CHANGE_RIGHT = "change_right"
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    ACCELERATE = "accelerate"
    DECELERATE = "decelerate"
    STOP = "stop"


@dataclass(frozen=True)
class CameraSpec:
    """A perspective pinhole camera rigidly mounted on the ego vehicle.

    Mount pose in the ego frame: ``x, y, z`` in metres; ``yaw_deg`` left-positive,
    ``pitch_deg`` nose-down positive, ``roll_deg``. ``fov_deg`` is the horizontal field of view.
    """

    name: str = "front"
    width: int = 320
    height: int = 180
    fov_deg: float = 90.0
    x: float = 1.5
    y: float = 0.0
    z: float = 1.6
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        for side, value in (("width", self.width), ("height", self.height)):
            if not isinstance(value, int | np.integer) or not (
                MIN_CAMERA_SIDE_PX <= value <= MAX_CAMERA_SIDE_PX
            ):
                raise ValueError(
                    f"camera {self.name!r}: {side}={value!r} px is not a usable resolution; "
                    f"use an integer in [{MIN_CAMERA_SIDE_PX}, {MAX_CAMERA_SIDE_PX}]"
                )
        if not (1.0 <= float(self.fov_deg) <= 170.0):
            raise ValueError(
                f"camera {self.name!r}: fov_deg={self.fov_deg!r} is outside (1, 170) degrees"
            )
        for key in ("x", "y", "z", "yaw_deg", "pitch_deg", "roll_deg"):
            if not math.isfinite(float(getattr(self, key))):
                raise ValueError(
                    f"camera {self.name!r}: {key}={getattr(self, key)!r} is not finite"
                )

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (square pixels), from the horizontal FOV."""
        return self.width / (2.0 * math.tan(math.radians(self.fov_deg) / 2.0))

    @property
    def vertical_fov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.height / (2.0 * self.focal_px)))

    @property
    def intrinsics(self) -> np.ndarray:
        """3x3 pinhole matrix K (principal point at the image centre)."""
        f = self.focal_px
        return np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CameraSpec:
        valid = set(cls.__dataclass_fields__)
        unknown = set(data) - valid
        if unknown:
            raise ValueError(
                f"unknown camera key(s) {sorted(unknown)}; valid keys: {sorted(valid)}"
            )
        return cls(**data)


@dataclass(frozen=True)
class EgoState:
    """Ego pose and motion. Position and yaw in the world frame; rates in the ego frame.

    ``speed_mps`` is signed along the heading; ``accel_mps2`` is longitudinal acceleration;
    ``yaw_rate_rps`` is counter-clockwise-positive.
    """

    x: float
    y: float
    yaw: float
    speed_mps: float
    accel_mps2: float = 0.0
    yaw_rate_rps: float = 0.0
    steer: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array(
            [
                self.x,
                self.y,
                self.yaw,
                self.speed_mps,
                self.accel_mps2,
                self.yaw_rate_rps,
                self.steer,
            ],
            dtype=np.float32,
        )

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])


@dataclass(frozen=True)
class Control:
    """Low-level command with CARLA ``VehicleControl`` semantics.

    throttle in [0, 1], steer in [-1, 1] (+1 = full right), brake in [0, 1].
    """

    throttle: float = 0.0
    steer: float = 0.0
    brake: float = 0.0

    def __post_init__(self) -> None:
        for key, lo, hi in (("throttle", 0.0, 1.0), ("steer", -1.0, 1.0), ("brake", 0.0, 1.0)):
            value = getattr(self, key)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"Control.{key}={value!r} is not a number") from None
            if not math.isfinite(value):
                raise ValueError(f"Control.{key}={value!r} is not finite (NaN or inf)")
            # a tiny tolerance absorbs float32 round-off from policies
            if not (lo - 1e-6 <= value <= hi + 1e-6):
                raise ValueError(f"Control.{key}={value!r} is outside [{lo}, {hi}]")

    @classmethod
    def from_array(cls, action: Any) -> Control:
        arr = np.asarray(action, dtype=np.float64).reshape(-1)
        if arr.shape != (3,):
            raise ValueError(
                f"a Control array must be [throttle, steer, brake], got shape {np.shape(action)}"
            )
        return cls(float(arr[0]), float(arr[1]), float(arr[2]))

    def as_array(self) -> np.ndarray:
        return np.array([self.throttle, self.steer, self.brake], dtype=np.float32)


@dataclass(frozen=True)
class SensorHealth:
    """What the runtime's sensor check (:mod:`drivevla.perception.sensor_health`) found wrong
    with one observation: fault codes such as ``"camera_black:front"`` or
    ``"ego_speed_implausible"``, in the order found; none means healthy."""

    faults: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        faults = (self.faults,) if isinstance(self.faults, str) else tuple(self.faults)
        if not all(isinstance(f, str) and f for f in faults):
            raise ValueError(f"SensorHealth.faults must be non-empty strings, got {faults!r}")
        object.__setattr__(self, "faults", faults)

    @property
    def ok(self) -> bool:
        return not self.faults

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "faults": list(self.faults)}


@dataclass(frozen=True)
class RadarReading:
    """A forward radar's detection (:mod:`drivevla.perception.radar`), the nearest object in
    its cone: ``range_m`` from the front bumper, ``range_rate_mps``
    (negative when closing), ``bearing_rad`` (left +) and the actor's id (ground truth, for
    scoring false activations only; a policy must not read it)."""

    range_m: float
    range_rate_mps: float
    bearing_rad: float
    actor_id: int

    @property
    def time_to_collision_s(self) -> float:
        """range / closing speed; inf when not closing."""
        return self.range_m / -self.range_rate_mps if self.range_rate_mps < 0 else math.inf


@dataclass(frozen=True)
class RuntimeStatus:
    """What the real-time runner (:mod:`drivevla.runtime`) did on one tick.

    ``mode``: ``"policy"`` (the policy's decision, on time and valid), ``"hold"`` (the last
    valid trajectory, re-timed to the current pose) or ``"stop"`` (a controlled stop along it,
    hazard lights on). ``cause``: why the policy's decision was not used (``"deadline"``,
    ``"busy"``, ``"exception: ..."``, ``"invalid: ..."``), None in ``"policy"`` mode.
    ``latency_s``: the action path's latency on the runner's clock (None when it did not run
    or did not finish in time). ``aeb``: the safety filter's emergency braking drove this
    tick; ``speed_limited``: it lowered the plan's target speeds (lateral or longitudinal
    acceleration)."""

    tick: int
    mode: str = "policy"
    cause: str | None = None
    hazard: bool = False
    latency_s: float | None = None
    aeb: bool = False
    speed_limited: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("policy", "hold", "stop"):
            raise ValueError(f"RuntimeStatus.mode={self.mode!r}; use policy, hold or stop")

    @property
    def fallback(self) -> bool:
        return self.mode != "policy"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decision:
    """A policy's output: a trajectory in the ego frame and what to do with it.

    ``waypoints``: (T, 2) metres, ego frame, one every ``dt_s`` seconds starting at ``dt_s``.
    ``target_speeds``: (T,) m/s. At least 3 s ahead so open-loop nuScenes scoring applies.
    ``health``: the sensor check of the observation it was made from, attached by the
    :class:`~drivevla.agents.agent.Agent` (None when nothing checked it).
    ``runtime``: what the real-time runner did on this tick (None without the runner).
    """

    waypoints: np.ndarray
    target_speeds: np.ndarray
    dt_s: float = 0.5
    meta_action: MetaAction | None = None
    explanation: str | None = None
    reason: str | None = None
    health: SensorHealth | None = None
    runtime: RuntimeStatus | None = None

    def __post_init__(self) -> None:
        if self.health is not None and not isinstance(self.health, SensorHealth):
            raise ValueError(
                f"Decision.health must be a SensorHealth or None, got {type(self.health).__name__}"
            )
        self.waypoints = np.asarray(self.waypoints, dtype=np.float64)
        self.target_speeds = np.asarray(self.target_speeds, dtype=np.float64)
        if self.waypoints.ndim != 2 or self.waypoints.shape[1] != 2:
            raise ValueError(f"Decision.waypoints must be (T, 2), got {self.waypoints.shape}")
        if self.target_speeds.shape != (self.waypoints.shape[0],):
            raise ValueError(
                f"Decision.target_speeds must be ({self.waypoints.shape[0]},), "
                f"got {self.target_speeds.shape}"
            )
        if not (np.isfinite(self.waypoints).all() and np.isfinite(self.target_speeds).all()):
            raise ValueError("Decision contains NaN or inf in waypoints or target_speeds")
        if self.waypoints.shape[0] * self.dt_s < 3.0 - 1e-9:
            raise ValueError(
                f"Decision covers {self.waypoints.shape[0] * self.dt_s:.1f} s; at least 3 s needed"
            )


@dataclass(frozen=True)
class RouteInfo:
    """Navigation input: the next target points (ego frame, m) and the high-level command;
    the legal speed limit where the map knows it (None elsewhere; the safety filter caps the
    plan's speeds at it)."""

    target_points: np.ndarray  # (K, 2) ego frame
    command: HighLevelCommand
    intent: str
    distance_to_goal_m: float
    speed_limit_mps: float | None = None


@dataclass
class Observation:
    """What a policy sees at one tick."""

    images: dict[str, np.ndarray]  # name -> (H, W, 3) uint8 RGB
    cameras: dict[str, CameraSpec]
    ego: EgoState
    route: RouteInfo
    instruction: str
    timestamp_s: float
    # the forward radar's nearest object (None: no radar, or nothing in its cone)
    radar: RadarReading | None = None

    def __post_init__(self) -> None:
        for name, img in self.images.items():
            spec = self.cameras.get(name)
            if spec is None:
                raise ValueError(
                    f"image {name!r} has no CameraSpec; cameras: {sorted(self.cameras)}"
                )
            if img.shape != (spec.height, spec.width, 3) or img.dtype != np.uint8:
                raise ValueError(
                    f"image {name!r} is {img.shape} {img.dtype}; expected "
                    f"({spec.height}, {spec.width}, 3) uint8 RGB"
                )


class InfractionType(str, Enum):
    """CARLA Leaderboard 2.0 infraction kinds (names as in its statistics manager)."""

    COLLISION_PEDESTRIAN = "collisions_pedestrian"
    COLLISION_VEHICLE = "collisions_vehicle"
    COLLISION_STATIC = "collisions_layout"
    RED_LIGHT = "red_light"
    STOP_SIGN = "stop_infraction"
    SCENARIO_TIMEOUT = "scenario_timeouts"
    YIELD_EMERGENCY = "yield_emergency_vehicle_infractions"
    OUTSIDE_ROUTE_LANES = "outside_route_lanes"
    MIN_SPEED = "min_speed_infractions"
    ROUTE_DEVIATION = "route_dev"
    AGENT_BLOCKED = "vehicle_blocked"
    ROUTE_TIMEOUT = "route_timeout"


@dataclass(frozen=True)
class Infraction:
    kind: InfractionType
    time_s: float
    x: float
    y: float
    detail: str = ""
    # the factor this event multiplies the penalty by (1.0 for route-ending events)
    penalty: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d


@dataclass
class RouteResult:
    """Outcome of one route, CARLA Leaderboard 2.0 semantics (see docs/metrics.md)."""

    route_id: str
    scenario: str
    intent: str
    seed: int
    route_length_m: float
    route_completion: float  # percent, 0..100
    infraction_penalty: float  # 0..1
    infractions: list[Infraction] = field(default_factory=list)
    status: str = "Started"  # Completed, Perfect, Failed - ..., ...
    duration_s: float = 0.0
    driven_distance_m: float = 0.0
    outside_lanes_pct: float = 0.0
    # whether the instructed intent was achieved (set by the environment; None if unknown)
    instruction_success: bool | None = None

    @property
    def driving_score(self) -> float:
        return max(self.route_completion * self.infraction_penalty, 0.0)

    def count(self, kind: InfractionType) -> int:
        return sum(1 for i in self.infractions if i.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["infractions"] = [i.to_dict() for i in self.infractions]
        d["driving_score"] = self.driving_score
        return d
