//! Running one user's SQL: the role's session, read-only checks, per-query memory and time
//! limits, and the audit record. The Flight SQL service and `drdsurv sql` both come here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::prelude::{SQLOptions, SessionContext};
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
    /// The cache entry whose optimised plan this query may reuse or fill.
    reuse: Option<Arc<Cached>>,
}

/// One catalog load: the tables, each role's session over them, and the plans made on them.
/// A refresh replaces all three at once, so no plan outlives the tables it scans.
struct Loaded {
    at: Instant,
    catalogs: Arc<BTreeMap<String, Vec<Exposed>>>,
    roles: Mutex<HashMap<Role, SessionContext>>,
    plans: Mutex<Plans>,
}

/// Plans kept per catalog load.
const PLANS_KEPT: usize = 256;

/// Logical plans by (role, SQL text), the oldest dropped first past [`PLANS_KEPT`].
///
/// Why: dashboards send the same SQL again and again, and a Flight SQL client plans each query
/// twice (GetFlightInfo, then DoGet). Turning the text into a plan and optimising it was over
/// half of the server's CPU per dashboard query (bench/results/national_findings.txt). The
/// role is part of the key because each role's session holds different (filtered) tables.
#[derive(Default)]
struct Plans {
    by_key: HashMap<(Role, String), Arc<Cached>>,
    order: VecDeque<(Role, String)>,
}

impl Plans {
    fn get(&self, role: &Role, sql: &str) -> Option<Arc<Cached>> {
        // A borrowed key would need a second map type; the clone is a few bytes of SQL.
        self.by_key.get(&(role.clone(), sql.to_string())).cloned()
    }

    fn insert(&mut self, role: &Role, sql: &str, c: Arc<Cached>) {
        let key = (role.clone(), sql.to_string());
        if self.by_key.insert(key.clone(), c).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > PLANS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
    }
}

/// A cached plan.
#[derive(Debug)]
struct Cached {
    /// The SQL's logical plan as written (parameters unbound), checked read-only.
    logical: LogicalPlan,
    /// Whether its optimised form may serve later runs: see [`reusable`].
    reusable: bool,
    /// The optimised plan, set by the first run that had no parameters.
    optimized: OnceLock<LogicalPlan>,
}

/// Whether an optimised plan of `plan` gives the same answer whenever it runs. Not when it
/// calls a function that is not immutable (the optimiser folds `now()` and `current_date`
/// into the time of the run that optimised it), has parameters to bind, or is an EXPLAIN
/// (whose text is made while optimising).
fn reusable(plan: &LogicalPlan) -> bool {
    if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
        return false;
    }
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        for e in node.expressions() {
            let _ = e.apply(|e| {
                let fixed = match e {
                    Expr::ScalarFunction(f) => {
                        f.func.signature().volatility == Volatility::Immutable
                    }
                    Expr::Placeholder(_) => false,
                    _ => true,
                };
                ok &= fixed;
                Ok(if ok {
                    TreeNodeRecursion::Continue
                } else {
                    TreeNodeRecursion::Stop
                })
            });
        }
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

/// Everything a query needs: the stores, the engine, the limits and the audit.
pub struct QueryService {
    stores: BTreeMap<String, Store>,
    engine: Engine,
    base: SessionContext,
    limits: Limits,
    refresh: Duration,
    loaded: tokio::sync::RwLock<Option<Arc<Loaded>>>,
    /// Held by the one caller reading the stores for a new load.
    reloading: tokio::sync::Mutex<()>,
    auditor: Option<Auditor>,
    wanted: access::Wanted,
    /// Bytes of small tables' rows held in memory per catalog load (0: none).
    table_memory: usize,
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
            reloading: tokio::sync::Mutex::new(()),
            auditor,
            wanted: access::Wanted::All,
            table_memory: 0,
        })
    }

    /// Loads only the tables `wanted` names (a one-off query: `drdsurv sql`), not every table
    /// of every store.
    pub fn with_wanted(mut self, wanted: access::Wanted) -> QueryService {
        self.wanted = wanted;
        self
    }

    /// Holds the rows of small `marts` and `reference` tables in memory, up to `bytes` in all,
    /// from one catalog load to the next ([`access::hold_small_tables`]): a long-running
    /// service's choice, not a one-off query's.
    pub fn with_table_memory(mut self, bytes: usize) -> QueryService {
        self.table_memory = bytes;
        self
    }

    /// The audit writer, if queries are audited.
    pub fn auditor(&self) -> Option<&Auditor> {
        self.auditor.as_ref()
    }

    /// The current catalog load. When it is older than the refresh interval, one caller
    /// reads the stores again while the others carry on with the load they have; only the
    /// first load makes everyone wait.
    async fn loaded(&self) -> Result<Arc<Loaded>, QueryError> {
        let current = self.loaded.read().await.clone();
        if let Some(l) = &current
            && l.at.elapsed() < self.refresh
        {
            return Ok(l.clone());
        }
        let _reloading = match (&current, self.reloading.try_lock()) {
            (Some(stale), Err(_)) => return Ok(stale.clone()),
            (_, Ok(g)) => g,
            (None, Err(_)) => self.reloading.lock().await,
        };
        // Someone else may have loaded while this caller waited for the lock.
        if let Some(l) = self.loaded.read().await.as_ref()
            && l.at.elapsed() < self.refresh
        {
            return Ok(l.clone());
        }
        let l = Arc::new(self.load().await?);
        *self.loaded.write().await = Some(l.clone());
        Ok(l)
    }

    /// Reads every store's tables (and holds the small ones) for a new catalog load.
    async fn load(&self) -> Result<Loaded, QueryError> {
        let mut catalogs = BTreeMap::new();
        let mut budget = self.table_memory;
        for (name, store) in &self.stores {
            let scratch = access::scratch_context(&self.base).map_err(|e| QueryError {
                outcome: Outcome::Error,
                message: e.to_string(),
            })?;
            let mut tables = access::load(store, &scratch, &self.wanted)
                .await
                .map_err(|e| QueryError {
                    outcome: Outcome::Error,
                    message: format!("cannot read the store of catalog {name}: {e}"),
                })?;
            if budget > 0 {
                let held = access::hold_small_tables(&scratch, &mut tables, &mut budget)
                    .await
                    .map_err(|e| QueryError {
                        outcome: Outcome::Error,
                        message: format!("cannot read the small tables of catalog {name}: {e}"),
                    })?;
                tracing::debug!(catalog = %name, held, bytes_left = budget, "tables held in memory");
            }
            catalogs.insert(name.clone(), tables);
        }
        Ok(Loaded {
            at: Instant::now(),
            catalogs: Arc::new(catalogs),
            roles: Mutex::new(HashMap::new()),
            plans: Mutex::new(Plans::default()),
        })
    }

    /// The session of a role: only the tables it may read, restricted ones filtered.
    pub async fn session(&self, role: &Role) -> Result<SessionContext, QueryError> {
        let l = self.loaded().await?;
        self.role_session(&l, role)
    }

    fn role_session(&self, l: &Loaded, role: &Role) -> Result<SessionContext, QueryError> {
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
        let loaded = self.loaded().await;
        let session = loaded
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|l| Ok((l.clone(), self.role_session(l, &who.role)?)));
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
            Ok((l, ctx)) => {
                let planning = self.plan_inner(&l, &who.role, ctx, sql, params);
                tokio::time::timeout_at(deadline, planning).await
            }
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
            Ok((state, plan, reuse)) => Ok(Planned {
                schema: Arc::new(plan.schema().as_arrow().clone()),
                plan,
                state,
                started,
                started_at,
                deadline,
                record,
                reuse,
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
        loaded: &Loaded,
        role: &Role,
        ctx: SessionContext,
        sql: &str,
        params: &[datafusion::common::ScalarValue],
    ) -> Result<
        (
            datafusion::execution::SessionState,
            LogicalPlan,
            Option<Arc<Cached>>,
        ),
        QueryError,
    > {
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
        let cached = loaded
            .plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(role, sql);
        let cached = match cached {
            Some(c) => c,
            None => {
                let plan = state
                    .create_logical_plan(sql)
                    .await
                    .map_err(|e| classify(&e))?;
                SQLOptions::new()
                    .with_allow_ddl(false)
                    .with_allow_dml(false)
                    .with_allow_statements(false)
                    .verify_plan(&plan)
                    .map_err(|e| QueryError {
                        outcome: Outcome::Refused,
                        message: format!("this service is read-only: {e}"),
                    })?;
                let c = Arc::new(Cached {
                    reusable: reusable(&plan),
                    logical: plan,
                    optimized: OnceLock::new(),
                });
                loaded
                    .plans
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(role, sql, c.clone());
                c
            }
        };
        if params.is_empty() {
            let reuse = cached.reusable.then(|| cached.clone());
            return Ok((state, cached.logical.clone(), reuse));
        }
        let plan = cached
            .logical
            .clone()
            .with_param_values(params.to_vec())
            .map_err(|e| classify(&e))?;
        Ok((state, plan, None))
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
        let (state, plan, reuse) = (q.state, q.plan, q.reuse);
        let planned = async {
            let task = Arc::new(TaskContext::from(&state));
            let optimized = match reuse.as_ref().and_then(|c| c.optimized.get()) {
                Some(p) => p.clone(),
                None => {
                    let p = state.optimize(&plan)?;
                    if let Some(c) = &reuse {
                        let _ = c.optimized.set(p.clone());
                    }
                    p
                }
            };
            let physical = state
                .query_planner()
                .create_physical_plan(&optimized, &state)
                .await?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use datafusion::common::ScalarValue;

    async fn service(dir: &tempfile::TempDir) -> QueryService {
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        QueryService::new(
            store,
            BTreeMap::new(),
            Engine::Embedded,
            Limits::default(),
            Duration::from_secs(3600),
            None,
        )
        .await
        .unwrap()
    }

    fn national() -> Principal {
        Principal {
            user: "tester".into(),
            role: Role::National,
        }
    }

    /// The first column of the first row, as text.
    async fn first(q: &QueryService, sql: &str, params: &[ScalarValue]) -> String {
        let planned = q.plan_with_params(&national(), sql, params).await.unwrap();
        let mut s = q.execute(planned).await.unwrap();
        let b = s.next().await.unwrap().unwrap();
        let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        c.as_string::<i32>().value(0).to_string()
    }

    async fn cached(q: &QueryService, sql: &str) -> Option<(bool, bool)> {
        let l = q.loaded().await.unwrap();
        let plans = l.plans.lock().unwrap();
        plans
            .get(&Role::National, sql)
            .map(|c| (c.reusable, c.optimized.get().is_some()))
    }

    /// A repeated query reuses its optimised plan; `now()` is planned once but read at each
    /// run; parameters are bound per run; EXPLAIN is never served from an optimised plan.
    #[tokio::test]
    async fn cached_plans_keep_time_functions_current_and_bind_parameters_per_run() {
        let dir = tempfile::tempdir().unwrap();
        let q = service(&dir).await;

        let sql = "SELECT 40 + v FROM (VALUES (2)) t(v)";
        assert_eq!(cached(&q, sql).await, None);
        assert_eq!(first(&q, sql, &[]).await, "42");
        assert_eq!(cached(&q, sql).await, Some((true, true)));
        assert_eq!(first(&q, sql, &[]).await, "42");

        let now = "SELECT CAST(now() AS VARCHAR)";
        let a = first(&q, now, &[]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let b = first(&q, now, &[]).await;
        assert_ne!(a, b, "now() was frozen in a cached plan");
        assert_eq!(cached(&q, now).await, Some((false, false)));
        // A time function inside a subquery counts too.
        let sub = "SELECT count(*) FROM (VALUES (1)) t(v) \
                   WHERE v IN (SELECT 1 WHERE current_date > DATE '2000-01-01')";
        assert_eq!(first(&q, sub, &[]).await, "1");
        assert_eq!(cached(&q, sub).await, Some((false, false)));

        let p = "SELECT $1 + 1";
        assert_eq!(first(&q, p, &[ScalarValue::Int64(Some(1))]).await, "2");
        assert_eq!(first(&q, p, &[ScalarValue::Int64(Some(5))]).await, "6");
        assert_eq!(cached(&q, p).await, Some((false, false)));

        let e = "EXPLAIN SELECT 40 + v FROM (VALUES (2)) t(v)";
        assert!(!first(&q, e, &[]).await.is_empty());
        assert_eq!(cached(&q, e).await, Some((false, false)));

        // A refused statement is refused every time, and is not kept.
        for _ in 0..2 {
            let err = q
                .plan(&national(), "CREATE VIEW v AS SELECT 1")
                .await
                .unwrap_err();
            assert_eq!(err.outcome, Outcome::Refused, "{}", err.message);
        }
        assert_eq!(cached(&q, "CREATE VIEW v AS SELECT 1").await, None);
    }

    /// A new version of a table is read at the first query after the refresh interval, even
    /// though the table was held in memory and the query's plan was kept.
    #[tokio::test]
    async fn a_refresh_replaces_held_tables_and_kept_plans() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let esp = drd_model::reference::shipped::ESP2013_CSV;
        drd_pipeline::reference::import(&store, "esp2013", "esp.csv", esp.as_bytes(), "2013")
            .await
            .unwrap();
        let refresh = Duration::from_millis(300);
        let q = QueryService::new(
            store.clone(),
            BTreeMap::new(),
            Engine::Embedded,
            Limits::default(),
            refresh,
            None,
        )
        .await
        .unwrap()
        .with_table_memory(1 << 28);
        let sql = "SELECT CAST(sum(weight) AS BIGINT) FROM reference.esp2013";
        assert_eq!(first(&q, sql, &[]).await, "100000");
        {
            let l = q.loaded().await.unwrap();
            let t = l.catalogs[access::HOME]
                .iter()
                .find(|t| t.schema == "reference" && t.name == "esp2013")
                .unwrap();
            assert!(
                t.provider
                    .downcast_ref::<datafusion::datasource::MemTable>()
                    .is_some(),
                "the small reference table is held"
            );
        }
        assert!(first(&q, sql, &[]).await == "100000");
        // A new version: the 0-4 band's weight 5000 -> 6000.
        let changed = esp.replacen("0-4,5000", "0-4,6000", 1);
        assert_ne!(changed, esp);
        drd_pipeline::reference::import(&store, "esp2013", "esp.csv", changed.as_bytes(), "2013")
            .await
            .unwrap();
        tokio::time::sleep(refresh + Duration::from_millis(50)).await;
        assert_eq!(first(&q, sql, &[]).await, "101000");
    }

    #[test]
    fn plans_past_the_bound_drop_the_oldest() {
        let mut p = Plans::default();
        let plan = LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
            produce_one_row: true,
            schema: Arc::new(datafusion::common::DFSchema::empty()),
        });
        for i in 0..PLANS_KEPT + 10 {
            let c = Arc::new(Cached {
                logical: plan.clone(),
                reusable: true,
                optimized: OnceLock::new(),
            });
            p.insert(&Role::Public, &format!("SELECT {i}"), c);
        }
        assert_eq!(p.by_key.len(), PLANS_KEPT);
        assert!(p.get(&Role::Public, "SELECT 9").is_none());
        assert!(p.get(&Role::Public, "SELECT 10").is_some());
        assert!(p.get(&Role::National, "SELECT 10").is_none());
    }
}
