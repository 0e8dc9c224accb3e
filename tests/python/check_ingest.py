#!/usr/bin/env python3
"""Independent check of `drdsurv ingest` over a generated dataset.

Reads the Delta tables with the Python `deltalake` package (not drdsurv's code) and compares
them with the generator's manifest and the receipts drdsurv printed:

* every file has a receipt; files the manifest marks as bad are rejected whole with that reason;
* every receipt reconciles (read = accepted + quarantined) and its row count equals the manifest's;
* quarantine holds exactly the planted faults: the same rows, reasons and columns, and nothing else;
* source tables hold exactly the accepted rows of each file;
* the revised coroner extract supersedes the earlier rows in the current view (formats.md rule),
  and the withdrawn case leaves it.

Usage: check_ingest.py GENERATED_DIR STORE_DIR RECEIPTS_JSONL
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable

problems = []


def fail(msg):
    problems.append(msg)


def read_tables(store, kind):
    frames = []
    base = Path(store) / kind
    if not base.exists():
        return pd.DataFrame()
    for src in sorted(base.iterdir()):
        for sub in sorted(src.iterdir()):
            if (sub / "_delta_log").is_dir():
                df = DeltaTable(str(sub)).to_pandas()
                df["_source"] = src.name
                df["_submitter"] = sub.name
                frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def main(gen, store, receipts_path):
    m = json.loads((Path(gen) / "manifest.json").read_text())
    receipts = [json.loads(l) for l in Path(receipts_path).read_text().splitlines() if l.strip()]
    by_file = {(r["source"], r["submitter"], r["file_name"]): r for r in receipts}
    quarantine = read_tables(store, "quarantine")
    sources = read_tables(store, "sources")
    stored_receipts = read_tables(store, "receipts")
    faults = defaultdict(set)
    for f in m["faults"]:
        if f["row"] is not None:
            col = None if f["reason"] == "duplicate_key_in_file" else f["column"]
            faults[f["file"]].add((f["row"], f["reason"], col))
    checked_rows = 0
    for rec in m["files"]:
        key = (rec["source"], rec["submitter"], Path(rec["path"]).name)
        r = by_file.get(key)
        if r is None:
            fail(f"{rec['path']}: no receipt")
            continue
        if rec.get("expect_rejected"):
            if r["status"] != "rejected" or r["reason"] != rec["expect_rejected"]:
                fail(f"{rec['path']}: expected rejection {rec['expect_rejected']}, got {r['status']} {r['reason']}: {r['error']}")
            if len(stored_receipts) and (stored_receipts["file_sha256"] == r["file_sha256"]).any():
                fail(f"{rec['path']}: rejected whole but a receipt row was stored")
            continue
        if r["status"] != "accepted":
            fail(f"{rec['path']}: status {r['status']} ({r['error']})")
            continue
        if r["rows_read"] != rec["rows"]:
            fail(f"{rec['path']}: receipt read {r['rows_read']} rows, manifest says {rec['rows']}")
        if r["rows_read"] != r["rows_accepted"] + r["rows_quarantined"]:
            fail(f"{rec['path']}: receipt does not reconcile: {r['rows_read']} != {r['rows_accepted']} + {r['rows_quarantined']}")
        sha = r["file_sha256"]
        q = quarantine[quarantine["file_sha256"] == sha] if len(quarantine) else quarantine
        got = set()
        for _, row in q.iterrows():
            col = None if row["reason"] == "duplicate_key_in_file" else row["column"]
            got.add((int(row["row_number"]), row["reason"], col))
        want = faults.get(rec["path"], set())
        missing = sorted(want - got)
        extra = sorted(got - want)
        if missing:
            fail(f"{rec['path']}: planted faults not quarantined as planted: {missing[:5]} (quarantined there: {sorted(g for g in got if g[0] in {x[0] for x in missing})[:5]})")
        if extra:
            msgs = q[q["row_number"].isin([e[0] for e in extra[:5]])][["row_number", "reason", "column", "message"]].values.tolist()
            fail(f"{rec['path']}: quarantined rows that were not planted: {extra[:5]} {msgs}")
        if len(q) != r["rows_quarantined"]:
            fail(f"{rec['path']}: {len(q)} quarantine rows stored, receipt says {r['rows_quarantined']}")
        s = sources[sources["file_sha256"] == sha] if len(sources) else sources
        if len(s) != r["rows_accepted"]:
            fail(f"{rec['path']}: {len(s)} source rows stored, receipt says {r['rows_accepted']}")
        checked_rows += r["rows_read"]
    # Stored receipts: exactly one per accepted file.
    if len(stored_receipts):
        counts = stored_receipts.groupby("file_sha256").size()
        if (counts != 1).any():
            fail(f"some files have more than one stored receipt: {counts[counts != 1].to_dict()}")
    # Current view of the revised coroner (formats.md): latest revision, then extract_date, then ingested_at.
    w = m["withdrawn"]
    sub = w["file"].split("/")[1]
    c = sources[(sources["_source"] == "coroner") & (sources["_submitter"] == sub)].copy()
    c["_ed"] = c["extract_date"].fillna(pd.Timestamp.min.date())
    c = c.sort_values(["revision", "_ed", "ingested_at"], ascending=False)
    current = c.drop_duplicates(["coroner_area", "case_id"], keep="first")
    if not (c["revision"] == 2).any():
        fail("the revised coroner extract stored no revision-2 rows")
    superseded = c[c["case_id"].isin(c[c["revision"] == 2]["case_id"])]
    if not (current[current["case_id"].isin(superseded["case_id"])]["revision"] == 2).all():
        fail("a revision-2 row does not supersede revision 1 in the current view")
    withdrawn = current[current["withdrawn"] == True]  # noqa: E712
    if len(withdrawn) != 1:
        fail(f"expected exactly one withdrawn case in the current view before filtering, found {len(withdrawn)}")
    visible = current[current["withdrawn"] != True]  # noqa: E712
    if len(visible) != len(current) - 1:
        fail("the withdrawn case does not leave the current view")
    # Revision-2 rows that concluded inquests carry the cause the first extract lacked.
    closed_now = current[(current["revision"] == 2) & current["underlying_cause_icd10"].notna()]
    if len(closed_now) == 0:
        fail("no case concluded between the two coroner extracts")
    print(f"checked {len(m['files'])} files, {checked_rows} rows; quarantine {len(quarantine)} rows; sources {len(sources)} rows; "
          f"revised coroner: {len(c)} stored rows, {len(current)} current, {len(closed_now)} concluded since the first extract")
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems[:40]:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    print("all ingest checks passed")


def _main():
    main(*sys.argv[1:4])


if __name__ == "__main__":
    from native_exit import run_and_exit
    run_and_exit(_main)
