"""Route files of CARLA Leaderboard 2.0 and Bench2Drive, read directly::

    <routes>
      <route id="0" town="Town12">
        <weathers>
          <weather route_percentage="0" cloudiness="5.0" .../>
        </weathers>
        <waypoints>
          <position x="-8567.0" y="4242.0" z="367.4"/>
          ...
        </waypoints>
        <scenarios>
          <scenario name="Accident_1" type="Accident">
            <trigger_point x="..." y="..." z="..." yaw="..."/>
            <distance value="120"/>
          </scenario>
        </scenarios>
      </route>
    </routes>

Positions are CARLA's (left-handed, metres, yaw in degrees); each route also carries them in
our world frame (x east, y north, yaw rad counter-clockwise; :mod:`drivevla.core.frames`).
A file that is not such XML, or a route without waypoints, is an
:class:`~drivevla.core.errors.InvalidFileError` naming the file and the route.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drivevla.core.errors import InvalidFileError, read_utf8
from drivevla.core.frames import carla_to_world_xy_yaw


@dataclass(frozen=True)
class RouteScenario:
    """One scenario of a route: its name, type, trigger point (CARLA frame: x, y, z m, yaw
    deg) and its other parameters (``{tag: {attribute: value}}``, e.g. ``distance``)."""

    name: str
    type: str
    trigger_carla: tuple[float, float, float, float]
    params: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def trigger_world(self) -> tuple[float, float, float]:
        """The trigger point in the world frame: ``(x, y, yaw rad)``."""
        x, y, _z, yaw = self.trigger_carla
        return carla_to_world_xy_yaw(x, y, yaw)


@dataclass(frozen=True)
class LeaderboardRoute:
    """A route of a leaderboard / Bench2Drive route file."""

    route_id: str
    town: str
    waypoints_carla: np.ndarray  # (N, 3) x, y, z metres, CARLA frame
    weathers: tuple[dict[str, float], ...] = ()
    scenarios: tuple[RouteScenario, ...] = ()

    @property
    def waypoints_world(self) -> np.ndarray:
        """(N, 2) waypoints in the world frame (metres)."""
        return np.stack([self.waypoints_carla[:, 0], -self.waypoints_carla[:, 1]], axis=1)


def _floats(path: Path, where: str, element: ET.Element, keys: tuple[str, ...]
            ) -> tuple[float, ...]:
    out = []
    for key in keys:
        raw = element.get(key, "0" if key in ("z", "yaw") else None)
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidFileError(
                path, f"{where}: <{element.tag}> {key}={raw!r} is not a number") from None
        if not math.isfinite(value):
            raise InvalidFileError(path, f"{where}: <{element.tag}> {key}={raw!r} is not finite")
        out.append(value)
    return tuple(out)


def _route(path: Path, element: ET.Element, index: int) -> LeaderboardRoute:
    route_id = element.get("id", str(index))
    where = f"route {route_id!r}"
    positions = element.findall("./waypoints/position")
    if len(positions) < 2:
        raise InvalidFileError(path, f"{where} has {len(positions)} <position> waypoints; "
                                     "a route needs at least 2")
    waypoints = np.array([_floats(path, where, p, ("x", "y", "z")) for p in positions])
    weathers = tuple(
        {k: float(v) for k, v in w.attrib.items()} for w in element.findall("./weathers/weather"))
    scenarios = []
    for s in element.findall("./scenarios/scenario"):
        trigger = s.find("trigger_point")
        if trigger is None:
            raise InvalidFileError(path, f"{where}: scenario {s.get('name')!r} has no "
                                         "<trigger_point>")
        params = {child.tag: dict(child.attrib) for child in s if child.tag != "trigger_point"}
        scenarios.append(RouteScenario(
            s.get("name", ""), s.get("type", ""),
            _floats(path, f"{where} scenario {s.get('name')!r}", trigger, ("x", "y", "z", "yaw")),
            params))
    return LeaderboardRoute(route_id, element.get("town", ""), waypoints, weathers,
                            tuple(scenarios))


def read_route_file(path: str | Path) -> list[LeaderboardRoute]:
    """Every route of a Leaderboard 2.0 / Bench2Drive route XML file, in file order."""
    path = Path(path)
    try:
        root = ET.fromstring(read_utf8(path))
    except ET.ParseError as exc:
        raise InvalidFileError(path, f"not valid XML: {exc}") from None
    if root.tag != "routes":
        raise InvalidFileError(path, f"the root element is <{root.tag}>, expected <routes>")
    routes = [_route(path, r, i) for i, r in enumerate(root.findall("route"))]
    if not routes:
        raise InvalidFileError(path, "no <route> elements")
    ids = [r.route_id for r in routes]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise InvalidFileError(path, f"repeated route ids: {repeated}")
    return routes
