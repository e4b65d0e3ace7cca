"""Golden behaviour: drives, drivevla-tiny outputs and collected data are what the code made
before the package redesign (reference data in tests/fixtures/golden/, see its README).

- every rule-based policy on every smoke route: bit-identical poses and controls per tick,
  and the same driving score and route completion;
- drivevla-tiny on 200 frames of expert drives: waypoints and target speeds within 1e-5,
  the same meta-actions and reasons;
- ``drivevla collect`` of two short train episodes: the same shard contents and episode lines.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest


def _load_helper():
    name = "_golden"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parent / "golden" / "_golden.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


g = _load_helper()
REGENERATE = "regenerate (deliberate behaviour changes only): python tools/make_golden.py"


@pytest.mark.parametrize("policy", g.DRIVE_POLICIES)
def test_drives_are_bit_identical(policy):
    with np.load(g.FIXTURES / g.DRIVES_FILE) as npz:
        golden = {k: npz[k] for k in npz.files}
    failures = []
    for spec in g.suite_routes():
        prefix = g.key(policy, spec.route_id, "")
        expected = {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}
        assert expected, f"no golden drive for {policy} on {spec.route_id}; {REGENERATE}"
        why = g.first_divergence(expected, g.drive_route(policy, spec))
        if why is not None:
            failures.append(f"{policy} on {spec.route_id}: {why}")
    assert not failures, "drives differ from the golden ones:\n" + "\n".join(failures)


def test_drivevla_tiny_outputs_match():
    with np.load(g.FIXTURES / g.TINY_FILE) as npz:
        golden = {k: npz[k] for k in npz.files}
    now = g.tiny_outputs()
    assert now["waypoints"].shape == golden["waypoints"].shape
    assert now["target_speeds"].shape == golden["target_speeds"].shape

    def frame(i: int) -> str:
        return f"{golden['route'][i]} tick {golden['tick'][i]} (frame {i})"

    notes = []
    pose_diff = np.flatnonzero((now["expert_pose"] != golden["expert_pose"]).any(axis=1))
    if pose_diff.size:
        notes.append(f"the expert's drive itself differs from {frame(pose_diff[0])} on")
    image_diff = np.flatnonzero(now["image_sha256"] != golden["image_sha256"])
    if image_diff.size:
        notes.append(f"the camera images differ from {frame(image_diff[0])} on "
                     f"({image_diff.size} frames)")
    problems = []
    err = np.maximum(
        np.abs(now["waypoints"] - golden["waypoints"]).reshape(len(now["tick"]), -1).max(axis=1),
        np.abs(now["target_speeds"] - golden["target_speeds"]).max(axis=1),
    )
    worst = int(np.argmax(err))
    if not err[worst] <= g.TINY_ATOL:
        problems.append(
            f"max abs difference {err[worst]:.3g} > {g.TINY_ATOL} at {frame(worst)}; "
            f"{int((err > g.TINY_ATOL).sum())} of {len(err)} frames over; first over at "
            f"{frame(int(np.flatnonzero(err > g.TINY_ATOL)[0]))}")
    for name in ("meta_action", "reason"):
        bad = np.flatnonzero(now[name] != golden[name])
        if bad.size:
            problems.append(f"{name} differs on {bad.size} frames, first at {frame(bad[0])}: "
                            f"{golden[name][bad[0]]!r} -> {now[name][bad[0]]!r}")
    assert not problems, "drivevla-tiny outputs differ:\n" + "\n".join(problems + notes)


def test_collection_content_matches(tmp_path):
    golden = json.loads((g.FIXTURES / g.COLLECT_FILE).read_text(encoding="utf-8"))
    now = json.loads(json.dumps(g.collect_digests(tmp_path / "ds")))  # JSON types, as golden
    diffs = g.digest_differences(golden, now)
    assert not diffs, "collected data differ:\n" + "\n".join(diffs)
