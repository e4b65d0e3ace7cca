"""``drivevla eval explanations``: BLEU-4, ROUGE-L and CIDEr-D of a policy's explanations
against the expert's, on held-out recorded frames, beside a trivial baseline and the
faithfulness measure of the closed-loop benchmark.

``run_explanation_eval(policy, ticks, out, train_explanations=...)`` takes recorded frames
(anything with ``observation``, ``odometry``, ``explanation``, ``reason``, ``episode_id``
and ``frame_index``, as :class:`~drivevla.datasets.replay.RecordedTick`): the policy acts on
each frame with the odometry readings recorded for it (or, for a policy without that entry
point, reset and acts on it alone) and explains its decision. Scored on the frames whose
expert explanation is not empty (the others are counted):

- **n-gram scores** by :mod:`.language_metrics` (``pycocoevalcap``), one reference each;
- **faithfulness**: the share of explanations whose named reason
  (:func:`~drivevla.language.explanations.reason_from_explanation`) is the expert's reason at
  that frame (frames with a labelled reason);
- **baseline**: always the most frequent expert explanation of the train split (of the
  scored frames when no train explanation is given), which shows the scale of the numbers:
  the expert's explanations are a few phrasings per reason, so a constant sentence scores
  well above zero.

Writes ``out/explanations.jsonl`` (one line per frame) and ``out/summary.json`` (rows,
implementation, data, provenance); a rerun into ``out`` replaces both.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from drivevla.agents import registry
from drivevla.benchmarks.closed_loop_run import checkpoint_sha256, policy_identity
from drivevla.benchmarks.language_metrics import caption_scores, implementation, tokenize
from drivevla.benchmarks.open_loop import policy_cameras
from drivevla.core.errors import DriveVLAError
from drivevla.core.jsonio import json_ready, write_json_atomic
from drivevla.core.policy import policy_threads
from drivevla.core.provenance import provenance
from drivevla.language.explanations import reason_from_explanation

RECORDS_FILE, SUMMARY_FILE = "explanations.jsonl", "summary.json"
PROTOCOL = "drivevla-explanations-v1"
BASELINE = "most frequent explanation"
CAVEAT = (
    "BLEU-4, ROUGE-L and CIDEr-D count n-grams shared with the expert's one explanation per "
    "frame: a fluent explanation of the wrong reason can score well, and the baseline row "
    "(one constant sentence) shows how far that goes. Faithfulness says whether the reason "
    "named is the expert's. CIDEr-D's weights come from the scored frames' references: "
    "compare it only between runs on the same frames."
)


class ExplanationEvalError(DriveVLAError, ValueError):
    """An explanation evaluation that cannot run: a policy that does not explain, or no
    frame with an expert explanation."""


class Explainer:
    """A policy that explains recorded frames (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.policy = registry.make_policy(name)
        if not callable(getattr(self.policy, "explain", None)):
            raise ExplanationEvalError(f"policy {name!r} generates no explanations (a learned "
                                       "policy: a checkpoint directory or onnx:DIR)")
        self.cameras = policy_cameras(self.policy)
        model = getattr(getattr(self.policy, "config", None), "model", None)
        self.channels = tuple(getattr(model, "odometry", ()) or ())

    def explain(self, tick: Any) -> str:
        """The policy's explanation of its decision at ``tick``."""
        policy, obs = self.policy, tick.observation
        readings = {k: v for k, v in tick.odometry.items() if k in self.channels}
        if callable(getattr(policy, "action_output", None)):  # DriveVLAPolicy
            return policy.explain_output(policy.action_output(obs, readings))
        if callable(getattr(policy, "action_outputs", None)):  # OnnxPolicy
            return policy.explain_outputs(policy.action_outputs(obs, readings))
        policy.reset()
        return policy.explain(obs)


def most_frequent(explanations: Iterable[str]) -> str | None:
    """The most frequent non-empty explanation (the first seen among equals); None if none."""
    counts = Counter(e for e in explanations if e.strip())
    return counts.most_common(1)[0][0] if counts else None


def _row(name: str, kind: str, inputs: str, texts: list[str], records: list[dict]
         ) -> dict[str, Any]:
    refs = [r["expert_explanation"] for r in records]
    labelled = [(t, r["expert_reason"]) for t, r in zip(texts, records, strict=True)
                if r["expert_reason"]]
    named = [reason_from_explanation(t) for t, _ in labelled]
    n_faithful = sum(n is not None and n.value == reason
                     for n, (_, reason) in zip(named, labelled, strict=True))
    return {"name": name, "kind": kind, "inputs": inputs, **caption_scores(texts, refs),
            "faithfulness": n_faithful / len(labelled) if labelled else None,
            "n_faithful": n_faithful, "n_labelled": len(labelled)}


def run_explanation_eval(policy: str, ticks: Iterable[Any], out: str | Path, *,
                         train_explanations: Iterable[str] | None = None,
                         data: dict[str, Any] | None = None, total: int | None = None,
                         explainer: Explainer | None = None, progress: bool = True,
                         print_table: bool = True, threads: int | None = None
                         ) -> dict[str, Any]:
    """Score ``policy``'s explanations and the baseline's on ``ticks``; see the module
    docstring. ``data`` describes the frames for the summary; ``threads``: the policy's CPU
    threads (torch / ONNX Runtime; restored after; None: the library's default). Returns
    the summary."""
    implementation()  # fails before any frame is read when pycocoevalcap is missing
    explainer = explainer or Explainer(policy)
    with policy_threads(explainer.policy, threads):
        summary = _score(policy, ticks, Path(out), train_explanations, data, total,
                         explainer, progress)
    summary["run"]["threads"] = threads
    write_json_atomic(Path(out) / SUMMARY_FILE, summary)
    if print_table:
        print(format_table(summary))
    return summary


def _score(policy: str, ticks: Iterable[Any], out: Path,
           train_explanations: Iterable[str] | None, data: dict[str, Any] | None,
           total: int | None, explainer: Explainer, progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    source = implementation()
    t0 = time.perf_counter()
    records, n_empty = [], 0
    for tick in tqdm(ticks, total=total, desc=f"explanations {policy}", unit="frame",
                     disable=not progress):
        if not tick.explanation.strip():
            n_empty += 1
            continue
        text = explainer.explain(tick)
        named = reason_from_explanation(text)
        records.append({"episode_id": tick.episode_id, "frame_index": tick.frame_index,
                        "expert_explanation": tick.explanation, "expert_reason": tick.reason,
                        "explanation": text, "named_reason": named and named.value,
                        "faithful": named is not None and named.value == tick.reason})
    if not records:
        raise ExplanationEvalError(f"none of the {n_empty} frame(s) read has an expert "
                                   "explanation to score against")
    wall = time.perf_counter() - t0
    train = list(train_explanations or [])
    constant = most_frequent(train)
    baseline_source = "train split"
    if constant is None:
        constant, baseline_source = most_frequent(r["expert_explanation"] for r in records), \
            "scored frames (no train explanation given)"
    rows = [_row(BASELINE, "baseline", f'always "{constant}" (from the {baseline_source})',
                 [constant] * len(records), records),
            _row(policy, "policy", "cameras, ego status, instruction",
                 [r["explanation"] for r in records], records)]
    summary = {
        "protocol": PROTOCOL, "policy": policy_identity(policy),
        "checkpoint_sha256": checkpoint_sha256(policy), "data": data or {},
        "implementation": f"{source} (Bleu(4), Rouge, Cider = CIDEr-D); tokenizer: "
                          "drivevla's stand-in for its Java PTB tokenizer",
        "n_frames_read": len(records) + n_empty, "n_scored": len(records),
        "excluded": {"empty_expert_explanation": n_empty} if n_empty else {},
        "baseline": {"explanation": constant, "from": baseline_source,
                     "n_train_explanations": len(train)},
        "units": {"bleu_4": "0..1", "rouge_l": "0..1", "cider": "CIDEr-D, 0..10",
                  "faithfulness": "fraction of frames with a labelled expert reason"},
        "rows": rows, "caveat": CAVEAT, "provenance": provenance(),
        "run": {"wall_time_s": wall, "seconds_per_frame": wall / (len(records) + n_empty)},
    }
    _write(out, records, summary)
    return summary


def _write(out: Path, records: list[dict], summary: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{RECORDS_FILE}.tmp"
    tmp.write_text("".join(json.dumps(json_ready(r)) + "\n" for r in records), "utf-8")
    tmp.replace(out / RECORDS_FILE)
    write_json_atomic(out / SUMMARY_FILE, summary)


def format_table(summary: dict[str, Any]) -> str:
    """The printed table: the baseline above the policy, the implementation, the caveat."""
    data = summary["data"]
    lines = [f"explanations: {summary['n_scored']} frame(s) of {data.get('root', '?')} split "
             f"{data.get('split', '?')} (excluded: "
             f"{', '.join(f'{k} {v}' for k, v in summary['excluded'].items()) or 'none'}); "
             f"scored by {summary['implementation']}",
             f"{'planner':<30} {'BLEU-4':>7} {'ROUGE-L':>8} {'CIDEr-D':>8} {'faithful %':>11}"]
    for kind, label in (("baseline", "baseline (reads nothing)"), ("policy", "policy")):
        lines.append(f"-- {label}")
        for r in (r for r in summary["rows"] if r["kind"] == kind):
            faith = "n/a" if r["faithfulness"] is None else f"{100 * r['faithfulness']:.1f}"
            name = r["name"] if len(r["name"]) <= 30 else "..." + r["name"][-27:]
            lines.append(f"{name:<30} {r['bleu_4']:>7.3f} {r['rouge_l']:>8.3f} "
                         f"{r['cider']:>8.3f} {faith:>11}")
    lines.append(f"baseline sentence: \"{summary['baseline']['explanation']}\" "
                 f"(tokenized: \"{tokenize(summary['baseline']['explanation'])}\")")
    lines.append(summary["caveat"])
    return "\n".join(lines)
