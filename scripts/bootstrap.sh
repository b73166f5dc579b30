#!/usr/bin/env bash
# Create .venv and install quotebot with CPU-only PyTorch (never the multi-GB CUDA build).
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python -c "import torch" 2>/dev/null; then
  v="${QUOTEBOT_TORCH_VERSION:-2.13.0}"
  if pip install -q --no-deps --no-index "torch==$v" 2>/dev/null; then
    # A local CPU wheel found through pip's own find-links configuration (our CI machines);
    # its dependencies come from the ordinary index.
    pip install -q "torch==$v"
  else
    # Anywhere else: PyTorch's CPU-only wheel index.
    pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
# Pin the installed torch so that nothing below swaps it for a CUDA build.
python -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' 2>/dev/null > .venv/constraints.txt
spec="."
[ -n "$extras" ] && spec=".[$extras]"
pip install -q -c .venv/constraints.txt -e "$spec"
