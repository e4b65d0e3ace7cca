"""Parity between the PyTorch policy and its exported graph: the same observations through
both, compared output by output (max abs difference of waypoints, speeds, logits and the
refusal probability; agreement of the meta-action arg-max, the decided reason and the
refusal decision; the explanation text). Used at export (figures in deploy.json) and by
``drivevla export parity``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from drivevla.core.types import CameraSpec, EgoState, HighLevelCommand, Observation, RouteInfo
from drivevla.export.graph import OUTPUT_NAMES, action_tensors
from drivevla.language.instructions import instruction_corpus
from drivevla.vla.policy import DriveVLAPolicy

# waypoints (m) and target speeds (m/s): the bar for FP32 ONNX Runtime vs PyTorch
TOLERANCE = 1e-4
EXPLANATION_SHARE = 0.99  # frames whose explanation text must be identical
FLOAT_OUTPUTS = {"waypoints": "max_abs_waypoints_m", "target_speeds": "max_abs_target_speeds_mps",
                 "meta_action_logits": "max_abs_meta_action_logits",
                 "reason_logits": "max_abs_reason_logits",
                 "refusal_probability": "max_abs_refusal_probability"}
# per-tick readings the odometry channels take in the samples (raw units, before clipping)
_ODOMETRY_RANGE = {"heading_change": (-3.0, 3.0), "lateral_offset": (-6.0, 6.0),
                   "distance_travelled": (0.0, 300.0)}


def sample_observations(policy: DriveVLAPolicy, cameras: list[CameraSpec], n: int,
                        seed: int = 0) -> list[tuple[Observation, dict[str, float]]]:
    """``n`` synthetic ticks (observation, odometry readings) for parity at export: camera
    noise at the export's size, instructions spread over the rendered corpus (navigation,
    notices, unsafe requests, speed requests), random ego states, target points and
    odometry readings. They exercise every input; they are not realistic frames."""
    rng = np.random.default_rng(seed)
    corpus = instruction_corpus("all")
    ticks = []
    for i in range(n):
        images = {c.name: rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8)
                  for c in cameras}
        ego = EgoState(0.0, 0.0, 0.0, float(rng.uniform(0, 15)), float(rng.uniform(-3, 3)),
                       float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-1, 1)))
        route = RouteInfo(np.cumsum(rng.uniform(0, 10, (policy.config.model.route_targets, 2)),
                                    axis=0), HighLevelCommand.LANE_FOLLOW, "follow_street", 100.0)
        obs = Observation(images, {c.name: c for c in cameras}, ego, route,
                          corpus[(i * len(corpus)) // max(n, 1)], float(i))
        readings = {name: float(rng.uniform(*_ODOMETRY_RANGE[name]))
                    for name in policy.config.model.odometry}
        ticks.append((obs, readings))
    return ticks


def reference_outputs(policy: DriveVLAPolicy, obs: Observation, readings: dict[str, float],
                      explain: bool = False, keep: bool = False) -> dict[str, Any]:
    """The PyTorch policy's outputs of one tick, named as the graph's; with ``explain`` also
    ``explanation``, the text generated from that action pass's cache; with ``keep``, the
    policy's memory keeps the tick (as a drive would; the exported side must keep it too)."""
    with torch.inference_mode():
        out = policy.action_output(obs, readings)
        tensors = action_tensors(policy.model, out)
        text = policy.explain_output(out) if explain else None
        if keep:
            policy.keep(out)
    named: dict[str, Any] = {name: t.detach().cpu().numpy()
                             for name, t in zip(OUTPUT_NAMES, tensors, strict=True)}
    return named | ({"explanation": text} if explain else {})


def compare_tick(policy: DriveVLAPolicy, obs: Observation, readings: dict[str, float],
                 exported: dict[str, np.ndarray], exported_explanation: str,
                 keep: bool = False) -> dict[str, Any]:
    """One tick's :func:`compare` and :func:`compare_explanations` row against PyTorch
    (``keep``: see :func:`reference_outputs`)."""
    reference = reference_outputs(policy, obs, readings, explain=True, keep=keep)
    return (compare(reference, exported, policy.config.inference.refusal_threshold)
            | compare_explanations(reference["explanation"], exported_explanation))


def compare(reference: dict[str, np.ndarray], exported: dict[str, np.ndarray],
            threshold: float) -> dict[str, Any]:
    """One tick's differences: max abs per float output, and whether the meta-action arg-max,
    the decided reason and the refusal decision agree."""
    row: dict[str, Any] = {
        key: float(np.abs(reference[name].astype(np.float64)
                          - exported[name].astype(np.float64)).max())
        for name, key in FLOAT_OUTPUTS.items()}
    row["meta_action_agree"] = bool(reference["meta_action_logits"].argmax(-1)[0]
                                    == exported["meta_action_logits"].argmax(-1)[0])
    row["reason_agree"] = bool(reference["reason"][0] == exported["reason"][0])
    refused = bool(reference["refusal_probability"][0] > threshold)
    row["refusal_agree"] = refused == bool(exported["refusal_probability"][0] > threshold)
    row["refused"] = refused  # by PyTorch: how many refusals the agreement covers
    return row


def compare_explanations(reference: str, exported: str) -> dict[str, Any]:
    """Whether one tick's explanation texts agree, with both texts when they do not."""
    same = reference == exported
    return {"explanation_agree": same} | ({} if same else {
        "explanation_pytorch": reference, "explanation_onnx": exported})


def summarise(rows: list[dict[str, Any]], tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Figures over ticks: the largest differences, agreement counts, and ``passed`` (waypoints
    and speeds within ``tolerance``, every arg-max and decision identical, and where the rows
    compare explanations, the same text on :data:`EXPLANATION_SHARE` of them, every
    difference listed)."""
    out: dict[str, Any] = {"frames": len(rows), "tolerance": tolerance}
    for key in FLOAT_OUTPUTS.values():
        out[key] = max((r[key] for r in rows), default=0.0)
    for key in ("meta_action_agree", "reason_agree", "refusal_agree", "refused"):
        out[key] = sum(r[key] for r in rows)
    if rows and "explanation_agree" in rows[0]:  # the bar: >= 99 % of the frames
        out["explanation_agree"] = sum(r["explanation_agree"] for r in rows)
        out["explanation_differences"] = [
            {k: r[k] for k in r if k in ("episode_id", "frame_index", "explanation_pytorch",
                                         "explanation_onnx")}
            for r in rows if not r["explanation_agree"]]
    explained = out.get("explanation_agree", len(rows)) >= EXPLANATION_SHARE * len(rows)
    out["passed"] = explained and bool(
        out["max_abs_waypoints_m"] <= tolerance and out["max_abs_target_speeds_mps"] <= tolerance
        and all(out[k] == len(rows) for k in ("meta_action_agree", "reason_agree",
                                              "refusal_agree")))
    return out


def format_parity(figures: dict[str, Any]) -> str:
    """A two-column table of :func:`summarise`'s figures."""
    n = figures["frames"]
    lines = [f"{'measure':<34} {'value':>14}", "-" * 49]
    for key in FLOAT_OUTPUTS.values():
        lines.append(f"{key:<34} {figures[key]:>14.3e}")
    for key in ("meta_action_agree", "reason_agree", "refusal_agree", "refused"):
        lines.append(f"{key:<34} {f'{figures[key]}/{n}':>14}")
    if "explanation_agree" in figures:
        agree = f"{figures['explanation_agree']}/{n}"
        lines.append(f"{'explanation_agree':<34} {agree:>14}")
    verdict = "PASS" if figures["passed"] else "FAIL"
    lines.append(f"{'within ' + format(figures['tolerance'], 'g') + ', arg-max identical':<34} "
                 f"{verdict:>14}")
    return "\n".join(lines)
