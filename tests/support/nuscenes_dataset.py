"""A small dataset in drivevla's format written directly with pyarrow (following
drivevla.datasets.format), so the nuScenes tests do not depend on the collection code: two
episodes of known ego paths and actors."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from drivevla.core.frames import world_to_ego, wrap_angle
from drivevla.datasets.format import (
    EPISODES_PATH,
    FEATURES,
    FUTURE_STEPS,
    INFO_PATH,
    SCHEMA_VERSION,
    episode_file,
    feature_names,
)

HZ = 10.0
N_FRAMES = 40
SPEED = 8.0
CAMERAS = {
    "front": dict(width=64, height=48, fov_deg=90.0, x=1.5, y=0.0, z=1.6, pitch_deg=5.0),
    "front_left": dict(width=64, height=48, fov_deg=70.0, x=1.3, y=0.5, z=1.6, yaw_deg=55.0),
}
# episode id -> (scenario, start x, y, yaw, yaw-rate schedule, actors carry ids)
EPISODES = {
    # straight for 2 s, then a left curve: sample 0 is STRAIGHT, sample 1 LEFT
    "ep-a": ("testloop", 10.0, -20.0, 0.3, lambda t: 0.0 if t < 2.0 else 0.4, True),
    # a right curve from the start, on the highway family's map; actors without ids
    "ep-b": ("highway", 30.0, 0.0, 0.0, lambda t: -0.3, False),
}



def _ego_path(x0, y0, yaw0, yaw_rate):
    """(N, 3) world x, y, yaw at 10 Hz of a unicycle at SPEED, integrated in 1 ms steps."""
    out, x, y, yaw = [], x0, y0, yaw0
    for i in range(N_FRAMES):
        out.append((x, y, yaw))
        for k in range(100):
            t = i / HZ + k * 1e-3
            x += SPEED * math.cos(yaw) * 1e-3
            y += SPEED * math.sin(yaw) * 1e-3
            yaw += yaw_rate(t) * 1e-3
    return np.array(out)


def _actors_world(x0, y0, yaw0):
    """World (x, y, yaw, speed) of a car and a pedestrian per frame, plus their specs."""
    c, s = math.cos(yaw0), math.sin(yaw0)
    frames = []
    for i in range(N_FRAMES):
        d = 20.0 + 6.0 * i / HZ
        car = (x0 + d * c, y0 + d * s, yaw0, 6.0)
        ped = (x0 + 25.0 * c - 6.0 * s, y0 + 25.0 * s + 6.0 * c, yaw0 + math.pi / 2, 0.0)
        frames.append([("vehicle", 7, car, 4.5, 1.9), ("pedestrian", 9, ped, 0.6, 0.6)])
    return frames


def _jpeg(i: int, cam: str) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (64, 48), (i * 6 % 256, 80 if cam == "front" else 160, 200))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def future_positions(poses: np.ndarray, i: int) -> tuple[np.ndarray, int]:
    """Ego-frame positions 0.5 .. 3.0 s after frame i, and how many exist."""
    idx = [i + 5 * k for k in range(1, FUTURE_STEPS + 1) if i + 5 * k < len(poses)]
    wps = np.zeros((FUTURE_STEPS, 2))
    if idx:
        wps[: len(idx)] = world_to_ego(poses[idx, :2], poses[i, :2], poses[i, 2])
    return wps, len(idx)


def _arrow_type(pa, dtype: str):
    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "binary": pa.binary(),
        "list<float32>": pa.list_(pa.float32()),
    }[dtype]


def _frame_actors(actors_w_i, ex: float, ey: float, eyaw: float, with_ids: bool) -> list:
    """The frame's actors in the ego frame, plus a static one the export leaves out."""
    actors = []
    for kind, aid, (ax, ay, ayaw, aspeed), length, width in actors_w_i:
        rel = world_to_ego(np.array([ax, ay]), np.array([ex, ey]), eyaw)
        a = {"kind": kind, "x": float(rel[0]), "y": float(rel[1]),
             "yaw": float(wrap_angle(ayaw - eyaw)), "length": length, "width": width,
             "speed": aspeed}
        if with_ids:
            a["id"] = aid
        actors.append(a)
    actors.append({"kind": "static", "x": 5.0, "y": 9.0, "yaw": 0.0, "length": 50.0,
                   "width": 0.3, "speed": 0.0})  # not exported
    return actors


def _episode_rows(eid: str, scenario: str, poses, actors_w, with_ids: bool,
                  columns: list[str]) -> dict[str, list]:
    """Column -> values of every frame of one episode (unset features at zero/empty)."""
    by_name = {f.name: f for f in FEATURES}
    rows = {c: [] for c in columns}
    for i in range(N_FRAMES):
        ex, ey, eyaw = poses[i]
        wps, n_valid = future_positions(poses, i)
        values = {
            "episode_id": eid, "frame_index": i, "timestamp_s": i / HZ, "scenario": scenario,
            "intent": "cruise", "ego.x": float(ex), "ego.y": float(ey), "ego.yaw": float(eyaw),
            "ego.speed": SPEED,
            "actors": json.dumps(_frame_actors(actors_w[i], ex, ey, eyaw, with_ids)),
            "future.waypoints": wps.reshape(-1).tolist(), "future.valid": n_valid,
            "driver": "expert", **{f"image.{c}": _jpeg(i, c) for c in CAMERAS},
        }
        for col in columns:
            if col in values:
                rows[col].append(values[col])
            elif by_name[col].dtype == "string":
                rows[col].append("")
            elif by_name[col].dtype == "list<float32>":
                rows[col].append([0.0] * int(np.prod(by_name[col].shape)))
            elif by_name[col].dtype == "binary":
                rows[col].append(bytes(int(np.prod(by_name[col].shape)) // 8))
            else:
                rows[col].append(0)
    return rows


def _info() -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "features": {
            f.name: {"dtype": f.dtype, "shape": list(f.shape), "unit": f.unit, "frame": f.frame}
            for f in FEATURES
        },
        "cameras": {name: {"name": name, **spec} for name, spec in CAMERAS.items()},
        "control_hz": HZ,
        "counts": {"episodes": len(EPISODES), "frames": N_FRAMES * len(EPISODES)},
        "splits": {"train": ["ep-a"], "val": ["ep-b"]},
    }


def build_dataset(root: Path) -> dict:
    """The two :data:`EPISODES` written in our format under ``root``; per episode the poses,
    world actors and rows written (the truth the tests compare the export with)."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow writes the dataset's Parquet shards")
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow writes the Parquet shards")
    columns = feature_names(list(CAMERAS))
    by_name = {f.name: f for f in FEATURES}
    schema = pa.schema([
        (c, pa.binary() if c.startswith("image.") else _arrow_type(pa, by_name[c].dtype))
        for c in columns])
    truth, metas = {}, []
    for index, (eid, (scenario, x0, y0, yaw0, rate, with_ids)) in enumerate(EPISODES.items()):
        poses, actors_w = _ego_path(x0, y0, yaw0, rate), _actors_world(x0, y0, yaw0)
        rows = _episode_rows(eid, scenario, poses, actors_w, with_ids, columns)
        rel = episode_file(index, eid)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(rows, schema=schema), root / rel)
        metas.append({"episode_id": eid, "scenario": scenario, "intent": "cruise",
                      "seed": index, "n_frames": N_FRAMES, "file": rel,
                      "instruction": "Follow the road."})
        truth[eid] = {"poses": poses, "actors": actors_w, "rows": rows}
    (root / INFO_PATH).parent.mkdir(parents=True, exist_ok=True)
    (root / INFO_PATH).write_text(json.dumps(_info()))
    (root / EPISODES_PATH).write_text("".join(json.dumps(m) + "\n" for m in metas))
    return truth
