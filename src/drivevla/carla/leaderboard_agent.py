"""The CARLA Leaderboard 2.0 / Bench2Drive agent file: any drivevla policy in CARLA's own
evaluators.

::

    python ${LEADERBOARD_ROOT}/leaderboard/leaderboard_evaluator.py \\
        --agent=$(python -c "import drivevla.carla.leaderboard_agent as m; print(m.__file__)") \\
        --agent-config=agent.yaml --routes=... --track=SENSORS

The evaluator imports this file, instantiates :func:`get_entry_point`'s class with
``(carla_host, carla_port, debug)``, calls ``set_global_plan`` and then ``setup(agent
config)``, asks ``sensors()`` and calls ``run_step(input_data, timestamp)`` every simulation
tick (20 Hz). The evaluator puts this file's folder on ``sys.path``, so its sibling modules
have names no team code or evaluator module uses (``agent_config``; never ``config``). When
the ``leaderboard`` package is importable the class is a subclass of its
``AutonomousAgent``; otherwise it has the same methods (so it is testable without CARLA).

Each policy tick (``control_rate_hz``, 10 Hz by default) the agent reads ``input_data``
(:mod:`drivevla.sim_bridge.carla.observer`, shared with our CARLA backend: the GNSS smoothed,
the route tracked along the global plan, the instruction rendered from the plan's RoadOptions
in language mode), and drives the policy through the same
:class:`~drivevla.agents.agent.Agent` and controllers as the embedded simulator; between
policy ticks the last control is held. Every tick is logged to
``output_dir/explanations.jsonl`` (a ``route_start`` line first: the evaluator builds one
agent per route, and they share the file).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivevla.agents.agent import Agent
from drivevla.agents.registry import declared_cameras, make_policy
from drivevla.carla.agent_config import AgentConfig, AgentConfigError, load_agent_config
from drivevla.core.policy import Policy
from drivevla.core.types import CameraSpec, Control, Decision, HighLevelCommand, Observation
from drivevla.language.route_instructions import render_command_instruction
from drivevla.planner.controllers import ControllerConfig, TrajectoryController
from drivevla.sim_bridge.carla.convert import (
    camera_to_sensor_dict,
    check_sensor_limits,
    control_to_carla,
    navigation_sensors,
)
from drivevla.sim_bridge.carla.observer import SensorObserver
from drivevla.sim_bridge.carla.route_tracking import RouteTracker, plan_points
from drivevla.sim_bridge.carla.sensor_inputs import GNSS_ID, IMU_ID, SPEED_ID

log = logging.getLogger(__name__)

LOG_NAME = "explanations.jsonl"


class StandaloneAutonomousAgent:
    """The Leaderboard 2.0 ``AutonomousAgent`` contract, for when the ``leaderboard`` package
    is not installed (tests, a custom runner): ``__init__(carla_host, carla_port, debug)``,
    ``set_global_plan`` (called before ``setup``), ``setup``, ``sensors``, ``run_step``,
    ``destroy``."""

    def __init__(self, carla_host: str = "localhost", carla_port: int = 2000,
                 debug: bool = False) -> None:
        self.track = "SENSORS"
        self._global_plan = None
        self._global_plan_world_coord = None
        self.debug = debug

    def set_global_plan(self, global_plan_gps: Sequence[Any],
                        global_plan_world_coord: Sequence[Any]) -> None:
        self._global_plan = list(global_plan_gps)
        self._global_plan_world_coord = list(global_plan_world_coord)


try:  # optional: the leaderboard package exists only where CARLA's evaluator is installed
    from leaderboard.autoagents.autonomous_agent import AutonomousAgent as _AgentBase
    from leaderboard.autoagents.autonomous_agent import Track as _Track
except ImportError:
    _AgentBase, _Track = StandaloneAutonomousAgent, None


def _control_list(control: Control) -> list[float]:
    return [float(control.throttle), float(control.steer), float(control.brake)]


def get_entry_point() -> str:
    """The agent class's name (the leaderboard's convention)."""
    return "DriveVLALeaderboardAgent"


def policy_cameras(policy: Policy) -> list[CameraSpec]:
    """The cameras a policy reads: those it declares (:func:`declared_cameras`: an ONNX
    deployment's, a DriveVLA checkpoint's rig), else its ``model.cameras`` (or "front") at the
    embedded simulator's default mount and resolution."""
    rig = declared_cameras(policy)
    if rig:
        return [CameraSpec.from_dict(c) for c in rig]
    names = getattr(getattr(getattr(policy, "config", None), "model", None), "cameras", None)
    return [CameraSpec(name=str(n)) for n in (names or ("front",))]


def _load_policy(config: AgentConfig, source: str) -> Policy:
    try:
        policy = make_policy(config.policy)
    except (ValueError, FileNotFoundError) as exc:
        raise AgentConfigError(f"{source}: policy: {exc}") from None
    try:
        policy.reset(None)
    except ValueError as exc:  # privileged policies need the simulator's ground truth
        raise AgentConfigError(
            f"{source}: policy {config.policy!r} cannot drive in CARLA: {exc}") from None
    if config.explain_every and hasattr(policy, "explain_every"):
        policy.explain_every = config.explain_every
    return policy


def _controller(config: AgentConfig, source: str) -> TrajectoryController:
    try:
        cfg = ControllerConfig(**{"control_dt_s": 1.0 / config.control_rate_hz,
                                  **config.controller})
    except TypeError as exc:
        raise AgentConfigError(f"{source}: controller: {exc}") from None
    return TrajectoryController(cfg)


class DriveVLALeaderboardAgent(_AgentBase):
    """A drivevla policy + the shared controllers, as a Leaderboard 2.0 agent."""

    def __init__(self, carla_host: str = "localhost", carla_port: int = 2000,
                 debug: bool = False) -> None:
        super().__init__(carla_host, carla_port, debug)
        self._dense_plan_gps: list[Any] | None = None
        self._dense_plan_world: list[Any] | None = None
        self.config: AgentConfig | None = None
        self.agent: Agent | None = None
        self.cameras: list[CameraSpec] = []
        self.observer: SensorObserver | None = None
        self._tick = 0
        self._control: Control | None = None
        self._log = None

    # ------------------------------------------------------------------ leaderboard contract
    def set_global_plan(self, global_plan_gps: Sequence[Any],
                        global_plan_world_coord: Sequence[Any]) -> None:
        """Keep the dense plan for route tracking (the base class keeps a downsampled one)."""
        self._dense_plan_gps = list(global_plan_gps or [])
        self._dense_plan_world = list(global_plan_world_coord or [])
        super().set_global_plan(global_plan_gps, global_plan_world_coord)

    def setup(self, path_to_conf_file: str) -> None:
        """Read the agent config, load the policy, check the sensors against the limits."""
        if _Track is not None:
            self.track = _Track.SENSORS
        source = str(path_to_conf_file)
        self.config = config = load_agent_config(path_to_conf_file)
        policy = _load_policy(config, source)
        self.cameras = list(config.cameras or policy_cameras(policy))
        check_sensor_limits(self.sensors())
        self.agent = Agent(policy, _controller(config, source))
        self.agent.reset()
        self._tick, self._control, self.observer = 0, None, None
        if self._dense_plan_gps or self._dense_plan_world:
            points, commands = plan_points(self._dense_plan_gps, self._dense_plan_world,
                                           config.geo_reference)
            self.observer = SensorObserver(config.observer_settings(self.cameras), points,
                                           commands)
        if config.output_dir is not None:
            out = Path(config.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            self._log = (out / LOG_NAME).open("a", encoding="utf-8")
            self._write({"route_start": {  # the evaluator runs one agent per route
                "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                "policy": config.policy, "mode": config.mode,
                "route_length_m": None if self.tracker is None else self.tracker.length_m,
                "cameras": [c.name for c in self.cameras]}})

    def sensors(self) -> list[dict[str, Any]]:
        """The policy's cameras, GNSS, IMU and speedometer (Leaderboard 2.0 sensor dicts)."""
        rate = self.config.sim_rate_hz if self.config is not None else 20.0
        return [camera_to_sensor_dict(c) for c in self.cameras] + navigation_sensors(
            (GNSS_ID, IMU_ID, SPEED_ID), rate)

    def run_step(self, input_data: Mapping[str, Any], timestamp: float) -> Any:
        """A ``carla.VehicleControl`` for this simulation tick."""
        if self.agent is None or self.config is None:
            raise RuntimeError("run_step before setup(path_to_conf_file)")
        tick, self._tick = self._tick, self._tick + 1
        if self._control is not None and tick % self.config.ticks_per_control:
            self._write({"tick": tick, "timestamp_s": float(timestamp), "policy_tick": False,
                         "control": _control_list(self._control)})
            return control_to_carla(self._control)
        obs = self._observation(input_data, float(timestamp))
        control, decision = self.agent.step(obs)
        self._control = control
        self._write(self._record(tick, obs, control, decision))
        return control_to_carla(control)

    def destroy(self) -> None:
        """Close the log and release the policy."""
        if self._log is not None:
            self._log.close()
            self._log = None
        self.agent = None

    # ------------------------------------------------------------------ internals
    @property
    def tracker(self) -> RouteTracker | None:
        """The route tracker (None before ``setup`` with a global plan)."""
        return None if self.observer is None else self.observer.tracker

    def _observation(self, input_data: Mapping[str, Any], timestamp: float) -> Observation:
        if self.observer is None:
            raise RuntimeError("no global plan: set_global_plan must be called before run_step")
        return self.observer.observe(input_data, timestamp,
                                     0.0 if self._control is None else self._control.steer)

    def instruction(self) -> str:
        """The instruction now (see :meth:`SensorObserver.instruction`)."""
        if self.observer is not None:
            return self.observer.instruction()
        fixed = None if self.config is None else self.config.instruction
        return fixed or render_command_instruction(HighLevelCommand.LANE_FOLLOW)

    def _record(self, tick: int, obs: Observation, control: Control,
                decision: Decision) -> dict[str, Any]:
        meta = decision.meta_action
        return {
            "tick": tick, "timestamp_s": obs.timestamp_s, "policy_tick": True,
            "instruction": obs.instruction, "command": obs.route.command.value,
            "route_progress_m": None if self.tracker is None else self.tracker.progress_m,
            "explanation": decision.explanation, "reason": decision.reason,
            "meta_action": None if meta is None else meta.value,
            "health": None if decision.health is None else decision.health.to_dict(),
            "control": _control_list(control),
        }

    def _write(self, record: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
