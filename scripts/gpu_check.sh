#!/usr/bin/env bash
# The GPU check of issue 24: drivevla-tiny on every runtime an NVIDIA GPU machine has, one
# command, nothing downloaded and nothing installed (the machine's own Python and packages).
#
#   bash scripts/gpu_check.sh [OUT_DIR]        # default runs/gpu_check; about 3-6 minutes
#
# Runs `drivevla bench runtimes --device cuda --compile`: PyTorch CUDA eager, torch.compile,
# ONNX Runtime's CUDA provider (when onnxruntime-gpu is installed) and TensorRT (when
# importable), each driving the same closed-loop routes for latency and held to PyTorch on
# the CPU for parity; prints the table and writes OUT_DIR/runtimes.json (+ gpu.txt, the
# output of nvidia-smi). A runtime the machine lacks is a row saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/gpu_check}"
PY="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 SDL_VIDEODRIVER=offscreen PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
nvidia-smi > "$OUT/gpu.txt" 2>&1 || echo "nvidia-smi not found" > "$OUT/gpu.txt"
# what drivevla needs and the image may lack: said once, by name, before anything runs
"$PY" - <<'PYEOF'
import importlib.util, sys
need = ["highway_env", "gymnasium", "panda3d", "numpy", "scipy", "yaml", "tqdm", "imageio",
        "matplotlib", "torch", "torchvision", "transformers", "timm", "safetensors",
        "tokenizers", "accelerate", "peft", "pyarrow", "PIL", "onnx", "onnxruntime",
        "onnxscript"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: this Python lacks {missing}; install drivevla[export] first")
import torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA GPU")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
PYEOF
"$PY" -m drivevla.cli bench runtimes --policy drivevla-tiny --device cuda --compile \
    --threads 2 --steps 300 --parity-ticks 100 --out "$OUT/runtimes.json"
