"""What open-loop scoring reads from a nuScenes database: the samples of a split, and the
:class:`~drivevla.core.types.Observation` a policy gets at each of them.

:func:`open_openloop_source` checks the dataroot, the version folder and the tables (a bad one
raises :class:`NuScenesInputError` naming it), selects the split and loads every keyframe
through :func:`~drivevla.datasets.nuscenes_import.load_nuscenes_openloop`.
:meth:`OpenLoopSource.observation` builds what a policy sees at a sample:

- **cameras** by name: a policy camera ``front`` reads channel ``CAM_FRONT``
  (:func:`~drivevla.datasets.nuscenes_tables.camera_channel`; ``front_left`` ->
  ``CAM_FRONT_LEFT``, nuScenes' own names), the keyframe JPEG as RGB and a
  :class:`~drivevla.core.types.CameraSpec` from its calibration (horizontal FOV from the
  focal length, mount position, yaw and pitch of the optical axis; roll is not carried);
- **ego state** from the ego poses (:mod:`~drivevla.datasets.nuscenes_import`: speed,
  acceleration and yaw rate by finite differences; no CAN bus);
- **route**: the command derived from the logged future (VAD's rule), no target points, and
  an **instruction** rendered from it (canonical phrasing): LEFT -> ``turn_left``, RIGHT ->
  ``turn_right``, STRAIGHT -> ``go_straight`` ("Go straight through the junction.", VAD's
  "Go Straight"). The phrasing matters: drivevla-tiny read "Follow the road and keep your
  lane." (``cruise``, a highway intent) as highway speed, 20 m ST-P3 L2 at 3 s instead of
  1.2 m on 12 samples of a tiny export (docs/open_loop.md).

A keyframe without a channel the policy needs, or whose image cannot be read, raises
:class:`SampleInputError` naming the sample and channel (``--skip-bad`` skips it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from drivevla.core.errors import DriveVLAError, read_json
from drivevla.core.types import CameraSpec, EgoState, HighLevelCommand, Observation, RouteInfo
from drivevla.datasets.nuscenes_import import (
    OpenLoopSample,
    load_nuscenes_openloop,
    open_nuscenes,
)
from drivevla.datasets.nuscenes_tables import camera_channel
from drivevla.language.instructions import render_navigation

__all__ = [
    "ALL_SPLIT",
    "COMMAND_INTENTS",
    "NuScenesInputError",
    "OpenLoopSource",
    "SampleInputError",
    "channel_of",
    "open_openloop_source",
]

ALL_SPLIT = "all"
EXPORT_MANIFEST = "drivevla_export.json"
COMMAND_INTENTS = {
    HighLevelCommand.LEFT: "turn_left",
    HighLevelCommand.RIGHT: "turn_right",
    HighLevelCommand.STRAIGHT: "go_straight",
}
# Where the ego box centre sits ahead of the ego pose: our export's pose is the box centre;
# nuScenes' is the rear axle, for which ST-P3's collision check shifts the box 0.5 m forward.
EXPORT_BOX_OFFSET_M = 0.0
NUSCENES_BOX_OFFSET_M = 0.5


class NuScenesInputError(DriveVLAError, ValueError):
    """A nuScenes dataroot, version, table or split that open-loop scoring cannot read; the
    message names it and what would be valid."""


class SampleInputError(DriveVLAError, ValueError):
    """One keyframe cannot become an observation (a missing camera channel, an unreadable
    image); the message names the sample token and the channel or file."""

    def __init__(self, sample_token: str, reason: str, detail: str) -> None:
        self.sample_token, self.reason, self.detail = sample_token, reason, detail
        super().__init__(f"sample {sample_token}: {detail}")

    def __reduce__(self):
        return (type(self), (self.sample_token, self.reason, self.detail))


def channel_of(camera: str) -> str:
    """The nuScenes channel a policy camera reads: ``front`` -> ``CAM_FRONT`` (a name that
    already is a ``CAM_*`` channel is kept)."""
    return camera if camera.startswith("CAM_") else camera_channel(camera)


@dataclass
class OpenLoopSource:
    """The keyframes of one split of a nuScenes database (see the module docstring)."""

    dataroot: Path
    version: str
    split: str
    samples: list[OpenLoopSample]
    nusc: Any
    drivevla_export: bool  # our export (box-centre ego pose), not real nuScenes
    ego_box_forward_offset_m: float

    def describe(self) -> dict[str, Any]:
        """What a result file records about the data."""
        return {
            "dataroot": str(self.dataroot.resolve()),
            "version": self.version,
            "split": self.split,
            "n_keyframes": len(self.samples),
            "n_scenes": len({s.scene_token for s in self.samples}),
            "drivevla_export": self.drivevla_export,
            "ego_reference": "box centre" if self.drivevla_export else "rear axle",
        }

    def observation(self, sample: OpenLoopSample, cameras: tuple[str, ...],
                    target_points: tuple[int, float] | None = None) -> Observation:
        """The observation a policy with ``cameras`` gets at ``sample``; ``target_points``:
        (count, spacing m) of the route target points a target-point policy reads
        (:func:`logged_target_points`), none otherwise. Raises :class:`SampleInputError`
        for a missing channel or unreadable image."""
        images, specs = {}, {}
        for name in cameras:
            images[name], specs[name] = self._camera(sample, name)
        command = sample.command
        intent = COMMAND_INTENTS.get(command, "go_straight")
        ego = sample.ego
        return Observation(
            images=images,
            cameras=specs,
            ego=EgoState(ego.x, ego.y, ego.yaw, ego.speed_mps, ego.accel_mps2, ego.yaw_rate_rps),
            route=RouteInfo(np.zeros((0, 2)) if target_points is None else
                            logged_target_points(sample, *target_points),
                            command, intent, math.nan),
            instruction=render_navigation(intent, None, "canonical"),
            timestamp_s=sample.timestamp_us * 1e-6,
        )

    def on_drivable(self, sample: OpenLoopSample
                    ) -> Callable[[np.ndarray], np.ndarray] | None:
        """A test of (M, 2) points in ``sample``'s ego frame against its location's
        drivable-area raster (the ``map`` table's mask, through the devkit's ``MapMask``):
        True where on it. None when the scene's log has no map."""
        log = self.nusc.get("log", self.nusc.get("scene", sample.scene_token)["log_token"])
        if not log.get("map_token"):
            return None
        mask = self.nusc.get("map", log["map_token"])["mask"]
        x, y, c, s = sample.ego.x, sample.ego.y, math.cos(sample.ego.yaw), math.sin(sample.ego.yaw)

        def on(points: np.ndarray) -> np.ndarray:
            p = np.asarray(points, np.float64).reshape(-1, 2)
            return mask.is_on_mask(x + c * p[:, 0] - s * p[:, 1], y + s * p[:, 0] + c * p[:, 1])
        return on

    def _camera(self, sample: OpenLoopSample, name: str) -> tuple[np.ndarray, CameraSpec]:
        channel = channel_of(name)
        token = sample.channels.get(channel)
        if token is None:
            raise SampleInputError(
                sample.sample_token, f"missing_camera:{channel}",
                f"no {channel} image for camera {name!r} (scene {sample.scene_name!r}); the "
                f"keyframe has {sorted(sample.channels)}")
        sd = self.nusc.get("sample_data", token)
        path = self.dataroot / sd["filename"]
        try:
            with Image.open(path) as img:
                rgb = np.array(img.convert("RGB"))  # a writable copy (torch reads it)
        except (OSError, UnidentifiedImageError) as exc:
            raise SampleInputError(sample.sample_token, f"unreadable_image:{channel}",
                                   f"{channel} image {path} cannot be read ({exc})") from exc
        cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        return rgb, camera_spec(name, cs, rgb.shape[1], rgb.shape[0])


def camera_spec(name: str, calibrated_sensor: dict[str, Any], width: int, height: int
                ) -> CameraSpec:
    """A :class:`CameraSpec` from a nuScenes ``calibrated_sensor`` record: FOV from ``fx``,
    mount position, and the yaw (left +) and pitch (nose-down +) of the optical axis (whose
    rotation maps camera optical axes into the ego frame)."""
    k = np.asarray(calibrated_sensor["camera_intrinsic"], np.float64)
    fx = float(k[0, 0]) if k.shape == (3, 3) and k[0, 0] > 0 else width / 2.0
    fov = min(max(math.degrees(2.0 * math.atan(width / (2.0 * fx))), 1.0), 170.0)
    w, x, y, z = (float(v) for v in calibrated_sensor["rotation"])
    # third column of the rotation matrix: the optical axis (camera z) in the ego frame
    axis = (2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y))
    tx, ty, tz = (float(v) for v in calibrated_sensor["translation"])
    return CameraSpec(
        name=name, width=int(width), height=int(height), fov_deg=fov, x=tx, y=ty, z=tz,
        yaw_deg=math.degrees(math.atan2(axis[1], axis[0])),
        pitch_deg=math.degrees(math.asin(max(-1.0, min(1.0, -axis[2])))),
    )


def _check_layout(dataroot: Path, version: str) -> None:
    if not dataroot.is_dir():
        raise NuScenesInputError(f"nuScenes dataroot {dataroot} does not exist (or is not a "
                                 "folder)")
    if not (dataroot / version).is_dir():
        found = sorted(p.name for p in dataroot.iterdir()
                       if p.is_dir() and (p / "sample.json").is_file())
        raise NuScenesInputError(
            f"no version {version!r} in {dataroot} (no folder {dataroot / version}); "
            f"versions there: {found or 'none'}")


def _split_scenes(dataroot: Path, split: str, export: bool, version: str) -> set[str] | None:
    """The scene names of ``split`` (None: every scene)."""
    if split == ALL_SPLIT:
        return None
    if export:
        splits = read_json(dataroot / EXPORT_MANIFEST).get("splits") or {}
        where = f"{dataroot / EXPORT_MANIFEST} (our export's splits)"
    else:
        from nuscenes.utils.splits import create_splits_scenes  # optional: the devkit

        splits, where = create_splits_scenes(verbose=False), "nuscenes.utils.splits"
    if split not in splits:
        raise NuScenesInputError(f"unknown split {split!r} for {version}; {where} has "
                                 f"{sorted(splits) + [ALL_SPLIT]}")
    return set(splits[split])


def open_openloop_source(dataroot: str | os.PathLike, version: str, split: str = ALL_SPLIT
                         ) -> OpenLoopSource:
    """Every keyframe of ``split`` (``"all"``: every scene) of the database at
    ``dataroot/version``. Our export's splits come from its ``drivevla_export.json``, real
    nuScenes' from ``nuscenes.utils.splits`` (``train``, ``val``, ``mini_val``, ...).
    Raises :class:`NuScenesInputError` naming a missing folder, table or unknown split."""
    root = Path(dataroot)
    _check_layout(root, version)
    export = (root / EXPORT_MANIFEST).is_file()
    try:
        nusc = open_nuscenes(root, version)
    except (FileNotFoundError, ValueError) as exc:
        raise NuScenesInputError(str(exc)) from exc
    except (KeyError, IndexError, TypeError) as exc:  # valid JSON whose records do not link
        raise NuScenesInputError(
            f"{root / version}: the devkit cannot index the tables ({type(exc).__name__}: "
            f"{exc}); a record refers to a token no table has") from exc
    wanted = _split_scenes(root, split, export, version)
    have = {s["name"] for s in nusc.scene}
    if wanted is not None and not wanted & have:
        raise NuScenesInputError(
            f"split {split!r} has {len(wanted)} scene(s), none of them in {root / version} "
            f"(it has {len(have)} scene(s), e.g. {sorted(have)[:3]})")
    try:
        samples = load_nuscenes_openloop(root, version, camera="CAM_FRONT", scenes=wanted,
                                         nusc=nusc, require_camera=False)
    except (KeyError, ValueError) as exc:  # a table whose records do not link up
        raise NuScenesInputError(f"{root / version}: tables do not link up ({exc})") from exc
    offset = EXPORT_BOX_OFFSET_M if export else NUSCENES_BOX_OFFSET_M
    return OpenLoopSource(root, version, split, samples, nusc, export, offset)


def logged_target_points(sample: OpenLoopSample, count: int, spacing_m: float) -> np.ndarray:
    """(count, 2) route target points in the sample's ego frame, every ``spacing_m`` metres
    along the logged 3 s future path (the origin, then the 6 future positions), continued
    straight along its last direction past its end (+x when the ego does not move).

    This gives the policy where the log went: a target-point row is not comparable with
    command-only rows (UniAD / VAD give the command alone)."""
    path = np.vstack([np.zeros((1, 2)), np.asarray(sample.future_waypoints, np.float64)])
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    moving = np.nonzero(seg > 1e-6)[0]
    if len(moving) == 0:
        direction = np.array([1.0, 0.0])
    else:
        last = moving[-1]
        direction = (path[last + 1] - path[last]) / seg[last]
    s = spacing_m * np.arange(1, count + 1)
    inside = np.stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])], axis=1)
    beyond = path[-1] + (s - arc[-1])[:, None] * direction
    return np.where((s <= arc[-1])[:, None], inside, beyond)
