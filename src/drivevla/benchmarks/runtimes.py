"""One DriveVLA checkpoint on every runtime this machine has, side by side in one run.

    drivevla bench runtimes --policy drivevla-tiny --out runs/runtimes/result.json
                            [--device cpu|cuda] [--compile] [--threads 2] [--steps 300]
                            [--parity-ticks 100]

The variants, in this order (one a machine cannot run is listed with the reason, not hidden):

- ``pytorch``: the checkpoint in PyTorch, eager, on ``--device``;
- ``pytorch-compile`` (``--compile``): the same with ``torch.compile`` on the action pass;
- ``onnxruntime``: an ONNX export of the checkpoint (written beside the result) in ONNX
  Runtime, its CUDA provider on ``--device cuda`` (onnxruntime-gpu), else its CPU provider;
- ``tensorrt`` (``--device cuda``, TensorRT importable): engines of that export (``trt:DIR``).

Each variant drives the same routes as ``bench latency`` (same scenario, seed, warm-up and
explanation clock: its ``timings_ms``, ``rates_hz`` and ``explanation`` with the time to the
first token and per token), then is held to the reference, the checkpoint in PyTorch FP32 eager
on the CPU, on one sequence of observations (one expert drive of the scenario, cameras on):
the largest waypoint and speed difference, the share of ticks with the same meta-action and
reason, and of the explained ticks (every 10th) with the same explanation text. The variants
run one after another in the same process, so their times are comparable with each other;
``scripts/gpu_check.sh`` runs this on a GPU machine.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drivevla.agents.agent import Agent
from drivevla.agents.registry import make_policy
from drivevla.agents.rollout import Hook, Tick, run_episode
from drivevla.benchmarks.latency import run_latency
from drivevla.core.provenance import provenance
from drivevla.export.onnx_export import export_onnx
from drivevla.export.onnx_policy import OnnxPolicy, onnxruntime_module
from drivevla.export.tensorrt import build_engines
from drivevla.export.tensorrt_policy import trt_policy
from drivevla.planner.controllers import TrajectoryController
from drivevla.planner.expert import ExpertPolicy
from drivevla.sim_bridge.embedded.env import EmbeddedDrivingEnv
from drivevla.vla.policy import DriveVLAPolicy

BENCHMARK = "runtimes"
EXPLAIN_EVERY = 10  # parity: the explanation text of every 10th tick


class _Observations(Hook):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def after_observation(self, tick: Tick) -> None:
        self.seen.append(tick.observation)


def expert_observations(scenario: str, ticks: int, seed: int) -> list[Any]:
    """The typed observations of one expert drive of ``scenario`` (cameras on), at most
    ``ticks``: the sequence every variant decides on for parity."""
    env = EmbeddedDrivingEnv({"scenario": scenario})
    hook = _Observations()
    try:
        run_episode(env, Agent(ExpertPolicy(), TrajectoryController()), [hook], seed=seed,
                    max_ticks=ticks)
    finally:
        env.close()
    return hook.seen


def _decisions(policy: Any, observations: list[Any]) -> list[tuple]:
    policy.reset()
    out = []
    for i, obs in enumerate(observations):
        d = policy.act(obs)
        text = policy.explain() if i % EXPLAIN_EVERY == 0 else None
        out.append((d.waypoints, d.target_speeds, d.meta_action, d.reason, text))
    return out


def parity(reference: list[tuple], other: list[tuple]) -> dict[str, Any]:
    """How far ``other``'s decisions are from ``reference``'s, tick by tick."""
    pairs = list(zip(reference, other, strict=True))
    texts = [(r[4], o[4]) for r, o in pairs if r[4] is not None]
    return {
        "ticks": len(pairs),
        "waypoints_max_abs_m": max(float(np.abs(r[0] - o[0]).max()) for r, o in pairs),
        "speeds_max_abs_mps": max(float(np.abs(r[1] - o[1]).max()) for r, o in pairs),
        "same_meta_action": float(np.mean([r[2] == o[2] for r, o in pairs])),
        "same_reason": float(np.mean([r[3] == o[3] for r, o in pairs])),
        "explained_ticks": len(texts),
        "same_explanation": float(np.mean([a == b for a, b in texts])) if texts else None,
    }


def _variants(policy: str, device: str, compile_: bool, export_dir: Path
              ) -> list[tuple[str, Callable[[], Any] | str]]:
    """(name, factory or the reason it is skipped) per variant."""
    def pytorch() -> Any:
        return _checkpoint(policy).to(device)

    def compiled() -> Any:
        p = pytorch()
        p.model.act = torch.compile(p.model.act)
        return p

    out: list[tuple[str, Callable[[], Any] | str]] = [("pytorch", pytorch)]
    if compile_:
        out.append(("pytorch-compile", compiled))
    export_dir.mkdir(parents=True, exist_ok=True)
    onnx_dir = export_dir / "onnx"
    cuda = device.startswith("cuda")
    providers = ["CPUExecutionProvider"]
    if cuda:
        if "CUDAExecutionProvider" not in onnxruntime_module().get_available_providers():
            out.append(("onnxruntime", "onnxruntime has no CUDA provider here "
                                       "(onnxruntime-gpu is not installed)"))
            providers = []
        else:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if providers:
        out.append(("onnxruntime", lambda: OnnxPolicy(_export(policy, onnx_dir),
                                                      providers=providers)))
    if not cuda:
        out.append(("tensorrt", "TensorRT runs on an NVIDIA GPU (--device cuda)"))
    elif importlib.util.find_spec("tensorrt") is None:
        out.append(("tensorrt", "TensorRT is not installed here"))
    else:
        def engines() -> Any:
            build_engines(_export(policy, onnx_dir), export_dir / "tensorrt")
            return trt_policy(export_dir / "tensorrt")
        out.append(("tensorrt", engines))
    return out


def _checkpoint(policy: str) -> DriveVLAPolicy:
    p = make_policy(policy)
    if not isinstance(p, DriveVLAPolicy):
        raise ValueError(f"bench runtimes needs a DriveVLA checkpoint; {policy!r} is a "
                         f"{type(p).__name__}")
    return p


def _export(policy: str, onnx_dir: Path) -> Path:
    if not (onnx_dir / "deploy.json").is_file():
        export_onnx(policy, onnx_dir, samples=2)
    return onnx_dir


def run_runtimes(policy: str, out: str | Path, *, device: str = "cpu", compile_: bool = False,
                 threads: int = 2, steps: int = 300, warmup: int = 20,
                 parity_ticks: int = 100, scenario: str = "urban", seed: int = 0,
                 progress: bool = True) -> dict[str, Any]:
    """Run every variant (see the module docstring); writes and returns the result."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: torch sees no CUDA GPU here")
    if parity_ticks < 1:
        raise ValueError(f"--parity-ticks {parity_ticks}: must be >= 1")
    out = Path(out)
    observations = expert_observations(scenario, parity_ticks, seed)
    reference = _decisions(_checkpoint(policy), observations)
    rows: dict[str, Any] = {}
    for name, make in _variants(policy, device, compile_, out.parent / "runtimes-exports"):
        if isinstance(make, str):
            rows[name] = {"skipped": make}
            continue
        try:
            variant = make()
            lat = run_latency(variant, None, threads=threads, steps=steps, warmup=warmup,
                              scenario=scenario, seed=seed, progress=progress)
            rows[name] = {"policy": lat["config"]["policy"],
                          "parity": parity(reference, _decisions(variant, observations)),
                          **{k: lat[k] for k in ("timings_ms", "rates_hz", "explanation")}}
        except Exception as exc:  # a runtime that fails here is a row saying so, not a crash
            rows[name] = {"failed": f"{type(exc).__name__}: {exc}"}
    result = {"benchmark": BENCHMARK,
              "config": {"policy": policy, "device": device, "compile": compile_,
                         "threads": threads, "steps": steps, "warmup": warmup,
                         "parity_ticks": len(observations), "scenario": scenario,
                         "reference": "PyTorch FP32 eager on the CPU"},
              "seed": seed, "variants": rows, **provenance()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def format_table(result: dict[str, Any]) -> str:
    """One row per variant: action path p50/p99 and Hz, explanation TTFT and per token,
    parity with the reference."""
    cfg = result["config"]
    lines = [f"policy {cfg['policy']}, device {cfg['device']}, {cfg['steps']} ticks, threads "
             f"{cfg['threads']}; parity on {cfg['parity_ticks']} ticks vs {cfg['reference']}",
             f"{'variant':<17}{'p50 ms':>8}{'p99 ms':>8}{'Hz@p50':>8}{'TTFT':>8}{'/token':>8}"
             f"{'max dwp m':>11}{'meta':>7}{'reason':>7}{'text':>7}"]
    for name, row in result["variants"].items():
        if "timings_ms" not in row:
            lines.append(f"{name:<17}{row.get('skipped') or row.get('failed')}")
            continue
        act, ex, par = row["timings_ms"]["action"], row["explanation"], row["parity"]

        def ms(s: dict[str, Any]) -> str:
            return "-" if s.get("p50") is None else f"{s['p50']:.2f}"

        text = par["same_explanation"]
        lines.append(
            f"{name:<17}{act['p50']:>8.2f}{act['p99']:>8.2f}"
            f"{row['rates_hz']['action']['hz_at_p50']:>8.1f}{ms(ex['first_token_ms']):>8}"
            f"{ms(ex['per_token_ms']):>8}{par['waypoints_max_abs_m']:>11.2e}"
            f"{100 * par['same_meta_action']:>6.0f}%{100 * par['same_reason']:>6.0f}%"
            f"{'-' if text is None else f'{100 * text:.0f}%':>7}")
    return "\n".join(lines)
