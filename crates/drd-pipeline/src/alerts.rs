//! The drug-alert review queue (`alerts/`): candidate signals from the `alert_signals` model,
//! keyed by (series, week, method), with the human decision on each.
//!
//! - A committed run that produced `alert_signals` is merged into the queue ([`merge`]): a new
//!   key arrives with status `new`; a key already queued gets the new evidence (observed,
//!   expected, threshold, the run that saw it last) and keeps its status, note, reviewer and
//!   review time. A signal that a later run no longer raises stays in the queue: a human may
//!   already have acted on it.
//! - [`review`] records a decision (`reviewed` or `dismissed`), a note, who made it and when.
//! - Nothing here is ever published: signals are for the review panel only.
//!
//! The queue is small (tens of rows a year), so each change rewrites it as one new Delta
//! version: atomic, and every earlier state stays in the table's history.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::prelude::SessionContext;
use drd_store::Store;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::run::RunError;

/// The queue's table.
pub const ALERTS_TABLE: &str = "alerts";

/// Statuses a reviewer may set.
pub const REVIEW_STATUSES: [&str; 2] = ["reviewed", "dismissed"];

/// One queued signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Short stable id: the first 12 hex digits of SHA-256 of `series|week|method`.
    pub alert_id: String,
    /// `<region_code>/<substance_group>`.
    pub series_id: String,
    /// Region.
    pub region_code: String,
    /// Region name.
    pub region_name: String,
    /// Substance group.
    pub substance_group: String,
    /// ISO week, e.g. `2025-W46`.
    pub week: String,
    /// Monday of the week.
    pub week_start: NaiveDate,
    /// `ears_c2`, `ears_c3` or `farrington_flexible`.
    pub method: String,
    /// Deaths that week.
    pub observed: i64,
    /// Expected deaths (EARS baseline mean, or Farrington's expected count).
    pub expected: Option<f64>,
    /// Alarm threshold on the count scale.
    pub threshold: Option<f64>,
    /// `new`, `reviewed` or `dismissed`.
    pub status: String,
    /// Reviewer's note.
    pub note: Option<String>,
    /// Who reviewed it.
    pub reviewed_by: Option<String>,
    /// When.
    pub reviewed_at: Option<DateTime<Utc>>,
    /// Run that first raised it.
    pub first_run_id: String,
    /// Run that last raised it.
    pub last_run_id: String,
}

/// The queue's id for a signal key.
pub fn alert_id(series_id: &str, week: &str, method: &str) -> String {
    let h = Sha256::digest(format!("{series_id}|{week}|{method}").as_bytes());
    h.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("alert_id", false),
        s("series_id", false),
        s("region_code", false),
        s("region_name", false),
        s("substance_group", false),
        s("week", false),
        Field::new("week_start", DataType::Date32, false),
        s("method", false),
        Field::new("observed", DataType::Int64, false),
        Field::new("expected", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        s("status", false),
        s("note", true),
        s("reviewed_by", true),
        Field::new("reviewed_at", ts, true),
        s("first_run_id", false),
        s("last_run_id", false),
    ]))
}

fn engine(e: &dyn std::fmt::Display) -> RunError {
    RunError::Engine(e.to_string())
}

fn col_str(b: &RecordBatch, name: &str) -> Result<StringArray, RunError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| engine(&format!("column {name} missing")))?;
    let c = arrow::compute::cast(c, &DataType::Utf8).map_err(|e| engine(&e))?;
    Ok(c.as_string::<i32>().clone())
}

fn col_f64(b: &RecordBatch, name: &str) -> Result<Float64Array, RunError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| engine(&format!("column {name} missing")))?;
    let c = arrow::compute::cast(c, &DataType::Float64).map_err(|e| engine(&e))?;
    Ok(c.as_primitive().clone())
}

fn col_i64(b: &RecordBatch, name: &str) -> Result<Int64Array, RunError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| engine(&format!("column {name} missing")))?;
    let c = arrow::compute::cast(c, &DataType::Int64).map_err(|e| engine(&e))?;
    Ok(c.as_primitive().clone())
}

fn opt_s(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

fn opt_f(a: &Float64Array, i: usize) -> Option<f64> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn date_of(days: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN) + chrono::Duration::days(days)
}

/// Alerts from batches with the queue's columns (`week_start` as days and `reviewed_at` as
/// microseconds, both BIGINT: `week_days`, `reviewed_us`).
fn from_batches(batches: &[RecordBatch]) -> Result<Vec<Alert>, RunError> {
    let mut out = Vec::new();
    for b in batches {
        let g = |n: &str| col_str(b, n);
        let (id, series, reg, regn, grp, week, method) = (
            g("alert_id")?,
            g("series_id")?,
            g("region_code")?,
            g("region_name")?,
            g("substance_group")?,
            g("week")?,
            g("method")?,
        );
        let (status, note, by, first, last) = (
            g("status")?,
            g("note")?,
            g("reviewed_by")?,
            g("first_run_id")?,
            g("last_run_id")?,
        );
        let (obs, wd, rus) = (
            col_i64(b, "observed")?,
            col_i64(b, "week_days")?,
            col_i64(b, "reviewed_us")?,
        );
        let (exp, thr) = (col_f64(b, "expected")?, col_f64(b, "threshold")?);
        for i in 0..b.num_rows() {
            out.push(Alert {
                alert_id: id.value(i).to_string(),
                series_id: series.value(i).to_string(),
                region_code: reg.value(i).to_string(),
                region_name: regn.value(i).to_string(),
                substance_group: grp.value(i).to_string(),
                week: week.value(i).to_string(),
                week_start: date_of(wd.value(i)),
                method: method.value(i).to_string(),
                observed: obs.value(i),
                expected: opt_f(&exp, i),
                threshold: opt_f(&thr, i),
                status: status.value(i).to_string(),
                note: opt_s(&note, i),
                reviewed_by: opt_s(&by, i),
                reviewed_at: (!rus.is_null(i))
                    .then(|| DateTime::from_timestamp_micros(rus.value(i)))
                    .flatten(),
                first_run_id: first.value(i).to_string(),
                last_run_id: last.value(i).to_string(),
            });
        }
    }
    Ok(out)
}

/// Every queued alert, oldest week first.
pub async fn list(store: &Store) -> Result<Vec<Alert>, RunError> {
    let Some(t) = store.table(ALERTS_TABLE).await? else {
        return Ok(Vec::new());
    };
    let ctx = SessionContext::new();
    crate::run::register_delta(&ctx, "alerts", &t).await?;
    let batches = Store::sql(
        &ctx,
        "SELECT *, CAST(week_start AS BIGINT) AS week_days, CAST(reviewed_at AS BIGINT) AS reviewed_us FROM alerts ORDER BY week_start, series_id, method",
    )
    .await?;
    from_batches(&batches)
}

async fn write(store: &Store, alerts: &[Alert], why: &str) -> Result<i64, RunError> {
    let s = |f: &dyn Fn(&Alert) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(alerts.iter().map(f)))
    };
    let o = |f: &dyn Fn(&Alert) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from(alerts.iter().map(f).collect::<Vec<_>>()))
    };
    let cols: Vec<ArrayRef> = vec![
        s(&|a| &a.alert_id),
        s(&|a| &a.series_id),
        s(&|a| &a.region_code),
        s(&|a| &a.region_name),
        s(&|a| &a.substance_group),
        s(&|a| &a.week),
        Arc::new(Date32Array::from_iter_values(
            alerts.iter().map(|a| crate::reference::days(a.week_start)),
        )),
        s(&|a| &a.method),
        Arc::new(Int64Array::from_iter_values(
            alerts.iter().map(|a| a.observed),
        )),
        Arc::new(Float64Array::from(
            alerts.iter().map(|a| a.expected).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            alerts.iter().map(|a| a.threshold).collect::<Vec<_>>(),
        )),
        s(&|a| &a.status),
        o(&|a| a.note.as_deref()),
        o(&|a| a.reviewed_by.as_deref()),
        Arc::new(
            TimestampMicrosecondArray::from(
                alerts
                    .iter()
                    .map(|a| a.reviewed_at.map(|t| t.timestamp_micros()))
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        s(&|a| &a.first_run_id),
        s(&|a| &a.last_run_id),
    ];
    let batch = RecordBatch::try_new(schema(), cols).map_err(|e| engine(&e))?;
    let meta = HashMap::from([(
        "drdsurv.alerts_change".to_string(),
        serde_json::Value::from(why),
    )]);
    Ok(store
        .overwrite(ALERTS_TABLE, &schema(), vec![batch], meta)
        .await?)
}

/// Merges the `alert_signals` rows registered in `ctx` into the queue. Returns (new, updated).
pub async fn merge(
    store: &Store,
    ctx: &SessionContext,
    run_id: &str,
) -> Result<(usize, usize), RunError> {
    // The signals as queue rows: a new key's status, reviewer and runs.
    let run = run_id.replace('\'', "''");
    let batches = Store::sql(
        ctx,
        &format!(
            "SELECT '' AS alert_id, series_id, region_code, region_name, substance_group, week, CAST(week_start AS BIGINT) AS week_days, method, observed, expected, threshold, 'new' AS status, CAST(NULL AS VARCHAR) AS note, CAST(NULL AS VARCHAR) AS reviewed_by, CAST(NULL AS BIGINT) AS reviewed_us, '{run}' AS first_run_id, '{run}' AS last_run_id FROM alert_signals"
        ),
    )
    .await?;
    let mut queue: BTreeMap<String, Alert> = list(store)
        .await?
        .into_iter()
        .map(|a| (a.alert_id.clone(), a))
        .collect();
    let (mut new, mut updated) = (0, 0);
    for mut signal in from_batches(&batches)? {
        signal.alert_id = alert_id(&signal.series_id, &signal.week, &signal.method);
        match queue.get_mut(&signal.alert_id) {
            Some(a) => {
                a.observed = signal.observed;
                a.expected = signal.expected;
                a.threshold = signal.threshold;
                a.last_run_id = run_id.to_string();
                updated += 1;
            }
            None => {
                queue.insert(signal.alert_id.clone(), signal);
                new += 1;
            }
        }
    }
    let all: Vec<Alert> = queue.into_values().collect();
    write(store, &all, &format!("merge from run {run_id}")).await?;
    Ok((new, updated))
}

/// Why a review could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such alert.
    #[error("no alert with id '{0}' (drdsurv alerts list shows the ids)")]
    NotFound(String),
    /// Not a reviewer status.
    #[error("unknown status '{0}': expected reviewed or dismissed")]
    BadStatus(String),
    /// The store failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Records a reviewer's decision on one alert and returns it as stored.
pub async fn review(
    store: &Store,
    id: &str,
    status: &str,
    note: Option<&str>,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Alert, ReviewError> {
    if !REVIEW_STATUSES.contains(&status) {
        return Err(ReviewError::BadStatus(status.to_string()));
    }
    let mut all = list(store).await?;
    let a = all
        .iter_mut()
        .find(|a| a.alert_id == id)
        .ok_or_else(|| ReviewError::NotFound(id.to_string()))?;
    a.status = status.to_string();
    a.note = note.map(str::to_string);
    a.reviewed_by = Some(by.to_string());
    a.reviewed_at = Some(at);
    let out = a.clone();
    write(store, &all, &format!("review {id} by {by}")).await?;
    Ok(out)
}
