//! Drug-alert window functions (drd-stats `alerts`), used as
//! `ears_c2(deaths) OVER (PARTITION BY series ORDER BY week)`:
//!
//! - `ears_c1(count [, baseline [, min_sigma [, alpha]]])`, `ears_c2(…)`, `ears_c3(…)`:
//!   baseline 7 weeks, min_sigma 0, alpha 0.001 (C1, C2) or 0.025 (C3) by default;
//! - `cusum(count, k, h [, baseline])`: baseline 52 weeks by default;
//! - `farrington_flexible(count [, alpha [, evaluate]])`: the Noufaily settings, alpha 0.05 by
//!   default; `evaluate` (boolean, per row) limits the fits to the rows where it is true (the
//!   others are NULL), since each fit costs far more than the other methods' whole series.
//!
//! Each returns a struct `{statistic, threshold, alarm}` per row, NULL until the partition has
//! enough baseline. Settings must be the same on every row of a partition.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{DataFusionError, Result, exec_err, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use drd_stats::alerts::{
    Ears, EarsConfig, FarringtonConfig, Signal, cusum, ears, farrington_flexible_where,
};

/// Which method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Method {
    Ears(EarsKind),
    Cusum,
    Farrington,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EarsKind {
    C1,
    C2,
    C3,
}

impl Method {
    /// Argument names after `count`, and how many of them are required.
    fn settings(self) -> (&'static [&'static str], usize) {
        match self {
            Method::Ears(_) => (&["baseline", "min_sigma", "alpha"], 0),
            Method::Cusum => (&["k", "h", "baseline"], 2),
            Method::Farrington => (&["alpha", "evaluate"], 0),
        }
    }
}

/// The struct every alert function returns.
pub fn signal_fields() -> Fields {
    Fields::from(vec![
        Field::new("statistic", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        Field::new("alarm", DataType::Boolean, true),
    ])
}

/// An alert window function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AlertFunction {
    name: &'static str,
    method: Method,
    signature: Signature,
}

impl WindowUDFImpl for AlertFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, given: &[DataType]) -> Result<Vec<DataType>> {
        let (names, required) = self.method.settings();
        if given.len() < 1 + required || given.len() > 1 + names.len() {
            let opt: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if i < required {
                        n.to_string()
                    } else {
                        format!("[{n}]")
                    }
                })
                .collect();
            return plan_err!(
                "{} takes (count, {}), got {} arguments",
                self.name,
                opt.join(", "),
                given.len()
            );
        }
        let evaluate = (self.method == Method::Farrington).then_some(2);
        for (i, t) in given.iter().enumerate() {
            if Some(i) == evaluate {
                if !matches!(t, DataType::Boolean | DataType::Null) {
                    return plan_err!(
                        "{}: argument 'evaluate' must be a boolean, got {t}",
                        self.name
                    );
                }
            } else if !(t.is_numeric() || *t == DataType::Null) {
                let arg = if i == 0 { "count" } else { names[i - 1] };
                return plan_err!("{}: argument '{arg}' must be a number, got {t}", self.name);
            }
        }
        Ok((0..given.len())
            .map(|i| {
                if Some(i) == evaluate {
                    DataType::Boolean
                } else {
                    DataType::Float64
                }
            })
            .collect())
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs<'_>,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(AlertEvaluator {
            name: self.name,
            method: self.method,
        }))
    }

    fn field(&self, args: WindowUDFFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            args.name(),
            DataType::Struct(signal_fields()),
            true,
        )))
    }
}

#[derive(Debug)]
struct AlertEvaluator {
    name: &'static str,
    method: Method,
}

impl AlertEvaluator {
    /// Setting `i` (0-based after `count`): the same number on every row, or `None` when the
    /// argument is not given.
    fn setting(&self, values: &[ArrayRef], i: usize) -> Result<Option<f64>> {
        let Some(a) = values.get(i + 1) else {
            return Ok(None);
        };
        let (names, _) = self.method.settings();
        let a = cast(a, &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        if a.is_empty() {
            return Ok(None);
        }
        if a.null_count() > 0 {
            return exec_err!("{}: argument '{}' must not be NULL", self.name, names[i]);
        }
        let v = a.value(0);
        if a.values().iter().any(|x| x.to_bits() != v.to_bits()) {
            return exec_err!(
                "{}: argument '{}' must be the same on every row of a partition",
                self.name,
                names[i]
            );
        }
        Ok(Some(v))
    }
}

fn whole(name: &str, arg: &str, v: f64, min: f64, max: f64) -> Result<usize> {
    if v.fract() != 0.0 || v < min || v > max {
        return exec_err!(
            "{name}: argument '{arg}' must be a whole number from {min} to {max}, got {v}"
        );
    }
    Ok(v as usize)
}

impl PartitionEvaluator for AlertEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let name = self.name;
        let counts = cast(&values[0], &DataType::Float64)?;
        let counts = counts.as_primitive::<Float64Type>();
        let series: Vec<Option<f64>> = (0..num_rows)
            .map(|i| (!counts.is_null(i)).then(|| counts.value(i)))
            .collect();
        if let Some(bad) = series
            .iter()
            .flatten()
            .find(|c| !(c.is_finite() && **c >= 0.0))
        {
            return exec_err!("{name}: argument 'count' must be 0 or more, got {bad}");
        }
        let to_err = |e: drd_stats::Error| DataFusionError::Execution(e.to_string());
        let signals: Vec<Option<Signal>> = match self.method {
            Method::Ears(kind) => {
                let mut cfg = EarsConfig::default();
                if let Some(b) = self.setting(values, 0)? {
                    cfg.baseline = whole(name, "baseline", b, 3.0, 520.0)?;
                }
                if let Some(m) = self.setting(values, 1)? {
                    cfg.min_sigma = m;
                }
                cfg.alpha = self.setting(values, 2)?;
                let m = match kind {
                    EarsKind::C1 => Ears::C1,
                    EarsKind::C2 => Ears::C2,
                    EarsKind::C3 => Ears::C3,
                };
                ears(&series, m, cfg).map_err(to_err)?
            }
            Method::Cusum => {
                let k = self.setting(values, 0)?.unwrap_or(f64::NAN);
                let h = self.setting(values, 1)?.unwrap_or(f64::NAN);
                let baseline = match self.setting(values, 2)? {
                    Some(b) => whole(name, "baseline", b, 1.0, 5200.0)?,
                    None => 52,
                };
                cusum(&series, k, h, baseline).map_err(to_err)?
            }
            Method::Farrington => {
                let mut cfg = FarringtonConfig::default();
                if let Some(a) = self.setting(values, 0)? {
                    cfg.alpha = a;
                }
                let wanted: Option<Vec<bool>> = values.get(2).map(|a| {
                    let a = a.as_boolean();
                    (0..num_rows).map(|i| a.is_valid(i) && a.value(i)).collect()
                });
                farrington_flexible_where(&series, cfg, wanted.as_deref()).map_err(to_err)?
            }
        };
        let mut stat = Float64Builder::with_capacity(num_rows);
        let mut thr = Float64Builder::with_capacity(num_rows);
        let mut alarm = BooleanBuilder::with_capacity(num_rows);
        let mut valid = Vec::with_capacity(num_rows);
        for s in &signals {
            stat.append_option(s.and_then(|s| s.statistic));
            thr.append_option(s.and_then(|s| s.threshold));
            alarm.append_option(s.and_then(|s| s.alarm));
            valid.push(s.is_some());
        }
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(stat.finish()),
            Arc::new(thr.finish()),
            Arc::new(alarm.finish()),
        ];
        Ok(Arc::new(StructArray::try_new(
            signal_fields(),
            arrays,
            Some(NullBuffer::from(valid)),
        )?))
    }
}

/// The alert window functions.
pub fn alert_functions() -> Vec<WindowUDF> {
    [
        ("ears_c1", Method::Ears(EarsKind::C1)),
        ("ears_c2", Method::Ears(EarsKind::C2)),
        ("ears_c3", Method::Ears(EarsKind::C3)),
        ("cusum", Method::Cusum),
        ("farrington_flexible", Method::Farrington),
    ]
    .into_iter()
    .map(|(name, method)| {
        WindowUDF::from(AlertFunction {
            name,
            method,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}
