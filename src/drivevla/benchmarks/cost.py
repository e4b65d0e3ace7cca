"""``drivevla bench cost``: what one control tick of a DriveVLA checkpoint costs, counted
rather than timed, and what that means on vehicle computers.

Counted on one observation of the simulator's default camera (320x180, batch 1):

- parameters, in all and per top-level module;
- FLOPs of the action path (``model.act``: preprocessing inside the network, vision,
  language model prefix, action heads), counted by torch's ``FlopCounterMode`` (matrix
  products and convolutions; element-wise work is not counted), per top-level module;
- FLOPs of the explanation: the whole greedy generation from the action pass's cache, and
  per generated token;
- activation memory: the bytes of every module output of one action tick (an upper bound on
  what must be live at once; the peak is lower), and on CUDA the measured peak allocation.

The device table turns the count into an *expected* action-path rate on NVIDIA Jetson Orin
NX 16GB, AGX Orin 64GB and AGX Thor: ``rate = utilisation x dense throughput / FLOPs``, with
every assumption printed. It is an estimate from published peak figures, not a measurement:
a network this small is bound by kernel launches and memory traffic long before arithmetic,
so real rates are lower; only ``bench latency`` on the device measures them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.agents.registry import make_policy
from drivevla.core.provenance import provenance
from drivevla.core.types import CameraSpec, EgoState, HighLevelCommand, Observation, RouteInfo
from drivevla.vla.odometry import OdometryTracker

BENCHMARK = "drivevla.cost/1"


@dataclass(frozen=True)
class Device:
    """A vehicle computer's GPU, from its published peak figures."""

    name: str
    published: str  # the figure as published, with its precision and sparsity
    dense_fp16_tflops: float  # derived: see ``derivation``
    dense_int8_tops: float
    derivation: str


# NVIDIA's published GPU peak figures ("up to", structured sparsity), halved for dense math;
# Ampere / Blackwell tensor cores run FP16 at half the INT8 (FP8) rate.
DEVICES = (
    Device("Jetson Orin NX 16GB", "~60 INT8 TOPS sparse, GPU only (AGX Orin's 170 scaled by "
           "32/64 tensor cores and 918/1300 MHz)", 15.0, 30.0,
           "dense INT8 = sparse / 2; FP16 = INT8 / 2"),
    Device("Jetson AGX Orin 64GB", "170 INT8 TOPS sparse, GPU only (275 with the two DLAs)",
           42.5, 85.0, "dense INT8 = sparse / 2; FP16 = INT8 / 2"),
    Device("Jetson AGX Thor (T5000)", "2070 FP4 TFLOPS sparse", 258.75, 517.5,
           "dense FP4 = sparse / 2; FP8 (= INT8 here) = FP4 / 2; FP16 = FP8 / 2"),
)
DEFAULT_UTILISATION = 0.25
LAUNCH_US = 10.0  # assumed cost of one small kernel launch on a Jetson-class GPU (us)


def _observation(config: Any, seed: int = 0):
    """One observation with the model's cameras at the simulator's default 320x180, noise
    images, a plain navigation instruction, moving at 8 m/s."""
    rng = np.random.default_rng(seed)
    cams = {name: CameraSpec(name=name, width=320, height=180) for name in config.model.cameras}
    images = {name: rng.integers(0, 256, (180, 320, 3), dtype=np.uint8) for name in cams}
    route = RouteInfo(np.zeros((config.model.route_targets, 2)), HighLevelCommand.LANE_FOLLOW,
                      "follow_route", 100.0)
    return Observation(images=images, cameras=cams, ego=EgoState(0.0, 0.0, 0.0, 8.0),
                       route=route, instruction="At the next junction, turn left.",
                       timestamp_s=0.0)


def _parameters(model: Any) -> dict[str, Any]:
    per_module = {name: sum(p.numel() for p in child.parameters())
                  for name, child in model.named_children()}
    return {"total": sum(p.numel() for p in model.parameters()),
            "per_module": {k: v for k, v in per_module.items() if v}}


def _flops(fn: Any) -> tuple[Any, int, dict[str, int]]:
    """``fn()``'s result, its total FLOPs and the FLOPs per outermost module called (by
    class name: the vision encoder, the language model, each head)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        result = fn()
    per_module: dict[str, int] = {}
    for name, counts in counter.get_flop_counts().items():
        if name != "Global" and "." not in name:
            per_module[name] = int(sum(counts.values()))
    return result, int(counter.get_total_flops()), per_module


def _activations(model: Any, fn: Any) -> tuple[int, int]:
    """Bytes of every leaf module's tensor outputs during ``fn()``, and how many leaf module
    calls there were."""
    import torch

    total = calls = 0

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        nonlocal total, calls
        calls += 1
        outs = output if isinstance(output, tuple) else (output,)
        total += sum(o.numel() * o.element_size() for o in outs if torch.is_tensor(o))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return total, calls


def measure_cost(policy: Any) -> dict[str, Any]:
    """The counts for a :class:`~drivevla.vla.policy.DriveVLAPolicy` (see the module doc)."""
    import torch

    model = policy.model
    obs = _observation(policy.config)
    odometry = OdometryTracker(policy.config.model.odometry).read(obs)  # a route's first tick

    def action() -> Any:
        return policy.action_output(obs, odometry)

    with torch.inference_mode():
        out, action_flops, per_module = _flops(action)
        tokens, expl_flops, _ = _flops(lambda: model.generate_explanation(out))
        act_bytes, calls = _activations(model, action)
    n_tokens = max(1, len(tokens[0]))
    peak_cuda = None
    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        peak_cuda = int(torch.cuda.max_memory_allocated())
    return {
        "parameters": _parameters(model),
        "action_path": {"flops": action_flops, "per_module_flops": per_module,
                        "activation_output_bytes": act_bytes, "leaf_module_calls": calls,
                        "cuda_peak_allocated_bytes": peak_cuda},
        "explanation": {"flops": expl_flops, "tokens": len(tokens[0]),
                        "flops_per_token": expl_flops // n_tokens},
        "input": {"cameras": list(policy.config.model.cameras), "camera_px": [320, 180],
                  "model_image_px": [policy.config.model.image_width,
                                     policy.config.model.image_height],
                  "batch": 1, "instruction": obs.instruction},
    }


def device_table(action_flops: int, utilisation: float) -> list[dict[str, Any]]:
    """Expected action-path rates (Hz) on each of :data:`DEVICES` at ``utilisation``, from
    arithmetic alone."""
    rows = []
    for d in DEVICES:
        fp16 = utilisation * d.dense_fp16_tflops * 1e12 / action_flops
        int8 = utilisation * d.dense_int8_tops * 1e12 / action_flops
        rows.append({**asdict(d), "expected_hz_fp16": fp16, "expected_hz_int8": int8})
    return rows


def launch_floor_hz(leaf_calls: int) -> float:
    """The rate if every leaf module were one unfused GPU kernel of
    :data:`LAUNCH_US` (TensorRT fuses many, so this is pessimistic for an engine)."""
    return 1e6 / (leaf_calls * LAUNCH_US)


def run_cost(policy: str, out: Path | str | None = None, *,
             utilisation: float = DEFAULT_UTILISATION) -> dict[str, Any]:
    """Count ``policy``'s cost (a DriveVLA checkpoint: name or directory), add the device
    table, write JSON to ``out`` when given."""
    if not 0.0 < utilisation <= 1.0:
        raise ValueError(f"utilisation={utilisation} must be in (0, 1]")
    inner = make_policy(policy)
    if not (hasattr(inner, "model") and hasattr(inner, "processor")):
        raise ValueError(f"bench cost counts a DriveVLA network; {policy!r} "
                         f"({type(inner).__name__}) has none")
    counts = measure_cost(inner)
    result = {
        "benchmark": BENCHMARK,
        "config": {"policy": policy, "policy_name": getattr(inner, "name", policy),
                   "utilisation": utilisation},
        **counts,
        "devices": device_table(counts["action_path"]["flops"], utilisation),
        "launch_floor_hz": launch_floor_hz(counts["action_path"]["leaf_module_calls"]),
        "assumptions": [
            "FLOPs: torch.utils.flop_counter.FlopCounterMode (matmuls and convolutions; "
            "element-wise ops, resizing and normalisation not counted), batch 1",
            f"expected Hz = utilisation ({utilisation:g}) x dense peak / action-path FLOPs",
            "dense peak = NVIDIA's published sparse peak / 2 (see each device's derivation)",
            "small batch-1 networks are launch- and memory-bound: treat these rates as upper "
            "bounds, and measure on the device (drivevla bench latency)",
            f"launch floor: {counts['action_path']['leaf_module_calls']} leaf module calls x "
            f"{LAUNCH_US:g} us per unfused kernel (PyTorch eager on the GPU; TensorRT fuses "
            "layers and does better)",
        ],
        **provenance(),
    }
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def format_cost(result: dict[str, Any]) -> str:
    """Counts, then the device table, then the assumptions."""
    p, a, e = result["parameters"], result["action_path"], result["explanation"]
    lines = [f"policy {result['config']['policy_name']}: {p['total'] / 1e6:.2f} M parameters ("
             + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in p["per_module"].items()) + ")",
             f"action path: {a['flops'] / 1e9:.3f} GFLOPs per tick ("
             + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in a["per_module_flops"].items())
             + f"); module outputs {a['activation_output_bytes'] / 2**20:.1f} MiB",
             f"explanation: {e['flops'] / 1e9:.3f} GFLOPs for {e['tokens']} tokens "
             f"({e['flops_per_token'] / 1e6:.1f} MFLOPs per token)",
             "",
             f"{'device':<26}{'dense FP16 TFLOPS':>19}{'dense INT8 TOPS':>17}"
             f"{'FP16 Hz':>11}{'INT8 Hz':>11}"]
    for row in result["devices"]:
        lines.append(f"{row['name']:<26}{row['dense_fp16_tflops']:>19.2f}"
                     f"{row['dense_int8_tops']:>17.1f}{row['expected_hz_fp16']:>11.0f}"
                     f"{row['expected_hz_int8']:>11.0f}")
    lines.append(f"{'any GPU, unfused launches':<26}{'':>19}{'':>17}"
                 f"{result['launch_floor_hz']:>11.0f}{result['launch_floor_hz']:>11.0f}")
    lines += ["", "assumptions:"] + [f"- {x}" for x in result["assumptions"]]
    lines += [f"- {row['name']}: {row['published']}; {row['derivation']}"
              for row in result["devices"]]
    return "\n".join(lines)
