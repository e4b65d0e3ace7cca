"""The ego-status MLP baseline of open-loop scoring (AD-MLP-like: the ego's 2 s history, its
speed, acceleration and yaw rate and the driving command; no camera). One folder, three
files, as every model here: :mod:`.configuration_ego_mlp` (the JSON config, with the
normalisation and what it was trained on), :mod:`.processor_ego_mlp` (features from an
open-loop sample), :mod:`.modeling_ego_mlp` (the network, safetensors weights, loading with
named errors). Training: :mod:`drivevla.training.ego_mlp_fit`."""

from drivevla.benchmarks.ego_mlp.configuration_ego_mlp import EgoMLPConfig
from drivevla.benchmarks.ego_mlp.modeling_ego_mlp import (
    EGO_MLP_NAME,
    EgoMLP,
    EgoMLPFileError,
    default_ego_mlp_path,
    describe,
    ego_mlp_files,
    load_ego_mlp,
    save_ego_mlp,
    train_split_for,
)
from drivevla.benchmarks.ego_mlp.processor_ego_mlp import EgoHistory, ego_features

__all__ = ["EGO_MLP_NAME", "EgoHistory", "EgoMLP", "EgoMLPConfig", "EgoMLPFileError",
           "default_ego_mlp_path", "describe", "ego_features", "ego_mlp_files", "load_ego_mlp",
           "save_ego_mlp", "train_split_for"]
