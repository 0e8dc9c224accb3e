#!/usr/bin/env bash
# Runs every drdsurv test. Installs what the tests need beyond cargo first, only if missing:
#   - Python 3 with pandas and openpyxl (independent check of generated extracts), and
#     pyarrow and deltalake (independent read-back of the Delta tables ingest writes).
# Safe to run again and again; CI (.ci/run) calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"

if ! command -v python3 >/dev/null 2>&1; then
  echo "tests/run.sh: installing python3 (apt-get)"
  apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
fi
if ! python3 -c "import pandas, openpyxl, pyarrow, deltalake" >/dev/null 2>&1; then
  echo "tests/run.sh: installing pandas, openpyxl, pyarrow and deltalake (pip)"
  python3 -m pip install --quiet --disable-pip-version-check pandas openpyxl pyarrow deltalake
fi

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc "$@"
