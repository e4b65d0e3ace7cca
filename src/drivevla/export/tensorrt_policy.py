"""TensorRT as a policy: ``--policy trt:DIR`` (a folder of ``drivevla export tensorrt``).

    policy = make_policy("trt:engines/tiny")   # the engines, and the ONNX folder they came from
    decision = policy.act(observation)         # action.engine on the GPU
    text = policy.explain()                    # explain_prefill/step.engine on act's cache

The engines folder's ``tensorrt.json`` names the ONNX deployment folder it was built from
(``source``) and the sha256 of each ONNX file at build time. That folder is loaded and checked
as for ``onnx:DIR`` (deploy.json, the checkpoint's config and processor), and its ONNX files
must still be the ones the engines were built from. The policy is then
:class:`~drivevla.export.onnx_policy.OnnxPolicy` with TensorRT running the three graphs:
the same processor and decision code before and after, the same greedy explanation loop.

Buffers are torch CUDA tensors (torch is a dependency already; no pycuda or cuda-python), the
engines run with ``execute_async_v3`` on torch's current stream (the TensorRT 10 tensor API).
TensorRT and a CUDA GPU are needed; without them the error names what is missing. Nothing
here has run on a TensorRT machine yet: ``scripts/gpu_check.sh`` runs it where TensorRT is
importable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from drivevla.core.errors import read_json
from drivevla.export.deploy import (
    ONNX_FILES,
    DeploymentError,
    load_deploy,
)
from drivevla.export.onnx_policy import ActionGraph, OnnxExplainer, OnnxPolicy
from drivevla.export.tensorrt import MANIFEST, tensorrt_module

POLICY_PREFIX = "trt:"


class _Input:  # what OnnxExplainer reads of an ONNX Runtime input: its name
    def __init__(self, name: str) -> None:
        self.name = name


class TrtSession:
    """One deserialized engine behind the two ONNX Runtime session calls the policy uses:
    ``get_inputs()`` and ``run(output_names, feeds)`` (numpy in, numpy out)."""

    def __init__(self, trt: Any, runtime: Any, path: Path) -> None:
        self.path = path
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise DeploymentError(f"{path}: TensorRT cannot deserialize it (built by another "
                                  "TensorRT version or for another GPU? rebuild it here)")
        self.engine, self.context = engine, engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names
                       if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: torch.from_numpy(np.empty(0, trt.nptype(engine.get_tensor_dtype(n))))
                       .dtype for n in names}

    def get_inputs(self) -> list[_Input]:
        return [_Input(name) for name in self.inputs]

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        """The outputs ``output_names`` (None: all, in the engine's order) of one run."""
        keep = {}
        for name in self.inputs:
            keep[name] = torch.from_numpy(np.ascontiguousarray(feeds[name])).to(
                "cuda", self.dtypes[name])
            self.context.set_input_shape(name, tuple(keep[name].shape))
            self.context.set_tensor_address(name, keep[name].data_ptr())
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            keep[name] = torch.empty(shape, dtype=self.dtypes[name], device="cuda")
            self.context.set_tensor_address(name, keep[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise DeploymentError(f"{self.path}: TensorRT failed to run it (see its log)")
        stream.synchronize()
        return [keep[name].cpu().numpy() for name in (output_names or self.outputs)]


def _check_source(engines: Path, manifest: dict[str, Any], deploy: dict[str, Any],
                  source: Path) -> None:
    built = manifest.get("onnx_sha256", {})
    for name in ONNX_FILES:
        if built.get(name) != deploy["files"][name]:
            raise DeploymentError(
                f"{engines / MANIFEST}: its engines were built from another {name} than "
                f"{source / name}'s (re-export or rebuild the engines)")


class TrtActionModel(ActionGraph):
    """The engines of a ``drivevla export tensorrt`` folder, checked against the ONNX
    deployment folder they were built from."""

    def __init__(self, engines: str | Path) -> None:
        engines = Path(engines)
        path = engines / MANIFEST
        if not path.is_file():
            raise DeploymentError(f"{engines}: no {MANIFEST} (make the folder with `drivevla "
                                  "export tensorrt --onnx DIR --out DIR`)")
        manifest = read_json(path)
        self.source = Path(manifest.get("source", ""))
        deploy = load_deploy(self.source)
        _check_source(engines, manifest, deploy, self.source)
        if not torch.cuda.is_available():
            raise DeploymentError(f"trt:{engines} needs a CUDA GPU; torch sees none here "
                                  f"(run onnx:{self.source} on CPU instead)")
        trt = tensorrt_module()
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        action, prefill, step = (TrtSession(trt, runtime, engines / manifest["engines"][name])
                                 for name in ONNX_FILES)
        super().__init__(deploy, action, engines / manifest["engines"][ONNX_FILES[0]])
        self.explainer = OnnxExplainer(prefill, step, int(deploy["explain"]["max_tokens"]))
        names = [s.name for s in self.inputs], [s.name for s in self.outputs]
        if (sorted(action.inputs), sorted(action.outputs)) != tuple(map(sorted, names)):
            raise DeploymentError(f"{self.path}: its tensors {action.inputs + action.outputs} "
                                  f"are not deploy.json's {names[0] + names[1]}")

    def set_threads(self, threads: int | None) -> None:
        """Nothing to set: the engines run on the GPU."""


def trt_policy(engines: str | Path, explain_every: int = 0) -> OnnxPolicy:
    """The policy of a ``trt:DIR`` folder (see the module docstring)."""
    model = TrtActionModel(engines)
    return OnnxPolicy(model.source, explain_every, action_model=model,
                      name=f"{POLICY_PREFIX}{engines}")


def trt_policy_dir(name: str) -> Path | None:
    """The folder of a ``trt:DIR`` policy name, or None for any other name."""
    return Path(name[len(POLICY_PREFIX):]) if name.startswith(POLICY_PREFIX) else None

