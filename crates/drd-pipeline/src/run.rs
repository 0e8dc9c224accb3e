//! Running models for a period, and the run ledger (`runs/`) that makes a run atomic.
//!
//! Delta commits are atomic per table only. A run therefore writes each stored model as a new
//! version of `marts/<model>/` and, only when every model and every blocking test has passed,
//! appends one `committed` row to the ledger naming the version of every output. Readers
//! ([`register_committed_marts`]) resolve marts through the last committed run, never through
//! the newest table version: a run that fails, or is killed between two model commits, leaves
//! what readers see exactly as it was. A failed run is recorded too (status `failed`, with
//! its error), so `drdsurv runs` shows it; readers ignore it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use chrono::Datelike;
use chrono::{DateTime, Utc};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use drd_engine::models::{Materialisation, Project, Severity};
use drd_model::Source;
use drd_model::period::{Period, Window};
use drd_store::{Store, TableKind};
use serde::Serialize;
use tracing::Instrument;

/// The ledger table.
pub const RUNS_TABLE: &str = "runs";

/// Why a run could not be carried out or recorded (a model or test failure is not an error:
/// it is a run with status `failed`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] drd_store::Error),
    /// DataFusion failed outside a model (registering tables).
    #[error("{0}")]
    Engine(String),
}

/// One model's outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelResult {
    /// Model.
    pub model: String,
    /// `ok` or `error`.
    pub status: String,
    /// Rows produced.
    pub rows: u64,
    /// The Delta version written (stored models).
    pub version: Option<i64>,
    /// Seconds taken.
    pub seconds: f64,
}

/// One data test's outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TestResult {
    /// Model.
    pub model: String,
    /// Test label.
    pub test: String,
    /// `warn` or `error`.
    pub severity: String,
    /// Whether a failure stops the run.
    pub blocking: bool,
    /// Failing rows.
    pub failures: u64,
    /// Up to five failing rows, as JSON.
    pub sample: Vec<String>,
}

/// A run as the ledger records it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// Pipeline.
    pub pipeline: String,
    /// Period label.
    pub period: String,
    /// `committed` or `failed`.
    pub status: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: DateTime<Utc>,
    /// Per model.
    pub models: Vec<ModelResult>,
    /// Per test.
    pub tests: Vec<TestResult>,
    /// Versions of the input tables (`sources/<source>/<submitter>` → version).
    pub inputs: BTreeMap<String, i64>,
    /// Where each reference table came from (`reference/<table>@v<N>`, `shipped` or `missing`):
    /// the definitions the run used.
    pub definitions: BTreeMap<String, String>,
    /// Why it failed.
    pub error: Option<String>,
    /// What started it: `manual` (`drdsurv run`) or `schedule` (`drdsurv schedule`).
    pub trigger: String,
    /// Whether it ran past its pipeline's deadline (a late run still commits; it is flagged).
    pub late: bool,
}

/// How a run is started.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `manual` when empty.
    pub trigger: String,
    /// The pipeline's deadline: a run taking longer is recorded as late.
    pub deadline: Option<std::time::Duration>,
    /// The pipeline's memory limit for its queries, in bytes.
    pub memory_limit: Option<usize>,
    /// Where the models' queries execute (embedded DataFusion unless a Ballista cluster is
    /// named).
    pub engine: drd_engine::Engine,
}

impl RunRecord {
    /// The version of every stored output.
    pub fn outputs(&self) -> BTreeMap<String, i64> {
        self.models
            .iter()
            .filter_map(|m| m.version.map(|v| (m.model.clone(), v)))
            .collect()
    }
}

fn ledger_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("pipeline", DataType::Utf8, false),
        Field::new("period", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("started_at", ts.clone(), false),
        Field::new("finished_at", ts, false),
        Field::new("models", DataType::Utf8, false),
        Field::new("tests", DataType::Utf8, false),
        Field::new("inputs", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("definitions", DataType::Utf8, true),
        Field::new("trigger", DataType::Utf8, true),
        Field::new("late", DataType::Boolean, true),
    ]))
}

/// Where a test can stop the process on purpose (`DRDSURV_FAULT=after_model:<model>`): the
/// atomicity tests kill a run between two model commits with it.
fn fault_after(model: &str) {
    if let Ok(f) = std::env::var("DRDSURV_FAULT")
        && f.strip_prefix("after_model:") == Some(model)
    {
        eprintln!("DRDSURV_FAULT: stopping after model {model}");
        std::process::exit(86);
    }
}

/// Registers every submitter's source table, `sources_<source>` as their union (an empty
/// table of the source's schema when no submitter has one), and `current_<source>` as its
/// current view (latest revision per key, withdrawn cases removed: drd-store's
/// `current_view_sql`, whose key hash `drd_engine::new_context` registers). Returns the input
/// versions.
pub async fn register_sources(
    store: &Store,
    ctx: &SessionContext,
) -> Result<BTreeMap<String, i64>, RunError> {
    let engine = |e: datafusion::error::DataFusionError| RunError::Engine(e.to_string());
    let mut inputs = BTreeMap::new();
    for source in [Source::Coroner, Source::Top, Source::Nsp] {
        let code = drd_model::Coded::code(source);
        let subs = store.submitters(TableKind::Sources, source).await?;
        let union = format!("sources_{code}");
        if drd_store::plans_travel(ctx) {
            // On a cluster: one listing table over every submitter's files (see
            // drd_store::union_provider for why not a union of one table per submitter).
            let mut tables = Vec::new();
            for s in &subs {
                let rel = drd_store::table_path(TableKind::Sources, source, s);
                if let Some(t) = store.open_table(&rel).await? {
                    inputs.insert(rel, t.version().unwrap_or(0) as i64);
                    tables.push(t);
                }
            }
            if tables.is_empty() {
                let schema = drd_model::schema::source_schema(source);
                drd_engine::register_rows(ctx, &union, schema, vec![]).map_err(engine)?;
            } else {
                let provider = drd_store::union_provider(ctx, &union, &tables).await?;
                ctx.register_table(union.as_str(), provider)
                    .map_err(engine)?;
            }
            register_current(ctx, source, &union).await?;
            continue;
        }
        let names = store
            .register_tables(ctx, TableKind::Sources, source, &subs)
            .await?;
        for s in &subs {
            let rel = drd_store::table_path(TableKind::Sources, source, s);
            if let Some(info) = store.table_info(&rel).await? {
                inputs.insert(rel, info.version as i64);
            }
        }
        if names.is_empty() {
            let schema = drd_model::schema::source_schema(source);
            drd_engine::register_rows(ctx, &union, schema, vec![]).map_err(engine)?;
        } else {
            let sql = names
                .iter()
                .map(|n| format!("SELECT * FROM {n}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL BY NAME ");
            let view = ctx.sql(&sql).await.map_err(engine)?.into_view();
            ctx.register_table(union.as_str(), view).map_err(engine)?;
        }
        register_current(ctx, source, &union).await?;
    }
    Ok(inputs)
}

/// Registers `current_<source>`, the current view (formats.md) of `union`, defined once in
/// drd-store and used by staging.
async fn register_current(
    ctx: &SessionContext,
    source: Source,
    union: &str,
) -> Result<(), RunError> {
    let engine = |e: datafusion::error::DataFusionError| RunError::Engine(e.to_string());
    let code = drd_model::Coded::code(source);
    let current = ctx
        .sql(&drd_store::current_view_sql(source, union))
        .await
        .map_err(engine)?
        .into_view();
    ctx.register_table(format!("current_{code}").as_str(), current)
        .map_err(engine)?;
    Ok(())
}

/// How many years of history windows a run computes for the trend charts.
pub const TREND_YEARS_BACK: i32 = 4;

/// Registers what the models need to know about the period:
///
/// - `run_params(period, period_start, period_end, run_id)`: one row;
/// - `run_windows(kind, which, label, window_start, window_end, first_year, last_year)`: the
///   indicator windows of architecture.md ("Period windows") for this run (`which =
///   'current'`) and the window before it (`'previous'`, for direction of travel):
///   - `deaths`: the 3 complete registration years ending with the last complete year at or
///     before the period's end (`2022-2024`); the previous window is one year earlier (a
///     quarter later in the same year has the same window, so "previous" means the last
///     different one);
///   - `months12`: the 12 months ending with the period (`2024Q4-2025Q3`); the previous
///     window ends with the previous period;
///   - `delay`: the last complete year (`2024`); the previous window is the year before.
///
/// For the reports' trend charts, `deaths` and `months12` also have history windows
/// `which = 'year-<k>'`, k years before the current one (k = 2..=4 for deaths, whose
/// 'previous' is already a year back; k = 1..=4 for 12-month windows). Every indicator model
/// computes each window it is given; `trends` keeps the headline rows.
pub async fn register_params(
    ctx: &SessionContext,
    period: Period,
    run_id: &str,
) -> Result<(), RunError> {
    let deaths = period.pooled_years(3);
    let deaths_prev = Period::Year(period.last_complete_year() - 1).pooled_years(3);
    let t12 = period.trailing_12_months();
    let t12_prev = period.prev().trailing_12_months();
    let delay = Window::new(
        Period::Year(period.last_complete_year()),
        Period::Year(period.last_complete_year()),
    )
    .map_err(|e| RunError::Engine(e.to_string()))?;
    let delay_prev = Window::new(
        Period::Year(period.last_complete_year() - 1),
        Period::Year(period.last_complete_year() - 1),
    )
    .map_err(|e| RunError::Engine(e.to_string()))?;
    let row = |kind: &str, which: &str, w: Window| {
        format!(
            "('{kind}', '{which}', '{}', DATE '{}', DATE '{}', {}, {})",
            w.label(),
            w.start(),
            w.end(),
            w.start().year(),
            w.end().year()
        )
    };
    let mut windows = vec![
        row("deaths", "current", deaths),
        row("deaths", "previous", deaths_prev),
        row("months12", "current", t12),
        row("months12", "previous", t12_prev),
        row("delay", "current", delay),
        row("delay", "previous", delay_prev),
    ];
    // The trend charts' history (5 points over at least 5 years): death windows 2-4 years
    // back (1 year back is 'previous'), 12-month windows 1-4 years back.
    for back in 1..=TREND_YEARS_BACK {
        let label = format!("year-{back}");
        if back >= 2 {
            let y = Period::Year(period.last_complete_year() - back);
            windows.push(row("deaths", &label, y.pooled_years(3)));
        }
        let per_year = match period {
            Period::Year(_) => 1,
            Period::Quarter(..) => 4,
            Period::Month(..) => 12,
        };
        let earlier = period.shift(-per_year * back);
        windows.push(row("months12", &label, earlier.trailing_12_months()));
    }
    // Views over literal rows: they travel with a plan to a Ballista cluster as they are.
    let tables = [
        (
            "run_params",
            format!(
                "SELECT '{period}' AS period, DATE '{}' AS period_start, DATE '{}' AS period_end, '{}' AS run_id",
                period.start(),
                period.end(),
                run_id.replace('\'', "''")
            ),
        ),
        (
            "run_windows",
            format!(
                "SELECT column1 AS kind, column2 AS which, column3 AS label, column4 AS window_start, column5 AS window_end, CAST(column6 AS INT) AS first_year, CAST(column7 AS INT) AS last_year FROM (VALUES {})",
                windows.join(", ")
            ),
        ),
    ];
    let engine = |e: datafusion::error::DataFusionError| RunError::Engine(e.to_string());
    for (name, sql) in tables {
        let view = ctx.sql(&sql).await.map_err(engine)?.into_view();
        ctx.deregister_table(name).map_err(engine)?;
        ctx.register_table(name, view).map_err(engine)?;
    }
    Ok(())
}

/// Runs `models` (in the order given) for `period`, then commits the run to the ledger if
/// every model succeeded and no blocking test failed. Returns the ledger row.
pub async fn run_models(
    store: &Store,
    project: &Project,
    models: &[String],
    pipeline: &str,
    period: Period,
    run_id: &str,
) -> Result<RunRecord, RunError> {
    run_models_with(
        store,
        project,
        models,
        pipeline,
        period,
        run_id,
        &RunOptions::default(),
    )
    .await
}

/// A run id: the pipeline, the period and the start time to the microsecond.
pub fn new_run_id(pipeline: &str, period: Period) -> String {
    format!(
        "{pipeline}-{period}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    )
}

/// [`run_models`], saying what started the run and its deadline.
pub async fn run_models_with(
    store: &Store,
    project: &Project,
    models: &[String],
    pipeline: &str,
    period: Period,
    run_id: &str,
    options: &RunOptions,
) -> Result<RunRecord, RunError> {
    let started_at = Utc::now();
    let stores: Vec<_> = store.engine_object_store()?.into_iter().collect();
    let ctx = options
        .engine
        .context(options.memory_limit, &stores)
        .await
        .map_err(|e| RunError::Engine(format!("engine {}: {e}", options.engine)))?;
    let inputs = register_sources(store, &ctx).await?;
    let definitions = crate::reference::register(store, &ctx).await?;
    register_params(&ctx, period, run_id).await?;
    let mut record = RunRecord {
        run_id: run_id.to_string(),
        pipeline: pipeline.to_string(),
        period: period.to_string(),
        status: "failed".into(),
        started_at,
        finished_at: started_at,
        models: Vec::new(),
        tests: Vec::new(),
        inputs,
        definitions,
        error: None,
        trigger: if options.trigger.is_empty() {
            "manual".into()
        } else {
            options.trigger.clone()
        },
        late: false,
    };
    let span = tracing::info_span!(
        "run",
        run_id,
        pipeline,
        period = %period,
        trigger = %record.trigger,
        status = tracing::field::Empty,
        late = tracing::field::Empty,
    );
    let scope = RunScope {
        store,
        ctx: &ctx,
        run_id,
        pipeline,
        period,
    };
    async {
        for name in models {
            let Some(model) = project.models.get(name) else {
                record.error = Some(format!("model '{name}' is not in the project"));
                break;
            };
            let mspan = tracing::info_span!(
                "model",
                model = %name,
                run_id,
                pipeline,
                period = %period,
                rows = tracing::field::Empty,
                status = tracing::field::Empty,
            );
            let stop = scope
                .model_and_tests(name, model, &mut record, &mspan)
                .instrument(mspan.clone())
                .await;
            if stop {
                break;
            }
            fault_after(name);
        }
    }
    .instrument(span.clone())
    .await;
    if record.error.is_none() {
        record.status = "committed".into();
    }
    record.finished_at = Utc::now();
    let seconds = (record.finished_at - started_at)
        .to_std()
        .unwrap_or_default();
    if let Some(deadline) = options.deadline {
        record.late = seconds > deadline;
    }
    span.record("status", record.status.as_str());
    span.record("late", record.late);
    {
        let _in_run = span.enter();
        if record.late {
            // A span event on the run, and a metric.
            tracing::warn!(
                monotonic_counter.drdsurv_runs_late = 1u64,
                pipeline,
                deadline_seconds = options.deadline.map_or(0, |d| d.as_secs()),
                "run finished after its deadline: marked late"
            );
        }
        let rows: u64 = record.models.iter().map(|m| m.rows).sum();
        let failures: u64 = record.tests.iter().map(|t| t.failures).sum();
        tracing::info!(
            histogram.drdsurv_run_duration_seconds = seconds.as_secs_f64(),
            monotonic_counter.drdsurv_model_rows = rows,
            monotonic_counter.drdsurv_test_failures = failures,
            pipeline,
            status = %record.status,
            "run finished"
        );
    }
    append_ledger(store, &record).await?;
    // Signals reach the review queue only from a committed run.
    if record.status == "committed" && models.iter().any(|m| m == "alert_signals") {
        let (new, updated) = crate::alerts::merge(store, &ctx, run_id).await?;
        tracing::info!(new, updated, "alert signals merged into the review queue");
    }
    Ok(record)
}

/// What every model of a run shares.
struct RunScope<'a> {
    store: &'a Store,
    ctx: &'a SessionContext,
    run_id: &'a str,
    pipeline: &'a str,
    period: Period,
}

impl RunScope<'_> {
    /// Runs one model and its data tests (each test in its own span), adding their results to
    /// `record`. Returns true when the run must stop: the model failed, or a blocking test
    /// failed or could not run.
    async fn model_and_tests(
        &self,
        name: &str,
        model: &drd_engine::models::Model,
        record: &mut RunRecord,
        here: &tracing::Span,
    ) -> bool {
        let t0 = Instant::now();
        match run_one(self.store, self.ctx, model, self.run_id, self.period).await {
            Ok((rows, version)) => {
                here.record("rows", rows);
                here.record("status", "ok");
                record.models.push(ModelResult {
                    model: name.to_string(),
                    status: "ok".into(),
                    rows,
                    version,
                    seconds: t0.elapsed().as_secs_f64(),
                });
            }
            Err(e) => {
                here.record("status", "error");
                record.models.push(ModelResult {
                    model: name.to_string(),
                    status: "error".into(),
                    rows: 0,
                    version: None,
                    seconds: t0.elapsed().as_secs_f64(),
                });
                record.error = Some(format!("model {name}: {e}"));
                return true;
            }
        }
        for test in &model.config.tests {
            let label = test.label();
            let tspan = tracing::info_span!(
                "test",
                test = %label,
                model = %name,
                run_id = self.run_id,
                pipeline = self.pipeline,
                period = %self.period,
                failures = tracing::field::Empty,
            );
            let sql = test.failing_rows_sql(name);
            let rows = async {
                match self.ctx.sql(&sql).await {
                    Ok(df) => df.collect().await,
                    Err(e) => Err(e),
                }
            }
            .instrument(tspan.clone())
            .await;
            let batches = match rows {
                Ok(b) => b,
                Err(e) => {
                    record.error = Some(format!("test {label} of {name} could not run: {e}"));
                    return true;
                }
            };
            let failures: usize = batches.iter().map(RecordBatch::num_rows).sum();
            tspan.record("failures", failures as u64);
            let result = TestResult {
                model: name.to_string(),
                test: label,
                severity: match test.severity {
                    Severity::Warn => "warn".into(),
                    Severity::Error => "error".into(),
                },
                blocking: test.blocking,
                failures: failures as u64,
                sample: sample_rows(&batches, 5),
            };
            let blocked = failures > 0 && test.blocking;
            if failures > 0 {
                let _t = tspan.enter();
                tracing::warn!(test = %result.test, failures, "data test failed");
                if blocked {
                    record.error = Some(format!(
                        "blocking test {} of {name} failed on {failures} rows",
                        result.test
                    ));
                }
            }
            record.tests.push(result);
            if blocked {
                return true;
            }
        }
        false
    }
}

/// Runs one model: stored models become a new version of `marts/<model>/`; every model is
/// registered in the context under its name for the models after it.
///
/// A `table` model's rows stream from its plan into the new version's files and the written
/// version is what later models read, so a large model (7 million staged TOP forms at national
/// scale) is never held in memory. A `view` and an `overwrite_by_period` model (small: a
/// view's rows are counted for the ledger, and a period's rows are checked and joined to the
/// other periods' committed rows) are collected and registered from memory.
async fn run_one(
    store: &Store,
    ctx: &SessionContext,
    model: &drd_engine::models::Model,
    run_id: &str,
    period: Period,
) -> Result<(u64, Option<i64>), String> {
    let df = ctx.sql(&model.sql).await.map_err(|e| e.to_string())?;
    let planned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let rel = format!("marts/{}", model.name);
    let meta = HashMap::from([(
        "drdsurv.run_id".to_string(),
        serde_json::Value::from(run_id),
    )]);
    let travels = drd_store::plans_travel(ctx);
    if model.config.materialisation == Materialisation::Table {
        let (version, rows) = if travels {
            // The query runs on the cluster; its rows stream back into the new version.
            let rows = df.execute_stream().await.map_err(|e| e.to_string())?;
            store
                .overwrite_from_stream(&rel, &plain_schema(&planned), rows, meta)
                .await
        } else {
            store
                .overwrite_from_plan(
                    &rel,
                    &plain_schema(&planned),
                    df.into_unoptimized_plan(),
                    ctx.state(),
                    meta,
                )
                .await
        }
        .map_err(|e| e.to_string())?;
        let written = store
            .open_table_at(&rel, version)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{rel} is missing after its write"))?;
        ctx.deregister_table(model.name.as_str())
            .map_err(|e| e.to_string())?;
        register_delta(ctx, &model.name, &written)
            .await
            .map_err(|e| e.to_string())?;
        return Ok((rows, Some(version)));
    }
    let view = travels.then(|| df.clone().into_view());
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    // Delta stores strings as plain Utf8: view types are cast before writing, and the
    // batches' own schema (it can differ from the plan's in nullability) is the truth.
    let batches: Vec<RecordBatch> = batches
        .into_iter()
        .map(|b| plain_strings(&b))
        .collect::<Result<_, String>>()?;
    let schema = batches
        .first()
        .map_or_else(|| plain_schema(&planned), RecordBatch::schema);
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    // What the model's table holds after this run: its rows, plus for an overwrite_by_period
    // model every other period's committed rows. Later models read the same.
    let mut stored = batches;
    if let Some(col) = &model.config.period_column {
        let others = other_periods(store, model, col, period, &schema, &stored).await?;
        stored.extend(others);
    }
    let version = match model.config.materialisation {
        Materialisation::View => None,
        Materialisation::Table | Materialisation::OverwriteByPeriod => Some(
            store
                .overwrite(&rel, &schema, stored.clone(), meta)
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    ctx.deregister_table(model.name.as_str())
        .map_err(|e| e.to_string())?;
    match (view, version) {
        // On Ballista, later models read a view as its query, and a stored model through the
        // files of the version just written.
        (Some(view), None) => {
            ctx.register_table(model.name.as_str(), view)
                .map_err(|e| e.to_string())?;
        }
        (Some(_), Some(v)) => {
            let written = store
                .open_table_at(&rel, v)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{rel} is missing after its write"))?;
            register_delta(ctx, &model.name, &written)
                .await
                .map_err(|e| e.to_string())?;
        }
        (None, _) => {
            let mem = MemTable::try_new(schema, vec![stored]).map_err(|e| e.to_string())?;
            ctx.register_table(model.name.as_str(), Arc::new(mem))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok((rows, version))
}

/// For an `overwrite_by_period` model: checks that every new row is for the run's period, and
/// returns the rows of every other period as the last committed run left the table (never an
/// uncommitted version, so a failed run's rows are never carried forward), in the new schema.
async fn other_periods(
    store: &Store,
    model: &drd_engine::models::Model,
    col: &str,
    period: Period,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>, String> {
    let label = period.to_string();
    let idx = schema
        .index_of(col)
        .map_err(|_| format!("period_column '{col}' is not a column of the model's output"))?;
    for b in batches {
        let c = arrow::compute::cast(b.column(idx), &DataType::Utf8).map_err(|e| e.to_string())?;
        let c = c.as_string::<i32>();
        if let Some(r) = (0..c.len()).find(|&r| c.is_null(r) || c.value(r) != label) {
            let got = if c.is_null(r) { "NULL" } else { c.value(r) };
            return Err(format!(
                "overwrite_by_period: a row has {col} = {got} in a run for {label}"
            ));
        }
    }
    let rel = format!("marts/{}", model.name);
    let Some((version, _)) = committed_outputs(store)
        .await
        .map_err(|e| e.to_string())?
        .remove(&model.name)
    else {
        return Ok(Vec::new());
    };
    let Some(t) = store
        .open_table_at(&rel, version)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(Vec::new());
    };
    let ctx = SessionContext::new();
    register_delta(&ctx, "committed", &t)
        .await
        .map_err(|e| e.to_string())?;
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name().replace('"', "\"\"")))
        .collect();
    let sql = format!(
        "SELECT {} FROM committed WHERE CAST(\"{}\" AS VARCHAR) <> '{}'",
        cols.join(", "),
        col.replace('"', "\"\""),
        label.replace('\'', "''")
    );
    let kept = Store::sql(&ctx, &sql).await.map_err(|e| {
        format!(
            "overwrite_by_period: the committed rows of {} no longer fit the model's columns: {e}",
            model.name
        )
    })?;
    kept.iter().map(|b| cast_to(b, schema.clone())).collect()
}

fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        other => other.clone(),
    }
}

fn plain_schema(s: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        s.fields()
            .iter()
            .map(|f| f.as_ref().clone().with_data_type(plain_type(f.data_type())))
            .collect::<Vec<_>>(),
    ))
}

fn plain_strings(b: &RecordBatch) -> Result<RecordBatch, String> {
    cast_to(b, plain_schema(&b.schema()))
}

/// `b` with each column cast to the type `schema` gives it (same columns, same order).
fn cast_to(b: &RecordBatch, schema: SchemaRef) -> Result<RecordBatch, String> {
    let cols = b
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| arrow::compute::cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    RecordBatch::try_new(schema, cols).map_err(|e| e.to_string())
}

fn sample_rows(batches: &[RecordBatch], n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let mut buf = Vec::new();
        let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
        let take = b.slice(0, b.num_rows().min(n - out.len()));
        if w.write(&take).is_ok() && w.finish().is_ok() {
            out.extend(String::from_utf8_lossy(&buf).lines().map(str::to_string));
        }
        if out.len() >= n {
            break;
        }
    }
    out
}

async fn append_ledger(store: &Store, r: &RunRecord) -> Result<(), RunError> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![r.run_id.clone()])),
        Arc::new(StringArray::from(vec![r.pipeline.clone()])),
        Arc::new(StringArray::from(vec![r.period.clone()])),
        Arc::new(StringArray::from(vec![r.status.clone()])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![r.started_at.timestamp_micros()])
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from(vec![r.finished_at.timestamp_micros()])
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![to_json(&r.models)])),
        Arc::new(StringArray::from(vec![to_json(&r.tests)])),
        Arc::new(StringArray::from(vec![to_json(&r.inputs)])),
        Arc::new(StringArray::from(vec![r.error.clone()])),
        Arc::new(StringArray::from(vec![to_json(&r.definitions)])),
        Arc::new(StringArray::from(vec![r.trigger.clone()])),
        Arc::new(arrow::array::BooleanArray::from(vec![r.late])),
    ];
    let batch =
        RecordBatch::try_new(ledger_schema(), cols).map_err(|e| RunError::Engine(e.to_string()))?;
    let mut app = store
        .appender(RUNS_TABLE, &ledger_schema(), None, HashMap::new())
        .await?;
    app.write(batch).await?;
    app.commit().await?;
    Ok(())
}

/// A ledger column as JSON text.
fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("\"unserialisable: {e}\""))
}

/// A ledger row read back: what readers need.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    /// Run id.
    pub run_id: String,
    /// Pipeline.
    pub pipeline: String,
    /// Period.
    pub period: String,
    /// Status.
    pub status: String,
    /// End time.
    pub finished_at: DateTime<Utc>,
    /// Output versions (model → version).
    pub outputs: BTreeMap<String, i64>,
    /// Error, if failed.
    pub error: Option<String>,
    /// `manual` or `schedule` (`manual` for rows written before the column existed).
    pub trigger: String,
    /// Whether the run passed its deadline.
    pub late: bool,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// Versions of the input tables the run read.
    pub inputs: BTreeMap<String, i64>,
    /// The reference tables (definitions) the run read, and where each came from.
    pub definitions: BTreeMap<String, String>,
}

/// Registers a Delta table (at the version it was opened at) under `name`.
pub(crate) async fn register_delta(
    ctx: &SessionContext,
    name: &str,
    t: &deltalake::DeltaTable,
) -> Result<(), RunError> {
    let engine = |e: &dyn std::fmt::Display| RunError::Engine(e.to_string());
    let provider = drd_store::delta_provider(ctx, t).await?;
    ctx.register_table(name, provider).map_err(|e| engine(&e))?;
    Ok(())
}

/// Every ledger row, oldest first.
pub async fn read_ledger(store: &Store) -> Result<Vec<LedgerRow>, RunError> {
    let Some(t) = store.table(RUNS_TABLE).await? else {
        return Ok(Vec::new());
    };
    let ctx = SessionContext::new();
    register_delta(&ctx, "runs", &t).await?;
    // Ledgers written before `trigger` and `late` existed read as manual runs, not late.
    let has = |c: &str| t.snapshot().is_ok_and(|s| s.schema().field(c).is_some());
    let extra = if has("trigger") && has("late") {
        "coalesce(trigger, 'manual') AS trigger, coalesce(late, false) AS late"
    } else {
        "'manual' AS trigger, false AS late"
    };
    let batches = Store::sql(
        &ctx,
        &format!("SELECT run_id, pipeline, period, status, finished_at, models, error, {extra}, started_at, inputs, definitions FROM runs ORDER BY finished_at, run_id"),
    )
    .await?;
    let mut out = Vec::new();
    for b in &batches {
        let s = |i: usize| -> Result<StringArray, RunError> {
            let c = arrow::compute::cast(b.column(i), &DataType::Utf8)
                .map_err(|e| RunError::Engine(e.to_string()))?;
            Ok(c.as_string::<i32>().clone())
        };
        let (id, pipe, per, st, models, err) = (s(0)?, s(1)?, s(2)?, s(3)?, s(5)?, s(6)?);
        let trigger = s(7)?;
        let late = b.column(8).as_boolean();
        let fin = b.column(4).as_primitive::<TimestampMicrosecondType>();
        let started = b.column(9).as_primitive::<TimestampMicrosecondType>();
        let (inputs, defs) = (s(10)?, s(11)?);
        for r in 0..b.num_rows() {
            let results: Vec<serde_json::Value> =
                serde_json::from_str(models.value(r)).unwrap_or_default();
            let outputs = results
                .iter()
                .filter_map(|m| Some((m["model"].as_str()?.to_string(), m["version"].as_i64()?)))
                .collect();
            out.push(LedgerRow {
                run_id: id.value(r).to_string(),
                pipeline: pipe.value(r).to_string(),
                period: per.value(r).to_string(),
                status: st.value(r).to_string(),
                finished_at: DateTime::from_timestamp_micros(fin.value(r)).unwrap_or_default(),
                outputs,
                error: (!err.is_null(r)).then(|| err.value(r).to_string()),
                trigger: trigger.value(r).to_string(),
                late: late.value(r),
                started_at: DateTime::from_timestamp_micros(started.value(r)).unwrap_or_default(),
                inputs: serde_json::from_str(inputs.value(r)).unwrap_or_default(),
                definitions: if defs.is_null(r) {
                    BTreeMap::new()
                } else {
                    serde_json::from_str(defs.value(r)).unwrap_or_default()
                },
            });
        }
    }
    Ok(out)
}

/// The version of every mart as the committed runs leave it: for each model, the version
/// named by the last committed run that wrote it.
pub async fn committed_outputs(store: &Store) -> Result<BTreeMap<String, (i64, String)>, RunError> {
    let mut out = BTreeMap::new();
    for row in read_ledger(store).await? {
        if row.status == "committed" {
            for (m, v) in row.outputs {
                out.insert(m, (v, row.run_id.clone()));
            }
        }
    }
    Ok(out)
}

/// Registers every mart in `ctx` under its model name, at the version the committed runs
/// name. A version no committed run names is never read.
pub async fn register_committed_marts(
    store: &Store,
    ctx: &SessionContext,
) -> Result<Vec<String>, RunError> {
    register_committed_marts_where(store, ctx, |_| true).await
}

/// [`register_committed_marts`] for the models `wanted` accepts only.
pub async fn register_committed_marts_where(
    store: &Store,
    ctx: &SessionContext,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<String>, RunError> {
    let mut names = Vec::new();
    for (model, (version, _run)) in committed_outputs(store).await? {
        if !wanted(&model) {
            continue;
        }
        let rel = format!("marts/{model}");
        let Some(t) = store.open_table_at(&rel, version).await? else {
            continue;
        };
        register_delta(ctx, &model, &t).await?;
        names.push(model);
    }
    Ok(names)
}
