"""Training recipes: everything that makes a checkpoint, in one file, run by one command.

A recipe (``training/recipes/NAME.yaml``, or any YAML file of the same shape) holds

- ``collect``: the expert demonstrations (``suite``, ``episodes``, ``cameras``: a rig name of
  :data:`~drivevla.sim_bridge.embedded.config.CAMERA_RIGS`, ``jpeg_quality``), collected into
  the first ``--data`` folder before training (resumable; a complete folder is reused);
- ``train``: :class:`~drivevla.training.config.TrainConfig` fields;
- ``model``: model-config overrides by dotted key (what ``--set`` takes).

``drivevla train --recipe drivevla-tiny --data data/tiny --out runs/tiny`` collects and
trains; options and ``--set`` given on the command line override the recipe's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drivevla.datasets.collect import CollectConfig, parse_cameras
from drivevla.training.config import TrainConfig
from drivevla.vla.configuration_drivevla import DriveVLAConfig

RECIPE_DIR = Path(__file__).parent / "recipes"
SECTIONS = ("description", "collect", "train", "model")
COLLECT_KEYS = ("suite", "episodes", "cameras", "jpeg_quality")
# TrainConfig fields a recipe may not set: where a run lives and how it reports
NOT_IN_RECIPES = ("data", "out", "model", "progress", "cache_dir", "skip_corrupt")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    collect: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)

    def collect_config(self, out: str, workers: int, progress: bool = True
                       ) -> CollectConfig | None:
        """The demonstrations to collect into ``out`` (None: the recipe collects none)."""
        if not self.collect:
            return None
        c = self.collect
        cameras = parse_cameras(c["cameras"]) if c.get("cameras") else None
        return CollectConfig(suite=c["suite"], episodes=int(c["episodes"]), out=out,
                             workers=workers, jpeg_quality=int(c.get("jpeg_quality", 90)),
                             cameras=cameras, show_progress=progress)


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load_recipe(source: str | Path) -> Recipe:
    """A shipped recipe by name or a YAML file; errors name the file and the bad key."""
    path = RECIPE_DIR / f"{source}.yaml" if str(source) in recipe_names() else Path(source)
    if not path.is_file():
        raise ValueError(f"no recipe {str(source)!r}: neither a shipped one "
                         f"({', '.join(recipe_names())}) nor a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"recipe {path}: not readable YAML: {exc}") from None
    try:
        return _check(path.stem, data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"recipe {path}: {exc}") from None


def _check(name: str, data: Any) -> Recipe:
    if not isinstance(data, dict):
        raise ValueError("expected a mapping with sections " + ", ".join(SECTIONS))
    _known("section", data, SECTIONS)
    collect, train, model = (dict(data.get(k) or {}) for k in ("collect", "train", "model"))
    _known("collect key", collect, COLLECT_KEYS)
    if collect and not {"suite", "episodes"} <= set(collect):
        raise ValueError("collect needs suite and episodes")
    if collect.get("cameras"):
        parse_cameras(collect["cameras"])
    allowed = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in NOT_IN_RECIPES]
    _known("train key", train, allowed)
    TrainConfig(data=("-",), **train)  # bad values fail here
    DriveVLAConfig().with_overrides(model)  # unknown keys / bad values fail here
    return Recipe(name, str(data.get("description") or ""), collect, train, model)


def _known(what: str, data: dict[str, Any], valid: tuple[str, ...] | list[str]) -> None:
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; valid: {list(valid)}")
