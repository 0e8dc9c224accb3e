#!/usr/bin/env python3
"""Independent checks of drdsurv's published files and reports (issue 7 acceptance).

usage:
  report_checks.py scan STORE        disclosure scan of every file under published/ and reports/
  report_checks.py agree STORE PERIOD AREA...
                                      the HTML indicator tables equal indicators.csv
  report_checks.py spine STORE PERIOD AREA...
                                      spine-chart marks lie in the order their values imply

The scan reads Parquet with pyarrow, CSV with the csv module, JSON with json and HTML with
html.parser, and checks the published values against the run's unrounded counts, read from the
Delta table versions each release's manifest names (delta-rs), so it does not trust drdsurv's
own view of what it withheld. Prints a summary line; exits 1 with the offending file and row.
"""
import csv
import html.parser
import json
import math
import os
import sys

import pyarrow.parquet as pq
from deltalake import DeltaTable

SMALL = range(1, 8)
NOTES = {"suppressed small count", "too few events for a rate", "unreliable: 10-19 events",
         "provisional", "no data"}


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def num(v):
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)):
        return None if (isinstance(v, float) and math.isnan(v)) else float(v)
    return float(v)


def small(v):
    return v is not None and 1 <= v <= 7 and float(v).is_integer()


def rows_of(path):
    if path.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return None


def key(r, point=False):
    if point:  # trend rows: one per indicator, area and point
        return (r["indicator_id"], r["area_code"], int(r["point"]))
    return (r["indicator_id"], r.get("basis") or "", r["area_code"], r.get("sex") or "persons",
            r.get("age_band") or "all", r.get("substance_group") or "all")


def truth(store, manifest):
    """The run's unrounded rows, keyed as the published ones."""
    out = {}
    for model, is_trend in (("benchmarks", False), ("trends", True)):
        v = manifest["marts"].get(model)
        if v is None:
            continue
        t = DeltaTable(os.path.join(store, "marts", model), version=v).to_pyarrow_table()
        out[model] = {key(r, is_trend): r for r in t.to_pylist()}
    return out


class CountCells(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.depth = 0
        self.cells = []
        self.buf = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.buf is not None:
            self.depth += 1
        elif a.get("data-kind") == "count":
            self.buf = []
            self.depth = 1

    def handle_endtag(self, tag):
        if self.buf is not None:
            self.depth -= 1
            if self.depth == 0:
                self.cells.append("".join(self.buf).strip())
                self.buf = None

    def handle_data(self, data):
        if self.buf is not None:
            self.buf.append(data)


def check_indicator_rows(path, rows, t, release):
    n = 0
    for i, r in enumerate(rows):
        where = f"{path} row {i + 1} ({r['indicator_id']} {r['area_code']} {r.get('sex')} {r.get('age_band')} {r.get('substance_group')})"
        value = num(r.get("value"))
        if value is None and not r.get("note"):
            fail(f"{where}: empty value without a note")
        if r.get("note") and r["note"] not in NOTES:
            fail(f"{where}: note {r['note']!r} is not one of the documented notes")
        if r["area_type"] == "england":
            continue
        numerator, denominator = num(r.get("numerator")), num(r.get("denominator"))
        if small(numerator):
            fail(f"{where}: published numerator {numerator} is 1-7")
        if r["unit"] == "%" and small(denominator):
            fail(f"{where}: published person denominator {denominator} is 1-7")
        src = t.get(key(r, "point" in r))
        if src is None:
            fail(f"{where}: no such row in the run's table")
        true_num, true_den = num(src.get("numerator")), num(src.get("denominator"))
        visible = [num(r.get(c)) for c in ("value", "lower95", "upper95", "lower998", "upper998") if c in r]
        if any(v is not None for v in visible):
            if small(true_num):
                fail(f"{where}: a value is published from a numerator of {true_num}")
            if r["unit"] == "%" and small(true_den):
                fail(f"{where}: a share is published from a denominator of {true_den}")
        if small(true_num) and numerator is not None:
            fail(f"{where}: true numerator {true_num} published as {numerator}")
        n += 1
    return n


def scan(store):
    checked = {"files": 0, "rows": 0, "html_counts": 0}
    manifests = {}
    pub = os.path.join(store, "published")
    for rel in sorted(os.listdir(pub)):
        m = os.path.join(pub, rel, "manifest.json")
        if os.path.exists(m):
            manifests[rel] = json.load(open(m))
    if not manifests:
        fail("no release under published/")
    truths = {rid: truth(store, m) for rid, m in manifests.items()}
    for root, _, files in os.walk(store):
        relroot = os.path.relpath(root, store)
        top = relroot.split(os.sep)[0]
        if top not in ("published", "reports"):
            continue
        for f in sorted(files):
            path = os.path.join(root, f)
            if f.endswith(".html"):
                p = CountCells()
                p.feed(open(path, encoding="utf-8").read())
                for c in p.cells:
                    v = c.replace(",", "")
                    if v not in ("–", "") and small(float(v)):
                        fail(f"{path}: a count cell shows {c}")
                checked["html_counts"] += len(p.cells)
                checked["files"] += 1
                continue
            if not f.endswith((".csv", ".json", ".parquet")) or f == "manifest.json":
                continue
            rows = rows_of(path)
            checked["files"] += 1
            if not rows:
                continue
            name = f.rsplit(".", 1)[0]
            rid = rows[0].get("release_id")
            if name in ("indicators", "trends"):
                t = truths[rid]["benchmarks" if name == "indicators" else "trends"]
                checked["rows"] += check_indicator_rows(path, rows, t, rid)
            elif name == "alerts":
                for i, r in enumerate(rows):
                    if small(num(r.get("observed"))):
                        fail(f"{path} row {i + 1}: weekly regional count {r['observed']} is 1-7")
                    checked["rows"] += 1
    print(json.dumps({"scan": "ok", "releases": sorted(manifests), **checked}))


class Tables(html.parser.HTMLParser):
    """Rows of the indicator tables: data-key -> {data-col: text}."""

    def __init__(self):
        super().__init__()
        self.rows = {}
        self.row = None
        self.col = None
        self.buf = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-key" in a:
            self.row = {}
            self.rows[a["data-key"]] = self.row
        elif self.row is not None and "data-col" in a:
            self.col = a["data-col"]
            self.buf = []
        if self.col and a.get("class") == "unit":
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.col is not None:
            self.row[self.col] = "".join(self.buf).strip()
            self.col = None
        elif tag == "span" and self.skip:
            self.skip -= 1
        elif tag == "tr":
            self.row = None

    def handle_data(self, data):
        if self.col is not None and not self.skip:
            self.buf.append(data)


def one_dp(v):
    return "–" if v is None else f"{v:.1f}"


def count_text(v):
    return "–" if v is None else f"{round(v):,}"


def agree(store, period, areas):
    total = 0
    suppressed_seen = 0
    for area in areas:
        d = os.path.join(store, "reports", period, area)
        p = Tables()
        p.feed(open(os.path.join(d, "index.html"), encoding="utf-8").read())
        with open(os.path.join(d, "indicators.csv"), newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["area_code"] == area]
        if len(rows) != len(p.rows):
            fail(f"{area}: {len(rows)} CSV rows but {len(p.rows)} HTML rows")
        for r in rows:
            k = "|".join([r["indicator_id"], r["basis"], r["sex"], r["age_band"], r["substance_group"]])
            h = p.rows.get(k)
            if h is None:
                fail(f"{area}: CSV row {k} missing from the HTML")
            lo, hi = num(r["lower95"]), num(r["upper95"])
            want = {
                "numerator": count_text(num(r["numerator"])),
                "value": one_dp(num(r["value"])),
                "interval": "–" if lo is None or hi is None else f"{lo:.1f} to {hi:.1f}",
                "comparison": r["comparison"],
                "note": r["note"],
                "period": r["period"],
                "england_value": one_dp(num(r["england_value"])),
                "quintile": r["quintile"] or "–",
                "trend": r["trend"],
            }
            for col, w in want.items():
                if h.get(col) != w:
                    fail(f"{area} {k}: HTML {col} {h.get(col)!r}, CSV gives {w!r}")
            if r["note"] == "suppressed small count":
                suppressed_seen += 1
            total += 1
    print(json.dumps({"agree": "ok", "areas": areas, "rows": total, "suppressed_rows": suppressed_seen}))


class Spines(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.charts = []
        self.cur = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and a.get("class") == "spine":
            self.cur = {}
            self.charts.append(self.cur)
        elif self.cur is not None and "data-role" in a:
            role = a["data-role"]
            if role == "area":
                self.cur[role] = (float(a["data-value"]), float(a["cx"]))
            elif role in ("england", "min", "max"):
                self.cur[role] = (float(a["data-value"]), float(a["x1"]))

    def handle_endtag(self, tag):
        if tag == "svg":
            self.cur = None


def spine(store, period, areas):
    checked = 0
    for area in areas:
        p = Spines()
        p.feed(open(os.path.join(store, "reports", period, area, "index.html"), encoding="utf-8").read())
        for i, c in enumerate(p.charts):
            if not all(r in c for r in ("area", "england", "min", "max")):
                continue
            marks = sorted(c.values())
            xs = [x for _, x in marks]
            vals = [v for v, _ in marks]
            inc = all(a <= b + 1e-6 for a, b in zip(xs, xs[1:]))
            dec = all(a >= b - 1e-6 for a, b in zip(xs, xs[1:]))
            if not (inc or dec):
                fail(f"{area} spine {i}: marks out of order: {marks}")
            (av, ax), (ev, ex) = c["area"], c["england"]
            if av > ev and not (min(ex, c["max"][1]) - 1e-6 <= ax <= max(ex, c["max"][1]) + 1e-6):
                fail(f"{area} spine {i}: area {av} above England {ev} but not between England and the maximum")
            if av < ev and not (min(ex, c["min"][1]) - 1e-6 <= ax <= max(ex, c["min"][1]) + 1e-6):
                fail(f"{area} spine {i}: area {av} below England {ev} but not between England and the minimum")
            if vals[0] != vals[-1] and xs[0] == xs[-1]:
                fail(f"{area} spine {i}: distinct values drawn at one place")
            checked += 1
    if checked == 0:
        fail("no spine chart with all four marks")
    print(json.dumps({"spine": "ok", "charts": checked}))


def _main():
    cmd = sys.argv[1]
    if cmd == "scan":
        scan(sys.argv[2])
    elif cmd == "agree":
        agree(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "spine":
        spine(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        fail(f"unknown command {cmd}")


if __name__ == "__main__":
    from native_exit import run_and_exit
    run_and_exit(_main)
