"""``drivevla train``: train a DriveVLA policy on demonstration datasets (and DAgger rounds)."""

from __future__ import annotations

import argparse
import dataclasses
import time

from drivevla.cli._execution import add_executor_options, executor_from_args
from drivevla.cli._parsing import add_command
from drivevla.datasets.collect import collect
from drivevla.training.config import TrainConfig
from drivevla.training.recipes import Recipe, load_recipe, recipe_names
from drivevla.training.train import Trainer, parse_overrides
from drivevla.vla.configuration_drivevla import DriveVLAConfig

# Help of the options read straight into TrainConfig fields (config.py says more of each).
INT_OPTIONS = {
    "steps": "optimiser steps before any DAgger round",
    "batch_size": "frames per step",
    "warmup_steps": "steps of linear learning-rate warm-up",
    "seed": "seed of initialisation, sampling and augmentation",
    "log_every": "steps between log lines",
    "save_every": "steps between resumable checkpoints",
    "keep_checkpoints": "resumable checkpoints kept",
    "val_frames": "validation frames evaluated at the end (0: none)",
    "dagger_steps": "training steps after each DAgger round",
    "dagger_episodes": "episodes driven per DAgger round",
    "dagger_workers": "worker processes of a DAgger round",
    "dagger_max_steps": "cap on the steps of a DAgger episode",
    "threads": "torch CPU threads (0: torch's default)",
    "refusal_text_batch": "rendered instruction texts per step for the refusal/intent heads "
                          "(0: off)",
    "refusal_text_pool": "rendered train instructions those texts are drawn from",
}
FLOAT_OPTIONS = {
    "lr": "peak learning rate (AdamW)",
    "weight_decay": "AdamW weight decay",
    "balance_reasons": "over-sampling of rare reasons, weights frequency ** -x (0: uniform)",
    "keyframe_weight": "extra weight of frames where the expert changes speed (0: off)",
    "dagger_beta": "expert's share of the applied controls while collecting DAgger rounds",
    "dagger_focus": "share of a round's routes drawn towards the families the previous "
                    "round drove worst (0: uniform)",
    "grad_clip": "gradient-norm clip",
    "pose_aug_prob": "share of frames shown from a perturbed pose (recovery examples; 0: off)",
    "pose_aug_lateral_m": "largest lateral offset of a perturbed pose (m)",
    "pose_aug_yaw_deg": "largest yaw offset of a perturbed pose (deg)",
    "refusal_text_stacked_share": "share of rendered event texts that follow a second, "
                                  "safe event",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "train", "train a DriveVLA policy on demonstration datasets")
    d = TrainConfig.__dataclass_fields__
    p.add_argument("--recipe", default=None, metavar="NAME|FILE",
                   help="a training recipe (" + ", ".join(recipe_names()) + ", or a YAML "
                   "file): its demonstrations are collected into the first --data folder "
                   "(resumable), then it trains; the options below override it")
    p.add_argument("--data", action="append", required=True,
                   help="a drivevla dataset directory (repeat for several)")
    p.add_argument("--out", required=True, help="output checkpoint dir (rerun to resume)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model config override, e.g. --set model.head=regression "
                        f"(keys: {', '.join(DriveVLAConfig.valid_keys())})")
    # None: the recipe's value, else TrainConfig's default (which the help names)
    for name, help in INT_OPTIONS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                       help=f"{help} (default: {d[name].default})")
    for name, help in FLOAT_OPTIONS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=None,
                       help=f"{help} (default: {d[name].default})")
    p.add_argument("--dagger", type=int, default=None, help="DAgger rounds after --steps "
                   "(default: 0)")
    p.add_argument("--dagger-suite", default=None, help="suite the DAgger routes come from "
                   "(default: train)")
    add_executor_options(p, "--dagger-workers")  # where a DAgger round's episodes run
    p.add_argument("--mixed-precision", default=None, choices=["no", "bf16", "fp16"],
                   help="mixed precision (GPU) (default: no)")
    p.add_argument("--cache-dir", default=None,
                   help="decoded-frame cache (default: DIR/cache of each dataset)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="leave out corrupt shards, frames and lines of meta/episodes.jsonl "
                        "instead of failing (logged, and listed in train_info.json)")
    p.set_defaults(fn=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe) if args.recipe else Recipe("none")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items()
             if k in fields and k not in ("data", "model") and v is not None}
    cfg = TrainConfig(data=tuple(args.data), progress=not args.no_progress,
                      model={**recipe.model, **parse_overrides(args.set)},
                      **{**recipe.train, **given})
    executor = executor_from_args(args)
    demos = recipe.collect_config(cfg.data[0], cfg.dagger_workers, cfg.progress)
    if demos is not None:
        t0 = time.perf_counter()
        summary = collect(demos, executor)
        print(f"recipe {recipe.name}: {summary.get('episodes', demos.episodes)} demonstration "
              f"episodes in {cfg.data[0]} ({(time.perf_counter() - t0) / 60:.1f} min)")
    info = Trainer(cfg, executor).train()
    val = info.get("validation") or {}
    print(f"trained {cfg.total_steps} steps in {info['wall_time_s'] / 60:.1f} min "
          f"({info['samples_per_s_this_run']:.0f} samples/s); checkpoint: {cfg.out}")
    if val:
        print("validation: " + "  ".join(f"{k}={v:.3f}" for k, v in val.items()))
    return 0
