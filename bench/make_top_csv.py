#!/usr/bin/env python3
"""Build one large TOP CSV for the ingest benchmark from `drdsurv generate --scale national`
output folders.

Reads every plain (not gzip) UTF-8 TOP CSV of each folder, maps its header to the canonical
column names (lower case, spaces to underscores: the same spellings formats.md allows), and
writes the rows in one column order with ISO dates, until at least --rows rows are written.
Planted faults stay in: the benchmark measures validation and quarantine too.

Usage: make_top_csv.py OUT.csv --rows 10000000 GENERATED_DIR [GENERATED_DIR ...]
"""
import argparse
import csv
import json
import re
import sys
from pathlib import Path

UK = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def canon(h):
    return re.sub(r"[\s\-]+", "_", h.strip().lstrip("\ufeff").lower())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--rows", type=int, default=10_000_000)
    a = ap.parse_args()
    header = None
    written = 0
    with open(a.out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        for d in a.dirs:
            m = json.loads((Path(d) / "manifest.json").read_text())
            for rec in m["files"]:
                if rec["source"] != "top" or rec["format"] != "csv" or rec["gzip"]:
                    continue
                if rec.get("expect_rejected") or rec["encoding"] not in ("utf-8", "utf-8-bom"):
                    continue
                with open(Path(d) / rec["path"], newline="", encoding="utf-8-sig") as f:
                    r = csv.reader(f)
                    cols = [canon(h) for h in next(r)]
                    if header is None:
                        header = cols
                        w.writerow(header)
                    ix = [cols.index(h) if h in cols else None for h in header]
                    for row in r:
                        out = []
                        for i in ix:
                            v = row[i] if i is not None and i < len(row) else ""
                            mm = UK.match(v)
                            if mm:
                                v = f"{mm.group(3)}-{int(mm.group(2)):02d}-{int(mm.group(1)):02d}"
                            out.append(v)
                        w.writerow(out)
                        written += 1
                        if written >= a.rows:
                            print(f"wrote {written} rows to {a.out}")
                            return 0
    print(f"only {written} rows in {a.dirs}: pass more generated folders", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
