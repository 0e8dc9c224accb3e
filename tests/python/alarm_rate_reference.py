"""Seeded series and exact alarm probabilities for drd-stats' EARS C2 alarm-rate test.

Writes 200 series of 104 weekly Poisson(3) counts (numpy, fixed seed) and 200 series with a
step from Poisson(3) to Poisson(12) at week 61. Independently of drd-stats, it computes by
exact enumeration (dynamic programming over the sum and the sum of squares of the 7 baseline
counts) the probability that C2 alarms at a time point:

    P( Y > mean + z * sd ),  baseline counts iid Poisson(3), Y ~ Poisson(lam), z = Phi^-1(1 - alpha)

for lam = 3 (the false-alarm probability) and lam = 12 (the first week after the step, whose
baseline still lies wholly before it). The Rust test runs C2 on the series and compares.

    python3 tests/python/alarm_rate_reference.py crates/drd-stats/tests/fixtures/alarm_rate.json
"""

import json
import sys

import numpy as np
from scipy.stats import norm, poisson

BASELINE = 7
ALPHA = 0.001
CAP = 30  # Poisson(12) beyond 30 has probability < 1e-6; Poisson(3) beyond 30 < 1e-18


def baseline_distribution(lam):
    """Joint distribution of (sum, sum of squares) of BASELINE iid Poisson(lam) counts."""
    pmf = poisson.pmf(np.arange(CAP + 1), lam)
    s1_max, s2_max = BASELINE * CAP, BASELINE * CAP * CAP
    dist = np.zeros((s1_max + 1, s2_max + 1))
    dist[0, 0] = 1.0
    for _ in range(BASELINE):
        nxt = np.zeros_like(dist)
        for x in range(CAP + 1):
            if pmf[x] < 1e-300:
                continue
            nxt[x:, x * x:] += pmf[x] * dist[: s1_max + 1 - x, : s2_max + 1 - x * x]
        dist = nxt
    return dist


def alarm_probability(dist, lam_today, z):
    s1, s2 = np.nonzero(dist > 0)
    p = dist[s1, s2]
    mean = s1 / BASELINE
    var = np.maximum(s2 - s1 * s1 / BASELINE, 0.0) / (BASELINE - 1)
    threshold = mean + z * np.sqrt(var)
    # P(Y > threshold) = 1 - P(Y <= floor(threshold)), Y ~ Poisson(lam_today).
    tail = poisson.sf(np.floor(threshold), lam_today)
    return float(np.sum(p * tail))


def main(out):
    rng = np.random.default_rng(20261126)
    z = norm.ppf(1 - ALPHA)
    dist = baseline_distribution(3.0)
    null = [rng.poisson(3.0, 104).tolist() for _ in range(200)]
    step = [np.concatenate([rng.poisson(3.0, 60), rng.poisson(12.0, 44)]).tolist() for _ in range(200)]
    doc = {
        "generator": "numpy default_rng(20261126); exact enumeration with scipy.stats",
        "baseline": BASELINE,
        "alpha": ALPHA,
        "null_series": null,
        "step_series": step,
        "step_week": 61,
        "false_alarm_probability": alarm_probability(dist, 3.0, z),
        "first_week_detection_probability": alarm_probability(dist, 12.0, z),
    }
    with open(out, "w") as f:
        json.dump(doc, f)
    print(f"C2 exact false-alarm probability {doc['false_alarm_probability']:.6f} "
          f"(nominal alpha {ALPHA}); first-week detection {doc['first_week_detection_probability']:.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "alarm_rate.json")
