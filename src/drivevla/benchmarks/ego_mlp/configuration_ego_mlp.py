"""The ego-status MLP's config (``config.json`` beside ``model.safetensors``): the network's
shape, the feature and target normalisation fitted on the train samples, how it was trained
and on which data. The single source of truth on reload; unknown keys are refused."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from drivevla.core.errors import DriveVLAError

MODEL_TYPE = "drivevla-ego-mlp"
HISTORY_STEPS = 4  # past keyframes, 0.5 s apart: 2 s, as AD-MLP
N_FEATURES = 2 * HISTORY_STEPS + 3 + 3  # history (x, y), speed/accel/yaw rate, command
N_TARGETS = 12  # 6 waypoints (x, y), 0.5 .. 3 s


class EgoMLPConfigError(DriveVLAError, ValueError):
    """An ego-MLP config that cannot describe a model: unknown or missing keys, wrong
    sizes; the message names them."""


@dataclass
class EgoMLPConfig:
    """Shape, normalisation and training record of one ego-status MLP.

    ``feature_mean``/``feature_std`` (``N_FEATURES``) and ``target_mean``/``target_std``
    (``N_TARGETS``, metres) are fitted on the train samples; ``trained_on`` names the data
    (dataroot, version, split, scene names, sample count); ``training`` the optimiser run."""

    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    history_steps: int = HISTORY_STEPS
    epochs: int = 600
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    feature_mean: list[float] = field(default_factory=lambda: [0.0] * N_FEATURES)
    feature_std: list[float] = field(default_factory=lambda: [1.0] * N_FEATURES)
    target_mean: list[float] = field(default_factory=lambda: [0.0] * N_TARGETS)
    target_std: list[float] = field(default_factory=lambda: [1.0] * N_TARGETS)
    trained_on: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    model_type: str = MODEL_TYPE

    def __post_init__(self) -> None:
        if self.model_type != MODEL_TYPE:
            raise EgoMLPConfigError(f"model_type {self.model_type!r} is not {MODEL_TYPE!r}")
        if self.history_steps != HISTORY_STEPS:
            raise EgoMLPConfigError(f"history_steps={self.history_steps!r}: only "
                                    f"{HISTORY_STEPS} is supported")
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise EgoMLPConfigError(f"hidden_sizes={self.hidden_sizes!r} must be positive")
        for name, size in (("feature_mean", N_FEATURES), ("feature_std", N_FEATURES),
                           ("target_mean", N_TARGETS), ("target_std", N_TARGETS)):
            if len(getattr(self, name)) != size:
                raise EgoMLPConfigError(f"{name} has {len(getattr(self, name))} values, "
                                        f"not {size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> EgoMLPConfig:
        """The config in ``data``; raises :class:`EgoMLPConfigError` naming unknown keys."""
        if not isinstance(data, dict):
            raise EgoMLPConfigError(f"an ego-MLP config is a JSON object, not "
                                    f"{type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EgoMLPConfigError(f"unknown key(s) {unknown}; valid: {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise EgoMLPConfigError(str(exc)) from exc
