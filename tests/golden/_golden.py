"""Shared code of the golden behaviour tests (``tests/test_golden_behaviour.py``) and of their
fixture generator (``tools/make_golden.py``): one copy of how the reference arrays are made.

Three recordings, each compared with the fixtures in ``tests/fixtures/golden/``:

- :func:`drive_route`: a rule-based policy (``expert``, ``idm``, ``lane_keep``) drives one
  route of the ``smoke`` suite to its end through the :class:`Agent` (policy + shared
  trajectory controller), in an env built as the closed-loop benchmark builds it (the route's
  config, seed and reset options; no camera, which these policies never read);
- :func:`tiny_outputs`: the expert drives the first ticks of a few ``smoke`` routes with the
  simulator's default camera (what the closed-loop benchmark gives every policy) while a
  ``drivevla-tiny`` policy is handed each tick's Observation; its decisions are recorded;
- :func:`collect_digests`: the ``drivevla collect`` function writes two short episodes of the
  ``train`` suite; the content of every Parquet shard and of ``meta/episodes.jsonl`` (less
  wall-clock, size and provenance fields) is digested.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
DRIVES_FILE = "drives.npz"
TINY_FILE = "drivevla_tiny.npz"
COLLECT_FILE = "collect.json"
MACHINE_FILE = "machine.json"

SUITE = "smoke"
DRIVE_POLICIES = ("expert", "idm", "lane_keep")
POSE_FIELDS = ("x", "y", "yaw", "speed")  # per observation: every tick and the final one
CONTROL_FIELDS = ("throttle", "steer", "brake")  # per tick: the control applied
DRIVE_FIELDS = POSE_FIELDS + CONTROL_FIELDS

# drivevla-tiny: TINY_TICKS ticks from the start of each of these smoke routes (200 frames)
TINY_ROUTES = (
    "highway-overtake",
    "exit-take_exit",
    "intersection-turn_left",
    "urban-follow_street",
)
TINY_TICKS = 50
TINY_ATOL = 1e-5

COLLECT_CONFIG = {
    "suite": "train",
    "episodes": 2,
    "workers": 0,  # in this process: the same episode code, no worker start-up
    "jpeg_quality": 90,
    "cameras": ({"name": "front", "width": 64, "height": 48, "fov_deg": 90.0},),
    "max_steps": 80,
}
# fields of an episodes.jsonl line that are not behaviour (wall clock, file size, versions)
EPISODE_VOLATILE = frozenset({"wall_time_s", "bytes", "versions", "provenance", "created_utc"})


def key(*parts: str) -> str:
    return "__".join(parts)


def suite_routes() -> list[Any]:
    from drivevla.sim_bridge.embedded.suites import load_suite

    return list(load_suite(SUITE).routes)


def _env_for(spec: Any, base_config: dict[str, Any] | None):
    """The env of one route, built and reset as ``benchmarks.closed_loop.drive_route`` does."""
    from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv

    env = EmbeddedDrivingEnv(spec.sim_config(base_config))
    obs, info = env.reset(seed=spec.seed, options=spec.reset_options())
    return env, obs, info


def _pose(info: dict[str, Any]) -> tuple[float, float, float, float]:
    ego = info["ego"]
    return (float(ego["x"]), float(ego["y"]), float(ego["yaw"]), float(ego["speed_mps"]))


# ---------------------------------------------------------------------------------- a) drives


def drive_route(policy: str, spec: Any) -> dict[str, Any]:
    """Drive ``spec`` to its end with ``policy``; returns float64 arrays per field (poses:
    one more entry than controls, the final pose), and the route's DS, RC and status."""
    from drivevla.agents.agent import Agent
    from drivevla.agents.registry import make_policy

    env, obs, info = _env_for(spec, {"cameras": []})
    try:
        agent = Agent(make_policy(policy))
        agent.reset(env)
        poses, controls = [], []
        while True:
            poses.append(_pose(info))
            control, _ = agent.step(env.make_observation(obs, info))
            controls.append((float(control.throttle), float(control.steer), float(control.brake)))
            obs, _, terminated, truncated, info = env.step(control)
            if terminated or truncated:
                break
        poses.append(_pose(info))
        if truncated and not terminated:
            env.criteria.terminate("step limit reached")
        result = env.route_result()
    finally:
        env.close()
    p = np.asarray(poses, dtype=np.float64)
    c = np.asarray(controls, dtype=np.float64)
    out: dict[str, Any] = {f: p[:, i].copy() for i, f in enumerate(POSE_FIELDS)}
    out.update({f: c[:, i].copy() for i, f in enumerate(CONTROL_FIELDS)})
    out["driving_score"] = np.float64(result.driving_score)
    out["route_completion"] = np.float64(result.route_completion)
    out["status"] = np.str_(result.status)
    return out


def all_drives(policies: tuple[str, ...] = DRIVE_POLICIES) -> dict[str, np.ndarray]:
    """Every policy on every smoke route, flattened to ``{policy__route__field: array}``."""
    arrays: dict[str, np.ndarray] = {}
    for policy in policies:
        for spec in suite_routes():
            for name, value in drive_route(policy, spec).items():
                arrays[key(policy, spec.route_id, name)] = np.asarray(value)
    return arrays


def first_divergence(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> str | None:
    """None when the two drives of one route are bit-identical; else where they part: the
    first tick at which any field differs, the fields and the size of the differences there."""
    n_e, n_a = len(expected["throttle"]), len(actual["throttle"])
    first: int | None = None
    for f in DRIVE_FIELDS:
        e, a = np.asarray(expected[f]), np.asarray(actual[f])
        n = min(len(e), len(a))
        bad = np.flatnonzero(~((e[:n] == a[:n]) | (np.isnan(e[:n]) & np.isnan(a[:n]))))
        if bad.size and (first is None or bad[0] < first):
            first = int(bad[0])
    if first is None:
        if n_e != n_a:
            first = min(n_e, n_a)  # identical while both ran: one ended sooner
        else:
            for name in ("driving_score", "route_completion", "status"):
                if not np.array_equal(expected[name], actual[name]):
                    return (
                        f"identical ticks, but {name} {expected[name]!r} (golden) != "
                        f"{actual[name]!r} (now)"
                    )
            return None
    parts = []
    for f in DRIVE_FIELDS:
        e, a = np.asarray(expected[f]), np.asarray(actual[f])
        if first < len(e) and first < len(a) and not e[first] == a[first]:
            size = abs(a[first] - e[first])
            parts.append(f"{f} {e[first]!r} -> {a[first]!r} (|diff| {size:.3g})")
    where = f"first differs at tick {first}"
    if not parts:
        where += f" (one drive ended: {n_e} ticks golden, {n_a} now)"
    lengths = f"; ticks golden {n_e}, now {n_a}"
    scores = (
        f"; DS {float(expected['driving_score']):.4f} -> {float(actual['driving_score']):.4f}, "
        f"RC {float(expected['route_completion']):.2f} -> {float(actual['route_completion']):.2f}"
    )
    return where + (": " + ", ".join(parts) if parts else "") + lengths + scores


CLOSED_LOOP_CASE = ("expert", "intersection-turn_left")


def closed_loop_record(policy: str, spec: Any, out: Path) -> dict[str, Any]:
    """The closed-loop benchmark (``drivevla eval closed-loop``, in this process, no camera)
    on a one-route suite of ``spec``: its route record's scores, tick count and comfort."""
    import yaml

    from drivevla.benchmarks.closed_loop import run_closed_loop

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    suite = out / "golden-one-route.yaml"
    suite.write_text(yaml.safe_dump({"name": "golden-one-route", "routes": [spec.to_dict()]}))
    run_closed_loop(
        policy,
        suite,
        out / "run",
        workers=0,
        base_config={"cameras": []},
        progress=False,
        print_table=False,
    )
    record = json.loads((out / "run" / "routes" / f"{spec.route_id}.json").read_text())
    m = record["metrics"]
    return {
        "status": record["status"],
        "driving_score": m["driving_score"],
        "route_completion": m["route_completion"],
        "n_ticks": m["n_ticks"],
        "comfort": m["comfort"],
    }


def closed_loop_expected(drive: dict[str, np.ndarray], control_hz: float) -> dict[str, Any]:
    """What :func:`closed_loop_record` must return for a golden drive (its comfort metrics
    computed from the golden poses, as the benchmark computes them from the poses it saw)."""
    from drivevla.benchmarks.comfort import route_comfort

    return {
        "status": str(drive["status"]),
        "driving_score": float(drive["driving_score"]),
        "route_completion": float(drive["route_completion"]),
        "n_ticks": len(drive["throttle"]),
        "comfort": route_comfort(
            drive["x"], drive["y"], drive["yaw"], drive["speed"], dt=1.0 / control_hz
        ),
    }


# ---------------------------------------------------------------------------------- b) tiny


def tiny_outputs() -> dict[str, np.ndarray]:
    """drivevla-tiny's decisions on TINY_TICKS ticks of each TINY_ROUTES route, driven by
    the expert (its controls are applied). Arrays of len(TINY_ROUTES) * TINY_TICKS frames."""
    import torch

    from drivevla.agents.agent import Agent
    from drivevla.agents.registry import make_policy

    by_id = {s.route_id: s for s in suite_routes()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the results do not depend on it beyond TINY_ATOL; speed does
    try:
        tiny = make_policy("drivevla-tiny")
        rec: dict[str, list[Any]] = {
            k: []
            for k in (
                "route",
                "tick",
                "waypoints",
                "target_speeds",
                "meta_action",
                "reason",
                "expert_pose",
                "image_sha256",
            )
        }
        for route_id in TINY_ROUTES:
            spec = by_id[route_id]
            env, obs, info = _env_for(spec, None)  # the simulator's default camera rig
            try:
                expert = Agent(make_policy("expert"))
                expert.reset(env)
                tiny.reset(env)
                for tick in range(TINY_TICKS):
                    observation = env.make_observation(obs, info)
                    decision = tiny.act(observation)
                    control, _ = expert.step(observation)
                    rec["route"].append(route_id)
                    rec["tick"].append(tick)
                    rec["waypoints"].append(np.asarray(decision.waypoints, dtype=np.float64))
                    rec["target_speeds"].append(
                        np.asarray(decision.target_speeds, dtype=np.float64)
                    )
                    rec["meta_action"].append(_value(decision.meta_action))
                    rec["reason"].append(_value(decision.reason))
                    rec["expert_pose"].append(_pose(info))
                    rec["image_sha256"].append(
                        hashlib.sha256(
                            b"".join(
                                np.ascontiguousarray(observation.images[n]).tobytes()
                                for n in sorted(observation.images)
                            )
                        ).hexdigest()
                    )
                    obs, _, terminated, truncated, info = env.step(control)
                    if terminated or truncated:
                        raise RuntimeError(f"{route_id} ended before {TINY_TICKS} ticks")
            finally:
                env.close()
    finally:
        torch.set_num_threads(threads)
    return {
        "route": np.array(rec["route"]),
        "tick": np.array(rec["tick"], dtype=np.int64),
        "waypoints": np.stack(rec["waypoints"]),
        "target_speeds": np.stack(rec["target_speeds"]),
        "meta_action": np.array(rec["meta_action"]),
        "reason": np.array(rec["reason"]),
        "expert_pose": np.asarray(rec["expert_pose"], dtype=np.float64),
        "image_sha256": np.array(rec["image_sha256"]),
    }


def _value(x: Any) -> str:
    return "" if x is None else str(getattr(x, "value", x))


# ---------------------------------------------------------------------------------- c) collect


def collect_digests(out: Path) -> dict[str, Any]:
    """Collect COLLECT_CONFIG into ``out`` with the ``drivevla collect`` function; return the
    content digests of its shards, its episodes.jsonl lines and parts of meta/info.json."""
    from drivevla.datasets.collect import CollectConfig, collect

    collect(CollectConfig(out=str(out), show_progress=False, **COLLECT_CONFIG))
    return dataset_digests(out)


def _strip(record: Any) -> Any:
    if isinstance(record, dict):
        return {k: _strip(v) for k, v in record.items() if k not in EPISODE_VOLATILE}
    if isinstance(record, list):
        return [_strip(v) for v in record]
    return record


def column_digest(column: Any) -> str:
    """sha256 over a pyarrow column's values (exact: floats by repr, bytes as bytes)."""
    h = hashlib.sha256()
    for value in column.to_pylist():
        h.update(repr(value).encode())
        h.update(b"\n")
    return h.hexdigest()


def dataset_digests(out: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out = Path(out)
    shards = {}
    for path in sorted(out.glob("data/**/*.parquet")):
        table = pq.read_table(path)
        shards[path.relative_to(out).as_posix()] = {
            "num_rows": table.num_rows,
            "column_order": list(table.column_names),
            "columns": {
                name: {
                    "type": str(table.schema.field(name).type),
                    "sha256": column_digest(table.column(name)),
                }
                for name in table.column_names
            },
        }
    lines = (out / "meta" / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
    episodes = [_strip(json.loads(line)) for line in lines if line.strip()]
    info = json.loads((out / "meta" / "info.json").read_text(encoding="utf-8"))
    info_subset = {
        "schema_version": info["schema_version"],
        "cameras": info["cameras"],
        "control_hz": info["control_hz"],
        "counts": {k: v for k, v in info["counts"].items() if k != "bytes"},
        "splits": info["splits"],
        "fingerprint": info["collection"]["fingerprint"],
    }
    return {"shards": shards, "episodes": episodes, "info": info_subset}


def digest_differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs between two :func:`dataset_digests` results, one line per difference."""
    diffs = []
    e_sh, a_sh = expected["shards"], actual["shards"]
    if sorted(e_sh) != sorted(a_sh):
        diffs.append(f"shard files {sorted(e_sh)} (golden) != {sorted(a_sh)} (now)")
    for name in sorted(set(e_sh) & set(a_sh)):
        e, a = e_sh[name], a_sh[name]
        if e["num_rows"] != a["num_rows"]:
            diffs.append(f"{name}: {e['num_rows']} rows (golden) != {a['num_rows']} (now)")
        if e["column_order"] != a["column_order"]:
            diffs.append(
                f"{name}: columns {e['column_order']} (golden) != {a['column_order']} (now)"
            )
        for col in e["columns"]:
            if col in a["columns"] and e["columns"][col] != a["columns"][col]:
                diffs.append(
                    f"{name}: column {col!r} differs ({e['columns'][col]['type']} -> "
                    f"{a['columns'][col]['type']})"
                )
    e_ep, a_ep = expected["episodes"], actual["episodes"]
    if len(e_ep) != len(a_ep):
        diffs.append(f"episodes.jsonl: {len(e_ep)} lines (golden) != {len(a_ep)} (now)")
    for i, (e, a) in enumerate(zip(e_ep, a_ep, strict=False)):
        for k in sorted(set(e) | set(a)):
            if e.get(k, "<missing>") != a.get(k, "<missing>"):
                diffs.append(
                    f"episodes.jsonl line {i}: {k!r} {str(e.get(k, '<missing>'))[:200]}"
                    f" -> {str(a.get(k, '<missing>'))[:200]}"
                )
    for k in sorted(set(expected["info"]) | set(actual["info"])):
        if expected["info"].get(k) != actual["info"].get(k):
            diffs.append(
                f"meta/info.json {k!r}: {expected['info'].get(k)!r} -> {actual['info'].get(k)!r}"
            )
    return diffs


def arithmetic_signature() -> dict[str, Any]:
    """What decides the last bits of this machine's float results: numpy's SIMD dispatch level
    and torch's CPU kernels. Closed-loop drives amplify a last-bit difference, so golden drives
    are only comparable on machines with the same signature."""
    import numpy
    import torch

    try:  # numpy 2's dispatch table; its place is private, so a move reads as "unknown"
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        __cpu_features__ = {"unknown": True}
    simd = sorted(name for name, on in __cpu_features__.items() if on)
    return {
        "numpy": numpy.__version__,
        "numpy_simd": simd,
        "torch": torch.__version__.split("+")[0],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
