#!/usr/bin/env python3
"""The table of bench/all.sh: medians, ranges, drdsurv/DuckDB ratios and the issue 10 targets.

    summary.py MEASUREMENTS.jsonl DRDSURV_BIN

Reads the JSON lines bench/all.sh and bench/duckdb_compare.py wrote, prints the table (it is
also written to bench/results/national.txt by all.sh). A ratio is drdsurv's median over
DuckDB's median, measured in the same run on the same files.
"""
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone

GB = 1024 * 1024  # KiB in a GiB


def med(xs):
    return statistics.median(xs)


def span(xs, fmt):
    return f"{fmt(med(xs))} ({fmt(min(xs))}-{fmt(max(xs))})"


def secs(x):
    return f"{x:.3f}" if x < 1 else f"{x:.1f}"


def mib(x):
    return f"{x / 1024:.0f}"


def main(path, bin_):
    lines = [json.loads(line) for line in open(path) if line.strip()]
    checks = [m["check"] for m in lines if "check" in m]
    by = {}
    for m in lines:
        if "step" in m:
            by.setdefault((m["step"], m["tool"]), []).append(m)
    version = subprocess.run([bin_, "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# bench/all.sh: {version} at {commit}, {os.cpu_count()} cores, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; national synthetic data, 10 years")
    print()
    print("| Step | drdsurv wall s, median (min-max) | drdsurv peak RSS MiB | DuckDB wall s | DuckDB peak RSS MiB | ratio | target | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    steps = []
    for (step, tool) in by:
        if step not in steps:
            steps.append(step)
    for step in steps:
        d = by.get((step, "drdsurv"), [])
        if not d:
            continue
        k = by.get((step, "duckdb"), [])
        if step.startswith("flight"):
            continue
        dw = [m["wall_s"] for m in d]
        dr = [m["rss_kib"] for m in d]
        kw = [m["wall_s"] for m in k]
        kr = [m["rss_kib"] for m in k]
        ratio = med(dw) / med(kw) if k else None
        target, ok = target_for(step, d, ratio)
        print(f"| {step} | {span(dw, secs)} | {span(dr, mib)} | "
              f"{span(kw, secs) if k else ''} | {span(kr, mib) if k else ''} | "
              f"{f'{ratio:.2f}x' if ratio else ''} | {target} | {ok} |")
        if step.startswith("query"):
            de = [m["engine_s"] for m in d]
            ke = [m["engine_s"] for m in k]
            listing = [m["listing_s"] for m in k]
            r = med(de) / med(ke)
            print(f"| {step}, engine time only | {span(de, secs)} | | {span(ke, secs)} (+ listing {secs(med(listing))}) | | "
                  f"{r:.2f}x | <= 1.0x | {'met' if r <= 1.0 else 'NOT MET'} |")
    flights = [(step, by[(step, "drdsurv")]) for step in steps
               if step.startswith("flight") and (step, "drdsurv") in by]
    for step, f in flights:
        label = "Flight SQL, 20 clients" + (", no memory-limit client" if "no hog" in step else "")
        sp95 = [m["server_ms"][1] for m in f]
        cp95 = [m["client_ms"][1] for m in f]
        rate = [m["per_s"] for m in f]
        print(f"| {label}, server-side p95 ms | {span(sp95, lambda x: f'{x:.0f}')} | | | | | < 250 | "
              f"{'met' if med(sp95) < 250 else 'NOT MET'} |")
        print(f"| {label}, client-side p95 ms ({span(rate, lambda x: f'{x:.1f}')} queries/s) | "
              f"{span(cp95, lambda x: f'{x:.0f}')} | | | | | < 250 | "
              f"{'met' if med(cp95) < 250 else 'NOT MET'} |")
    for step, f in flights:
        print()
        for i, m in enumerate(f, 1):
            cpu = m.get("server_cpu_s")
            per_q = f", server CPU {cpu:.1f} s ({1000 * cpu / m['queries']:.1f} ms per query)" if cpu else ""
            print(f"{step} run {i}: {m['queries']} queries ({m['per_s']}/s), errors {m['errors']}, "
                  f"server p50/p95/p99 {m['server_ms']} ms, client {m['client_ms']} ms{per_q}; "
                  f"memory-limit query: {m['hog']}")
    if checks:
        print()
        for c in checks:
            print(c)


def target_for(step, d, ratio):
    rss = med([m["rss_kib"] for m in d])
    wall = med([m["wall_s"] for m in d])
    if step.startswith("ingest TOP file"):
        ok = ratio <= 1.0 and rss <= GB
        floor = ratio <= 1.5 and rss <= GB
        return "<= 1.0x (floor 1.5x), <= 1 GB", "met" if ok else ("floor met" if floor else "NOT MET")
    if step.startswith("ingest"):
        return "<= 1 GB", "met" if rss <= GB else "NOT MET"
    if step.startswith("national_quarterly"):
        return "<= 60 s, <= 2 GB", "met" if wall <= 60 and rss <= 2 * GB else "NOT MET"
    if step.startswith("render"):
        return "<= 10 s, <= 2 GB", "met" if wall <= 10 and rss <= 2 * GB else "NOT MET"
    if step.startswith("query"):
        return "<= 1.0x, <= 2 GB", "met" if ratio <= 1.0 and rss <= 2 * GB else "NOT MET"
    return "", ""


if __name__ == "__main__":
    main(*sys.argv[1:3])
