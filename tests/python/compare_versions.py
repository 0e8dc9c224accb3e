#!/usr/bin/env python3
"""Compares two versions of each of a store's mart tables, read with the deltalake package.

Usage: compare_versions.py STORE PAIRS_JSON

PAIRS_JSON maps a model name to [version_a, version_b]. For each model the script reads
marts/<model> at both versions (delta-rs and pyarrow, not drdsurv), drops the run_id column, puts
the rows of each in the same order (by every value except non-integral floats, so that the
last bits of a float never decide the order) and compares them: the same columns, the same number
of rows, floats within 1e-9 relative (NaN equals NaN), everything else (text, integers,
booleans, dates, lists) exactly.

Prints one line per model and exits 1 on the first model that differs, describing the first
differing row.
"""

import json
import math
import sys

from deltalake import DeltaTable


def rows(store, model, version):
    t = DeltaTable(f"{store}/marts/{model}", version=version).to_pyarrow_table()
    names = [n for n in t.column_names if n != "run_id"]
    out = t.select(names).to_pylist()
    out.sort(key=order_key)
    return names, out


def order_key(row):
    return tuple(
        (k, repr(v)) for k, v in sorted(row.items()) if not (isinstance(v, float) and not v.is_integer())
    )


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def main():
    store, pairs = sys.argv[1], json.loads(sys.argv[2])
    total = 0
    for model, (va, vb) in sorted(pairs.items()):
        names_a, a = rows(store, model, va)
        names_b, b = rows(store, model, vb)
        if names_a != names_b:
            return fail(f"{model}: columns differ: {names_a} vs {names_b}")
        if len(a) != len(b):
            return fail(f"{model}: {len(a)} rows at version {va}, {len(b)} at version {vb}")
        for i, (x, y) in enumerate(zip(a, b)):
            for k in names_a:
                if not same(x[k], y[k]):
                    return fail(f"{model} row {i}, {k}: {x[k]!r} at version {va}, {y[k]!r} at version {vb}\n{x}\n{y}")
        print(f"{model}: {len(a)} rows equal (versions {va} and {vb})")
        total += len(a)
    print(f"total {total} rows")
    return 0


def fail(message):
    print(message, file=sys.stderr)
    return 1


if __name__ == "__main__":
    from native_exit import run_and_exit
    run_and_exit(main)
