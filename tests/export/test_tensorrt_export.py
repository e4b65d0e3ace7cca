"""TensorRT engines of a deployment folder and ``trt:DIR`` policies: built and run where
TensorRT and a GPU are (skipped elsewhere, with the reason); an error naming what is missing
or wrong (TensorRT, the GPU, the manifest, engines of another export) everywhere."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from drivevla.agents.registry import make_policy, policy_folder
from drivevla.cli import main
from drivevla.export.deploy import ONNX_FILES, DeploymentError, ExportError
from drivevla.export.onnx_export import export_onnx
from drivevla.export.tensorrt import MANIFEST, build_engines, engine_manifest, step_profile
from support.export_parts import (
    TINY_CAMERA,
    camera_obs,
    require_export_extra,
    save_tiny_checkpoint,
)

require_export_extra()
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("trt")
    ckpt = save_tiny_checkpoint(root / "ckpt", seed=5)
    deploy = export_onnx(str(ckpt), root / "deploy", camera_size=TINY_CAMERA, samples=1)
    return root / "deploy", deploy


def test_step_profile_spans_one_token_to_a_full_explanation(folder):
    _, deploy = folder
    prefix = next(o["shape"][1] for o in deploy["action"]["outputs"]
                  if o["name"] == "attention_mask")
    low, opt, high = step_profile(deploy)
    assert low == prefix + 1 and high == prefix + 2 + deploy["explain"]["max_tokens"]
    assert low < opt < high


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_without_tensorrt_the_error_names_it(folder, tmp_path, capsys):
    with pytest.raises(ExportError, match="TensorRT is not installed"):
        build_engines(folder[0], tmp_path / "engines")
    assert main(["export", "tensorrt", "--onnx", str(folder[0]), "--out",
                 str(tmp_path / "engines")]) == 2
    assert "TensorRT is not installed" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_TENSORRT, reason="TensorRT is not installed (an NVIDIA GPU "
                                             "machine or a Jetson has it)")
def test_engines_are_built_with_a_manifest(folder, tmp_path):
    manifest = build_engines(folder[0], tmp_path / "engines", fp16=True, workspace_gb=1)
    for engine in manifest["engines"].values():
        assert (tmp_path / "engines" / engine).stat().st_size > 0
    assert json.loads((tmp_path / "engines" / "tensorrt.json").read_text())["fp16"] is True
    assert (tmp_path / "engines" / "timing.cache").is_file()


HAS_CUDA = torch.cuda.is_available()


def _engines_folder(folder, tmp_path, **changes):
    """An engines folder whose tensorrt.json is what build_engines writes for ``folder``
    (engine files absent: nothing here may reach them), with ``changes`` applied."""
    path, deploy = folder
    out = tmp_path / "engines"
    out.mkdir()
    manifest = engine_manifest(path, json.loads((path / "deploy.json").read_text()),
                               {n: n.replace(".onnx", ".engine") for n in ONNX_FILES},
                               "10.0", fp16=False, int8=False, workspace_gb=1.0) | changes
    (out / MANIFEST).write_text(json.dumps(manifest))
    return out


def test_trt_policy_without_a_manifest_is_named(tmp_path):
    with pytest.raises(DeploymentError, match="no tensorrt.json"):
        make_policy(f"trt:{tmp_path}")


def test_trt_policy_of_engines_built_from_another_export_is_refused(folder, tmp_path):
    other = _engines_folder(folder, tmp_path, onnx_sha256={n: "0" * 64 for n in ONNX_FILES})
    with pytest.raises(DeploymentError, match="built from another action.onnx"):
        make_policy(f"trt:{other}")


def test_trt_policy_of_a_moved_source_folder_is_named(folder, tmp_path):
    moved = _engines_folder(folder, tmp_path, source=str(tmp_path / "gone"))
    with pytest.raises(DeploymentError, match="gone"):
        make_policy(f"trt:{moved}")


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA GPU is present")
def test_trt_policy_without_a_gpu_says_so(folder, tmp_path, capsys):
    engines = _engines_folder(folder, tmp_path)
    with pytest.raises(DeploymentError, match="needs a CUDA GPU"):
        make_policy(f"trt:{engines}")
    assert policy_folder(f"trt:{engines}") == engines


@pytest.mark.skipif(not (HAS_TENSORRT and HAS_CUDA),
                    reason="TensorRT and a CUDA GPU are needed (an NVIDIA GPU machine or a "
                           "Jetson)")
def test_trt_policy_decides_and_explains_as_onnx_runtime(folder, tmp_path):
    build_engines(folder[0], tmp_path / "engines", workspace_gb=1)
    trt, ort = make_policy(f"trt:{tmp_path / 'engines'}"), make_policy(f"onnx:{folder[0]}")
    for seed in range(3):
        obs = camera_obs(*TINY_CAMERA, seed=seed)
        a, b = trt.act(obs), ort.act(obs)
        assert np.abs(a.waypoints - b.waypoints).max() < 1e-3
        assert a.meta_action == b.meta_action
        assert trt.explain() == ort.explain()
