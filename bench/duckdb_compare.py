#!/usr/bin/env python3
"""The core indicator queries, side by side in drdsurv and DuckDB (issue 10).

    duckdb_compare.py compare STORE DRDSURV_BIN RUNS MEASUREMENTS.jsonl
    duckdb_compare.py duckdb STORE QUERY.sql OUT.json      (the DuckDB side, one process)

`compare` runs each query of bench/queries/*.sql RUNS times in each engine, each run a fresh
process under /usr/bin/time -v, on the same data:
- drdsurv: `drdsurv sql --format json -- SQL` over the store (Delta tables at the versions the
  query service reads). The engine's own time is the `drdsurv_query_duration_seconds` of its
  JSON log line.
- DuckDB: this script's `duckdb` mode. Python `deltalake` lists the Parquet files of each
  table's current Delta snapshot, DuckDB gets one view per table over exactly those files
  (same schema-qualified names), then runs the same SQL text. The engine's own time is
  execute plus fetch; the listing is timed apart.

Then every row is compared: text and integers exactly, doubles to 1e-9 relative. A mismatch
fails the script. As a check that the portable SQL computes the real indicators, the results
are also compared with the pipeline's own marts (ind_death_rates, ind_treatment,
nsp_coverage) for the run period 2025Q4.

Each run appends one JSON line per (query, engine) to MEASUREMENTS.jsonl for bench/summary.py.
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TABLES = {
    "marts.mart_deaths": "marts/mart_deaths",
    "marts.mart_population": "marts/mart_population",
    "marts.mart_episodes": "marts/mart_episodes",
    "marts.mart_nsp": "marts/mart_nsp",
    "reference.esp2013": "reference/esp2013",
    "reference.pwid": "reference/pwid",
}


def duckdb_side(store, query_file, out):
    t0 = time.perf_counter()
    import duckdb
    from deltalake import DeltaTable

    sql = Path(query_file).read_text()
    t1 = time.perf_counter()
    con = duckdb.connect()
    for name, rel in TABLES.items():
        if name not in sql:
            continue
        files = DeltaTable(os.path.join(store, rel)).file_uris()
        schema, table = name.split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE VIEW {schema}.{table} AS SELECT * FROM read_parquet([{listed}])")
    t2 = time.perf_counter()
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    t3 = time.perf_counter()
    Path(out).write_text(json.dumps([dict(zip(cols, [plain(v) for v in r])) for r in rows]))
    print(json.dumps({"import_s": t1 - t0, "listing_s": t2 - t1, "query_s": t3 - t2, "rows": len(rows)}))
    sys.stdout.flush()
    # delta-rs's native runtime can abort at interpreter shutdown; the answer is written.
    os._exit(0)


def plain(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def time_v(report):
    """Wall seconds and peak RSS KiB from GNU time's -v report."""
    wall = re.search(r"Elapsed \(wall clock\) time.*: (.+)", report).group(1).strip()
    parts = [float(p) for p in wall.split(":")]
    secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1))
    return secs, rss


def run_timed(cmd, env=None):
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        p = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name] + cmd, capture_output=True, text=True, env=env)
        report = Path(tf.name).read_text()
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    wall, rss = time_v(report)
    return p, wall, rss


def drdsurv_sql(bin_, store, sql):
    env = dict(os.environ, RUST_LOG="info")
    p, wall, rss = run_timed([bin_, "--store", store, "--log-format", "json", "sql", "--format", "json", "--", sql], env)
    engine = None
    for line in p.stderr.splitlines():
        if '"drdsurv_query_duration_seconds"' in line or "histogram.drdsurv_query_duration_seconds" in line:
            engine = json.loads(line)["histogram.drdsurv_query_duration_seconds"]
    return json.loads(p.stdout), wall, rss, engine


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return a == b


def compare_rows(name, a, b, what):
    if len(a) != len(b):
        sys.exit(f"{name}: {what}: {len(a)} rows against {len(b)}")
    worst = 0.0
    for i, (x, y) in enumerate(zip(a, b)):
        # drdsurv's JSON leaves out null fields; DuckDB's rows carry every column.
        if not set(x) <= set(y):
            sys.exit(f"{name}: {what}: row {i} columns {list(x)} against {list(y)}")
        x = {k: x.get(k) for k in y}
        for k in x:
            if not same(x[k], y[k]):
                sys.exit(f"{name}: {what}: row {i}, {k}: {x[k]!r} against {y[k]!r}")
            if isinstance(x[k], float) and isinstance(y[k], float) and x[k] != 0:
                worst = max(worst, abs(x[k] - y[k]) / abs(x[k]))
    return worst


# The pipeline's own figures for the run period 2025Q4, keyed by partnership, to show the
# portable queries compute the published indicators (not only the same thing twice).
PIPELINE = {
    "dsr_drug_misuse": (
        "SELECT area_code, value FROM marts.ind_death_rates WHERE which = 'current' AND basis = 'registration' "
        "AND sex = 'persons' AND age_band = 'all' AND indicator_id = 'drug_misuse_dsr' AND area_type = 'partnership'",
        lambda r: (r["area_code"], r["dsr_per_100k"]),
    ),
    "top_outcomes": (
        "SELECT area_code, numerator AS value FROM marts.ind_treatment WHERE which = 'current' "
        "AND indicator_id = 'top_abstinent_opiate_crack' AND area_type = 'partnership'",
        lambda r: (r["partnership_code"], float(r["abstinent"])),
    ),
    "nsp_coverage": (
        "SELECT area_code, syringes_per_pwid AS value FROM marts.nsp_coverage WHERE which = 'current' "
        "AND area_type = 'partnership'",
        lambda r: (r["partnership_code"], r["sets_per_pwid"]),
    ),
}


def compare(store, bin_, runs, measurements):
    runs = int(runs)
    out = open(measurements, "a")
    for qf in sorted((BENCH / "queries").glob("*.sql")):
        name = qf.stem
        sql = qf.read_text()
        results = {}
        for i in range(runs):
            rows, wall, rss, engine = drdsurv_sql(bin_, store, sql)
            results["drdsurv"] = rows
            out.write(json.dumps({"step": f"query {name}", "tool": "drdsurv", "wall_s": wall, "rss_kib": rss, "engine_s": engine}) + "\n")
            with tempfile.NamedTemporaryFile("r", suffix=".json") as res:
                p, wall, rss = run_timed([sys.executable, __file__, "duckdb", store, str(qf), res.name])
                results["duckdb"] = json.loads(Path(res.name).read_text())
            inner = json.loads(p.stdout.strip().splitlines()[-1])
            out.write(json.dumps({"step": f"query {name}", "tool": "duckdb", "wall_s": wall, "rss_kib": rss,
                                  "engine_s": inner["query_s"], "listing_s": inner["listing_s"]}) + "\n")
            out.flush()
            print(f"{name} run {i + 1}: drdsurv engine {engine * 1000:.1f} ms; duckdb engine {inner['query_s'] * 1000:.1f} ms "
                  f"(+ listing {inner['listing_s'] * 1000:.0f} ms)", flush=True)
        worst = compare_rows(name, results["drdsurv"], results["duckdb"], "drdsurv against DuckDB")
        check_sql, key = PIPELINE[name]
        piped, _, _, _ = drdsurv_sql(bin_, store, check_sql)
        want = {r["area_code"]: r.get("value") for r in piped}
        got = dict(key(r) for r in results["duckdb"])
        # A partnership with no records (Isles of Scilly has no treatment episodes) has no row
        # in a query that groups records; the pipeline shows it as 0 or no value.
        missing = sorted((set(got) - set(want)) | {a for a in set(want) - set(got) if want[a] not in (0, None)})
        absent = set(want) - set(got)
        for a in absent:
            got[a] = want[a]
        if missing:
            sys.exit(f"{name}: partnerships differ from the pipeline's: {missing[:5]}")
        bad = [a for a in want if not same(want[a], got[a])]
        if bad:
            sys.exit(f"{name}: differs from the pipeline's indicator for {bad[:5]}: {[(want[a], got[a]) for a in bad[:3]]}")
        line = (f"{name}: {len(results['duckdb'])} rows equal in drdsurv and DuckDB (worst relative difference "
                f"{worst:.1e}); equal to the pipeline's indicator for all {len(want)} partnerships"
                + (f" ({len(absent)} without records, 0 or no value there)" if absent else ""))
        print(line, flush=True)
        out.write(json.dumps({"check": line}) + "\n")
    out.close()


if __name__ == "__main__":
    if sys.argv[1] == "duckdb":
        duckdb_side(*sys.argv[2:5])
    elif sys.argv[1] == "compare":
        compare(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
