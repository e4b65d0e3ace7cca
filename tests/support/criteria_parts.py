"""Synthetic routes and tick sequences for the Leaderboard 2.0 criteria tests."""

from __future__ import annotations

import math

import numpy as np

from drivevla.sim_bridge.embedded.criteria import (
    CriteriaConfig,
    CriteriaTick,
    RouteCriteria,
    RoutePath,
)

DT = 0.1
EGO_LENGTH = 4.0
EGO_WIDTH = 2.0


def straight_route(length: float = 100.0, spacing: float = 1.0, speed_limit: float = 10.0):
    n = int(round(length / spacing)) + 1
    xs = np.linspace(0.0, length, n)
    return RoutePath(np.stack([xs, np.zeros_like(xs)], axis=1), speed_limit)


def l_route(leg: float = 50.0, speed_limit: float = 10.0):
    """East for ``leg`` m, then north for ``leg`` m."""
    east = np.stack([np.arange(0.0, leg + 1e-9, 1.0), np.zeros(int(leg) + 1)], axis=1)
    north = np.stack([np.full(int(leg), leg), np.arange(1.0, leg + 1e-9, 1.0)], axis=1)
    return RoutePath(np.concatenate([east, north]), speed_limit)


def make(route: RoutePath, **cfg) -> RouteCriteria:
    return RouteCriteria(
        route,
        route_id="r0",
        scenario="test",
        intent="follow the road",
        seed=0,
        config=CriteriaConfig(**cfg),
        dt_s=DT,
    )


def tick(t: float, x: float, y: float, yaw: float = 0.0, speed: float = 10.0, **kw) -> CriteriaTick:
    return CriteriaTick(
        time_s=t,
        x=x,
        y=y,
        yaw=yaw,
        speed_mps=speed,
        ego_length=EGO_LENGTH,
        ego_width=EGO_WIDTH,
        **kw,
    )


def drive(
    crit: RouteCriteria,
    s_values,
    *,
    t_start: float = DT,
    lateral: float = 0.0,
    speed=10.0,
    extra=None,
):
    """Feed one tick per arc length in ``s_values`` (on the route, offset left by ``lateral``).

    ``speed``: a number or a function of s; ``extra``: a function of (i, s) giving more
    CriteriaTick fields. Stops when the criteria end the route. Returns the new infractions.
    """
    raised = []
    t = t_start
    for i, s in enumerate(s_values):
        p = crit.route.point_at(s)
        yaw = crit.route.heading_at(s)
        p = p + lateral * np.array([-math.sin(yaw), math.cos(yaw)])
        v = speed(s) if callable(speed) else speed
        kw = extra(i, s) if extra is not None else {}
        raised += crit.update(tick(t, p[0], p[1], yaw, v, **kw))
        t += DT
        if crit.done:
            break
    return raised


def metres(a: float, b: float, step: float = 1.0):
    return np.arange(a, b + 1e-9, step)
