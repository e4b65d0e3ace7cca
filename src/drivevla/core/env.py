"""The backend contract: what a rollout loop needs from a simulator, and the ground truth a
privileged policy or a scorer receives instead of the simulator itself.

An :class:`Env` is a gymnasium-style environment (``reset`` / ``step`` with the five-tuple)
that also builds the typed :class:`~drivevla.core.types.Observation` for a step's
``(obs, info)``, says how the route went (``route_result``), can end a route early
(``terminate_route``) and hands out its :class:`PrivilegedState`. The embedded simulator
(``sim_bridge.embedded.env.EmbeddedDrivingEnv``) implements it and stays a plain
``gymnasium.Env``.

Frames and units: the world frame of :mod:`drivevla.core.frames`, metres, seconds, radians.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from drivevla.core.scene import ActorBox, LaneGeometry, LightState, TrafficLightView
from drivevla.core.types import Control, HighLevelCommand, Observation


class RoutePlan(Protocol):
    """The episode's lane-level route (world frame, metres along the route polyline)."""

    legs: Sequence[Any]  # one per lane traversed; ``leg.lane`` is its lane index
    leg_start_m: np.ndarray  # route distance where each leg starts
    length_m: float

    def point_at(self, s: float) -> np.ndarray:
        """(2,) world point at route distance ``s`` (m)."""
        ...

    def command_at(self, s: float, lookahead_m: float = 30.0) -> HighLevelCommand: ...


class LaneGraph(Protocol):
    """The backend's road network: lanes by index ``(from_node, to_node, lane_number)``."""

    graph: dict[str, dict[str, list[Any]]]

    def get_lane(self, lane_index: tuple[str, str, int]) -> Any:
        """The lane object (``local_coordinates``, ``width_at``, ``length``, ...)."""
        ...


class ScenarioHandle(Protocol):
    route: RoutePlan
    network: LaneGraph
    speed_limit_mps: float
    intent: str


class WorldHandle(Protocol):
    """The live world; its vehicles are the backend's (position, heading, speed, lane_index,
    LENGTH, WIDTH)."""

    time_s: float
    ego: Any
    road: Any  # ``road.network`` (a LaneGraph) and ``road.locator.closest(point, yaw, hint)``

    @property
    def npcs(self) -> list[Any]: ...

    pedestrians: list[Any]
    lights: list[Any]  # each with ``stop_line`` (2, 2) and ``facing_yaw``

    def light_state(self, light: Any) -> LightState: ...


@runtime_checkable
class PrivilegedBackend(Protocol):
    """The live simulator behind a :class:`PrivilegedState`, for planners that need more than
    boxes: the lane graph, lane indices of vehicles, light phases, the route plan.

    Its objects are the backend's own (for the embedded simulator, highway-env's road network
    and vehicles); only privileged planners of that backend read them. What they use is
    listed by :class:`WorldHandle`, :class:`ScenarioHandle`, :class:`RoutePlan` and
    :class:`LaneGraph`."""

    world: WorldHandle
    scenario: ScenarioHandle

    @property
    def route_progress_m(self) -> float:
        """Distance (m) along the route polyline of the ego's projection, now."""
        ...

    def active_events(self) -> list[tuple[Any, str]]:
        """Instruction events active now, with their rendered texts."""
        ...


@dataclass(frozen=True)
class PrivilegedState:
    """Ground truth at one instant, as ``Env.privileged_state()`` returns it.

    Privileged policies receive it in ``reset``; the typed fields are a snapshot of that
    instant, ``backend`` is the live handle they read on every later tick (None where the
    backend has none to give, as CARLA: planners that need it refuse to drive there). Scorers
    read the typed fields of fresh snapshots. ``snapshots`` gives a fresh snapshot on demand
    (every backend can: planners that read boxes alone, as the box expert, use it to drive
    where there is no live handle)."""

    time_s: float
    ego: ActorBox
    actors: tuple[ActorBox, ...]  # every other actor (vehicles, pedestrians, statics)
    lights: tuple[TrafficLightView, ...]
    scenario: str  # the scenario family
    intent: str
    route_polyline: np.ndarray  # (N, 2) world metres, in driving order
    route_length_m: float
    route_progress_m: float
    speed_limit_mps: float
    outside_route_lanes_m: float  # distance (m) driven outside the route lanes so far
    backend: PrivilegedBackend | None
    snapshots: Callable[[], PrivilegedState] | None = None
    lanes: tuple[LaneGeometry, ...] = ()  # the driving lanes (perception targets read them)

    def live_backend(self, who: str) -> PrivilegedBackend:
        """``backend``, or a ValueError naming ``who`` needs it where there is none."""
        if self.backend is None:
            raise ValueError(
                f"{who} plans on the simulator's lane graph and route plan, and this backend "
                f"gives no live handle to them (scenario {self.scenario!r}): drive a learned "
                "policy there")
        return self.backend


@runtime_checkable
class Env(Protocol):
    """A driving simulator as the rollout loop (``agents.rollout.run_episode``) drives it."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode; returns ``(obs, info)`` (raw observation, ground-truth info)."""
        ...

    def step(self, action: Control) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Apply one control for one control period: ``(obs, reward, terminated, truncated,
        info)``; ``info["step"]`` counts the steps, ``info["time_s"]`` the simulated time."""
        ...

    def make_observation(self, obs: dict[str, Any], info: dict[str, Any]) -> Observation:
        """The typed observation of ``(obs, info)`` returned by ``reset`` / ``step``."""
        ...

    def privileged_state(self) -> PrivilegedState:
        """Ground truth now (see :class:`PrivilegedState`)."""
        ...

    def terminate_route(self, reason: str) -> None:
        """End the route now (step limit, a crash) unless it has ended already; ``reason``
        is recorded as the route's failure message."""
        ...

    def route_result(self) -> Any:
        """The route's result so far (an object with ``to_dict()``, ``driving_score``,
        ``route_completion`` and ``status``)."""
        ...

    def close(self) -> None: ...
