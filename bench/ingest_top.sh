#!/usr/bin/env bash
# Benchmark: `drdsurv ingest` of one TOP CSV of at least 10 million rows, with validation,
# HMAC pseudonymisation, quarantine and Delta commits included (issue 3). The CSV is built
# from `generate --scale national --years 10` outputs (seeds 7, 8, 9) by bench/make_top_csv.py
# and kept in $BENCH_DIR for re-runs. Reports rows per second and peak RSS (/usr/bin/time -v)
# to bench/results/ingest_top.txt.
# Targets: >= 1,000,000 rows/s (floor 600,000) on the 2-core machine, peak memory < 1 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p drdsurv
bin="$CARGO_TARGET_DIR/release/drdsurv"
work="${BENCH_DIR:-/tmp/drdsurv-bench}"
rows="${ROWS:-10000000}"
mkdir -p "$work" bench/results
csv="$work/top-$rows.csv"
if [ ! -f "$csv" ]; then
  dirs=()
  for seed in 7 8 9; do
    [ -f "$work/nat$seed/manifest.json" ] || "$bin" generate --out "$work/nat$seed" --scale national --years 10 --seed "$seed" >/dev/null
    dirs+=("$work/nat$seed")
  done
  python3 bench/make_top_csv.py "$csv" --rows "$rows" "${dirs[@]}"
fi
areas=$(tail -n +2 reference/partnerships_2021.csv | cut -d, -f1 | paste -sd, -)
export DRDSURV_LINKAGE_KEY="benchmark-linkage-key-not-for-production-use"
runs=${RUNS:-1}
for i in $(seq 1 "$runs"); do
  rm -rf "$work/store"
  /usr/bin/time -v "$bin" --store "$work/store" ingest --source top --submitter bench-top \
    --areas "$areas" "$csv" >"$work/receipt.json" 2>"$work/time" || { cat "$work/time"; exit 1; }
  w=$(wall_seconds "$work/time")
  r=$(peak_rss_kib "$work/time")
  cpu=$(grep "Percent of CPU" "$work/time" | awk '{print $NF}')
  read -r n acc q < <(python3 -c "import json,sys; r=json.load(open('$work/receipt.json')); print(r['rows_read'], r['rows_accepted'], r['rows_quarantined'])")
  line="run $i: $n rows ($acc accepted, $q quarantined) in ${w}s = $(python3 -c "print(round($n/$w))") rows/s; peak RSS $((r / 1024)) MiB; CPU $cpu; $(du -sh "$work/store" | cut -f1) stored"
  echo "$line"
  lines+=("$line")
done
{
  echo "drdsurv ingest --source top, one CSV of $rows rows, $(du -h "$csv" | cut -f1) ($(nproc) cores, $(date -u +%Y-%m-%d), release build)"
  printf '%s\n' "${lines[@]}"
} | tee bench/results/ingest_top.txt
