//! Benchmark comparison as Fingertips does it (methods.md §8): the area's interval against the
//! benchmark's point value, adjusted for polarity.

use crate::Error;

/// Which direction is good (Fingertips `PolarityIds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// RAG, low is good (drug deaths).
    LowIsGood,
    /// RAG, high is good.
    HighIsGood,
    /// Blue/orange/blue: no judgement, higher or lower only.
    None,
}

impl Polarity {
    /// `'low_is_good'`, `'high_is_good'` or `'none'`.
    pub fn parse(function: &'static str, s: &str) -> Result<Polarity, Error> {
        match s {
            "low_is_good" => Ok(Polarity::LowIsGood),
            "high_is_good" => Ok(Polarity::HighIsGood),
            "none" => Ok(Polarity::None),
            _ => Err(Error::BadArgument {
                function,
                argument: "polarity",
                message: format!("must be 'low_is_good', 'high_is_good' or 'none', got '{s}'"),
            }),
        }
    }

    /// The label for an area below (`below = true`) or above the benchmark, at the outer
    /// level when `outer` (Best/Worst).
    fn label(self, below: bool, outer: bool) -> &'static str {
        match (self, below, outer) {
            (Polarity::None, true, _) => "lower",
            (Polarity::None, false, _) => "higher",
            (Polarity::LowIsGood, true, false) | (Polarity::HighIsGood, false, false) => "better",
            (Polarity::LowIsGood, false, false) | (Polarity::HighIsGood, true, false) => "worse",
            (Polarity::LowIsGood, true, true) | (Polarity::HighIsGood, false, true) => "best",
            (Polarity::LowIsGood, false, true) | (Polarity::HighIsGood, true, true) => "worst",
        }
    }
}

/// Not compared: an input is missing (a suppressed value has no interval).
pub const NOT_COMPARED: &str = "not compared";

/// Method 1 (one level): similar when lower ≤ benchmark ≤ upper (inclusive), otherwise better
/// or worse by polarity (higher or lower for `none`).
pub fn one_level(
    value: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
    benchmark: Option<f64>,
    polarity: Polarity,
) -> &'static str {
    let (Some(v), Some(l), Some(u), Some(b)) = (value, lower, upper, benchmark) else {
        return NOT_COMPARED;
    };
    if l <= b && b <= u {
        "similar"
    } else {
        polarity.label(v < b, false)
    }
}

/// Method 17 (two levels): similar inside the 95% interval, better/worse between the 95% and
/// 99.8% limits, best/worst beyond the 99.8% limits (higher/lower for `none`).
pub fn two_level(
    value: Option<f64>,
    ci95: (Option<f64>, Option<f64>),
    ci998: (Option<f64>, Option<f64>),
    benchmark: Option<f64>,
    polarity: Polarity,
) -> &'static str {
    let (Some(v), Some(l95), Some(u95), Some(l998), Some(u998), Some(b)) =
        (value, ci95.0, ci95.1, ci998.0, ci998.1, benchmark)
    else {
        return NOT_COMPARED;
    };
    if l95 <= b && b <= u95 {
        "similar"
    } else {
        let outer = !(l998 <= b && b <= u998);
        polarity.label(v < b, outer)
    }
}

/// Method 12 (double overlapping intervals): similar when the area's interval overlaps the
/// benchmark's, otherwise better/worse (higher/lower) by which side the area lies.
pub fn overlapping(
    value: Option<f64>,
    ci: (Option<f64>, Option<f64>),
    benchmark: Option<f64>,
    benchmark_ci: (Option<f64>, Option<f64>),
    polarity: Polarity,
) -> &'static str {
    let (Some(v), Some(l), Some(u), Some(b), Some(bl), Some(bu)) =
        (value, ci.0, ci.1, benchmark, benchmark_ci.0, benchmark_ci.1)
    else {
        return NOT_COMPARED;
    };
    if l <= bu && bl <= u {
        "similar"
    } else {
        polarity.label(v < b, false)
    }
}

/// Methods 5 and 6 (SPC): the area's value against control limits computed around the
/// benchmark for the area's own denominator (for proportions `ci::funnel_proportion_limit`
/// with the area's n; for DSRs `ci::funnel_poisson_limit` of E = benchmark × denominator /
/// unit, divided back to a rate). Inside the limits (inclusive) is similar.
pub fn spc(
    value: Option<f64>,
    limits: (Option<f64>, Option<f64>),
    benchmark: Option<f64>,
    polarity: Polarity,
) -> &'static str {
    let (Some(v), Some(l), Some(u), Some(b)) = (value, limits.0, limits.1, benchmark) else {
        return NOT_COMPARED;
    };
    if l <= v && v <= u {
        "similar"
    } else {
        polarity.label(v < b, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each variant's rule from methods.md §8, with polarity and missing inputs.
    #[test]
    fn every_variant_labels_as_methods_md_says() {
        let (lo, hi, none) = (Polarity::LowIsGood, Polarity::HighIsGood, Polarity::None);
        // Method 1: the benchmark on the interval's edge is similar (inclusive).
        assert_eq!(
            one_level(Some(5.0), Some(4.0), Some(6.0), Some(6.0), lo),
            "similar"
        );
        assert_eq!(
            one_level(Some(5.0), Some(4.0), Some(5.9), Some(6.0), lo),
            "better"
        );
        assert_eq!(
            one_level(Some(5.0), Some(4.0), Some(5.9), Some(6.0), hi),
            "worse"
        );
        assert_eq!(
            one_level(Some(7.0), Some(6.1), Some(8.0), Some(6.0), none),
            "higher"
        );
        assert_eq!(
            one_level(Some(7.0), None, Some(8.0), Some(6.0), lo),
            NOT_COMPARED
        );
        // Method 12: overlap is enough, even when the benchmark value is outside.
        let cmp = |ci, bci, p| overlapping(Some(5.0), ci, Some(6.5), bci, p);
        assert_eq!(
            cmp((Some(4.0), Some(6.0)), (Some(5.9), Some(7.0)), lo),
            "similar"
        );
        assert_eq!(
            cmp((Some(4.0), Some(5.8)), (Some(5.9), Some(7.0)), lo),
            "better"
        );
        assert_eq!(
            cmp((Some(4.0), Some(5.8)), (Some(5.9), Some(7.0)), hi),
            "worse"
        );
        assert_eq!(
            cmp((Some(4.0), Some(5.8)), (None, Some(7.0)), hi),
            NOT_COMPARED
        );
        // Methods 5/6: the value against limits around the benchmark.
        assert_eq!(
            spc(Some(0.3), (Some(0.2), Some(0.3)), Some(0.25), lo),
            "similar"
        );
        assert_eq!(
            spc(Some(0.31), (Some(0.2), Some(0.3)), Some(0.25), lo),
            "worse"
        );
        assert_eq!(
            spc(Some(0.1), (Some(0.2), Some(0.3)), Some(0.25), hi),
            "worse"
        );
        assert_eq!(
            spc(Some(0.1), (Some(0.2), Some(0.3)), Some(0.25), none),
            "lower"
        );
        assert_eq!(
            spc(None, (Some(0.2), Some(0.3)), Some(0.25), none),
            NOT_COMPARED
        );
    }
}
