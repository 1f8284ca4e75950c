#!/usr/bin/env bash
# Install the project into ./.venv (created if missing), with the exact tested versions.
# PyTorch first, pinned, so pip takes the CPU build on disk (or the registry's) instead of
# resolving a newer one with gigabytes of CUDA packages; then everything else, constrained.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "pip>=24" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
# editor: the ComfyUI frontend served at /comfy/ (22 MB wheel, no deps); CI drives it in Chromium
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,editor]" 2>&1 | grep -v "^WARNING: Location" || true
# k-diffusion, the reference the ComfyUI-native samplers are tested against: its own package only
# (its requirements pull torchvision, wandb and more; the tests load only its sampling module)
.venv/bin/python -m pip install -q --no-deps "k-diffusion==0.1.1.post1" 2>&1 | grep -v "^WARNING: Location" || true
# spandrel (upscale models) without its declared torchvision: PyPI's torchvision does not import
# beside the pinned CPU torch, and the architectures we load do not need it (plugins/upscale/nets.py)
.venv/bin/python -m pip install -q --no-deps -c constraints.txt spandrel 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, ray, diffusers, orchestrator; print('installed: orchestrator', orchestrator.__version__, '| torch', torch.__version__, '| ray', ray.__version__, '| diffusers', diffusers.__version__)"
