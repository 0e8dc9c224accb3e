//! Window functions over a partition: `fingertips_quintile(value, polarity) OVER (…)` and
//! `phe_quantile(value, nq, invert) OVER (…)` (drd-stats `rank`). Each returns the group
//! number (Int32), NULL for a NULL value or when the partition has too few values.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use drd_stats::compare::Polarity;
use drd_stats::rank::{fingertips_quintile, phe_quantile};

/// Which grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Method {
    Quintile,
    PheQuantile,
}

/// A quantile-group window function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GroupFunction {
    name: &'static str,
    method: Method,
    signature: Signature,
}

impl WindowUDFImpl for GroupFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, given: &[DataType]) -> Result<Vec<DataType>> {
        let want = match self.method {
            Method::Quintile => vec![DataType::Float64, DataType::Utf8],
            Method::PheQuantile => vec![DataType::Float64, DataType::Int64, DataType::Boolean],
        };
        if given.len() != want.len() {
            let args = match self.method {
                Method::Quintile => "value, polarity",
                Method::PheQuantile => "value, nq, invert",
            };
            return plan_err!(
                "{} takes ({args}), got {} arguments",
                self.name,
                given.len()
            );
        }
        if !(given[0].is_numeric() || given[0] == DataType::Null) {
            return plan_err!(
                "{}: argument 'value' must be a number, got {}",
                self.name,
                given[0]
            );
        }
        Ok(want)
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs<'_>,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(GroupEvaluator {
            name: self.name,
            method: self.method,
        }))
    }

    fn field(&self, args: WindowUDFFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(args.name(), DataType::Int32, true)))
    }
}

#[derive(Debug)]
struct GroupEvaluator {
    name: &'static str,
    method: Method,
}

impl PartitionEvaluator for GroupEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let name = self.name;
        let v = cast(&values[0], &DataType::Float64)?;
        let v = v.as_primitive::<Float64Type>();
        let vals: Vec<Option<f64>> = (0..num_rows)
            .map(|i| (!v.is_null(i)).then(|| v.value(i)))
            .collect();
        let groups: Vec<Option<i32>> = match self.method {
            Method::Quintile => {
                let p = values[1].as_string::<i32>();
                if num_rows > 0 && p.is_null(0) {
                    return exec_err!(
                        "{name}: argument 'polarity' is NULL but a value is required"
                    );
                }
                let pol = Polarity::parse(name, if num_rows > 0 { p.value(0) } else { "none" })
                    .map_err(|e| datafusion::error::DataFusionError::Execution(e.to_string()))?;
                fingertips_quintile(&vals, pol)
                    .into_iter()
                    .map(|g| g.map(i32::from))
                    .collect()
            }
            Method::PheQuantile => {
                let nq = values[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                let inv = values[2].as_boolean();
                if num_rows > 0 && (nq.is_null(0) || inv.is_null(0)) {
                    return exec_err!("{name}: arguments 'nq' and 'invert' must not be NULL");
                }
                let (n, invert) = if num_rows > 0 {
                    (nq.value(0), inv.value(0))
                } else {
                    (1, true)
                };
                if !(1..=1000).contains(&n) {
                    return exec_err!("{name}: argument 'nq' must be between 1 and 1000, got {n}");
                }
                phe_quantile(&vals, n as u32, invert)
                    .map_err(|e| datafusion::error::DataFusionError::Execution(e.to_string()))?
                    .into_iter()
                    .map(|g| g.map(|g| g as i32))
                    .collect()
            }
        };
        Ok(Arc::new(Int32Array::from(groups)))
    }
}

/// The window functions.
pub fn window_functions() -> Vec<WindowUDF> {
    [
        ("fingertips_quintile", Method::Quintile),
        ("phe_quantile", Method::PheQuantile),
    ]
    .into_iter()
    .map(|(name, method)| {
        WindowUDF::from(GroupFunction {
            name,
            method,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}
