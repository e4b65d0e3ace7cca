"""Checks of a collected dataset's expert labels against what its frames show.

The expert labels every frame with a reason (closed vocabulary) and an explanation naming
the reason's object. These checks find labels a frame contradicts, from the label and state
columns only (no images are read):

=================== ======================================================================
check               flags a frame when
=================== ======================================================================
``curve_straight``  the reason is ``curve`` but the road ahead is straight: over the next
                    ``lookahead_m`` of the route (from ``route.progress``) the lanes bend
                    less than the expert slows for at the road's speed limit (3 m/s^2
                    lateral). The road is the embedded simulator's, rebuilt from the
                    episode's config and seed (lane centrelines: a lane change on a
                    straight road is straight); episodes it cannot rebuild fall back to the
                    path the ego drove and the route targets (below ``STRAIGHT_CURVATURE``)
``colour``          the explanation names a colour other than that of the reason's object
                    (``expert.reason_object``) or of the actor found at its position
``side``            "on/from the left/right" names the other side than the one the reason's
                    object is on (ego frame; objects within 1 m of the centre line skipped)
``distance``        "N metres" differs from the distance to the reason's object by more than
                    ``max(10 m, 25 %)`` (the explanation rounds to 10 m)
``reason_text``     the explanation names another reason than the label
                    (:func:`~drivevla.language.explanations.reason_from_explanation`)
``place``           the explanation names a place (highway words, roundabout words) the
                    scenario family does not have (:data:`~drivevla.planner.expert.FAMILY_PLACE`)
``out_of_view``     the explanation names the colour of an object no camera of the dataset
                    sees (outside every field of view, or not among the actors within 60 m)
=================== ======================================================================

Entry points: :func:`check_labels` (a dataset directory) and :func:`check_episode_frames`
(one episode's frames as dicts, e.g. constructed in a test); :func:`format_label_checks`
renders the result as a short table.
"""

from __future__ import annotations

import collections
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.frames import world_to_ego
from drivevla.core.types import CameraSpec
from drivevla.datasets.reader import open_dataset
from drivevla.language.explanation_phrasings import PLACE_CUES
from drivevla.language.explanations import normalise, reason_from_explanation
from drivevla.language.instructions import COLOUR_NAMES
from drivevla.language.reasons import Reason
from drivevla.perception.camera_model import ego_point_in_view
from drivevla.planner.expert import FAMILY_PLACE, LATERAL_ACCEL_MPS2
from drivevla.planner.trajectory import road_curvature_ahead, route_road_curvature
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.scenarios import FAMILIES

CHECKS = ("curve_straight", "colour", "side", "distance", "reason_text", "place", "out_of_view")
LOOKAHEAD_M = 80.0  # the expert's plan length: how far ahead a curve cap can bind
# below the curvature any curve cap of the expert binds at (3 m/s^2 at 27 m/s: 0.0041 1/m)
STRAIGHT_CURVATURE = 0.004
CURVATURE_WINDOW_M = 10.0
ACTOR_MATCH_M = 1.5

COLUMNS = (
    "episode_id", "frame_index", "scenario", "ego.x", "ego.y", "ego.yaw", "route.targets",
    "route.progress",
    "expert.reason", "expert.reason_object", "expert.explanation", "actors",
)

# a colour naming a road user ("the red car"; not "the red light")
_COLOUR_RE = re.compile(
    r"\b(" + "|".join(sorted(set(COLOUR_NAMES), key=len, reverse=True))
    + r") (?:car|van|truck|vehicle|bus|lorry|motorbike|bike)s?\b"
)
_SIDE_RE = re.compile(r"\b(?:on|from) the (left|right)\b")
_DISTANCE_RE = re.compile(r"\b(\d+) ?(?:m|metres|meters)\b")
_PLACE_RES = {place: re.compile(p) for place, p in PLACE_CUES.items()}


# ------------------------------------------------------------------------------ geometry
def driven_curvature_ahead(xy: np.ndarray, yaw: np.ndarray, lookahead_m: float) -> np.ndarray:
    """Per frame, the largest curvature (1/m) of the path driven over the next ``lookahead_m``
    (heading change over ``CURVATURE_WINDOW_M`` of arc length; to the episode's end)."""
    n = len(xy)
    if n < 2:
        return np.zeros(n)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    h = np.unwrap(np.asarray(yaw, dtype=np.float64))
    grid = np.arange(0.0, s[-1] + 1.0, 1.0)
    # yaw along arc length (where the ego stood, the last yaw reached there)
    s_u, idx = np.unique(s, return_index=True)
    h_g = np.interp(grid, s_u, h[idx]) if len(s_u) > 1 else np.full(len(grid), h[0])
    w = int(CURVATURE_WINDOW_M)
    k = np.zeros(len(grid))
    if len(grid) > w:
        k[: len(grid) - w] = np.abs(h_g[w:] - h_g[:-w]) / CURVATURE_WINDOW_M
    out = np.zeros(n)
    for i in range(n):
        lo, hi = int(np.floor(s[i])), int(np.ceil(s[i] + lookahead_m))
        seg = k[lo : max(min(hi, len(k) - w), lo + 1)]
        out[i] = float(seg.max()) if len(seg) else 0.0
    return out


def targets_curvature(targets: Sequence[float]) -> float:
    """The largest curvature (1/m) between consecutive route targets (ego frame, flattened
    x0, y0, x1, y1, ...; repeated points at the goal skipped)."""
    pts = np.asarray(targets, dtype=np.float64).reshape(-1, 2)
    d = np.diff(pts, axis=0)
    ds = np.linalg.norm(d, axis=1)
    keep = ds > 0.5
    if keep.sum() < 2:
        return 0.0
    h = np.unwrap(np.arctan2(d[keep, 1], d[keep, 0]))
    lengths = ds[keep]
    return float(np.max(np.abs(np.diff(h)) / np.maximum(lengths[1:], 1e-6)))


def in_view(x: float, y: float, cameras: Sequence[CameraSpec]) -> bool:
    """Whether the ego-frame point (x, y) images inside some camera of ``cameras``."""
    return any(ego_point_in_view(cam, x, y) for cam in cameras)


class RoadGeometry:
    """The road under an episode's route (embedded simulator), for ``curve_straight``."""

    def __init__(self, s: np.ndarray, k: np.ndarray, speed_limit_mps: float) -> None:
        self.s, self.k = s, k
        self.k_bend = LATERAL_ACCEL_MPS2 / max(float(speed_limit_mps), 1e-3) ** 2

    @classmethod
    def of_episode(cls, record: dict[str, Any]) -> RoadGeometry | None:
        """Rebuild the route of an ``episodes.jsonl`` record (None when it is not an
        embedded-simulator episode or cannot be rebuilt)."""
        config = dict(record.get("config") or {})
        if config.get("scenario") not in FAMILIES:
            return None
        config["cameras"] = []
        try:
            env = EmbeddedDrivingEnv(config)
            env.reset(seed=int(record["seed"]))
        except (ValueError, TypeError, KeyError):
            return None
        scenario = env.scenario
        s, k = route_road_curvature(scenario.route, scenario.network)
        env.close()
        return cls(s, k, scenario.speed_limit_mps)

    def bends_ahead(self, progress_m: float, lookahead_m: float) -> bool:
        k = road_curvature_ahead(self.s, self.k, progress_m - 5.0, progress_m + lookahead_m)
        return k > self.k_bend


# ------------------------------------------------------------------------------ one frame
def _object_in_ego(frame: dict[str, Any], obj: dict[str, Any]) -> np.ndarray | None:
    if "x" not in obj or "y" not in obj:
        return None
    return world_to_ego(
        np.array([float(obj["x"]), float(obj["y"])]),
        np.array([float(frame["ego.x"]), float(frame["ego.y"])]),
        float(frame["ego.yaw"]),
    )


def _matching_actor(actors: list[dict[str, Any]], rel: np.ndarray, kind: str):
    best, best_d = None, ACTOR_MATCH_M
    for a in actors:
        if kind and a.get("kind") != kind:
            continue
        d = math.hypot(float(a["x"]) - rel[0], float(a["y"]) - rel[1])
        if d <= best_d:
            best, best_d = a, d
    return best


def _attribute_findings(
    text: str, obj: dict[str, Any], rel: np.ndarray | None, actors: list[dict[str, Any]],
    cameras: Sequence[CameraSpec],
) -> dict[str, str]:
    """colour / side / distance / out_of_view findings of one frame (check -> detail)."""
    found: dict[str, str] = {}
    colours = set(_COLOUR_RE.findall(text))
    kind = {"vehicle": "vehicle", "pedestrian": "pedestrian"}.get(obj.get("kind", ""), "")
    actor = _matching_actor(actors, rel, kind) if rel is not None else None
    if colours:
        named = obj.get("colour")
        truth = {c for c in (named, actor.get("colour") if actor else None) if c}
        if not truth:
            found["colour"] = f"names {sorted(colours)} but the reason's object has no colour"
        elif colours - truth or (named and actor and actor.get("colour") != named):
            found["colour"] = f"names {sorted(colours)}; object {named}, actor " + (
                f"{actor.get('colour')}" if actor else "not found")
        if rel is not None and (actor is None or not in_view(rel[0], rel[1], cameras)):
            found["out_of_view"] = f"object at ({rel[0]:.1f}, {rel[1]:.1f}) m, ego frame"
    side = _SIDE_RE.findall(text)
    if side and rel is not None and abs(rel[1]) > 1.0:
        truth_side = "left" if rel[1] > 0 else "right"
        if any(s != truth_side for s in side):
            found["side"] = f"says {side}; object on the {truth_side} (y={rel[1]:.1f} m)"
    dist = _DISTANCE_RE.findall(text)
    if dist and rel is not None:
        true_d = float(np.hypot(*rel))
        if any(abs(int(d) - true_d) > max(10.0, 0.25 * true_d) for d in dist):
            found["distance"] = f"says {dist} m; object {true_d:.0f} m away"
    return found


def _curve_finding(
    frame: dict[str, Any], road: RoadGeometry | None, curvature_ahead: float | None,
    lookahead_m: float,
) -> str | None:
    if road is not None:
        progress = float(frame.get("route.progress") or 0.0)
        if road.bends_ahead(progress, lookahead_m):
            return None
        return f"no bend on the road within {lookahead_m:.0f} m of route s={progress:.0f} m"
    k_route = targets_curvature(frame.get("route.targets") or [])
    k = max(k_route, curvature_ahead if curvature_ahead is not None else 0.0)
    return f"driven curvature ahead {k:.4f} 1/m" if k < STRAIGHT_CURVATURE else None


def check_frame(
    frame: dict[str, Any],
    cameras: Sequence[CameraSpec],
    curvature_ahead: float | None = None,
    road: RoadGeometry | None = None,
    lookahead_m: float = LOOKAHEAD_M,
) -> dict[str, str]:
    """The checks one frame fails (check -> detail). ``road``: the episode's road geometry
    for ``curve_straight``; without it, ``curvature_ahead`` (the driven path's, see
    :func:`driven_curvature_ahead`) and the route targets are used."""
    reason = str(frame.get("expert.reason") or "")
    text = normalise(str(frame.get("expert.explanation") or ""))
    found: dict[str, str] = {}
    if reason == Reason.CURVE.value:
        curve = _curve_finding(frame, road, curvature_ahead, lookahead_m)
        if curve is not None:
            found["curve_straight"] = curve
    obj = json.loads(frame.get("expert.reason_object") or "{}") or {}
    actors = json.loads(frame.get("actors") or "[]") or []
    found.update(_attribute_findings(text, obj, _object_in_ego(frame, obj), actors, cameras))
    named = reason_from_explanation(text) if text else None
    if reason and named is not None and named.value != reason:
        found["reason_text"] = f"text names {named.value}"
    place = FAMILY_PLACE.get(str(frame.get("scenario") or ""))
    if place is not None:
        foreign = [p for p, rx in _PLACE_RES.items() if p != place and rx.search(text)]
        if foreign:
            found["place"] = f"names {foreign} in a {frame.get('scenario')} scene"
    return found


# ------------------------------------------------------------------------------ aggregate
def _new_result() -> dict[str, Any]:
    return {
        "frames": 0,
        "episodes": 0,
        "counts": dict.fromkeys(CHECKS, 0),
        "by_reason": {c: collections.Counter() for c in CHECKS},
        "examples": {c: [] for c in CHECKS},
        "curve_frames": 0,
        "episodes_road_rebuilt": 0,
    }


def check_episode_frames(
    frames: Sequence[dict[str, Any]],
    cameras: Sequence[CameraSpec] = (CameraSpec(),),
    result: dict[str, Any] | None = None,
    lookahead_m: float = LOOKAHEAD_M,
    max_examples: int = 5,
    road: RoadGeometry | None = None,
) -> dict[str, Any]:
    """Check one episode's frames (dicts with :data:`COLUMNS`, in frame order); adds to
    ``result`` (a fresh one when None) and returns it. ``road``: the episode's road
    (:meth:`RoadGeometry.of_episode`), else the driven path stands in for it."""
    res = _new_result() if result is None else result
    if not frames:
        return res
    xy = np.array([[float(f["ego.x"]), float(f["ego.y"])] for f in frames])
    yaw = np.array([float(f["ego.yaw"]) for f in frames])
    k_ahead = driven_curvature_ahead(xy, yaw, lookahead_m)
    res["episodes"] += 1
    res["episodes_road_rebuilt"] += int(road is not None)
    for f, k in zip(frames, k_ahead, strict=True):
        res["frames"] += 1
        res["curve_frames"] += int(f.get("expert.reason") == Reason.CURVE.value)
        for check, detail in check_frame(f, cameras, float(k), road, lookahead_m).items():
            res["counts"][check] += 1
            res["by_reason"][check][str(f.get("expert.reason"))] += 1
            if len(res["examples"][check]) < max_examples:
                res["examples"][check].append({
                    "episode_id": f.get("episode_id"), "frame_index": f.get("frame_index"),
                    "scenario": f.get("scenario"), "reason": f.get("expert.reason"),
                    "explanation": f.get("expert.explanation"), "detail": detail,
                })
    return res


def check_labels(
    root: str | Path,
    skip_corrupt: bool = False,
    lookahead_m: float = LOOKAHEAD_M,
    max_examples: int = 5,
    rebuild_roads: bool = True,
) -> dict[str, Any]:
    """Run every check over a dataset directory (label and state columns only).

    ``rebuild_roads``: rebuild each embedded episode's road for ``curve_straight`` (one
    simulator reset per episode, ~0.1 s) rather than judge by the path driven.

    Returns ``{"frames", "episodes", "episodes_road_rebuilt", "curve_frames",
    "counts": {check: n},
    "by_reason": {check: {reason: n}}, "examples": {check: [...]}}``; ``counts`` of every
    check should be 0 for a clean dataset."""
    ds = open_dataset(root, skip_corrupt=skip_corrupt)
    cameras = ds.camera_specs or [CameraSpec()]
    res = _new_result()
    for record in ds.episodes:
        table = ds.read_episode(record["episode_id"], list(COLUMNS))
        if table is None:  # corrupt and skipped (counted in ds.skipped)
            continue
        road = RoadGeometry.of_episode(record) if rebuild_roads else None
        check_episode_frames(table.to_pylist(), cameras, res, lookahead_m, max_examples, road)
    res["by_reason"] = {c: dict(v) for c, v in res["by_reason"].items()}
    res["root"] = str(root)
    return res


def format_label_checks(result: dict[str, Any]) -> str:
    """A short table: frames flagged per check (and per reason), one example each."""
    lines = [f"label checks: {result['frames']} frames, {result['episodes']} episodes, "
             f"{result['curve_frames']} 'curve' frames"]
    for check in CHECKS:
        n = result["counts"][check]
        reasons = ", ".join(f"{r} {c}" for r, c in sorted(
            dict(result["by_reason"][check]).items(), key=lambda kv: -kv[1]))
        lines.append(f"  {check:<15} {n:>6}" + (f"  ({reasons})" if reasons else ""))
        for ex in result["examples"][check][:1]:
            lines.append(f"      e.g. {ex['episode_id']}#{ex['frame_index']} {ex['reason']}: "
                         f"{ex['explanation']!r} ({ex['detail']})")
    return "\n".join(lines)
