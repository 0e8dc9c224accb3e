//! Quantile groups: the PHE rank method (methods.md §6) and Fingertips quintiles (§8).

use crate::Error;
use crate::compare::Polarity;

/// PHE quantile group of each value (`phe_quantile`): q = floor((nq+1) − ceil(((N+1) − rank)
/// / (N/nq))), 0 set to 1, with rank by "min" on −value when `invert` (so the highest value
/// gets q = 1). NULL values get no group; every group is NULL when fewer than `nq` values are
/// present.
pub fn phe_quantile(
    values: &[Option<f64>],
    nq: u32,
    invert: bool,
) -> Result<Vec<Option<u32>>, Error> {
    if nq == 0 {
        return Err(Error::BadArgument {
            function: "phe_quantile",
            argument: "nq",
            message: "must be 1 or more, got 0".into(),
        });
    }
    let key = |v: f64| if invert { -v } else { v };
    let present: Vec<f64> = values.iter().flatten().map(|&v| key(v)).collect();
    let n = present.len();
    if n < nq as usize {
        return Ok(vec![None; values.len()]);
    }
    let mut sorted = present;
    sorted.sort_by(f64::total_cmp);
    let per = n as f64 / f64::from(nq);
    Ok(values
        .iter()
        .map(|v| {
            v.map(|v| {
                // "min" rank: 1 + the number of values strictly below.
                let k = key(v);
                let rank = 1 + sorted.partition_point(|&s| s < k);
                let q = (f64::from(nq) + 1.0 - (((n + 1 - rank) as f64) / per).ceil()).floor();
                if q < 1.0 { 1 } else { q as u32 }
            })
        })
        .collect())
}

/// The Fingertips percentile at fraction f of sorted values: position (N−1)f + 1 (1-based) with
/// linear interpolation, rounded to 10 decimal places (methods.md §8).
fn percentile(sorted: &[f64], f: f64) -> f64 {
    let pos = (sorted.len() - 1) as f64 * f;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let v = sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo]);
    (v * 1e10).round() / 1e10
}

/// Fingertips quintile (1–5) of each value (methods.md §8, `QuintilesComparer`): bounds min,
/// P20, P40, P60, P80, max; the quintile is the first i with value ≤ bound[i] (i = 1 for the
/// lowest fifth). For high-is-good the order is reversed (6 − i). NULL when fewer than 5
/// values are present.
pub fn fingertips_quintile(values: &[Option<f64>], polarity: Polarity) -> Vec<Option<u8>> {
    let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
    if sorted.len() < 5 {
        return vec![None; values.len()];
    }
    sorted.sort_by(f64::total_cmp);
    let bounds: Vec<f64> = [0.2, 0.4, 0.6, 0.8, 1.0]
        .iter()
        .map(|&f| percentile(&sorted, f))
        .collect();
    values
        .iter()
        .map(|v| {
            v.map(|v| {
                let i = bounds.iter().position(|&b| v <= b).unwrap_or(4) as u8 + 1;
                if polarity == Polarity::HighIsGood {
                    6 - i
                } else {
                    i
                }
            })
        })
        .collect()
}
