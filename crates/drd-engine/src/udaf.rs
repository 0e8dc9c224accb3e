//! The DSR aggregates: `dsr(count, population, std_pop [, multiplier])`,
//! `dsr_lower(count, population, std_pop, conf [, multiplier])` and `dsr_upper(…)`
//! (methods.md §3, drd-stats `dsr`).
//!
//! Each group must hold every band of the standard: 19 rows whose std_pop sums to 100,000
//! (ESP2013). Anything else is a named error, because a model that aggregates only the bands
//! with deaths would otherwise publish a wrong rate silently. A group with a population ≤ 0 in
//! some band gives NULL and a warning instead of failing the whole national query; this
//! deviates from PHEindicatormethods, which stops with an error.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use drd_stats::dsr::{Band, ESP2013, dsr};

/// Every argument coerced to Float64; anything that is not a number is a planning error.
fn all_numbers(name: &str, given: &[DataType]) -> Result<Vec<DataType>> {
    for t in given {
        if !(t.is_numeric() || *t == DataType::Null) {
            return plan_err!("{name}: every argument must be a number, got {t}");
        }
    }
    Ok(vec![DataType::Float64; given.len()])
}

/// Which number a DSR aggregate returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Value,
    Lower,
    Upper,
}

/// `dsr`, `dsr_lower` or `dsr_upper`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DsrFunction {
    name: &'static str,
    part: Part,
    signature: Signature,
}

const DEFAULT_MULTIPLIER: f64 = 100_000.0;

impl DsrFunction {
    fn new(name: &'static str, part: Part) -> DsrFunction {
        DsrFunction {
            name,
            part,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    fn args(&self) -> &'static str {
        match self.part {
            Part::Value => "count, population, std_pop [, multiplier]",
            _ => "count, population, std_pop, conf [, multiplier]",
        }
    }

    /// Arguments before the optional multiplier.
    fn fixed(&self) -> usize {
        if self.part == Part::Value { 3 } else { 4 }
    }
}

impl AggregateUDFImpl for DsrFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn coerce_types(&self, given: &[DataType]) -> Result<Vec<DataType>> {
        let n = self.fixed();
        if given.len() != n && given.len() != n + 1 {
            return plan_err!(
                "{} takes ({}), got {} arguments",
                self.name,
                self.args(),
                given.len()
            );
        }
        all_numbers(self.name, given)
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        Ok(["counts", "pops", "stds"]
            .iter()
            .map(|n| {
                Arc::new(Field::new(
                    format!("{}[{n}]", args.name),
                    list.clone(),
                    true,
                ))
            })
            .chain(["conf", "multiplier"].iter().map(|n| {
                Arc::new(Field::new(
                    format!("{}[{n}]", args.name),
                    DataType::Float64,
                    true,
                ))
            }))
            .collect())
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(DsrAcc {
            name: self.name,
            part: self.part,
            fixed: self.fixed(),
            counts: Vec::new(),
            pops: Vec::new(),
            stds: Vec::new(),
            conf: None,
            multiplier: None,
        }))
    }
}

/// The bands seen so far in one group.
#[derive(Debug)]
struct DsrAcc {
    name: &'static str,
    part: Part,
    fixed: usize,
    counts: Vec<Option<f64>>,
    pops: Vec<Option<f64>>,
    stds: Vec<Option<f64>>,
    conf: Option<f64>,
    multiplier: Option<f64>,
}

fn floats(a: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(a, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

fn list(v: &[Option<f64>]) -> ScalarValue {
    let values: Vec<ScalarValue> = v.iter().map(|x| ScalarValue::Float64(*x)).collect();
    ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Float64))
}

impl DsrAcc {
    fn set_once(&mut self, which: &'static str, v: Option<f64>) -> Result<()> {
        let slot = if which == "conf" {
            &mut self.conf
        } else {
            &mut self.multiplier
        };
        match (*slot, v) {
            (_, None) => Ok(()),
            (None, Some(x)) => {
                *slot = Some(x);
                Ok(())
            }
            (Some(a), Some(b)) if a == b => Ok(()),
            (Some(a), Some(b)) => exec_err!(
                "{}: argument '{which}' must be the same on every row of a group, got {a} and {b}",
                self.name
            ),
        }
    }
}

impl Accumulator for DsrAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let cols: Vec<Float64Array> = values.iter().map(floats).collect::<Result<_>>()?;
        for r in 0..cols.first().map_or(0, Array::len) {
            let get = |c: &Float64Array| (!c.is_null(r)).then(|| c.value(r));
            self.counts.push(get(&cols[0]));
            self.pops.push(get(&cols[1]));
            self.stds.push(get(&cols[2]));
            if self.fixed == 4 {
                let c = get(&cols[3]);
                if c.is_none() {
                    return exec_err!(
                        "{}: argument 'conf' is NULL but a value is required",
                        self.name
                    );
                }
                self.set_once("conf", c)?;
            }
            if let Some(m) = cols.get(self.fixed) {
                let m = get(m);
                if m.is_none() {
                    return exec_err!(
                        "{}: argument 'multiplier' is NULL but a value is required",
                        self.name
                    );
                }
                self.set_once("multiplier", m)?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            list(&self.counts),
            list(&self.pops),
            list(&self.stds),
            ScalarValue::Float64(self.conf),
            ScalarValue::Float64(self.multiplier),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists: Vec<_> = states[..3]
            .iter()
            .map(|a| a.as_list::<i32>().clone())
            .collect();
        let conf = floats(&states[3])?;
        let mult = floats(&states[4])?;
        for r in 0..lists[0].len() {
            for (k, target) in [&mut self.counts, &mut self.pops, &mut self.stds]
                .into_iter()
                .enumerate()
            {
                if lists[k].is_null(r) {
                    continue;
                }
                let v = floats(&lists[k].value(r))?;
                target.extend((0..v.len()).map(|i| (!v.is_null(i)).then(|| v.value(i))));
            }
            self.set_once("conf", (!conf.is_null(r)).then(|| conf.value(r)))?;
            self.set_once("multiplier", (!mult.is_null(r)).then(|| mult.value(r)))?;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let name = self.name;
        if self.counts.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        let mut bands = Vec::with_capacity(self.counts.len());
        for ((c, p), s) in self.counts.iter().zip(&self.pops).zip(&self.stds) {
            let (Some(pop), Some(std_pop)) = (p, s) else {
                return exec_err!(
                    "{name}: population and std_pop must not be NULL (PHE treats a missing population or standard weight as an error)"
                );
            };
            bands.push(Band {
                count: *c,
                pop: *pop,
                std_pop: *std_pop,
            });
        }
        // Rows arrive in whatever order the partitions merge; summing in one canonical order
        // makes the result bit-for-bit the same on every run (re-runs give identical tables).
        bands.sort_by(|a, b| {
            a.std_pop
                .total_cmp(&b.std_pop)
                .then(a.pop.total_cmp(&b.pop))
                .then(a.count.map(f64::to_bits).cmp(&b.count.map(f64::to_bits)))
        });
        let total_std: f64 = bands.iter().map(|b| b.std_pop).sum();
        let esp_total: f64 = ESP2013.iter().sum();
        if bands.len() != ESP2013.len() || (total_std - esp_total).abs() > 1e-6 {
            return exec_err!(
                "{name}: a group has {} age bands with std_pop summing to {total_std}; the standard (ESP2013) has {} bands summing to {esp_total}. Include every band, with a zero count where there were no events",
                bands.len(),
                ESP2013.len()
            );
        }
        if bands.iter().any(|b| b.pop <= 0.0) {
            tracing::warn!(
                function = name,
                "a group has a population of 0 or less; its DSR is NULL"
            );
            return Ok(ScalarValue::Float64(None));
        }
        let conf = self.conf.unwrap_or(0.95);
        let mult = self.multiplier.unwrap_or(DEFAULT_MULTIPLIER);
        let d = dsr(&bands, conf, mult).map_err(|e| {
            datafusion::error::DataFusionError::Execution(e.to_string().replacen("dsr", name, 1))
        })?;
        Ok(ScalarValue::Float64(match self.part {
            Part::Value => d.value,
            Part::Lower => d.interval.lower,
            Part::Upper => d.interval.upper,
        }))
    }

    fn size(&self) -> usize {
        size_of_val(self) + 3 * 16 * self.counts.capacity()
    }
}

/// The DSR aggregates.
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    [
        DsrFunction::new("dsr", Part::Value),
        DsrFunction::new("dsr_lower", Part::Lower),
        DsrFunction::new("dsr_upper", Part::Upper),
    ]
    .into_iter()
    .map(AggregateUDF::from)
    .collect()
}

/// `mean_lower(x, conf)` and `mean_upper(x, conf)`: the t interval of the mean of x over a
/// group (methods.md §5, drd-stats `mean_ci`). NULL values are skipped; fewer than two values
/// give NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MeanFunction {
    name: &'static str,
    upper: bool,
    signature: Signature,
}

impl AggregateUDFImpl for MeanFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn coerce_types(&self, given: &[DataType]) -> Result<Vec<DataType>> {
        if given.len() != 2 {
            return plan_err!(
                "{} takes (x, conf), got {} arguments",
                self.name,
                given.len()
            );
        }
        all_numbers(self.name, given)
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(["n", "mean", "m2", "conf"]
            .iter()
            .map(|n| {
                Arc::new(Field::new(
                    format!("{}[{n}]", args.name),
                    DataType::Float64,
                    true,
                ))
            })
            .collect())
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MeanAcc {
            name: self.name,
            upper: self.upper,
            n: 0.0,
            mean: 0.0,
            m2: 0.0,
            conf: None,
        }))
    }
}

/// Count, mean and sum of squared deviations, updated one value at a time (Welford) and
/// merged by Chan's formula, so large groups lose no precision.
#[derive(Debug)]
struct MeanAcc {
    name: &'static str,
    upper: bool,
    n: f64,
    mean: f64,
    m2: f64,
    conf: Option<f64>,
}

impl MeanAcc {
    fn merge(&mut self, n: f64, mean: f64, m2: f64) {
        if n == 0.0 {
            return;
        }
        let total = self.n + n;
        let delta = mean - self.mean;
        self.mean += delta * n / total;
        self.m2 += m2 + delta * delta * self.n * n / total;
        self.n = total;
    }

    fn set_conf(&mut self, c: f64) -> Result<()> {
        match self.conf {
            Some(a) if a != c => exec_err!(
                "{}: argument 'conf' must be the same on every row of a group, got {a} and {c}",
                self.name
            ),
            _ => {
                self.conf = Some(c);
                Ok(())
            }
        }
    }
}

impl Accumulator for MeanAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let x = floats(&values[0])?;
        let conf = floats(&values[1])?;
        for r in 0..x.len() {
            if conf.is_null(r) {
                return exec_err!(
                    "{}: argument 'conf' is NULL but a value is required",
                    self.name
                );
            }
            self.set_conf(conf.value(r))?;
            if !x.is_null(r) {
                self.merge(1.0, x.value(r), 0.0);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(Some(self.n)),
            ScalarValue::Float64(Some(self.mean)),
            ScalarValue::Float64(Some(self.m2)),
            ScalarValue::Float64(self.conf),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let cols: Vec<Float64Array> = states.iter().map(floats).collect::<Result<_>>()?;
        for r in 0..cols[0].len() {
            if !cols[3].is_null(r) {
                self.set_conf(cols[3].value(r))?;
            }
            self.merge(cols[0].value(r), cols[1].value(r), cols[2].value(r));
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.n < 2.0 {
            return Ok(ScalarValue::Float64(None));
        }
        let sd = (self.m2 / (self.n - 1.0)).sqrt();
        let ci = drd_stats::ci::mean_ci(self.mean, sd, self.n, self.conf.unwrap_or(0.95)).map_err(
            |e| {
                datafusion::error::DataFusionError::Execution(
                    e.to_string().replacen("mean", self.name, 1),
                )
            },
        )?;
        Ok(ScalarValue::Float64(if self.upper {
            ci.upper
        } else {
            ci.lower
        }))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }
}

/// The mean-interval aggregates.
pub fn mean_functions() -> Vec<AggregateUDF> {
    [("mean_lower", false), ("mean_upper", true)]
        .into_iter()
        .map(|(name, upper)| {
            AggregateUDF::from(MeanFunction {
                name,
                upper,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}
