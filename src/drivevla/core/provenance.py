"""What every result file records: versions, hardware, and a timestamp."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import sys
from typing import Any

_PACKAGES = ("drivevla", "numpy", "gymnasium", "highway-env", "panda3d", "torch", "pillow")


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Python's version and each of ``packages``' installed version ("not installed")."""
    out = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "system": platform.platform(),
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
    }
    try:
        info["cores_available"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # torch absent or a broken CUDA setup must not break provenance
        info["gpu"] = None
    return info


def provenance() -> dict[str, Any]:
    return {
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "hardware": hardware(),
        "command": " ".join(sys.argv),
    }
