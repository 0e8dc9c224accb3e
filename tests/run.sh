#!/usr/bin/env bash
# Runs every drdsurv test. Installs what the tests need beyond cargo first, only if missing:
#   - Python 3 with pandas and openpyxl (the independent check of generated extracts).
# Safe to run again and again; CI (.ci/run) calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"

if ! command -v python3 >/dev/null 2>&1; then
  echo "tests/run.sh: installing python3 (apt-get)"
  apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
fi
if ! python3 -c "import pandas, openpyxl" >/dev/null 2>&1; then
  echo "tests/run.sh: installing pandas and openpyxl (pip)"
  python3 -m pip install --quiet --disable-pip-version-check pandas openpyxl
fi

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc "$@"
