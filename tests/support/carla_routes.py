"""A two-route Leaderboard 2.0 route file and a port nobody listens on: the CARLA tests that
run without a server."""

from __future__ import annotations

import socket
from pathlib import Path

ROUTES = """<routes>
  <route id="3" town="Town03">
    <waypoints><position x="0" y="0" z="0.5"/><position x="80" y="0" z="0.5"/></waypoints>
  </route>
  <route id="4" town="Town05">
    <waypoints><position x="10" y="5" z="0.5"/><position x="10" y="90" z="0.5"/></waypoints>
  </route>
</routes>
"""


def write_routes(folder: Path) -> Path:
    """:data:`ROUTES` as ``my_routes.xml`` in ``folder``."""
    path = Path(folder) / "my_routes.xml"
    path.write_text(ROUTES, encoding="utf-8")
    return path


def free_port() -> int:
    """A local port that was free a moment ago (a dead server's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
