#!/usr/bin/env python3
"""Recomputes three published indicators from the raw synthetic extracts, without drdsurv.

For each area named on the command line, for the 3-year registration window and the 12-month
window that end with the period (architecture.md "Period windows"):

* drug_misuse_dsr: drug-misuse deaths (ONS definition, applied from the case-definition and
  substance reference CSVs), directly standardised to ESP2013 per 100,000 over the pooled
  population of the three registration years (methods.md §3). Fewer than 10 deaths: no value,
  note "too few events for a rate".
* misuse_deaths_in_treatment_share: those deaths whose person (HMAC-SHA256 of the NHS number
  with the demo linkage key, as formats.md says) had a treatment episode that had started by
  the death and had not ended more than 365 days before it, as a % of them.
* nsp_syringes_per_pwid: complete syringe sets issued in the 12 months, per estimated person
  who injects drugs in the window's last year.

It reads the inbox the generator wrote (pandas, openpyxl, json, gzip), drops the rows the
manifest lists as planted faults and the files it lists as rejected whole, and keeps the
current view of each source by the formats.md rule (latest revision, then latest extract date,
then the file ingested last; withdrawn cases removed). Nothing here is shared with drdsurv's
code; the test compares these figures with drdsurv's `benchmarks` table.

Usage: independent_indicators.py INBOX YEAR AREA... (the period is YEAR Q4: the registration
window is YEAR-2..YEAR and the NSP window is the calendar year YEAR). Prints JSON.
"""
import datetime as dt
import gzip
import hashlib
import hmac
import io
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import openpyxl
import pandas as pd

DEMO_KEY = b"drdsurv demo linkage key: synthetic data only, never for real extracts"
EXCEL_EPOCH = dt.date(1899, 12, 30)


def norm_header(h):
    return re.sub(r"[ \-]", "_", str(h).lstrip("\ufeff").strip().lower())


def cell(v):
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def read_rows(path, fmt, gz):
    """The file's data rows as dicts of trimmed strings keyed by normalised header."""
    raw = path.read_bytes()
    if gz:
        raw = gzip.decompress(raw)
    if fmt == "xlsx":
        ws = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True).worksheets[0]
        it = ws.iter_rows(values_only=True)
        headers = [norm_header(h) for h in next(it)]
        return [dict(zip(headers, map(cell, r))) for r in it if any(v is not None for v in r)]
    if fmt == "ndjson":
        out = []
        for line in raw.decode("utf-8").splitlines():
            if line.strip():
                out.append({norm_header(k): cell(v) for k, v in json.loads(line).items()})
        return out
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    df.columns = [norm_header(c) for c in df.columns]
    return [{k: v.strip() for k, v in r.items()} for r in df.to_dict("records")]


def date(v):
    """ISO, UK D/M/YYYY or an Excel serial number; None when blank."""
    v = v.strip()
    if not v:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return dt.date.fromisoformat(v)
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", v)
    if m:
        return dt.date(int(m[3]), int(m[2]), int(m[1]))
    if re.fullmatch(r"\d+(\.0+)?", v):
        return EXCEL_EPOCH + dt.timedelta(days=int(float(v)))
    raise ValueError(f"not a date: {v!r}")


def integer(v, default=None):
    v = v.strip()
    return default if v == "" else int(float(v))


def person_id(nhs):
    digits = re.sub(r"[ \-]", "", nhs or "")
    if not digits:
        return None
    return hmac.new(DEMO_KEY, b"nhs\x1f" + digits.encode(), hashlib.sha256).hexdigest()


def accepted_rows(inbox, manifest, source):
    """(submitter, file order, extract date, row) for every row drdsurv must have accepted."""
    faults = defaultdict(set)
    for f in manifest["faults"]:
        if f["row"] is not None:
            faults[f["file"]].add(f["row"])
    files = sorted(
        (f for f in manifest["files"] if f["source"] == source and not f["expect_rejected"]),
        key=lambda f: f["path"],
    )
    for order, f in enumerate(files):
        bad = faults[f["path"]]
        for n, row in enumerate(read_rows(inbox / f["path"], f["format"], f["gzip"]), start=1):
            if n not in bad:
                yield f["submitter"], order, row


def current(rows, key):
    """formats.md: per key, highest revision, then latest extract date (none last), then the
    file ingested last; the first wins."""
    best = {}
    for sub, order, row in rows:
        k = (sub,) + tuple(row[c] for c in key)
        x = date(row.get("extract_date", ""))
        rank = (integer(row.get("revision", ""), 1), x is not None, x or dt.date.min, order)
        if k not in best or rank > best[k][0]:
            best[k] = (rank, row)
    return [row for _, row in best.values()]


# ---------------------------------------------------------------- case definitions


def squash(s):
    return re.sub(r"\s", "", s).lower()


class Substances:
    def __init__(self, path):
        self.by_name = defaultdict(list)
        for r in pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records"):
            entry = {
                "name": r["name"].strip(),
                "class": r["controlled_class"].strip() or None,
                "t_code": r["icd10_t_code"].strip() or None,
                "from": date(r["valid_from"]) or dt.date.min,
                "to": date(r["valid_to"]) or dt.date.max,
            }
            for n in [r["name"]] + [s for s in r["synonyms"].split(";") if s.strip()]:
                self.by_name[squash(n)].append(entry)

    def resolve(self, raw, on):
        for e in self.by_name.get(squash(raw), []):
            if e["from"] <= on <= e["to"]:
                return e
        return None


def flag(value):
    return value.strip().lower() == "true"


def load_rules(path):
    rules = []
    for r in pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records"):
        if not flag(r["enabled"]):
            continue
        rules.append({
            "definition": r["definition"],
            "from": r["icd10_from"],
            "to": r["icd10_to"],
            "controlled": flag(r["requires_controlled_substance"]),
            "t_codes": {t.strip() for t in r["requires_t_codes"].split(";") if t.strip()},
            "excluded": flag(r["excluded"]),
            "only": {squash(s) for s in r["excluded_if_only_substances"].split(";") if s.strip()},
            "valid_from": date(r["valid_from"]) or dt.date.min,
            "valid_to": date(r["valid_to"]) or dt.date.max,
        })
    return rules


def meets(definition, cause, died, implicated, rules, substances):
    """A death meets a definition when an including rule valid on the date of death covers its
    cause's 3-character category with its substance conditions met, and no excluding rule
    whose conditions are met covers it. Only implicated substances count."""
    if not cause:
        return False
    category = cause.upper().replace(".", "")[:3]
    resolved = [substances.resolve(s, died) for s in implicated]
    controlled = {squash(e["name"]) for e in resolved if e and e["class"]}
    t_codes = {e["t_code"] for e in resolved if e and e["t_code"]}
    included = excluded = False
    for r in rules:
        if r["definition"] != definition or not (r["from"] <= category <= r["to"]):
            continue
        if not (r["valid_from"] <= died <= r["valid_to"]):
            continue
        if r["controlled"] and not controlled:
            continue
        if r["t_codes"] and not (t_codes & r["t_codes"]):
            continue
        if r["only"] and not (controlled and controlled <= r["only"]):
            continue
        if r["excluded"]:
            excluded = True
        else:
            included = True
    return included and not excluded


def age_band(age):
    return "90+" if age >= 90 else f"{age // 5 * 5}-{age // 5 * 5 + 4}"


def whole_years(born, on):
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# ---------------------------------------------------------------- main


def main(inbox, year, areas):
    inbox = Path(inbox)
    manifest = json.loads((inbox / "manifest.json").read_text())
    ref = inbox / "reference"
    substances = Substances(ref / "substances.csv")
    rules = load_rules(ref / "case_definitions.csv")
    esp = dict(pd.read_csv(ref / "esp2013.csv", dtype={"age_band": str}).values.tolist())
    population = pd.read_csv(ref / "population.csv", dtype={"code": str, "age_band": str})
    pwid = pd.read_csv(ref / "pwid_estimates.csv", dtype={"code": str})
    first, last = year - 2, year

    # Treatment episodes from the current TOP forms of every provider (people move between
    # providers and areas, so linkage uses all of them).
    forms = current(accepted_rows(inbox, manifest, "top"), ["provider_code", "client_ref", "top_date", "stage"])
    episodes = defaultdict(lambda: {"person": None, "exit": None})
    for f in forms:
        e = episodes[(f["provider_code"], f["client_ref"], date(f["episode_start"]))]
        e["start"] = date(f["episode_start"])
        e["person"] = e["person"] or person_id(f.get("nhs_number"))
        if f["stage"].strip().lower() in ("exit", "e"):
            d = date(f["top_date"])
            e["exit"] = d if e["exit"] is None else max(e["exit"], d)
    by_person = defaultdict(list)
    for e in episodes.values():
        if e["person"]:
            by_person[e["person"]].append(e)

    def linked(pid, died):
        return any(
            e["start"] <= died and (e["exit"] is None or (died - e["exit"]).days <= 365)
            for e in by_person.get(pid, [])
        )

    # Drug-misuse deaths registered in the window, per area and ESP2013 band.
    deaths = defaultdict(lambda: defaultdict(int))
    linked_deaths = defaultdict(int)
    cases = current(accepted_rows(inbox, manifest, "coroner"), ["coroner_area", "case_ref"])
    for c in cases:
        if c.get("withdrawn", "").strip().upper() in ("Y", "YES", "TRUE", "1"):
            continue
        area = c["residence_area"].strip()
        inquest = date(c.get("date_of_inquest", ""))
        if area not in areas or inquest is None or not (first <= inquest.year <= last):
            continue
        died = date(c["date_of_death"])
        implicated = [s.strip() for s in re.split(r"[;|]", c.get("substances_implicated", "")) if s.strip()]
        if not meets("ons_drug_misuse", c.get("underlying_cause_icd10", ""), died, implicated, rules, substances):
            continue
        born = date(c.get("date_of_birth", ""))
        age = whole_years(born, died) if born else integer(c["age"])
        deaths[area][age_band(age)] += 1
        pid = person_id(c.get("nhs_number"))
        if pid and linked(pid, died):
            linked_deaths[area] += 1

    # Syringe sets in the calendar year, from the current NSP returns.
    syringes = defaultdict(int)
    for r in current(accepted_rows(inbox, manifest, "nsp"), ["site_code", "period_start"]):
        if r["partnership_code"] in areas and date(r["period_start"]).year == year:
            syringes[r["partnership_code"]] += integer(r["syringe_sets_issued"])

    out = {}
    for area in areas:
        pop = population[(population.code == area) & population.year.between(first, last)]
        bands = pop.groupby("age_band")["population"].sum().to_dict()
        d = deaths[area]
        total = sum(d.values())
        dsr = sum(d.get(b, 0) * w / bands[b] for b, w in esp.items()) / sum(esp.values()) * 100000
        p = pwid[(pwid.code == area) & (pwid.year == year)]["estimated_pwid"].sum()
        out[area] = {
            "drug_misuse_dsr": {
                "numerator": total,
                "denominator": int(sum(bands.values())),
                "value": dsr if total >= 10 else None,
                "note": "too few events for a rate" if total < 10 else ("unreliable: 10-19 events" if total < 20 else None),
            },
            "misuse_deaths_in_treatment_share": {
                "numerator": linked_deaths[area],
                "denominator": total,
                "value": 100.0 * linked_deaths[area] / total if total else None,
            },
            "nsp_syringes_per_pwid": {
                "numerator": syringes[area],
                "denominator": int(p),
                "value": syringes[area] / p if p > 0 else None,
            },
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
