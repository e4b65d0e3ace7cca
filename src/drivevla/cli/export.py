"""``drivevla export onnx|parity|tensorrt``: a DriveVLA checkpoint exported to an ONNX
deployment folder (docs/export.md), that folder held to PyTorch on recorded frames, and its
TensorRT engines."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from drivevla.benchmarks import export_parity
from drivevla.cli._parsing import add_command, add_group
from drivevla.datasets import replay
from drivevla.export import onnx_export, tensorrt
from drivevla.export.deploy import ExportError, load_deploy
from drivevla.export.parity import format_parity
from drivevla.vla.configuration_drivevla import DriveVLAConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    export = add_group(subparsers, "export", "deployment: ONNX export and its parity check")
    _register_onnx(export)
    _register_parity(export)
    _register_tensorrt(export)


def _register_onnx(export: argparse._SubParsersAction) -> None:
    p = add_command(export, "onnx", "export a DriveVLA policy's action path and explainer to an "
                                    "ONNX deployment folder (action.onnx, explain_*.onnx, "
                                    "deploy.json, the checkpoint)")
    p.add_argument("--policy", required=True,
                   help="drivevla-tiny or a DriveVLA checkpoint folder")
    p.add_argument("--out", required=True, help="deployment folder to write (new, empty, or "
                                                "an earlier export to replace)")
    p.add_argument("--opset", type=int, default=onnx_export.DEFAULT_OPSET,
                   help="ONNX opset (>= 18: the resize is antialiased)")
    p.add_argument("--camera-size", default="320x180",
                   help="WIDTHxHEIGHT px of every camera as the vehicle delivers it (the "
                        "graph's static image input; resized inside the graph)")
    p.add_argument("--parity-samples", type=int, default=8,
                   help="sample ticks run through PyTorch and ONNX Runtime at export")
    p.add_argument("--fp16", action="store_true",
                   help="convert action.onnx to FP16 (onnxruntime's float16 converter, FP32 "
                        "inputs and outputs kept); its parity is reported, not enforced")
    p.add_argument("--int8", action="store_true",
                   help="quantize action.onnx to INT8 (static QDQ, onnxruntime.quantization), "
                        "calibrated on --calib; its parity is reported, not enforced")
    p.add_argument("--calib", default=None,
                   help="drivevla dataset folder whose frames calibrate --int8")
    p.add_argument("--calib-frames", type=int, default=64,
                   help="frames of --calib used, spread over its episodes")
    p.set_defaults(fn=_cmd_onnx)


def _register_parity(export: argparse._SubParsersAction) -> None:
    p = add_command(export, "parity", "ONNX Runtime vs PyTorch on recorded frames of a "
                                      "drivevla dataset (max abs differences, arg-max agreement)")
    p.add_argument("--onnx", required=True, help="deployment folder of `drivevla export onnx`")
    p.add_argument("--data", required=True, help="drivevla dataset folder (drivevla collect)")
    p.add_argument("--frames", type=int, default=200, help="frames compared, spread over the "
                                                            "episodes")
    p.add_argument("--out", required=True, help="result JSON file (not inside the deployment "
                                                "folder: its files are fingerprinted)")
    p.set_defaults(fn=_cmd_parity)


def _register_tensorrt(export: argparse._SubParsersAction) -> None:
    p = add_command(export, "tensorrt", "TensorRT engines of an ONNX deployment folder (needs "
                                        "TensorRT: a Jetson or an NVIDIA GPU machine)")
    p.add_argument("--onnx", required=True, help="deployment folder of `drivevla export onnx` "
                                                 "(an --int8 one builds INT8 engines)")
    p.add_argument("--out", required=True, help="folder for the engines, timing cache and "
                                                "tensorrt.json")
    p.add_argument("--fp16", action="store_true", help="allow FP16 kernels")
    p.add_argument("--workspace-gb", type=float, default=4.0,
                   help="TensorRT workspace memory pool (GiB)")
    p.set_defaults(fn=_cmd_tensorrt)


def _cmd_tensorrt(args: argparse.Namespace) -> int:
    manifest = tensorrt.build_engines(args.onnx, args.out, fp16=args.fp16,
                                      workspace_gb=args.workspace_gb)
    print(f"built {', '.join(manifest['engines'].values())} with TensorRT "
          f"{manifest['tensorrt']}; wrote {args.out}")
    return 0


def camera_size(text: str) -> tuple[int, int]:
    """(width, height) of ``WIDTHxHEIGHT``."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ExportError(f"--camera-size {text!r}: expected WIDTHxHEIGHT, e.g. 320x180")
    return int(parts[0]), int(parts[1])


def _calibration(args: argparse.Namespace) -> Iterator[tuple] | None:
    """(observation, odometry) ticks of --calib for --int8 (None without --int8)."""
    if bool(args.int8) != bool(args.calib):
        raise ExportError("--int8 and --calib DATA go together (INT8 is calibrated on "
                          "recorded frames)")
    if not args.int8:
        return None
    if args.calib_frames < 1:
        raise ExportError(f"--calib-frames {args.calib_frames}: at least 1 frame is needed")
    cameras = DriveVLAConfig.load(onnx_export.checkpoint_dir(args.policy)[1]).model.cameras
    ticks = replay.recorded_ticks(Path(args.calib), cameras, args.calib_frames)
    return ((tick.observation, tick.odometry) for tick in ticks)


def _cmd_onnx(args: argparse.Namespace) -> int:
    deploy = onnx_export.export_onnx(args.policy, Path(args.out), opset=args.opset,
                                     camera_size=camera_size(args.camera_size),
                                     samples=args.parity_samples,
                                     calibration=_calibration(args), fp16=args.fp16)
    if "parity_fp32" in deploy:
        print("FP32 (before quantization):\n" + format_parity(deploy["parity_fp32"]))
        print(f"{deploy['action']['precision'].upper()} (reported, not enforced):")
    print(format_parity(deploy["parity"]))
    print(f"exported {deploy['model']['name']} with {deploy['action']['exporter']}, opset "
          f"{deploy['action']['opset']}; wrote {args.out} (run it with --policy onnx:{args.out})")
    return 0


def _cmd_parity(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.frames < 1:
        raise ExportError(f"--frames {args.frames}: at least 1 frame is needed")
    cameras = [c["name"] for c in load_deploy(Path(args.onnx))["cameras"]]  # checked first
    ticks = replay.recorded_ticks(Path(args.data), cameras, args.frames)
    result = export_parity.run_parity(Path(args.onnx), ticks, total=args.frames)
    result["data"] = str(args.data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(format_parity(result["parity"]))
    print(f"wrote {out}")
    if not result["parity"]["passed"]:
        raise ExportError(f"{args.onnx}: parity failed on {args.data} (see {out})")
    return 0
