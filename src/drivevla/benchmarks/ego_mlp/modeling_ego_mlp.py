"""The ego-status MLP (AD-MLP-like): normalised features -> 6 ego-frame waypoints.

Saved as ``model.safetensors`` + ``config.json`` in a folder, or, when the path names a
``.safetensors`` file, that file + the ``.json`` beside it (:func:`ego_mlp_files`). A
missing, unreadable or mismatched file raises :class:`EgoMLPFileError` naming it.

Default location (:func:`default_ego_mlp_path`): ``DATAROOT/drivevla_baselines/
ego_mlp-VERSION-SPLIT``, next to the data it was trained on, as mmdetection3d-style
pipelines keep their info files in the data root; ``drivevla train-baseline ego-mlp``
writes there and ``drivevla eval open-loop`` reads from there unless told otherwise.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from drivevla.benchmarks.ego_mlp.configuration_ego_mlp import (
    N_FEATURES,
    N_TARGETS,
    EgoMLPConfig,
    EgoMLPConfigError,
)
from drivevla.core.errors import DriveVLAError, InvalidFileError, read_json
from drivevla.core.jsonio import write_json_atomic

EGO_MLP_NAME = "ego-status MLP"
WEIGHTS_NAME, CONFIG_NAME = "model.safetensors", "config.json"
BASELINES_DIR = "drivevla_baselines"


class EgoMLPFileError(DriveVLAError, ValueError):
    """Ego-MLP weights or config that cannot be loaded (missing, corrupt, mismatched); the
    message names the file and how to make a valid one."""


class EgoMLP(nn.Module):
    """ReLU MLP over normalised features; :meth:`forward` returns normalised targets,
    :meth:`predict` (N_FEATURES,) raw features -> (6, 2) ego-frame waypoints in metres."""

    def __init__(self, config: EgoMLPConfig) -> None:
        super().__init__()
        self.config = config
        sizes = [N_FEATURES, *config.hidden_sizes]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], N_TARGETS))
        self.set_normalisation(config)

    def set_normalisation(self, config: EgoMLPConfig) -> None:
        """Buffers from the config's fitted means and standard deviations."""
        for name in ("feature_mean", "feature_std", "target_mean", "target_std"):
            self.register_buffer(name, torch.tensor(getattr(config, name), dtype=torch.float32),
                                 persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.feature_mean) / self.feature_std)

    def waypoints(self, features: torch.Tensor) -> torch.Tensor:
        """(N, N_FEATURES) raw features -> (N, 6, 2) waypoints in metres."""
        out = self(features) * self.target_std + self.target_mean
        return out.reshape(-1, N_TARGETS // 2, 2)

    @torch.inference_mode()
    def predict(self, features: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(features, np.float32)).reshape(1, N_FEATURES)
        return self.waypoints(x)[0].double().numpy()


def ego_mlp_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, config) of ``path``: a folder's ``model.safetensors`` and ``config.json``,
    or a ``.safetensors`` file and the ``.json`` of the same stem."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return path, path.with_suffix(".json")
    return path / WEIGHTS_NAME, path / CONFIG_NAME


def train_split_for(split: str) -> str:
    """The train split that goes with an evaluated one: ``mini_train`` for nuScenes'
    ``mini_*`` splits, else ``train``."""
    return "mini_train" if split.startswith("mini_") else "train"


def default_ego_mlp_path(dataroot: str | os.PathLike, version: str, split: str) -> Path:
    """Where ``train-baseline ego-mlp`` writes a model trained on ``split`` by default."""
    return Path(dataroot) / BASELINES_DIR / f"ego_mlp-{version}-{split}"


def save_ego_mlp(model: EgoMLP, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the weights (safetensors) and the config (JSON); returns their paths."""
    weights, config = ego_mlp_files(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"format": "pt", "model_type": "drivevla-ego-mlp"})
    write_json_atomic(config, model.config.to_dict())
    return weights, config


def load_ego_mlp(path: str | os.PathLike) -> EgoMLP:
    """The model at ``path`` (see :func:`ego_mlp_files`), in eval mode; raises
    :class:`EgoMLPFileError` naming a missing, corrupt or mismatched file."""
    weights, config_file = ego_mlp_files(path)
    hint = ("train one with `drivevla train-baseline ego-mlp --dataroot DIR --version V "
            f"--out {path}`")
    for file in (weights, config_file):
        if not file.is_file():
            raise EgoMLPFileError(f"no ego-MLP {file.name} at {file}; {hint}")
    try:
        config = EgoMLPConfig.from_dict(read_json(config_file))
    except (InvalidFileError, EgoMLPConfigError) as exc:
        raise EgoMLPFileError(f"{config_file}: not an ego-MLP config ({exc}); {hint}") from exc
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise EgoMLPFileError(f"{weights}: not a readable safetensors file ({exc}); "
                              f"{hint}") from exc
    model = EgoMLP(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise EgoMLPFileError(f"{weights}: weights do not match {config_file} ({first}); "
                              f"{hint}") from exc
    return model.eval()


def files_sha256(path: str | os.PathLike) -> str:
    """sha256 over the weights' and the config's bytes."""
    digest = hashlib.sha256()
    for file in ego_mlp_files(path):
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def describe(model: EgoMLP, path: str | os.PathLike) -> dict[str, Any]:
    """What a result file records about a loaded model."""
    trained = model.config.trained_on
    return {"path": str(Path(path).resolve()), "sha256": files_sha256(path),
            "trained_on": {k: v for k, v in trained.items() if k != "scenes"},
            "training": model.config.training}
