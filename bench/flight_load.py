"""Load test for `drdsurv serve --flight` (issue 8): 20 concurrent ADBC clients (4 processes x 5
threads) run the partnership-dashboard query as a `partnership:<code>` role for 30 seconds.
Meanwhile one more client keeps sending a query that exceeds the per-query memory limit; each
must fail on its own while the dashboard queries carry on.

    flight_load.py URI PARTNERSHIP_TOKEN NATIONAL_TOKEN AREA [SECONDS]

Prints client-side throughput and latency percentiles, then the server-side ones from the
audit table (ops.audit, read as national), and the error counts. With HOG=0 in the environment
the memory-limit client is left out: the 20 dashboard clients alone (issue 10's latency figure).
"""

import json
import multiprocessing as mp
import os
import sys
import threading
import time

import adbc_driver_flightsql.dbapi as flightsql
from adbc_driver_flightsql import DatabaseOptions

PROCESSES, THREADS = 4, 5

DASHBOARD = """
WITH latest AS (SELECT max(period) AS period FROM marts.benchmarks WHERE area_code = '{area}')
SELECT b.indicator_id, b.indicator_name, b.period, b.sex, b.age_band, b.substance_group,
       b.value, b.lower95, b.upper95, b.comparison,
       e.value AS england_value, r.value AS region_value
FROM marts.benchmarks b
JOIN latest l ON b.period = l.period
LEFT JOIN marts.benchmarks e
  ON e.area_type = 'england' AND e.indicator_id = b.indicator_id AND e.period = b.period
 AND e.sex = b.sex AND e.age_band = b.age_band AND e.substance_group = b.substance_group
 AND e.basis IS NOT DISTINCT FROM b.basis
LEFT JOIN marts.benchmarks r
  ON r.area_type = 'region' AND r.area_code = b.region_code AND r.indicator_id = b.indicator_id
 AND r.period = b.period AND r.sex = b.sex AND r.age_band = b.age_band
 AND r.substance_group = b.substance_group AND r.basis IS NOT DISTINCT FROM b.basis
WHERE b.area_code = '{area}'
ORDER BY b.indicator_id, b.sex, b.age_band, b.substance_group
"""

# A hash aggregate over 5 million distinct 2 kB keys: about 10 GB of state, far over the 1G
# limit. (Grouping generate_series' own ordered output would stream in constant memory.)
HOG = ("SELECT repeat('x', 2000) || v AS s, count(*) FROM generate_series(1, 5000000) t(v) "
       "GROUP BY s")


def connect(uri, token):
    return flightsql.connect(
        uri, db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer " + token},
        autocommit=True)


def worker(uri, token, sql, seconds, out):
    lat, errors, rows = [], [], None
    conn = connect(uri, token)
    end = time.time() + seconds
    while time.time() < end:
        t = time.perf_counter()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            n = cur.fetch_arrow_table().num_rows
            cur.close()
            rows = n if rows is None else rows
            if n != rows:
                errors.append(f"row count changed: {n} != {rows}")
        except Exception as e:
            errors.append(str(e)[:200])
        lat.append(time.perf_counter() - t)
    conn.close()
    out.append((lat, errors, rows))


def process(uri, token, sql, seconds, q):
    out = []
    ts = [threading.Thread(target=worker, args=(uri, token, sql, seconds, out)) for _ in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    q.put(out)


def hog(uri, token, seconds, q):
    conn = connect(uri, token)
    end = time.time() + seconds
    failed, ok, other = 0, 0, []
    while time.time() < end:
        try:
            cur = conn.cursor()
            cur.execute(HOG)
            cur.fetch_arrow_table()
            ok += 1
        except Exception as e:
            if "memory limit" in str(e):
                failed += 1
            else:
                other.append(str(e)[:200])
        time.sleep(1.0)  # one user retrying a bad query, not a flood
    conn.close()
    q.put({"hog_failed_on_memory": failed, "hog_succeeded": ok, "hog_other_errors": other})


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    uri, ptoken, ntoken, area = sys.argv[1:5]
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
    sql = DASHBOARD.format(area=area)
    started = time.time()
    q = mp.Queue()
    procs = [mp.Process(target=process, args=(uri, ptoken, sql, seconds, q)) for _ in range(PROCESSES)]
    with_hog = os.environ.get("HOG", "1") != "0"
    if with_hog:
        procs.append(mp.Process(target=hog, args=(uri, ntoken, seconds, q)))
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.time() - started
    lat, errors, rowsets, hogs = [], [], set(), {}
    for r in results:
        if isinstance(r, dict):
            hogs = r
            continue
        for l, e, n in r:
            lat += l
            errors += e
            rowsets.add(n)
    ms = lambda s: round(s * 1000, 1)
    print(f"clients: {PROCESSES * THREADS} ADBC connections in {PROCESSES} processes, {seconds:.0f} s")
    print(f"dashboard queries: {len(lat)} ({len(lat) / seconds:.1f}/s), rows per answer {sorted(rowsets)}, errors {len(errors)}")
    print(f"client-side latency ms: p50 {ms(pct(lat, 50))}  p95 {ms(pct(lat, 95))}  p99 {ms(pct(lat, 99))}  max {ms(max(lat))}")
    print(f"memory-limit query alongside: {json.dumps(hogs) if with_hog else 'none'}")
    time.sleep(2)  # the audit is flushed every audit_flush_ms
    conn = connect(uri, ntoken)
    cur = conn.cursor()
    cur.execute("SELECT duration_us, outcome, sql FROM ops.audit "
                "WHERE started_at >= to_timestamp_seconds(%d)" % int(started - 1))
    t = cur.fetch_arrow_table().to_pylist()
    conn.close()
    server = [r["duration_us"] / 1e6 for r in t if r["sql"] == sql and r["outcome"] == "ok"]
    not_ok = [r["outcome"] for r in t if r["sql"] == sql and r["outcome"] != "ok"]
    print(f"server-side (audit) dashboard queries: {len(server)}, not ok {len(not_ok)}")
    print(f"server-side latency ms: p50 {ms(pct(server, 50))}  p95 {ms(pct(server, 95))}  p99 {ms(pct(server, 99))}")
    if errors:
        print("first errors:", errors[:3])
    sys.exit(1 if errors or not_ok or hogs.get("hog_succeeded") else 0)


if __name__ == "__main__":
    main()
