"""``drivevla export onnx``: a DriveVLA checkpoint -> a self-describing deployment folder.

Steps, each done by the maintained tool for it: ``torch.onnx.export`` traces
:class:`~drivevla.export.graph.ActionGraph` and the explainer's two
:class:`~drivevla.export.graph.ExplainDecoder` graphs (the dynamo exporter; the TorchScript
one only if dynamo fails, and deploy.json says which), ``onnx.checker`` checks each file, ONNX
Runtime runs them beside the PyTorch policy on sample ticks (parity figures, explanation text
included), and ``onnx.helper`` writes the contract into their ``metadata_props``. The folder
is then loaded back exactly as a vehicle would
(:class:`~drivevla.export.onnx_policy.OnnxActionModel`) before the command reports.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from drivevla.core.provenance import versions
from drivevla.core.types import CameraSpec, Observation
from drivevla.export import parity
from drivevla.export.deploy import (
    ACTION_FILE,
    CHECKPOINT_FILES,
    DEPLOY_FILE,
    DEPLOY_FORMAT,
    DEPLOY_VERSION,
    ENCODER_FILE,
    EXPLAIN_PREFILL_FILE,
    EXPLAIN_STEP_FILE,
    ONNX_FILES,
    ExportError,
    config_sha256,
    file_sha256,
    metadata_props,
    onnx_files,
    write_deploy,
)
from drivevla.export.graph import (
    ActionGraph,
    ExplainDecoder,
    InstructionEncoderGraph,
    action_output_names,
    cache_names,
    cache_output_names,
    cache_specs,
    cache_tensors,
    decision_info,
    decoder_output_names,
    encoder_specs,
    input_specs,
    normalisation,
    output_specs,
    tokenizer_info,
)
from drivevla.export.onnx_policy import OnnxActionModel, OnnxExplainer, TickState
from drivevla.export.quantize import calibration_feeds, convert_fp16, quantize_int8
from drivevla.vla.memory import FrameMemory
from drivevla.vla.modeling_drivevla import ActionOutput
from drivevla.vla.policy import DEFAULT_CHECKPOINT, DriveVLAPolicy, default_checkpoint_dir
from drivevla.vla.processor_drivevla import EOS

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 18  # the first opset whose Resize has antialias (the processor's resize)
OPTIONAL_FILES = ("MODEL_CARD.md", "train_info.json")  # copied when the checkpoint has them
EXPORT_EXTRA = ("onnx", "onnxruntime", "onnxscript")  # pip install "drivevla[export]"
_VERSIONED = ("drivevla", "torch", "onnx", "onnxruntime", "onnxscript", "transformers", "timm",
              "tokenizers")


def checkpoint_dir(policy: str) -> tuple[str, Path]:
    """(model name, checkpoint folder) of ``--policy``: the shipped drivevla-tiny by name, or
    a DriveVLA checkpoint folder."""
    if policy == DEFAULT_CHECKPOINT:
        return DEFAULT_CHECKPOINT, default_checkpoint_dir()
    path = Path(policy)
    if path.is_dir() and (path / "config.json").is_file():
        return path.resolve().name, path
    raise ExportError(f"--policy {policy!r}: only DriveVLA checkpoints export; give "
                      f"{DEFAULT_CHECKPOINT!r} or a checkpoint folder with a config.json")


def export_onnx(policy: str, out: str | Path, opset: int = DEFAULT_OPSET,
                camera_size: tuple[int, int] | None = None, samples: int = 8,
                calibration: Iterable[tuple[Observation, dict[str, float]]] | None = None,
                fp16: bool = False) -> dict[str, Any]:
    """Export ``policy`` (name or checkpoint folder) to the deployment folder ``out`` and
    return its deploy.json content. ``camera_size``: (width, height) px of every camera as
    the vehicle delivers it (default: the simulator's front camera, 320x180). Raises
    :class:`ExportError` when the FP32 parity on ``samples`` sample ticks is out of
    tolerance. ``calibration`` (ticks of recorded frames): the action graph is then
    quantized to INT8 (:mod:`.quantize`) and its parity reported, not enforced; ``fp16``
    converts it to FP16 instead, reported the same way."""
    missing = [name for name in EXPORT_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"exporting needs the export extra, {missing} missing: pip install "
                          "'drivevla[export]'")
    if opset < DEFAULT_OPSET:
        raise ExportError(f"--opset {opset}: the graph resizes with antialias, which needs "
                          f"opset >= {DEFAULT_OPSET}")
    if fp16 and calibration is not None:
        raise ExportError("--fp16 and --int8: choose one precision")
    if samples < 1:
        raise ExportError(f"--parity-samples {samples}: at least 1 sample tick is needed")
    name, source = checkpoint_dir(policy)
    torch_policy = DriveVLAPolicy.from_pretrained(source)
    config = torch_policy.config
    if config.model.backbone_family != "default":
        raise ExportError(f"{source}: backbone_family {config.model.backbone_family!r} reads "
                          "raw instruction text; only the 'default' family exports so far")
    if calibration is not None and (config.model.instruction_encoder
                                    or config.model.memory_frames):
        raise ExportError("--int8 calibrates on the processor's tensors alone; a model "
                          "with an instruction encoder or a memory exports as fp32/fp16")
    cameras = [c if camera_size is None else dataclasses.replace(
        c, width=camera_size[0], height=camera_size[1]) for c in config.model.camera_specs()]
    out = _prepare_out(Path(out), source)
    ticks = parity.sample_observations(torch_policy, cameras, samples)
    channels = torch_policy.model.backbone.vision_channels
    exporter, reference = _export_graphs(torch_policy, ticks[0], cameras, out, opset)
    figures = fp32 = _measure_parity(torch_policy, ticks, out, cameras)
    precision: dict[str, Any] = {"precision": "fp32"}
    if calibration is not None:
        precision = quantize_int8(out / ACTION_FILE, calibration_feeds(
            torch_policy.processor, [s.name for s in input_specs(config, cameras)], calibration))
    elif fp16:
        precision = convert_fp16(out / ACTION_FILE)
    if precision["precision"] != "fp32":
        figures = _measure_parity(torch_policy, ticks, out, cameras)
    deploy = {
        "format": DEPLOY_FORMAT, "format_version": DEPLOY_VERSION,
        "model": {"name": name, "version": "sha256:" + file_sha256(
                      source / "model.safetensors")[:12],
                  "config_sha256": config_sha256(config), "source": str(source)},
        "action": {"file": ACTION_FILE, "opset": opset, "exporter": exporter,
                   "batch": 1, "shapes": "static", **precision,
                   "inputs": [s.to_dict() for s in input_specs(config, cameras, channels)],
                   "outputs": [s.to_dict() for s in [*output_specs(config, channels),
                                                      *cache_specs(reference)]]},
        "cameras": [dataclasses.asdict(c) for c in cameras],
        "normalisation": normalisation(config),
        "tokenizer": tokenizer_info(config),
        "decision": decision_info(config),
        "explainer": "onnx",
        "explain": explain_info(config, len(reference.cache.layers)),
        "versions": versions(_VERSIONED),
        "parity": figures,
    } | ({"parity_fp32": fp32} if precision["precision"] != "fp32" else {}) | encoder_info(config)
    for name in onnx_files(deploy):
        _write_metadata(out / name, deploy)
    write_deploy(out, deploy)
    OnnxActionModel(out)  # loads back as a vehicle would: every check of the folder
    if not fp32["passed"]:  # INT8's figures are reported, FP32 is held to the tolerance
        raise ExportError(f"{out}: ONNX Runtime differs from PyTorch beyond "
                          f"{figures['tolerance']:g}, on an arg-max or on explanations; "
                          f"see 'parity' in {out / DEPLOY_FILE}:\n{parity.format_parity(fp32)}")
    return deploy


def encoder_info(config: Any) -> dict[str, Any]:
    """deploy.json's ``instruction_encoder`` (only for checkpoints with one)."""
    if not config.model.instruction_encoder:
        return {}
    inputs, outputs = encoder_specs(config)
    return {"instruction_encoder": {
        "file": ENCODER_FILE, "name": config.model.instruction_encoder,
        "weights_sha256": config.model.instruction_encoder_sha256,
        "run": "when the instruction's token ids change; feed its output to action.onnx's "
               "instruction_states every tick",
        "inputs": [s.to_dict() for s in inputs], "outputs": [s.to_dict() for s in outputs]}}


def explain_info(config: Any, n_layers: int) -> dict[str, Any]:
    """How the explainer graphs are driven (deploy.json's ``explain``)."""
    return {"prefill": EXPLAIN_PREFILL_FILE, "step": EXPLAIN_STEP_FILE,
            "max_tokens": config.model.max_explanation_tokens, "eos": EOS,
            "prompt": config.model.explanation,
            "loop": "prefill(reason, action's attention_mask and past.*) once; then while the "
                    "arg-max of logits is not eos and fewer than max_tokens: step(token, "
                    "attention_mask <- present_mask, past.* <- present.*)",
            "cache": {"inputs": cache_names(n_layers), "past_length": "dynamic in step"}}


def _prepare_out(out: Path, source: Path) -> Path:
    """``out`` created (empty, or an earlier export being replaced) with the checkpoint's
    files copied into it."""
    if out.exists() and any(out.iterdir()) and not (out / DEPLOY_FILE).is_file():
        raise ExportError(f"--out {out} exists and is not an earlier export (no "
                          f"{DEPLOY_FILE}); give a new or empty folder")
    if out.resolve() == source.resolve():
        raise ExportError(f"--out {out} is the checkpoint folder itself; give another one")
    out.mkdir(parents=True, exist_ok=True)
    # a half-finished export never looks complete
    for stale in (DEPLOY_FILE, *ONNX_FILES, ENCODER_FILE):
        (out / stale).unlink(missing_ok=True)
    for name in CHECKPOINT_FILES + OPTIONAL_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    return out


def _torch_to_onnx(module: torch.nn.Module, args: tuple, kwargs: dict, path: Path,
                   opset: int, names: tuple[list[str], list[str]],
                   dynamic_shapes: Any = None) -> str:
    """``module`` traced into ``path`` by torch.onnx (dynamo; TorchScript only if dynamo
    fails) and checked by onnx.checker; returns which exporter made it."""
    import onnx  # lazy: the optional `export` extra

    for name in ("onnxscript", "onnx_ir"):  # their INFO lines, one per rewrite, drown the rest
        logging.getLogger(name).setLevel(logging.WARNING)
    common = {"kwargs": kwargs, "input_names": names[0], "output_names": names[1],
              "opset_version": opset}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the step graph's mask and cache share their dynamic length: one axis name, noted
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares")
        try:
            program = torch.onnx.export(module, args, dynamo=True, external_data=False,
                                        verbose=False, dynamic_shapes=dynamic_shapes, **common)
            program.save(str(path))
            exporter = "torch.onnx.export(dynamo=True)"
        except Exception as exc:  # the exporters raise many classes; the fallback is logged
            logger.warning("the dynamo exporter failed on %s (%s: %s); using the TorchScript "
                           "one", path.name, type(exc).__name__, exc)
            axes = None if dynamic_shapes is None else {
                n: {1 if "mask" in n else 2: "past"} for n in names[0] if "." in n or "mask" in n}
            torch.onnx.export(module, args, str(path), dynamo=False, dynamic_axes=axes,
                              **common)
            exporter = "torch.onnx.export(dynamo=False) (TorchScript)"
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path}: onnx.checker rejects the exported graph: {exc}") from exc
    return exporter


def _export_graphs(policy: DriveVLAPolicy, tick: tuple, cameras: list[CameraSpec], out: Path,
                   opset: int) -> tuple[str, ActionOutput]:
    """action.onnx, explain_prefill.onnx and explain_step.onnx traced on one sample tick;
    returns the exporter and the tick's PyTorch action pass (its cache sets the shapes)."""
    policy.reset()
    raw = _tick_tensors(policy, *tick)
    names = [s.name for s in input_specs(policy.config, cameras,
                                         policy.model.backbone.vision_channels)]
    reference = policy.action_output(*tick)
    cache = [t.clone() for t in cache_tensors(reference)]
    n_layers = len(reference.cache.layers)
    graph = ActionGraph(policy.model, policy.processor, (cameras[0].height, cameras[0].width))
    outputs = [*action_output_names(policy.config), *cache_output_names(n_layers)]
    exporter = _torch_to_onnx(graph.eval(), (), {n: raw[n] for n in names}, out / ACTION_FILE,
                              opset, (names, outputs))
    if policy.config.model.instruction_encoder:
        ins, outs = encoder_specs(policy.config)
        _torch_to_onnx(InstructionEncoderGraph(policy.model).eval(), (),
                       {s.name: raw[s.name] for s in ins}, out / ENCODER_FILE, opset,
                       ([s.name for s in ins], [s.name for s in outs]))
    past_in, present = cache_output_names(n_layers), decoder_output_names(n_layers)
    prefill = ExplainDecoder(policy.model, prefill=True).eval()
    _torch_to_onnx(prefill, (reference.reason.clone(), *cache), {}, out / EXPLAIN_PREFILL_FILE,
                   opset, (["reason", *past_in], present))
    with torch.no_grad():
        after = [t.clone() for t in prefill(reference.reason.clone(), *cache)[1:]]
    length = torch.export.Dim("past", min=2, max=4096)
    dynamic = {"token_or_reason": None, "attention_mask": {1: length},
               "past": tuple({2: length} for _ in range(2 * n_layers))}
    _torch_to_onnx(ExplainDecoder(policy.model, prefill=False).eval(),
                   (torch.tensor([[EOS]]), *after), {}, out / EXPLAIN_STEP_FILE, opset,
                   (["token", *past_in], present), dynamic)
    return exporter, reference


def _measure_parity(policy: DriveVLAPolicy, ticks: list, out: Path,
                    cameras: list[CameraSpec]) -> dict[str, Any]:
    """ONNX Runtime (CPU) vs the PyTorch policy on the sample ticks (:mod:`.parity`): the
    action outputs and the explanation text."""
    import onnxruntime as ort  # lazy: the optional `export` extra

    def session(name: str) -> Any:
        return ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])

    action = session(ACTION_FILE)
    explainer = OnnxExplainer(session(EXPLAIN_PREFILL_FILE), session(EXPLAIN_STEP_FILE),
                              policy.config.model.max_explanation_tokens)
    m = policy.config.model
    channels = policy.model.backbone.vision_channels
    state = TickState(FrameMemory(m.memory_frames, m.memory_stride, channels)
                      if m.memory_frames else None,
                      session(ENCODER_FILE) if m.instruction_encoder else None)
    names = [s.name for s in input_specs(policy.config, cameras, channels)]
    outputs = [o.name for o in action.get_outputs()]
    rows = []
    policy.reset()  # both memories start empty and keep the same ticks, in order
    for obs, readings in ticks:
        raw = policy.processor.raw_inputs([obs], [readings])
        feeds = {n: raw[n].numpy() for n in names if n in raw} | state.feeds(raw)
        exported = dict(zip(outputs, action.run(outputs, feeds), strict=True))
        text = policy.processor.decode(explainer.generate(exported))
        rows.append(parity.compare_tick(policy, obs, readings, exported, text, keep=True))
        state.keep(exported)
    figures = parity.summarise(rows)
    return figures | {"inputs": "synthetic ticks: camera noise, instructions spread over the "
                                "rendered corpus, random ego state, targets and odometry",
                      "reference": "PyTorch eager, fp32, CPU",
                      "runtime": "onnxruntime " + ort.__version__ + ", CPUExecutionProvider"}


def _tick_tensors(policy: DriveVLAPolicy, obs: Observation, readings: dict[str, float]
                  ) -> dict[str, torch.Tensor]:
    """One tick's inputs of every graph, as the PyTorch policy makes them: the processor's
    tensors, the encoder's token states and the (fresh) memory's."""
    raw = policy.processor.raw_inputs([obs], [readings])
    states = policy.model.instruction_states
    if states is not None:
        raw["instruction_states"] = states(raw["instruction_ids"], raw["instruction_mask"])
    if policy.config.model.memory_frames:
        kept = FrameMemory(policy.config.model.memory_frames, 1,
                           policy.model.backbone.vision_channels).inputs()
        raw |= {"memory_summaries": kept["memory_summaries"],
                "memory_current": kept["memory_current"].long()}
    return raw


def _write_metadata(path: Path, deploy: dict[str, Any]) -> None:
    """The contract into the ONNX file's ``metadata_props`` (the graph is untouched)."""
    import onnx  # lazy: the optional `export` extra

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, metadata_props(deploy))
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".onnx", delete=False) as tmp:
        onnx.save(model, tmp.name)
    Path(tmp.name).chmod(0o644)  # NamedTemporaryFile makes it private
    Path(tmp.name).replace(path)
