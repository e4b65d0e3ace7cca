"""The leaderboard agent's config (``--agent-config FILE``, YAML or JSON): which policy, how
the route reaches it, at what rate it runs, and where its log goes.

::

    policy: drivevla-tiny        # a registered name, a checkpoint dir or onnx:DIR
    mode: language               # language: instructions rendered from the plan's
                                 # RoadOptions; target_point: a fixed instruction
    control_rate_hz: 10          # the policy's rate; the control is held in between
    sim_rate_hz: 20              # the simulation's (Leaderboard 2.0: 20 Hz)
    output_dir: agent_log        # relative to this file's folder

Every key is in :class:`AgentConfig` (with units); an unknown key, a bad value or an unknown
policy is an :class:`AgentConfigError` naming the file and the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from drivevla.core.errors import DriveVLAError, read_utf8
from drivevla.core.types import CameraSpec
from drivevla.language.route_instructions import AnnounceRule
from drivevla.sim_bridge.carla.convert import GeoReference
from drivevla.sim_bridge.carla.observer import MODES, ObserverSettings
from drivevla.sim_bridge.carla.pose_filter import LEADERBOARD_GNSS_NOISE_M


class AgentConfigError(DriveVLAError, ValueError):
    """The leaderboard agent's config is unusable; the message names the file and the key."""


@dataclass
class AgentConfig:
    """What ``setup(path_to_conf_file)`` reads (SI units)."""

    policy: str
    # "language": the instruction is rendered from the plan (LangAuto-style) every tick;
    # "target_point": the instruction is ``instruction`` (or "follow the road") throughout
    mode: str = "language"
    instruction: str | None = None  # a fixed instruction (overrides rendering in both modes)
    control_rate_hz: float = 10.0
    sim_rate_hz: float = 20.0
    # cameras as CameraSpec dicts (ego frame); None: the policy's cameras with the embedded
    # simulator's default mount and resolution
    cameras: list[CameraSpec] | None = None
    route_target_points: int = 5  # as the embedded simulator's defaults
    route_target_spacing_m: float = 10.0
    command_lookahead_m: float = 30.0  # a manoeuvre's command is given this far ahead
    announce_m: float = 80.0  # instructions name a manoeuvre this far ahead ...
    near_m: float = 15.0  # ... and drop its distance this close
    geo_reference: GeoReference = field(default_factory=GeoReference)
    # smooth the GNSS (Leaderboard 2.0 adds ~0.56 m of noise; sim_bridge/carla/pose_filter.py);
    # false: positions straight from the GNSS (noise-free replays)
    gnss_filter: bool = True
    gnss_noise_m: float = LEADERBOARD_GNSS_NOISE_M
    # policy ticks between explanations (0: none), as `drivevla eval closed-loop`'s default
    explain_every: int = 10
    output_dir: str | None = "agent_log"  # per-tick log (explanations.jsonl); None: none
    controller: dict[str, Any] = field(default_factory=dict)  # ControllerConfig overrides

    @property
    def ticks_per_control(self) -> int:
        """Simulation ticks per policy tick (2 for 10 Hz control on a 20 Hz simulation)."""
        return round(self.sim_rate_hz / self.control_rate_hz)

    @property
    def announce_rule(self) -> AnnounceRule:
        return AnnounceRule(self.announce_m, self.near_m)

    def observer_settings(self, cameras: list[CameraSpec]) -> ObserverSettings:
        """How the agent builds its observations, with the cameras it declared."""
        return ObserverSettings(
            tuple(cameras), self.control_rate_hz, self.mode, self.instruction,
            self.route_target_points, self.route_target_spacing_m, self.command_lookahead_m,
            self.announce_rule, self.geo_reference, self.gnss_filter, self.gnss_noise_m)


def _number(source: str, key: str, value: Any, lo: float, integer: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not math.isfinite(float(value)) or float(value) < lo:
        kind = "an integer" if integer else "a number"
        raise AgentConfigError(f"{source}: {key}={value!r} must be {kind} >= {lo:g}")
    return float(value)


def _cameras(source: str, value: Any) -> list[CameraSpec] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise AgentConfigError(f"{source}: cameras must be a non-empty list of camera dicts")
    try:
        return [CameraSpec.from_dict(dict(c)) for c in value]
    except (TypeError, ValueError) as exc:
        raise AgentConfigError(f"{source}: cameras: {exc}") from None


def agent_config_from_dict(data: Any, source: str = "agent config",
                           base_dir: Path | None = None) -> AgentConfig:
    """Validate ``data`` (a mapping as read from YAML / JSON); ``output_dir`` is made absolute
    against ``base_dir`` (the config file's folder)."""
    if not isinstance(data, dict):
        raise AgentConfigError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    valid = {f.name for f in fields(AgentConfig)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise AgentConfigError(f"{source}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
    if not isinstance(data.get("policy"), str) or not data["policy"].strip():
        raise AgentConfigError(
            f"{source}: policy must name a registered policy, a checkpoint dir or onnx:DIR")
    values = dict(data)
    if values.get("mode", "language") not in MODES:
        raise AgentConfigError(f"{source}: mode={values['mode']!r}; valid: {list(MODES)}")
    instruction = values.get("instruction")
    if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
        raise AgentConfigError(f"{source}: instruction={instruction!r} must be non-empty text")
    for key, lo, integer in (("control_rate_hz", 1e-3, False), ("sim_rate_hz", 1e-3, False),
                             ("route_target_points", 1, True),
                             ("route_target_spacing_m", 1e-3, False),
                             ("command_lookahead_m", 0, False), ("announce_m", 0, False),
                             ("near_m", 0, False), ("explain_every", 0, True),
                             ("gnss_noise_m", 0, False)):
        if key in values:
            number = _number(source, key, values[key], lo, integer)
            values[key] = int(number) if integer else number
    if not isinstance(values.get("gnss_filter", True), bool):
        raise AgentConfigError(f"{source}: gnss_filter={values['gnss_filter']!r}: true or false")
    values["cameras"] = _cameras(source, values.get("cameras"))
    geo = values.get("geo_reference", {})
    if not isinstance(geo, dict) or set(geo) - {"lat_ref", "lon_ref"}:
        raise AgentConfigError(f"{source}: geo_reference={geo!r}; keys: lat_ref, lon_ref (deg)")
    values["geo_reference"] = GeoReference(
        **{k: _number(source, f"geo_reference.{k}", v, -360.0) for k, v in geo.items()})
    if not isinstance(values.get("controller", {}), dict):
        raise AgentConfigError(f"{source}: controller must be a mapping of ControllerConfig keys")
    out = values.get("output_dir", "agent_log")
    if out is not None and base_dir is not None:
        values["output_dir"] = str((base_dir / str(out)).resolve())
    config = AgentConfig(**values)
    ratio = config.sim_rate_hz / config.control_rate_hz
    if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
        raise AgentConfigError(
            f"{source}: sim_rate_hz / control_rate_hz = {ratio:g} must be a whole number >= 1 "
            "(the control is held for whole simulation ticks)")
    try:
        config.announce_rule  # noqa: B018 (validates near_m <= announce_m)
    except ValueError as exc:
        raise AgentConfigError(f"{source}: {exc}") from None
    return config


def load_agent_config(path: str | Path) -> AgentConfig:
    """The :class:`AgentConfig` in ``path`` (``.json``, else YAML)."""
    path = Path(path)
    if not path.is_file():
        raise AgentConfigError(f"{path}: the agent config file does not exist")
    text = read_utf8(path)
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise AgentConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}"
                               f": {exc}") from None
    return agent_config_from_dict(data, str(path), path.parent)
