"""``drivevla export onnx``: a DriveVLA checkpoint -> a self-describing deployment folder.

Steps, each done by the maintained tool for it: ``torch.onnx.export`` traces
:class:`~drivevla.export.graph.ActionGraph` (the dynamo exporter; the TorchScript one only if
dynamo fails, and deploy.json says which), ``onnx.checker`` checks the file, ONNX Runtime runs
it beside the PyTorch policy on sample ticks (parity figures), and ``onnx.helper`` writes the
contract into its ``metadata_props``. The folder is then loaded back exactly as a vehicle
would (:class:`~drivevla.export.onnx_policy.OnnxActionModel`) before the command reports.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from drivevla.core.provenance import versions
from drivevla.core.types import CameraSpec
from drivevla.export import parity
from drivevla.export.deploy import (
    ACTION_FILE,
    CHECKPOINT_FILES,
    DEPLOY_FILE,
    DEPLOY_FORMAT,
    DEPLOY_VERSION,
    ExportError,
    config_sha256,
    file_sha256,
    metadata_props,
    write_deploy,
)
from drivevla.export.graph import (
    OUTPUT_NAMES,
    ActionGraph,
    decision_info,
    input_specs,
    normalisation,
    output_specs,
    tokenizer_info,
)
from drivevla.export.onnx_policy import OnnxActionModel
from drivevla.vla.policy import DEFAULT_CHECKPOINT, DriveVLAPolicy, default_checkpoint_dir

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
                camera_size: tuple[int, int] | None = None, samples: int = 8) -> dict[str, Any]:
    """Export ``policy`` (name or checkpoint folder) to the deployment folder ``out`` and
    return its deploy.json content. ``camera_size``: (width, height) px of every camera as
    the vehicle delivers it (default: the simulator's front camera, 320x180). Raises
    :class:`ExportError` when the parity on ``samples`` sample ticks is out of tolerance."""
    missing = [name for name in EXPORT_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"exporting needs the export extra, {missing} missing: pip install "
                          "'drivevla[export]'")
    if opset < DEFAULT_OPSET:
        raise ExportError(f"--opset {opset}: the graph resizes with antialias, which needs "
                          f"opset >= {DEFAULT_OPSET}")
    if samples < 1:
        raise ExportError(f"--parity-samples {samples}: at least 1 sample tick is needed")
    name, source = checkpoint_dir(policy)
    torch_policy = DriveVLAPolicy.from_pretrained(source)
    config = torch_policy.config
    if config.model.backbone_family != "default":
        raise ExportError(f"{source}: backbone_family {config.model.backbone_family!r} reads "
                          "raw instruction text; only the 'default' family exports so far")
    width, height = camera_size or (CameraSpec().width, CameraSpec().height)
    cameras = [CameraSpec(name=c, width=width, height=height) for c in config.model.cameras]
    out = _prepare_out(Path(out), source)
    ticks = parity.sample_observations(torch_policy, cameras, samples)
    exporter = _export_graph(torch_policy, ticks[0], cameras, out / ACTION_FILE, opset)
    figures = _measure_parity(torch_policy, ticks, out / ACTION_FILE, cameras)
    deploy = {
        "format": DEPLOY_FORMAT, "format_version": DEPLOY_VERSION,
        "model": {"name": name, "version": "sha256:" + file_sha256(
                      source / "model.safetensors")[:12],
                  "config_sha256": config_sha256(config), "source": str(source)},
        "action": {"file": ACTION_FILE, "opset": opset, "exporter": exporter,
                   "batch": 1, "shapes": "static",
                   "inputs": [s.to_dict() for s in input_specs(config, cameras)],
                   "outputs": [s.to_dict() for s in output_specs(config)]},
        "cameras": [dataclasses.asdict(c) for c in cameras],
        "normalisation": normalisation(config),
        "tokenizer": tokenizer_info(config),
        "decision": decision_info(config),
        "explainer": "pytorch",
        "explainer_note": "explain_prefill/explain_step ONNX files are not exported yet: "
                          "explain() runs this folder's PyTorch checkpoint",
        "versions": versions(_VERSIONED),
        "parity": figures,
    }
    _write_metadata(out / ACTION_FILE, deploy)
    write_deploy(out, deploy)
    OnnxActionModel(out)  # loads back as a vehicle would: every check of the folder
    if not figures["passed"]:
        raise ExportError(f"{out}: ONNX Runtime differs from PyTorch beyond "
                          f"{figures['tolerance']:g} or on an arg-max; see 'parity' in "
                          f"{out / DEPLOY_FILE}:\n{parity.format_parity(figures)}")
    return deploy


def _prepare_out(out: Path, source: Path) -> Path:
    """``out`` created (empty, or an earlier export being replaced) with the checkpoint's
    files copied into it."""
    if out.exists() and any(out.iterdir()) and not (out / DEPLOY_FILE).is_file():
        raise ExportError(f"--out {out} exists and is not an earlier export (no "
                          f"{DEPLOY_FILE}); give a new or empty folder")
    if out.resolve() == source.resolve():
        raise ExportError(f"--out {out} is the checkpoint folder itself; give another one")
    out.mkdir(parents=True, exist_ok=True)
    for stale in (DEPLOY_FILE, ACTION_FILE):  # a half-finished export never looks complete
        (out / stale).unlink(missing_ok=True)
    for name in CHECKPOINT_FILES + OPTIONAL_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    return out


def _export_graph(policy: DriveVLAPolicy, tick: tuple, cameras: list[CameraSpec], path: Path,
                  opset: int) -> str:
    """Trace the action graph on one sample tick into ``path`` (checked by onnx.checker);
    returns which exporter made it."""
    import onnx  # lazy: the optional `export` extra

    for name in ("onnxscript", "onnx_ir"):  # their INFO lines, one per rewrite, drown the rest
        logging.getLogger(name).setLevel(logging.WARNING)
    graph = ActionGraph(policy.model, policy.processor,
                        (cameras[0].height, cameras[0].width)).eval()
    raw = policy.processor.raw_inputs([tick[0]], [tick[1]])
    names = [s.name for s in input_specs(policy.config, cameras)]
    kwargs = {name: raw[name] for name in names}
    common = {"kwargs": kwargs, "input_names": names, "output_names": list(OUTPUT_NAMES),
              "opset_version": opset}
    with torch.inference_mode(False), torch.no_grad():
        try:
            program = torch.onnx.export(graph, (), dynamo=True, external_data=False,
                                        verbose=False, **common)
            program.save(str(path))
            exporter = "torch.onnx.export(dynamo=True)"
        except Exception as exc:  # the exporters raise many classes; the fallback is logged
            logger.warning("the dynamo exporter failed (%s: %s); using the TorchScript one",
                           type(exc).__name__, exc)
            torch.onnx.export(graph, (), str(path), dynamo=False, **common)
            exporter = "torch.onnx.export(dynamo=False) (TorchScript)"
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path}: onnx.checker rejects the exported graph: {exc}") from exc
    return exporter


def _measure_parity(policy: DriveVLAPolicy, ticks: list, path: Path,
                    cameras: list[CameraSpec]) -> dict[str, Any]:
    """ONNX Runtime (CPU) vs the PyTorch policy on the sample ticks (:mod:`.parity`)."""
    import onnxruntime as ort  # lazy: the optional `export` extra

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [s.name for s in input_specs(policy.config, cameras)]
    threshold = policy.config.inference.refusal_threshold
    rows = []
    for obs, readings in ticks:
        raw = policy.processor.raw_inputs([obs], [readings])
        exported = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), {
            name: raw[name].numpy() for name in names}), strict=True))
        rows.append(parity.compare(parity.reference_outputs(policy, obs, readings), exported,
                                   threshold))
    figures = parity.summarise(rows)
    return figures | {"inputs": "synthetic ticks: camera noise, instructions spread over the "
                                "rendered corpus, random ego state, targets and odometry",
                      "reference": "PyTorch eager, fp32, CPU",
                      "runtime": "onnxruntime " + ort.__version__ + ", CPUExecutionProvider"}


def _write_metadata(path: Path, deploy: dict[str, Any]) -> None:
    """The contract into the ONNX file's ``metadata_props`` (the graph is untouched)."""
    import onnx  # lazy: the optional `export` extra

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, metadata_props(deploy))
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".onnx", delete=False) as tmp:
        onnx.save(model, tmp.name)
    Path(tmp.name).chmod(0o644)  # NamedTemporaryFile makes it private
    Path(tmp.name).replace(path)
