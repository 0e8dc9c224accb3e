//! Reference data for a run: geography, population, PWID estimates, the substance lookup, the
//! case definitions and the standard population (formats.md §4).
//!
//! Each table lives in the store as a Delta table under `reference/<table>/`, written by
//! [`import`] (`drdsurv reference import`). Every import is validated by drd-model's loaders
//! and becomes a new version, so a change of definitions is a new version that a re-run picks
//! up and the ledger records ("definitions are data").
//!
//! A run registers each table as `ref_<table>` ([`register`]). When the store holds no
//! version of a table, the copy shipped in `reference/` is used (`shipped`): the 2021
//! partnerships, the substance lookup, the case definitions and ESP2013. Population and PWID
//! estimates are never shipped; without an import they are empty tables and the models that
//! need them fail their blocking row-count tests with a message that says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListBuilder,
    RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use drd_model::reference::{
    Partnerships, PopulationRow, PwidRow, load_case_definitions, load_partnerships,
    load_population, load_population_ons_wide, load_pwid, load_standard_population,
    load_substances,
};
use drd_model::{CaseDefinitions, Coded, EspBand, SubstanceLookup, schema};
use drd_store::Store;

use crate::run::RunError;

use drd_model::reference::shipped::{
    CASE_DEFINITIONS_CSV, ESP2013_CSV, PARTNERSHIPS_2021_CSV, SUBSTANCES_CSV,
};

/// The reference tables, by the name `reference import --table` takes.
pub const TABLES: [&str; 6] = [
    "partnerships",
    "population",
    "pwid",
    "substances",
    "case_definitions",
    "esp2013",
];

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Not one of [`TABLES`].
    #[error("unknown reference table '{0}': expected one of {tables}", tables = TABLES.join(", "))]
    UnknownTable(String),
    /// The file did not validate (the message names the file, row, column and value).
    #[error(transparent)]
    Invalid(#[from] drd_model::ModelError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] drd_store::Error),
    /// Building the Arrow batch failed.
    #[error("{0}")]
    Arrow(String),
}

/// Where the store keeps a reference table.
pub fn table_path(table: &str) -> String {
    format!("reference/{table}")
}

/// Validates `text` (the contents of `file_name`) as reference table `table` and writes it as a
/// new version of `reference/<table>/`. Population accepts the formats.md long layout or the
/// ONS mid-year-estimate wide layout. Returns the version written and the row count.
pub async fn import(
    store: &Store,
    table: &str,
    file_name: &str,
    text: &[u8],
    vintage: &str,
) -> Result<(i64, usize), ReferenceError> {
    let batch = parse(table, file_name, text, vintage)?;
    let rows = batch.num_rows();
    // The same file (and vintage) as the current version changes nothing: importing it again
    // must not make a new version, or every later run would see new definitions.
    let digest = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(text);
        h.update(b"\0vintage=");
        h.update(vintage.as_bytes());
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let rel = table_path(table);
    if let Some(info) = store.last_commit_info(&rel).await?
        && info
            .get("drdsurv.reference_sha256")
            .and_then(|v| v.as_str())
            == Some(digest.as_str())
        && let Some(t) = store.table_info(&rel).await?
    {
        return Ok((t.version as i64, rows));
    }
    let meta = std::collections::HashMap::from([
        (
            "drdsurv.reference_file".to_string(),
            serde_json::Value::from(file_name),
        ),
        (
            "drdsurv.reference_sha256".to_string(),
            serde_json::Value::from(digest),
        ),
    ]);
    let v = store
        .overwrite(&rel, &batch.schema(), vec![batch], meta)
        .await?;
    Ok((v, rows))
}

/// Parses and validates one reference file into its table's Arrow batch.
pub fn parse(
    table: &str,
    file_name: &str,
    text: &[u8],
    vintage: &str,
) -> Result<RecordBatch, ReferenceError> {
    match table {
        "partnerships" => Ok(partnerships_batch(&load_partnerships(
            file_name, text, vintage,
        )?)?),
        "population" => {
            let header = std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.lines().next())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let rows = if header.contains("age_band") || header.contains("population") {
                load_population(file_name, text)?
            } else {
                load_population_ons_wide(file_name, text, None, None)?
            };
            population_batch(&rows)
        }
        "pwid" => pwid_batch(&load_pwid(file_name, text)?),
        "substances" => substances_batch(&load_substances(file_name, text)?),
        "case_definitions" => case_definitions_batch(&load_case_definitions(file_name, text)?),
        "esp2013" => esp_batch(&load_standard_population(file_name, text)?),
        other => Err(ReferenceError::UnknownTable(other.to_string())),
    }
}

fn shipped(table: &str) -> Option<Result<RecordBatch, ReferenceError>> {
    let (file, text) = match table {
        "partnerships" => ("reference/partnerships_2021.csv", PARTNERSHIPS_2021_CSV),
        "substances" => ("reference/substances.csv", SUBSTANCES_CSV),
        "case_definitions" => ("reference/case_definitions.csv", CASE_DEFINITIONS_CSV),
        "esp2013" => ("reference/esp2013.csv", ESP2013_CSV),
        _ => return None,
    };
    Some(parse(table, file, text.as_bytes(), "2021"))
}

/// Registers every reference table as `ref_<table>` and returns where each came from:
/// `reference/<table>@v<N>`, `shipped`, or `missing` (an empty table).
pub async fn register(
    store: &Store,
    ctx: &SessionContext,
) -> Result<BTreeMap<String, String>, RunError> {
    let engine = |e: &dyn std::fmt::Display| RunError::Engine(e.to_string());
    let mut versions = BTreeMap::new();
    for table in TABLES {
        let name = format!("ref_{table}");
        let rel = table_path(table);
        if let Some(t) = store.table(&rel).await? {
            let v = t.version().unwrap_or(0);
            crate::run::register_delta(ctx, &name, &t).await?;
            versions.insert(table.to_string(), format!("{rel}@v{v}"));
            continue;
        }
        let (batches, schema, from) = match shipped(table) {
            Some(b) => {
                let b = b.map_err(|e| engine(&e))?;
                (vec![b.clone()], b.schema(), "shipped")
            }
            None => (vec![], table_schema(table), "missing"),
        };
        drd_engine::register_rows(ctx, &name, schema, batches).map_err(|e| engine(&e))?;
        versions.insert(table.to_string(), from.to_string());
    }
    Ok(versions)
}

fn table_schema(table: &str) -> SchemaRef {
    match table {
        "partnerships" => schema::partnerships_schema(),
        "population" => schema::population_schema(),
        "pwid" => schema::pwid_schema(),
        "substances" => schema::substances_schema(),
        "case_definitions" => schema::case_definitions_schema(),
        _ => esp_schema(),
    }
}

fn esp_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("age_band", DataType::Utf8, false),
        Field::new("weight", DataType::Float64, false),
    ]))
}

fn batch(schema: SchemaRef, cols: Vec<ArrayRef>) -> Result<RecordBatch, ReferenceError> {
    RecordBatch::try_new(schema, cols).map_err(|e| ReferenceError::Arrow(e.to_string()))
}

/// Days since 1970-01-01 (Arrow's Date32).
pub(crate) fn days(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    (d - epoch).num_days() as i32
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(it))
}

fn partnerships_batch(p: &Partnerships) -> Result<RecordBatch, ReferenceError> {
    let rows = p.all();
    batch(
        schema::partnerships_schema(),
        vec![
            strings(rows.iter().map(|r| r.code.as_str())),
            strings(rows.iter().map(|r| r.name.as_str())),
            strings(rows.iter().map(|r| r.region_code.as_str())),
            strings(rows.iter().map(|r| r.region_name.as_str())),
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|r| r.comparator_group.as_deref())
                    .collect::<Vec<_>>(),
            )),
            strings(rows.iter().map(|_| p.vintage.as_str())),
        ],
    )
}

fn population_batch(rows: &[PopulationRow]) -> Result<RecordBatch, ReferenceError> {
    batch(
        schema::population_schema(),
        vec![
            strings(rows.iter().map(|r| r.code.as_str())),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.year))),
            strings(rows.iter().map(|r| r.sex.code())),
            strings(rows.iter().map(|r| r.age_band.as_str())),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.population as i64),
            )),
        ],
    )
}

fn pwid_batch(rows: &[PwidRow]) -> Result<RecordBatch, ReferenceError> {
    batch(
        schema::pwid_schema(),
        vec![
            strings(rows.iter().map(|r| r.code.as_str())),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.year))),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.estimated_pwid),
            )),
        ],
    )
}

/// One row per name and synonym, each carrying its canonical name (models match on
/// `lower(regexp_replace(name, '\s', '', 'g'))`, drd-model's `substance_key`).
fn substances_batch(l: &SubstanceLookup) -> Result<RecordBatch, ReferenceError> {
    let mut name = Vec::new();
    let mut canonical = Vec::new();
    let mut group = Vec::new();
    let mut class = Vec::new();
    let mut tcode = Vec::new();
    let mut from = Vec::new();
    let mut to = Vec::new();
    for e in l.entries() {
        for n in std::iter::once(&e.name).chain(&e.synonyms) {
            name.push(n.clone());
            canonical.push(e.name.clone());
            group.push(e.group.as_str());
            class.push(e.controlled_class.map(|c| c.code().to_ascii_uppercase()));
            tcode.push(e.t_code.as_ref().map(|t| t.as_str().to_string()));
            from.push(days(e.valid_from));
            to.push(e.valid_to.map(days));
        }
    }
    batch(
        schema::substances_schema(),
        vec![
            Arc::new(StringArray::from(name)),
            Arc::new(StringArray::from(canonical)),
            Arc::new(StringArray::from(group)),
            Arc::new(StringArray::from(class)),
            Arc::new(StringArray::from(tcode)),
            Arc::new(Date32Array::from(from)),
            Arc::new(Date32Array::from(to)),
        ],
    )
}

fn list(values: impl Iterator<Item = Vec<String>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "element",
        DataType::Utf8,
        false,
    )));
    for v in values {
        for s in v {
            b.values().append_value(s);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn case_definitions_batch(d: &CaseDefinitions) -> Result<RecordBatch, ReferenceError> {
    let r = d.rules();
    batch(
        schema::case_definitions_schema(),
        vec![
            strings(r.iter().map(|x| x.definition.as_str())),
            strings(r.iter().map(|x| x.icd10_from.as_str())),
            strings(r.iter().map(|x| x.icd10_to.as_str())),
            Arc::new(BooleanArray::from(
                r.iter()
                    .map(|x| x.requires_controlled_substance)
                    .collect::<Vec<_>>(),
            )),
            list(r.iter().map(|x| {
                x.requires_t_codes
                    .iter()
                    .map(|t| t.as_str().to_string())
                    .collect()
            })),
            Arc::new(BooleanArray::from(
                r.iter().map(|x| x.excluded).collect::<Vec<_>>(),
            )),
            list(r.iter().map(|x| x.excluded_if_only_substances.clone())),
            Arc::new(BooleanArray::from(
                r.iter().map(|x| x.enabled).collect::<Vec<_>>(),
            )),
            Arc::new(Date32Array::from_iter_values(
                r.iter().map(|x| days(x.valid_from)),
            )),
            Arc::new(Date32Array::from(
                r.iter().map(|x| x.valid_to.map(days)).collect::<Vec<_>>(),
            )),
        ],
    )
}

fn esp_batch(rows: &[(EspBand, f64)]) -> Result<RecordBatch, ReferenceError> {
    batch(
        esp_schema(),
        vec![
            strings(rows.iter().map(|(b, _)| b.as_str())),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, w)| *w))),
        ],
    )
}
