"""Augmentation: the trajectory correction is exactly the inverse rigid transform; the image
approximations move content the right way by the right amount; everything is off by default."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from drivevla.core.types import CameraSpec
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


# ---------------------------------------------------------------- batched (training) warp


def test_batched_point_perturbation_matches_the_numpy_one_per_item():
    from drivevla.perception.augment import perturb_points_torch

    rng = np.random.default_rng(1)
    pts = rng.uniform(-30, 30, size=(5, 6, 2))
    dy = rng.uniform(-1, 1, size=5)
    dyaw = rng.uniform(-0.1, 0.1, size=5)
    got = perturb_points_torch(torch.from_numpy(pts), torch.from_numpy(dy),
                               torch.from_numpy(dyaw)).numpy()
    for i in range(5):
        np.testing.assert_allclose(got[i], perturb_points(pts[i], dy[i], dyaw[i]), atol=1e-9)


def _stripe_batch(n: int, h: int, w: int, col: int) -> dict[str, torch.Tensor]:
    images = torch.zeros(n, 1, 3, h, w, dtype=torch.uint8)
    images[..., col] = 255
    wps = torch.stack([torch.tensor([[5.0 * (k + 1), 0.0] for k in range(6)])] * n)
    mask = torch.ones(n, 6)
    mask[:, 4:] = 0.0
    wps = wps * mask.unsqueeze(-1)
    return {"images": images, "target_waypoints": wps, "route": wps[:, :5].clone(),
            "waypoint_mask": mask, "heading_change": torch.zeros(n),
            "lateral_offset": torch.zeros(n)}


def test_pose_warp_bank_moves_images_and_targets_together():
    """Frames recorded at 320x180 and resized to 96x160 (not the same aspect): a yaw-only
    perturbation shifts a vertical stripe by f tan(dyaw) scaled to the resized width, and the
    item's targets are the exact inverse rigid transform of its own draw."""
    from drivevla.perception.augment import PoseWarpBank

    spec = CameraSpec(name="front", width=320, height=180, fov_deg=90.0)
    h, w = 96, 160
    bank = PoseWarpBank([spec], (h, w), max_lateral_m=0.0, max_yaw_deg=4.0, n_lateral=1,
                        n_yaw=3)
    assert len(bank) == 3 and bank.grids.shape == (3, 1, h, w, 2)
    batch = _stripe_batch(32, h, w, col=80)
    out = bank(batch, prob=1.0, generator=torch.Generator().manual_seed(0))
    assert out["images"].dtype == torch.uint8 and batch["images"][:, 0, 0, 0].sum() == 32 * 255
    expected_px = yaw_shift_px(spec, math.radians(4.0)) * w / spec.width  # about 3.6 px
    signs = set()
    for i in range(32):
        cols = out["images"][i, 0, 0].float().mean(0)
        centre = float((cols * (torch.arange(w) + 0.5)).sum() / cols.sum())
        dyaw = float(out["heading_change"][i])  # the item's own draw, recorded on it
        signs.add(round(dyaw, 6))
        assert centre - 80.5 == pytest.approx(math.copysign(expected_px, dyaw) if dyaw else 0.0,
                                              abs=0.3)
        want = perturb_points(batch["target_waypoints"][i].numpy(), 0.0, dyaw)
        want[4:] = 0.0  # masked waypoints stay zero
        np.testing.assert_allclose(out["target_waypoints"][i].numpy(), want, atol=1e-5)
        np.testing.assert_allclose(out["route"][i].numpy(),
                                   perturb_points(batch["route"][i].numpy(), 0.0, dyaw),
                                   atol=1e-5)
    assert len(signs) == 3  # all three yaws were drawn


def test_pose_warp_bank_lateral_shift_and_probability():
    from drivevla.perception.augment import PoseWarpBank

    spec = CameraSpec(name="front", width=160, height=96, fov_deg=90.0)
    bank = PoseWarpBank([spec], (96, 160), max_lateral_m=0.8, max_yaw_deg=0.0, n_lateral=2,
                        n_yaw=1)
    batch = _stripe_batch(64, 96, 160, col=80)
    out = bank(batch, prob=0.5, generator=torch.Generator().manual_seed(3))
    moved = out["lateral_offset"] != 0
    assert 10 < int(moved.sum()) < 54  # about half the items
    assert torch.equal(out["images"][~moved], batch["images"][~moved])
    assert torch.equal(out["target_waypoints"][~moved], batch["target_waypoints"][~moved])
    for i in moved.nonzero().squeeze(1).tolist():
        dy = float(out["lateral_offset"][i])
        assert abs(dy) == pytest.approx(0.8)
        # shifted left, the targets (straight ahead) now lie to the right, and vice versa
        assert float(out["target_waypoints"][i, 0, 1]) == pytest.approx(-dy, abs=1e-5)
        # the ground moves, the stripe's top (above the horizon) does not
        assert not torch.equal(out["images"][i, :, :, -1], batch["images"][i, :, :, -1])
        assert torch.equal(out["images"][i, :, :, 0], batch["images"][i, :, :, 0])
    assert bank(batch, prob=0.0, generator=torch.Generator()) is batch
    with pytest.raises(ValueError, match="camera"):
        bank({**batch, "images": batch["images"][..., :80]}, 1.0, torch.Generator())
    with pytest.raises(ValueError, match="max_lateral_m"):
        PoseWarpBank([spec], (96, 160), max_lateral_m=-1.0, max_yaw_deg=0.0)
