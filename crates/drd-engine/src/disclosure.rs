//! Disclosure control in SQL (drd-stats `disclosure`), for analysts preparing outputs; the
//! publication boundary (drd-report) applies the same functions in Rust:
//!
//! - `nhs_digital_count(count, area_type)`: the published count (Int64), NULL when suppressed;
//!   `area_type = 'england'` is not controlled;
//! - `nhs_digital_value(value, count, area_type)`: a rate, share or interval derived from
//!   `count`, NULL when the count would be suppressed;
//! - `ckm_record_key(pseudonym)`: a record's stable key 0–255 (Int32);
//! - `ckm_count(pseudonym)`: an aggregate, the group's perturbed count under the cell key
//!   method with the synthetic p-table (or the one given to [`ckm_count_with`]). The cell
//!   key, pcv and pvalue are never returned.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use drd_stats::disclosure::{PTable, Scope, ckm, nhs_digital, record_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Which {
    Count,
    Value,
    RecordKey,
}

/// A scalar disclosure function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DisclosureFunction {
    name: &'static str,
    which: Which,
    signature: Signature,
}

fn count_of(name: &str, v: f64) -> Result<u64> {
    if !(v >= 0.0 && v.fract() == 0.0 && v < 9.0e15) {
        return exec_err!("{name}: argument 'count' must be a whole number 0 or more, got {v}");
    }
    Ok(v as u64)
}

impl ScalarUDFImpl for DisclosureFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.which {
            Which::Count => DataType::Int64,
            Which::Value => DataType::Float64,
            Which::RecordKey => DataType::Int32,
        })
    }

    fn coerce_types(&self, given: &[DataType]) -> Result<Vec<DataType>> {
        let (args, want): (&str, Vec<DataType>) = match self.which {
            Which::Count => ("count, area_type", vec![DataType::Float64, DataType::Utf8]),
            Which::Value => (
                "value, count, area_type",
                vec![DataType::Float64, DataType::Float64, DataType::Utf8],
            ),
            Which::RecordKey => ("pseudonym", vec![DataType::Utf8]),
        };
        if given.len() != want.len() {
            return plan_err!(
                "{} takes ({args}), got {} arguments",
                self.name,
                given.len()
            );
        }
        Ok(want)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let name = self.name;
        let out: ArrayRef = match self.which {
            Which::RecordKey => {
                let p = arrays[0].as_string::<i32>();
                Arc::new(Int32Array::from_iter((0..n).map(|i| {
                    (!p.is_null(i)).then(|| i32::from(record_key(p.value(i))))
                })))
            }
            Which::Count | Which::Value => {
                let off = usize::from(self.which == Which::Value);
                let counts = cast(&arrays[off], &DataType::Float64)?;
                let counts = counts.as_primitive::<Float64Type>();
                let area = arrays[off + 1].as_string::<i32>();
                let mut controlled = Vec::with_capacity(n);
                for i in 0..n {
                    if counts.is_null(i) {
                        controlled.push(None);
                        continue;
                    }
                    if area.is_null(i) {
                        return exec_err!("{name}: argument 'area_type' must not be NULL");
                    }
                    let c = count_of(name, counts.value(i))?;
                    controlled.push(Some(nhs_digital(c, Scope::of_area_type(area.value(i)))));
                }
                if self.which == Which::Count {
                    Arc::new(Int64Array::from_iter(
                        controlled
                            .iter()
                            .map(|d| d.and_then(|d| d.count).map(|c| c as i64)),
                    ))
                } else {
                    let values = cast(&arrays[0], &DataType::Float64)?;
                    let values = values.as_primitive::<Float64Type>();
                    Arc::new(Float64Array::from_iter((0..n).map(|i| {
                        match controlled[i] {
                            Some(d) if d.derived_visible && !values.is_null(i) => {
                                Some(values.value(i))
                            }
                            _ => None,
                        }
                    })))
                }
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `ckm_count(pseudonym)`.
#[derive(Debug)]
pub struct CkmCount {
    table: Arc<PTable>,
    signature: Signature,
}

impl PartialEq for CkmCount {
    fn eq(&self, other: &Self) -> bool {
        self.table.name == other.table.name
    }
}

impl Eq for CkmCount {}

impl std::hash::Hash for CkmCount {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.table.name.hash(state);
    }
}

impl AggregateUDFImpl for CkmCount {
    fn name(&self) -> &str {
        "ckm_count"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn coerce_types(&self, given: &[DataType]) -> Result<Vec<DataType>> {
        if given.len() != 1 {
            return plan_err!("ckm_count takes (pseudonym), got {} arguments", given.len());
        }
        Ok(vec![DataType::Utf8])
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(["n", "key_sum"]
            .iter()
            .map(|n| {
                Arc::new(Field::new(
                    format!("{}[{n}]", args.name),
                    DataType::UInt64,
                    true,
                ))
            })
            .collect())
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CkmAcc {
            table: self.table.clone(),
            n: 0,
            key_sum: 0,
        }))
    }
}

/// Record count and the sum of record keys (mod 256 at the end); the state never leaves the
/// query as a result.
#[derive(Debug)]
struct CkmAcc {
    table: Arc<PTable>,
    n: u64,
    key_sum: u64,
}

impl Accumulator for CkmAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let p = values[0].as_string::<i32>();
        for i in 0..p.len() {
            if !p.is_null(i) {
                self.n += 1;
                self.key_sum = (self.key_sum + u64::from(record_key(p.value(i)))) % 256;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::UInt64(Some(self.n)),
            ScalarValue::UInt64(Some(self.key_sum)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let n: &UInt64Array = states[0].as_primitive::<UInt64Type>();
        let k: &UInt64Array = states[1].as_primitive::<UInt64Type>();
        for i in 0..n.len() {
            self.n += n.value(i);
            self.key_sum = (self.key_sum + k.value(i)) % 256;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let d = ckm(self.n, self.key_sum as u8, &self.table, Scope::SubNational);
        Ok(ScalarValue::Int64(d.count.map(|c| c as i64)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }
}

/// The scalar disclosure functions.
pub fn disclosure_functions() -> Vec<ScalarUDF> {
    [
        ("nhs_digital_count", Which::Count),
        ("nhs_digital_value", Which::Value),
        ("ckm_record_key", Which::RecordKey),
    ]
    .into_iter()
    .map(|(name, which)| {
        ScalarUDF::from(DisclosureFunction {
            name,
            which,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

/// `ckm_count` with the synthetic p-table.
pub fn ckm_count() -> AggregateUDF {
    ckm_count_with(PTable::synthetic())
}

/// `ckm_count` with a p-table the user supplies.
pub fn ckm_count_with(table: PTable) -> AggregateUDF {
    AggregateUDF::from(CkmCount {
        table: Arc::new(table),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}
