"""From the leaderboard's ``input_data`` and the global plan to our typed
:class:`~drivevla.core.types.Observation`: one reader for the agent file under CARLA's
evaluators (:mod:`drivevla.carla.leaderboard_agent`) and for our CARLA backend
(:mod:`drivevla.sim_bridge.carla.env`), so a policy sees the same thing in both.

Per policy tick: the sensors are read (:func:`~.sensor_inputs.read_input_data`), the GNSS is
smoothed (:mod:`.pose_filter`, optional), the ego is projected onto the plan
(:class:`~.route_tracking.RouteTracker`) and the instruction is rendered from the plan's
RoadOptions with the language layer (LangAuto-style) or fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivevla.core.types import CameraSpec, HighLevelCommand, Observation
from drivevla.language.route_instructions import (
    AnnounceRule,
    render_command_instruction,
    route_instruction,
)
from drivevla.sim_bridge.carla.convert import TOWN_REFERENCE, GeoReference
from drivevla.sim_bridge.carla.pose_filter import (
    LEADERBOARD_GNSS_NOISE_M,
    GnssFilter,
    GnssFilterConfig,
)
from drivevla.sim_bridge.carla.route_tracking import RouteTracker
from drivevla.sim_bridge.carla.sensor_inputs import read_input_data

MODES = ("language", "target_point")


@dataclass(frozen=True)
class ObserverSettings:
    """How observations are built (SI units); the agent file's config names the same keys."""

    cameras: tuple[CameraSpec, ...]
    control_rate_hz: float = 10.0
    # "language": the instruction is rendered from the plan every tick; "target_point":
    # ``instruction`` (or "follow the road") throughout
    mode: str = "language"
    instruction: str | None = None  # a fixed instruction (overrides rendering in both modes)
    route_target_points: int = 5
    route_target_spacing_m: float = 10.0
    command_lookahead_m: float = 30.0
    announce_rule: AnnounceRule = field(default_factory=AnnounceRule)
    geo_reference: GeoReference = TOWN_REFERENCE
    gnss_filter: bool = True  # smooth the GNSS (false: positions straight from it)
    gnss_noise_m: float = LEADERBOARD_GNSS_NOISE_M

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; valid: {list(MODES)}")
        if not self.cameras:
            raise ValueError("an observer needs at least one camera")


class SensorObserver:
    """Observations of one route: ``observe(input_data, timestamp, steer)`` per policy tick."""

    def __init__(self, settings: ObserverSettings, plan_xy: np.ndarray,
                 commands: Sequence[HighLevelCommand]) -> None:
        self.settings = settings
        self.tracker = RouteTracker(plan_xy, commands, settings.route_target_points,
                                    settings.route_target_spacing_m)
        self._gnss_filter = (GnssFilter(GnssFilterConfig(gnss_noise_m=settings.gnss_noise_m))
                             if settings.gnss_filter else None)
        self._last_yaw: float | None = None

    def observe(self, input_data: Mapping[str, Any], timestamp_s: float,
                steer: float = 0.0) -> Observation:
        """The observation of one tick's ``input_data``; ``steer``: the last applied steer
        (CARLA reports no wheel angle)."""
        s = self.settings
        frame = read_input_data(input_data, s.cameras, s.geo_reference, steer=steer,
                                fallback_yaw=self._last_yaw)
        ego = frame.ego
        self._last_yaw = ego.yaw
        if self._gnss_filter is not None:
            x, y = self._gnss_filter.update(ego.xy, ego.speed_mps, ego.yaw,
                                            1.0 / s.control_rate_hz)
            ego = dataclasses.replace(ego, x=float(x), y=float(y))
        self.tracker.update(ego.xy)
        route = self.tracker.route_info(ego.xy, ego.yaw, s.command_lookahead_m)
        return Observation(images=frame.images, cameras={c.name: c for c in s.cameras},
                           ego=ego, route=route, instruction=self.instruction(),
                           timestamp_s=float(timestamp_s))

    def instruction(self) -> str:
        """The instruction now: the fixed one; in language mode the plan's next manoeuvre
        (LangAuto-style); in target-point mode "follow the road"."""
        s = self.settings
        if s.instruction is not None:
            return s.instruction
        if s.mode == "target_point":
            return render_command_instruction(HighLevelCommand.LANE_FOLLOW)
        manoeuvre = self.tracker.next_manoeuvre(s.announce_rule.announce_m)
        if manoeuvre is None:
            return route_instruction(HighLevelCommand.LANE_FOLLOW, None, s.announce_rule)
        return route_instruction(manoeuvre.command, manoeuvre.distance_m, s.announce_rule)
