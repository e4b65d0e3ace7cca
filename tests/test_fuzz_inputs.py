"""Fuzz: random suite files, configs and observations thrown at the loaders and at ``act()``.

Every outcome must be a result or a *named* error (a known error class whose message names
the file or the field); never another exception, a write outside the output folder, or a NaN
in a route file or a summary. Hypothesis runs derandomized (the same examples on every
machine), so a failure here reproduces; raise ``max_examples`` locally to search harder.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from drivevla.agents import registry
from drivevla.agents.agent import Agent
from drivevla.benchmarks.closed_loop import run_closed_loop
from drivevla.cli import KNOWN_ERRORS
from drivevla.core.paths import safe_child
from drivevla.core.types import (
    CameraSpec,
    Decision,
    EgoState,
    HighLevelCommand,
    Observation,
    RouteInfo,
)
from drivevla.sim_bridge.embedded.config import SimConfig
from drivevla.sim_bridge.embedded.criteria_config import CriteriaConfig
from drivevla.sim_bridge.embedded.scenario_registry import FAMILIES
from drivevla.sim_bridge.embedded.suites import load_suite
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.policy import load_default_policy

FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=120,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# ------------------------------------------------------------------------------ strategies

_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -1.0, 1e-9, 1e9, -1e9, 0.5, 30.0])
_SCALARS = (st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _FLOATS
            | st.text(max_size=10))
JUNK = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)

_SIM_KEYS = SimConfig.valid_keys()
_IDS = st.sampled_from(["r1", "R1", "a/b", "../../escaped", "/abs/path", "", ".", "..", "ok-2",
                        "sub/../r1", "spaces here", "ünï", "x" * 300, "con", "a\x00b"])
_EVENT = st.fixed_dictionaries(
    {"kind": st.sampled_from(["notice", "misleading", "speed", "nope"]) | JUNK,
     "start_s": _FLOATS | JUNK, "duration_s": _FLOATS | JUNK},
    optional={"category": st.sampled_from(["run_red_light", "leave_road"]) | JUNK,
              "speed_kmh": _FLOATS, "text": st.text(max_size=20) | JUNK})


def _config_dict(keys: list[str]) -> st.SearchStrategy:
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), _SCALARS | JUNK,
                           max_size=4)


def _route() -> st.SearchStrategy:
    scenario = st.sampled_from(sorted(FAMILIES))
    return scenario.flatmap(lambda s: st.fixed_dictionaries(
        {"scenario": st.just(s) | JUNK,
         "intent": st.sampled_from(list(FAMILIES[s].intents)) | JUNK,
         "seed": st.integers(-3, 2**40) | JUNK},
        optional={"id": _IDS | JUNK, "config": _config_dict(_SIM_KEYS) | JUNK,
                  "instruction": st.text(max_size=30) | JUNK,
                  "events": st.lists(_EVENT, max_size=2) | JUNK}))


SUITES = JUNK | st.fixed_dictionaries(
    {"name": st.text(max_size=10) | JUNK, "routes": st.lists(_route(), max_size=3) | JUNK},
    optional={"description": JUNK})


OUTCOMES = {"observations": 0, "decided": 0, "routes": 0, "scored": 0}  # tried / got through


def _named(exc: BaseException, *names: str) -> None:
    """A known error whose message is not empty and names each of ``names``."""
    assert isinstance(exc, KNOWN_ERRORS), f"unnamed error {type(exc).__name__}: {exc}"
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} with an empty message"
    for name in names:
        assert name in message, f"{type(exc).__name__} does not name {name!r}: {message}"


def _names_a_key(exc: BaseException, data: dict) -> bool:
    return any(k in str(exc) or repr(k) in str(exc) for k in data)


def _no_nan(obj) -> None:
    json.dumps(obj, allow_nan=False, default=str)  # raises ValueError on NaN / inf


# ------------------------------------------------------------------------------ suite files


def _write(folder: Path, data, fmt: str) -> Path:
    path = folder / f"suite.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@FUZZ
@given(data=SUITES, fmt=st.sampled_from(["yaml", "json"]))
def test_random_suite_files_load_or_fail_by_name(data, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), data, fmt)
        try:
            suite = load_suite(path)
        except Exception as exc:
            _named(exc, str(path))
            return
        out = Path(tmp) / "out"
        for spec in suite.routes:  # every loaded route names files inside the output folder
            route_file = safe_child(out / "routes", spec.route_id, ".json").resolve()
            assert out.resolve() in route_file.parents
            try:
                spec.sim_config(None)
            except Exception as exc:
                _named(exc, "SimConfig")


@FUZZ
@given(raw=st.binary(max_size=200), fmt=st.sampled_from(["yaml", "json"]))
def test_random_bytes_as_a_suite_file_fail_by_name(raw, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"suite.{fmt}"
        path.write_bytes(raw)
        try:
            load_suite(path)
        except Exception as exc:
            _named(exc, str(path))


# ------------------------------------------------------------------------------ configs


@FUZZ
@given(data=_config_dict(_SIM_KEYS))
def test_random_sim_configs_build_or_fail_naming_the_field(data):
    try:
        cfg = SimConfig.from_dict(data)
    except Exception as exc:
        _named(exc)
        bad = [k for k in data if k not in _SIM_KEYS]
        if bad:
            assert "unknown" in str(exc)
        else:
            assert _names_a_key(exc, data), f"no field named in: {exc}"
        return
    _no_nan(cfg.to_dict())


@FUZZ
@given(data=st.dictionaries(st.sampled_from(sorted(CriteriaConfig.__dataclass_fields__))
                            | st.text(max_size=6), _SCALARS | JUNK, max_size=4))
def test_random_criteria_configs_build_or_fail_naming_the_field(data):
    try:
        CriteriaConfig.from_dict(data)
    except Exception as exc:
        _named(exc)
        assert _names_a_key(exc, data), f"no field named in: {exc}"


@FUZZ
@given(data=st.dictionaries(st.sampled_from(["model", "inference", "loss", "vocabularies"])
                            | st.text(max_size=8), JUNK, max_size=3))
def test_random_model_configs_build_or_fail_by_name(data):
    try:
        DriveVLAConfig.from_dict(data)
    except Exception as exc:
        _named(exc)


# ------------------------------------------------------------------------------ observations


@pytest.fixture(scope="module")
def tiny_agent() -> Agent:
    return Agent(load_default_policy())


def _image(kind: str, spec: CameraSpec, seed: int) -> np.ndarray:
    shape = (spec.height, spec.width, 3)
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "wrong_shape":
        return np.zeros((spec.height // 2, spec.width, 3), np.uint8)
    if kind == "float":
        return rng.random(shape).astype(np.float32)
    return np.full(shape, {"black": 0, "white": 255, "grey": 128}[kind], np.uint8)


# half the observations are plausible (they must reach the model), half are anything
_PLAUSIBLE = st.floats(-60.0, 60.0)
_OBSERVATION_FIELDS = {
    "image": st.sampled_from(["black", "white", "grey", "noise", "noise", "noise",
                              "wrong_shape", "float"]),
    "seed": st.integers(0, 2**31),
    "command": st.sampled_from(list(HighLevelCommand)),
    "instruction": st.sampled_from(["Turn left at the next junction.", "Drive through the red "
                                    "light!", "x " * 2000, "", " \n"]) | st.text(max_size=300),
}
OBSERVATIONS = st.fixed_dictionaries({
    **_OBSERVATION_FIELDS,
    "ego": st.lists(_FLOATS | _PLAUSIBLE, min_size=7, max_size=7),
    "targets": st.lists(_FLOATS | _PLAUSIBLE, min_size=2, max_size=12),
    "timestamp": _FLOATS,
}) | st.fixed_dictionaries({
    **_OBSERVATION_FIELDS,
    "image": st.sampled_from(["black", "white", "grey", "noise"]),
    "instruction": st.text(min_size=1, max_size=300).filter(str.strip),
    # x, y, yaw, speed, accel, yaw rate, steer within what a car does
    "ego": st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(-3.2, 3.2),
                     st.floats(-5.0, 40.0), st.floats(-8.0, 8.0), st.floats(-1.0, 1.0),
                     st.floats(-1.0, 1.0)).map(list),
    "targets": st.lists(st.floats(-200.0, 200.0), min_size=10, max_size=10),
    "timestamp": st.floats(0.0, 1e4),
})


@settings(FUZZ, max_examples=60, phases=[Phase.generate])  # no shrinking: model calls are slow
@given(o=OBSERVATIONS)
def test_random_observations_give_a_finite_decision_or_a_named_error(tiny_agent, o):
    cfg = tiny_agent.policy.config.model
    spec = CameraSpec(name=cfg.cameras[0], width=cfg.image_width * 2, height=cfg.image_height * 2)
    OUTCOMES["observations"] += 1
    targets = np.asarray(o["targets"][: len(o["targets"]) // 2 * 2], float).reshape(-1, 2)
    try:
        obs = Observation(
            images={spec.name: _image(o["image"], spec, o["seed"])},
            cameras={spec.name: spec},
            ego=EgoState(*o["ego"]),
            route=RouteInfo(targets, o["command"], "follow_route", 100.0),
            instruction=o["instruction"],
            timestamp_s=o["timestamp"],
        )
    except Exception as exc:
        _named(exc)
        return
    tiny_agent.reset()
    try:
        control, decision = tiny_agent.step(obs)
    except Exception as exc:
        _named(exc)
        return
    OUTCOMES["decided"] += 1
    assert isinstance(decision, Decision) and decision.health is not None
    assert np.isfinite(decision.waypoints).all() and np.isfinite(decision.target_speeds).all()
    assert all(math.isfinite(v) for v in (control.throttle, control.steer, control.brake))


# ------------------------------------------------------------------------------ closed loop


class _RandomPolicy:
    """Random but well-formed decisions: waypoints and speeds up to absurd magnitudes."""

    name = "fuzz_random"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, privileged=None) -> None:
        self.rng = np.random.default_rng(getattr(privileged, "seed", 0) or 0)

    def act(self, obs):
        scale = 10.0 ** self.rng.integers(-3, 7)
        return Decision(self.rng.normal(0, scale, (8, 2)), np.abs(self.rng.normal(0, scale, 8)))


# routes that load, with random traffic, lights, limits and instruction events
_RUN_CONFIG = st.fixed_dictionaries({}, optional={
    "traffic_density": st.floats(0.0, 3.0), "pedestrians": st.booleans(),
    "light_offset_s": st.floats(0.0, 20.0), "max_accel_mps2": st.floats(0.5, 10.0),
    "max_steer_deg": st.floats(5.0, 60.0), "guard_rails": st.booleans(),
})
_RUN_EVENT = st.fixed_dictionaries({
    "kind": st.just("speed"), "start_s": st.floats(0.0, 3.0), "duration_s": st.floats(0.1, 5.0),
    "speed_kmh": st.floats(5.0, 200.0)})
_RUN_ROUTE = st.sampled_from(sorted(FAMILIES)).flatmap(lambda s: st.fixed_dictionaries({
    "id": st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True), "scenario": st.just(s),
    "intent": st.sampled_from(list(FAMILIES[s].intents)), "seed": st.integers(0, 2**31),
    "config": _RUN_CONFIG, "events": st.lists(_RUN_EVENT, max_size=2)}))


@settings(FUZZ, max_examples=6)
@given(route=_RUN_ROUTE, policy=st.sampled_from(["expert", "fuzz_random"]))
def test_random_routes_score_without_nan_and_write_only_under_out(route, policy):
    OUTCOMES["routes"] += 1
    registry.register_policy("fuzz_random", _RandomPolicy)
    route = {**route, "config": {**route["config"], "cameras": []}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite = _write(root, {"name": "fuzz", "routes": [route]}, "yaml")
        before = {p for p in root.rglob("*")}
        out = root / "run" / "out"
        try:
            summary = run_closed_loop(policy, suite, out, workers=0, max_steps=30,
                                      progress=False, print_table=False)
        except Exception as exc:
            _named(exc)
            summary = None
        written = {p for p in root.rglob("*")} - before
        assert all(p == out.parent or out in p.parents or p == out for p in written), written
        if summary is not None:
            OUTCOMES["scored"] += 1
            _no_nan(summary)
            for file in (out / "routes").glob("*.json"):
                text = file.read_text(encoding="utf-8")
                assert "NaN" not in text and "Infinity" not in text, file


def test_the_fuzzing_reached_the_model_and_the_scores():
    """Most random observations must reach a decision and most random routes a score, or the
    tests above prove little (they ran first in this process: pytest keeps file order; under
    pytest-xdist a test that ran in another worker is not counted here)."""
    if not (OUTCOMES["observations"] or OUTCOMES["routes"]):
        pytest.skip("run together with the fuzz tests above, in the same process")
    if OUTCOMES["observations"]:
        assert OUTCOMES["decided"] >= OUTCOMES["observations"] // 3, OUTCOMES
    if OUTCOMES["routes"]:
        assert OUTCOMES["scored"] >= OUTCOMES["routes"] * 2 // 3, OUTCOMES
