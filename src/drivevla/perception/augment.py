"""Training-time augmentation of dataset items: photometric jitter and a small ego-pose
perturbation (lateral shift and yaw) with the matching trajectory correction. OFF by default.

Pose perturbation: we pretend the ego stood at pose ``(0, dy, dyaw)`` in its recorded ego
frame (``dy`` metres to the left, rotated ``dyaw`` rad counter-clockwise). Every ego-frame
target (future / expert waypoints, route target points) is re-expressed in that perturbed
frame with the exact inverse rigid transform ``p' = R(-dyaw) (p - (0, dy))``
(:func:`perturb_points`), so the labels lead back to the recorded path: recovery examples.

The images can only be approximated, since the camera never was there:

- **yaw**: a pure rotation of the camera is a homography; for small angles we approximate it
  by a horizontal shift of ``f * tan(dyaw)`` pixels (content moves right when the car turns
  left), exact at the principal point and off by a fraction of a pixel per degree elsewhere;
- **lateral shift**: each pixel below the horizon is treated as a point on the ground plane
  (z = 0): it is back-projected from the shifted camera, moved by ``dy`` and re-projected
  into the recorded camera (a homography of the ground plane). Pixels above the horizon (or
  whose ground point is farther than ``GROUND_MAX_M``) are treated as infinitely far and do
  not move. Anything standing above the ground (vehicles, poles) is therefore sheared, not
  moved as a solid: keep ``max_lateral_m`` below about a metre.
- the camera's own displacement from rotating about the ego reference point (its mount is
  ``x`` metres ahead) is ignored: ``x * sin(dyaw)`` is under 5 cm at 2 degrees.

Samples outside the recorded image repeat the border pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivevla.core.frames import ego_to_world, world_to_ego
from drivevla.core.types import CameraSpec
from drivevla.perception.camera_model import camera_pose_world, project_world_points

GROUND_MAX_M = 200.0


def perturb_points(points: np.ndarray, lateral_m: float, yaw_rad: float) -> np.ndarray:
    """Ego-frame points ``(..., 2)`` expressed in the frame of the ego perturbed by
    ``(0, lateral_m, yaw_rad)``: the inverse of that rigid transform, in metres."""
    return world_to_ego(points, np.array([0.0, lateral_m]), yaw_rad)


def unperturb_points(points: np.ndarray, lateral_m: float, yaw_rad: float) -> np.ndarray:
    """Inverse of :func:`perturb_points`."""
    return ego_to_world(points, np.array([0.0, lateral_m]), yaw_rad)


def yaw_shift_px(spec: CameraSpec, yaw_rad: float) -> float:
    """Horizontal image shift (pixels, + right) approximating a camera yaw of ``yaw_rad``."""
    return spec.focal_px * math.tan(yaw_rad)


def source_pixels(spec: CameraSpec, lateral_m: float, yaw_rad: float) -> np.ndarray:
    """For each pixel centre of the perturbed image, where to sample the recorded image.

    Returns ``(H, W, 2)`` float pixel coordinates ``(u, v)`` (u right, v down, pixel centres at
    ``i + 0.5``) in the recorded image (see the module docstring for the approximation)."""

    h, w = spec.height, spec.width
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    u = u - yaw_shift_px(spec, yaw_rad)  # undo the yaw shift first: the last step applied
    src = np.stack([u, v], axis=-1)
    if lateral_m == 0.0:
        return src
    # back-project through the camera of the shifted ego (the ego frame plays the world here)
    r_w2c, t_cam = camera_pose_world(spec, 0.0, 0.0, 0.0)
    k_inv = np.linalg.inv(spec.intrinsics)
    rays_cam = np.stack([u, v, np.ones_like(u)], axis=-1) @ k_inv.T
    rays = rays_cam @ r_w2c  # camera -> ego frame directions (R^T d, row-vector form)
    dz = rays[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = -t_cam[2] / dz
    ground = (dz < -1e-9) & (lam > 0)
    pts = t_cam + lam[..., None] * rays
    ground &= np.hypot(pts[..., 0], pts[..., 1]) < GROUND_MAX_M
    if not ground.any():
        return src
    moved = pts[ground] + np.array([0.0, lateral_m, 0.0])  # shifted ego -> recorded ego frame
    uv, depth = project_world_points(spec, 0.0, 0.0, 0.0, moved)
    ok = depth > 1e-6
    idx = np.argwhere(ground)[ok]
    src[idx[:, 0], idx[:, 1]] = uv[ok]
    return src


def warp_image(image: Any, spec: CameraSpec, lateral_m: float, yaw_rad: float) -> Any:
    """The image seen from the perturbed pose (approximation above): ``(..., 3, H, W)`` float
    torch tensor in, same shape out (bilinear, border padding)."""
    import torch
    import torch.nn.functional as F

    if lateral_m == 0.0 and yaw_rad == 0.0:
        return image
    src = source_pixels(spec, lateral_m, yaw_rad)
    grid = torch.from_numpy(src).to(image.dtype)
    grid[..., 0] = grid[..., 0] / spec.width * 2.0 - 1.0
    grid[..., 1] = grid[..., 1] / spec.height * 2.0 - 1.0
    shape = image.shape
    flat = image.reshape(-1, 3, shape[-2], shape[-1])
    out = F.grid_sample(
        flat,
        grid.unsqueeze(0).expand(flat.shape[0], -1, -1, -1),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return out.reshape(shape)


def photometric_jitter(
    image: Any, rng: np.random.Generator, brightness: float, contrast: float, saturation: float
) -> Any:
    """Random brightness, contrast and saturation factors in ``[1 - a, 1 + a]`` applied to a
    ``(..., 3, H, W)`` float tensor in [0, 1] (one draw for all images); clamps to [0, 1]."""
    b = 1.0 + rng.uniform(-brightness, brightness)
    c = 1.0 + rng.uniform(-contrast, contrast)
    s = 1.0 + rng.uniform(-saturation, saturation)
    weights = image.new_tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    out = image * b
    gray = (out * weights).sum(dim=-3, keepdim=True)
    out = (out - gray.mean(dim=(-2, -1), keepdim=True)) * c + gray.mean(dim=(-2, -1), keepdim=True)
    gray = (out * weights).sum(dim=-3, keepdim=True)
    out = gray + (out - gray) * s
    return out.clamp(0.0, 1.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Everything off by default; amplitudes are the half-widths of uniform draws."""

    photometric: bool = False
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    max_lateral_m: float = 0.0
    max_yaw_deg: float = 0.0
    # probability that an item gets a pose perturbation (when the amplitudes are > 0)
    pose_prob: float = 0.5
    seed: int = 0


class DrivingAugment:
    """A ``transform=`` for :class:`drivevla.datasets.torch_dataset.FrameDataset` items.

    Seeded: the draws come from ``(seed, DataLoader worker seed, call counter)``, so a run is
    reproducible for a given seed and worker layout. The dataset hands over its cameras via
    :meth:`bind` (or pass ``cameras``)."""

    def __init__(
        self, config: AugmentConfig | None = None, cameras: Sequence[CameraSpec] | None = None
    ) -> None:
        self.config = config or AugmentConfig()
        self.cameras = list(cameras) if cameras is not None else None
        self._calls = 0

    def bind(self, cameras: Sequence[CameraSpec]) -> None:
        if self.cameras is None:
            self.cameras = list(cameras)

    @property
    def enabled(self) -> bool:
        c = self.config
        return c.photometric or c.max_lateral_m > 0 or c.max_yaw_deg > 0

    def _rng(self) -> np.random.Generator:
        import torch.utils.data

        worker = torch.utils.data.get_worker_info()
        self._calls += 1
        return np.random.default_rng(
            [self.config.seed, 0 if worker is None else int(worker.seed) % 2**32, self._calls]
        )

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        if not self.enabled:
            return item
        import torch

        c = self.config
        rng = self._rng()
        images = item["images"]
        if (c.max_lateral_m > 0 or c.max_yaw_deg > 0) and rng.random() < c.pose_prob:
            if self.cameras is None:
                raise ValueError("DrivingAugment needs the camera specs: bind() or cameras=")
            dy = float(rng.uniform(-c.max_lateral_m, c.max_lateral_m))
            dyaw = math.radians(float(rng.uniform(-c.max_yaw_deg, c.max_yaw_deg)))
            images = torch.stack(
                [warp_image(images[i], spec, dy, dyaw) for i, spec in enumerate(self.cameras)]
            )
            for key in ("target_waypoints", "route"):
                pts = item[key].numpy().astype(np.float64)
                moved = torch.from_numpy(perturb_points(pts, dy, dyaw).astype(np.float32))
                if key == "target_waypoints":
                    moved = moved * item["waypoint_mask"].unsqueeze(-1)
                item[key] = moved
        if c.photometric:
            images = photometric_jitter(images, rng, c.brightness, c.contrast, c.saturation)
        item["images"] = images
        return item


class PoseWarpBank:
    """Batched pose perturbation for training on frames already resized to the model's input.

    The sampling grids of :func:`source_pixels` are computed once, at the camera's recorded
    resolution, for every combination of ``n_lateral`` evenly spaced lateral shifts in
    ``[-max_lateral_m, max_lateral_m]`` and ``n_yaw`` yaws in ``[-max_yaw_deg, max_yaw_deg]``,
    and resampled to the ``size`` the frames were resized to (grid_sample's normalised
    coordinates do not depend on resolution, so a non-uniform resize is exact). A training
    step then draws one combination per item and warps the whole batch with one
    ``grid_sample`` call; ego-frame targets get the exact inverse rigid transform, as in
    :class:`DrivingAugment`.
    """

    def __init__(self, cameras: Sequence[CameraSpec], size: tuple[int, int], max_lateral_m: float,
                 max_yaw_deg: float, n_lateral: int = 7, n_yaw: int = 7) -> None:
        import torch
        import torch.nn.functional as F

        if max_lateral_m < 0 or max_yaw_deg < 0 or n_lateral < 1 or n_yaw < 1:
            raise ValueError(f"pose warp: max_lateral_m={max_lateral_m}, max_yaw_deg="
                             f"{max_yaw_deg} must be >= 0 and n_lateral={n_lateral}, "
                             f"n_yaw={n_yaw} >= 1")
        lat = np.linspace(-max_lateral_m, max_lateral_m, n_lateral) if n_lateral > 1 else [0.0]
        yaw = np.linspace(-max_yaw_deg, max_yaw_deg, n_yaw) if n_yaw > 1 else [0.0]
        combos = [(float(dy), math.radians(float(dyaw))) for dy in lat for dyaw in yaw]
        self.lateral_m = torch.tensor([c[0] for c in combos], dtype=torch.float32)
        self.yaw_rad = torch.tensor([c[1] for c in combos], dtype=torch.float32)
        grids = []  # per camera: (K, h, w, 2)
        for spec in cameras:
            per = []
            for dy, dyaw in combos:
                src = torch.from_numpy(source_pixels(spec, dy, dyaw)).float()
                norm = torch.stack([src[..., 0] / spec.width * 2.0 - 1.0,
                                    src[..., 1] / spec.height * 2.0 - 1.0])  # (2, H, W)
                norm = F.interpolate(norm[None], size=size, mode="bilinear",
                                     align_corners=False)[0]
                per.append(norm.permute(1, 2, 0))
            grids.append(torch.stack(per))
        self.grids = torch.stack(grids, dim=1)  # (K, C, h, w, 2)
        self.size = tuple(size)

    def __len__(self) -> int:
        return int(self.grids.shape[0])

    def __call__(self, batch: dict[str, Any], prob: float, generator: Any) -> dict[str, Any]:
        """Perturb a share ``prob`` of the items of a training batch (``images`` uint8
        ``(B, C, 3, h, w)``, ``target_waypoints``, ``route``, ``waypoint_mask``, and
        optionally ``heading_change`` / ``lateral_offset``); returns a new dict."""
        import torch
        import torch.nn.functional as F

        images = batch["images"]
        b, c = images.shape[:2]
        if c != self.grids.shape[1] or tuple(images.shape[-2:]) != self.size:
            raise ValueError(f"pose warp built for {self.grids.shape[1]} camera(s) at "
                             f"{self.size}, got images {tuple(images.shape)}")
        pick = torch.rand(b, generator=generator) < prob
        if not pick.any():
            return batch
        rows = pick.nonzero().squeeze(1)
        k = torch.randint(len(self), (len(rows),), generator=generator)
        out = dict(batch)
        sel = images[rows].float().flatten(0, 1)  # (n * C, 3, h, w)
        grid = self.grids[k].flatten(0, 1)  # (n * C, h, w, 2)
        warped = F.grid_sample(sel, grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        new_images = images.clone()
        new_images[rows] = warped.round().clamp(0, 255).to(images.dtype).view(len(rows), c,
                                                                               *images.shape[2:])
        out["images"] = new_images
        dy, dyaw = self.lateral_m[k], self.yaw_rad[k]
        for key in ("target_waypoints", "route"):
            pts = batch[key].clone()
            pts[rows] = perturb_points_torch(batch[key][rows].float(), dy, dyaw).to(pts.dtype)
            out[key] = pts
        out["target_waypoints"] = out["target_waypoints"] * batch["waypoint_mask"].unsqueeze(-1)
        if "heading_change" in batch:  # the perturbed ego points dyaw further left
            out["heading_change"] = batch["heading_change"].clone()
            out["heading_change"][rows] += dyaw.to(batch["heading_change"].dtype)
        if "lateral_offset" in batch:
            out["lateral_offset"] = batch["lateral_offset"].clone()
            out["lateral_offset"][rows] += dy.to(batch["lateral_offset"].dtype)
        return out


def perturb_points_torch(points: Any, lateral_m: Any, yaw_rad: Any) -> Any:
    """:func:`perturb_points` for a batch: ``points (B, ..., 2)``, one ``lateral_m`` and
    ``yaw_rad`` per item ``(B,)``."""
    import torch

    shape = (-1,) + (1,) * (points.dim() - 2)
    c, s = yaw_rad.cos().view(shape), yaw_rad.sin().view(shape)
    x = points[..., 0]
    y = points[..., 1] - lateral_m.view(shape)
    return torch.stack([x * c + y * s, -x * s + y * c], dim=-1)
