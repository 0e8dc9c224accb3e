//! A small runner for the sqllogictest files in `tests/slt` (the subset of the format we use):
//! `query <types>` blocks with the SQL, `----` and the expected rows (values separated by one
//! space, NULL as `NULL`, floats to 10 decimal places with trailing zeros cut), and
//! `statement ok` blocks that must succeed, and `statement error <regex>` blocks whose SQL must
//! fail with a message matching the regex.
//!
//! The model tests in `sql/tests/*.slt` add one block: `model <name>` creates a view of that
//! name over the model's SQL (from `sql/models/`), so a file creates small fixture tables
//! under the names a model reads, then queries the model. Every model must be covered.

use datafusion::arrow::array::{Array, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;

fn cell(batch: &RecordBatch, col: usize, row: usize) -> String {
    let a = batch.column(col);
    if a.is_null(row) {
        return "NULL".into();
    }
    if a.data_type() == &DataType::Float64 {
        let v = a
            .as_any()
            .downcast_ref::<Float64Array>()
            .map(|f| f.value(row))
            .unwrap_or(f64::NAN);
        let s = format!("{v:.10}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return if s == "-0" { "0".into() } else { s.into() };
    }
    array_value_to_string(a, row).unwrap_or_else(|e| format!("<{e}>"))
}

/// A tiny regex: only `\(`, `\)`, `\[`, `\]` escapes and literal text (what our files use).
fn matches(pattern: &str, message: &str) -> bool {
    let literal = pattern
        .replace("\\(", "(")
        .replace("\\)", ")")
        .replace("\\[", "[")
        .replace("\\]", "]");
    message.contains(&literal)
}

async fn run_file(
    path: &std::path::Path,
    project: Option<&drd_engine::models::Project>,
) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("slt file");
    let ctx = drd_engine::new_context();
    let mut failures = Vec::new();
    let mut cases = 0;
    let blocks: Vec<&str> = text.split("\n\n").collect();
    for block in blocks {
        let lines: Vec<&str> = block
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .collect();
        let Some(head) = lines.first() else { continue };
        if let Some(name) = head.strip_prefix("model ") {
            cases += 1;
            let Some(model) = project.and_then(|p| p.models.get(name.trim())) else {
                failures.push(format!("{}: no model '{name}'", path.display()));
                continue;
            };
            let sql = format!("CREATE OR REPLACE VIEW {} AS {}", model.name, model.sql);
            let done = match ctx.sql(&sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                failures.push(format!("{}: model {name}: {e}", path.display()));
            }
        } else if *head == "statement ok" {
            cases += 1;
            let sql = lines[1..].join("\n");
            let done = match ctx.sql(&sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                failures.push(format!("{sql}: failed: {e}"));
            }
        } else if let Some(expect) = head.strip_prefix("statement error ") {
            cases += 1;
            let sql = lines[1..].join("\n");
            let got = match ctx.sql(&sql).await {
                Err(e) => Err(e),
                Ok(df) => df.collect().await,
            };
            match got {
                Ok(_) => failures.push(format!(
                    "{sql}: expected an error matching '{expect}', got rows"
                )),
                Err(e) if matches(expect, &e.to_string()) => {}
                Err(e) => failures.push(format!("{sql}: error '{e}' does not match '{expect}'")),
            }
        } else if head.starts_with("query ") {
            cases += 1;
            let sep = lines
                .iter()
                .position(|l| *l == "----")
                .expect("---- in a query block");
            let sql = lines[1..sep].join("\n");
            let want: Vec<String> = lines[sep + 1..].iter().map(|l| l.to_string()).collect();
            let batches = match ctx.sql(&sql).await {
                Ok(df) => df.collect().await,
                Err(e) => Err(e),
            };
            match batches {
                Err(e) => failures.push(format!("{sql}: failed: {e}")),
                Ok(batches) => {
                    let mut got = Vec::new();
                    for b in &batches {
                        for r in 0..b.num_rows() {
                            got.push(
                                (0..b.num_columns())
                                    .map(|c| cell(b, c, r))
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            );
                        }
                    }
                    if got != want {
                        failures.push(format!(
                            "{}: {sql}:\n  want {want:?}\n  got  {got:?}",
                            path.display()
                        ));
                    }
                }
            }
        } else {
            failures.push(format!("unknown block start '{head}'"));
        }
    }
    (cases, failures)
}

#[tokio::test]
async fn every_slt_file_passes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/slt");
    let mut total = 0;
    let mut failures = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("slt dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in &files {
        let (n, mut fails) = run_file(f, None).await;
        total += n;
        failures.append(&mut fails);
    }
    assert!(total >= 20, "only {total} slt cases found in {dir}");
    assert!(
        failures.is_empty(),
        "{} of {total} slt cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every model in `sql/models` has `.slt` tests in `sql/tests` (a `model <name>` block), and
/// every model test passes.
#[tokio::test]
async fn every_model_has_passing_slt_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let project = drd_engine::models::Project::load(&root.join("sql/models")).expect("models");
    let dir = root.join("sql/tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("sql/tests")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    let mut covered = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut total = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for l in text.lines() {
            if let Some(m) = l.strip_prefix("model ") {
                covered.insert(m.trim().to_string());
            }
        }
        let (n, mut fails) = run_file(f, Some(&project)).await;
        total += n;
        failures.append(&mut fails);
    }
    let missing: Vec<&String> = project
        .models
        .keys()
        .filter(|m| !covered.contains(*m))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {total} model slt cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(missing.is_empty(), "models without slt tests: {missing:?}");
}
