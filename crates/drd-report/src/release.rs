//! What a release holds and how it is stored: `published/<period>-r<N>/` with one Parquet,
//! CSV and JSON file per table and a `manifest.json` written last (a folder without a manifest
//! is an interrupted publish and is never read).
//!
//! The published indicator columns are architecture.md's "Published indicator files", in that
//! order; [`IndicatorRow`] is one row.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Where releases live in the store.
pub const PUBLISHED: &str = "published";
/// The file that makes a release folder a release.
pub const MANIFEST: &str = "manifest.json";

/// One published indicator row (architecture.md "Published indicator files").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorRow {
    pub indicator_id: String,
    pub indicator_name: String,
    pub period: String,
    pub basis: String,
    pub area_code: String,
    pub area_name: String,
    pub area_type: String,
    pub sex: String,
    pub age_band: String,
    pub substance_group: String,
    pub unit: String,
    pub polarity: String,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
    pub lower95: Option<f64>,
    pub upper95: Option<f64>,
    pub lower998: Option<f64>,
    pub upper998: Option<f64>,
    pub england_value: Option<f64>,
    pub region_value: Option<f64>,
    pub comparator_value: Option<f64>,
    pub comparison: String,
    pub comparison_2level: String,
    pub region_comparison: String,
    pub comparator_comparison: String,
    pub quintile: Option<i64>,
    pub comparator_quintile: Option<i64>,
    pub funnel_significance: Option<String>,
    pub trend: String,
    pub bottom_decile: bool,
    pub provisional: bool,
    pub note: Option<String>,
    pub release_id: String,
    pub run_id: String,
}

/// The published columns, in order, with their Arrow types.
pub fn indicator_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let so = |n: &str| Field::new(n, DataType::Utf8, true);
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    let i = |n: &str| Field::new(n, DataType::Int64, true);
    let b = |n: &str| Field::new(n, DataType::Boolean, false);
    Arc::new(Schema::new(vec![
        s("indicator_id"),
        s("indicator_name"),
        s("period"),
        s("basis"),
        s("area_code"),
        s("area_name"),
        s("area_type"),
        s("sex"),
        s("age_band"),
        s("substance_group"),
        s("unit"),
        s("polarity"),
        f("numerator"),
        f("denominator"),
        f("value"),
        f("lower95"),
        f("upper95"),
        f("lower998"),
        f("upper998"),
        f("england_value"),
        f("region_value"),
        f("comparator_value"),
        s("comparison"),
        s("comparison_2level"),
        s("region_comparison"),
        s("comparator_comparison"),
        i("quintile"),
        i("comparator_quintile"),
        so("funnel_significance"),
        s("trend"),
        b("bottom_decile"),
        b("provisional"),
        so("note"),
        s("release_id"),
        s("run_id"),
    ]))
}

/// One point of a trend chart: an indicator's headline value for an area over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendRow {
    pub indicator_id: String,
    pub indicator_name: String,
    pub period: String,
    pub area_code: String,
    pub area_name: String,
    pub area_type: String,
    pub unit: String,
    pub polarity: String,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
    pub lower95: Option<f64>,
    pub upper95: Option<f64>,
    pub provisional: bool,
    pub note: Option<String>,
    /// Years back from the release's own window (0).
    pub point: i64,
    pub release_id: String,
}

fn trend_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        s("indicator_id"),
        s("indicator_name"),
        s("period"),
        s("area_code"),
        s("area_name"),
        s("area_type"),
        s("unit"),
        s("polarity"),
        f("numerator"),
        f("denominator"),
        f("value"),
        f("lower95"),
        f("upper95"),
        Field::new("provisional", DataType::Boolean, false),
        Field::new("note", DataType::Utf8, true),
        Field::new("point", DataType::Int64, false),
        s("release_id"),
    ]))
}

/// A drug-alert signal as a release shows it: for review by people, never a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    pub alert_id: String,
    pub region_code: String,
    pub region_name: String,
    pub substance_group: String,
    pub week: String,
    pub method: String,
    /// Deaths that week, after disclosure control (regions are sub-national).
    pub observed: Option<f64>,
    pub expected: Option<f64>,
    pub threshold: Option<f64>,
    /// `new` or `reviewed` (dismissed signals are not published).
    pub status: String,
    pub note: Option<String>,
    pub release_id: String,
}

fn alert_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        s("alert_id"),
        s("region_code"),
        s("region_name"),
        s("substance_group"),
        s("week"),
        s("method"),
        f("observed"),
        f("expected"),
        f("threshold"),
        s("status"),
        Field::new("note", DataType::Utf8, true),
        s("release_id"),
    ]))
}

/// What each submitter sent up to the run: files and rows, as the receipts record them.
/// Counts of rows and files from a data provider, not statistics about an area's people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityRow {
    pub source: String,
    pub submitter: String,
    pub files: i64,
    pub files_rejected: i64,
    pub rows_read: i64,
    pub rows_accepted: i64,
    pub rows_quarantined: i64,
    pub last_received: Option<String>,
    pub release_id: String,
}

fn quality_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let i = |n: &str| Field::new(n, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        s("source"),
        s("submitter"),
        i("files"),
        i("files_rejected"),
        i("rows_read"),
        i("rows_accepted"),
        i("rows_quarantined"),
        Field::new("last_received", DataType::Utf8, true),
        s("release_id"),
    ]))
}

/// A partnership and where it sits (reference geography, not statistics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AreaRow {
    pub code: String,
    pub name: String,
    pub region_code: String,
    pub region_name: String,
    pub comparator_group: Option<String>,
}

fn area_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        s("code"),
        s("name"),
        s("region_code"),
        s("region_name"),
        Field::new("comparator_group", DataType::Utf8, true),
    ]))
}

/// How a release differs from the one before it for the same period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// The release it replaces.
    pub previous_release: String,
    /// The run that release came from.
    pub previous_run_id: String,
    /// Published indicator values, intervals or counts that changed.
    pub changed_values: usize,
    /// Rows present in one release and not the other.
    pub added_or_removed_rows: usize,
    /// One sentence for readers.
    pub note: String,
}

/// The manifest of a release: what it is, where every number came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub release_id: String,
    pub period: String,
    pub pipeline: String,
    pub run_id: String,
    /// When the run started: the data is as of then.
    pub data_as_of: DateTime<Utc>,
    pub run_late: bool,
    /// `nhs_digital`, `secondary` or `ckm`.
    pub policy: String,
    /// Versions of the source tables the run read.
    pub inputs: BTreeMap<String, i64>,
    /// The reference tables (definitions) the run read.
    pub definitions: BTreeMap<String, String>,
    /// The mart versions this release was made from.
    pub marts: BTreeMap<String, i64>,
    /// Rows per published table.
    pub rows: BTreeMap<String, usize>,
    /// Every file of the release, relative to its folder.
    pub files: Vec<String>,
    pub revision: Option<Revision>,
    pub created_at: DateTime<Utc>,
    pub drdsurv_version: String,
}

/// The tables of a release, as published.
#[derive(Debug, Clone, Default)]
pub struct ReleaseTables {
    pub indicators: Vec<IndicatorRow>,
    pub trends: Vec<TrendRow>,
    pub alerts: Vec<AlertRow>,
    pub quality: Vec<QualityRow>,
    pub areas: Vec<AreaRow>,
}

/// A release read back.
#[derive(Debug, Clone)]
pub struct Release {
    pub manifest: Manifest,
    pub tables: ReleaseTables,
}

/// `<period>-r<n>`.
pub fn release_id(period: &str, n: u32) -> String {
    format!("{period}-r{n}")
}

/// The period and number of a release id (`2025Q4-r2` → (`2025Q4`, 2)).
pub fn parse_release_id(id: &str) -> Option<(String, u32)> {
    let (period, n) = id.rsplit_once("-r")?;
    let n: u32 = n.parse().ok()?;
    (!period.is_empty() && n > 0).then(|| (period.to_string(), n))
}

fn os_err(location: &str) -> impl Fn(object_store::Error) -> Error + '_ {
    move |e| Error::Store(format!("{location}: {e}"))
}

/// The complete releases in the store (those with a manifest), sorted by period then number.
pub async fn list_releases(os: &Arc<dyn ObjectStore>) -> Result<Vec<(String, u32)>, Error> {
    let prefix = Path::from(PUBLISHED);
    let listing = match os.list_with_delimiter(Some(&prefix)).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(os_err(PUBLISHED)(e)),
    };
    let mut out = Vec::new();
    for p in listing.common_prefixes {
        let Some(name) = p.filename() else { continue };
        let Some((period, n)) = parse_release_id(name) else {
            continue;
        };
        let manifest = Path::from(format!("{PUBLISHED}/{name}/{MANIFEST}"));
        match os.head(&manifest).await {
            Ok(_) => out.push((period, n)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(os_err(name)(e)),
        }
    }
    out.sort();
    Ok(out)
}

/// The latest complete release of `period` (or of the latest period when `None`).
pub async fn latest_release(
    os: &Arc<dyn ObjectStore>,
    period: Option<&str>,
) -> Result<Option<String>, Error> {
    let all = list_releases(os).await?;
    let last = match period {
        Some(p) => all.iter().filter(|(q, _)| q == p).max_by_key(|(_, n)| *n),
        None => {
            // Periods sort as their labels do within one grain; take the latest period's
            // highest release.
            let latest = all.iter().map(|(p, _)| p.clone()).max();
            all.iter()
                .filter(|(q, _)| Some(q) == latest.as_ref())
                .max_by_key(|(_, n)| *n)
        }
    };
    Ok(last.map(|(p, n)| release_id(p, *n)))
}

async fn get_bytes(os: &Arc<dyn ObjectStore>, path: &str) -> Result<Vec<u8>, Error> {
    let r = os
        .get(&Path::from(path))
        .await
        .map_err(os_err(path))?
        .bytes()
        .await
        .map_err(os_err(path))?;
    Ok(r.to_vec())
}

fn from_json<T: for<'de> Deserialize<'de>>(path: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Release(format!("{path}: {e}")))
}

/// Reads a complete release.
pub async fn read_release(os: &Arc<dyn ObjectStore>, id: &str) -> Result<Release, Error> {
    let dir = format!("{PUBLISHED}/{id}");
    let m = format!("{dir}/{MANIFEST}");
    let manifest: Manifest = from_json(&m, &get_bytes(os, &m).await?)?;
    let table = |name: &str| format!("{dir}/{name}.json");
    let (i, t, a, q, r) = (
        table("indicators"),
        table("trends"),
        table("alerts"),
        table("quality"),
        table("areas"),
    );
    Ok(Release {
        manifest,
        tables: ReleaseTables {
            indicators: from_json(&i, &get_bytes(os, &i).await?)?,
            trends: from_json(&t, &get_bytes(os, &t).await?)?,
            alerts: from_json(&a, &get_bytes(os, &a).await?)?,
            quality: from_json(&q, &get_bytes(os, &q).await?)?,
            areas: from_json(&r, &get_bytes(os, &r).await?)?,
        },
    })
}

/// Writes one object (overwriting: used for the data files of a release still without a
/// manifest, and for reports).
pub async fn put(os: &Arc<dyn ObjectStore>, path: &str, bytes: Vec<u8>) -> Result<(), Error> {
    os.put(&Path::from(path), PutPayload::from(bytes))
        .await
        .map_err(os_err(path))?;
    Ok(())
}

/// Writes the manifest only if none exists: a release, once complete, is never overwritten.
pub async fn put_manifest(os: &Arc<dyn ObjectStore>, dir: &str, m: &Manifest) -> Result<(), Error> {
    let path = format!("{dir}/{MANIFEST}");
    let bytes = serde_json::to_vec_pretty(m).map_err(|e| Error::Release(e.to_string()))?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match os
        .put_opts(&Path::from(path.as_str()), PutPayload::from(bytes), opts)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => Err(Error::Release(format!(
            "{path} already exists: releases are immutable (another publish made it first; run publish again for a new release)"
        ))),
        Err(e) => Err(os_err(&path)(e)),
    }
}

/// A number as published text: integers without a decimal point, other values in Rust's
/// shortest round-trip form (full precision); empty for `None`.
pub fn num_text(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        Some(x) => format!("{x}"),
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Serialises rows as CSV in `schema`'s column order: empty cells for NULL, numbers as
/// [`num_text`], booleans as `true`/`false`.
pub fn to_csv<T: Serialize>(schema: &Schema, rows: &[T]) -> Result<Vec<u8>, Error> {
    let mut out = String::new();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    out.push_str(&names.join(","));
    out.push('\n');
    for r in rows {
        let v = serde_json::to_value(r).map_err(|e| Error::Release(e.to_string()))?;
        let cells: Vec<String> = names
            .iter()
            .map(|n| match &v[*n] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => csv_field(s),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(x) => num_text(x.as_f64()),
                other => csv_field(&other.to_string()),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// Serialises rows as Parquet (zstd) with `schema`.
pub fn to_parquet<T: Serialize>(schema: SchemaRef, rows: &[T]) -> Result<Vec<u8>, Error> {
    let err = |e: &dyn std::fmt::Display| Error::Release(format!("parquet: {e}"));
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(|e| err(&e))?;
    decoder.serialize(rows).map_err(|e| err(&e))?;
    let batch = decoder
        .flush()
        .map_err(|e| err(&e))?
        .unwrap_or_else(|| arrow::record_batch::RecordBatch::new_empty(schema.clone()));
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        &mut buf,
        schema,
        Some(drd_store::writer_properties()),
    )
    .map_err(|e| err(&e))?;
    w.write(&batch).map_err(|e| err(&e))?;
    w.close().map_err(|e| err(&e))?;
    Ok(buf)
}

/// Writes one table of a release as `<name>.parquet`, `.csv` and `.json`; returns the file
/// names.
pub async fn write_table<T: Serialize>(
    os: &Arc<dyn ObjectStore>,
    dir: &str,
    name: &str,
    schema: SchemaRef,
    rows: &[T],
) -> Result<Vec<String>, Error> {
    let json = serde_json::to_vec(rows).map_err(|e| Error::Release(e.to_string()))?;
    let csv = to_csv(&schema, rows)?;
    let parquet = to_parquet(schema, rows)?;
    let mut files = Vec::new();
    for (ext, bytes) in [("parquet", parquet), ("csv", csv), ("json", json)] {
        let file = format!("{name}.{ext}");
        put(os, &format!("{dir}/{file}"), bytes).await?;
        files.push(file);
    }
    Ok(files)
}

/// Writes every table of a release (not the manifest).
pub async fn write_tables(
    os: &Arc<dyn ObjectStore>,
    dir: &str,
    t: &ReleaseTables,
) -> Result<Vec<String>, Error> {
    let mut files = Vec::new();
    files.extend(write_table(os, dir, "indicators", indicator_schema(), &t.indicators).await?);
    files.extend(write_table(os, dir, "trends", trend_schema(), &t.trends).await?);
    files.extend(write_table(os, dir, "alerts", alert_schema(), &t.alerts).await?);
    files.extend(write_table(os, dir, "quality", quality_schema(), &t.quality).await?);
    files.extend(write_table(os, dir, "areas", area_schema(), &t.areas).await?);
    Ok(files)
}
