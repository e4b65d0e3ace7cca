"""Regenerate the golden behaviour fixtures in tests/fixtures/golden/.

    SDL_VIDEODRIVER=offscreen HF_HUB_OFFLINE=1 python tools/make_golden.py \
        [--only drives,tiny,collect]

Only for a deliberate behaviour change: the fixtures are the reference that
tests/test_golden_behaviour.py holds the code to. The arrays are made by the same code the
test runs (tests/golden/_golden.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HELPER = Path(__file__).resolve().parents[1] / "tests" / "golden" / "_golden.py"


def load_helper():
    spec = importlib.util.spec_from_file_location("_golden", HELPER)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_golden"] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default="drives,tiny,collect",
        help="comma-separated subset of drives,tiny,collect",
    )
    parser.add_argument("--out", default=None, help="fixture folder (default: the tests')")
    args = parser.parse_args()
    g = load_helper()
    out = Path(args.out) if args.out else g.FIXTURES
    out.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    import drivevla

    print(f"drivevla from {drivevla.__file__}", flush=True)
    if "drives" in parts:
        t0 = time.perf_counter()
        arrays = g.all_drives()
        np.savez_compressed(out / g.DRIVES_FILE, **arrays)
        print(f"drives: {len(arrays)} arrays, {time.perf_counter() - t0:.1f} s", flush=True)
    if "tiny" in parts:
        t0 = time.perf_counter()
        arrays = g.tiny_outputs()
        np.savez_compressed(out / g.TINY_FILE, **arrays)
        print(
            f"drivevla-tiny: {len(arrays['tick'])} frames, {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    if "collect" in parts:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            digests = g.collect_digests(Path(tmp) / "ds")
        (out / g.COLLECT_FILE).write_text(
            json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        print(
            f"collect: {len(digests['shards'])} shards, {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    (out / g.MACHINE_FILE).write_text(
        json.dumps(g.arithmetic_signature(), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    for f in sorted(out.iterdir()):
        print(f"  {f.name}: {f.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
