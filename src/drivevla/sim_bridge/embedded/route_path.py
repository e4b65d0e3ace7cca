"""The route centreline (:class:`RoutePath`, parametrised by arc length) and the segment
test of the red-light probe. World metres throughout."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# How strongly RoutePath.project prefers candidates near the hint (m of distance per m of arc)
# so that, where the route passes close to itself, the projection stays on the current pass.
_CONTINUITY_WEIGHT = 0.02


class RoutePath:
    """The route centreline as a polyline in world metres, parametrised by arc length ``s``."""

    def __init__(self, points: np.ndarray, speed_limit_mps: float) -> None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 2:
            raise ValueError(f"route points must be (N >= 2, 2) world metres, got {pts.shape}")
        if not np.isfinite(pts).all():
            raise ValueError("route points contain NaN or inf")
        speed_limit_mps = float(speed_limit_mps)
        if not (math.isfinite(speed_limit_mps) and speed_limit_mps > 0):
            raise ValueError(f"speed_limit_mps={speed_limit_mps!r} must be a finite number > 0")
        # Drop repeated points: zero-length segments have no direction.
        step = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        keep = np.concatenate([[True], step > 1e-9])
        pts = pts[keep]
        if pts.shape[0] < 2:
            raise ValueError("route has zero length (all points coincide)")
        seg = np.diff(pts, axis=0)
        seg_len = np.linalg.norm(seg, axis=1)
        self.points = pts
        self.speed_limit_mps = speed_limit_mps
        self.cum_s = np.concatenate([[0.0], np.cumsum(seg_len)])
        self.length_m = float(self.cum_s[-1])
        self._seg_len = seg_len
        self._ax = pts[:-1, 0].copy()
        self._ay = pts[:-1, 1].copy()
        self._dx = seg[:, 0] / seg_len
        self._dy = seg[:, 1] / seg_len
        self._n_seg = seg_len.shape[0]

    @property
    def end_xy(self) -> np.ndarray:
        return self.points[-1].copy()

    def project(
        self, xy: Any, hint_s: float | None = None, window_m: float = 40.0
    ) -> tuple[float, float]:
        """Project a world point onto the route: ``(s along route in m, distance to route in m)``.

        Without ``hint_s`` the whole route is searched (nearest point). With ``hint_s`` only the
        segments within ``window_m`` of arc around it are searched, which is cheap and keeps the
        projection on the current pass where the route comes back near itself (roundabouts,
        loops). Among those, candidates are ranked by ``distance + 0.02 * |s - hint_s|``, so
        where two passes are about equally near the current one wins (this shifts ``s`` towards
        the hint by about 2 % of the lateral distance; the returned distance is the true one).
        """
        px, py = float(xy[0]), float(xy[1])
        if hint_s is None:
            i0, i1 = 0, self._n_seg
        else:
            lo, hi = hint_s - window_m, hint_s + window_m
            i0 = max(int(np.searchsorted(self.cum_s, lo, side="left")) - 1, 0)
            i1 = min(int(np.searchsorted(self.cum_s, hi, side="left")), self._n_seg)
            if i0 >= self._n_seg:  # hint beyond the end
                i0 = self._n_seg - 1
            i1 = max(i1, i0 + 1)
        ax, ay = self._ax[i0:i1], self._ay[i0:i1]
        dx, dy = self._dx[i0:i1], self._dy[i0:i1]
        t = np.clip((px - ax) * dx + (py - ay) * dy, 0.0, self._seg_len[i0:i1])
        ex = px - (ax + t * dx)
        ey = py - (ay + t * dy)
        dist = np.sqrt(ex * ex + ey * ey)
        s_all = self.cum_s[i0:i1] + t
        if hint_s is None:
            k = int(np.argmin(dist))
        else:
            k = int(np.argmin(dist + _CONTINUITY_WEIGHT * np.abs(s_all - hint_s)))
        return float(s_all[k]), float(dist[k])

    def _segment_at(self, s: float) -> tuple[int, float]:
        s = min(max(float(s), 0.0), self.length_m)
        i = int(np.searchsorted(self.cum_s, s, side="right")) - 1
        i = min(max(i, 0), self._n_seg - 1)
        return i, s - float(self.cum_s[i])

    def point_at(self, s: float) -> np.ndarray:
        """World point (2,) at arc length ``s`` (clamped to [0, length])."""
        i, ds = self._segment_at(s)
        return np.array([self._ax[i] + ds * self._dx[i], self._ay[i] + ds * self._dy[i]])

    def heading_at(self, s: float) -> float:
        """Route direction (world yaw, rad) at arc length ``s``."""
        i, _ = self._segment_at(s)
        return math.atan2(self._dy[i], self._dx[i])


def _orientation(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> float:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


def segments_intersect(
    p1: tuple[float, float],
    p2: tuple[float, float],
    q1: tuple[float, float],
    q2: tuple[float, float],
) -> bool:
    """Whether closed segments p1-p2 and q1-q2 share a point (touching counts)."""
    d1 = _orientation(q1[0], q1[1], q2[0], q2[1], p1[0], p1[1])
    d2 = _orientation(q1[0], q1[1], q2[0], q2[1], p2[0], p2[1])
    d3 = _orientation(p1[0], p1[1], p2[0], p2[1], q1[0], q1[1])
    d4 = _orientation(p1[0], p1[1], p2[0], p2[1], q2[0], q2[1])
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on_segment(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    return (
        (d1 == 0 and on_segment(q1, q2, p1))
        or (d2 == 0 and on_segment(q1, q2, p2))
        or (d3 == 0 and on_segment(p1, p2, q1))
        or (d4 == 0 and on_segment(p1, p2, q2))
    )
