//! Directly standardised rates with Dobson limits (methods.md §3).

use crate::ci::{byar, check_conf};
use crate::{Error, Interval};

/// The European Standard Population 2013 as PHE ships it: 19 bands 0–4, 5–9, …, 85–89, 90+
/// (methods.md §3), summing to 100,000.
pub const ESP2013: [f64; 19] = [
    5000.0, 5500.0, 5500.0, 5500.0, 6000.0, 6000.0, 6500.0, 7000.0, 7000.0, 7000.0, 7000.0, 6500.0,
    6000.0, 5500.0, 5000.0, 4000.0, 2500.0, 1500.0, 1000.0,
];

/// A DSR with its limits, or suppressed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dsr {
    /// The rate per `multiplier`; `None` when suppressed (total count under 10).
    pub value: Option<f64>,
    /// Dobson limits; `None` when suppressed.
    pub interval: Interval,
    /// Σ counts.
    pub total_count: f64,
    /// Σ populations.
    pub total_pop: f64,
}

/// Why a DSR is not shown (methods.md §3, the PHE wording).
pub const SUPPRESSED_NOTE: &str = "dsr NA for total count < 10";

/// One age band: events (`None` counts as 0), population and standard weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Events.
    pub count: Option<f64>,
    /// Population.
    pub pop: f64,
    /// Standard population weight.
    pub std_pop: f64,
}

/// DSR = Σ(xᵢwᵢ/nᵢ)/Σwᵢ × multiplier with Dobson limits
/// DSR + sqrt(var/O)·(Byar(O) − O), var = Σ xᵢ(wᵢ/nᵢ)² / (Σwᵢ)² (methods.md §3). Suppressed when
/// O < 10.
pub fn dsr(bands: &[Band], conf: f64, multiplier: f64) -> Result<Dsr, Error> {
    const F: &str = "dsr";
    check_conf(F, conf)?;
    if !(multiplier.is_finite() && multiplier > 0.0) {
        return Err(Error::BadArgument {
            function: F,
            argument: "multiplier",
            message: format!("must be greater than 0, got {multiplier}"),
        });
    }
    let (mut o, mut pop, mut w_sum, mut num, mut var_num) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for b in bands {
        let x = b.count.unwrap_or(0.0);
        if !(x.is_finite() && x >= 0.0) {
            return Err(Error::BadArgument {
                function: F,
                argument: "count",
                message: format!("must be a count of 0 or more, got {x}"),
            });
        }
        if !(b.pop.is_finite() && b.pop > 0.0) {
            return Err(Error::BadArgument {
                function: F,
                argument: "population",
                message: format!("must be greater than 0 in every band, got {}", b.pop),
            });
        }
        if !(b.std_pop.is_finite() && b.std_pop >= 0.0) {
            return Err(Error::BadArgument {
                function: F,
                argument: "std_pop",
                message: format!("must be 0 or more, got {}", b.std_pop),
            });
        }
        let r = b.std_pop / b.pop;
        o += x;
        pop += b.pop;
        w_sum += b.std_pop;
        num += x * r;
        var_num += x * r * r;
    }
    if o < 10.0 {
        return Ok(Dsr {
            value: None,
            interval: Interval {
                lower: None,
                upper: None,
            },
            total_count: o,
            total_pop: pop,
        });
    }
    let value = num / w_sum;
    let var = var_num / (w_sum * w_sum);
    let k = (var / o).sqrt();
    let by = byar(o, conf)?;
    let lim = |b: Option<f64>| b.map(|b| (value + k * (b - o)) * multiplier);
    Ok(Dsr {
        value: Some(value * multiplier),
        interval: Interval {
            lower: lim(by.lower),
            upper: lim(by.upper),
        },
        total_count: o,
        total_pop: pop,
    })
}
