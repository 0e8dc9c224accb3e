//! Aberration detection for drug-alert signals (domain.md §6): EARS C1, C2 and C3, CUSUM and
//! Farrington flexible with the Noufaily settings. Each method follows the conventions of the
//! R package `surveillance` (`earsC`, `algo.cusum`, `farringtonFlexible`) and is checked
//! against it (tests/r/alerts_reference.R). Signals are candidates for a human panel, never
//! automatic public alerts.
//!
//! Every function takes a series in time order (one value per week, `None` for a missing
//! week) and returns one [`Signal`] per time point, `None` until there is enough baseline.

use crate::Error;
use crate::dist::{gamma_pq, nbinom_ppf, norm_ppf, t_cdf};

/// One time point's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// The method's statistic: the C value for EARS, the cumulative sum for CUSUM, the
    /// expected count for Farrington. `None` where it is not a finite number.
    pub statistic: Option<f64>,
    /// The upper threshold on the count scale (R's `upperbound`); `None` where R gives NA.
    pub threshold: Option<f64>,
    /// Whether the count raises a signal; `None` where R gives NA.
    pub alarm: Option<bool>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn bad(function: &'static str, argument: &'static str, message: String) -> Error {
    Error::BadArgument {
        function,
        argument,
        message,
    }
}

/// R's `pmax(a, b)` for one pair: NaN when either is NaN.
fn pmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

// ---------------------------------------------------------------------------------------------
// EARS
// ---------------------------------------------------------------------------------------------

/// Which EARS method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ears {
    /// Baseline t−n … t−1.
    C1,
    /// Baseline t−n−2 … t−3 (a two-week guard band).
    C2,
    /// C2 at t, t−1 and t−2 combined.
    C3,
}

/// EARS settings (R `earsC` control).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarsConfig {
    /// Baseline length n in time points (weeks on weekly series); at least 3. Default 7.
    pub baseline: usize,
    /// Lower limit for the baseline standard deviation (R `minSigma`, default 0).
    pub min_sigma: f64,
    /// One-sided error probability: default 0.001 for C1 and C2, 0.025 for C3.
    pub alpha: Option<f64>,
}

impl Default for EarsConfig {
    fn default() -> Self {
        EarsConfig {
            baseline: 7,
            min_sigma: 0.0,
            alpha: None,
        }
    }
}

/// EARS C1, C2 or C3 over a series (R `earsC`). Per time point t with baseline mean μ and
/// sample standard deviation σ (floored at `min_sigma`) and z = Φ⁻¹(1 − α):
/// - C1 and C2: statistic (y − μ)/σ; threshold μ + zσ; alarm y > threshold.
/// - C3: statistic Σ_{i=0..2} max(0, C2_{t−i} − 1); threshold, as R computes it,
///   max(0, y + σ_t (z − Σ_{i=1,2} max(0, C2_{t−i} − 1))); alarm y > threshold.
///
/// The first evaluable point is baseline + 1 (C1), + 3 (C2) or + 5 (C3), as in R. A point
/// whose windows hold a missing week gets no signal.
pub fn ears(
    series: &[Option<f64>],
    method: Ears,
    cfg: EarsConfig,
) -> Result<Vec<Option<Signal>>, Error> {
    let name = match method {
        Ears::C1 => "ears_c1",
        Ears::C2 => "ears_c2",
        Ears::C3 => "ears_c3",
    };
    let n = cfg.baseline;
    if n < 3 {
        return Err(bad(name, "baseline", format!("must be 3 or more, got {n}")));
    }
    if cfg.min_sigma.is_nan() || cfg.min_sigma < 0.0 {
        return Err(bad(
            name,
            "min_sigma",
            format!("must be 0 or more, got {}", cfg.min_sigma),
        ));
    }
    let alpha = cfg
        .alpha
        .unwrap_or(if method == Ears::C3 { 0.025 } else { 0.001 });
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(bad(
            name,
            "alpha",
            format!("must be between 0 and 1, got {alpha}"),
        ));
    }
    let z = norm_ppf(1.0 - alpha);
    // Baseline mean and σ (floored) for a window ending `gap` points before t.
    let window = |t: usize, gap: usize| -> Option<(f64, f64)> {
        let end = t.checked_sub(gap)?; // exclusive
        let start = end.checked_sub(n)?;
        let xs: Option<Vec<f64>> = series[start..end].iter().copied().collect();
        let (m, s) = mean_sd(&xs?);
        Some((m, pmax(s, cfg.min_sigma)))
    };
    let c2_at = |t: usize| -> Option<f64> {
        let y = series[t]?;
        let (m, s) = window(t, 2)?;
        Some((y - m) / s)
    };
    let first = match method {
        Ears::C1 => n,
        Ears::C2 => n + 2,
        Ears::C3 => n + 4,
    };
    Ok((0..series.len())
        .map(|t| {
            if t < first {
                return None;
            }
            let y = series[t]?;
            match method {
                Ears::C1 | Ears::C2 => {
                    let (m, s) = window(t, if method == Ears::C1 { 0 } else { 2 })?;
                    let threshold = m + z * s;
                    Some(Signal {
                        statistic: finite((y - m) / s),
                        threshold: finite(threshold),
                        alarm: (!threshold.is_nan()).then_some(y > threshold),
                    })
                }
                Ears::C3 => {
                    let (c0, c1, c2) = (c2_at(t)?, c2_at(t - 1)?, c2_at(t - 2)?);
                    let part = |c: f64| pmax(0.0, c - 1.0);
                    let (_, s) = window(t, 2)?;
                    let ub = pmax(0.0, y + s * (z - (part(c2) + part(c1))));
                    Some(Signal {
                        statistic: finite(part(c0) + part(c1) + part(c2)),
                        threshold: finite(ub),
                        alarm: (!ub.is_nan()).then_some(y > ub),
                    })
                }
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// CUSUM
// ---------------------------------------------------------------------------------------------

/// CUSUM on standardised counts (R `algo.cusum` with `trans = "standard"` and `m = NULL`):
/// the first `baseline` points estimate the Poisson mean m (their mean); from then on
/// z_t = (y_t − m)/√m, S_t = max(0, S_{t−1} + z_t − k) with S = 0 before the first monitored
/// point; alarm when S_t ≥ h; threshold ⌈√m (h + k − S_{t−1}) + m⌉, at least 0 (the count that
/// would raise the alarm). No signal during the baseline, after a missing week, or when the
/// baseline mean is 0 (the standardisation is undefined).
pub fn cusum(
    series: &[Option<f64>],
    k: f64,
    h: f64,
    baseline: usize,
) -> Result<Vec<Option<Signal>>, Error> {
    if !k.is_finite() || !h.is_finite() {
        return Err(bad(
            "cusum",
            "k",
            format!("k and h must be finite, got k = {k}, h = {h}"),
        ));
    }
    if baseline < 1 {
        return Err(bad("cusum", "baseline", "must be 1 or more".into()));
    }
    let mut out = vec![None; series.len()];
    if series.len() <= baseline {
        return Ok(out);
    }
    let base: Option<Vec<f64>> = series[..baseline].iter().copied().collect();
    let Some(base) = base else { return Ok(out) };
    let m = base.iter().sum::<f64>() / baseline as f64;
    if m <= 0.0 {
        return Ok(out);
    }
    let sm = m.sqrt();
    let mut s_prev = 0.0;
    for t in baseline..series.len() {
        let Some(y) = series[t] else { break };
        let s = (s_prev + (y - m) / sm - k).max(0.0);
        let mut ub = (sm * (h + k - s_prev) + m).ceil();
        if ub.is_nan() || ub < 0.0 {
            ub = 0.0;
        }
        out[t] = Some(Signal {
            statistic: Some(s),
            threshold: Some(ub),
            alarm: Some(s >= h),
        });
        s_prev = s;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Farrington flexible
// ---------------------------------------------------------------------------------------------

/// Farrington flexible settings (R `farringtonFlexible` control). [`Default`] gives the
/// Noufaily et al. (2013) settings the `surveillance` documentation advises, on weekly data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FarringtonConfig {
    /// Time points per year (52 for weeks).
    pub freq: usize,
    /// Years of history (b, default 5).
    pub years: usize,
    /// Half-window around the reference weeks (w, default 3).
    pub half_window: usize,
    /// Seasonal periods per year (noPeriods, default 10).
    pub periods: usize,
    /// Most recent weeks left out of the baseline (pastWeeksNotIncluded, default 26).
    pub past_weeks_excluded: usize,
    /// Down-weight past outbreaks (reweight, default true).
    pub reweight: bool,
    /// Anscombe residual above which a week is down-weighted (default 2.58).
    pub weights_threshold: f64,
    /// Fit a time trend when possible (default true).
    pub trend: bool,
    /// Trend p-value below which the trend is kept (pThresholdTrend, default 1: always).
    pub p_threshold_trend: f64,
    /// One-sided error probability of the threshold (default 0.05).
    pub alpha: f64,
    /// No alarm with fewer than `limit54.0` cases in the last `limit54.1` weeks, the current
    /// week included (default 5 in 4).
    pub limit54: (f64, usize),
}

impl Default for FarringtonConfig {
    fn default() -> Self {
        FarringtonConfig {
            freq: 52,
            years: 5,
            half_window: 3,
            periods: 10,
            past_weeks_excluded: 26,
            reweight: true,
            weights_threshold: 2.58,
            trend: true,
            p_threshold_trend: 1.0,
            alpha: 0.05,
            limit54: (5.0, 4),
        }
    }
}

/// Farrington flexible (R `farringtonFlexible` with `thresholdMethod = "nbPlugin"` and the
/// settings in `cfg`). For each week k from `freq·years + half_window + 1` (1-based), a
/// quasi-Poisson log-linear GLM with a time trend and a `periods`-level seasonal factor is fitted
/// to the weeks from `k − freq·years − half_window` to `k − past_weeks_excluded − 1`; outbreaks
/// are down-weighted by their Anscombe residuals and the model refitted; the trend is dropped
/// when it is not significant or predicts more than the largest baseline count. The threshold
/// is the 1 − α quantile of a negative binomial with the fitted mean μ₀ and dispersion φ (a
/// Poisson when φ = 1). Alarm when the score (y − η₀)/(U − η₀) exceeds 1 (η₀ = log μ₀, as R
/// computes it), y > 0, and the last `limit54.1` weeks hold at least `limit54.0` cases.
///
/// statistic = expected count μ₀ and threshold = U, both only when the limit-54 rule is met
/// (R gives NA otherwise); alarm false when it is not met; no signal when the GLM does not
/// converge with or without its trend, or when a baseline week is missing.
pub fn farrington_flexible(
    series: &[Option<f64>],
    cfg: FarringtonConfig,
) -> Result<Vec<Option<Signal>>, Error> {
    farrington_flexible_where(series, cfg, None)
}

/// [`farrington_flexible`] evaluated only at the points where `wanted` is true (every other
/// point is `None`). Each point's fit depends only on the series, so the points computed are
/// exactly those of the full run; a caller that needs only the latest weeks skips the rest.
pub fn farrington_flexible_where(
    series: &[Option<f64>],
    cfg: FarringtonConfig,
    wanted: Option<&[bool]>,
) -> Result<Vec<Option<Signal>>, Error> {
    let f = "farrington_flexible";
    if cfg.periods < 1 || cfg.freq < 2 * cfg.half_window + 1 + cfg.periods.saturating_sub(1) {
        return Err(bad(
            f,
            "periods",
            format!(
                "{} periods do not fit a year of {} points with a half-window of {}",
                cfg.periods, cfg.freq, cfg.half_window
            ),
        ));
    }
    if cfg.years < 1 {
        return Err(bad(f, "years", "must be 1 or more".into()));
    }
    if !(cfg.alpha > 0.0 && cfg.alpha < 1.0) {
        return Err(bad(
            f,
            "alpha",
            format!("must be between 0 and 1, got {}", cfg.alpha),
        ));
    }
    if cfg.limit54.1 < 1 || cfg.limit54.0 < 0.0 {
        return Err(bad(f, "limit54", "needs cases ≥ 0 and weeks ≥ 1".into()));
    }
    let first = cfg.freq * cfg.years + cfg.half_window + 1; // 1-based
    let mut out = vec![None; series.len()];
    for k in first..=series.len() {
        if wanted.is_none_or(|w| w.get(k - 1).copied().unwrap_or(false)) {
            out[k - 1] = farrington_at(series, k, &cfg);
        }
    }
    Ok(out)
}

/// The factor level of every week (1-based index, `None` outside the model) for week `k`
/// (R `blocks`).
fn blocks(n: usize, k: usize, cfg: &FarringtonConfig) -> Vec<Option<usize>> {
    let (w, p, freq) = (cfg.half_window, cfg.periods, cfg.freq);
    let mut v = vec![None; n + 1];
    for slot in &mut v[k - w..=k] {
        *slot = Some(p);
    }
    for i in 1..=cfg.years {
        let refw = k - freq * i;
        for slot in &mut v[refw - w..=refw + w] {
            *slot = Some(p);
        }
        if p != 1 {
            let period = freq - 2 * w - 1;
            let (len, rest) = (period / (p - 1), period % (p - 1));
            let mut at = refw + w + 1;
            for j in 1..p {
                let l = len + usize::from(j <= rest);
                for slot in &mut v[at..at + l] {
                    *slot = Some(j);
                }
                at += l;
            }
        }
    }
    v
}

fn farrington_at(series: &[Option<f64>], k: usize, cfg: &FarringtonConfig) -> Option<Signal> {
    let y_now = series[k - 1]?;
    let mut blocks = blocks(series.len(), k, cfg);
    let excluded_from = k.saturating_sub(cfg.past_weeks_excluded);
    for slot in &mut blocks[excluded_from..=k] {
        *slot = None;
    }
    // Baseline rows: (week, level, count).
    let mut rows: Vec<(f64, usize, f64)> = Vec::new();
    for (week, level) in blocks.iter().enumerate() {
        // Missing weeks leave the baseline, as R drops NA responses.
        if let (Some(level), Some(count)) =
            (level, series.get(week.wrapping_sub(1)).copied().flatten())
        {
            rows.push((week as f64, *level, count));
        }
    }
    let mut levels: Vec<usize> = rows.iter().map(|r| r.1).collect();
    levels.sort_unstable();
    levels.dedup();
    let factors = cfg.periods != 1;
    // The level predicted for week k must be a level of the model.
    if factors && !levels.contains(&cfg.periods) {
        return None;
    }
    let design = |trend: bool| -> (Vec<Vec<f64>>, Vec<f64>) {
        let row = |week: f64, level: usize| {
            let mut x = vec![1.0];
            if trend {
                x.push(week);
            }
            if factors {
                x.extend(
                    levels[1..]
                        .iter()
                        .map(|&l| if l == level { 1.0 } else { 0.0 }),
                );
            }
            x
        };
        let xs = rows.iter().map(|r| row(r.0, r.1)).collect();
        (xs, row(k as f64, cfg.periods))
    };
    let y: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let fit_fun = |trend: bool| -> Option<(Glm, Vec<f64>, bool)> {
        let (x, x0) = design(trend);
        let mut used_trend = trend;
        let mut model = glm_poisson(&x, &y, &vec![1.0; y.len()]);
        let (x, x0) = if !model.converged && trend {
            used_trend = false;
            let (x, x0) = design(false);
            model = glm_poisson(&x, &y, &vec![1.0; y.len()]);
            (x, x0)
        } else {
            (x, x0)
        };
        if !model.converged {
            return None;
        }
        if cfg.reweight {
            let phi = model.dispersion().max(1.0);
            let s: Vec<f64> = (0..y.len())
                .map(|i| {
                    let mu = model.mu[i];
                    1.5 * (y[i].powf(2.0 / 3.0) * mu.powf(-1.0 / 6.0) - mu.sqrt())
                        / (phi * (1.0 - model.hat[i])).sqrt()
                })
                .collect();
            let omega = assign_weights(&s, cfg.weights_threshold);
            model = glm_poisson(&x, &y, &omega);
        }
        Some((model, x0, used_trend))
    };
    let (mut model, mut x0, with_trend) = fit_fun(cfg.trend)?;
    if with_trend {
        let pred = x0
            .iter()
            .zip(&model.beta)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            .exp();
        let significant = model.coef_p_value(1) < cfg.p_threshold_trend;
        let max_y = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let do_trend = cfg.years >= 3 && significant && pred <= max_y;
        if !do_trend {
            (model, x0, _) = fit_fun(false)?;
        }
    }
    let phi = model.dispersion().max(1.0);
    let eta0: f64 = x0.iter().zip(&model.beta).map(|(a, b)| a * b).sum();
    let mu0 = eta0.exp();
    let upper = if mu0.is_infinite() {
        f64::NAN
    } else if phi > 1.0 {
        nbinom_ppf(1.0 - cfg.alpha, mu0 / (phi - 1.0), 1.0 / phi)
    } else {
        pois_ppf(1.0 - cfg.alpha, mu0)
    };
    let score = if upper.is_nan() {
        f64::NAN
    } else {
        (y_now - eta0) / (upper - eta0)
    };
    let recent: Option<f64> = series[k - cfg.limit54.1..k].iter().copied().sum();
    let enough = recent? >= cfg.limit54.0;
    Some(Signal {
        statistic: if enough && !upper.is_nan() {
            finite(mu0)
        } else {
            None
        },
        threshold: if enough { finite(upper) } else { None },
        alarm: Some(enough && !score.is_nan() && score > 1.0 && y_now != 0.0),
    })
}

/// R's `algo.farrington.assign.weights`: a week whose residual s exceeds the threshold gets
/// weight γ s⁻², every other week γ, with γ = n / Σ (s⁻² or 1).
fn assign_weights(s: &[f64], threshold: f64) -> Vec<f64> {
    let total: f64 = s
        .iter()
        .map(|&x| if x > threshold { x.powi(-2) } else { 1.0 })
        .sum();
    let gamma = s.len() as f64 / total;
    s.iter()
        .map(|&x| {
            if x > threshold {
                gamma * x.powi(-2)
            } else {
                gamma
            }
        })
        .collect()
}

/// Poisson quantile: the smallest k with P(X ≤ k) ≥ q.
pub fn pois_ppf(q: f64, lambda: f64) -> f64 {
    if !(0.0..1.0).contains(&q) || lambda.is_nan() || lambda < 0.0 {
        return f64::NAN;
    }
    if lambda == 0.0 {
        return 0.0;
    }
    let q = q * (1.0 - 1e-12);
    let cdf = |k: f64| gamma_pq(k + 1.0, lambda).1;
    let mut k = (lambda + norm_ppf(q) * lambda.sqrt()).floor().max(0.0);
    while cdf(k) < q {
        k += 1.0;
    }
    while k > 0.0 && cdf(k - 1.0) >= q {
        k -= 1.0;
    }
    k
}

// ---------------------------------------------------------------------------------------------
// A Poisson GLM with log link, fitted as R's glm.fit does
// ---------------------------------------------------------------------------------------------

/// A fitted Poisson log-linear model, holding what R's `glm` object holds after its last
/// iteration: the coefficients, the fitted means, the working weights and the hat values of
/// the last weighted least-squares step.
#[derive(Debug, Clone)]
struct Glm {
    beta: Vec<f64>,
    mu: Vec<f64>,
    /// Working weights of the last iteration (prior weight × μ of the previous iterate).
    weights: Vec<f64>,
    /// Working residuals (y − μ)/μ.
    residuals: Vec<f64>,
    hat: Vec<f64>,
    /// (X'WX)⁻¹ from the last iteration.
    cov_unscaled: Vec<Vec<f64>>,
    prior: Vec<f64>,
    converged: bool,
}

impl Glm {
    /// The quasi-Poisson dispersion (R `summary.glm`): Σ w r² / (n − p) over positive weights.
    fn dispersion(&self) -> f64 {
        let n = self.prior.iter().filter(|&&w| w > 0.0).count();
        let df = n as f64 - self.beta.len() as f64;
        let ss: f64 = self
            .weights
            .iter()
            .zip(&self.residuals)
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, r)| w * r * r)
            .sum();
        ss / df
    }

    /// The two-sided t-test p-value of coefficient `j` (R `summary.glm` for a quasi family).
    fn coef_p_value(&self, j: usize) -> f64 {
        let n = self.prior.iter().filter(|&&w| w > 0.0).count();
        let df = n as f64 - self.beta.len() as f64;
        let se = (self.dispersion() * self.cov_unscaled[j][j]).sqrt();
        let t = self.beta[j] / se;
        if t.is_nan() {
            return f64::NAN;
        }
        2.0 * t_cdf(-t.abs(), df)
    }
}

/// Iteratively reweighted least squares as R's `glm.fit` runs it for `poisson()`: start from
/// μ = y + 0.1, at most 25 iterations, converged when |dev − dev_old| / (|dev| + 0.1) < 1e-8.
fn glm_poisson(x: &[Vec<f64>], y: &[f64], prior: &[f64]) -> Glm {
    let n = y.len();
    let p = x.first().map_or(0, Vec::len);
    let dev_of = |mu: &[f64]| -> f64 {
        (0..n)
            .map(|i| {
                let yl = if y[i] > 0.0 {
                    y[i] * (y[i] / mu[i]).ln()
                } else {
                    0.0
                };
                2.0 * prior[i] * (yl - (y[i] - mu[i]))
            })
            .sum()
    };
    let mut mu: Vec<f64> = y.iter().map(|v| v + 0.1).collect();
    let mut eta: Vec<f64> = mu.iter().map(|m| m.ln()).collect();
    let mut dev_old = dev_of(&mu);
    let mut beta = vec![0.0; p];
    let mut weights = vec![0.0; n];
    let mut hat = vec![0.0; n];
    let mut cov = vec![vec![0.0; p]; p];
    let mut converged = false;
    for _ in 0..25 {
        // Working response and weights from the current iterate.
        let sw: Vec<f64> = (0..n).map(|i| (prior[i] * mu[i]).sqrt()).collect();
        let z: Vec<f64> = (0..n).map(|i| eta[i] + (y[i] - mu[i]) / mu[i]).collect();
        let a: Vec<Vec<f64>> = (0..n)
            .map(|i| x[i].iter().map(|v| v * sw[i]).collect())
            .collect();
        let b: Vec<f64> = (0..n).map(|i| z[i] * sw[i]).collect();
        let Some(ls) = least_squares(&a, &b) else {
            break;
        };
        beta = ls.beta;
        hat = ls.hat;
        cov = ls.cov_unscaled;
        weights = sw.iter().map(|s| s * s).collect();
        eta = (0..n)
            .map(|i| x[i].iter().zip(&beta).map(|(a, b)| a * b).sum())
            .collect();
        mu = eta.iter().map(|e| e.exp()).collect();
        let dev = dev_of(&mu);
        if !dev.is_finite() {
            break;
        }
        if (dev - dev_old).abs() / (dev.abs() + 0.1) < 1e-8 {
            converged = true;
            break;
        }
        dev_old = dev;
    }
    let residuals = (0..n).map(|i| (y[i] - mu[i]) / mu[i]).collect();
    Glm {
        beta,
        mu,
        weights,
        residuals,
        hat,
        cov_unscaled: cov,
        prior: prior.to_vec(),
        converged,
    }
}

struct LeastSquares {
    beta: Vec<f64>,
    /// Diagonal of the hat matrix A (A'A)⁻¹ A'.
    hat: Vec<f64>,
    cov_unscaled: Vec<Vec<f64>>,
}

/// Least squares by Householder QR (full column rank required; `None` otherwise).
fn least_squares(a: &[Vec<f64>], b: &[f64]) -> Option<LeastSquares> {
    let n = a.len();
    let p = a.first().map_or(0, Vec::len);
    if n < p || p == 0 {
        return None;
    }
    // Column-major copy.
    let mut q: Vec<Vec<f64>> = (0..p).map(|j| (0..n).map(|i| a[i][j]).collect()).collect();
    let mut rhs = b.to_vec();
    let mut vs: Vec<Vec<f64>> = Vec::with_capacity(p);
    let mut r = vec![vec![0.0; p]; p];
    for j in 0..p {
        let norm = q[j][j..].iter().map(|v| v * v).sum::<f64>().sqrt();
        let scale = q[j].iter().map(|v| v.abs()).fold(0.0, f64::max);
        if norm <= 1e-11 * scale.max(1e-300) || norm == 0.0 {
            return None;
        }
        let alpha = if q[j][j] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = vec![0.0; n];
        v[j] = q[j][j] - alpha;
        v[j + 1..].copy_from_slice(&q[j][j + 1..]);
        let vnorm2: f64 = v[j..].iter().map(|x| x * x).sum();
        if vnorm2 > 0.0 {
            for col in q.iter_mut().skip(j) {
                let d: f64 = (j..n).map(|i| v[i] * col[i]).sum::<f64>() * 2.0 / vnorm2;
                for i in j..n {
                    col[i] -= d * v[i];
                }
            }
            let d: f64 = (j..n).map(|i| v[i] * rhs[i]).sum::<f64>() * 2.0 / vnorm2;
            for i in j..n {
                rhs[i] -= d * v[i];
            }
        }
        for (k, col) in q.iter().enumerate().skip(j) {
            r[j][k] = col[j];
        }
        vs.push(v);
    }
    // Back substitution R β = Q'b.
    let mut beta = vec![0.0; p];
    for j in (0..p).rev() {
        let s: f64 = (j + 1..p).map(|k| r[j][k] * beta[k]).sum();
        beta[j] = (rhs[j] - s) / r[j][j];
    }
    // R⁻¹ (upper triangular) and (R'R)⁻¹ = R⁻¹ R⁻ᵀ.
    let mut rinv = vec![vec![0.0; p]; p];
    for i in 0..p {
        rinv[i][i] = 1.0 / r[i][i];
        for j in (0..i).rev() {
            let s: f64 = (j + 1..=i).map(|k| r[j][k] * rinv[k][i]).sum();
            rinv[j][i] = -s / r[j][j];
        }
    }
    let cov: Vec<Vec<f64>> = (0..p)
        .map(|i| {
            (0..p)
                .map(|j| (i.max(j)..p).map(|k| rinv[i][k] * rinv[j][k]).sum())
                .collect()
        })
        .collect();
    // Hat values: squared row norms of the thin Q = A R⁻¹.
    let hat = a
        .iter()
        .map(|row| {
            (0..p)
                .map(|j| {
                    let qij: f64 = (0..=j).map(|k| row[k] * rinv[k][j]).sum();
                    qij * qij
                })
                .sum()
        })
        .collect();
    Some(LeastSquares {
        beta,
        hat,
        cov_unscaled: cov,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_fits_a_line_exactly() {
        let a: Vec<Vec<f64>> = (0..5).map(|i| vec![1.0, f64::from(i)]).collect();
        let b: Vec<f64> = (0..5).map(|i| 2.0 + 3.0 * f64::from(i)).collect();
        let ls = least_squares(&a, &b).unwrap();
        assert!((ls.beta[0] - 2.0).abs() < 1e-12 && (ls.beta[1] - 3.0).abs() < 1e-12);
        // The hat values of a design with p columns sum to p.
        assert!((ls.hat.iter().sum::<f64>() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn blocks_cover_the_year_between_windows() {
        let cfg = FarringtonConfig::default();
        let k = 300;
        let b = blocks(400, k, &cfg);
        // Week k−52: reference window; the 45 weeks after it are levels 1..9, 5 each.
        assert_eq!(b[k - 52], Some(10));
        assert_eq!(b[k - 52 + 4], Some(1));
        assert_eq!(b[k - 52 + 8], Some(1));
        assert_eq!(b[k - 52 + 9], Some(2));
        assert_eq!(b[k - 4], Some(9));
        assert_eq!(b[k - 3], Some(10));
        assert_eq!(b[k - 5 * 52 - 3], Some(10));
        assert_eq!(b[k - 5 * 52 - 4], None);
    }
}
