"""Pinhole maths of perception.camera_model (no rendering)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivevla.core.scene import ActorBox, ActorKind
from drivevla.core.types import CameraSpec
from drivevla.perception.camera_model import (
    camera_pose_world,
    project_box,
    project_world_points,
)


def _box(x: float, y: float, yaw: float = 0.0, width: float = 1.9) -> ActorBox:
    return ActorBox(1, ActorKind.VEHICLE, x, y, yaw, 4.5, width, 1.5)


def test_pose_puts_mount_in_world_and_optical_axis_forward() -> None:
    spec = CameraSpec(x=1.5, y=0.5, z=1.6)
    r, t = camera_pose_world(spec, 10.0, 20.0, math.pi / 2)
    # ego faces +y: the mount's forward offset goes north, its left offset goes west
    np.testing.assert_allclose(t, [10.0 - 0.5, 20.0 + 1.5, 1.6], atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(r[2], [0.0, 1.0, 0.0], atol=1e-12)  # optical z = ego forward
    np.testing.assert_allclose(r[1], [0.0, 0.0, -1.0], atol=1e-12)  # optical y = down


def test_point_on_axis_projects_to_image_centre() -> None:
    spec = CameraSpec(width=320, height=180)
    uv, depth = project_world_points(spec, 0.0, 0.0, 0.0, np.array([[21.5, 0.0, 1.6]]))
    np.testing.assert_allclose(uv[0], [160.0, 90.0], atol=1e-9)
    assert depth[0] == pytest.approx(20.0)


def test_left_up_and_fov_edge() -> None:
    spec = CameraSpec(width=320, height=180, fov_deg=90.0)
    pts = np.array(
        [
            [11.5, 2.0, 1.6],  # left of the axis
            [11.5, 0.0, 3.6],  # above the axis
            [11.5, -10.0, 1.6],  # 45 deg right: the right image edge at fov 90
        ]
    )
    uv, _ = project_world_points(spec, 0.0, 0.0, 0.0, pts)
    assert uv[0, 0] < 160.0 and uv[0, 1] == pytest.approx(90.0)
    assert uv[1, 1] < 90.0 and uv[1, 0] == pytest.approx(160.0)
    assert uv[2, 0] == pytest.approx(320.0)
    # 2 m lateral at 10 m depth with f = 160 px is 32 px
    assert uv[0, 0] == pytest.approx(160.0 - 32.0)


def test_rigid_motion_of_ego_and_points_leaves_pixels_unchanged() -> None:
    spec = CameraSpec(yaw_deg=15.0, pitch_deg=5.0, roll_deg=3.0, x=0.7, y=-0.3, z=1.9)
    rng = np.random.default_rng(0)
    local = np.column_stack(
        [rng.uniform(5, 40, 20), rng.uniform(-10, 10, 20), rng.uniform(0, 3, 20)]
    )
    uv0, d0 = project_world_points(spec, 0.0, 0.0, 0.0, local)
    yaw, ox, oy = 2.1, -30.0, 55.0
    c, s = math.cos(yaw), math.sin(yaw)
    moved = local.copy()
    moved[:, 0] = c * local[:, 0] - s * local[:, 1] + ox
    moved[:, 1] = s * local[:, 0] + c * local[:, 1] + oy
    uv1, d1 = project_world_points(spec, ox, oy, yaw, moved)
    np.testing.assert_allclose(uv1, uv0, atol=1e-8)
    np.testing.assert_allclose(d1, d0, atol=1e-10)


def test_mount_angles() -> None:
    ahead = np.array([[21.5, 0.0, 1.6]])
    pitched = CameraSpec(pitch_deg=10.0)  # nose down: the horizon moves up the image
    uv, _ = project_world_points(pitched, 0.0, 0.0, 0.0, ahead)
    assert uv[0, 1] < 90.0 - 20.0
    left_cam = CameraSpec(yaw_deg=90.0, x=0.0, y=0.0)
    uv, d = project_world_points(left_cam, 0.0, 0.0, 0.0, np.array([[0.0, 10.0, 1.6]]))
    np.testing.assert_allclose(uv[0], [160.0, 90.0], atol=1e-9)
    assert d[0] == pytest.approx(10.0)
    rolled = CameraSpec(roll_deg=90.0)  # right side down: world up is the image's left
    uv, _ = project_world_points(rolled, 0.0, 0.0, 0.0, np.array([[11.5, 0.0, 4.6]]))
    assert uv[0, 0] < 160.0 - 20.0 and uv[0, 1] == pytest.approx(90.0)


def test_project_box_behind_outside_and_straddling() -> None:
    spec = CameraSpec()
    assert project_box(spec, 0.0, 0.0, 0.0, _box(-10.0, 0.0)) is None  # behind
    assert project_box(spec, 0.0, 0.0, 0.0, _box(5.0, 30.0)) is None  # in front, far left
    # a box around the camera: only its front part is visible, clipped to the image
    box = project_box(spec, 0.0, 0.0, 0.0, _box(1.5, 0.0))
    assert box is not None
    u0, v0, u1, v1 = box
    assert 0.0 <= u0 < u1 <= spec.width and 0.0 <= v0 < v1 <= spec.height


def test_project_box_matches_corner_projection_when_inside() -> None:
    spec = CameraSpec()
    actor = _box(20.0, 1.0, 0.3)
    uv, depth = project_world_points(spec, 0.0, 0.0, 0.0, actor.corners_3d())
    assert (depth > 0).all()
    box = project_box(spec, 0.0, 0.0, 0.0, actor)
    assert box == pytest.approx((*uv.min(axis=0), *uv.max(axis=0)))


def test_project_box_width_scales_with_focal_length() -> None:
    actor = _box(13.5, 0.0, width=2.5)
    widths = {}
    for fov in (60.0, 90.0):
        u0, _, u1, _ = project_box(CameraSpec(fov_deg=fov), 0.0, 0.0, 0.0, actor)
        widths[fov] = u1 - u0
    ratio = widths[60.0] / widths[90.0]
    assert ratio == pytest.approx(math.tan(math.radians(45)) / math.tan(math.radians(30)), rel=1e-6)
