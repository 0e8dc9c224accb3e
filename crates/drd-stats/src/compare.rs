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
