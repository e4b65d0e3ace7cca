"""``drivevla bench runtimes``: every runtime this machine has, side by side, held to the
PyTorch CPU reference; those it lacks listed with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drivevla.benchmarks.runtimes import expert_observations, format_table, parity
from drivevla.cli import main
from support.export_parts import require_export_extra, save_tiny_checkpoint

require_export_extra()


def test_pytorch_and_onnx_runtime_side_by_side(tmp_path, capsys):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", seed=3)
    out = tmp_path / "runtimes" / "result.json"
    assert main(["bench", "runtimes", "--policy", str(ckpt), "--out", str(out), "--steps",
                 "4", "--warmup", "1", "--parity-ticks", "12", "--threads", "1"]) == 0
    result = json.loads(out.read_text())
    rows = result["variants"]
    assert list(rows) == ["pytorch", "onnxruntime", "tensorrt"]
    assert "NVIDIA GPU" in rows["tensorrt"]["skipped"]
    for name in ("pytorch", "onnxruntime"):
        row = rows[name]
        assert row["timings_ms"]["action"]["count"] == 4
        assert row["parity"]["ticks"] == result["config"]["parity_ticks"] == 12
        assert row["parity"]["explained_ticks"] == 2  # ticks 0 and 10
        assert row["parity"]["same_meta_action"] == row["parity"]["same_reason"] == 1.0
        assert row["parity"]["same_explanation"] == 1.0
    assert rows["pytorch"]["parity"]["waypoints_max_abs_m"] == 0.0  # the reference itself
    assert 0.0 < rows["onnxruntime"]["parity"]["waypoints_max_abs_m"] < 1e-4
    assert rows["onnxruntime"]["policy"].startswith("onnx:")
    assert (out.parent / "runtimes-exports" / "onnx" / "deploy.json").is_file()
    table = capsys.readouterr().out.splitlines()
    assert "TTFT" in table[1]
    assert table[2].startswith("pytorch") and table[3].startswith("onnxruntime")
    assert table[4].startswith("tensorrt") and "NVIDIA GPU" in table[4]
    assert result["config"]["reference"] == "PyTorch FP32 eager on the CPU"


def test_parity_counts_each_difference():
    ref = [(np.zeros((2, 2)), np.zeros(2), "a", "r", "x"), (np.ones((2, 2)), np.ones(2), "a",
                                                           "r", None)]
    other = [(np.zeros((2, 2)), np.full(2, 0.5), "b", "r", "y"),
             (np.ones((2, 2)) + 0.25, np.ones(2), "a", "q", None)]
    p = parity(ref, other)
    assert p["waypoints_max_abs_m"] == 0.25 and p["speeds_max_abs_mps"] == 0.5
    assert p["same_meta_action"] == 0.5 and p["same_reason"] == 0.5
    assert p["explained_ticks"] == 1 and p["same_explanation"] == 0.0
    assert "variant" in format_table({"config": {"policy": "p", "device": "cpu", "steps": 1,
                                                 "threads": 1, "parity_ticks": 2,
                                                 "reference": "r"},
                                      "variants": {"tensorrt": {"skipped": "no GPU"}}})


def test_expert_observations_are_a_drive_with_cameras():
    obs = expert_observations("urban", 5, seed=0)
    assert len(obs) == 5 and "front" in obs[0].images
    assert obs[4].timestamp_s > obs[0].timestamp_s


def test_cuda_without_a_gpu_is_named(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    assert main(["bench", "runtimes", "--policy", "drivevla-tiny", "--out",
                 str(tmp_path / "r.json"), "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_the_gpu_check_script_stops_by_name_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path / "gpu")], capture_output=True,
                          text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=300)
    assert done.returncode != 0
    assert "torch sees no CUDA GPU" in done.stderr
    assert (tmp_path / "gpu" / "gpu.txt").is_file()
    assert not (tmp_path / "gpu" / "runtimes.json").exists()
