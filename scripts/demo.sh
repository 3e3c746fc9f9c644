#!/usr/bin/env bash
# Sets up (driver + npm deps + build), then runs the main job: `rae demo` with any extra options.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
[ -f dist/cli/main.js ] && [ -z "$(find src -newer dist/cli/main.js -name '*.ts' | head -1)" ] || npm run build
node dist/cli/main.js demo "$@"
