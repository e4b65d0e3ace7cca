"""The simulator options shared by ``eval closed-loop`` and ``collect``: the embedded
simulator drives a ``--suite``; a CARLA server (``--backend carla``) a ``--routes`` file."""

from __future__ import annotations

import argparse

from drivevla.cli._parsing import positive_int
from drivevla.sim_bridge.carla.env import CarlaConnection

BACKENDS = ("embedded", "carla")


def add_backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default=None,
                   help="built-in suite name or YAML/JSON file (the embedded backend)")
    p.add_argument("--backend", choices=BACKENDS, default="embedded",
                   help="the simulator: the embedded one, or a CARLA server (--host, --port, "
                   "--routes; docs/carla.md)")
    p.add_argument("--routes", default=None, metavar="FILE.xml",
                   help="a Leaderboard 2.0 / Bench2Drive route file (--backend carla)")
    p.add_argument("--host", default="localhost", help="the CARLA server (--backend carla)")
    p.add_argument("--port", type=positive_int, default=2000,
                   help="the CARLA server's port (--backend carla)")


def suite_and_server(args: argparse.Namespace) -> tuple[str, CarlaConnection | None]:
    """The suite (or route file) and, on CARLA, the server (a wrong mix is a ValueError)."""
    if args.backend == "carla":
        if args.routes is None or args.suite is not None:
            raise ValueError("--backend carla drives a route file: give --routes FILE.xml "
                             "(not --suite)")
        return args.routes, CarlaConnection(args.host, args.port)
    if args.suite is None or args.routes is not None:
        raise ValueError("the embedded backend drives a suite: give --suite (--routes is "
                         "for --backend carla)")
    return args.suite, None
