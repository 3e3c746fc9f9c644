#!/usr/bin/env bash
# Reference tools some tests compare against (float64 NumPy/SciPy, PyTorch 1.13 for the golden
# fixture generator and the checkpoint converter, PIL for the ADM centre crop) and the browser that renders report.html
# (Chromium, driven by playwright-core), from Debian's own packages. Tests that need them are
# reported as skipped where they are absent; on Debian 12 as root they are installed.
# Safe to run again: does nothing when they are present.
set -euo pipefail
PY=/usr/bin/python3
missing=()
if ! { [ -x "$PY" ] && "$PY" -c 'import numpy, scipy, torch, PIL' >/dev/null 2>&1; }; then
  # libopenblas0-pthread: without it torch and numpy run on Debian's generic reference BLAS.
  missing+=(python3-numpy python3-scipy python3-torch python3-pil libopenblas0-pthread)
fi
if [ ! -x /usr/bin/chromium ]; then
  # A font, so the headless browser lays text out as on a desktop (chromium only recommends one).
  missing+=(chromium fonts-dejavu-core)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
  echo "setup-test-tools: ${missing[*]} missing and cannot install (not root on Debian): tests that need them will be skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-test-tools: installed ${missing[*]}"
