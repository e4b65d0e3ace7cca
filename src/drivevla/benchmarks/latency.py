"""Per-tick latency of a policy driving the embedded simulator in closed loop.

    drivevla bench latency --policy NAME_OR_CHECKPOINT_DIR --out FILE.json
                           [--threads 2] [--steps 300] [--warmup 20] [--scenario urban]
                           [--explain-every 10] [--seed 0]

The policy drives routes of one scenario family (cameras on: the simulator's default front
camera, 320x180) through :class:`drivevla.agents.agent.Agent`, exactly as in the closed-loop
evaluation. Every control tick is timed with ``time.perf_counter``, part by part:

- ``observation``: ``env.make_observation(obs, info)`` (building the typed observation);
- ``action``: ``policy.act(observation)``, the action path (for DriveVLA one forward pass,
  no text generation);
- ``controller``: the shared trajectory controller turning the decision into a control;
- ``act_plus_observation``: observation + action of the same tick (what an agent needs from
  a new camera frame to a decision);
- ``agent_tick``: observation + action + controller;
- ``sim_step``: ``env.step`` (the simulator, not the agent; for reference only).

Explanations run on a slower clock and never delay the action path: every ``explain_every``
measured ticks (ticks 0, N, 2N, ...), after the tick's control has been chosen, the benchmark
explains the tick's decision and times it separately: through the policy's
``explanation_tokens()`` stream where it has one (DriveVLA, ``onnx:DIR``), which also gives
the time to the first token (TTFT: the prompt step and the first token) and of each later
token, else by ``policy.explain()``. The explanation
continues from the action pass's cached state and never changes the decision already
returned, so its time is reported on its own and is not part of any action-path number. A
policy's own explanation clock (``DriveVLAPolicy.explain_every``) is switched off so that
``act`` never generates text.

The first ``warmup`` ticks (explanations included) are run and discarded. A route that ends
before ``steps`` measured ticks is followed by the next route of the family (the next intent,
the next seed); resets are not timed. Reported per part: count, mean, p50, p90, p99 and max in
milliseconds; for the action path and for act+observation also the achieved rate in Hz at the
median and at p99 (1000 / p50, 1000 / p99) and the share of ticks within one control period.
``torch.set_num_threads(threads)`` is applied when torch is loaded (a checkpoint policy), and
a policy with its own thread pool gets ``set_threads(threads)`` (``onnx:DIR``: ONNX Runtime).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from drivevla.agents.agent import Agent
from drivevla.agents.registry import make_policy
from drivevla.agents.rollout import Hook, Tick, run_episode
from drivevla.core.policy import policy_threads
from drivevla.core.provenance import provenance
from drivevla.planner.controllers import TrajectoryController
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.sim_bridge.embedded.scenarios import FAMILIES

BENCHMARK = "latency"
PARTS = (
    "observation",
    "action",
    "controller",
    "act_plus_observation",
    "agent_tick",
    "sim_step",
)
RATE_PARTS = ("action", "act_plus_observation")


class _TimedPolicy:
    """A policy proxy that times ``act`` (the Agent calls it; nothing else is timed)."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.name = getattr(policy, "name", type(policy).__name__)
        self.last_s = 0.0

    def reset(self, privileged: Any | None = None) -> None:
        self.policy.reset(privileged)

    def act(self, obs: Any) -> Any:
        t0 = time.perf_counter()
        decision = self.policy.act(obs)
        self.last_s = time.perf_counter() - t0
        return decision


class _TimedController:
    """A controller proxy that times ``control``."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.last_s = 0.0

    def reset(self) -> None:
        self.controller.reset()

    def control(self, decision: Any, ego: Any) -> Any:
        t0 = time.perf_counter()
        control = self.controller.control(decision, ego)
        self.last_s = time.perf_counter() - t0
        return control


def latency_stats(seconds: list[float] | np.ndarray) -> dict[str, Any]:
    """count, mean, p50, p90, p99, max in milliseconds (None for an empty series)."""
    arr = np.asarray(seconds, dtype=np.float64) * 1e3
    if arr.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(arr.max()),
    }


def _rate(stats: dict[str, Any], seconds: list[float], period_ms: float) -> dict[str, Any]:
    def hz(ms: float | None) -> float | None:
        return None if not ms else 1000.0 / ms

    arr = np.asarray(seconds) * 1e3
    return {
        "hz_at_p50": hz(stats["p50"]),
        "hz_at_p99": hz(stats["p99"]),
        "control_period_ms": period_ms,
        "share_within_control_period": float((arr <= period_ms).mean()) if arr.size else None,
    }


def _validate(threads: int, steps: int, warmup: int, explain_every: int, scenario: str) -> None:

    if scenario not in FAMILIES:
        raise ValueError(f"unknown scenario {scenario!r}; valid: {sorted(FAMILIES)}")
    if threads < 1:
        raise ValueError(f"threads={threads} must be >= 1")
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    if warmup < 0:
        raise ValueError(f"warmup={warmup} must be >= 0")
    if explain_every < 0:
        raise ValueError(f"explain_every={explain_every} must be >= 0 (0: no explanations)")


class _LatencyProbe(Hook):
    """Times each tick part by part (see the module docstring) and runs the explanation
    clock after the control is chosen; the first ``warmup`` ticks are not recorded."""

    def __init__(self, policy: _TimedPolicy, controller: _TimedController, explain: Any,
                 explain_every: int, warmup: int, bar: Any) -> None:
        self.policy, self.controller, self.explain = policy, controller, explain
        self.explain_every, self.warmup, self.bar = explain_every, warmup, bar
        self.series: dict[str, list[float]] = {p: [] for p in PARTS}
        self.explain_s: list[float] = []
        self.first_token_s: list[float] = []  # explanation TTFT
        self.token_s: list[float] = []  # each later token
        self.tokens: list[int] = []  # tokens per explanation (0 where not streamed)
        self.episodes: list[dict[str, Any]] = []
        self.tick = 0  # ticks run so far, warm-up included
        self._t0 = self._t2 = self._t_obs = self._t_agent = 0.0

    def before_tick(self, tick: Tick) -> None:
        if self.tick - self.warmup == 0:
            self.bar.set_postfix_str("measuring")
        self._t0 = time.perf_counter()

    def after_observation(self, tick: Tick) -> None:
        self._t_obs = time.perf_counter() - self._t0

    def after_decision(self, tick: Tick) -> None:
        self._t_agent = time.perf_counter() - self._t0
        measured = self.tick - self.warmup  # < 0 during the warm-up
        clock = measured if measured >= 0 else self.tick
        if self.explain is not None and self.explain_every and clock % self.explain_every == 0:
            # the slower clock: after the control is chosen, never on the action path
            total, first, later = self.explain()
            if measured >= 0:
                self.explain_s.append(total)
                self.first_token_s.extend(first)
                self.token_s.extend(later)
                self.tokens.append(len(first) + len(later))

    def before_step(self, tick: Tick) -> None:
        self._t2 = time.perf_counter()

    def after_step(self, tick: Tick, info: dict[str, Any]) -> None:
        t_sim = time.perf_counter() - self._t2
        if self.tick >= self.warmup:
            s = self.series
            s["observation"].append(self._t_obs)
            s["action"].append(self.policy.last_s)
            s["controller"].append(self.controller.last_s)
            s["act_plus_observation"].append(self._t_obs + self.policy.last_s)
            s["agent_tick"].append(self._t_agent)
            s["sim_step"].append(t_sim)
            self.episodes[-1]["ticks"] += 1
        self.tick += 1
        self.bar.update(1)


def _model_device(policy: Any) -> str:
    model = getattr(policy, "model", None)
    try:
        return str(next(model.parameters()).device)
    except (AttributeError, StopIteration, TypeError):
        return "cpu"


def timed_explanation(policy: Any) -> Any:
    """A function explaining ``policy``'s latest decision and returning (total seconds,
    [seconds to the first token], [seconds of each later token]); token times come from the
    policy's ``explanation_tokens()`` stream where it has one (both lists empty otherwise, or
    when the first token is ``<eos>``). None when the policy cannot explain."""
    stream = getattr(policy, "explanation_tokens", None)
    explain = getattr(policy, "explain", None)
    if callable(stream):
        def timed() -> tuple[float, list[float], list[float]]:
            marks = [time.perf_counter()]
            for _ in stream():
                marks.append(time.perf_counter())
            gaps = np.diff(marks).tolist()
            return time.perf_counter() - marks[0], gaps[:1], gaps[1:]
        return timed
    if callable(explain):
        def untimed_tokens() -> tuple[float, list[float], list[float]]:
            t0 = time.perf_counter()
            explain()
            return time.perf_counter() - t0, [], []
        return untimed_tokens
    return None


def run_latency(
    policy: str | Any,
    out: Path | str | None = None,
    *,
    threads: int = 2,
    steps: int = 300,
    warmup: int = 20,
    scenario: str = "urban",
    explain_every: int = 10,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the benchmark for ``policy`` (a name for ``make_policy``, or a policy object: a
    runtime variant of ``bench runtimes``).

    Returns the result dict and, when ``out`` is given, writes it there as JSON. Errors:
    ``ValueError`` for an unknown policy, scenario or a bad setting (before anything runs)."""
    _validate(threads, steps, warmup, explain_every, scenario)
    load_before, counters_before = machine_load(), CpuCounters.now()

    # a bad name: ValueError naming the registered names
    inner = make_policy(policy) if isinstance(policy, str) else policy
    policy = policy if isinstance(policy, str) else getattr(inner, "name", type(inner).__name__)
    if hasattr(inner, "explain_every"):
        inner.explain_every = 0  # the benchmark owns the explanation clock, act() never explains
    explain = timed_explanation(inner)
    can_explain = explain is not None
    with policy_threads(inner, threads) as torch_threads:
        probe, env_config, intents, name = _drive(inner, explain, steps, warmup, scenario,
                                                  explain_every, seed, progress)
    result = _result(
        policy, inner, name, env_config, probe, intents,
        steps=steps, warmup=warmup, explain_every=explain_every, threads=threads,
        torch_threads=torch_threads, can_explain=can_explain, seed=seed,
    )
    result["config"]["machine_load"] = {
        "before": load_before, "after": machine_load(),
        "other_processes_cores": other_cpu_share(counters_before, CpuCounters.now())}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def _drive(inner: Any, explain: Any, steps: int, warmup: int, scenario: str,
           explain_every: int, seed: int, progress: bool
           ) -> tuple[_LatencyProbe, Any, list[str], str]:
    """Drive ``inner`` through routes of ``scenario`` for ``warmup + steps`` timed ticks;
    the probe with its timings, the simulator config, the intents and the policy's name."""
    timed_policy = _TimedPolicy(inner)
    timed_controller = _TimedController(TrajectoryController())
    agent = Agent(timed_policy, timed_controller)  # type: ignore[arg-type]

    env = EmbeddedDrivingEnv({"scenario": scenario})
    intents = list(FAMILIES[scenario].intents)
    total = warmup + steps
    bar = tqdm(
        total=total, desc=f"bench latency {timed_policy.name}", unit="tick", disable=not progress
    )
    probe = _LatencyProbe(timed_policy, timed_controller, explain, explain_every, warmup, bar)
    if warmup:
        bar.set_postfix_str("warm-up")
    try:
        while probe.tick < total:
            ep = len(probe.episodes)
            intent = intents[ep % len(intents)]
            probe.episodes.append({"intent": intent, "seed": seed + ep, "ticks": 0})
            run_episode(
                env, agent, [probe], seed=seed + ep, options={"intent": intent},
                max_ticks=total - probe.tick,
            )
    finally:
        bar.close()
        env.close()
    return probe, env.config, intents, timed_policy.name


def _result(
    policy: str,
    inner: Any,
    policy_name: str,
    sim_config: Any,
    probe: _LatencyProbe,
    intents: list[str],
    *,
    steps: int,
    warmup: int,
    explain_every: int,
    threads: int,
    torch_threads: int | None,
    can_explain: bool,
    seed: int,
) -> dict[str, Any]:
    """The benchmark's result dict (see the module docstring)."""
    series, explain_s, episodes = probe.series, probe.explain_s, probe.episodes
    period_ms = 1000.0 / sim_config.control_hz
    timings = {p: latency_stats(series[p]) for p in PARTS}
    rates = {p: _rate(timings[p], series[p], period_ms) for p in RATE_PARTS}
    result = {
        "benchmark": BENCHMARK,
        "unit": "milliseconds per control tick (time.perf_counter); rates in Hz",
        "config": {
            "policy": policy,
            "policy_name": policy_name,
            "policy_class": type(inner).__name__,
            "scenario": sim_config.scenario,
            "intents": intents,
            "steps": steps,
            "warmup": warmup,
            "explain_every": explain_every,
            "threads": threads,
            "torch_num_threads": torch_threads,
            "device": _model_device(inner),
            "cameras": [c.__dict__ for c in sim_config.cameras],
            "control_hz": sim_config.control_hz,
            "sim_config": sim_config.to_dict(),
        },
        "seed": seed,
        "steps": len(series["action"]),
        "episodes": episodes,
        "timings_ms": timings,
        "rates_hz": rates,
        "explanation": {
            "available": can_explain,
            "every_n_ticks": explain_every,
            "clock": "measured ticks 0, N, 2N, ... after the control is chosen; not part of "
            "the action path",
            "expected_count": _expected_explanations(steps, explain_every) if can_explain else 0,
            "timings_ms": latency_stats(explain_s),
            "first_token_ms": latency_stats(probe.first_token_s),
            "per_token_ms": latency_stats(probe.token_s),
            "token_timing": "from the policy's explanation_tokens() stream: first token = "
            "from the call to the first token id (TTFT, the prompt step included); per token "
            "= each later token",
        },
        "samples_ms": {
            **{p: [round(s * 1e3, 4) for s in series[p]] for p in PARTS},
            "explanation": [round(s * 1e3, 4) for s in explain_s],
            "explanation_first_token": [round(s * 1e3, 4) for s in probe.first_token_s],
            "explanation_tokens": probe.tokens,
        },
        **provenance(),
    }
    return result


def machine_load() -> dict[str, Any]:
    """The 1-minute load average and the CPU count: a latency means little without them (on a
    loaded 2-core machine drivevla-tiny's action path p50 was 116 ms with 2 torch threads and
    27.5 ms with 1)."""
    try:
        load1 = round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        load1 = None
    return {"load_avg_1min": load1, "cpus": os.cpu_count()}


@dataclass(frozen=True)
class CpuCounters:
    """CPU seconds all cores spent busy since boot (Linux /proc/stat; None elsewhere), this
    process's own CPU seconds (children included) and a monotonic wall clock, at one moment."""

    busy_s: float | None
    own_s: float
    wall_s: float

    @classmethod
    def now(cls) -> CpuCounters:
        own = os.times()
        return cls(_busy_cpu_seconds(),
                   own.user + own.system + own.children_user + own.children_system,
                   time.monotonic())


def _busy_cpu_seconds() -> float | None:
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def other_cpu_share(before: CpuCounters, after: CpuCounters) -> float | None:
    """Cores other processes kept busy on average between the two moments (busy CPU time of
    the whole machine minus this process's own, over the wall time), or None where unknown."""
    if before.busy_s is None or after.busy_s is None:
        return None
    wall = after.wall_s - before.wall_s
    if wall <= 0:
        return None
    others = (after.busy_s - before.busy_s) - (after.own_s - before.own_s)
    return max(0.0, round(others / wall, 2))


def _load_lines(load: dict[str, Any] | None) -> list[str]:
    if not load:
        return []
    before, after = load["before"], load["after"]
    line = (f"machine load (1-min average) before {before['load_avg_1min']} / after "
            f"{after['load_avg_1min']} on {before['cpus']} CPUs")
    others = load.get("other_processes_cores")
    if others is not None:
        line += f"; other processes used {others:.2f} cores during the run"
        if others > 0.25:
            line += " - these times are not an idle machine's"
    return [line]


def _expected_explanations(steps: int, explain_every: int) -> int:
    return math.ceil(steps / explain_every) if explain_every else 0


def format_table(result: dict[str, Any]) -> str:
    """The timings as a table (ms), then the achieved rates."""
    cfg = result["config"]

    def f(x: float | None, spec: str) -> str:
        return format(x, spec) if x is not None else "-"

    rows = [(p, result["timings_ms"][p]) for p in PARTS]
    ex = result["explanation"]
    rows += [("explanation", ex["timings_ms"]),
             ("  first token (TTFT)", ex.get("first_token_ms", latency_stats([]))),
             ("  per later token", ex.get("per_token_ms", latency_stats([])))]
    lines = [
        f"policy {cfg['policy_name']} ({cfg['policy']}), scenario {cfg['scenario']}, "
        f"{result['steps']} ticks after {cfg['warmup']} warm-up, threads {cfg['threads']}, "
        f"device {cfg['device']}",
        *_load_lines(cfg.get("machine_load")),
        f"{'part (ms)':<22}{'n':>6}{'mean':>10}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}",
    ]
    for name, s in rows:
        lines.append(
            f"{name:<22}{s['count']:>6}"
            + "".join(f"{f(s[k], '.2f'):>10}" for k in ("mean", "p50", "p90", "p99", "max"))
        )
    period = f"<= {1000.0 / cfg['control_hz']:.0f} ms"
    lines.append(f"{'rate (Hz)':<22}{'at p50':>10}{'at p99':>10}{period:>14}")
    for name, r in result["rates_hz"].items():
        share = r["share_within_control_period"]
        lines.append(
            f"{name:<22}{f(r['hz_at_p50'], '.1f'):>10}{f(r['hz_at_p99'], '.1f'):>10}"
            f"{f(None if share is None else 100 * share, '.1f') + ' %':>14}"
        )
    if not ex["available"]:
        lines.append("explanations: the policy has no explain()")
    elif not ex["every_n_ticks"]:
        lines.append("explanations: off (--explain-every 0)")
    else:
        lines.append(
            f"explanations every {ex['every_n_ticks']} ticks, off the action path "
            "(not included in any rate)"
        )
    return "\n".join(lines)
