//! Running one user's SQL: the role's session, read-only checks, per-query memory and time
//! limits, and the audit record. The Flight SQL service and `drdsurv sql` both come here.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use drd_engine::Engine;
use drd_store::Store;
use futures::{Stream, StreamExt};

use crate::access::{self, Exposed, Role};
use crate::audit::{Auditor, Outcome, Record};
use crate::auth::Principal;

/// Limits on each query.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes a query's memory-tracked operators (sorts, aggregations, joins) may hold.
    /// Spilling is off for served queries, so reaching it fails the query.
    pub memory: Option<usize>,
    /// Wall time from planning to the last row.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: Some(1 << 30),
            timeout: Duration::from_secs(300),
        }
    }
}

/// Why a query did not run.
#[derive(Debug, Clone)]
pub struct QueryError {
    pub outcome: Outcome,
    pub message: String,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

fn classify(e: &DataFusionError) -> QueryError {
    let text = e.to_string();
    let root = e.find_root();
    let outcome = if matches!(root, DataFusionError::ResourcesExhausted(_))
        || text.contains("Resources exhausted")
        || (text.contains("Failed to allocate") && text.contains("memory pool"))
    {
        Outcome::MemoryLimit
    } else if text.contains("not supported:")
        || text.contains("not found")
        || text.contains("is read-only")
    {
        Outcome::Refused
    } else {
        Outcome::Error
    };
    let message = match outcome {
        Outcome::MemoryLimit => format!(
            "query stopped: it reached the per-query memory limit (spilling is off for served queries); narrow it or aggregate first ({})",
            root
        ),
        _ => text,
    };
    QueryError { outcome, message }
}

/// A running query's batches.
pub type Batches = Pin<Box<dyn Stream<Item = Result<RecordBatch, QueryError>> + Send>>;

/// A planned query, ready to run.
#[derive(Debug)]
pub struct Planned {
    pub schema: SchemaRef,
    plan: LogicalPlan,
    state: datafusion::execution::SessionState,
    started: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    deadline: tokio::time::Instant,
    record: Record,
}

struct Loaded {
    at: Instant,
    catalogs: Arc<BTreeMap<String, Vec<Exposed>>>,
    roles: Mutex<HashMap<Role, SessionContext>>,
}

/// Everything a query needs: the stores, the engine, the limits and the audit.
pub struct QueryService {
    stores: BTreeMap<String, Store>,
    engine: Engine,
    base: SessionContext,
    limits: Limits,
    refresh: Duration,
    loaded: tokio::sync::RwLock<Option<Arc<Loaded>>>,
    auditor: Option<Auditor>,
    wanted: access::Wanted,
}

impl std::fmt::Debug for QueryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryService")
            .field("catalogs", &self.stores.keys().collect::<Vec<_>>())
            .field("engine", &self.engine)
            .field("limits", &self.limits)
            .finish()
    }
}

static QUERY_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Queries of this process between execute and the end of their stream.
static ACTIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn query_id() -> String {
    let n = QUERY_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "q-{}-{}-{n}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f"),
        std::process::id()
    )
}

impl QueryService {
    /// `home` is the store the service runs on (catalog `drdsurv`); `attached` are more stores
    /// as named catalogs. Tables are re-read from the stores at most every `refresh`.
    pub async fn new(
        home: Store,
        attached: BTreeMap<String, Store>,
        engine: Engine,
        limits: Limits,
        refresh: Duration,
        auditor: Option<Auditor>,
    ) -> Result<QueryService, String> {
        let mut stores = BTreeMap::new();
        for name in attached.keys() {
            if name == access::HOME
                || name == "datafusion"
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(format!(
                    "catalog name '{name}': use lower-case letters, digits and '_', and not '{}'",
                    access::HOME
                ));
            }
        }
        stores.insert(access::HOME.to_string(), home);
        stores.extend(attached);
        let mut object_stores = Vec::new();
        for s in stores.values() {
            if let Some(os) = s.engine_object_store().map_err(|e| e.to_string())? {
                object_stores.push(os);
            }
        }
        let base = engine
            .context(None, &object_stores)
            .await
            .map_err(|e| format!("engine {engine}: {e}"))?;
        for (url, os) in &object_stores {
            base.register_object_store(url, os.clone());
        }
        Ok(QueryService {
            stores,
            engine,
            base,
            limits,
            refresh,
            loaded: tokio::sync::RwLock::new(None),
            auditor,
            wanted: access::Wanted::All,
        })
    }

    /// Loads only the tables `wanted` names (a one-off query: `drdsurv sql`), not every table
    /// of every store.
    pub fn with_wanted(mut self, wanted: access::Wanted) -> QueryService {
        self.wanted = wanted;
        self
    }

    /// The audit writer, if queries are audited.
    pub fn auditor(&self) -> Option<&Auditor> {
        self.auditor.as_ref()
    }

    async fn loaded(&self) -> Result<Arc<Loaded>, QueryError> {
        if let Some(l) = self.loaded.read().await.as_ref()
            && l.at.elapsed() < self.refresh
        {
            return Ok(l.clone());
        }
        let mut w = self.loaded.write().await;
        if let Some(l) = w.as_ref()
            && l.at.elapsed() < self.refresh
        {
            return Ok(l.clone());
        }
        let mut catalogs = BTreeMap::new();
        for (name, store) in &self.stores {
            let scratch = access::scratch_context(&self.base).map_err(|e| QueryError {
                outcome: Outcome::Error,
                message: e.to_string(),
            })?;
            let tables = access::load(store, &scratch, &self.wanted)
                .await
                .map_err(|e| QueryError {
                    outcome: Outcome::Error,
                    message: format!("cannot read the store of catalog {name}: {e}"),
                })?;
            catalogs.insert(name.clone(), tables);
        }
        let l = Arc::new(Loaded {
            at: Instant::now(),
            catalogs: Arc::new(catalogs),
            roles: Mutex::new(HashMap::new()),
        });
        *w = Some(l.clone());
        Ok(l)
    }

    /// The session of a role: only the tables it may read, restricted ones filtered.
    pub async fn session(&self, role: &Role) -> Result<SessionContext, QueryError> {
        let l = self.loaded().await?;
        if let Some(c) = l.roles.lock().unwrap_or_else(|p| p.into_inner()).get(role) {
            return Ok(c.clone());
        }
        let ctx = access::role_context(&self.base, &l.catalogs, role).map_err(|e| QueryError {
            outcome: Outcome::Error,
            message: e.to_string(),
        })?;
        l.roles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(role.clone(), ctx.clone());
        Ok(ctx)
    }

    /// Plans `sql` for `who`: read-only, within the role's tables, with the query's own
    /// memory pool. A refusal is audited here.
    pub async fn plan(&self, who: &Principal, sql: &str) -> Result<Planned, QueryError> {
        self.plan_with_params(who, sql, &[]).await
    }

    /// [`Self::plan`] with positional parameters (`$1`, `$2`, …).
    pub async fn plan_with_params(
        &self,
        who: &Principal,
        sql: &str,
        params: &[datafusion::common::ScalarValue],
    ) -> Result<Planned, QueryError> {
        // The role's session (re-reading the stores when the refresh interval has passed) is
        // the service's work, not the query's: it does not count against the time limit.
        let session = self.session(&who.role).await;
        let started = Instant::now();
        let started_at = chrono::Utc::now();
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let record = Record {
            query_id: query_id(),
            user: who.user.clone(),
            role: who.role.to_string(),
            started_at,
            sql: sql.to_string(),
            rows: 0,
            duration: Duration::ZERO,
            outcome: Outcome::Ok,
            message: None,
        };
        let result = match session {
            Ok(ctx) => tokio::time::timeout_at(deadline, self.plan_inner(ctx, sql, params)).await,
            Err(e) => Ok(Err(e)),
        };
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(QueryError {
                outcome: Outcome::Timeout,
                message: format!(
                    "query stopped: it reached the time limit of {:?} while planning",
                    self.limits.timeout
                ),
            }),
        };
        match result {
            Ok((state, plan)) => Ok(Planned {
                schema: Arc::new(plan.schema().as_arrow().clone()),
                plan,
                state,
                started,
                started_at,
                deadline,
                record,
            }),
            Err(e) => {
                if let Some(a) = &self.auditor {
                    a.log(Record {
                        duration: started.elapsed(),
                        outcome: e.outcome,
                        message: Some(e.message.clone()),
                        ..record
                    });
                }
                Err(e)
            }
        }
    }

    async fn plan_inner(
        &self,
        ctx: SessionContext,
        sql: &str,
        params: &[datafusion::common::ScalarValue],
    ) -> Result<(datafusion::execution::SessionState, LogicalPlan), QueryError> {
        let mut state = ctx.state();
        if self.engine == Engine::Embedded {
            // Cores are shared between the queries running now: alone, a query splits its
            // work over every core; with many at once, each runs on its share. Splitting a
            // small query over both cores while 19 others wait costs repartitioning and task
            // switches for nothing (bench/results/flight_load.txt).
            let cores = state.config().target_partitions();
            let active = ACTIVE.load(std::sync::atomic::Ordering::Relaxed);
            let share = (cores / (active + 1)).max(1);
            state.config_mut().options_mut().execution.target_partitions = share;
            let rt = state.runtime_env().clone();
            // The query's own memory pool and no spilling, but the service's caches: Parquet
            // footers and file statistics are read once per file, not once per query.
            let caches = datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
                .with_file_metadata_cache(Some(rt.cache_manager.get_file_metadata_cache()))
                .with_file_statistics_cache(rt.cache_manager.get_file_statistic_cache());
            let mut b = RuntimeEnvBuilder::new()
                .with_cache_manager(caches)
                .with_object_store_registry(rt.object_store_registry.clone())
                .with_disk_manager_builder(
                    DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
                );
            if let Some(limit) = self.limits.memory {
                b = b.with_memory_pool(Arc::new(TrackConsumersPool::new(
                    GreedyMemoryPool::new(limit),
                    std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN),
                )));
            }
            let rt = b.build_arc().map_err(|e| classify(&e))?;
            state = SessionStateBuilder::new_from_existing(state)
                .with_runtime_env(rt)
                .build();
        }
        let plan = state
            .create_logical_plan(sql)
            .await
            .map_err(|e| classify(&e))?;
        let plan = if params.is_empty() {
            plan
        } else {
            plan.with_param_values(params.to_vec())
                .map_err(|e| classify(&e))?
        };
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| QueryError {
                outcome: Outcome::Refused,
                message: format!("this service is read-only: {e}"),
            })?;
        Ok((state, plan))
    }

    /// Runs a planned query. The stream ends with an error if a limit is reached; the audit
    /// record is written when the stream ends or is dropped.
    pub async fn execute(&self, q: Planned) -> Result<Batches, QueryError> {
        let span = tracing::info_span!(
            "query",
            query_id = %q.record.query_id,
            user = %q.record.user,
            role = %q.record.role,
            rows = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        ACTIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut guard = Guard {
            auditor: self.auditor.clone(),
            record: Some(q.record),
            started: q.started,
            planned: None,
            rows: 0,
            span,
        };
        let _ = q.started_at;
        let timeout = self.limits.timeout;
        let df = DataFrame::new(q.state, q.plan);
        let planned = async {
            let task = Arc::new(df.task_ctx());
            let physical = df.create_physical_plan().await?;
            guard.planned = Some(guard.started.elapsed());
            datafusion::physical_plan::execute_stream(physical, task)
        };
        let stream = match tokio::time::timeout_at(q.deadline, planned).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let e = classify(&e);
                guard.finish(e.outcome, Some(e.message.clone()));
                return Err(e);
            }
            Err(_) => {
                let e = timeout_error(timeout);
                guard.finish(e.outcome, Some(e.message.clone()));
                return Err(e);
            }
        };
        let deadline = q.deadline;
        let s = futures::stream::unfold(
            (stream, guard, false),
            move |(mut stream, mut guard, done)| async move {
                if done {
                    return None;
                }
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(Ok(b))) => {
                        guard.rows += b.num_rows() as u64;
                        Some((Ok(b), (stream, guard, false)))
                    }
                    Ok(Some(Err(e))) => {
                        let e = classify(&e);
                        guard.finish(e.outcome, Some(e.message.clone()));
                        Some((Err(e), (stream, guard, true)))
                    }
                    Ok(None) => {
                        guard.finish(Outcome::Ok, None);
                        None
                    }
                    Err(_) => {
                        let e = timeout_error(timeout);
                        guard.finish(e.outcome, Some(e.message.clone()));
                        Some((Err(e), (stream, guard, true)))
                    }
                }
            },
        );
        Ok(Box::pin(s))
    }

    /// Plans, runs and collects.
    pub async fn collect(
        &self,
        who: &Principal,
        sql: &str,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
        let planned = self.plan(who, sql).await?;
        let schema = planned.schema.clone();
        let mut s = self.execute(planned).await?;
        let mut out = Vec::new();
        while let Some(b) = s.next().await {
            out.push(b?);
        }
        Ok((schema, out))
    }
}

fn timeout_error(t: Duration) -> QueryError {
    QueryError {
        outcome: Outcome::Timeout,
        message: format!("query stopped: it reached the per-query time limit of {t:?}"),
    }
}

/// Writes the audit record once: when the query ends, or when its stream is dropped early.
struct Guard {
    auditor: Option<Auditor>,
    record: Option<Record>,
    started: Instant,
    /// Time from the start to the physical plan (SQL parsed, optimised, files listed).
    planned: Option<Duration>,
    rows: u64,
    /// The query's span: open while the query runs, closed when the guard drops.
    span: tracing::Span,
}

impl Guard {
    fn finish(&mut self, outcome: Outcome, message: Option<String>) {
        if let Some(mut r) = self.record.take() {
            r.rows = self.rows;
            r.duration = self.started.elapsed();
            r.outcome = outcome;
            r.message = message;
            self.span.record("rows", r.rows);
            self.span.record("outcome", outcome.as_str());
            tracing::info!(
                parent: &self.span,
                histogram.drdsurv_query_duration_seconds = r.duration.as_secs_f64(),
                histogram.drdsurv_query_plan_seconds = self.planned.unwrap_or_default().as_secs_f64(),
                monotonic_counter.drdsurv_queries = 1u64,
                monotonic_counter.drdsurv_query_rows = r.rows,
                outcome = outcome.as_str(),
                role_kind = r.role.split(':').next().unwrap_or_default(),
                "query finished"
            );
            if let Some(a) = &self.auditor {
                a.log(r);
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.finish(
            Outcome::Error,
            Some("the client stopped reading before the last row".into()),
        );
    }
}
