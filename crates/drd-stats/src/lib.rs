//! drdsurv's indicator statistics: the Public Health England / OHID methods
//! (PHEindicatormethods) and the Fingertips benchmark comparison, as pure functions.
//!
//! `docs/methods.md` is the specification; each function names the section it implements.
//! [`dist`] holds the distribution functions (normal, incomplete gamma, chi-square), [`ci`]
//! the intervals for proportions, counts, rates and ratios, [`dsr`] directly standardised
//! rates with Dobson limits, and [`compare`] the benchmark comparison. [`disclosure`] holds
//! the disclosure-control policies (domain.md §5) and [`alerts`] the aberration-detection
//! methods for drug alerts (domain.md §6). Every function returns
//! an [`Interval`] or a value, or an [`Error`] naming the function and the bad argument.
//! `drd-engine` (a later crate) registers these as SQL functions; this crate knows nothing of
//! DataFusion.
//!
//! ```
//! let ci = drd_stats::ci::wilson(81.0, 263.0, 0.95).unwrap();
//! assert!((ci.lower.unwrap() - 0.2553).abs() < 1e-4); // Newcombe (1998), example
//! ```

pub mod alerts;
pub mod ci;
pub mod compare;
pub mod disclosure;
pub mod dist;
pub mod dsr;
pub mod rank;

/// Lower and upper limits; `None` where the method gives no limit (a negative Byar lower
/// limit, a suppressed value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower limit.
    pub lower: Option<f64>,
    /// Upper limit.
    pub upper: Option<f64>,
}

impl Interval {
    /// Both limits multiplied by `k`.
    pub fn scaled(self, k: f64) -> Interval {
        Interval {
            lower: self.lower.map(|v| v * k),
            upper: self.upper.map(|v| v * k),
        }
    }
}

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An argument is outside what the method accepts (a negative count, x > n, a confidence
    /// level outside (0, 1], an incomplete standard population).
    #[error("{function}: argument '{argument}' {message}")]
    BadArgument {
        /// The function (as named in SQL).
        function: &'static str,
        /// The argument.
        argument: &'static str,
        /// What is wrong with it, with the value.
        message: String,
    },
}
