"""The nuScenes tables of an export: names, deterministic tokens, rotations and the fixed
vocabulary records (category, attribute, visibility, sensor).

Tokens are ``uuid5(namespace, "<table>/<natural key>").hex`` (32 hex characters, like
nuScenes), so the same dataset always exports to the same tokens. Rotations are (w, x, y, z)
unit quaternions, as nuScenes stores them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "NUSCENES_TABLES",
    "DEFAULT_VERSION",
    "CATEGORY_BY_KIND",
    "UNKNOWN_VISIBILITY_TOKEN",
    "Tables",
    "add_vocabulary",
    "link",
    "make_token",
    "camera_channel",
    "yaw_quaternion",
    "quaternion_from_matrix",
]

# The tables nuscenes-devkit 1.2.0's NuScenes.__init__ reads (lidarseg/panoptic only if present).
NUSCENES_TABLES = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
)
DEFAULT_VERSION = "v1.0-drivevla"

CATEGORY_BY_KIND = {"vehicle": "vehicle.car", "pedestrian": "human.pedestrian.adult"}
# nuScenes category / attribute / visibility records (names and descriptions from v1.0)
_CATEGORIES = {
    "vehicle.car": "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, "
    "wagons, vans, mini-vans, SUVs and jeeps.",
    "human.pedestrian.adult": "Adult subcategory.",
}
_ATTRIBUTES = {
    "vehicle.moving": "Vehicle is moving.",
    "vehicle.stopped": "Vehicle, with a driver/rider in/on it, is currently stationary but "
    "has an intent to move.",
    "pedestrian.moving": "The human is moving.",
    "pedestrian.standing": "The human is standing.",
}
# nuScenes keeps the literal tokens "1".."4" for its visibility bins; so do we.
_VISIBILITY = [
    ("1", "v0-40", "visibility of whole object is between 0 and 40%"),
    ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
    ("3", "v60-80", "visibility of whole object is between 60 and 80%"),
    ("4", "v80-100", "visibility of whole object is between 80 and 100%"),
]
UNKNOWN_VISIBILITY_TOKEN = "4"  # occlusion is not computed; see docs/nuscenes.md

_TOKEN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "drivevla/nuscenes-export/v1")


def make_token(table: str, *key: object) -> str:
    """Deterministic 32-hex-digit token: ``uuid5(namespace, "<table>/<key parts>").hex``."""
    return uuid.uuid5(_TOKEN_NAMESPACE, "/".join([table, *map(str, key)])).hex


def camera_channel(camera_name: str) -> str:
    """nuScenes sensor channel of one of our cameras: ``front`` -> ``CAM_FRONT``."""
    return "CAM_" + "".join(c if c.isalnum() else "_" for c in camera_name).upper()


def yaw_quaternion(yaw: float) -> list[float]:
    """(w, x, y, z) unit quaternion of a rotation by ``yaw`` rad about +z."""
    return [math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0)]


def quaternion_from_matrix(rot: np.ndarray) -> list[float]:
    """(w, x, y, z) unit quaternion (w >= 0) of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(rot, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    qa = np.asarray(q) / np.linalg.norm(q)
    if qa[0] < 0:
        qa = -qa
    return [float(v) for v in qa]


class Tables:
    """The records of every table in :data:`NUSCENES_TABLES`, in the order they were added."""

    def __init__(self) -> None:
        self.records: dict[str, list[dict[str, Any]]] = {t: [] for t in NUSCENES_TABLES}

    def add(self, table: str, record: dict[str, Any]) -> dict[str, Any]:
        self.records[table].append(record)
        return record


def link(records: list[dict[str, Any]]) -> None:
    """Chain records in order through their ``prev`` / ``next`` tokens."""
    for a, b in zip(records, records[1:], strict=False):
        a["next"], b["prev"] = b["token"], a["token"]


def add_vocabulary(tables: Tables, cameras: Iterable[str]) -> None:
    """The category, attribute and visibility records, and a sensor per camera channel."""
    for name, desc in _CATEGORIES.items():
        tables.add(
            "category", {"token": make_token("category", name), "name": name, "description": desc}
        )
    for name, desc in _ATTRIBUTES.items():
        tables.add(
            "attribute", {"token": make_token("attribute", name), "name": name, "description": desc}
        )
    for token, level, desc in _VISIBILITY:
        tables.add("visibility", {"token": token, "level": level, "description": desc})
    for cam in cameras:
        channel = camera_channel(cam)
        tables.add(
            "sensor",
            {"token": make_token("sensor", channel), "channel": channel, "modality": "camera"},
        )
