//! Typed, validating loaders for the reference tables kept as versioned CSV under `reference/`
//! (formats.md §4): partnerships, population (long and ONS wide layouts), PWID estimates,
//! substances, case definitions and the standard population.
//!
//! Loaders read from any `Read` and take the file name only to name it in errors, so this crate
//! stays free of I/O. Every rejection names the file, the data row (header not counted), the
//! physical line, the column and the value.

mod definitions;
mod geography;
mod population;
pub mod shipped;

pub use definitions::{load_case_definitions, load_standard_population, load_substances};
pub use geography::{Partnership, Partnerships, load_partnerships};
pub use population::{
    PopulationRow, PwidRow, load_population, load_population_ons_wide, load_pwid,
};

use std::collections::HashMap;
use std::io::Read;

use crate::columns::normalise_header;
use crate::error::{ModelError, Result};

/// A small CSV table read whole, with normalised headers.
pub(crate) struct Table {
    pub file: String,
    cols: HashMap<String, usize>,
    pub rows: Vec<(u64, csv::StringRecord)>,
}

impl Table {
    /// Reads a CSV with a header row. `aliases` maps alternative normalised header names to the
    /// canonical one. Fails naming every missing required column.
    pub fn read<R: Read>(
        file: &str,
        reader: R,
        required: &[&str],
        aliases: &[(&str, &str)],
    ) -> Result<Table> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(reader);
        let header = rdr.headers().map_err(|e| csv_error(file, &e))?.clone();
        let mut cols = HashMap::new();
        let mut headers = Vec::new();
        for (i, h) in header.iter().enumerate() {
            let n = normalise_header(h);
            let canon = aliases
                .iter()
                .find(|(a, _)| *a == n)
                .map(|(_, c)| (*c).to_string())
                .unwrap_or(n);
            if cols.insert(canon.clone(), i).is_some() {
                return Err(ModelError::Reference {
                    file: file.into(),
                    row: None,
                    line: Some(1),
                    column: Some(canon),
                    message: "the column appears twice in the header".into(),
                });
            }
            headers.push(canon);
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !cols.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::Reference {
                file: file.into(),
                row: None,
                line: Some(1),
                column: None,
                message: format!(
                    "missing required column(s): {} (found: {})",
                    missing.join(", "),
                    headers.join(", ")
                ),
            });
        }
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| csv_error(file, &e))?;
            rows.push((rec.position().map_or(0, |p| p.line()), rec));
        }
        Ok(Table {
            file: file.into(),
            cols,
            rows,
        })
    }

    /// The normalised headers, in file order.
    pub fn headers(&self) -> Vec<String> {
        let mut h: Vec<(&String, &usize)> = self.cols.iter().collect();
        h.sort_by_key(|(_, i)| **i);
        h.into_iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn has(&self, col: &str) -> bool {
        self.cols.contains_key(col)
    }

    /// The trimmed value of a column in data row `i` (0-based); blank if the column is absent.
    pub fn value(&self, i: usize, col: &str) -> &str {
        self.cols
            .get(col)
            .and_then(|&c| self.rows[i].1.get(c))
            .map_or("", str::trim)
    }

    /// An error located at data row `i` (0-based), column `col`.
    pub fn err(&self, i: usize, col: &str, message: impl Into<String>) -> ModelError {
        ModelError::Reference {
            file: self.file.clone(),
            row: Some(i as u64 + 1),
            line: Some(self.rows[i].0),
            column: Some(col.into()),
            message: message.into(),
        }
    }

    /// Wraps a value error at data row `i`, column `col`.
    pub fn wrap(&self, i: usize, col: &str, e: &ModelError) -> ModelError {
        self.err(i, col, e.to_string())
    }

    /// A required non-blank value.
    pub fn required(&self, i: usize, col: &str) -> Result<&str> {
        let v = self.value(i, col);
        if v.is_empty() {
            Err(self.err(i, col, "a value is required here but the cell is blank"))
        } else {
            Ok(v)
        }
    }

    /// Parses a required value with a model parser, locating any error.
    pub fn parse<T>(&self, i: usize, col: &str, f: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        let v = self.required(i, col)?;
        f(v).map_err(|e| self.wrap(i, col, &e))
    }

    /// Parses an optional value (blank gives `None`).
    pub fn parse_opt<T>(
        &self,
        i: usize,
        col: &str,
        f: impl FnOnce(&str) -> Result<T>,
    ) -> Result<Option<T>> {
        let v = self.value(i, col);
        if v.is_empty() {
            Ok(None)
        } else {
            f(v).map(Some).map_err(|e| self.wrap(i, col, &e))
        }
    }
}

fn csv_error(file: &str, e: &csv::Error) -> ModelError {
    let (row, line) = e
        .position()
        .map_or((None, None), |p| (Some(p.record()), Some(p.line())));
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            "the file is not valid UTF-8; save it as UTF-8 CSV".to_string()
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields but the header has {expected_len}"),
        _ => e.to_string(),
    };
    ModelError::Reference {
        file: file.into(),
        row,
        line,
        column: None,
        message,
    }
}

/// Parses a whole number, allowing surrounding spaces and thousands separators (`1,234`), as
/// ONS downloads write them.
pub(crate) fn parse_count(raw: &str) -> Result<u64> {
    let t = raw.trim();
    let compact: String = t.chars().filter(|c| *c != ',').collect();
    if compact.is_empty() || !compact.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ModelError::invalid(
            "count",
            t,
            "a whole number of 0 or more, e.g. 1234 or 1,234",
        ));
    }
    compact
        .parse()
        .map_err(|_| ModelError::invalid("count", t, "a whole number that fits in 64 bits"))
}

/// Parses a year 1900–2999.
pub(crate) fn parse_year(raw: &str) -> Result<i32> {
    let t = raw.trim();
    match t.parse::<i32>() {
        Ok(y) if (1900..=2999).contains(&y) => Ok(y),
        _ => Err(ModelError::invalid(
            "year",
            t,
            "a four-digit year from 1900 to 2999",
        )),
    }
}

/// Parses `true`/`false` (also yes/no, y/n, 1/0).
pub(crate) fn parse_bool(raw: &str) -> Result<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(ModelError::invalid("boolean", raw.trim(), "true or false")),
    }
}
