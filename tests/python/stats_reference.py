#!/usr/bin/env python3
"""Reference values for drd-stats, computed with library routines (issue 4, "Verification").

Writes JSON to the path given (default crates/drd-stats/tests/fixtures/reference.json):
  - normal quantiles:            scipy.stats.norm.ppf
  - chi-square quantiles:        scipy.stats.chi2.ppf (df from 2 to 20,002, i.e. counts 0-10,000)
  - incomplete gamma P and Q:    scipy.special.gammainc / gammaincc
  - exact Poisson limits:        scipy.stats.chi2.ppf, halved (methods.md s2)
  - Wilson intervals:            statsmodels proportion_confint(method='wilson')
  - Byar limits and Dobson DSRs: the closed forms of methods.md s2 and s3 (no library routine
                                 exists), written out here with numpy and scipy's norm.ppf
.ci/run regenerates this file before the tests, so the values come from the installed
libraries, not only from the committed copy.
"""
import json
import sys

import numpy as np
from scipy import special, stats
from statsmodels.stats.proportion import proportion_confint

LEVELS = [0.95, 0.998]
COUNTS = [0, 1, 2, 5, 9, 10, 11, 15, 50, 99, 100, 101, 500, 1000, 2500, 5000, 9999, 10000]


def z(conf):
    return float(stats.norm.ppf(conf + (1 - conf) / 2))


def byar(x, conf):
    # methods.md s2: L = x(1 - 1/(9x) - z/(3 sqrt x))^3, U = (x+1)(1 - 1/(9(x+1)) + z/(3 sqrt(x+1)))^3
    zz = z(conf)
    lower = None
    if x > 0:
        lo = x * (1 - 1 / (9 * x) - zz / (3 * np.sqrt(x))) ** 3
        lower = float(lo) if lo >= 0 else None
    x1 = x + 1
    upper = float(x1 * (1 - 1 / (9 * x1) + zz / (3 * np.sqrt(x1))) ** 3)
    return lower, upper


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "crates/drd-stats/tests/fixtures/reference.json"
    ps = sorted(set([1e-300, 1e-100, 1e-20, 1e-10, 1e-6, 0.0005, 0.001, 0.0025, 0.01, 0.025,
                     0.05, 0.1, 0.25, 0.4, 0.49, 0.5, 0.51, 0.6, 0.75, 0.9, 0.95, 0.975, 0.99,
                     0.999, 0.9995, 1 - 1e-10]))
    norm = [[p, float(stats.norm.ppf(p))] for p in ps]
    rng_q = np.random.default_rng(7)

    chi2 = []
    for x in list(range(0, 101)) + list(range(101, 10001, 37)) + [10000]:
        for df in ([2 * x] if x > 0 else []) + [2 * x + 2]:
            for p in [0.0005, 0.001, 0.025, 0.5, 0.975, 0.999, 0.9995]:
                chi2.append([p, df, float(stats.chi2.ppf(p, df))])

    gamma = []
    for a in [0.5, 1, 1.5, 3, 9.5, 10, 14.9, 15, 20, 50.5, 100, 1000, 5000.5, 10000]:
        for f in [0.01, 0.2, 0.5, 0.9, 0.99, 1.0, 1.01, 1.1, 2, 5]:
            xx = a * f
            gamma.append([a, xx, float(special.gammainc(a, xx)), float(special.gammaincc(a, xx))])

    tq = []
    for df in [1, 1.5, 2, 3, 4, 5, 9, 10, 29, 30, 99, 100, 999, 1000, 4999, 9999, 10000]:
        for p in [1e-10, 0.0005, 0.001, 0.01, 0.025, 0.1, 0.3, 0.5, 0.7, 0.9, 0.975, 0.999, 0.9995]:
            tq.append([p, df, float(stats.t.ppf(p, df))])
    tc = []
    for df in [1, 2, 5, 30, 1000, 10000]:
        for t in [-50, -4, -2, -1, -0.1, 0, 0.5, 1.96, 3, 10]:
            tc.append([t, df, float(stats.t.cdf(t, df))])
    means = []
    for (m, sd, n) in [(10.0, 2.0, 2), (10.0, 2.0, 5), (0.5, 0.1, 30), (123.4, 56.7, 1000),
                       (-3.0, 1.5, 10000)]:
        for c in LEVELS:
            h = abs(float(stats.t.ppf((1 - c) / 2, n - 1))) * sd / np.sqrt(n)
            means.append([m, sd, n, c, m - h, m + h])

    # Quantile groups: ranks from scipy.stats.rankdata(method='min'), percentiles from
    # numpy.percentile (linear interpolation at (N-1)f, i.e. methods.md s8's (N-1)f + 1, 1-based).
    groups = []
    for size, nq in [(152, 10), (152, 5), (20, 4), (7, 5), (3, 5), (11, 3)]:
        vals = np.round(rng_q.normal(50, 15, size), 1)
        vals[::9] = vals[1]  # ties
        for invert in [True, False]:
            rank = stats.rankdata(-vals if invert else vals, method="min")
            n = len(vals)
            if n < nq:
                q = [None] * n
            else:
                q = [max(1, int(np.floor((nq + 1) - np.ceil(((n + 1) - r) / (n / nq))))) for r in rank]
            groups.append({"values": vals.tolist(), "nq": nq, "invert": invert, "groups": q})
    quint = []
    for size in [152, 9, 5, 4]:
        vals = np.round(rng_q.gamma(4, 3, size), 2)
        vals[::7] = vals[2]
        bounds = [float(np.round(np.percentile(vals, f * 100), 10)) for f in [0.2, 0.4, 0.6, 0.8, 1.0]] if size >= 5 else None
        for pol in ["low_is_good", "high_is_good"]:
            if bounds is None:
                cats = [None] * size
            else:
                cats = [next(i for i, b in enumerate(bounds, 1) if v <= b) for v in vals]
                if pol == "high_is_good":
                    cats = [6 - c for c in cats]
            quint.append({"values": vals.tolist(), "polarity": pol, "quintiles": cats})

    # Proportion funnel limits: the proportion x/n whose Wilson interval (statsmodels) just
    # reaches the average p_bar, found with scipy.optimize.brentq; one-sided 97.5% and 99.9%,
    # i.e. two-sided 95% and 99.8% Wilson intervals.
    from scipy.optimize import brentq
    funnel = []
    for p_bar in [0.02, 0.1, 0.35, 0.5, 0.8]:
        for n in [20, 100, 1000, 25000]:
            for level, alpha in [(0.95, 0.05), (0.998, 0.002)]:
                def wl(ph):
                    return proportion_confint(ph * n, n, alpha=alpha, method="wilson")[0] - p_bar
                def wu(ph):
                    return proportion_confint(ph * n, n, alpha=alpha, method="wilson")[1] - p_bar
                # No proportion up to 1 reaches p_bar: the limit is above 1 and is clipped to 1.
                upper = brentq(wl, p_bar, 1.0, xtol=1e-15, rtol=1e-15) if wl(1.0) > 0 else 1.0
                lower = brentq(wu, 0.0, p_bar, xtol=1e-15, rtol=1e-15) if wu(0.0) < 0 else 0.0
                funnel.append([p_bar, n, level, lower, upper])

    nb = []
    for n in [0.5, 1, 2.5, 10, 100, 1000]:
        for p in [0.001, 0.01, 0.1, 0.5, 0.9, 0.99]:
            for q in [0.001, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999]:
                k = float(stats.nbinom.ppf(q, n, p))
                # At a tie (CDF(k - 1) equal to q within rounding, e.g. the median of
                # NB(100, 0.5), which is exactly 0.5) scipy's own rounding picks k or k - 1; both
                # are right, so the fixture lists the other one too.
                alt = k
                if k > 0 and abs(stats.nbinom.cdf(k - 1, n, p) - q) <= 1e-12 * q:
                    alt = k - 1
                elif abs(stats.nbinom.cdf(k, n, p) - q) <= 1e-12 * q:
                    alt = k + 1
                nb.append([q, n, p, k, alt])
    nbc = []
    for n in [0.5, 2.5, 100]:
        for p in [0.01, 0.3, 0.9]:
            for k in [0, 1, 5, 50, 400, 10000]:
                nbc.append([k, n, p, float(stats.nbinom.cdf(k, n, p))])

    # Poisson funnel means (methods.md s7): the mean m with poisson.cdf(E, m) = p (high side) or
    # poisson.sf(E - 1, m) = p (low side), by scipy.optimize.brentq on scipy.stats.poisson.
    pfun = []
    for e in [1, 2, 5, 9, 10, 25, 100, 1000, 5000]:
        for level, p in [(0.95, 0.025), (0.998, 0.001)]:
            hi = brentq(lambda m: stats.poisson.cdf(e, m) - p, 1e-9, 10 * e + 100, xtol=1e-13, rtol=1e-15)
            lo = brentq(lambda m: stats.poisson.sf(e - 1, m) - p, 1e-12, 10 * e + 100, xtol=1e-13, rtol=1e-15)
            pfun.append([e, level, e * e / hi, e * e / lo])

    exact = []
    for x in COUNTS:
        for c in LEVELS:
            a = (1 - c) / 2
            lo = 0.0 if x == 0 else float(stats.chi2.ppf(a, 2 * x) / 2)
            hi = float(stats.chi2.ppf(c + a, 2 * x + 2) / 2)
            exact.append([x, c, lo, hi])

    byars = [[x, c, *byar(x, c)] for x in COUNTS for c in LEVELS]

    wilson = []
    cases = [(81, 263), (0, 10), (1, 10), (10, 10), (9, 10), (0, 1), (1, 1), (65, 100),
             (1045, 5000), (0.445, 1), (1, 100000), (99999, 100000), (5, 7776456),
             (3, 1000), (500, 1000)]
    for x, n in cases:
        for c in LEVELS:
            lo, hi = proportion_confint(x, n, alpha=1 - c, method="wilson")
            wilson.append([x, n, c, float(lo), float(hi)])

    # DSRs over all 19 ESP2013 bands, some empty (methods.md s3).
    esp = np.array([5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000, 7000, 7000, 6500,
                    6000, 5500, 5000, 4000, 2500, 1500, 1000], dtype=float)
    rng = np.random.default_rng(20261126)
    dsrs = []
    for total in [0, 5, 9, 10, 11, 30, 91, 895, 20000]:
        for c in LEVELS:
            pops = rng.integers(2000, 90000, size=19).astype(float)
            counts = np.zeros(19)
            if total > 0:
                w = rng.random(19)
                w[[0, 1, 2, 18]] = 0.0  # empty young and oldest bands
                counts = rng.multinomial(total, w / w.sum()).astype(float)
            o = counts.sum()
            entry = {"counts": counts.tolist(), "pops": pops.tolist(), "conf": c,
                     "total_count": float(o)}
            if o < 10:
                entry.update(value=None, lower=None, upper=None)
            else:
                r = esp / pops
                value = (counts * r).sum() / esp.sum()
                var = (counts * r * r).sum() / esp.sum() ** 2
                bl, bu = byar(o, c)
                k = np.sqrt(var / o)
                entry.update(value=float(value * 1e5),
                             lower=float((value + k * (bl - o)) * 1e5),
                             upper=float((value + k * (bu - o)) * 1e5))
            dsrs.append(entry)

    with open(out, "w") as f:
        json.dump({"norm_ppf": norm, "chi2_ppf": chi2, "gamma_pq": gamma, "exact_poisson": exact,
                   "byar": byars, "wilson": wilson, "dsr": dsrs, "t_ppf": tq, "t_cdf": tc,
                   "mean": means, "phe_quantile": groups, "quintile": quint,
                   "funnel_proportion": funnel, "nbinom_ppf": nb, "nbinom_cdf": nbc,
                   "funnel_poisson": pfun}, f, indent=0)
        f.write("\n")
    print(f"wrote {out}: {len(norm)} normal, {len(chi2)} chi-square, {len(gamma)} gamma, "
          f"{len(exact)} exact, {len(byars)} Byar, {len(wilson)} Wilson, {len(dsrs)} DSR cases")


if __name__ == "__main__":
    main()
