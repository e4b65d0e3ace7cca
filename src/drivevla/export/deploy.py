"""The deployment folder and its contract, ``deploy.json`` (schema :data:`DEPLOY_FORMAT`).

A folder written by ``drivevla export onnx`` holds::

    action.onnx             one tick of the action path (raw inputs -> decision tensors
                            and the prefix KV cache; with a memory, this tick's summary)
    instruction.onnx        the pretrained instruction encoder (checkpoints with one): token
                            ids -> token states, run when the instruction changes
    explain_prefill.onnx, explain_step.onnx
                            greedy explanation from that cache (first step, then a token)
    deploy.json             this contract: what every input and output is, and the checks
    config.json, model.safetensors, tokenizer.json, processor_config.json
                            the checkpoint it was exported from (a DriveVLA checkpoint in
                            its own right: the tokenizer for the instruction's token ids, the
                            PyTorch explainer, the reference for parity)

``deploy.json`` keys: ``format`` / ``format_version``; ``model`` (name, version, config
sha256, source); ``action`` (file, opset, exporter, ``inputs`` and ``outputs``: name, dtype,
shape, unit, meaning); ``cameras`` (CameraSpec fields); ``normalisation`` (what the graph does
to the raw inputs, with its constants); ``tokenizer``; ``decision`` (step, threshold, label
lists of the outputs); ``explainer``; ``versions``; ``parity`` (figures measured at export);
``files`` (sha256 of every file above but deploy.json). Every key except ``files`` is also in
each ONNX file's ``metadata_props`` as ``drivevla.<key>`` (a JSON value), so the ONNX file alone
says what it is (openpilot's habit).

:func:`load_deploy` checks a folder before anything runs it and raises
:class:`DeploymentError` naming the problem: a missing file, a config whose hash differs from
the export's, a file changed since export, a malformed deploy.json.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.errors import DriveVLAError, read_json
from drivevla.vla.configuration_drivevla import DriveVLAConfig

DEPLOY_FORMAT = "drivevla-deploy"
DEPLOY_VERSION = 1
DEPLOY_FILE = "deploy.json"
ACTION_FILE = "action.onnx"
EXPLAIN_PREFILL_FILE = "explain_prefill.onnx"  # <expl> (+ reason) after the action's cache
EXPLAIN_STEP_FILE = "explain_step.onnx"  # one token on a growing cache
ONNX_FILES = (ACTION_FILE, EXPLAIN_PREFILL_FILE, EXPLAIN_STEP_FILE)
# the pretrained instruction encoder's graph, in folders of checkpoints that have one
ENCODER_FILE = "instruction.onnx"
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json",
                    "processor_config.json")
METADATA_PREFIX = "drivevla."
REQUIRED_KEYS = ("format", "format_version", "model", "action", "cameras", "normalisation",
                 "tokenizer", "decision", "explainer", "versions", "parity", "files")


class ExportError(DriveVLAError, ValueError):
    """A policy that cannot be exported, or an export that failed its own checks."""


class DeploymentError(DriveVLAError, ValueError):
    """A deployment folder that cannot be run; the message names the file or key."""


class DeploymentInputError(DeploymentError):
    """An input of the wrong name, shape or dtype for the exported graph."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported graph (static shape, numpy dtype name)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    unit: str
    meaning: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(str(data["name"]), str(data["dtype"]), tuple(int(x) for x in data["shape"]),
                   str(data["unit"]), str(data["meaning"]))


def config_sha256(config: DriveVLAConfig) -> str:
    """sha256 of the config's canonical JSON (sorted keys): the same config, the same hash,
    whatever the file's layout (flat legacy or sectioned)."""
    blob = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_files(deploy: dict[str, Any]) -> tuple[str, ...]:
    """The ONNX files of a deployment: :data:`ONNX_FILES`, and :data:`ENCODER_FILE` where
    deploy.json has an ``instruction_encoder``."""
    return ONNX_FILES + ((ENCODER_FILE,) if deploy.get("instruction_encoder") else ())


def write_deploy(directory: str | Path, deploy: dict[str, Any]) -> Path:
    """Write ``deploy.json`` with the sha256 of every file it names (``files`` filled in)."""
    directory = Path(directory)
    names = [*onnx_files(deploy), *CHECKPOINT_FILES]
    deploy = dict(deploy, files={name: file_sha256(directory / name) for name in names})
    path = directory / DEPLOY_FILE
    path.write_text(json.dumps(deploy, indent=2) + "\n", encoding="utf-8")
    return path


def metadata_props(deploy: dict[str, Any]) -> dict[str, str]:
    """The ONNX ``metadata_props`` of a deploy dict: every key but ``files``, JSON-encoded."""
    return {f"{METADATA_PREFIX}{k}": json.dumps(v, sort_keys=True) for k, v in deploy.items()
            if k != "files"}


def deploy_from_metadata(props: dict[str, str]) -> dict[str, Any]:
    """The deploy dict (without ``files``) from an ONNX file's ``metadata_props``."""
    return {k[len(METADATA_PREFIX):]: json.loads(v) for k, v in props.items()
            if k.startswith(METADATA_PREFIX)}


def load_deploy(directory: str | Path) -> dict[str, Any]:
    """The checked ``deploy.json`` of a deployment folder.

    Raises :class:`DeploymentError` naming the problem, in this order: no folder or no
    deploy.json, a malformed deploy.json, a file it lists missing, a config whose hash is not
    the export's, a file whose sha256 changed since export (corrupted or replaced)."""
    directory = Path(directory)
    path = directory / DEPLOY_FILE
    if not path.is_file():
        what = "does not exist" if not directory.is_dir() else f"has no {DEPLOY_FILE}"
        raise DeploymentError(f"deployment folder {str(directory)!r} {what} (make one with "
                              "`drivevla export onnx --policy NAME_OR_DIR --out DIR`)")
    deploy = read_json(path)
    _check_schema(deploy, path)
    files = deploy["files"]
    for name in files:
        if not (directory / name).is_file():
            raise DeploymentError(f"{directory / name} is missing: {DEPLOY_FILE} lists it "
                                  "(re-export the folder or restore the file)")
    _check_config_hash(directory, deploy)
    for name, expected in files.items():
        actual = file_sha256(directory / name)
        if actual != expected:
            raise DeploymentError(
                f"{directory / name} changed since export (corrupted or replaced): sha256 "
                f"{actual[:16]}... is not {DEPLOY_FILE}'s {str(expected)[:16]}...")
    return deploy


def _check_schema(deploy: Any, path: Path) -> None:
    if not isinstance(deploy, dict) or deploy.get("format") != DEPLOY_FORMAT:
        raise DeploymentError(f"{path}: not a drivevla deployment file (format "
                              f"{deploy.get('format') if isinstance(deploy, dict) else None!r},"
                              f" expected {DEPLOY_FORMAT!r})")
    if deploy.get("format_version") != DEPLOY_VERSION:
        raise DeploymentError(f"{path}: format_version {deploy.get('format_version')!r}; this "
                              f"drivevla reads version {DEPLOY_VERSION} (re-export the folder)")
    missing = [k for k in REQUIRED_KEYS if k not in deploy]
    if missing:
        raise DeploymentError(f"{path}: missing key(s) {missing}")
    names = set(deploy["files"]) if isinstance(deploy["files"], dict) else set()
    needed = {*onnx_files(deploy), *CHECKPOINT_FILES} - names
    if needed:
        raise DeploymentError(f"{path}: 'files' does not list {sorted(needed)}")


def _check_config_hash(directory: Path, deploy: dict[str, Any]) -> None:
    expected = deploy["model"].get("config_sha256")
    actual = config_sha256(DriveVLAConfig.load(directory))
    if actual != expected:
        raise DeploymentError(
            f"{directory / 'config.json'}: config hash {actual[:16]}... differs from the "
            f"export's {str(expected)[:16]}... in {DEPLOY_FILE}: action.onnx was exported from "
            "another config (re-export the folder)")


def check_metadata(deploy: dict[str, Any], props: dict[str, str], source: str) -> None:
    """``deploy`` (as loaded) must equal what the ONNX file says of itself."""
    meta = deploy_from_metadata(props)
    own = {k: v for k, v in deploy.items() if k != "files"}
    differ = sorted(k for k in set(meta) | set(own) if meta.get(k) != own.get(k))
    if differ:
        raise DeploymentError(f"{source}: its metadata differs from {DEPLOY_FILE} in "
                              f"{differ} (the files come from different exports)")


def check_feeds(specs: list[TensorSpec], feeds: dict[str, np.ndarray], source: str) -> None:
    """Every input of ``specs`` present in ``feeds`` with its dtype and shape, nothing else;
    otherwise :class:`DeploymentInputError` naming the input."""
    expected = {s.name: s for s in specs}
    unknown = sorted(set(feeds) - set(expected))
    missing = sorted(set(expected) - set(feeds))
    if unknown or missing:
        raise DeploymentInputError(f"{source}: inputs {sorted(feeds)}; expected "
                                   f"{list(expected)} (missing {missing}, unknown {unknown})")
    for name, spec in expected.items():
        value = feeds[name]
        if not isinstance(value, np.ndarray) or value.dtype != np.dtype(spec.dtype):
            got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise DeploymentInputError(f"{source}: input {name!r} has dtype {got}, expected "
                                       f"{spec.dtype} ({spec.meaning})")
        if tuple(value.shape) != spec.shape:
            raise DeploymentInputError(f"{source}: input {name!r} has shape "
                                       f"{tuple(value.shape)}, expected {spec.shape} "
                                       f"({spec.meaning})")
