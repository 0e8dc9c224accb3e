//! `quarantine export`: a submitter's quarantined rows as CSV, pseudonymised exactly as stored,
//! with reason, column and message, so the submitter can correct and resubmit them.

use std::collections::BTreeSet;
use std::io::Write;

use arrow::array::{Array, AsArray};
use drd_model::{Coded, Source};
use drd_store::{Store, TableKind};

use crate::Result;

const FIXED: [&str; 7] = [
    "source",
    "file_name",
    "file_sha256",
    "row_number",
    "reason",
    "column",
    "message",
];

/// Writes the quarantined rows of `submitter` (every source; one file if `file_sha256` is
/// given) as CSV. Value columns follow the fixed ones, in the source's column order. Returns
/// the number of rows written.
pub async fn export_quarantine<W: Write>(
    store: &Store,
    submitter: &str,
    file_sha256: Option<&str>,
    out: W,
) -> Result<u64> {
    crate::check_submitter(submitter)?;
    let mut rows: Vec<(
        Source,
        Vec<String>,
        serde_json::Map<String, serde_json::Value>,
    )> = Vec::new();
    for source in [Source::Coroner, Source::Top, Source::Nsp] {
        for b in store
            .read_table(TableKind::Quarantine, source, submitter)
            .await?
        {
            // DataFusion may hand strings back as Utf8View: normalise to Utf8.
            let col = |name: &str| {
                b.column_by_name(name).and_then(|c| {
                    if c.data_type() == &arrow::datatypes::DataType::Int64 {
                        Some(c.clone())
                    } else {
                        arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok()
                    }
                })
            };
            let (
                Some(sha),
                Some(file),
                Some(rown),
                Some(reason),
                Some(column),
                Some(msg),
                Some(raw),
            ) = (
                col("file_sha256"),
                col("file_name"),
                col("row_number"),
                col("reason"),
                col("column"),
                col("message"),
                col("raw_json"),
            )
            else {
                continue;
            };
            let s = |a: &arrow::array::ArrayRef, i: usize| {
                if a.is_null(i) {
                    String::new()
                } else {
                    a.as_string::<i32>().value(i).to_string()
                }
            };
            let n = rown.as_primitive::<arrow::datatypes::Int64Type>();
            for i in 0..b.num_rows() {
                if file_sha256.is_some_and(|f| f != s(&sha, i)) {
                    continue;
                }
                let fixed = vec![
                    source.code().to_string(),
                    s(&file, i),
                    s(&sha, i),
                    n.value(i).to_string(),
                    s(&reason, i),
                    s(&column, i),
                    s(&msg, i),
                ];
                let values = serde_json::from_str(&s(&raw, i)).unwrap_or_default();
                rows.push((source, fixed, values));
            }
        }
    }
    rows.sort_by(|a, b| {
        (a.0, &a.1[1], a.1[3].parse::<u64>().unwrap_or(0)).cmp(&(
            b.0,
            &b.1[1],
            b.1[3].parse::<u64>().unwrap_or(0),
        ))
    });
    // Value columns: in contract order, then the pseudonym columns.
    let mut present: BTreeSet<String> = BTreeSet::new();
    for (_, _, v) in &rows {
        present.extend(v.keys().cloned());
    }
    let mut value_cols: Vec<String> = Vec::new();
    for source in [Source::Coroner, Source::Top, Source::Nsp] {
        for c in source.columns() {
            if present.contains(c.name) && !value_cols.iter().any(|x| x == c.name) {
                value_cols.push(c.name.to_string());
            }
        }
    }
    for extra in ["person_id", "case_id", "client_id", "postcode_district"] {
        if present.contains(extra) {
            value_cols.push(extra.to_string());
        }
    }
    let mut w = csv::Writer::from_writer(out);
    let header: Vec<&str> = FIXED
        .iter()
        .copied()
        .chain(value_cols.iter().map(String::as_str))
        .collect();
    w.write_record(&header)
        .map_err(|e| crate::Error::Usage(e.to_string()))?;
    for (_, fixed, values) in &rows {
        let vals = value_cols.iter().map(|c| {
            values
                .get(c)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        });
        w.write_record(fixed.iter().cloned().chain(vals))
            .map_err(|e| crate::Error::Usage(e.to_string()))?;
    }
    w.flush().map_err(|e| crate::Error::Usage(e.to_string()))?;
    Ok(rows.len() as u64)
}
