"""Scenario suites: named lists of routes, in YAML (or JSON) files users can write.

File format::

    name: my-suite
    description: optional text
    routes:
      - id: highway-cruise-0          # optional; defaults to "{scenario}-{intent}-{seed}"
        scenario: highway             # a family name (drivevla sim list)
        intent: cruise                # one of the family's intents
        seed: 1000000                 # reset seed: the same seed gives the same route
        instruction: "Keep going."    # optional; overrides the generated instruction
        config: {traffic_density: 2}  # optional SimConfig overrides for this route

Seeds are split into disjoint ranges: training data is collected from ``SEED_RANGES["train"]``
and every benchmark suite the project ships draws from ``SEED_RANGES["eval"]`` (held out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from drivevla.sim_bridge.embedded.config import SimConfig
from drivevla.sim_bridge.embedded.scenarios import FAMILIES

SEED_RANGES = {"train": (0, 999_999), "eval": (1_000_000, 1_999_999)}
_ROUTE_KEYS = {"id", "scenario", "intent", "seed", "instruction", "config"}
_SUITE_KEYS = {"name", "description", "routes"}


@dataclass(frozen=True)
class RouteSpec:
    route_id: str
    scenario: str
    intent: str
    seed: int
    instruction: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def sim_config(self, base: dict[str, Any] | None = None) -> SimConfig:
        return SimConfig.from_dict(
            {**(base or {}), **self.config, "scenario": self.scenario, "intent": self.intent}
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.route_id,
            "scenario": self.scenario,
            "intent": self.intent,
            "seed": self.seed,
        }
        if self.instruction:
            d["instruction"] = self.instruction
        if self.config:
            d["config"] = dict(self.config)
        return d


@dataclass(frozen=True)
class Suite:
    name: str
    routes: tuple[RouteSpec, ...]
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "routes": [r.to_dict() for r in self.routes],
        }


def _route_from_dict(raw: Any, where: str) -> RouteSpec:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a route must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _ROUTE_KEYS
    if unknown:
        raise ValueError(
            f"{where}: unknown route key(s) {sorted(unknown)}; valid keys: {sorted(_ROUTE_KEYS)}"
        )
    for key in ("scenario", "intent", "seed"):
        if key not in raw:
            raise ValueError(f"{where}: missing required key {key!r}")
    scenario, intent = raw["scenario"], raw["intent"]
    if scenario not in FAMILIES:
        raise ValueError(f"{where}: unknown scenario {scenario!r}; valid: {sorted(FAMILIES)}")
    if intent not in FAMILIES[scenario].intents:
        raise ValueError(
            f"{where}: unknown intent {intent!r} for scenario {scenario!r}; "
            f"valid: {list(FAMILIES[scenario].intents)}"
        )
    seed = raw["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{where}: seed must be a non-negative integer, got {seed!r}")
    config = dict(raw.get("config") or {})
    SimConfig.from_dict({**config, "scenario": scenario, "intent": intent})  # validate keys
    instruction = raw.get("instruction")
    if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
        raise ValueError(f"{where}: instruction must be a non-empty string")
    return RouteSpec(
        str(raw.get("id") or f"{scenario}-{intent}-{seed}"),
        scenario,
        intent,
        seed,
        instruction,
        config,
    )


def suite_from_dict(data: Any, source: str = "<suite>") -> Suite:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a suite must be a mapping with 'name' and 'routes'")
    unknown = set(data) - _SUITE_KEYS
    if unknown:
        raise ValueError(
            f"{source}: unknown suite key(s) {sorted(unknown)}; valid keys: {sorted(_SUITE_KEYS)}"
        )
    routes_raw = data.get("routes")
    if not isinstance(routes_raw, list) or not routes_raw:
        raise ValueError(f"{source}: 'routes' must be a non-empty list")
    routes = tuple(_route_from_dict(r, f"{source} route #{i}") for i, r in enumerate(routes_raw))
    ids = [r.route_id for r in routes]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{source}: duplicate route id(s) {dupes}")
    return Suite(
        str(data.get("name") or Path(source).stem), routes, str(data.get("description") or "")
    )


def builtin_suites() -> list[str]:
    folder = resources.files("drivevla.sim_bridge.embedded") / "suites"
    return sorted(
        p.name.rsplit(".", 1)[0]
        for p in folder.iterdir()
        if p.name.endswith((".yaml", ".yml", ".json"))
    )


def load_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name (``standard``, ``smoke``, ...) or a YAML/JSON file path."""
    path = Path(name_or_path)
    if not path.exists():
        folder = resources.files("drivevla.sim_bridge.embedded") / "suites"
        candidate = folder / f"{name_or_path}.yaml"
        if not candidate.is_file():
            raise FileNotFoundError(
                f"no suite file {str(name_or_path)!r} and no built-in suite of that name; "
                f"built-in suites: {builtin_suites()}"
            )
        text, source = candidate.read_text(encoding="utf-8"), str(name_or_path)
    else:
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(
            f"{source}: not valid {'JSON' if source.endswith('.json') else 'YAML'}: {exc}"
        ) from exc
    return suite_from_dict(data, source)


def generate_suite(name: str, split: str, per_intent: int, description: str = "") -> Suite:
    """Every family x intent, ``per_intent`` seeds each, from the named seed range."""
    lo, _ = SEED_RANGES[split]
    routes, seed = [], lo
    for family in sorted(FAMILIES):
        for intent in FAMILIES[family].intents:
            for _ in range(per_intent):
                routes.append(RouteSpec(f"{family}-{intent}-{seed}", family, intent, seed))
                seed += 1
    return Suite(name, tuple(routes), description)
