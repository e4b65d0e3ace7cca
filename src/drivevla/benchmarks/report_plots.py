"""The closed-loop report's plots (matplotlib, drawn off-screen to PNG bytes): driving score
per route coloured by outcome, a route's speed profile against its references, and the
driven path over the route's road map."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global figures, no display backend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from drivevla.benchmarks.scoring import infraction_label

OUTCOME_COLOURS = {"Perfect": "#2e7d32", "Completed": "#f0a30a", "Failed": "#c62828"}
EXPERT_COLOUR = "#555555"
_ROAD = "#77777c"
_MARKING = "#f4f4f4"
_ROUTE = "#2878ff"
_PATH = "#e020c0"
_INFRACTION = "#c81010"
_DPI = 100


def outcome(status: str) -> str:
    """'Perfect', 'Completed' or 'Failed' for a route status."""
    return status if status in ("Perfect", "Completed") else "Failed"


def _axes(width_in: float, height_in: float) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width_in, height_in))
    return fig, fig.subplots()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def ds_bars(routes: Sequence[tuple[str, float, str]]) -> bytes:
    """Horizontal bars of (route id, DS, status), coloured by outcome; PNG bytes."""
    fig, ax = _axes(8, 0.45 * len(routes) + 1.2)
    names = [r[0] for r in routes][::-1]
    scores = [r[1] for r in routes][::-1]
    colours = [OUTCOME_COLOURS[outcome(r[2])] for r in routes][::-1]
    bars = ax.barh(names, scores, color=colours)
    for bar, score in zip(bars, scores, strict=True):
        ax.text(min(score + 1.0, 92.0), bar.get_y() + bar.get_height() / 2, f"{score:.1f}",
                va="center", fontsize=9)
    ax.set_xlim(0, 100)
    ax.set_xlabel("driving score (LB2.0) = route completion x infraction penalty")
    present = {outcome(r[2]) for r in routes}
    ax.legend(handles=[Patch(color=c, label=k) for k, c in OUTCOME_COLOURS.items()
                       if k in present], loc="lower right", fontsize=8)
    ax.set_title("Driving score per route")
    return _png(fig)


def speed_profile(drive: dict[str, Any], infractions: Sequence[dict[str, Any]],
                  expert: dict[str, Any] | None = None,
                  windows: Sequence[tuple[float, float, str]] = ()) -> bytes:
    """The ego's speed over time against its references: the policy's planned speed, the
    shadow expert's planned speed at the same state (when recorded), the speed of the expert
    driving the same route on its own (``expert``, when given) and the speed limit;
    infractions as vertical lines, instruction-event ``windows`` (start, end, label) shaded.
    PNG bytes."""
    fig, ax = _axes(8, 3.2)
    t = np.asarray(drive.get("time_s", []), dtype=float)
    ax.plot(t, drive.get("speed_mps", []), color=_PATH, lw=2, label="ego speed")
    if drive.get("planned_speed_mps"):
        ax.plot(t, drive["planned_speed_mps"], color=_PATH, lw=1, ls=":",
                label="planned speed (policy)")
    if drive.get("expert_planned_speed_mps"):
        ax.plot(t, drive["expert_planned_speed_mps"], color=EXPERT_COLOUR, lw=1, ls="--",
                label="expert's planned speed, same state")
    if expert and expert.get("time_s"):
        ax.plot(expert["time_s"], expert["speed_mps"], color=EXPERT_COLOUR, lw=1.5,
                label="expert driving this route")
    if drive.get("speed_limit_mps") is not None:
        ax.axhline(drive["speed_limit_mps"], color="#888888", lw=1, label="speed limit")
    for start, end, label in windows:
        ax.axvspan(start, end, color="#ffd54f", alpha=0.3, lw=0)
        ax.text(start, 0.2, label, fontsize=7, va="bottom")
    for inf in infractions:
        ax.axvline(float(inf["time_s"]), color=_INFRACTION, lw=1)
        ax.text(float(inf["time_s"]), ax.get_ylim()[1] * 0.97, " " + infraction_label(
            inf["kind"]), color=_INFRACTION, fontsize=7, rotation=90, va="top")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("speed (m/s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def route_map(
    roads: Sequence[np.ndarray],
    markings: Sequence[np.ndarray],
    stop_lines: Sequence[np.ndarray],
    drive: dict[str, Any],
    infractions: Sequence[dict[str, Any]],
    expert_path: Sequence[Sequence[float]] | None = None,
) -> bytes:
    """The driven path over the road map (world metres, north up): road surfaces
    (``roads``: polygons), lane markings, traffic-light stop lines, the route, the expert's
    own path (when given), the ego's path from start to end and each infraction where it
    happened. PNG bytes."""
    route = np.asarray(drive.get("route_polyline") or np.zeros((0, 2)), dtype=float)
    path = np.asarray(drive.get("path_xy") or np.zeros((0, 2)), dtype=float)
    x0, y0, width, height = _map_frame(route, path)
    fig, ax = _axes(6, max(2.5, min(6.0, 6.0 * height / width)))
    for poly in roads:
        ax.add_patch(Polygon(poly, closed=True, color=_ROAD, lw=0))
    for line in markings:
        ax.plot(line[:, 0], line[:, 1], color=_MARKING, lw=0.6)
    for line in stop_lines:
        ax.plot(line[:, 0], line[:, 1], color="#111111", lw=2.5)
    if len(route):
        ax.plot(route[:, 0], route[:, 1], color=_ROUTE, lw=3, alpha=0.5)
    if expert_path:
        ep = np.asarray(expert_path, dtype=float)
        ax.plot(ep[:, 0], ep[:, 1], color=EXPERT_COLOUR, lw=1.2, ls="--")
    if len(path):
        ax.plot(path[:, 0], path[:, 1], color=_PATH, lw=1.8)
        ax.plot(*path[0], "o", color=_PATH, ms=6)
        ax.plot(*path[-1], "s", color=_PATH, ms=6)
    for inf in infractions:
        ax.plot(float(inf["x"]), float(inf["y"]), "X", color=_INFRACTION, ms=10, mec="white")
        ax.annotate(f"{infraction_label(inf['kind'])} ({float(inf['time_s']):.1f} s)",
                    (float(inf["x"]), float(inf["y"])), textcoords="offset points",
                    xytext=(6, 6), fontsize=7, color=_INFRACTION)
    ax.set_xlim(x0, x0 + width)
    ax.set_ylim(y0, y0 + height)
    ax.set_aspect("equal")
    ax.set_facecolor("#dfe8d8")
    ax.set_xlabel("x (m, east)")
    ax.set_ylabel("y (m, north)")
    ax.legend(handles=[
        Line2D([], [], color=_ROUTE, lw=3, alpha=0.5, label="route"),
        Line2D([], [], color=_PATH, lw=1.8, label="driven path (o start, square end)"),
        *([Line2D([], [], color=EXPERT_COLOUR, ls="--", label="expert's path")]
          if expert_path else []),
        Line2D([], [], color=_INFRACTION, marker="X", ls="", label="infraction"),
    ], fontsize=7, loc="best")
    return _png(fig)


def _map_frame(route: np.ndarray, path: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, width, height) around the route and the path: 25 m margins, >= 80 m a side,
    no side under a third of the other (so a straight route keeps some road around it)."""
    pts = np.concatenate([p for p in (route, path) if len(p)] or [np.zeros((1, 2))])
    lo, hi = pts.min(axis=0) - 25.0, pts.max(axis=0) + 25.0
    size = np.maximum(hi - lo, 80.0)
    size = np.maximum(size, size.max() / 3.0)
    centre = (lo + hi) / 2
    return (float(centre[0] - size[0] / 2), float(centre[1] - size[1] / 2), float(size[0]),
            float(size[1]))
