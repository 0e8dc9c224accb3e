#!/usr/bin/env python3
"""Independent check of a `drdsurv generate` output folder.

Reads every generated file with pandas / openpyxl / json (not with drdsurv's code), applies the
header normalisation of formats.md, and checks it against the manifest:

* every file is readable in its declared format and encoding (or, when the manifest says it is
  unreadable, is not), holds every required column, and has the manifest's row count;
* every planted fault is listed with a file and row, and the planted value really breaks the
  stated rule (checked here with this script's own rules from formats.md);
* rows that are not planted faults carry their required values and authorised area codes;
* every reason code appears in every source where it can occur.

The required columns and rules below are transcribed from docs/formats.md on purpose: this
script must not share code with the generator it checks.

Usage: check_extracts.py OUT_DIR
"""
import csv
import gzip
import io
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import openpyxl
import pandas as pd

REQUIRED = {
    "coroner": ["case_ref", "coroner_area", "sex", "residence_area", "date_of_death"],
    "top": ["provider_code", "partnership_code", "client_ref", "date_of_birth", "sex", "episode_start", "top_date", "stage"],
    "nsp": ["site_code", "site_type", "partnership_code", "period_start", "period_end", "transactions", "syringe_sets_issued"],
}
KNOWN = {
    "coroner": REQUIRED["coroner"] + ["revision", "extract_date", "nhs_number", "surname", "forenames", "date_of_birth", "age", "postcode",
                                      "date_of_inquest", "place_of_death", "underlying_cause_icd10", "conclusion", "substances_implicated",
                                      "substances_present", "known_drug_user", "injecting_history", "in_treatment", "released_from_prison_days",
                                      "naloxone_administered", "alone_at_time", "withdrawn"],
    "top": REQUIRED["top"] + ["nhs_number", "revision", "alcohol_days", "opiate_days", "crack_days", "cocaine_days", "amphetamine_days",
                              "cannabis_days", "other_drug_days", "alcohol_units_per_day", "injected_days", "shared_equipment", "shoplifting_days",
                              "selling_drugs_days", "theft_days", "assault", "psych_health", "phys_health", "quality_of_life", "paid_work_days",
                              "education_days", "acute_housing_problem", "risk_of_eviction", "exit_reason"],
    "nsp": REQUIRED["nsp"] + ["revision", "clients", "new_clients", "needles_issued", "sharps_bins_issued", "sharps_bins_returned", "foil_packs",
                              "pipes_issued", "naloxone_kits_issued", "bbv_tests_offered", "bbv_tests_done", "referrals_to_treatment"],
}
KEYS = {"coroner": ["coroner_area", "case_ref"], "top": ["provider_code", "client_ref", "top_date", "stage"], "nsp": ["site_code", "period_start"]}
AREA_COL = {"coroner": "residence_area", "top": "partnership_code", "nsp": "partnership_code"}
ALL_REASONS = ["missing_required_column", "unreadable_file", "missing_required_value", "invalid_date", "future_date", "date_order",
               "period_too_long", "invalid_number", "out_of_range", "invalid_code", "invalid_gss_code", "unknown_area",
               "not_authorised_for_area", "invalid_nhs_number", "invalid_postcode", "missing_age_and_dob", "count_inconsistent",
               "duplicate_key_in_file"]
ONLY_IN = {"invalid_nhs_number": {"coroner", "top"}, "invalid_postcode": {"coroner"}, "missing_age_and_dob": {"coroner"},
           "period_too_long": {"nsp"}, "count_inconsistent": {"nsp"}}
GSS = re.compile(r"^[EW]\d{8}$")
UK_DATE = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

failures = []


def fail(msg):
    failures.append(msg)


def norm(h):
    return re.sub(r"[ \-]", "_", str(h).lstrip("\ufeff").strip().lower())


def nhs_ok(v):
    d = re.sub(r"[ \-]", "", v)
    if not re.fullmatch(r"\d{10}", d):
        return False
    s = sum(int(d[i]) * (10 - i) for i in range(9))
    c = 11 - s % 11
    c = 0 if c == 11 else c
    return c != 10 and c == int(d[9])


def cell_str(v):
    if v is None:
        return ""
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def read_table(path, rec):
    """Returns (headers, rows as lists of str)."""
    raw = path.read_bytes()
    if rec["gzip"]:
        raw = gzip.decompress(raw)
    fmt = rec["format"]
    if fmt == "xlsx":
        wb = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        headers = [norm(h) for h in next(it)]
        rows = [[cell_str(v) for v in r] for r in it if any(v is not None for v in r)]
        return headers, rows
    if fmt == "ndjson":
        objs = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
        headers = [norm(k) for k in objs[0].keys()] if objs else []
        rows = [["" if v is None else str(v) for v in o.values()] for o in objs]
        return headers, rows
    # CSV: UTF-8 (with or without BOM), else Windows-1252.
    has_bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8-sig")
        enc = "utf-8-bom" if has_bom else "utf-8"
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
        enc = "windows-1252"
    if rec.get("encoding") and rec["encoding"] != enc:
        fail(f"{rec['path']}: manifest says {rec['encoding']}, the bytes are {enc}")
    if not rec["gzip"]:
        if (b"\r\n" in raw) != rec["crlf"]:
            fail(f"{rec['path']}: CRLF line endings {'missing' if rec['crlf'] else 'unexpected'}")
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    headers = [norm(h) for h in df.columns]
    return headers, df.values.tolist()


def is_unreadable(path, rec):
    raw = path.read_bytes()
    if rec["format"] == "xlsx":
        try:
            openpyxl.load_workbook(io.BytesIO(raw), read_only=True)
            return False
        except Exception:
            return True
    if rec["format"] == "ndjson":
        try:
            [json.loads(l) for l in raw.decode("utf-8").splitlines() if l.strip()]
            return False
        except Exception:
            return True
    # A CSV that is really a PDF or other binary.
    return raw.startswith(b"%PDF") or b"\x00" in raw


def main(out):
    out = Path(out)
    m = json.loads((out / "manifest.json").read_text())
    parts = pd.read_csv(out / "reference" / "partnerships_2021.csv", dtype=str)
    known_areas = set(parts["code"])
    if len(known_areas) != 152:
        fail(f"reference partnerships has {len(known_areas)} areas, expected 152")
    allowed = {(s["source"], s["id"]): set(s["areas"]) for s in m["submitters"]}
    faults_by_file = defaultdict(dict)
    for f in m["faults"]:
        if f["row"] is not None:
            faults_by_file[f["file"]].setdefault(f["row"], []).append(f)
    files = {f["path"]: f for f in m["files"]}
    for f in m["faults"]:
        if f["file"] not in files:
            fail(f"fault names a file not in the manifest: {f['file']}")
    # Every file on disk is in the manifest.
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.parts[len(out.parts)] in ("coroner", "top", "nsp")}
    if on_disk != set(files):
        fail(f"files on disk and in the manifest differ: {sorted(on_disk ^ set(files))[:5]}")

    reasons_seen = defaultdict(Counter)
    rows_total = Counter()
    faulty_rows = Counter()
    for path_s, rec in files.items():
        src = rec["source"]
        path = out / path_s
        exp = rec.get("expect_rejected")
        if exp == "unreadable_file":
            if not is_unreadable(path, rec):
                fail(f"{path_s}: listed as unreadable but it reads")
            reasons_seen[src]["unreadable_file"] += 1
            continue
        headers, rows = read_table(path, rec)
        if len(rows) != rec["rows"]:
            fail(f"{path_s}: {len(rows)} data rows, manifest says {rec['rows']}")
        missing = [c for c in REQUIRED[src] if c not in headers]
        if exp == "missing_required_column":
            named = [f["column"] for f in m["faults"] if f["file"] == path_s]
            if not missing or sorted(missing) != sorted(named):
                fail(f"{path_s}: missing columns {missing}, manifest names {named}")
            reasons_seen[src]["missing_required_column"] += 1
            continue
        if missing:
            fail(f"{path_s}: required column(s) missing after normalisation: {missing} (headers {headers})")
            continue
        unknown = sorted(set(headers) - set(KNOWN[src]))
        if unknown != sorted(rec["unknown_columns"]):
            fail(f"{path_s}: unknown columns {unknown}, manifest says {rec['unknown_columns']}")
        ix = {h: i for i, h in enumerate(headers)}
        planted = faults_by_file.get(path_s, {})
        sub_areas = allowed[(src, rec["submitter"])]
        date_col = {"coroner": "date_of_death", "top": "top_date", "nsp": "period_start"}[src]
        seen_keys = {}
        for n, row in enumerate(rows, start=1):
            rows_total[src] += 1
            k = tuple(row[ix[c]].strip() for c in KEYS[src] if c in ix) + ((row[ix["revision"]].strip() or "1") if "revision" in ix else "1",)
            if k in seen_keys and not planted.get(n) and not planted.get(seen_keys[k]):
                fail(f"{path_s} rows {seen_keys[k]} and {n} share key {k} but no duplicate fault is listed")
            seen_keys.setdefault(k, n)
            fs = planted.get(n)
            val = lambda c: row[ix[c]].strip() if c in ix else ""
            if not fs:
                for c in REQUIRED[src]:
                    if val(c) == "":
                        fail(f"{path_s} row {n}: required {c} blank but no fault is listed")
                a = val(AREA_COL[src])
                if a not in sub_areas:
                    fail(f"{path_s} row {n}: area {a} not authorised for {rec['submitter']} but no fault is listed")
                if rec["format"] != "xlsx":
                    d = val(date_col)
                    pat = UK_DATE if rec["uk_dates"] else ISO_DATE
                    if not pat.match(d):
                        fail(f"{path_s} row {n}: {date_col} '{d}' does not match the file's date style")
                continue
            faulty_rows[src] += 1
            for f in fs:
                r = f["reason"]
                reasons_seen[src][r] += 1
                c = f["column"]
                if c is not None and c not in ix and r != "missing_age_and_dob":
                    fail(f"{path_s} row {n}: fault names column {c} which the file does not have")
                    continue
                v = val(c) if c else ""
                ok = True
                if r == "missing_required_value":
                    ok = v == "" and c in REQUIRED[src]
                elif r == "invalid_gss_code":
                    ok = not GSS.match(v)
                elif r == "unknown_area":
                    ok = bool(GSS.match(v)) and v not in known_areas
                elif r == "not_authorised_for_area":
                    ok = v in known_areas and v not in sub_areas
                elif r == "invalid_nhs_number":
                    ok = v != "" and not nhs_ok(v)
                elif r == "missing_age_and_dob":
                    ok = val("age") == "" and val("date_of_birth") == ""
                elif r == "count_inconsistent":
                    num = lambda k: int(val(k)) if val(k) else None
                    ok = (num("clients") is not None and num("clients") > num("transactions")) or (
                        num("bbv_tests_done") is not None and num("bbv_tests_done") > num("bbv_tests_offered"))
                elif r == "duplicate_key_in_file":
                    other = n + 1 if (n + 1) in planted and any(g["reason"] == r for g in planted[n + 1]) else n - 1
                    ok = all(rows[other - 1][ix[k]] == row[ix[k]] for k in KEYS[src] if k in ix)
                elif r == "invalid_code":
                    ok = v.lower() not in {"m", "f", "u", "male", "female", "unknown", "1", "2", "9", "start", "review", "exit", "post_exit",
                                           "s", "r", "e", "p", "pharmacy", "specialist", "outreach", "mobile", "vending"}
                elif r in ("out_of_range", "invalid_number"):
                    ok = v != ""
                if not ok:
                    fail(f"{path_s} row {n}: planted {r} in {c} but the value '{v}' does not break that rule")
    for src in ("coroner", "top", "nsp"):
        for r in ALL_REASONS:
            if src in ONLY_IN.get(r, {src}) and reasons_seen[src][r] == 0:
                fail(f"{src}: reason {r} never planted")
        share = faulty_rows[src] / max(rows_total[src], 1)
        if not 0.002 <= share <= 0.02:
            fail(f"{src}: {share:.4f} of rows carry planted faults, expected about 0.5%")
    w = m.get("withdrawn")
    if not w:
        fail("no withdrawn case in the manifest")
    else:
        headers, rows = read_table(out / w["file"], files[w["file"]])
        row = dict(zip(headers, rows[w["row"] - 1]))
        if row.get("withdrawn", "").upper() != "Y" or row.get("revision") not in ("2", "2.0"):
            fail(f"withdrawn row {w} does not say withdrawn=Y at revision 2: {row.get('withdrawn')}, {row.get('revision')}")
    if m["nitazene_cluster"]["deaths"] < 8:
        fail("nitazene cluster has fewer than 8 deaths")
    if not any(f["format"] == "xlsx" and f["source"] == "coroner" and not f.get("expect_rejected") for f in m["files"]):
        fail("no XLSX coroner extract")
    if not any(f.get("encoding") == "windows-1252" for f in m["files"]):
        fail("no Windows-1252 file")
    if sum(1 for f in m["files"] if f["source"] == "coroner" and f["submitter"] == m["withdrawn"]["file"].split("/")[1]) < 2:
        fail("the revising coroner does not have two extracts")
    print(f"checked {len(files)} files: rows {dict(rows_total)}, planted-fault rows {dict(faulty_rows)}")
    for src in ("coroner", "top", "nsp"):
        print(f"  {src}: " + ", ".join(f"{r}={n}" for r, n in sorted(reasons_seen[src].items())))
    if failures:
        print(f"{len(failures)} problem(s):", file=sys.stderr)
        for f in failures[:50]:
            print("  " + f, file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
