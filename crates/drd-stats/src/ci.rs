//! Confidence intervals for proportions, counts, crude rates and ratios (methods.md §1, §2, §4).

use crate::dist::{chi2_ppf, norm_ppf};
use crate::{Error, Interval};

/// z for a two-sided confidence level c: Φ⁻¹(c + (1 − c)/2).
pub fn z_for(conf: f64) -> f64 {
    norm_ppf(conf + (1.0 - conf) / 2.0)
}

/// A confidence level must lie in (0, 1) (issue 4); only the Wilson interval gives a result
/// for 1 (methods.md §1) and checks for it before calling this.
pub(crate) fn check_conf(function: &'static str, conf: f64) -> Result<(), Error> {
    if conf.is_finite() && conf > 0.0 && conf < 1.0 {
        Ok(())
    } else {
        Err(Error::BadArgument {
            function,
            argument: "conf",
            message: format!("must be between 0 and 1 (e.g. 0.95), got {conf}"),
        })
    }
}

fn check_count(function: &'static str, argument: &'static str, x: f64) -> Result<(), Error> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(Error::BadArgument {
            function,
            argument,
            message: format!("must be a count of 0 or more, got {x}"),
        })
    }
}

fn check_positive(function: &'static str, argument: &'static str, n: f64) -> Result<(), Error> {
    if n.is_finite() && n > 0.0 {
        Ok(())
    } else {
        Err(Error::BadArgument {
            function,
            argument,
            message: format!("must be greater than 0, got {n}"),
        })
    }
}

/// Wilson score interval for x events out of n (methods.md §1), on the 0–1 scale. c = 1 gives
/// (0, 1).
pub fn wilson(x: f64, n: f64, conf: f64) -> Result<Interval, Error> {
    const F: &str = "wilson";
    check_count(F, "x", x)?;
    check_positive(F, "n", n)?;
    if conf != 1.0 {
        check_conf(F, conf)?;
    }
    if x > n {
        return Err(Error::BadArgument {
            function: F,
            argument: "x",
            message: format!("x ({x}) must not exceed n ({n})"),
        });
    }
    if conf == 1.0 {
        return Ok(Interval {
            lower: Some(0.0),
            upper: Some(1.0),
        });
    }
    let z = z_for(conf);
    let z2 = z * z;
    let root = z * (z2 + 4.0 * x * (1.0 - x / n)).sqrt();
    let den = 2.0 * (n + z2);
    Ok(Interval {
        lower: Some((2.0 * x + z2 - root) / den),
        upper: Some((2.0 * x + z2 + root) / den),
    })
}

/// Byar's limits of a count x (methods.md §2). A negative lower limit is `None`.
pub fn byar(x: f64, conf: f64) -> Result<Interval, Error> {
    const F: &str = "byar";
    check_count(F, "x", x)?;
    check_conf(F, conf)?;
    let z = z_for(conf);
    let lower = if x == 0.0 {
        // x(…)³ with x = 0: the bracket is −∞, R gives NaN, which PHE reports as NA.
        None
    } else {
        let l = x * (1.0 - 1.0 / (9.0 * x) - z / (3.0 * x.sqrt())).powi(3);
        (l >= 0.0).then_some(l)
    };
    let x1 = x + 1.0;
    let upper = x1 * (1.0 - 1.0 / (9.0 * x1) + z / (3.0 * x1.sqrt())).powi(3);
    Ok(Interval {
        lower,
        upper: Some(upper),
    })
}

/// Exact Poisson limits of a count x from chi-square quantiles (methods.md §2): x = 0 gives a
/// lower limit of 0.
pub fn exact_poisson(x: f64, conf: f64) -> Result<Interval, Error> {
    const F: &str = "exact_poisson";
    check_count(F, "x", x)?;
    check_conf(F, conf)?;
    let a = (1.0 - conf) / 2.0;
    Ok(Interval {
        lower: Some(chi2_ppf(a, 2.0 * x) / 2.0),
        upper: Some(chi2_ppf(conf + a, 2.0 * x + 2.0) / 2.0),
    })
}

/// Limits of a count as PHE publishes them: exact below 10, Byar from 10 (methods.md §2, §4).
pub fn count_limits(x: f64, conf: f64) -> Result<Interval, Error> {
    if x < 10.0 {
        exact_poisson(x, conf)
    } else {
        byar(x, conf)
    }
}

/// Crude rate x/n × multiplier with its limits (methods.md §2). x > n is allowed.
pub fn crude_rate(x: f64, n: f64, conf: f64, multiplier: f64) -> Result<(f64, Interval), Error> {
    const F: &str = "rate";
    check_count(F, "x", x)?;
    check_positive(F, "n", n)?;
    check_positive(F, "multiplier", multiplier)?;
    let lim = count_limits(x, conf)?;
    let scale = multiplier / n;
    Ok((x * scale, lim.scaled(scale)))
}

/// Indirectly standardised ratio O/E × `refvalue` with its limits (methods.md §4): the count
/// limits of O divided by E. No suppression for small O.
pub fn isr(
    observed: f64,
    expected: f64,
    conf: f64,
    refvalue: f64,
) -> Result<(f64, Interval), Error> {
    const F: &str = "isr";
    check_count(F, "observed", observed)?;
    check_positive(F, "expected", expected)?;
    let lim = count_limits(observed, conf)?;
    let scale = refvalue / expected;
    Ok((observed * scale, lim.scaled(scale)))
}

/// Mean with a t interval: mean ± |t_{(1−c)/2, n−1}| · sd/√n (methods.md §5); n ≥ 2.
pub fn mean_ci(mean: f64, sd: f64, n: f64, conf: f64) -> Result<Interval, Error> {
    const F: &str = "mean";
    check_conf(F, conf)?;
    if !(n.is_finite() && n >= 2.0) {
        return Err(Error::BadArgument {
            function: F,
            argument: "n",
            message: format!("needs at least 2 values for an interval, got {n}"),
        });
    }
    if !(sd.is_finite() && sd >= 0.0 && mean.is_finite()) {
        return Err(Error::BadArgument {
            function: F,
            argument: "sd",
            message: format!("must be a finite standard deviation, got {sd}"),
        });
    }
    let t = crate::dist::t_ppf((1.0 - conf) / 2.0, n - 1.0).abs();
    let half = t * sd / n.sqrt();
    Ok(Interval {
        lower: Some(mean - half),
        upper: Some(mean + half),
    })
}

/// The one-sided tail of a funnel level (methods.md §7): 0.95 is 2 s.d. (0.025), 0.998 is
/// 3 s.d. (0.001); nothing else is a funnel level.
fn funnel_tail(function: &'static str, level: f64) -> Result<f64, Error> {
    if level == 0.95 {
        Ok(0.025)
    } else if level == 0.998 {
        Ok(0.001)
    } else {
        Err(Error::BadArgument {
            function,
            argument: "level",
            message: format!("must be 0.95 or 0.998, got {level}"),
        })
    }
}

/// Funnel-plot control limit for a proportion (methods.md §7, PHE `sigma_adjustment`): the
/// Wilson-based limit around the average proportion `p_bar` for a denominator `n`, at 95%
/// (2 s.d., one-sided p = 0.975) or 99.8% (3 s.d., p = 0.999). Limits are clipped to 0–1.
/// PHE clips upper limits at a hard-coded 100, which is 100% when the multiplier is 100 but no
/// clip at all when it is 1; on the 0–1 scale of this function we clip at 1 (a proportion
/// cannot exceed it), which matches PHE's percentage tables.
pub fn funnel_proportion_limit(p_bar: f64, n: f64, level: f64, upper: bool) -> Result<f64, Error> {
    const F: &str = "funnel_proportion_limit";
    if !(p_bar.is_finite() && (0.0..=1.0).contains(&p_bar)) {
        return Err(Error::BadArgument {
            function: F,
            argument: "p_bar",
            message: format!("must be a proportion between 0 and 1, got {p_bar}"),
        });
    }
    check_positive(F, "n", n)?;
    let z = norm_ppf(1.0 - funnel_tail(F, level)?);
    let z2 = z * z;
    let first = p_bar * (n / z2 + 1.0);
    let inner = (-8.0 * p_bar * (n / z2 + 1.0)).powi(2)
        - 64.0
            * (1.0 / z2 + 1.0 / n)
            * p_bar
            * (n * (p_bar * (n / z2 + 2.0) - 1.0) + z2 * (p_bar - 1.0));
    let adj = inner.max(0.0).sqrt();
    let sign = if upper { 1.0 } else { -1.0 };
    let limit = (first + sign * adj / 8.0) / (1.0 / z2 + 1.0 / n) / n;
    Ok(limit.clamp(0.0, 1.0))
}

/// P(K ≤ k | mean m) for a Poisson count, by the iterative sum (k is floored, as scipy does).
fn poisson_cdf(k: f64, m: f64) -> f64 {
    if k < 0.0 {
        return 0.0;
    }
    crate::dist::gamma_pq(k.floor() + 1.0, m).1
}

/// PHE `poisson_funnel` (methods.md §7): the Poisson mean m at which an observed count `obs`
/// sits at tail probability `p`, by bisection on v in (0, 1) with m = (1 + obs)·v/(1 − v),
/// starting at v = 0.5 with step 0.5 halved each time. `high`: P(K ≤ obs | m) = p; otherwise
/// P(K ≥ obs | m) = p.
///
/// Deviation: PHE stops once the step is at most 1e-7, which leaves the mean up to 5e-5 off
/// (relative) when obs is 1 and m is small (v near 0); we halve on to 1e-16, so the limit is the
/// root itself (checked against scipy brentq to 1e-9).
pub fn poisson_funnel_mean(obs: f64, p: f64, high: bool) -> f64 {
    let mut v = 0.5;
    let mut step = 0.5;
    while step > 1e-16 {
        let m = (1.0 + obs) * v / (1.0 - v);
        let prob = if high {
            poisson_cdf(obs, m)
        } else {
            1.0 - poisson_cdf(obs - 1.0, m)
        };
        // P(K ≤ obs) falls as m grows; P(K ≥ obs) rises.
        let go_up = if high { prob > p } else { prob < p };
        step /= 2.0;
        v += if go_up { step } else { -step };
    }
    (1.0 + obs) * v / (1.0 - v)
}

/// Poisson funnel count limit around an expected count (methods.md §8 method 6, the same
/// bisection as §7): at expected E the ratio limits are E/m, with m from
/// [`poisson_funnel_mean`] (upper tail for the lower limit), so the count limits are E²/m.
/// Divide by E for a ratio, or by the denominator for a rate. `level` is 0.95 (tail 0.025) or
/// 0.998 (tail 0.001).
pub fn funnel_poisson_limit(expected: f64, level: f64, upper: bool) -> Result<f64, Error> {
    const F: &str = "funnel_poisson_limit";
    check_positive(F, "expected", expected)?;
    let p = funnel_tail(F, level)?;
    let m = poisson_funnel_mean(expected, p, !upper);
    Ok(expected * expected / m)
}

/// Indirectly standardised rate (methods.md §4): O/E × ref_rate with the O/E limits scaled the
/// same way, ref_rate = Σx_ref/Σn_ref × multiplier.
pub fn isr_rate(
    observed: f64,
    expected: f64,
    conf: f64,
    ref_rate: f64,
) -> Result<(f64, Interval), Error> {
    check_positive("isr_rate", "ref_rate", ref_rate)?;
    isr(observed, expected, conf, ref_rate)
}

/// Funnel significance of a proportion x/n against the average `p_bar` (methods.md §7), tested
/// in PHE's order: below the 99.8% lower limit, below the 95% one, above the 99.8% upper
/// limit, above the 95% one, otherwise not significant.
pub fn proportion_funnel_significance(x: f64, n: f64, p_bar: f64) -> Result<&'static str, Error> {
    let v = x / n;
    let lim = |level, upper| funnel_proportion_limit(p_bar, n, level, upper);
    Ok(if v < lim(0.998, false)? {
        "Low (0.001)"
    } else if v < lim(0.95, false)? {
        "Low (0.025)"
    } else if v > lim(0.998, true)? {
        "High (0.001)"
    } else if v > lim(0.95, true)? {
        "High (0.025)"
    } else {
        "Not significant"
    })
}

/// Funnel significance of an observed count against its expected count or derived denominator
/// `denominator` and a `reference` ratio or rate (methods.md §7 `funnel_ratio_significance`):
/// the count's limits (exact below 10, Byar from 10; a zero count has a lower limit of 0)
/// divided by the denominator, at 99.8% then 95%; a lower limit above the reference is High, an
/// upper limit below it Low. The labels follow the proportion funnels' wording (an assumption:
/// methods.md does not give PHE's strings for ratios).
pub fn ratio_funnel_significance(
    observed: f64,
    denominator: f64,
    reference: f64,
) -> Result<&'static str, Error> {
    check_positive("ratio_funnel_significance", "denominator", denominator)?;
    for (level, high, low) in [
        (0.998, "High (0.001)", "Low (0.001)"),
        (0.95, "High (0.025)", "Low (0.025)"),
    ] {
        let ci = count_limits(observed, level)?;
        let lower = ci.lower.unwrap_or(0.0) / denominator;
        let upper = ci.upper.unwrap_or(f64::INFINITY) / denominator;
        if lower > reference {
            return Ok(high);
        }
        if upper < reference {
            return Ok(low);
        }
    }
    Ok("Not significant")
}
