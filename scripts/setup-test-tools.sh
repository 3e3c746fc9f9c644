#!/usr/bin/env bash
# Reference tools some tests compare against (float64 NumPy/SciPy, PyTorch 1.13 for the golden
# fixture generator and the checkpoint converter), from Debian's own packages. Tests that need
# them are reported as skipped where they are absent; on Debian 12 as root they are installed.
# Safe to run again: does nothing when they are present.
set -euo pipefail
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import numpy, scipy, torch' >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
  echo "setup-test-tools: python3-numpy/scipy/torch missing and cannot install (not root on Debian): tests that need them will be skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# libopenblas0-pthread: without it torch and numpy run on Debian's generic reference BLAS.
apt-get install -y -qq --no-install-recommends python3-numpy python3-scipy python3-torch libopenblas0-pthread >/dev/null
echo "setup-test-tools: installed $("$PY" -c 'import torch; print("torch", torch.__version__)')"
