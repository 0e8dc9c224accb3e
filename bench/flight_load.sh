#!/usr/bin/env bash
# Load test of the Flight SQL service (issue 8), release build: the demo store (small scale,
# the whole job, so marts and a release exist), `drdsurv serve --flight` with a 1G per-query
# memory limit, then bench/flight_load.py: 20 ADBC clients (4 processes x 5 threads) run the
# partnership-dashboard query as partnership:$AREA for $SECONDS s (default 30) while one more
# client keeps sending a query over the memory limit (not with HOG=0). Prints the server's CPU
# seconds during the run. Results: bench/results/flight_load.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"
python3 -c "import adbc_driver_flightsql.dbapi" 2>/dev/null || python3 -m pip install --quiet adbc-driver-flightsql adbc-driver-manager pyarrow
if [ -z "${DRDSURV_BIN:-}" ]; then cargo build --release -q -p drdsurv; fi
bin="${DRDSURV_BIN:-$CARGO_TARGET_DIR/release/drdsurv}"
work="${BENCH_DIR:-/tmp/drdsurv-bench}/flight"
area="${AREA:-E08000025}"
# STORE: an existing store with marts and a release (bench/all.sh passes the national one).
store="${STORE:-$work/store}"
out="${OUT:-bench/results/flight_load.txt}"
mkdir -p "$work" bench/results
[ -d "$store/published" ] || RUST_LOG=warn "$bin" --store "$store" demo >/dev/null
rm -rf "$store/audit"
ptok="bench-partnership-$RANDOM$RANDOM"; ntok="bench-national-$RANDOM$RANDOM"
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat > "$work/drdsurv.toml" <<TOML
[server]
memory_limit = "1G"
query_timeout_seconds = 60
refresh_seconds = 300
audit_flush_ms = 500

[[server.users]]
name = "bench-partnership"
role = "partnership:$area"
token_sha256 = "$(sha "$ptok")"

[[server.users]]
name = "bench-national"
role = "national"
token_sha256 = "$(sha "$ntok")"
TOML
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn "$bin" --store "$store" --config "$work/drdsurv.toml" serve --flight "127.0.0.1:$port" >"$work/serve.out" 2>"$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q serving "$work/serve.out" && break; sleep 0.2; done
# One warm-up query loads the catalog before the clock starts.
python3 - "grpc://127.0.0.1:$port" "$ntok" <<'PY'
import sys, adbc_driver_flightsql.dbapi as f
from adbc_driver_flightsql import DatabaseOptions
c = f.connect(sys.argv[1], db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer " + sys.argv[2]}, autocommit=True)
cur = c.cursor(); cur.execute("SELECT count(*) FROM marts.benchmarks"); print("warm-up rows:", cur.fetchone()[0])
PY
# The server's CPU seconds (user + system, from /proc) before and after the load.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$server/stat"; }
{
  echo "# bench/flight_load.sh on $(nproc) cores, $(date -u +%Y-%m-%d), store $store, binary $bin"
  before=$(cpu_s)
  python3 bench/flight_load.py "grpc://127.0.0.1:$port" "$ptok" "$ntok" "$area" "${SECONDS_RUN:-30}"
  after=$(cpu_s)
  echo "server CPU during the run: $(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }') s"
  rss=$(ps -o rss= -p $server | awk '{printf "%.0f MiB", $1/1024}')
  echo "server RSS after the run: $rss"
} | tee "$out"
