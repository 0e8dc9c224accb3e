#!/usr/bin/env python3
"""Scan everything drdsurv wrote for identifiers taken from the input extracts.

Collects every direct identifier in the generated extracts (NHS numbers, names, dates of birth,
full postcodes, case and client references) and looks for each of them in:

* every Delta table of the store, decoded (all columns, lists included);
* every other file under the store: Delta JSON logs, checkpoint Parquet, anything else;
* the extra text files given (captured stdout receipts and stderr logs).

NHS numbers are searched with and without spaces or hyphens, names in any case (forename and
surname together, and surnames alone as whole words), dates of birth in ISO and DD/MM/YYYY form,
postcodes with and without the space.

A positive control first plants identifiers in a scratch copy and checks the scan finds them.

Usage: scan_identifiers.py GENERATED_DIR STORE_DIR [TEXT_FILE ...]
Exit 0 when the control finds its plant and the store and files hold no identifier.
"""
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import check_extracts as ce


def identifiers(gen):
    m = json.loads((Path(gen) / "manifest.json").read_text())
    found = {"nhs": set(), "name_pair": set(), "surname": set(), "dob": set(), "postcode": set(), "ref": set()}
    for rec in m["files"]:
        if rec.get("expect_rejected") == "unreadable_file":
            continue
        headers, rows = ce.read_table(Path(gen) / rec["path"], rec)
        ix = {h: i for i, h in enumerate(headers)}
        for row in rows:
            get = lambda c: row[ix[c]].strip() if c in ix else ""
            nhs = re.sub(r"[ \-]", "", get("nhs_number"))
            if re.fullmatch(r"\d{10}", nhs):
                found["nhs"].add(nhs)
            s, f = get("surname"), get("forenames")
            if s:
                found["surname"].add(s.lower())
            if s and f:
                found["name_pair"].add(f"{f} {s}".lower())
            dob = get("date_of_birth")
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", dob):
                found["dob"].add(dob)
            elif re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", dob):
                d, mth, y = dob.split("/")
                found["dob"].add(f"{y}-{int(mth):02d}-{int(d):02d}")
            pc = get("postcode").upper()
            if re.fullmatch(r"[A-Z0-9]{2,4} ?[0-9][A-Z]{2}", pc):
                found["postcode"].add(pc.replace(" ", ""))
            for c in ("case_ref", "client_ref"):
                if len(get(c)) >= 5:
                    found["ref"].add(get(c))
    return found


def column_text(col):
    """A pyarrow column as newline-joined text (lists flattened)."""
    import pyarrow.compute as pc
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        col = pc.list_flatten(col)
    try:
        col = pc.cast(col, pa.string())
    except Exception:
        return "\n".join(map(str, col.to_pylist()))
    return "\n".join(v for v in col.to_pylist() if v is not None)


def texts_of_store(store):
    """Yield (where, text) for every column of every Parquet file (table data, checkpoints,
    strays) and the raw text of every other file (Delta JSON logs and anything else)."""
    store = Path(store)
    for p in store.rglob("*"):
        if not p.is_file():
            continue
        if p.suffix == ".parquet":
            try:
                t = pq.read_table(p)
            except Exception:
                yield (str(p), p.read_bytes().decode("latin-1"))
                continue
            for name in t.column_names:
                yield (f"{p}:{name}", column_text(t.column(name)))
        else:
            yield (str(p), p.read_bytes().decode("utf-8", "replace"))


# Every pattern is anchored on token boundaries: a 64-character hex pseudonym must not look
# like it contains a postcode or an NHS number.
NHS_RE = re.compile(r"(?<![0-9A-Za-z])\d{3}[ \-]?\d{3}[ \-]?\d{4}(?![0-9A-Za-z])")
ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
UK_RE = re.compile(r"(?<![0-9])(\d{1,2})/(\d{1,2})/(\d{4})")
PC_RE = re.compile(r"(?<![0-9a-z])[a-z]{1,2}\d[a-z\d]? ?\d[a-z]{2}(?![0-9a-z])")
WORD_RE = re.compile(r"[a-zà-ÿ’']+")
TOKEN_RE = re.compile(r"(?<![A-Za-z0-9/])[A-Za-z0-9/]{5,}(?![A-Za-z0-9/])")


def scan(ids, sources):
    """Token extraction plus set membership, so the scan is linear in the text."""
    hits = []
    for where, text in sources:
        low = text.lower()
        nhs = {re.sub(r"[ \-]", "", m) for m in NHS_RE.findall(text)} & ids["nhs"]
        if nhs:
            hits.append((where, "nhs_number"))
        words = WORD_RE.findall(low)
        if set(words) & ids["surname"]:
            hits.append((where, f"surname {sorted(set(words) & ids['surname'])[:3]}"))
        pairs = {f"{a} {b}" for a, b in zip(words, words[1:])}
        if pairs & ids["name_pair"]:
            hits.append((where, "name"))
        dates = set(ISO_RE.findall(text)) | {f"{y}-{int(m):02d}-{int(d):02d}" for d, m, y in UK_RE.findall(text)}
        if dates & ids["dob"]:
            hits.append((where, f"date_of_birth {sorted(dates & ids['dob'])[:2]}"))
        pcs = {p.replace(" ", "").upper() for p in PC_RE.findall(low)}
        if pcs & ids["postcode"]:
            hits.append((where, "postcode"))
        if set(TOKEN_RE.findall(text)) & ids["ref"]:
            hits.append((where, "case/client reference"))
    return hits


def control(ids):
    """Positive control: plant identifiers, unpseudonymised, as a Parquet file and a log line in
    a scratch store; the same scan must find both."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store"
        copy.mkdir()
        nhs = sorted(ids["nhs"])[0]
        pair = sorted(ids["name_pair"])[0]
        pq.write_table(pa.table({"nhs_number": [f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"]}), copy / "leak.parquet")
        (copy / "leak.log").write_text(f"processing {pair.upper()}\n")
        hits = scan(ids, texts_of_store(copy))
        kinds = {k.split()[0] for _, k in hits}
        print(f"positive control: {len(hits)} hit(s) in a planted copy: {sorted(kinds)}")
        return {"nhs_number", "name"} <= kinds


def main(argv):
    gen, store, extra = argv[0], argv[1], argv[2:]
    ids = identifiers(gen)
    counts = {k: len(v) for k, v in ids.items()}
    print(f"identifiers taken from the extracts: {counts}")
    if min(counts["nhs"], counts["surname"], counts["dob"], counts["postcode"], counts["ref"]) == 0:
        print("the extracts hold no identifiers to look for", file=sys.stderr)
        return 1
    if not control(ids):
        print("the positive control failed: the scan cannot see a planted identifier", file=sys.stderr)
        return 1
    sources = list(texts_of_store(store))
    for f in extra:
        sources.append((f, Path(f).read_text(errors="replace")))
    hits = scan(ids, sources)
    print(f"scanned {len(sources)} columns and files; {len(hits)} hit(s)")
    for h in hits[:20]:
        print("  LEAK", h, file=sys.stderr)
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
