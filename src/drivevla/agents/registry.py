"""Policies by name (or checkpoint directory), so every benchmark can score every policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivevla.core.policy import Policy
from drivevla.export.onnx_policy import OnnxPolicy, onnx_policy_dir
from drivevla.export.tensorrt_policy import trt_policy, trt_policy_dir
from drivevla.planner.baselines import IDMPolicy, LaneKeepPolicy
from drivevla.planner.box_expert import BoxExpert
from drivevla.planner.expert import ExpertPolicy
from drivevla.vla.policy import DriveVLAPolicy, load_default_policy

_FACTORIES: dict[str, Callable[[], Policy]] = {}


def declared_cameras(policy: object) -> list[dict[str, Any]] | None:
    """The cameras a loaded learned policy declares, as CameraSpec dicts: an ONNX
    deployment's ``deploy.json`` cameras (the exported graph's image size), else a DriveVLA
    checkpoint's ``model.camera_rig`` (the mounts it trained with); None when it declares
    none (other policies, checkpoints from before camera rigs were recorded)."""
    deploy = getattr(policy, "deploy", None)
    if isinstance(deploy, dict) and deploy.get("cameras"):
        return [dict(c) for c in deploy["cameras"]]
    model = getattr(getattr(policy, "config", None), "model", None)
    rig = getattr(model, "camera_rig", ())
    return [dict(c) for c in rig] if rig else None
_BUILTINS_LOADED = False


def register_policy(name: str, factory: Callable[[], Policy]) -> None:
    _FACTORIES[name] = factory


def _drivevla_tiny() -> Policy:
    """drivevla-tiny, the trained default model shipped inside the package."""
    return load_default_policy()


def _builtin() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    for name, factory in (
        ("expert", ExpertPolicy),
        ("box-expert", BoxExpert),
        ("lane_keep", LaneKeepPolicy),
        ("idm", IDMPolicy),
        ("drivevla-tiny", _drivevla_tiny),
    ):
        _FACTORIES.setdefault(name, factory)  # a user's registration under the name wins


def policy_names() -> list[str]:
    _builtin()
    return sorted(_FACTORIES)


def policy_folder(name: str) -> Path | None:
    """The folder ``make_policy(name)`` loads from: a checkpoint directory, the deployment
    folder of ``onnx:DIR`` or the engines folder of ``trt:DIR``; None for a registered name or
    anything else."""
    if name in policy_names():
        return None
    deployment = onnx_policy_dir(name) or trt_policy_dir(name)
    if deployment is not None:
        return deployment if deployment.is_dir() else None
    path = Path(name)
    return path if path.is_dir() and (path / "config.json").is_file() else None


def make_policy(name_or_checkpoint: str) -> Policy:
    """A fresh policy: a registered name, ``onnx:DIR`` (an exported deployment folder run by
    ONNX Runtime), ``trt:DIR`` (its TensorRT engines) or a checkpoint directory
    (``config.json`` inside)."""
    _builtin()
    if name_or_checkpoint in _FACTORIES:
        return _FACTORIES[name_or_checkpoint]()
    deployment = onnx_policy_dir(name_or_checkpoint)
    if deployment is not None:  # onnx:DIR, a folder of `drivevla export onnx`
        return OnnxPolicy(deployment)
    engines = trt_policy_dir(name_or_checkpoint)
    if engines is not None:  # trt:DIR, a folder of `drivevla export tensorrt`
        return trt_policy(engines)
    path = Path(name_or_checkpoint)
    if path.is_dir() and (path / "config.json").is_file():
        return DriveVLAPolicy.from_pretrained(path)
    raise ValueError(
        f"unknown policy {name_or_checkpoint!r}: not a registered name {sorted(_FACTORIES)} "
        "and not a checkpoint directory with a config.json (an exported folder is onnx:DIR, its "
        "TensorRT engines trt:DIR)"
    )
