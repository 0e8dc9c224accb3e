#!/usr/bin/env bash
# Benchmark: the whole main job, `drdsurv demo` (small scale unless SCALE is set), release build,
# on a fresh store each time: generate, ingest, run national_quarterly, publish, render. Runs it
# $RUNS times (default 3) and then once more on the last store (the re-run: nothing ingested,
# the run and release reused). Per-stage times come from the demo's own summary line; wall time
# and peak RSS from /usr/bin/time. Results: bench/results/demo.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ -z "${DRDSURV_BIN:-}" ]; then cargo build --release -q -p drdsurv; fi
bin="${DRDSURV_BIN:-$CARGO_TARGET_DIR/release/drdsurv}"
work="${BENCH_DIR:-/tmp/drdsurv-bench}/demo"
scale="${SCALE:-small}"
mkdir -p bench/results
out=bench/results/demo.txt
{
  echo "# bench/demo.sh on $(nproc) cores, $(date -u +%Y-%m-%d), scale $scale, ${RUNS:-3} fresh stores then one re-run"
  for i in $(seq 1 "${RUNS:-3}") rerun; do
    if [ "$i" != rerun ]; then rm -rf "$work"; mkdir -p "$work"; fi
    RUST_LOG=warn /usr/bin/time -v "$bin" --store "$work/store" demo --scale "$scale" >"$work/demo.out" 2>"$work/demo.time" \
      || { tail -20 "$work/demo.time" >&2; exit 1; }
    stages=$(grep 'time per stage' "$work/demo.out" | sed 's/^ *time per stage: //')
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f MiB", $2/1024}' "$work/demo.time")
    echo "run $i: $stages; peak RSS $rss"
  done
} | tee "$out"
