//! Properties every interval must have, over random inputs (proptest).

use drd_stats::ci::{byar, count_limits, crude_rate, wilson};
use drd_stats::dsr::{Band, dsr};
use proptest::prelude::*;

fn level() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.95), Just(0.998), 0.5f64..0.9999]
}

proptest! {
    /// Wilson limits bracket the observed proportion and stay in [0, 1].
    #[test]
    fn wilson_brackets_the_proportion(n in 1u32..100_000, frac in 0.0f64..=1.0, c in level()) {
        let n = f64::from(n);
        let x = (frac * n).round();
        let ci = wilson(x, n, c).unwrap();
        let (l, u) = (ci.lower.unwrap(), ci.upper.unwrap());
        prop_assert!(0.0 <= l && l <= x / n + 1e-12 && x / n <= u + 1e-12 && u <= 1.0 + 1e-12, "{l} {u} {x}/{n}");
    }

    /// Count limits bracket the count and rise with it, across the switch from exact limits
    /// (under 10) to Byar (10 and over).
    #[test]
    fn count_limits_bracket_and_rise_with_the_count(x in 0u32..20_000, c in level()) {
        let x = f64::from(x);
        let a = count_limits(x, c).unwrap();
        let b = count_limits(x + 1.0, c).unwrap();
        let (au, bu) = (a.upper.unwrap(), b.upper.unwrap());
        prop_assert!(x <= au && au < bu, "upper {au} {bu} at {x}");
        if let Some(al) = a.lower {
            prop_assert!(al <= x, "lower {al} at {x}");
            if let Some(bl) = b.lower {
                prop_assert!(al < bl || (x == 0.0 && al == 0.0), "lower {al} {bl} at {x}");
            }
        }
    }

    /// For 10 or more events, a one-band DSR's limits are the crude rate's Byar limits
    /// (methods.md s3 reduces to Byar(O)/n with one band).
    #[test]
    fn one_band_dsr_equals_the_crude_rate(x in 10u32..50_000, n in 1_000u32..5_000_000, w in 1u32..100_000, c in level()) {
        let (x, n) = (f64::from(x), f64::from(n));
        let d = dsr(&[Band { count: Some(x), pop: n, std_pop: f64::from(w) }], c, 100_000.0).unwrap();
        let (rate, ci) = crude_rate(x, n, c, 100_000.0).unwrap();
        let by = byar(x, c).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-300);
        prop_assert!(close(d.value.unwrap(), rate));
        prop_assert!(close(d.interval.upper.unwrap(), ci.upper.unwrap()));
        prop_assert!(close(d.interval.upper.unwrap(), by.upper.unwrap() * 100_000.0 / n));
        match (d.interval.lower, ci.lower) {
            (Some(a), Some(b)) => prop_assert!(close(a, b)),
            (a, b) => prop_assert_eq!(a, b),
        }
    }

    /// Every published DSR lies inside its limits.
    #[test]
    fn dsr_lies_inside_its_limits(counts in proptest::collection::vec(0u32..400, 19), c in level()) {
        let bands: Vec<Band> = counts.iter().zip(drd_stats::dsr::ESP2013)
            .map(|(&x, w)| Band { count: Some(f64::from(x)), pop: 10_000.0 + f64::from(x) * 7.0, std_pop: w })
            .collect();
        let d = dsr(&bands, c, 100_000.0).unwrap();
        if let Some(v) = d.value {
            let (l, u) = (d.interval.lower.unwrap(), d.interval.upper.unwrap());
            prop_assert!(l <= v && v <= u, "{l} {v} {u}");
        } else {
            prop_assert!(d.total_count < 10.0);
        }
    }
}

/// The significance labels follow from limits already checked against scipy/statsmodels: a
/// value just outside each limit gets that limit's label, just inside the next one.
#[test]
fn funnel_significance_labels_follow_the_limits() {
    use drd_stats::ci::{
        funnel_proportion_limit, proportion_funnel_significance, ratio_funnel_significance,
    };
    let (p_bar, n) = (0.2, 400.0);
    let l998 = funnel_proportion_limit(p_bar, n, 0.998, false).unwrap();
    let l95 = funnel_proportion_limit(p_bar, n, 0.95, false).unwrap();
    let u95 = funnel_proportion_limit(p_bar, n, 0.95, true).unwrap();
    let u998 = funnel_proportion_limit(p_bar, n, 0.998, true).unwrap();
    let label = |v: f64| proportion_funnel_significance(v * n, n, p_bar).unwrap();
    assert_eq!(label(l998 - 1e-6), "Low (0.001)");
    assert_eq!(label(l998 + 1e-6), "Low (0.025)");
    assert_eq!(label(l95 + 1e-6), "Not significant");
    assert_eq!(label(u95 + 1e-6), "High (0.025)");
    assert_eq!(label(u998 + 1e-6), "High (0.001)");
    // Ratios: 30 observed against 12 expected is far above 1; 2 against 12 far below; 11
    // against 12 is not significant; 0 against 1 cannot be Low (its upper limit is 3.69).
    assert_eq!(
        ratio_funnel_significance(30.0, 12.0, 1.0).unwrap(),
        "High (0.001)"
    );
    assert_eq!(
        ratio_funnel_significance(2.0, 12.0, 1.0).unwrap(),
        "Low (0.001)"
    );
    assert_eq!(
        ratio_funnel_significance(11.0, 12.0, 1.0).unwrap(),
        "Not significant"
    );
    assert_eq!(
        ratio_funnel_significance(0.0, 1.0, 1.0).unwrap(),
        "Not significant"
    );
    // 18 against 10: the 95% lower limit (Byar, 10.67) is above 10 but the 99.8% one is not.
    assert_eq!(
        ratio_funnel_significance(18.0, 10.0, 1.0).unwrap(),
        "High (0.025)"
    );
}
