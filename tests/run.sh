#!/usr/bin/env bash
# Runs every drdsurv test. Installs what the tests need beyond cargo first, only if missing:
#   - Python 3 with pandas and openpyxl (independent check of generated extracts), and
#     pyarrow and deltalake (independent read-back of the Delta tables ingest writes);
#   - moto[server]: a real S3-compatible server the storage and worker tests start on a free
#     loopback port (moto_server);
#   - scipy and statsmodels: the reference values drd-stats is checked against, regenerated
#     here before the tests (tests/python/stats_reference.py, alarm_rate_reference.py), and
#     scipy's linprog for the attack on secondary suppression;
#   - R with the `surveillance` package (Debian r-base-core, r-cran-surveillance): the
#     reference for the alert methods, regenerated here (tests/r/alerts_reference.R);
#   - Debian chromium, and npm playwright-core and axe-core (tests/browser): the reports are
#     opened in a real headless browser and checked for accessibility;
#   - adbc-driver-flightsql (with adbc-driver-manager) and pyarrow.flight: real Flight SQL
#     clients for the query service's role, limit and audit tests;
#   - prometheus-client: its parser reads `serve --http`'s /metrics;
#   - kubernetes-validate and check-jsonschema (pip), kubectl (for its kustomize) and
#     systemd-analyze (Debian systemd): deploy/validate.sh checks every deploy file with them,
#     after the tests (it needs the built binary).
# Safe to run again and again; CI (.ci/run) calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drdsurv-target}"

if ! command -v python3 >/dev/null 2>&1; then
  echo "tests/run.sh: installing python3 (apt-get)"
  apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
fi
if ! python3 -c "import pandas, openpyxl, pyarrow, deltalake, moto.server, flask, scipy, statsmodels" >/dev/null 2>&1; then
  echo "tests/run.sh: installing pandas, openpyxl, pyarrow, deltalake, moto[server], scipy and statsmodels (pip)"
  python3 -m pip install --quiet --disable-pip-version-check pandas openpyxl pyarrow deltalake 'moto[server]' scipy statsmodels
fi

if ! Rscript -e 'suppressMessages(library(surveillance))' >/dev/null 2>&1; then
  echo "tests/run.sh: installing R and r-cran-surveillance (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends r-base-core r-cran-surveillance >/dev/null
fi

# The report checks: Debian's Chromium (never a browser download), driven by playwright-core,
# with axe-core, both from npm (tests/browser/package.json, exact versions).
# Each only when missing: a machine whose Node.js comes from NodeSource already has npm, and
# Debian's npm package conflicts with that nodejs.
if ! command -v chromium >/dev/null 2>&1; then
  echo "tests/run.sh: installing chromium (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "tests/run.sh: installing nodejs and npm (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  echo "tests/run.sh: installing playwright-core and axe-core (npm)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

# Flight SQL clients: ADBC's Flight SQL driver (with pyarrow) and pyarrow.flight.
if ! python3 -c "import adbc_driver_flightsql.dbapi, adbc_driver_manager, pyarrow.flight" >/dev/null 2>&1; then
  echo "tests/run.sh: installing adbc-driver-flightsql and adbc-driver-manager (pip)"
  python3 -m pip install --quiet --disable-pip-version-check adbc-driver-flightsql adbc-driver-manager pyarrow
fi

if ! python3 -c "import prometheus_client, kubernetes_validate, check_jsonschema" >/dev/null 2>&1; then
  echo "tests/run.sh: installing prometheus-client, kubernetes-validate and check-jsonschema (pip)"
  python3 -m pip install --quiet --disable-pip-version-check prometheus-client kubernetes-validate check-jsonschema
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "tests/run.sh: installing kubectl (apt-get kubernetes-client)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "tests/run.sh: installing systemd-analyze (apt-get systemd)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

python3 tests/python/stats_reference.py crates/drd-stats/tests/fixtures/reference.json
python3 tests/python/alarm_rate_reference.py crates/drd-stats/tests/fixtures/alarm_rate.json
Rscript tests/r/alerts_reference.R crates/drd-stats/tests/fixtures/alerts_reference.json

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc "$@"
bash deploy/validate.sh "$CARGO_TARGET_DIR/debug/drdsurv"
