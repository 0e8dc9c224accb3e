#!/usr/bin/env bash
# Benchmark: `drdsurv generate --scale national --years 10`, 3 runs, median/min/max of wall
# time and peak RSS (/usr/bin/time -v), plus the row counts. Results go to
# bench/results/generate_national.txt and standard output.
# Target (issue 2): under 2 minutes on the 2-core reference machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p drdsurv
bin="$CARGO_TARGET_DIR/release/drdsurv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results
runs=${RUNS:-3}
walls=(); rss=()
for i in $(seq 1 "$runs"); do
  rm -rf "$work/out"
  /usr/bin/time -v "$bin" generate --out "$work/out" --scale national --years 10 --seed 7 >"$work/stdout" 2>"$work/time"
  w=$(wall_seconds "$work/time")
  r=$(peak_rss_kib "$work/time")
  walls+=("$w"); rss+=("$r")
  echo "run $i: ${w}s wall, $((r / 1024)) MiB peak RSS"
done
{
  echo "drdsurv generate --scale national --years 10 --seed 7 ($(nproc) cores, $(date -u +%Y-%m-%d))"
  echo "wall seconds: $(summary "${walls[@]}")"
  echo "peak RSS KiB: $(summary "${rss[@]}")"
  cat "$work/stdout"
  du -sh "$work/out" | awk '{print "output size: " $1}'
} | tee bench/results/generate_national.txt
