"""Augmentation: the trajectory correction is exactly the inverse rigid transform; the image
approximations move content the right way by the right amount; everything is off by default."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from drivevla.perception.augment import (
    AugmentConfig,
    DrivingAugment,
    perturb_points,
    photometric_jitter,
    source_pixels,
    unperturb_points,
    warp_image,
    yaw_shift_px,
)
from drivevla.sim_bridge.types import CameraSpec

SPEC = CameraSpec(name="front", width=160, height=90, fov_deg=90.0)


@pytest.mark.parametrize("dy, dyaw", [(0.0, 0.0), (0.7, 0.0), (0.0, 0.05), (-0.4, -0.03)])
def test_trajectory_correction_is_the_inverse_rigid_transform(dy, dyaw):
    rng = np.random.default_rng(0)
    pts = rng.uniform(-30, 30, size=(50, 2))
    moved = perturb_points(pts, dy, dyaw)
    # the perturbed ego pose as a rigid transform T: ego' -> ego; moved = T^-1 pts
    c, s = math.cos(dyaw), math.sin(dyaw)
    t = np.array([[c, -s, 0.0], [s, c, dy], [0.0, 0.0, 1.0]])
    expected = (np.linalg.inv(t) @ np.c_[pts, np.ones(len(pts))].T).T[:, :2]
    np.testing.assert_allclose(moved, expected, atol=1e-12)
    np.testing.assert_allclose(unperturb_points(moved, dy, dyaw), pts, atol=1e-12)
    # rigid: distances are preserved
    d0 = np.linalg.norm(pts[1:] - pts[:-1], axis=1)
    d1 = np.linalg.norm(moved[1:] - moved[:-1], axis=1)
    np.testing.assert_allclose(d0, d1, atol=1e-12)


def test_shifting_left_moves_targets_right():
    (p,) = perturb_points(np.array([[10.0, 0.0]]), 1.0, 0.0)
    assert p == pytest.approx([10.0, -1.0])
    (q,) = perturb_points(np.array([[10.0, 0.0]]), 0.0, math.radians(10))
    assert q[1] < 0 and math.hypot(*q) == pytest.approx(10.0)


def test_yaw_is_a_horizontal_shift_of_f_tan_dyaw():
    dyaw = math.radians(3.0)
    src = source_pixels(SPEC, 0.0, dyaw)
    shift = yaw_shift_px(SPEC, dyaw)
    assert shift == pytest.approx(SPEC.focal_px * math.tan(dyaw))
    expected = np.arange(SPEC.width)[None, :] + 0.5 - shift
    np.testing.assert_allclose(src[..., 0], np.broadcast_to(expected, src[..., 0].shape))
    # a vertical stripe moves right when the car turns left
    img = torch.zeros(3, SPEC.height, SPEC.width)
    img[:, :, 80] = 1.0
    out = warp_image(img, SPEC, 0.0, dyaw)
    col = int(out[0].sum(dim=0).argmax())
    assert col == pytest.approx(80 + shift, abs=1)


def test_lateral_shift_moves_ground_pixels_and_not_the_sky():
    src = source_pixels(SPEC, 0.5, 0.0)
    u0 = np.arange(SPEC.width) + 0.5
    top, bottom = src[5, :, 0], src[-1, :, 0]
    np.testing.assert_allclose(top, u0)  # above the horizon: infinitely far, unmoved
    # a ground pixel: the ego moved left, so in the recorded image it lies to the left
    # (u_src < u): shear proportional to the distance below the horizon (pitch 0, height z)
    v = SPEC.height - 0.5
    expected = u0 - 0.5 * (v - SPEC.height / 2) / SPEC.z
    np.testing.assert_allclose(bottom, expected, atol=1e-6)


def test_photometric_jitter_is_seeded_and_stays_in_range():
    img = torch.rand(2, 3, 12, 16)
    a = photometric_jitter(img, np.random.default_rng(1), 0.3, 0.3, 0.3)
    b = photometric_jitter(img, np.random.default_rng(1), 0.3, 0.3, 0.3)
    c = photometric_jitter(img, np.random.default_rng(2), 0.3, 0.3, 0.3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    same = photometric_jitter(img, np.random.default_rng(1), 0.0, 0.0, 0.0)
    assert torch.allclose(same, img, atol=1e-6)


def _item():
    wps = torch.tensor([[5.0 * (k + 1), 0.0] for k in range(6)])
    return {
        "images": torch.rand(1, 3, SPEC.height, SPEC.width),
        "target_waypoints": wps.clone(),
        "waypoint_mask": torch.tensor([1.0, 1, 1, 1, 0, 0]),
        "route": torch.tensor([[10.0 * (k + 1), 0.0] for k in range(5)]),
    }


def test_augment_is_off_by_default_and_corrects_targets_when_on():
    item = _item()
    before = {k: v.clone() for k, v in item.items()}
    out = DrivingAugment(cameras=[SPEC])(item)
    assert all(torch.equal(out[k], before[k]) for k in before)

    aug = DrivingAugment(
        AugmentConfig(max_lateral_m=0.5, max_yaw_deg=2.0, pose_prob=1.0, seed=3), cameras=[SPEC]
    )
    out = aug(_item())
    assert not torch.equal(out["images"], before["images"])
    lateral = out["route"][:, 1]
    assert lateral.abs().max() > 0  # the route now starts off to one side
    # the correction is a rigid transform of the original targets: distances preserved
    d0 = torch.linalg.norm(before["route"][1:] - before["route"][:-1], dim=1)
    d1 = torch.linalg.norm(out["route"][1:] - out["route"][:-1], dim=1)
    assert torch.allclose(d0, d1, atol=1e-4)
    assert torch.equal(out["target_waypoints"][4:], torch.zeros(2, 2))  # masked stay zero
