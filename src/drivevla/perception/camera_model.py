"""Pinhole camera maths for ego-mounted cameras (pure numpy).

Conventions (see :mod:`drivevla.core.frames`): world x, y on the ground, z up; the ego
stands on the ground (its reference point at z = 0); a :class:`CameraSpec` mount is given in
the ego frame; camera coordinates are the OpenCV optical frame (x right, y down, z forward).

Pixels: ``(u, v)`` with u to the right and v down; ``(0, 0)`` is the top-left corner of the
top-left pixel, so the centre of pixel ``(i, j)`` is ``(i + 0.5, j + 0.5)`` and the principal
point ``(W / 2, H / 2)`` is the image centre. ``K`` is ``CameraSpec.intrinsics``.
"""

from __future__ import annotations

import math

import numpy as np

from drivevla.core.frames import ego_to_camera_rotation
from drivevla.core.scene import ActorBox
from drivevla.core.types import CameraSpec

__all__ = [
    "NEAR_PLANE_M",
    "camera_pose_world",
    "ego_point_in_view",
    "world_to_camera",
    "project_world_points",
    "project_box",
]

NEAR_PLANE_M = 0.1  # the renderer's near plane; points at or closer than this are not imaged

# the 12 edges of a box given as ActorBox.corners_3d() orders its corners (bottom 0-3, top 4-7)
_BOX_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)


def camera_pose_world(
    spec: CameraSpec, ego_x: float, ego_y: float, ego_yaw: float
) -> tuple[np.ndarray, np.ndarray]:
    """World pose of a camera mounted on an ego at ``(ego_x, ego_y)`` with yaw ``ego_yaw`` (rad).

    Returns ``(R_world_to_cam, t_cam_in_world)``: a 3x3 rotation and the camera centre (3,) in
    world metres, such that ``p_cam = R_world_to_cam @ (p_world - t_cam_in_world)``.
    """
    c, s = math.cos(ego_yaw), math.sin(ego_yaw)
    ego_to_world = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    r_ego_to_cam = ego_to_camera_rotation(
        math.radians(spec.yaw_deg), math.radians(spec.pitch_deg), math.radians(spec.roll_deg)
    )
    r_world_to_cam = r_ego_to_cam @ ego_to_world.T
    t_cam = np.array([ego_x, ego_y, 0.0]) + ego_to_world @ np.array([spec.x, spec.y, spec.z])
    return r_world_to_cam, t_cam


def world_to_camera(
    spec: CameraSpec, ego_x: float, ego_y: float, ego_yaw: float, points_world: np.ndarray
) -> np.ndarray:
    """World points ``(N, 3)`` expressed in the camera optical frame ``(N, 3)``, metres."""
    r, t = camera_pose_world(spec, ego_x, ego_y, ego_yaw)
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    return (pts - t) @ r.T


def _pixels(spec: CameraSpec, pts_cam: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points ``(N, 3)`` to pixels ``(N, 2)``."""
    k = spec.intrinsics
    z = pts_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k[0, 0] * pts_cam[:, 0] / z + k[0, 2]
        v = k[1, 1] * pts_cam[:, 1] / z + k[1, 2]
    return np.stack([u, v], axis=1)


def project_world_points(
    spec: CameraSpec, ego_x: float, ego_y: float, ego_yaw: float, points_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project world points ``(N, 3)`` into the image of ``spec``.

    Returns ``(uv, depth)``: pixels ``(N, 2)`` and depth ``(N,)`` in metres along the optical
    axis. Points with ``depth <= 0`` are behind the camera and their ``uv`` is meaningless
    (``inf``/``nan`` at depth 0); callers should mask with ``depth > NEAR_PLANE_M``.
    """
    pts_cam = world_to_camera(spec, ego_x, ego_y, ego_yaw, points_world)
    return _pixels(spec, pts_cam), pts_cam[:, 2].copy()


def project_box(
    spec: CameraSpec,
    ego_x: float,
    ego_y: float,
    ego_yaw: float,
    box: ActorBox,
    near: float = NEAR_PLANE_M,
) -> tuple[float, float, float, float] | None:
    """Image-space bounding box ``(u_min, v_min, u_max, v_max)`` of an actor's 3D box.

    The box edges are clipped against the near plane, so a box straddling the camera gives the
    bounds of its visible part. The result is clipped to ``[0, W] x [0, H]``. Returns ``None``
    when the box lies entirely at or behind the near plane, or entirely outside the image.
    """
    corners = world_to_camera(spec, ego_x, ego_y, ego_yaw, box.corners_3d())
    in_front = corners[:, 2] > near
    if not in_front.any():
        return None
    pts = [corners[in_front]]
    # where an edge crosses the near plane, keep the crossing point
    a, b = corners[_BOX_EDGES[:, 0]], corners[_BOX_EDGES[:, 1]]
    crosses = (a[:, 2] > near) != (b[:, 2] > near)
    if crosses.any():
        a, b = a[crosses], b[crosses]
        frac = (near - a[:, 2]) / (b[:, 2] - a[:, 2])
        pts.append(a + frac[:, None] * (b - a))
    uv = _pixels(spec, np.concatenate(pts, axis=0))
    u_min, v_min = uv.min(axis=0)
    u_max, v_max = uv.max(axis=0)
    if u_max <= 0.0 or v_max <= 0.0 or u_min >= spec.width or v_min >= spec.height:
        return None
    return (
        float(max(u_min, 0.0)),
        float(max(v_min, 0.0)),
        float(min(u_max, spec.width)),
        float(min(v_max, spec.height)),
    )


def ego_point_in_view(spec: CameraSpec, x: float, y: float, z: float = 0.75) -> bool:
    """Whether the ego-frame point ``(x, y, z)`` (x forward, y left, z up; metres; by default
    about the middle height of a car) images inside the camera ``spec``."""
    uv, depth = project_world_points(spec, 0.0, 0.0, 0.0, np.array([[x, y, z]], dtype=float))
    u, v = uv[0]
    return bool(depth[0] > NEAR_PLANE_M and 0.0 <= u <= spec.width and 0.0 <= v <= spec.height)
