"""``drivevla data stats``: what a demonstration dataset holds, as a table and as JSON.

Episode counts per scenario and intent come from ``meta/episodes.jsonl``; frame counts per
reason, meta-action, instruction kind and driver from the shards (label columns only, no
images are read). With ``label_checks`` the expert's labels are checked against what the
frames show (:mod:`drivevla.datasets.label_checks`: a 'curve' reason on a straight road,
colours, sides, distances, places); :func:`label_check_failures` lists the checks that
flagged frames and :class:`LabelCheckError` is what ``drivevla data stats --strict`` raises
on them.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from drivevla.core.errors import DriveVLAError
from drivevla.datasets.label_checks import CHECKS, check_labels, format_label_checks
from drivevla.datasets.reader import open_dataset

_FRAME_COLUMNS = {
    "reason": "expert.reason",
    "meta_action": "expert.meta_action",
    "instruction_kind": "instruction.kind",
    "driver": "driver",
}


class LabelCheckError(DriveVLAError, ValueError):
    """Label checks flagged frames of a dataset (``drivevla data stats --strict``)."""


def dataset_stats(
    root: str | Path,
    skip_corrupt: bool = False,
    label_checks: bool = False,
    label_check_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Counts of a dataset: frames, episodes, bytes (shards + metadata), per-label counts.

    A corrupt shard or line of ``episodes.jsonl`` raises :class:`CorruptDataError` naming
    it; with ``skip_corrupt`` it is left out of the counts and listed under ``skipped``.
    ``label_checks``: also run :func:`~drivevla.datasets.label_checks.check_labels` (with
    ``label_check_options``, e.g. ``lookahead_m``, ``max_examples``) and keep its result
    under ``label_checks`` (None when not run)."""
    stats = _counts(root, skip_corrupt)
    stats["label_checks"] = (
        check_labels(root, skip_corrupt=skip_corrupt, **(label_check_options or {}))
        if label_checks else None
    )
    return stats


def label_check_failures(stats: dict[str, Any]) -> dict[str, int]:
    """``{check: flagged frames}`` of the checks that flagged any frame, in the order of
    :data:`~drivevla.datasets.label_checks.CHECKS` (empty: every check passed, or the checks
    were not run)."""
    result = stats.get("label_checks") or {}
    counts = result.get("counts") or {}
    return {check: int(counts[check]) for check in CHECKS if counts.get(check)}


def label_check_error(stats: dict[str, Any]) -> LabelCheckError | None:
    """The one-line error for the checks that flagged frames (None when none did)."""
    failures = label_check_failures(stats)
    if not failures:
        return None
    flagged = ", ".join(f"{check} {n}" for check, n in failures.items())
    return LabelCheckError(
        f"label checks flagged frames of {stats['root']}: {flagged} (of "
        f"{stats['label_checks']['frames']} frames; the label-check table lists examples)"
    )


def _counts(root: str | Path, skip_corrupt: bool) -> dict[str, Any]:
    """The counts of :func:`dataset_stats`, without the label checks."""
    ds = open_dataset(root, skip_corrupt=skip_corrupt)
    root = Path(root)
    episodes = ds.episodes
    per_scenario = collections.Counter(e["scenario"] for e in episodes)
    per_intent = collections.Counter(f"{e['scenario']}/{e['intent']}" for e in episodes)
    frames_per_scenario: collections.Counter[str] = collections.Counter()
    for e in episodes:
        frames_per_scenario[e["scenario"]] += int(e["n_frames"])
    frame_counts = {k: collections.Counter() for k in _FRAME_COLUMNS}
    for e in episodes:
        table = ds.read_episode(e["episode_id"], list(_FRAME_COLUMNS.values()))
        if table is None:  # corrupt and skipped (counted in ds.skipped)
            continue
        for key, column in _FRAME_COLUMNS.items():
            frame_counts[key].update(table.column(column).to_pylist())
    shard_bytes = sum(p.stat().st_size for p in ds.shards())
    meta_bytes = sum(p.stat().st_size for p in (root / "meta").glob("*") if p.is_file())
    frames = ds.n_frames
    completion = [float(e["route_result"].get("route_completion", 0.0)) for e in episodes]
    return {
        "root": str(root),
        "schema_version": ds.info.get("schema_version"),
        "cameras": ds.cameras,
        "episodes": len(episodes),
        "frames": frames,
        "bytes": shard_bytes + meta_bytes,
        "shard_bytes": shard_bytes,
        "bytes_per_frame": shard_bytes / frames if frames else None,
        "splits": {s: len(ds.split(s)) for s in ("train", "val", "test")},
        "mean_route_completion": sum(completion) / len(completion) if completion else None,
        "episodes_per_scenario": dict(sorted(per_scenario.items())),
        "episodes_per_intent": dict(sorted(per_intent.items())),
        "frames_per_scenario": dict(sorted(frames_per_scenario.items())),
        **{f"frames_per_{k}": dict(v.most_common()) for k, v in frame_counts.items()},
        "skipped": ds.skipped.to_dict(),
    }


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def format_stats(stats: dict[str, Any]) -> str:
    """A plain-text report of :func:`dataset_stats`."""
    frames = stats["frames"] or 1
    lines = [
        f"dataset {stats['root']} (schema {stats['schema_version']}, cameras "
        f"{', '.join(stats['cameras'])})",
        f"episodes {stats['episodes']}  frames {stats['frames']}  size "
        f"{_human_bytes(stats['bytes'])}  bytes/frame "
        f"{(stats['bytes_per_frame'] or 0):.0f}  splits "
        + " ".join(f"{k}={v}" for k, v in stats["splits"].items()),
    ]

    def table(title: str, counts: dict[str, int], total: int, unit: str) -> None:
        lines.append("")
        lines.append(f"{title:<38} {unit:>8} {'share':>7}")
        for name, n in counts.items():
            lines.append(f"  {str(name) or '-':<36} {n:>8} {100.0 * n / max(total, 1):>6.1f}%")

    n_ep = stats["episodes"]
    table("scenario", stats["episodes_per_scenario"], n_ep, "episodes")
    table("scenario/intent", stats["episodes_per_intent"], n_ep, "episodes")
    table("scenario", stats["frames_per_scenario"], frames, "frames")
    for key in ("reason", "meta_action", "instruction_kind", "driver"):
        table(key.replace("_", " "), stats[f"frames_per_{key}"], frames, "frames")
    if stats.get("label_checks") is not None:
        failures = label_check_failures(stats)
        lines += ["", format_label_checks(stats["label_checks"])]
        lines.append("label checks: " + (
            "flagged " + ", ".join(f"{c} {n}" for c, n in failures.items()) if failures
            else "every check passed"))
    return "\n".join(lines)
