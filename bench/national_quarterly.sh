#!/usr/bin/env bash
# Benchmark: `drdsurv run national_quarterly` for the latest quarter over the national synthetic
# store (`demo --scale national --years 10`: generate, ingest every submitter, import the
# reference files), one period with no lookback (`--from P --to P`), release build, warm cache
# (the store is built once and kept in $BENCH_DIR; one unmeasured warm-up run first).
# Reports median, min and max of wall time and peak RSS over $RUNS runs (default 3) to
# bench/results/national_quarterly.txt, with each model's rows and seconds from the last run.
# Target (issue 6): under 60 s, peak memory under 2 GB, on the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
# DRDSURV_BIN: an already built release binary (skips the build).
if [ -z "${DRDSURV_BIN:-}" ]; then cargo build --release -q -p drdsurv; fi
bin="${DRDSURV_BIN:-$CARGO_TARGET_DIR/release/drdsurv}"
work="${BENCH_DIR:-/tmp/drdsurv-bench}"
store="$work/national-store"
period="${PERIOD:-2025Q4}"
mkdir -p "$work" bench/results
if [ ! -f "$store/.demo-complete" ]; then
  rm -rf "$store"
  echo "building the national store (demo --scale national --years 10) in $store"
  /usr/bin/time -v "$bin" --store "$store" demo --scale national --years 10 --until ingest >"$work/demo.out" 2>"$work/demo.time" \
    || { tail -20 "$work/demo.time"; exit 1; }
  grep -E "Elapsed|Maximum resident" "$work/demo.time"
  touch "$store/.demo-complete"
fi
run() {
  RUST_LOG=warn /usr/bin/time -v "$bin" --store "$store" run national_quarterly --from "$period" --to "$period" \
    >"$work/run.json" 2>"$work/run.time" || { tail -20 "$work/run.time"; exit 1; }
}
run   # warm-up
runs=${RUNS:-3}
walls=(); rss=()
for i in $(seq 1 "$runs"); do
  run
  w=$(wall_seconds "$work/run.time")
  r=$(peak_rss_kib "$work/run.time")
  walls+=("$w"); rss+=("$r")
  echo "run $i: ${w}s wall, $((r / 1024)) MiB peak RSS"
done
{
  echo "drdsurv run national_quarterly --from $period --to $period over demo --scale national --years 10 ($(nproc) cores, $(date -u +%Y-%m-%d), release build)"
  echo "wall seconds: $(summary "${walls[@]}")"
  echo "peak RSS KiB: $(summary "${rss[@]}")"
  echo "store: $(du -sh "$store/sources" | cut -f1) of source tables"
  python3 - "$work/run.json" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"last run: {r['status']}, {r['run_id']}")
for m in r["models"]:
    print(f"  {m['model']:<22} {m['rows']:>10} rows {m['seconds']:>7.1f} s")
PY
} | tee bench/results/national_quarterly.txt
