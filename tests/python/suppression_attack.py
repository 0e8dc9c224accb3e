"""The linear-programming attack on drd-stats' secondary suppression (scipy.optimize.linprog).

Reads a JSON file of tables with margins, as drd-stats' test writes them:
    {"tables": [{"rows": R, "cols": C, "cells": [...(R+1)*(C+1) counts, row by row, the last
     column and row being the totals...], "suppressed": [...bools...], "primary": [...]}]}

For every table and every suppressed cell, the attacker knows every published cell and that
each row and column sums to its total, with all cells non-negative; linprog minimises and
maximises the cell. Checks that each interval has width >= 2 and holds the true value.
Positive control: with primary suppression only, the same attack must pin at least one cell
in most tables. Prints a summary; exits 1 on any failure.

    python3 tests/python/suppression_attack.py tables.json
"""

import json
import sys

import numpy as np
from scipy.optimize import linprog


def bounds_of(rows, cols, cells, suppressed):
    w = cols + 1
    idx = [i for i, s in enumerate(suppressed) if s]
    pos = {c: k for k, c in enumerate(idx)}
    a_eq, b_eq = [], []

    def equation(members, total):
        row = np.zeros(len(idx))
        rhs = 0.0
        for cell, coef in [(m, 1.0) for m in members] + [(total, -1.0)]:
            if cell in pos:
                row[pos[cell]] += coef
            else:
                rhs -= coef * cells[cell]
        if np.any(row != 0):
            a_eq.append(row)
            b_eq.append(rhs)

    for r in range(rows + 1):
        equation([r * w + c for c in range(cols)], r * w + cols)
    for c in range(cols):
        equation([r * w + c for r in range(rows)], rows * w + c)
    out = {}
    for cell in idx:
        obj = np.zeros(len(idx))
        obj[pos[cell]] = 1.0
        lo = linprog(obj, A_eq=a_eq or None, b_eq=b_eq or None, bounds=(0, None), method="highs")
        hi = linprog(-obj, A_eq=a_eq or None, b_eq=b_eq or None, bounds=(0, None), method="highs")
        if lo.status != 0:
            raise SystemExit(f"linprog failed ({lo.message}) on a published table: inconsistent input")
        upper = float("inf") if hi.status == 3 else -hi.fun
        out[cell] = (lo.fun, upper)
    return out


def main(path):
    doc = json.load(open(path))
    failures, widths, pinned_tables, cells_checked = [], [], 0, 0
    for t, tab in enumerate(doc["tables"]):
        rows, cols, cells = tab["rows"], tab["cols"], tab["cells"]
        for cell, (lo, hi) in bounds_of(rows, cols, cells, tab["suppressed"]).items():
            cells_checked += 1
            true = cells[cell]
            widths.append(hi - lo)
            if hi - lo < 2 - 1e-7:
                failures.append(f"table {t} cell {cell}: true {true}, attacker's interval [{lo:.3f}, {hi:.3f}]")
            if not (lo - 1e-7 <= true <= hi + 1e-7):
                failures.append(f"table {t} cell {cell}: true {true} outside [{lo:.3f}, {hi:.3f}]")
        primary_only = bounds_of(rows, cols, cells, tab["primary"])
        if any(hi - lo < 1e-7 for lo, hi in primary_only.values()):
            pinned_tables += 1
    n = len(doc["tables"])
    print(json.dumps({
        "tables": n,
        "suppressed_cells_attacked": cells_checked,
        "narrowest_interval": min(widths) if widths else None,
        "tables_where_primary_only_is_recovered": pinned_tables,
        "failures": len(failures),
    }))
    for f in failures[:20]:
        print("FAIL", f)
    if failures:
        sys.exit(1)
    if pinned_tables < n // 2:
        print(f"FAIL positive control: primary suppression alone was recovered in only {pinned_tables} of {n} tables")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
