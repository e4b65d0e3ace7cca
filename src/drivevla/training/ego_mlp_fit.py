"""Training of the ego-status MLP baseline (``drivevla train-baseline ego-mlp``): full-batch
Adam on the train samples with a full 3 s future, the loss the metric itself (the mean L2
distance of the six waypoints, in metres). A few hundred samples train in seconds on CPU;
seeded, so the same data and config give the same weights."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from drivevla.benchmarks.ego_mlp import EgoHistory, EgoMLP, EgoMLPConfig, ego_features
from drivevla.core.errors import DriveVLAError

logger = logging.getLogger(__name__)
_MIN_STD = 1e-3  # a constant feature (e.g. no LEFT command in the split) stays unscaled


class EgoMLPTrainingError(DriveVLAError, ValueError):
    """Data the ego MLP cannot be trained on (no sample with a full future)."""


def training_arrays(samples: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, N_FEATURES), targets (N, 12) metres) of the samples whose 6 future
    waypoints are valid; the history reads every sample given."""
    history = EgoHistory(samples)
    usable = [s for s in samples if bool(np.all(s.future_valid))]
    if not usable:
        raise EgoMLPTrainingError(f"none of the {len(samples)} keyframe(s) has a full 3 s "
                                  "future; the ego MLP needs some to train on")
    x = np.stack([ego_features(s, history) for s in usable])
    y = np.stack([np.asarray(s.future_waypoints, np.float64).ravel() for s in usable])
    return x, y


def _std(values: np.ndarray) -> list[float]:
    return np.where(values.std(0) < _MIN_STD, 1.0, values.std(0)).tolist()


def fit_ego_mlp(samples: Sequence[Any], config: EgoMLPConfig | None = None,
                trained_on: dict[str, Any] | None = None, threads: int | None = 1) -> EgoMLP:
    """An :class:`EgoMLP` trained on ``samples`` (every keyframe of the train split; those
    with a full future are the training set). ``trained_on`` is recorded in its config,
    with the sample count; ``config.training`` gets the final train loss and seconds.
    ``threads``: torch's CPU threads while training (restored after; None: unchanged), 1 by
    default: a small network gains nothing from more, and loses much on a busy machine."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _fit(samples, config or EgoMLPConfig(), trained_on)
    finally:
        torch.set_num_threads(previous)


def _fit(samples: Sequence[Any], config: EgoMLPConfig, trained_on: dict[str, Any] | None
         ) -> EgoMLP:
    x, y = training_arrays(samples)
    config.feature_mean, config.feature_std = x.mean(0).tolist(), _std(x)
    config.target_mean, config.target_std = y.mean(0).tolist(), _std(y)
    config.trained_on = {**(trained_on or {}), "n_samples": len(x)}
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = EgoMLP(config)
        loss = _optimise(model, torch.as_tensor(x, dtype=torch.float32),
                         torch.as_tensor(y, dtype=torch.float32))
    config.training = {"epochs": config.epochs,
                       "optimizer": "AdamW, full batch, cosine learning rate",
                       "loss": "mean L2 of the 6 waypoints (m)", "final_train_loss_m": loss,
                       "seconds": round(time.perf_counter() - t0, 3),
                       "torch_threads": torch.get_num_threads()}
    logger.info("ego MLP: %d samples, train L2 %.3f m, %.1f s", len(x), loss,
                config.training["seconds"])
    return model.eval()


def _optimise(model: EgoMLP, x: torch.Tensor, y: torch.Tensor) -> float:
    cfg = model.config
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.epochs)
    target = y.reshape(-1, 6, 2)
    model.train()
    for _ in range(cfg.epochs):
        optimiser.zero_grad()
        loss = torch.linalg.vector_norm(model.waypoints(x) - target, dim=-1).mean()
        loss.backward()
        optimiser.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        return float(torch.linalg.vector_norm(model.waypoints(x) - target, dim=-1).mean())
