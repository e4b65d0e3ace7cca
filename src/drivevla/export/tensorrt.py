"""``drivevla export tensorrt``: serialized TensorRT engines of an ONNX deployment folder.

    drivevla export tensorrt --onnx DIR --out ENGINES [--fp16] [--workspace-gb 4]

Built with TensorRT's Python API (Builder, OnnxParser, a builder config with a workspace pool,
FP16 on request, INT8 when the folder's action.onnx is an ``--int8`` QDQ export: explicit
quantization, so no calibrator), one engine per ONNX file, a timing cache kept beside them
and reused, and ``tensorrt.json`` saying how they were built. The step graph's past length
is dynamic: its optimisation profile spans one token to a full explanation.

TensorRT is not installable on the project's CPU machines: it is imported lazily, and its
absence is an :class:`ExportError` naming it. Nothing here has run on a TensorRT machine
yet (docs/export.md gives the ``trtexec`` and ``polygraphy`` commands for a Jetson). The
engines run as a policy with ``--policy trt:DIR`` (:mod:`.tensorrt_policy`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drivevla.export.deploy import ONNX_FILES, ExportError, load_deploy

TIMING_CACHE = "timing.cache"
MANIFEST = "tensorrt.json"


def tensorrt_module() -> Any:
    """The tensorrt module; its absence is an :class:`ExportError` saying where to get it."""
    # lazy: TensorRT comes with JetPack or the NVIDIA wheels, never with drivevla
    try:
        import tensorrt
    except ImportError as exc:
        raise ExportError("TensorRT is not installed here (it needs an NVIDIA GPU: JetPack "
                          "ships it on Jetson; on x86 with CUDA, pip install tensorrt); build "
                          "the engines on that machine, or use trtexec there "
                          "(docs/export.md)") from exc
    return tensorrt


def step_profile(deploy: dict[str, Any]) -> tuple[int, int, int]:
    """(min, opt, max) past length of explain_step: from one position after the prefix to
    the prefix, the prompt and a full explanation."""
    prefix = next(o["shape"][1] for o in deploy["action"]["outputs"]
                  if o["name"] == "attention_mask")
    longest = prefix + 2 + int(deploy["explain"]["max_tokens"])
    return prefix + 1, prefix + 2 + int(deploy["explain"]["max_tokens"]) // 2, longest


def _build_one(trt: Any, path: Path, fp16: bool, int8: bool, workspace_gb: float,
               cache: Any, past: tuple[int, int, int]) -> tuple[bytes, Any]:
    """One serialized engine of the ONNX file ``path`` (and the timing cache it grew)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{path}: TensorRT's ONNX parser rejects it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)
    config.set_timing_cache(cache, False)
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if -1 in tuple(network.get_input(i).shape)]
    if dynamic:  # explain_step: the past length
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            shapes = [tuple(n if d == -1 else d for d in tensor.shape) for n in past]
            profile.set_shape(tensor.name, *shapes)
        config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ExportError(f"{path}: TensorRT could not build an engine (see its log above)")
    return bytes(engine), config.get_timing_cache()


def engine_manifest(onnx_dir: Path, deploy: dict[str, Any], engines: dict[str, str],
                    version: str, *, fp16: bool, int8: bool, workspace_gb: float
                    ) -> dict[str, Any]:
    """``tensorrt.json``: how the engines were built and from which ONNX files (their
    sha256, which ``trt:DIR`` checks against the source folder before it runs them)."""
    return {"source": str(onnx_dir.resolve()), "model": deploy["model"],
            "onnx_sha256": {name: deploy["files"][name] for name in ONNX_FILES},
            "engines": engines, "tensorrt": version, "fp16": fp16, "int8": int8,
            "workspace_gb": workspace_gb, "step_past_profile": step_profile(deploy),
            "timing_cache": TIMING_CACHE}


def build_engines(onnx_dir: str | Path, out: str | Path, fp16: bool = False,
                  workspace_gb: float = 4.0) -> dict[str, Any]:
    """Engines of every ONNX file of the checked deployment folder ``onnx_dir`` into ``out``;
    returns the manifest written as ``out/tensorrt.json``."""
    if workspace_gb <= 0:
        raise ExportError(f"--workspace-gb {workspace_gb}: must be > 0")
    onnx_dir, out = Path(onnx_dir), Path(out)
    deploy = load_deploy(onnx_dir)
    trt = tensorrt_module()
    out.mkdir(parents=True, exist_ok=True)
    int8 = deploy["action"].get("precision") == "int8"
    config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
    cache_path = out / TIMING_CACHE
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file()
                                       else b"")
    engines = {}
    for name in ONNX_FILES:
        engine, cache = _build_one(trt, onnx_dir / name, fp16, int8 and name == ONNX_FILES[0],
                                   workspace_gb, cache, step_profile(deploy))
        engines[name] = name.replace(".onnx", ".engine")
        (out / engines[name]).write_bytes(engine)
    cache_path.write_bytes(bytes(cache.serialize()))
    manifest = engine_manifest(onnx_dir, deploy, engines, trt.__version__, fp16=fp16,
                               int8=int8, workspace_gb=workspace_gb)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
