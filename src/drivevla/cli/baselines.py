"""``drivevla train-baseline ego-mlp``: train the ego-status MLP baseline of open-loop
scoring (AD-MLP-like; no camera) on the train split of a nuScenes database, in seconds on
CPU. ``drivevla eval open-loop`` prints it above the policy rows."""

from __future__ import annotations

import argparse
from pathlib import Path

from drivevla.benchmarks.ego_mlp import (
    EgoMLPConfig,
    default_ego_mlp_path,
    save_ego_mlp,
)
from drivevla.cli._parsing import add_command, add_group, positive_float, positive_int
from drivevla.datasets.nuscenes_openloop import open_openloop_source
from drivevla.training.ego_mlp_fit import fit_ego_mlp


def register(subparsers: argparse._SubParsersAction) -> None:
    group = add_group(subparsers, "train-baseline",
                      "train a camera-free baseline of open-loop scoring")
    p = add_command(group, "ego-mlp",
                    "the ego-status MLP (ego history 2 s, speed, acceleration, yaw rate, "
                    "command; no camera) on a split's keyframes; safetensors + config.json")
    p.add_argument("--dataroot", required=True,
                   help="nuScenes dataroot (real nuScenes or `drivevla data export-nuscenes`)")
    p.add_argument("--version", required=True, help="table folder, e.g. v1.0-trainval")
    p.add_argument("--split", default="train",
                   help="the scenes to train on (real nuScenes: train, mini_train; our "
                   "export: its drivevla_export.json splits)")
    p.add_argument("--out", default=None,
                   help="a folder (model.safetensors + config.json) or a .safetensors file "
                   "(+ the .json beside it); default DATAROOT/drivevla_baselines/"
                   "ego_mlp-VERSION-SPLIT, where `eval open-loop` looks for it")
    defaults = EgoMLPConfig()
    p.add_argument("--epochs", type=positive_int, default=defaults.epochs,
                   help="full-batch optimiser steps")
    p.add_argument("--lr", type=positive_float, default=defaults.lr, help="learning rate")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of the weights")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch CPU threads while training (1 is fastest for this small "
                   "network, most of all on a busy machine)")
    p.set_defaults(fn=_cmd_ego_mlp)


def _cmd_ego_mlp(args: argparse.Namespace) -> int:
    source = open_openloop_source(args.dataroot, args.version, args.split)
    out = Path(args.out) if args.out else default_ego_mlp_path(args.dataroot, args.version,
                                                                args.split)
    trained_on = {**{k: v for k, v in source.describe().items() if k != "n_keyframes"},
                  "scenes": sorted({s.scene_name for s in source.samples})}
    config = EgoMLPConfig(epochs=args.epochs, lr=args.lr, seed=args.seed)
    model = fit_ego_mlp(source.samples, config, trained_on, threads=args.threads)
    weights, config_file = save_ego_mlp(model, out)
    info = model.config.training
    print(f"ego MLP trained on {model.config.trained_on['n_samples']} samples of "
          f"{args.version}/{args.split} in {info['seconds']:.1f} s (train L2 "
          f"{info['final_train_loss_m']:.3f} m); wrote {weights} and {config_file}")
    return 0
