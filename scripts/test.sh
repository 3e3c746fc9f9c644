#!/usr/bin/env bash
# Sets up (system driver + npm deps), then runs every test on the WebGPU adapter and prints
# a closing line "N passed, M failed, K skipped". Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
report="$(mktemp -t vitest-XXXXXX.json)"
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@"
status=$?
node scripts/count-results.mjs "$report"
counted=$?
rm -f "$report"
[ $status -eq 0 ] && [ $counted -eq 0 ]
