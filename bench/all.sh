#!/usr/bin/env bash
# Issue 10: every national-scale figure and the DuckDB comparison, with one command:
#
#     bash bench/all.sh
#
# Data: `drdsurv generate --scale national --years 10` (seed 7), kept in $BENCH_DIR for
# re-runs (default /tmp/drdsurv-bench; it needs about 6 GB). Release build. Each step runs
# $RUNS times (default 3), each run a fresh process under /usr/bin/time -v:
#   1. ingest of each source's generated files, one `drdsurv ingest` per submitter, into a
#      fresh store per run; and of one 10-million-row TOP CSV on its own (bench/make_top_csv.py);
#      DuckDB: a plain CSV -> Parquet copy of that same CSV;
#   2. `run national_quarterly` for 2025Q4 over the ingested 10 years (one warm-up run first);
#   3. `report`: the 152 partnership reports and the national index of the published release;
#   4. the core indicator queries in drdsurv and DuckDB, with their results compared row by
#      row (bench/duckdb_compare.py);
#   5. Flight SQL under 20 concurrent ADBC clients (bench/flight_load.sh on the national store),
#      with and without one more client sending a query over the memory limit.
# Every measurement is a JSON line in $BENCH_DIR/measurements.jsonl; bench/summary.py prints
# the table of medians, ranges, ratios and targets and writes bench/results/national.txt.
# Never part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
python3 -c "import duckdb, deltalake" 2>/dev/null || python3 -m pip install --quiet duckdb deltalake pyarrow
if [ -z "${DRDSURV_BIN:-}" ]; then cargo build --release -q -p drdsurv; fi
bin="${DRDSURV_BIN:-$CARGO_TARGET_DIR/release/drdsurv}"
work="${BENCH_DIR:-/tmp/drdsurv-bench}"
runs="${RUNS:-3}"
rows="${ROWS:-10000000}"
period=2025Q4
export MEASUREMENTS="$work/measurements.jsonl"
export DRDSURV_LINKAGE_KEY="benchmark-linkage-key-not-for-production-use"
export RUST_LOG=warn
mkdir -p "$work" bench/results
: > "$MEASUREMENTS"
note() { echo "[$(date -u +%H:%M:%S)] $*"; }

# Data: the national synthetic extracts (seed 7), and seeds 8 and 9 for the 10M-row TOP file.
for seed in 7 8 9; do
  if [ ! -f "$work/nat$seed/manifest.json" ]; then
    note "generating national data, seed $seed"
    "$bin" generate --out "$work/nat$seed" --scale national --years 10 --seed "$seed" >/dev/null
  fi
done
csv="$work/top-$rows.csv"
[ -f "$csv" ] || python3 bench/make_top_csv.py "$csv" --rows "$rows" "$work/nat7" "$work/nat8" "$work/nat9"
# The store for steps 2-5: every source ingested (seed 7, the demo's own ingest) and the
# reference files imported.
store="$work/national-store"
if [ ! -f "$store/.demo-complete" ]; then
  rm -rf "$store"
  note "building the national store"
  "$bin" --store "$store" demo --scale national --years 10 --until ingest >/dev/null
  touch "$store/.demo-complete"
fi

# 1a. Ingest of each source: one `drdsurv ingest` per submitter with its areas, as a worker would.
for source in coroner top nsp; do
  python3 - "$bin" "$work/nat7" "$source" > "$work/ingest-$source.sh" <<'PY'
import json, shlex, sys
bin_, root, source = sys.argv[1:4]
m = json.load(open(f"{root}/manifest.json"))
print('set -e')
print('store="$1"')
for s in m["submitters"]:
    if s["source"] != source:
        continue
    files = [f"{root}/{f['path']}" for f in m["files"] if f["submitter"] == s["id"]]
    if files:
        print(" ".join(shlex.quote(a) for a in [bin_, "--store"]) + ' "$store" ' + " ".join(
            shlex.quote(a) for a in ["ingest", "--source", source, "--submitter", s["id"],
                                     "--areas", ",".join(s["areas"])] + files) + " >/dev/null || [ $? -eq 2 ]")
PY
  for i in $(seq 1 "$runs"); do
    rm -rf "$work/ingest-store"
    measure "ingest $source" drdsurv bash "$work/ingest-$source.sh" "$work/ingest-store"
    note "ingest $source run $i: $(last_measure)"
  done
done

# 1b. The 10M-row TOP file on its own, and DuckDB's plain copy of the same file.
areas=$(tail -n +2 reference/partnerships_2021.csv | cut -d, -f1 | paste -sd, -)
for i in $(seq 1 "$runs"); do
  rm -rf "$work/top-store"
  measure "ingest TOP file ($rows rows)" drdsurv "$bin" --store "$work/top-store" ingest --source top \
    --submitter bench-top --areas "$areas" "$csv"
  note "ingest TOP file run $i: $(last_measure)"
  rm -f "$work/top-duckdb.parquet"
  measure "ingest TOP file ($rows rows)" duckdb python3 -c "
import duckdb, sys
duckdb.sql(\"COPY (SELECT * FROM read_csv('$csv')) TO '$work/top-duckdb.parquet' (FORMAT parquet, COMPRESSION zstd)\")"
  note "DuckDB copy run $i: $(last_measure)"
done
rm -rf "$work/top-store" "$work/top-duckdb.parquet"

# 2. national_quarterly for the latest quarter over 10 years.
"$bin" --store "$store" run national_quarterly --from "$period" --to "$period" >/dev/null   # warm-up
for i in $(seq 1 "$runs"); do
  measure "national_quarterly, 10 years" drdsurv "$bin" --store "$store" run national_quarterly --from "$period" --to "$period"
  note "national_quarterly run $i: $(last_measure)"
done

# 3. Publish the last run once, then render every report.
"$bin" --store "$store" publish --period "$period" >/dev/null
for i in $(seq 1 "$runs"); do
  measure "render 152 reports" drdsurv "$bin" --store "$store" report --period "$period"
  note "report run $i: $(last_measure)"
done

# 4. The core indicator queries, drdsurv and DuckDB, results compared.
python3 bench/duckdb_compare.py compare "$store" "$bin" "$runs" "$MEASUREMENTS"

# 5. Flight SQL: 20 clients for 30 s, $runs times, on the national store: with the client that
#    keeps sending a query over the memory limit (issue 8's check), then the 20 clients alone.
for hog in 1 0; do
  step="flight 20 clients"; [ "$hog" = 0 ] && step="flight 20 clients, no hog"
  for i in $(seq 1 "$runs"); do
    HOG=$hog STORE="$store" OUT="$work/flight-$hog-$i.txt" DRDSURV_BIN="$bin" BENCH_DIR="$work" bash bench/flight_load.sh >/dev/null
    python3 - "$work/flight-$hog-$i.txt" "$step" >> "$MEASUREMENTS" <<'PY'
import json, re, sys
t = open(sys.argv[1]).read()
p = lambda side: [float(x) for x in re.search(side + r" latency ms: p50 ([\d.]+)\s+p95 ([\d.]+)\s+p99 ([\d.]+)", t).groups()]
q = re.search(r"dashboard queries: (\d+) \(([\d.]+)/s\).*errors (\d+)", t)
cpu = re.search(r"server CPU during the run: ([\d.]+) s", t)
print(json.dumps({"step": sys.argv[2], "tool": "drdsurv", "server_ms": p("server-side"),
                  "client_ms": p("client-side"), "queries": int(q.group(1)), "per_s": float(q.group(2)),
                  "errors": int(q.group(3)), "hog": re.search(r"memory-limit query alongside: (.*)", t).group(1),
                  "server_cpu_s": float(cpu.group(1)) if cpu else None}))
PY
    note "$step run $i: $(tail -1 "$MEASUREMENTS")"
  done
done

python3 bench/summary.py "$MEASUREMENTS" "$bin" | tee bench/results/national.txt
