"""``drivevla bench latency``: per-part timings, ordered percentiles, the explanation clock,
and a clear error for a bad policy."""

from __future__ import annotations

import json

import pytest
import torch

from drivevla.benchmarks.latency import PARTS, RATE_PARTS, format_table, run_latency
from drivevla.cli import main
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor

TINY = {
    "image_height": 48,
    "image_width": 80,
    "vision_model": "resnet10t",
    "lm": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 128,
        "max_position_embeddings": 128,
        "tie_word_embeddings": True,
    },
    "max_instruction_tokens": 16,
    "max_explanation_tokens": 12,
    "tokenizer_vocab_size": 300,
}
CORPUS = [
    "Turn left at the next junction.",
    "Take the second exit at the roundabout.",
    "Slowing down: the red car ahead is braking.",
    "Stopping: the light is red.",
    "Following the route.",
    "Continue straight through the junction.",
] * 5

STEPS, WARMUP, EVERY = 7, 2, 3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    cfg = DriveVLAConfig.from_dict(TINY)
    proc = DriveVLAProcessor.build(cfg, CORPUS)
    path = tmp_path_factory.mktemp("latency") / "drivevla-tiny"
    DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc).save_pretrained(path)
    return path


def _check_stats(s: dict, count: int) -> None:
    assert set(s) == {"count", "mean", "p50", "p90", "p99", "max"}
    assert s["count"] == count
    assert 0.0 <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert 0.0 < s["mean"] <= s["max"]


def test_checkpoint_policy_timings_rates_and_explanation_clock(checkpoint, tmp_path):
    out = tmp_path / "lat.json"
    result = run_latency(
        str(checkpoint),
        out,
        threads=1,
        steps=STEPS,
        warmup=WARMUP,
        scenario="urban",
        explain_every=EVERY,
        progress=False,
    )
    data = json.loads(out.read_text())
    assert data["benchmark"] == "latency"
    for key in (
        "config",
        "seed",
        "versions",
        "hardware",
        "created_utc",
        "timings_ms",
        "rates_hz",
        "explanation",
        "episodes",
        "samples_ms",
    ):
        assert key in data, key
    cfg = data["config"]
    assert cfg["policy"] == str(checkpoint) and cfg["policy_class"] == "DriveVLAPolicy"
    assert (cfg["steps"], cfg["warmup"], cfg["explain_every"], cfg["threads"]) == (
        STEPS,
        WARMUP,
        EVERY,
        1,
    )
    assert cfg["torch_num_threads"] == 1
    assert [c["name"] for c in cfg["cameras"]] == ["front"]  # cameras on
    assert data["seed"] == 0 and "torch" in data["versions"]

    assert data["steps"] == STEPS
    assert sum(e["ticks"] for e in data["episodes"]) == STEPS
    for part in PARTS:
        _check_stats(data["timings_ms"][part], STEPS)
        assert len(data["samples_ms"][part]) == STEPS
    t = data["timings_ms"]
    assert t["act_plus_observation"]["mean"] == pytest.approx(
        t["action"]["mean"] + t["observation"]["mean"], rel=1e-6
    )
    for part in RATE_PARTS:
        r = data["rates_hz"][part]
        assert r["hz_at_p50"] == pytest.approx(1000.0 / t[part]["p50"])
        assert r["hz_at_p99"] == pytest.approx(1000.0 / t[part]["p99"])
        assert r["hz_at_p99"] <= r["hz_at_p50"]
        assert 0.0 <= r["share_within_control_period"] <= 1.0

    ex = data["explanation"]
    n_explain = len(range(0, STEPS, EVERY))  # measured ticks 0, 3, 6
    assert ex["available"] and ex["every_n_ticks"] == EVERY
    assert ex["expected_count"] == n_explain
    _check_stats(ex["timings_ms"], n_explain)
    assert len(data["samples_ms"]["explanation"]) == n_explain
    # TTFT and per-token times from the token stream: one first token per explanation that
    # has tokens, each within its explanation's total
    tokens = data["samples_ms"]["explanation_tokens"]
    assert len(tokens) == n_explain and sum(tokens) > 0
    firsts = data["samples_ms"]["explanation_first_token"]
    assert ex["first_token_ms"]["count"] == len(firsts) == sum(n > 0 for n in tokens)
    assert ex["per_token_ms"]["count"] == sum(tokens) - len(firsts)
    totals = [t for t, n in zip(data["samples_ms"]["explanation"], tokens, strict=True) if n]
    assert all(f <= t for f, t in zip(firsts, totals, strict=True))

    table = format_table(result)
    assert "act_plus_observation" in table and "explanation" in table and "Hz" in table
    assert "first token (TTFT)" in table and "per later token" in table


def test_registered_policy_without_explain(tmp_path):
    result = run_latency(
        "idm", tmp_path / "idm.json", steps=3, warmup=0, explain_every=2, progress=False
    )
    assert result["steps"] == 3
    assert result["explanation"]["available"] is False
    assert result["explanation"]["timings_ms"]["count"] == 0
    _check_stats(result["timings_ms"]["action"], 3)
    assert "no explain()" in format_table(result)
    load = result["config"]["machine_load"]
    assert load["before"]["cpus"] >= 1 and load["after"]["load_avg_1min"] >= 0.0
    assert "machine load (1-min average)" in format_table(result)


def test_the_table_says_when_the_machine_was_busy():
    from drivevla.benchmarks import latency

    result = run_latency("idm", steps=2, warmup=0, progress=False)
    assert result["config"]["machine_load"]["other_processes_cores"] >= 0.0
    load = {"load_avg_1min": 3.5, "cpus": 2}
    result["config"]["machine_load"] = {"before": load, "after": load,
                                        "other_processes_cores": 1.4}
    assert "not an idle machine's" in latency.format_table(result)
    # a high load average left by the previous benchmark is not other work during this one
    result["config"]["machine_load"]["other_processes_cores"] = 0.05
    assert "not an idle machine's" not in latency.format_table(result)


def test_other_processes_cpu_share_from_the_counters():
    from drivevla.benchmarks.latency import CpuCounters, other_cpu_share

    before = CpuCounters(busy_s=100.0, own_s=10.0, wall_s=0.0)
    after = CpuCounters(busy_s=130.0, own_s=20.0, wall_s=20.0)
    assert other_cpu_share(before, after) == 1.0  # 30 s busy, 10 s ours, over 20 s
    assert other_cpu_share(CpuCounters(None, 10.0, 0.0), after) is None


def test_bad_policy_name_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown policy 'no-such-policy'.*expert"):
        run_latency("no-such-policy", tmp_path / "x.json", steps=2, progress=False)
    rc = main(
        [
            "bench",
            "latency",
            "--policy",
            "no-such-policy",
            "--out",
            str(tmp_path / "x.json"),
            "--steps",
            "2",
        ]
    )
    assert rc == 2
    assert "unknown policy 'no-such-policy'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(ValueError, match="unknown scenario"):
        run_latency("idm", steps=2, scenario="moon", progress=False)
    with pytest.raises(ValueError, match="steps=0"):
        run_latency("idm", steps=0, progress=False)


def test_the_token_stream_is_the_explanation(checkpoint):
    """explanation_tokens() yields the ids explain() decodes, one at a time."""
    policy = DriveVLAPolicy.from_pretrained(checkpoint)
    env = EmbeddedDrivingEnv({"scenario": "urban"})
    try:
        obs, info = env.reset(seed=0)
        policy.act(env.make_observation(obs, info))
    finally:
        env.close()
    ids = list(policy.explanation_tokens())
    assert ids and all(isinstance(i, int) for i in ids)
    assert policy.processor.decode(ids) == policy.explain()
    assert ids == policy.model.generate_explanation(policy._last)[0]
