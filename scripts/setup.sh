#!/usr/bin/env bash
# One-time set-up on a fresh Debian 12 machine with Node 20: the software Vulkan driver
# (when no GPU driver is present) and the npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
