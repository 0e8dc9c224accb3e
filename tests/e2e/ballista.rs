//! The national models on Ballista standalone (`--engine ballista:standalone`: an in-process
//! scheduler and executor with every drdsurv function) store the same tables as embedded
//! DataFusion.
//!
//! One demo store, one period, two runs of the whole `national_quarterly` pipeline: first
//! embedded, then on Ballista. Every model's committed table is read back after each run and the
//! two are compared row by row: text, integers and booleans exactly, floating-point values to
//! 1e-9 relative (a distributed sum adds in another order). The models include the `dsr`
//! aggregate (`ind_death_rates`), window functions (`row_number` in the current views and
//! `benchmarks`, and the EARS and Farrington window functions in `alert_signals`) and Ballista's
//! shuffles between them. The second run must commit new versions of every table, so the
//! comparison is never of a table with itself.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{demo_store_copy, drdsurv, repo, text};

/// `run national_quarterly --from P --to P` on `engine`; returns the ledger row.
fn run(s: &str, engine: &str, period: &str) -> Value {
    let p = repo().join("pipelines");
    let m = repo().join("sql/models");
    let o = drdsurv(&[
        "--store",
        s,
        "--engine",
        engine,
        "run",
        "national_quarterly",
        "--from",
        period,
        "--to",
        period,
        "--pipelines",
        p.to_str().unwrap(),
        "--models",
        m.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "{engine}: {}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let rows: Vec<Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "committed", "{engine}: {:?}", rows[0]);
    rows.into_iter().next().unwrap()
}

/// Every row of a committed model's table (read embedded), without `run_id`.
fn table(s: &str, model: &str) -> Vec<serde_json::Map<String, Value>> {
    let o = drdsurv(&[
        "--store",
        s,
        "sql",
        &format!("SELECT * FROM {model}"),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{model}: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let v: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Array(vec![]));
    let Value::Array(rows) = v else {
        panic!("{model}: not an array")
    };
    let mut rows: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let Value::Object(mut m) = r else {
                panic!("{model}: a row is not an object")
            };
            m.remove("run_id");
            m
        })
        .collect();
    rows.sort_by_cached_key(sort_key);
    rows
}

/// A row's exact fields (everything but non-integral numbers), for putting rows in an order
/// that does not depend on the last bits of a floating-point value.
fn sort_key(row: &serde_json::Map<String, Value>) -> String {
    let exact: BTreeMap<&String, &Value> = row
        .iter()
        .filter(|(_, v)| !(v.is_f64() && v.as_f64().is_some_and(|f| f.fract() != 0.0)))
        .collect();
    let floats: Vec<String> = row
        .iter()
        .filter(|(_, v)| v.is_f64())
        .map(|(_, v)| format!("{:.6e}", v.as_f64().unwrap_or(0.0)))
        .collect();
    format!(
        "{}|{}",
        serde_json::to_string(&exact).unwrap(),
        floats.join(",")
    )
}

/// Whether two field values agree: numbers to 1e-9 relative, anything else exactly.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => {
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

#[test]
fn national_models_on_ballista_standalone_equal_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    let s = store.to_str().unwrap();

    let embedded_run = run(s, "embedded", "2025Q4");
    let models: Vec<(String, i64)> = embedded_run["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap().to_string(),
                m["version"].as_i64().unwrap(),
            )
        })
        .collect();
    for needed in [
        "ind_death_rates",
        "indicators",
        "benchmarks",
        "alert_signals",
    ] {
        assert!(
            models.iter().any(|(m, _)| m == needed),
            "{needed} did not run"
        );
    }
    let embedded: Vec<_> = models.iter().map(|(m, _)| table(s, m)).collect();

    let ballista_run = run(s, "ballista:standalone", "2025Q4");
    let versions: BTreeMap<&str, i64> = ballista_run["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["model"].as_str().unwrap(), m["version"].as_i64().unwrap()))
        .collect();
    let mut compared = 0usize;
    for ((model, before), rows_e) in models.iter().zip(&embedded) {
        // The table read now is the one the Ballista run wrote.
        assert!(
            versions.get(model.as_str()).is_some_and(|v| v > before),
            "{model}: the Ballista run did not write a new version ({versions:?})"
        );
        let rows_b = table(s, model);
        assert_eq!(
            rows_b.len(),
            rows_e.len(),
            "{model}: {} rows on Ballista, {} embedded",
            rows_b.len(),
            rows_e.len()
        );
        for (i, (e, b)) in rows_e.iter().zip(&rows_b).enumerate() {
            let keys_e: Vec<&String> = e.keys().collect();
            let keys_b: Vec<&String> = b.keys().collect();
            assert_eq!(keys_e, keys_b, "{model} row {i}: different columns set");
            for (k, v) in e {
                assert!(
                    same(v, &b[k]),
                    "{model} row {i}, {k}: embedded {v}, Ballista {}\nembedded row {e:?}\nBallista row {b:?}",
                    b[k]
                );
            }
        }
        compared += rows_e.len();
    }
    // The demo's national run is not small: the comparison covers real volumes.
    assert!(compared > 500_000, "only {compared} rows compared");
    let rates = &embedded[models
        .iter()
        .position(|(m, _)| m == "ind_death_rates")
        .unwrap()];
    assert!(
        rates.iter().filter(|r| r["value"].is_f64()).count() > 1000,
        "too few death rates with a value to compare"
    );
}
