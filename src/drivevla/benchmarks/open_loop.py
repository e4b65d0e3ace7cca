"""Open-loop scoring on nuScenes-style logs: ``drivevla eval open-loop``.

``run_open_loop(policy, source, out)`` scores every keyframe of ``source`` (an
:class:`~drivevla.datasets.nuscenes_openloop.OpenLoopSource`: real nuScenes or our export)
with a full 3 s future (6 x 0.5 s): the policy gets the sample's
:class:`~drivevla.core.types.Observation` (its cameras by channel name, ego status from the
ego poses, the command derived from the future and the instruction rendered from it), is
reset before each sample (each sample is the first tick of a route, so odometry inputs read
0) and its :class:`~drivevla.core.types.Decision` is resampled to 6 waypoints at 0.5 s.
The camera-free baselines of :mod:`.open_loop_baselines` are scored on the same samples
(``baselines=True``), and the ego-status MLP of :mod:`.ego_mlp` when its weights are given
(``ego_mlp=PATH``). Metrics and conventions: :mod:`.open_loop_metrics`.

- **Records**: ``out/samples.jsonl``, one JSON line per sample as it is scored (every
  planner's waypoints, per-step L2 and collision flags, the logged future's flags, the
  command), flushed line by line.
- **Resume**: a rerun into the same ``out`` scores only the samples without a record (a
  half-written last line is dropped; skipped samples are retried); ``out/run.json`` records
  the policy, its checkpoint's content hash, the data and the baselines, and a run with
  others into the same ``out`` is refused. ``max_samples`` may change between runs.
- **Bad input**: a sample without a camera the policy needs, an unreadable image, or an
  observation the policy rejects (a :class:`~drivevla.core.errors.DriveVLAError`) stops the
  run with the error naming the sample; with ``skip_bad`` it is recorded as skipped, counted
  and listed in the summary.
- ``policy="expert"``: the privileged expert cannot act on a log, so its row is the logged
  future (on our export, what the expert drove): a sanity row, L2 0.

``out/summary.json``: rows (baselines first), both conventions, exclusions, provenance.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.agents import registry
from drivevla.benchmarks.closed_loop_run import checkpoint_sha256, policy_identity
from drivevla.benchmarks.ego_mlp import (
    EGO_MLP_NAME,
    EgoHistory,
    describe,
    ego_features,
    load_ego_mlp,
)
from drivevla.benchmarks.open_loop_baselines import BASELINES, log_replay
from drivevla.benchmarks.open_loop_metrics import (
    FUTURE_STEPS,
    STEP_S,
    collision_steps,
    l2_errors,
    offroad_steps,
)
from drivevla.benchmarks.open_loop_summary import PROTOCOL, format_table, summarize
from drivevla.core.errors import DriveVLAError
from drivevla.core.jsonio import json_ready, write_json_atomic
from drivevla.core.paths import exclusive_dir
from drivevla.core.policy import policy_threads
from drivevla.core.provenance import provenance
from drivevla.core.types import Decision
from drivevla.sim_bridge.embedded.config import SimConfig

logger = logging.getLogger(__name__)

RECORDS_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"
EXPERT = "expert"
_TIMES = STEP_S * np.arange(1, FUTURE_STEPS + 1)
MODES = ("language", "target_point")
TARGET_SPACING_M = SimConfig().route_target_spacing_m  # as the policies were trained


class OpenLoopRunError(DriveVLAError, ValueError):
    """An open-loop run that cannot go on: a policy that cannot act on a log sample, or an
    output folder holding another run's results."""


@dataclass
class Planner:
    """One row of the table: ``predict(sample, observation)`` -> (6, 2) ego-frame waypoints
    (``observation`` is None for the camera-free baselines)."""

    name: str
    kind: str  # "baseline" | "policy"
    inputs: str
    predict: Callable[[Any, Any], np.ndarray]
    cameras: tuple[str, ...] | None = None  # None: needs no observation
    meta: dict[str, Any] = field(default_factory=dict)
    # target-point mode: (count, spacing m) of the route target points its observation gets
    target_points: tuple[int, float] | None = None

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "inputs": self.inputs}


def six_waypoints(decision: Decision) -> np.ndarray:
    """The decision's waypoints at 0.5 .. 3 s (linear interpolation when its step is not
    0.5 s; the ego origin at t = 0)."""
    wps, dt = np.asarray(decision.waypoints, np.float64), float(decision.dt_s)
    if abs(dt - STEP_S) < 1e-9 and len(wps) >= FUTURE_STEPS:
        return wps[:FUTURE_STEPS].copy()
    t = dt * np.arange(len(wps) + 1)
    pts = np.vstack([np.zeros((1, 2)), wps])
    return np.stack([np.interp(_TIMES, t, pts[:, 0]), np.interp(_TIMES, t, pts[:, 1])], 1)


def policy_cameras(policy: Any) -> tuple[str, ...]:
    """The camera names a policy reads: a DriveVLA checkpoint's ``model.cameras``, an ONNX
    deployment's ``deploy.json`` cameras, else none."""
    model = getattr(getattr(policy, "config", None), "model", None)
    if model is not None and getattr(model, "cameras", None):
        return tuple(model.cameras)
    deploy = getattr(policy, "deploy", None)
    if isinstance(deploy, dict) and deploy.get("cameras"):
        return tuple(c["name"] for c in deploy["cameras"])
    return ()


def policy_planner(name: str, mode: str | None = None) -> Planner:
    """The planner of ``--policy NAME``: the expert as log replay, else the policy built by
    the registry (a name, a checkpoint directory or ``onnx:DIR``). ``mode``: ``language``
    (the command as an instruction) or ``target_point`` (also route target points from the
    logged future, ``nuscenes_openloop.logged_target_points``); None:
    the policy's own navigation mode. A mode the policy does not navigate by is an error."""
    if mode is not None and mode not in MODES:
        raise OpenLoopRunError(f"--mode {mode!r}: one of {list(MODES)}")
    if name == EXPERT:
        return Planner("expert (log replay)", "policy",
                       "logged future (expert's drive)",
                       lambda sample, obs: log_replay(sample))
    policy = registry.make_policy(name)
    model = getattr(getattr(policy, "config", None), "model", None)
    navigation = getattr(model, "navigation_mode", "language")
    if mode is not None and mode != navigation:
        raise OpenLoopRunError(
            f"--mode {mode}: policy {name!r} has navigation_mode {navigation} (run it with "
            f"--mode {navigation}, or score a {mode} checkpoint)")
    cameras = policy_cameras(policy)

    def predict(sample: Any, obs: Any) -> np.ndarray:
        policy.reset()  # each sample is scored alone, as the first tick of a route
        return six_waypoints(policy.act(obs))

    inputs = (f"camera {'+'.join(cameras)}, " if cameras else "") + "ego status, instruction"
    targets = None
    if navigation == "target_point":
        targets = (int(model.route_targets), TARGET_SPACING_M)
        inputs += ", target points from the logged future"
    return Planner(name, "policy", inputs, predict, cameras, {"policy": policy}, targets)


def baseline_planners() -> list[Planner]:
    return [Planner(n, "baseline", inputs, lambda sample, obs, fn=fn: fn(sample))
            for n, (fn, inputs) in BASELINES.items()]


EGO_MLP_INPUTS = "ego history 2 s, status, command"


def ego_mlp_planner(path: str | Path, source: Any) -> tuple[Planner, list[str]]:
    """The ego-status MLP at ``path`` as a baseline row (its history read from every keyframe
    of ``source``), and a note when it was trained on scenes it is scored on. Raises
    :class:`~drivevla.benchmarks.ego_mlp.EgoMLPFileError` for a missing or corrupt file."""
    model = load_ego_mlp(path)
    history = EgoHistory(source.samples)
    planner = Planner(EGO_MLP_NAME, "baseline", EGO_MLP_INPUTS,
                      lambda sample, obs: model.predict(ego_features(sample, history)),
                      meta={"ego_mlp": describe(model, path)})
    trained = set(model.config.trained_on.get("scenes") or ()) if _same_scene_names(
        model.config.trained_on, source) else set()
    scored = {s.scene_name for s in source.samples}
    notes = []
    if trained & scored:
        notes.append(f"the {EGO_MLP_NAME} was trained on {len(trained & scored)} of the "
                     f"{len(scored)} scored scene(s): its row is a fit to them, not a "
                     "held-out score")
    return planner, notes


def _same_scene_names(trained_on: dict[str, Any], source: Any) -> bool:
    """Whether scene names of the MLP's training data and of ``source`` name the same scenes:
    real nuScenes names are global (scene-0061 is one scene in every version), our exports
    name scenes by episode id, unique only within one export (its dataroot)."""
    root = trained_on.get("dataroot")
    if root is None:  # weights from before the dataroot was recorded: names only
        return True
    if Path(root).resolve() == Path(source.dataroot).resolve():
        return True
    return not trained_on.get("drivevla_export") and not source.drivevla_export


def _excluded(sample: Any, exc: DriveVLAError, reason: str) -> dict[str, Any]:
    return {"sample_token": sample.sample_token, "scene": sample.scene_name,
            "excluded": reason, "detail": str(exc)}


def score_sample(sample: Any, source: Any, planners: list[Planner], skip_bad: bool
                 ) -> dict[str, Any]:
    """One sample's record: every planner's waypoints, L2 per step and collision flags
    against all boxes and vehicles only, and the logged future's own flags."""
    future = sample.future_boxes()
    boxes = {"all": [b.footprints() for b in future],
             "vehicle": [b.select("vehicle").footprints() for b in future]}
    offset = source.ego_box_forward_offset_m
    gt = np.asarray(sample.future_waypoints, np.float64)
    record: dict[str, Any] = {
        "sample_token": sample.sample_token, "scene": sample.scene_name,
        "index_in_scene": sample.index_in_scene, "command": sample.command.value,
        "ego": {"speed_mps": sample.ego.speed_mps, "yaw_rate_rps": sample.ego.yaw_rate_rps},
        "gt_waypoints": gt,
        "gt_collision": {k: collision_steps(gt, b, offset) for k, b in boxes.items()},
        "planners": {},
    }
    on_drivable = source.on_drivable(sample)
    if on_drivable is not None:
        record["gt_off_road"] = offroad_steps(gt, on_drivable, offset)
    for planner in planners:
        obs = None
        if planner.cameras is not None:
            try:
                obs = source.observation(sample, planner.cameras, planner.target_points)
            except DriveVLAError as exc:
                if not skip_bad:
                    raise
                return _excluded(sample, exc, getattr(exc, "reason", type(exc).__name__))
        t0 = time.perf_counter()
        try:
            wps = planner.predict(sample, obs)
        except DriveVLAError as exc:  # an observation the policy rejects (bad input)
            if not skip_bad:
                raise
            return _excluded(sample, exc, f"policy_rejected:{type(exc).__name__}")
        except Exception as exc:
            raise OpenLoopRunError(
                f"policy {planner.name!r} failed on sample {sample.sample_token} (scene "
                f"{sample.scene_name!r}): {type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - t0
        record["planners"][planner.name] = {
            "waypoints": wps, "l2": l2_errors(wps, gt), "time_s": elapsed,
            "collision": {k: collision_steps(wps, b, offset) for k, b in boxes.items()},
        }
        if on_drivable is not None:
            record["planners"][planner.name]["off_road"] = offroad_steps(wps, on_drivable,
                                                                         offset)
    return record


def _load_records(path: Path) -> dict[str, dict[str, Any]]:
    """The records already written, by sample token (the last line of a token wins); a
    half-written last line is cut off so that appending continues cleanly."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        path.write_bytes(data)
        logger.warning("%s: dropped a half-written last line", path)
    records = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OpenLoopRunError(f"{path}: line {number} is not JSON ({exc}); delete the "
                                   "folder to start over") from exc
        records[record["sample_token"]] = record
    return records


def _run_meta(policy: str, source: Any, planners: list[Planner]) -> dict[str, Any]:
    meta = {
        "protocol": PROTOCOL,
        "policy": policy if policy == EXPERT else policy_identity(policy),
        "checkpoint_sha256": None if policy == EXPERT else checkpoint_sha256(policy),
        "data": {k: v for k, v in source.describe().items() if k != "n_keyframes"},
        "planners": [p.name for p in planners],
        "ego_box_forward_offset_m": source.ego_box_forward_offset_m,
    }
    for p in planners:  # only with an ego MLP: a folder of other weights' rows is refused
        if "ego_mlp" in p.meta:
            meta["ego_mlp_sha256"] = p.meta["ego_mlp"]["sha256"]
    return meta


def _claim(out: Path, meta: dict[str, Any]) -> None:
    run_file = out / RUN_FILE
    if run_file.is_file():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        diff = sorted(k for k in meta if old.get(k) != json_ready(meta[k]))
        if diff:
            raise OpenLoopRunError(
                f"{out} holds an open-loop run with another {', '.join(diff)} (see "
                f"{run_file}); use another --out folder (or delete it)")
        return
    if (out / RECORDS_FILE).is_file():
        raise OpenLoopRunError(f"{out} holds {RECORDS_FILE} but no {RUN_FILE}; use another "
                               "--out folder")
    write_json_atomic(run_file, meta)


def run_open_loop(policy: str, source: Any, out: str | Path, *, baselines: bool = True,
                  skip_bad: bool = False, max_samples: int | None = None,
                  threads: int | None = None, progress: bool = True,
                  print_table: bool = True, ego_mlp: str | Path | None = None,
                  ego_mlp_note: str | None = None, mode: str | None = None
                  ) -> dict[str, Any]:
    """Score ``policy`` (and the baselines) on ``source``'s samples with a full future; see
    the module docstring. ``threads``: CPU threads of the policy (restored after, see
    :func:`~drivevla.core.policy.policy_threads`; None: the library's default).
    ``ego_mlp``: the ego-status MLP's weights (a baseline row, with ``baselines``); without,
    ``ego_mlp_note`` says in the table why it is missing. ``mode``: see
    :func:`policy_planner`. Returns the summary (also ``out/summary.json``)."""
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples={max_samples!r} must be >= 1 (or unset)")
    out = Path(out)
    if threads is not None and threads < 1:
        raise ValueError(f"threads={threads!r} must be >= 1 (or unset)")
    planners, notes = baseline_planners() if baselines else [], []
    if baselines and ego_mlp is not None:
        planner, notes = ego_mlp_planner(ego_mlp, source)
        planners.append(planner)
    elif baselines and ego_mlp_note:
        notes.append(ego_mlp_note)
    planners.append(policy_planner(policy, mode))
    if planners[-1].target_points is not None:
        notes.append(f"{policy} is given route target points from the logged future "
                     "(where the log went): its row is not comparable with command-only "
                     "planners")
    with policy_threads(planners[-1].meta.get("policy"), threads) as torch_threads:
        return _run(policy, source, out, planners, skip_bad, max_samples, progress,
                    print_table, {"threads": threads, "torch_threads": torch_threads}, notes)


def _run(policy: str, source: Any, out: Path, planners: list[Planner], skip_bad: bool,
         max_samples: int | None, progress: bool, print_table: bool,
         run_info: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    from tqdm import tqdm

    t0 = time.perf_counter()
    eligible = [s for s in source.samples if bool(np.all(s.future_valid))]
    n_incomplete = len(source.samples) - len(eligible)
    eligible = eligible[:max_samples] if max_samples else eligible
    meta = _run_meta(policy, source, planners)
    with exclusive_dir(out, ".lock", what="open-loop evaluation"):
        _claim(out, meta)
        path = out / RECORDS_FILE
        done = {t: r for t, r in _load_records(path).items() if "excluded" not in r}
        todo = [s for s in eligible if s.sample_token not in done]
        if done:
            logger.info("%s: %d sample(s) already scored, %d to score", out,
                        len(eligible) - len(todo), len(todo))
        with open(path, "a", encoding="utf-8") as fh:
            for sample in tqdm(todo, desc=f"open-loop {policy}", unit="sample",
                               disable=not progress):
                record = score_sample(sample, source, planners, skip_bad)
                done[sample.sample_token] = record
                fh.write(json.dumps(json_ready(record), allow_nan=False) + "\n")
                fh.flush()
        records = [done[s.sample_token] for s in eligible if s.sample_token in done]
        summary = summarize(records, [p.describe() for p in planners], len(source.samples),
                            n_incomplete, source.ego_box_forward_offset_m)
        summary.update(policy=meta["policy"], data=source.describe(), provenance=provenance(),
                       run={"samples_scored_now": len(todo), "max_samples": max_samples,
                            "skip_bad": skip_bad, **run_info,
                            "wall_time_s": time.perf_counter() - t0},
                       notes=notes,
                       baseline_models={p.name: p.meta["ego_mlp"] for p in planners
                                        if "ego_mlp" in p.meta})
        write_json_atomic(out / SUMMARY_FILE, summary)
    if print_table:
        print(format_table(summary))
    return summary
