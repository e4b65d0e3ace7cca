"""Coordinate frames, and every conversion between them, in one place.

Frames (all SI units: metres, radians, seconds):

``world``
    Right-handed, x east, y north, z up. Yaw is measured counter-clockwise from +x (so a
    positive yaw rate is a left turn). The embedded simulator's road networks are built
    directly in this frame. highway-env's lane and bicycle-model maths is frame-agnostic:
    we read its ``(x, y)`` as world ``(x, y)`` and its heading as world yaw, which makes a
    positive highway-env steering angle a *left* turn here. Traffic drives on the right.

``ego``
    ISO 8855 / nuScenes ego frame: origin at the ego's reference point (centre of the
    bounding box projected to the ground), x forward, y left, z up. Trajectories in a
    ``Decision``, route target points and recorded future waypoints are in this frame.

``camera`` (OpenCV optical frame)
    x right, y down, z forward (along the optical axis), origin at the camera centre.
    ``perception.camera_model`` projects camera-frame points to pixels with the pinhole
    intrinsics of a ``CameraSpec``. A camera's *mount* is given in the ego frame (x, y, z
    and yaw/pitch/roll with the ego convention: yaw left-positive, pitch nose-down positive,
    roll right-side-down positive).

``carla``
    Unreal / CARLA world: left-handed, x forward, y right, z up, yaw clockwise-positive in
    degrees. Converted only at the CARLA boundary with :func:`carla_to_world_xy_yaw` and
    :func:`world_to_carla_xy_yaw`.

``control``
    ``Control.steer`` follows CARLA's ``VehicleControl``: +1 steers *right*. The embedded
    simulator maps it to a front-wheel angle of ``-steer * max_steer_angle_rad`` in the
    world frame (see :func:`steer_to_wheel_angle`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "wrap_angle",
    "rotation_2d",
    "world_to_ego",
    "ego_to_world",
    "ego_to_camera_rotation",
    "carla_to_world_xy_yaw",
    "world_to_carla_xy_yaw",
    "steer_to_wheel_angle",
    "wheel_angle_to_steer",
    "lateral_offset",
]


def wrap_angle(angle: float | np.ndarray) -> float | np.ndarray:
    """Wrap an angle (rad) into [-pi, pi)."""
    if isinstance(angle, np.ndarray):
        return (angle + np.pi) % (2 * np.pi) - np.pi
    return (float(angle) + math.pi) % (2 * math.pi) - math.pi


def rotation_2d(yaw: float) -> np.ndarray:
    """2x2 rotation matrix for a counter-clockwise angle ``yaw`` (rad)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s], [s, c]])


def world_to_ego(points_xy: np.ndarray, ego_xy: np.ndarray, ego_yaw: float) -> np.ndarray:
    """Express world-frame points ``(..., 2)`` in the ego frame (x forward, y left), metres."""
    pts = np.asarray(points_xy, dtype=np.float64)
    delta = pts - np.asarray(ego_xy, dtype=np.float64)
    c, s = math.cos(ego_yaw), math.sin(ego_yaw)
    x = delta[..., 0] * c + delta[..., 1] * s
    y = -delta[..., 0] * s + delta[..., 1] * c
    return np.stack([x, y], axis=-1)


def lateral_offset(x, y, x0: float, y0: float, yaw0: float):
    """Sideways displacement (m, left +) of the point(s) ``(x, y)`` from ``(x0, y0)``, measured
    across the heading ``yaw0`` there: how far a car has moved over since that pose (one lane
    after a lane change on a straight road). Works on floats and numpy arrays."""
    return -(x - x0) * np.sin(yaw0) + (y - y0) * np.cos(yaw0)


def ego_to_world(points_xy: np.ndarray, ego_xy: np.ndarray, ego_yaw: float) -> np.ndarray:
    """Inverse of :func:`world_to_ego`: ego-frame points ``(..., 2)`` to world metres."""
    pts = np.asarray(points_xy, dtype=np.float64)
    c, s = math.cos(ego_yaw), math.sin(ego_yaw)
    x = pts[..., 0] * c - pts[..., 1] * s + ego_xy[0]
    y = pts[..., 0] * s + pts[..., 1] * c + ego_xy[1]
    return np.stack([x, y], axis=-1)


def ego_to_camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation taking ego-frame vectors into the camera optical frame.

    The camera is mounted with the given yaw (left-positive), pitch (nose-down positive) and
    roll relative to the ego axes. Returns a 3x3 matrix ``R`` with ``p_cam = R @ (p_ego - t)``.
    """
    # axes of the mounted (not yet optical) camera body in the ego frame:
    # body = Rz(yaw) Ry(pitch) Rx(roll)
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    body_to_ego = rz @ ry @ rx
    # Optical axes expressed in body axes: z_opt = +x_body, x_opt = -y_body, y_opt = -z_body.
    optical_to_body = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=np.float64)
    return (body_to_ego @ optical_to_body).T


def carla_to_world_xy_yaw(x: float, y: float, yaw_deg: float) -> tuple[float, float, float]:
    """CARLA location (m) and yaw (deg, clockwise) to world (x, y, yaw rad counter-clockwise)."""
    return x, -y, -math.radians(yaw_deg)


def world_to_carla_xy_yaw(x: float, y: float, yaw: float) -> tuple[float, float, float]:
    """World (x, y, yaw rad) to CARLA location (m) and yaw (deg), inverse of the above."""
    return x, -y, -math.degrees(yaw)


def steer_to_wheel_angle(steer: float, max_steer_angle_rad: float) -> float:
    """CARLA-convention steer in [-1, 1] (+ = right) to a world-frame wheel angle (+ = left)."""
    return -float(steer) * max_steer_angle_rad


def wheel_angle_to_steer(angle_rad: float, max_steer_angle_rad: float) -> float:
    """World-frame wheel angle (rad, + = left) to a CARLA-convention steer clipped to [-1, 1]."""
    return float(np.clip(-angle_rad / max_steer_angle_rad, -1.0, 1.0))
