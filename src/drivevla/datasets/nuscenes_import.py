"""Open-loop planning samples from a nuScenes database, read through the real devkit.

Works on real nuScenes (v1.0-mini / trainval / test) and on our own export
(:func:`drivevla.datasets.nuscenes_export.export_nuscenes`). One :class:`OpenLoopSample` per
keyframe (``sample``), in a deterministic order: scenes sorted by name, samples along each
scene's ``next`` chain.

Conventions (docs/nuscenes.md has the details):

- Frames: waypoints and boxes are in the ego frame of the sample (x forward, y left, metres;
  nuScenes' own ego frame), flattened to the ground plane with the ego yaw.
- Ego pose of a sample: the ``LIDAR_TOP`` keyframe's ``ego_pose`` when the sample has one
  (as UniAD / VAD / ST-P3 do), else the requested camera's.
- Future: the ego positions at the next 6 keyframes (0.5 s apart), ``future_valid`` marks
  the ones that exist; missing steps repeat the last valid position (VAD's padding).
- Command: VAD's rule (``tools/data_converter/vad_nuscenes_converter.py``, also used by
  UniAD-style planners): the lateral offset of the last valid future position (3 s ahead
  when the future is complete) >= 2 m to the right -> RIGHT, >= 2 m to the left -> LEFT,
  otherwise STRAIGHT. VAD measures it in the LIDAR_TOP frame, we in the ego frame (the
  nuScenes lidar sits on the ego's centreline, turned 90 degrees, so lateral offsets differ
  only through its small mount misalignment).
- Ego status: causal differences of consecutive ego poses along the pose channel's
  ``sample_data`` chain (sweeps included, so 20 Hz for the lidar, 10-12 Hz for cameras):
  speed = displacement projected on the heading / dt, acceleration = change of that speed /
  dt, yaw rate = wrapped yaw change / dt. At a scene's first record the forward difference
  is used instead.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.frames import world_to_ego, wrap_angle
from drivevla.core.types import EgoState, HighLevelCommand
from drivevla.datasets.format import FUTURE_STEPS
from drivevla.datasets.nuscenes_export import NUSCENES_TABLES

__all__ = [
    "AgentBoxes",
    "OpenLoopSample",
    "COMMAND_LATERAL_THRESHOLD_M",
    "REQUIRED_TABLES",
    "command_from_waypoints",
    "load_nuscenes_openloop",
    "open_nuscenes",
]

log = logging.getLogger(__name__)

COMMAND_LATERAL_THRESHOLD_M = 2.0  # VAD: |lateral offset| >= 2 m at the last future step
POSE_CHANNEL = "LIDAR_TOP"
KIND_PREFIXES = {"vehicle": ("vehicle.",), "pedestrian": ("human.pedestrian.",)}
REQUIRED_TABLES = NUSCENES_TABLES  # what NuScenes.__init__ reads
DEVKIT_INSTALL = (
    "pip install --no-deps nuscenes-devkit==1.2.0 && "
    "pip install opencv-python-headless scikit-learn pyquaternion cachetools"
)


@dataclass(frozen=True)
class AgentBoxes:
    """Oriented 3D boxes of traffic participants in one frame (columns of equal length N).

    ``xy`` (N, 2) box centres, ``z`` (N,) centre heights, ``yaw`` (N,) rad counter-clockwise
    from +x, ``size`` (N, 3) as ``[length, width, height]`` in metres (note: nuScenes stores
    ``[width, length, height]``), ``kind`` ``"vehicle"`` or ``"pedestrian"``, ``category`` the
    nuScenes category name, ``instance_token`` the track. The frame is the one they were
    requested in (the sample's ego frame, or global).
    """

    xy: np.ndarray
    z: np.ndarray
    yaw: np.ndarray
    size: np.ndarray
    kind: tuple[str, ...]
    category: tuple[str, ...]
    instance_token: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.kind)

    @classmethod
    def empty(cls) -> AgentBoxes:
        return cls(np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros((0, 3)), (), (), ())

    def select(self, kind: str) -> AgentBoxes:
        """Only the boxes of one kind (``"vehicle"`` or ``"pedestrian"``)."""
        keep = np.array([k == kind for k in self.kind], dtype=bool)
        idx = np.flatnonzero(keep)
        return AgentBoxes(
            self.xy[keep],
            self.z[keep],
            self.yaw[keep],
            self.size[keep],
            tuple(self.kind[i] for i in idx),
            tuple(self.category[i] for i in idx),
            tuple(self.instance_token[i] for i in idx),
        )

    def footprints(self) -> np.ndarray:
        """(N, 4, 2) ground corners, counter-clockwise from rear-right, in the boxes' frame."""
        hl, hw = self.size[:, 0] / 2.0, self.size[:, 1] / 2.0
        local = np.stack(
            [
                np.stack([-hl, -hw], 1),
                np.stack([hl, -hw], 1),
                np.stack([hl, hw], 1),
                np.stack([-hl, hw], 1),
            ],
            axis=1,
        )  # (N, 4, 2)
        c, s = np.cos(self.yaw)[:, None], np.sin(self.yaw)[:, None]
        x = local[..., 0] * c - local[..., 1] * s + self.xy[:, None, 0]
        y = local[..., 0] * s + local[..., 1] * c + self.xy[:, None, 1]
        return np.stack([x, y], axis=-1)

    def to_ego(self, ego_xy: np.ndarray, ego_yaw: float) -> AgentBoxes:
        """These (global-frame) boxes in the ego frame of a pose ``(ego_xy, ego_yaw)``."""
        if len(self) == 0:
            return AgentBoxes.empty()
        return AgentBoxes(
            world_to_ego(self.xy, np.asarray(ego_xy, dtype=np.float64), ego_yaw),
            self.z.copy(),
            np.asarray(wrap_angle(self.yaw - ego_yaw)),
            self.size,
            self.kind,
            self.category,
            self.instance_token,
        )


@dataclass(frozen=True)
class OpenLoopSample:
    """One keyframe for open-loop planning evaluation (frames: see the module docstring).

    ``ego``: global pose (nuScenes global frame, flattened) and motion from ego poses.
    ``future_waypoints`` (6, 2) ego frame, 0.5 s apart; ``future_valid`` (6,) bool.
    ``boxes``: vehicles and pedestrians now, ego frame. :meth:`future_boxes` gives them at
    each future step, in this sample's ego frame (the occupancy a collision check needs).
    ``channels``: the keyframe's ``sample_data`` token per channel. Loaded with
    ``require_camera=False``, a sample without the requested camera has ``image_path`` None,
    a NaN intrinsic and size (0, 0).
    """

    sample_token: str
    scene_token: str
    scene_name: str
    index_in_scene: int
    timestamp_us: int
    image_path: Path | None
    camera_intrinsic: np.ndarray  # (3, 3)
    image_size: tuple[int, int]  # (width, height) px
    ego: EgoState
    command: HighLevelCommand
    future_waypoints: np.ndarray
    future_valid: np.ndarray
    boxes: AgentBoxes
    future_boxes_global: tuple[AgentBoxes, ...] = field(repr=False, default=())
    # every channel of the keyframe -> its sample_data token (images of other cameras)
    channels: dict[str, str] = field(repr=False, default_factory=dict)

    def future_boxes(self) -> list[AgentBoxes]:
        """Boxes at each of the 6 future steps in *this* sample's ego frame (empty if the
        step is not valid)."""
        out = [
            b.to_ego(np.array([self.ego.x, self.ego.y]), self.ego.yaw)
            for b in self.future_boxes_global
        ]
        return out + [AgentBoxes.empty()] * (FUTURE_STEPS - len(out))


def command_from_waypoints(
    waypoints: np.ndarray, valid: np.ndarray | None = None
) -> HighLevelCommand:
    """VAD's driving command from future ego-frame waypoints (x forward, y left).

    The lateral offset ``y`` of the last valid waypoint: ``y <= -2`` m -> RIGHT, ``y >= 2`` m
    -> LEFT, otherwise STRAIGHT (also when no waypoint is valid).
    """
    wps = np.asarray(waypoints, dtype=np.float64).reshape(-1, 2)
    mask = np.ones(len(wps), bool) if valid is None else np.asarray(valid, dtype=bool)
    if not mask.any():
        return HighLevelCommand.STRAIGHT
    lateral = float(wps[np.flatnonzero(mask)[-1], 1])
    if lateral <= -COMMAND_LATERAL_THRESHOLD_M:
        return HighLevelCommand.RIGHT
    if lateral >= COMMAND_LATERAL_THRESHOLD_M:
        return HighLevelCommand.LEFT
    return HighLevelCommand.STRAIGHT


def _find_bad_table(table_root: Path) -> tuple[Path, Exception] | None:
    for name in REQUIRED_TABLES:
        path = table_root / f"{name}.json"
        try:
            with open(path) as f:
                records = json.load(f)
        except (ValueError, UnicodeDecodeError) as exc:
            return path, exc
        if not isinstance(records, list):
            return path, ValueError(f"top level is {type(records).__name__}, not a list")
        bad = next((r for r in records if not isinstance(r, dict) or "token" not in r), None)
        if bad is not None:
            return path, ValueError(f"record without a 'token': {str(bad)[:120]}")
    return None


def open_nuscenes(dataroot: str | os.PathLike, version: str) -> Any:
    """``nuscenes.nuscenes.NuScenes(version, dataroot, verbose=False)`` with errors that name
    the missing or corrupt file."""
    try:
        from nuscenes.nuscenes import NuScenes
    except ImportError as exc:
        raise ImportError(
            f"reading nuScenes needs the nuScenes devkit ({exc}); install it with: {DEVKIT_INSTALL}"
        ) from exc
    table_root = Path(dataroot) / version
    if not table_root.is_dir():
        raise FileNotFoundError(f"no nuScenes tables at {table_root} (dataroot/version)")
    missing = [f"{t}.json" for t in REQUIRED_TABLES if not (table_root / f"{t}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{table_root}: missing table file(s) {', '.join(missing)}; the devkit needs "
            f"{', '.join(t + '.json' for t in REQUIRED_TABLES)}"
        )
    try:
        return NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as exc:
        found = _find_bad_table(table_root)
        if found is None:
            raise
        path, err = found
        raise ValueError(f"{path}: corrupt nuScenes table ({err})") from exc
    except AssertionError as exc:  # e.g. "map mask <file> does not exist"
        raise FileNotFoundError(f"nuScenes devkit rejected {table_root}: {exc}") from exc


def _yaw(rotation: list[float]) -> float:
    """Yaw (rad) of a (w, x, y, z) quaternion: the heading of its x axis in the xy plane."""
    w, x, y, z = rotation
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


@dataclass(frozen=True)
class _Pose:
    t_us: int
    xy: np.ndarray
    yaw: float


def _pose_of(nusc: Any, sd_token: str) -> _Pose:
    sd = nusc.get("sample_data", sd_token)
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    return _Pose(
        int(pose["timestamp"]), np.array(pose["translation"][:2], float), _yaw(pose["rotation"])
    )


def _speed(a: _Pose, b: _Pose) -> float:
    """Signed speed from pose a to the later pose b, along b's heading (m/s)."""
    dt = (b.t_us - a.t_us) * 1e-6
    if dt <= 0:
        return 0.0
    d = b.xy - a.xy
    return float((d[0] * math.cos(b.yaw) + d[1] * math.sin(b.yaw)) / dt)


def _ego_status(nusc: Any, sd_token: str) -> EgoState:
    """Pose and causal finite-difference motion along the sample_data chain of sd_token."""
    sd = nusc.get("sample_data", sd_token)
    cur = _pose_of(nusc, sd_token)
    chain = [cur]
    if sd["prev"]:  # backward: cur <- p1 <- p2
        p1_sd = nusc.get("sample_data", sd["prev"])
        chain = [_pose_of(nusc, p1_sd["prev"])] if p1_sd["prev"] else []
        chain += [_pose_of(nusc, sd["prev"]), cur]
    elif sd["next"]:  # first record of the scene: forward differences
        n1_sd = nusc.get("sample_data", sd["next"])
        chain = [cur, _pose_of(nusc, sd["next"])]
        if n1_sd["next"]:
            chain.append(_pose_of(nusc, n1_sd["next"]))
    if len(chain) < 2:
        return EgoState(float(cur.xy[0]), float(cur.xy[1]), cur.yaw, 0.0)
    forward = chain[0] is cur
    a, b = (chain[0], chain[1]) if forward else (chain[-2], chain[-1])
    speed = _speed(a, b)
    dt = max((b.t_us - a.t_us) * 1e-6, 1e-6)
    yaw_rate = float(wrap_angle(b.yaw - a.yaw)) / dt
    accel = 0.0
    if len(chain) == 3:
        v01, v12 = _speed(chain[0], chain[1]), _speed(chain[1], chain[2])
        dt2 = max((chain[2].t_us - chain[0].t_us) * 0.5e-6, 1e-6)
        accel = (v12 - v01) / dt2
    return EgoState(float(cur.xy[0]), float(cur.xy[1]), cur.yaw, speed, accel, yaw_rate)


def _kind_of(category: str, kinds: tuple[str, ...]) -> str | None:
    for kind in kinds:
        if category.startswith(KIND_PREFIXES[kind]):
            return kind
    return None


def _global_boxes(nusc: Any, sample: dict[str, Any], kinds: tuple[str, ...]) -> AgentBoxes:
    rows = []
    for token in sample["anns"]:
        ann = nusc.get("sample_annotation", token)
        kind = _kind_of(ann["category_name"], kinds)
        if kind is not None:
            rows.append((ann["instance_token"], kind, ann))
    if not rows:
        return AgentBoxes.empty()
    rows.sort(key=lambda r: r[0])
    anns = [r[2] for r in rows]
    size = np.array([a["size"] for a in anns], dtype=np.float64)  # [w, l, h]
    return AgentBoxes(
        xy=np.array([a["translation"][:2] for a in anns], dtype=np.float64),
        z=np.array([a["translation"][2] for a in anns], dtype=np.float64),
        yaw=np.array([_yaw(a["rotation"]) for a in anns], dtype=np.float64),
        size=size[:, [1, 0, 2]],
        kind=tuple(r[1] for r in rows),
        category=tuple(a["category_name"] for a in anns),
        instance_token=tuple(r[0] for r in rows),
    )


def load_nuscenes_openloop(
    dataroot: str | os.PathLike,
    version: str,
    *,
    camera: str = "CAM_FRONT",
    scenes: Iterable[str] | None = None,
    kinds: tuple[str, ...] = ("vehicle", "pedestrian"),
    nusc: Any = None,
    require_camera: bool = True,
) -> list[OpenLoopSample]:
    """Every keyframe of a nuScenes database as an :class:`OpenLoopSample`.

    ``camera``: the channel whose image and intrinsics each sample carries. ``scenes``:
    only these scene names (e.g. ``nuscenes.utils.splits.create_splits_scenes()["val"]``).
    ``kinds``: which boxes to keep. ``nusc``: an already loaded ``NuScenes`` to reuse.
    ``require_camera``: a keyframe without ``camera`` raises ValueError (True) or is kept
    without an image (False; its ``image_path`` is None).
    Order: scenes by name, samples in time order. Raises FileNotFoundError / ValueError
    naming the missing or corrupt table file.
    """
    unknown = set(kinds) - set(KIND_PREFIXES)
    if unknown:
        raise ValueError(f"unknown box kind(s) {sorted(unknown)}; valid: {sorted(KIND_PREFIXES)}")
    nusc = nusc if nusc is not None else open_nuscenes(dataroot, version)
    dataroot = Path(nusc.dataroot)
    scene_recs = _select_scenes(nusc, scenes, version)
    out: list[OpenLoopSample] = []
    for scene in scene_recs:
        _scene_samples(nusc, scene, camera, tuple(kinds), dataroot, out, require_camera)
    return out


def _select_scenes(nusc: Any, scenes: Iterable[str] | None, version: str) -> list[dict]:
    """The scene records to load, by name (all of them when ``scenes`` is None)."""
    scene_recs = sorted(nusc.scene, key=lambda s: (s["name"], s["token"]))
    if scenes is not None:
        wanted = set(scenes)
        have = {s["name"] for s in scene_recs}
        if not wanted & have:
            raise ValueError(
                f"none of the {len(wanted)} requested scenes is in {version}; it has e.g. "
                f"{sorted(have)[:5]}"
            )
        if wanted - have:
            log.warning("%d requested scenes are not in %s", len(wanted - have), version)
        scene_recs = [s for s in scene_recs if s["name"] in wanted]
    return scene_recs


def _scene_samples(
    nusc: Any, scene: dict, camera: str, kinds: tuple[str, ...], dataroot: Path,
    out: list[OpenLoopSample], require_camera: bool = True,
) -> None:
    """Append every keyframe of ``scene`` to ``out``, in time order."""
    samples = []
    token = scene["first_sample_token"]
    while token:
        samples.append(nusc.get("sample", token))
        token = samples[-1]["next"]
    poses, statuses, boxes = [], [], []
    for s in samples:
        if camera not in s["data"] and require_camera:
            raise ValueError(
                f"scene {scene['name']!r}, sample {s['token']}: no {camera!r} data; "
                f"channels: {sorted(s['data'])}"
            )
        pose_sd = s["data"].get(POSE_CHANNEL) or s["data"].get(camera)
        if pose_sd is None:  # neither: any channel's ego pose (sorted, deterministic)
            pose_sd = s["data"][sorted(s["data"])[0]]
        statuses.append(_ego_status(nusc, pose_sd))
        poses.append(_pose_of(nusc, pose_sd))
        boxes.append(_global_boxes(nusc, s, tuple(kinds)))
    for i, s in enumerate(samples):
        cur = poses[i]
        fut = poses[i + 1 : i + 1 + FUTURE_STEPS]
        valid = np.zeros(FUTURE_STEPS, dtype=bool)
        valid[: len(fut)] = True
        wps = np.zeros((FUTURE_STEPS, 2))
        if fut:
            wps[: len(fut)] = world_to_ego(np.array([p.xy for p in fut]), cur.xy, cur.yaw)
            wps[len(fut) :] = wps[len(fut) - 1]
        image_path, intrinsic, size = _camera_of(nusc, s, camera, dataroot)
        out.append(
            OpenLoopSample(
                sample_token=s["token"],
                scene_token=scene["token"],
                scene_name=scene["name"],
                index_in_scene=i,
                timestamp_us=int(s["timestamp"]),
                image_path=image_path,
                camera_intrinsic=intrinsic,
                image_size=size,
                ego=statuses[i],
                command=command_from_waypoints(wps, valid),
                future_waypoints=wps,
                future_valid=valid,
                boxes=boxes[i].to_ego(cur.xy, cur.yaw),
                future_boxes_global=tuple(boxes[i + 1 : i + 1 + FUTURE_STEPS]),
                channels=dict(s["data"]),
            )
        )


def _camera_of(
    nusc: Any, sample: dict, camera: str, dataroot: Path
) -> tuple[Path | None, np.ndarray, tuple[int, int]]:
    """Image path, intrinsic (3, 3) and (width, height) of ``camera`` at a keyframe (None,
    NaN, (0, 0) when the keyframe has no such channel)."""
    if camera not in sample["data"]:
        return None, np.full((3, 3), np.nan), (0, 0)
    cam_sd = nusc.get("sample_data", sample["data"][camera])
    cs = nusc.get("calibrated_sensor", cam_sd["calibrated_sensor_token"])
    return (dataroot / cam_sd["filename"], np.array(cs["camera_intrinsic"], dtype=np.float64),
            (int(cam_sd["width"]), int(cam_sd["height"])))
