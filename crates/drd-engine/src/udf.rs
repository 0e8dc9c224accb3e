//! The drd-stats methods as DataFusion scalar functions.
//!
//! Every function is one [`StatFunction`]: its SQL name, its named arguments (numbers or
//! text, each required or not) and a plain Rust function over one row. Arguments are coerced
//! to Float64 or Utf8 at planning time; a text where a number belongs is a planning error.
//! NULL rules: a required argument (a confidence level, a multiplier, a polarity) that is NULL
//! is an error; a NULL count, denominator or value gives a NULL result (PHE: "NA inputs give
//! NA outputs"), and the comparison functions return `'not compared'`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Float64Builder, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use drd_stats::compare::{self, Polarity};
use drd_stats::{Error as StatError, Interval, ci};

/// What an argument holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A number (coerced to Float64).
    Num,
    /// Text (coerced to Utf8).
    Text,
}

/// One argument of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arg {
    /// Its name, as error messages show it.
    pub name: &'static str,
    /// Number or text.
    pub kind: Kind,
    /// Whether NULL is an error.
    pub required: bool,
}

const fn num(name: &'static str) -> Arg {
    Arg {
        name,
        kind: Kind::Num,
        required: false,
    }
}

const fn req(name: &'static str) -> Arg {
    Arg {
        name,
        kind: Kind::Num,
        required: true,
    }
}

const POLARITY: Arg = Arg {
    name: "polarity",
    kind: Kind::Text,
    required: true,
};

/// One row's argument value.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    /// A number, or NULL.
    Num(Option<f64>),
    /// Text, or NULL.
    Text(Option<&'a str>),
}

impl Val<'_> {
    fn num(&self) -> Option<f64> {
        match self {
            Val::Num(v) => *v,
            Val::Text(_) => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Val::Text(v) => *v,
            Val::Num(_) => None,
        }
    }
}

/// The row function: a number or a label, or NULL.
#[derive(Debug, Clone, Copy)]
pub enum Eval {
    /// Returns Float64.
    Num(fn(&[Val<'_>]) -> std::result::Result<Option<f64>, StatError>),
    /// Returns Utf8.
    Text(fn(&[Val<'_>]) -> std::result::Result<Option<&'static str>, StatError>),
}

/// A drd-stats method as a SQL scalar function. Two are equal when their names are (names
/// are unique).
#[derive(Debug)]
pub struct StatFunction {
    name: &'static str,
    args: &'static [Arg],
    eval: Eval,
    signature: Signature,
}

impl PartialEq for StatFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for StatFunction {}

impl std::hash::Hash for StatFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl StatFunction {
    fn new(name: &'static str, args: &'static [Arg], eval: Eval) -> StatFunction {
        StatFunction {
            name,
            args,
            eval,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    fn names(&self) -> String {
        self.args
            .iter()
            .map(|a| a.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn to_sql_error(&self, e: StatError) -> DataFusionError {
        match e {
            StatError::BadArgument {
                argument, message, ..
            } => DataFusionError::Execution(format!(
                "{}: argument '{argument}' {message}",
                self.name
            )),
        }
    }
}

impl ScalarUDFImpl for StatFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.eval {
            Eval::Num(_) => DataType::Float64,
            Eval::Text(_) => DataType::Utf8,
        })
    }

    fn coerce_types(&self, given: &[DataType]) -> Result<Vec<DataType>> {
        if given.len() != self.args.len() {
            return plan_err!(
                "{} takes {} arguments ({}), got {}",
                self.name,
                self.args.len(),
                self.names(),
                given.len()
            );
        }
        given
            .iter()
            .zip(self.args)
            .map(|(t, a)| match a.kind {
                Kind::Num if t.is_numeric() || *t == DataType::Null => Ok(DataType::Float64),
                Kind::Num => plan_err!(
                    "{}: argument '{}' must be a number, got {t}",
                    self.name,
                    a.name
                ),
                Kind::Text
                    if matches!(
                        t,
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
                    ) =>
                {
                    Ok(DataType::Utf8)
                }
                Kind::Text => {
                    plan_err!("{}: argument '{}' must be text, got {t}", self.name, a.name)
                }
            })
            .collect()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .zip(self.args)
            .map(|(v, a)| {
                let arr = v.to_array(rows)?;
                let want = match a.kind {
                    Kind::Num => DataType::Float64,
                    Kind::Text => DataType::Utf8,
                };
                Ok(cast(&arr, &want)?)
            })
            .collect::<Result<_>>()?;
        let mut vals: Vec<Val<'_>> = Vec::with_capacity(self.args.len());
        let mut nums = Float64Builder::with_capacity(rows);
        let mut texts = StringBuilder::new();
        for r in 0..rows {
            vals.clear();
            for (arr, a) in arrays.iter().zip(self.args) {
                let null = arr.is_null(r);
                if null && a.required {
                    return exec_err!(
                        "{}: argument '{}' is NULL but a value is required",
                        self.name,
                        a.name
                    );
                }
                vals.push(match a.kind {
                    Kind::Num => {
                        let f = arr.as_any().downcast_ref::<Float64Array>();
                        Val::Num(f.filter(|_| !null).map(|f| f.value(r)))
                    }
                    Kind::Text => {
                        let s = arr.as_any().downcast_ref::<StringArray>();
                        Val::Text(s.filter(|_| !null).map(|s| s.value(r)))
                    }
                });
            }
            match self.eval {
                Eval::Num(f) => nums.append_option(f(&vals).map_err(|e| self.to_sql_error(e))?),
                Eval::Text(f) => texts.append_option(f(&vals).map_err(|e| self.to_sql_error(e))?),
            }
        }
        let out: ArrayRef = match self.eval {
            Eval::Num(_) => Arc::new(nums.finish()),
            Eval::Text(_) => Arc::new(texts.finish()),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Runs `f` when every one of the first `k` values is present; NULL otherwise.
fn present<const K: usize>(
    v: &[Val<'_>],
    f: impl FnOnce([f64; K]) -> std::result::Result<Interval, StatError>,
    pick: fn(Interval) -> Option<f64>,
) -> std::result::Result<Option<f64>, StatError> {
    let mut xs = [0.0; K];
    for (x, v) in xs.iter_mut().zip(v) {
        match v.num() {
            Some(n) => *x = n,
            None => return Ok(None),
        }
    }
    f(xs).map(pick)
}

fn lo(i: Interval) -> Option<f64> {
    i.lower
}

fn hi(i: Interval) -> Option<f64> {
    i.upper
}

fn conf(v: &[Val<'_>], i: usize) -> f64 {
    v.get(i).and_then(Val::num).unwrap_or(f64::NAN)
}

fn polarity(
    v: &[Val<'_>],
    i: usize,
    function: &'static str,
) -> std::result::Result<Polarity, StatError> {
    Polarity::parse(function, v.get(i).and_then(Val::text).unwrap_or(""))
}

/// `'upper'` → true, `'lower'` → false.
fn side(function: &'static str, s: Option<&str>) -> std::result::Result<bool, StatError> {
    match s {
        Some("upper") => Ok(true),
        Some("lower") => Ok(false),
        other => Err(StatError::BadArgument {
            function,
            argument: "side",
            message: format!("must be 'lower' or 'upper', got '{}'", other.unwrap_or("")),
        }),
    }
}

/// Every scalar function (issue 4, "SQL functions").
pub fn scalar_functions() -> Vec<ScalarUDF> {
    const WILSON: &[Arg] = &[num("x"), num("n"), req("conf")];
    const RATE: &[Arg] = &[num("x"), num("n"), req("conf"), req("multiplier")];
    const COUNT: &[Arg] = &[num("x"), req("conf")];
    const ISR: &[Arg] = &[num("observed"), num("expected"), req("conf")];
    const CMP: &[Arg] = &[
        num("value"),
        num("lower"),
        num("upper"),
        num("benchmark"),
        POLARITY,
    ];
    const CMP2: &[Arg] = &[
        num("value"),
        num("lower95"),
        num("upper95"),
        num("lower998"),
        num("upper998"),
        num("benchmark"),
        POLARITY,
    ];
    const FUNNEL_P: &[Arg] = &[
        num("p_bar"),
        num("n"),
        req("level"),
        Arg {
            name: "side",
            kind: Kind::Text,
            required: true,
        },
    ];
    const FUNNEL_E: &[Arg] = &[
        num("expected"),
        req("level"),
        Arg {
            name: "side",
            kind: Kind::Text,
            required: true,
        },
    ];
    const FSIG_P: &[Arg] = &[num("x"), num("n"), num("p_bar")];
    const FSIG_R: &[Arg] = &[num("observed"), num("denominator"), num("reference")];
    let list = [
        StatFunction::new(
            "funnel_significance_proportion",
            FSIG_P,
            Eval::Text(|v| match (v[0].num(), v[1].num(), v[2].num()) {
                (Some(x), Some(n), Some(p)) if n > 0.0 => {
                    ci::proportion_funnel_significance(x, n, p).map(Some)
                }
                _ => Ok(None),
            }),
        ),
        StatFunction::new(
            "funnel_significance_ratio",
            FSIG_R,
            Eval::Text(|v| match (v[0].num(), v[1].num(), v[2].num()) {
                (Some(o), Some(d), Some(r)) => ci::ratio_funnel_significance(o, d, r).map(Some),
                _ => Ok(None),
            }),
        ),
        StatFunction::new(
            "funnel_poisson_limit",
            FUNNEL_E,
            Eval::Num(|v| {
                let upper = side("funnel_poisson_limit", v[2].text())?;
                match v[0].num() {
                    Some(e) => ci::funnel_poisson_limit(e, conf(v, 1), upper).map(Some),
                    None => Ok(None),
                }
            }),
        ),
        StatFunction::new(
            "funnel_proportion_limit",
            FUNNEL_P,
            Eval::Num(|v| {
                let upper = side("funnel_proportion_limit", v[3].text())?;
                match (v[0].num(), v[1].num()) {
                    (Some(p), Some(n)) => {
                        ci::funnel_proportion_limit(p, n, conf(v, 2), upper).map(Some)
                    }
                    _ => Ok(None),
                }
            }),
        ),
        StatFunction::new(
            "wilson_lower",
            WILSON,
            Eval::Num(|v| present::<2>(v, |[x, n]| ci::wilson(x, n, conf(v, 2)), lo)),
        ),
        StatFunction::new(
            "wilson_upper",
            WILSON,
            Eval::Num(|v| present::<2>(v, |[x, n]| ci::wilson(x, n, conf(v, 2)), hi)),
        ),
        StatFunction::new(
            "rate_lower",
            RATE,
            Eval::Num(|v| {
                present::<2>(
                    v,
                    |[x, n]| ci::crude_rate(x, n, conf(v, 2), conf(v, 3)).map(|r| r.1),
                    lo,
                )
            }),
        ),
        StatFunction::new(
            "rate_upper",
            RATE,
            Eval::Num(|v| {
                present::<2>(
                    v,
                    |[x, n]| ci::crude_rate(x, n, conf(v, 2), conf(v, 3)).map(|r| r.1),
                    hi,
                )
            }),
        ),
        StatFunction::new(
            "byar_lower",
            COUNT,
            Eval::Num(|v| present::<1>(v, |[x]| ci::byar(x, conf(v, 1)), lo)),
        ),
        StatFunction::new(
            "byar_upper",
            COUNT,
            Eval::Num(|v| present::<1>(v, |[x]| ci::byar(x, conf(v, 1)), hi)),
        ),
        StatFunction::new(
            "exact_poisson_lower",
            COUNT,
            Eval::Num(|v| present::<1>(v, |[x]| ci::exact_poisson(x, conf(v, 1)), lo)),
        ),
        StatFunction::new(
            "exact_poisson_upper",
            COUNT,
            Eval::Num(|v| present::<1>(v, |[x]| ci::exact_poisson(x, conf(v, 1)), hi)),
        ),
        StatFunction::new(
            "isr_lower",
            ISR,
            Eval::Num(|v| {
                present::<2>(v, |[o, e]| ci::isr(o, e, conf(v, 2), 1.0).map(|r| r.1), lo)
            }),
        ),
        StatFunction::new(
            "isr_upper",
            ISR,
            Eval::Num(|v| {
                present::<2>(v, |[o, e]| ci::isr(o, e, conf(v, 2), 1.0).map(|r| r.1), hi)
            }),
        ),
        StatFunction::new(
            "compare_to_benchmark",
            CMP,
            Eval::Text(|v| {
                let p = polarity(v, 4, "compare_to_benchmark")?;
                Ok(Some(compare::one_level(
                    v[0].num(),
                    v[1].num(),
                    v[2].num(),
                    v[3].num(),
                    p,
                )))
            }),
        ),
        StatFunction::new(
            "compare_to_benchmark_2level",
            CMP2,
            Eval::Text(|v| {
                let p = polarity(v, 6, "compare_to_benchmark_2level")?;
                Ok(Some(compare::two_level(
                    v[0].num(),
                    (v[1].num(), v[2].num()),
                    (v[3].num(), v[4].num()),
                    v[5].num(),
                    p,
                )))
            }),
        ),
    ];
    list.into_iter().map(ScalarUDF::from).collect()
}
