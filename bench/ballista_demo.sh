#!/usr/bin/env bash
# Benchmark: `drdsurv run national_quarterly` for one quarter (`--from P --to P`, no lookback) on
# the demo store (`demo`, small scale), embedded and on Ballista standalone
# (`--engine ballista:standalone`), release build. Each engine runs on its own copy of the same
# freshly ingested store, once unmeasured and then $RUNS times (default 3); wall time and peak RSS
# go to bench/results/ballista_demo.txt. There is no target: this records what the Ballista
# configuration that gives the embedded answers (one partition per stage, README "Ballista")
# costs on one machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ -z "${DRDSURV_BIN:-}" ]; then cargo build --release -q -p drdsurv; fi
bin="${DRDSURV_BIN:-$CARGO_TARGET_DIR/release/drdsurv}"
work="${BENCH_DIR:-/tmp/drdsurv-bench}/ballista-demo"
period="${PERIOD:-2025Q4}"
rm -rf "$work"; mkdir -p "$work" bench/results
"$bin" --store "$work/demo" demo --until ingest >"$work/demo.out" 2>&1
out=bench/results/ballista_demo.txt
{
  echo "# bench/ballista_demo.sh on $(nproc) cores, $(date -u +%Y-%m-%d), period $period, ${RUNS:-3} measured runs after one warm-up"
  for engine in embedded ballista:standalone; do
    store="$work/${engine%%:*}"
    cp -a "$work/demo" "$store"
    walls=(); rss=()
    for i in $(seq 0 "${RUNS:-3}"); do
      RUST_LOG=warn /usr/bin/time -v "$bin" --store "$store" --engine "$engine" \
        run national_quarterly --from "$period" --to "$period" >"$work/run.json" 2>"$work/run.time" \
        || { tail -20 "$work/run.time" >&2; exit 1; }
      [ "$i" = 0 ] && continue   # warm-up
      walls+=("$(wall_seconds "$work/run.time")"); rss+=("$(peak_rss_kib "$work/run.time")")
    done
    echo "$engine: wall seconds $(summary "${walls[@]}"); peak RSS KiB $(summary "${rss[@]}")"
  done
} | tee "$out"
