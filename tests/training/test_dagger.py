"""DAgger in ``drivevla train``: a round adds policy-driven frames, focus draws the worst
driven families more, route weights and the weighted draw."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from drivevla.training import train as train_mod
from drivevla.training.train import Trainer
from support.train_parts import CHECKPOINT_FILES, TINY_SUITE, n_frames
from support.train_parts import train_cfg as _cfg


def test_one_dagger_round_adds_policy_driven_frames(tiny_dataset, frame_cache, tmp_path):
    import pyarrow.parquet as pq

    from drivevla.datasets.reader import open_dataset

    out = tmp_path / "out"
    cfg = _cfg(tiny_dataset, out, frame_cache, steps=1, dagger=1, dagger_steps=2,
               dagger_episodes=1, dagger_beta=0.3, dagger_workers=0, keep_checkpoints=1,
               dagger_suite=str(TINY_SUITE), dagger_max_steps=25)
    info = Trainer(cfg).train()

    round_dir = out / "dagger" / "round-1"
    ds = open_dataset(round_dir)
    assert len(ds.episode_ids) == 1
    drivers = collections.Counter(
        d for shard in ds.shards() for d in pq.read_table(shard, columns=["driver"])
        .column("driver").to_pylist())
    assert set(drivers) == {"drivevla", "expert"}, drivers
    assert drivers["drivevla"] > drivers["expert"]  # beta 0.3: the policy drives most steps
    # the policy that drove is the round-start checkpoint, kept despite keep_checkpoints=1
    start = out / "checkpoints" / "step-000001"
    assert all((start / name).is_file() for name in CHECKPOINT_FILES)
    collection = json.loads((round_dir / "meta" / "info.json").read_text())["collection"]
    assert collection["config"]["policy"] == str(start.resolve())
    assert collection["config"]["beta"] == 0.3
    assert collection["config"]["max_steps"] == 25  # the cap of routes that set none
    suite = json.loads((out / "dagger" / "round-1.suite.json").read_text())
    assert len(suite["routes"]) == 1 and suite["routes"][0]["config"]["max_steps"] == 40

    written = json.loads((out / "train_info.json").read_text())
    assert written["data"]["dagger_datasets"] == [str(round_dir)]
    base = n_frames(tiny_dataset, "train")
    assert written["data"]["train_frames"] == base + ds.n_frames > base
    assert info["data"] == written["data"]
    assert written["train_config"]["dagger"] == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step-000001", "step-000003"]


def _write_round(root: Path, scores: dict[str, list[float]]) -> None:
    (root / "meta").mkdir(parents=True)
    records = [(f, ds) for f, values in scores.items() for ds in values]
    lines = [json.dumps({"episode_id": f"{i:06d}", "scenario": f,
                         "route_result": {"driving_score": ds}})
             for i, (f, ds) in enumerate(records)]
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")


def test_dagger_focus_draws_the_worst_driven_families_more(tiny_dataset, frame_cache,
                                                           tmp_path):
    from drivevla.sim_bridge.embedded.suites import load_suite

    routes = load_suite("train").routes
    families = collections.Counter(r.scenario for r in routes)
    kw = dict(dagger=2, dagger_episodes=24)

    def drawn(out, focus, k):
        trainer = Trainer(_cfg(tiny_dataset, out, frame_cache, dagger_focus=focus, **kw))
        suite = json.loads(trainer._round_suite(k).read_text())
        return collections.Counter(r["scenario"] for r in suite["routes"])

    # round 2 after a round where urban scored 0 and everything else 100
    scores = {f: [0.0, 0.0] if f == "urban" else [100.0] for f in families}
    _write_round(tmp_path / "full" / "dagger" / "round-1", scores)
    full = drawn(tmp_path / "full", 1.0, 2)
    assert full["urban"] == min(24, families["urban"])
    focus = json.loads((tmp_path / "full" / "dagger" / "round-2.focus.json").read_text())
    assert focus["previous_round_mean_driving_score"]["urban"] == 0.0
    assert focus["routes_drawn"]["urban"] == full["urban"]
    _write_round(tmp_path / "half" / "dagger" / "round-1", scores)
    half = drawn(tmp_path / "half", 0.5, 2)
    assert families["urban"] / len(routes) * 24 < half["urban"] < 24
    # without focus, and in round 1 (nothing driven yet), the draw is the uniform one of
    # every recipe before the option existed
    _write_round(tmp_path / "off" / "dagger" / "round-1", scores)
    off = drawn(tmp_path / "off", 0.0, 2)
    import random

    rng = random.Random("0-dagger-2")
    old = sorted(rng.sample(range(len(routes)), 24))
    assert off == collections.Counter(routes[i].scenario for i in old)
    assert drawn(tmp_path / "first", 1.0, 1) == drawn(tmp_path / "first-off", 0.0, 1)
    with pytest.raises(ValueError, match="dagger_focus"):
        _cfg(tiny_dataset, tmp_path / "bad", frame_cache, dagger_focus=1.5)
    with pytest.raises(FileNotFoundError, match="episodes.jsonl"):
        drawn(tmp_path / "missing", 0.5, 2)


def test_dagger_route_weights_and_weighted_sample():
    import random

    families = ["a"] * 10 + ["b"] * 10 + ["c"] * 20
    w = train_mod.dagger_route_weights(families, {"a": 90.0, "b": 40.0, "c": 70.0}, 0.5)
    assert sum(w) == pytest.approx(1.0)
    # b failed most: its routes weigh most; c's weight is shared by twice as many routes
    assert w[10] > w[20] > w[0]
    assert train_mod.dagger_route_weights(families, {"a": 100.0}, 0.5) == [1 / 40] * 40
    picks = collections.Counter()
    for seed in range(200):
        idx = train_mod.weighted_sample(random.Random(seed), w, 12)
        assert len(set(idx)) == 12
        picks.update(families[i] for i in idx)
    assert picks["b"] > picks["a"]
    assert train_mod.weighted_sample(random.Random(0), [0.0, 1.0, 0.0], 1) == [1]
