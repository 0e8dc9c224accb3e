//! drdsurv's query engine: DataFusion [`SessionContext`]s with every drd-stats method
//! registered as a SQL function.
//!
//! [`new_context`] is the one way the project makes an embedded context; [`register_functions`]
//! adds the functions to a context made elsewhere, and [`ballista`] makes contexts, schedulers
//! and executors for a Ballista cluster that know the same functions. The functions live in [`udf`]: each is a
//! [`StatFunction`](udf::StatFunction) naming its arguments, so a bad argument is a SQL error
//! that names the function and the argument (`wilson_lower: argument 'x' …`), never a panic
//! or a silent NaN. The names and argument order are a contract with the analysts' SQL
//! (issue 4); shares are on a 0–1 scale.
//!
//! ```no_run
//! # async fn f() -> datafusion::error::Result<()> {
//! let ctx = drd_engine::new_context();
//! ctx.sql("SELECT wilson_lower(81, 263, 0.95)").await?.show().await?;
//! # Ok(()) }
//! ```

use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

pub mod alerts;
pub mod ballista;
pub mod disclosure;
pub mod models;
pub mod output;
pub mod udaf;
pub mod udf;
pub mod udwf;

/// A session context with every drdsurv function registered.
///
/// Parquet strings are read as plain `Utf8`, not string views: a hash join's output rows
/// then own their strings, where views keep every build-side buffer alive in each output
/// batch (at national scale, mart_episodes' joins produced batches "holding" 47 GB of shared
/// buffers, and every operator after them slowed down).
pub fn new_context() -> SessionContext {
    new_context_with_limit(None)
}

/// [`new_context`] whose queries share a memory pool of `limit` bytes (`DRDSURV_MEMORY_LIMIT`
/// overrides it; neither means no limit). Beyond their fair share, sorts and aggregations
/// spill to the temporary directory; an operator that cannot spill (a hash join's build side)
/// fails the query with "resources exhausted" instead of growing the process.
pub fn new_context_with_limit(limit: Option<usize>) -> SessionContext {
    let mut config = datafusion::prelude::SessionConfig::new();
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    let env = std::env::var("DRDSURV_MEMORY_LIMIT").ok().and_then(|v| {
        let size = parse_size(&v);
        if size.is_none() {
            tracing::warn!(value = %v, "DRDSURV_MEMORY_LIMIT is not a size such as 1200M or 2G; ignored");
        }
        size
    });
    let ctx = match env.or(limit) {
        Some(limit) => {
            let pool = datafusion::execution::memory_pool::FairSpillPool::new(limit);
            let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                .with_memory_pool(std::sync::Arc::new(pool))
                .build_arc()
                .unwrap_or_else(|e| unreachable!("a runtime with a memory pool: {e}"));
            SessionContext::new_with_config_rt(config, runtime)
        }
        None => SessionContext::new_with_config(config),
    };
    register_functions(&ctx);
    ctx
}

/// Where a session's queries execute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Engine {
    /// DataFusion in this process (the default).
    #[default]
    Embedded,
    /// An in-process Ballista scheduler and executor: the distributed plans, on one machine.
    BallistaStandalone,
    /// A Ballista cluster's scheduler, as `host:port`.
    Ballista(String),
}

impl Engine {
    /// Parses `embedded`, `ballista://HOST:PORT` or `ballista:standalone`.
    pub fn parse(text: &str) -> Result<Engine, String> {
        let t = text.trim();
        if t == "embedded" {
            return Ok(Engine::Embedded);
        }
        if t == "ballista:standalone" {
            return Ok(Engine::BallistaStandalone);
        }
        if let Some(addr) = t.strip_prefix("ballista://") {
            let addr = addr.trim_end_matches('/');
            let (host, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
            if !host.is_empty() && port.parse::<u16>().is_ok() {
                return Ok(Engine::Ballista(addr.to_string()));
            }
        }
        Err(format!(
            "unknown engine '{text}': expected embedded, ballista://HOST:PORT or ballista:standalone"
        ))
    }

    /// A context for this engine with every drdsurv function registered. `memory_limit`
    /// bounds an embedded context's queries ([`new_context_with_limit`]); Ballista executors
    /// set their own. `stores` are object stores (URL and store) the engine must reach: an
    /// in-process Ballista executor shares this context's runtime, so they are registered
    /// there before it starts (a cluster's executors are given theirs when they start, see
    /// [`ballista::ExecutorOptions::stores`]).
    pub async fn context(
        &self,
        memory_limit: Option<usize>,
        stores: &ballista::Stores,
    ) -> datafusion::error::Result<SessionContext> {
        match self {
            Engine::Embedded => Ok(new_context_with_limit(memory_limit)),
            Engine::BallistaStandalone => ballista::standalone_context_with(stores).await,
            Engine::Ballista(addr) => ballista::remote_context(&format!("ballista://{addr}")).await,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Embedded => f.write_str("embedded"),
            Engine::BallistaStandalone => f.write_str("ballista:standalone"),
            Engine::Ballista(addr) => write!(f, "ballista://{addr}"),
        }
    }
}

/// Registers `batches` (small: parameters, shipped reference tables) as the table `name`. An
/// embedded context holds them in memory; a context whose plans travel to Ballista
/// ([`drd_store::plans_travel`]) gets a view over the rows as literals (or an empty table), since
/// in-memory tables cannot be serialised.
pub fn register_rows(
    ctx: &SessionContext,
    name: &str,
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: Vec<datafusion::arrow::array::RecordBatch>,
) -> datafusion::error::Result<()> {
    use datafusion::common::{DFSchema, ScalarValue};
    use datafusion::logical_expr::{LogicalPlanBuilder, lit};
    use std::sync::Arc;
    let provider: Arc<dyn datafusion::catalog::TableProvider> = if !drd_store::plans_travel(ctx) {
        Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![batches],
        )?)
    } else if batches.iter().all(|b| b.num_rows() == 0) {
        Arc::new(datafusion::datasource::empty::EmptyTable::new(schema))
    } else {
        let mut rows = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                rows.push(
                    b.columns()
                        .iter()
                        .map(|c| ScalarValue::try_from_array(c, r).map(lit))
                        .collect::<datafusion::error::Result<Vec<_>>>()?,
                );
            }
        }
        let df_schema = Arc::new(DFSchema::try_from(schema.as_ref().clone())?);
        let plan = LogicalPlanBuilder::values_with_schema(rows, &df_schema)?.build()?;
        Arc::new(datafusion::catalog::view::ViewTable::new(plan, None))
    };
    ctx.deregister_table(name)?;
    ctx.register_table(name, provider)?;
    Ok(())
}

/// A byte size written as a whole number with an optional unit: `1200M`, `2G`, `512MiB`,
/// `1048576`. `None` when it does not parse.
pub fn parse_size(text: &str) -> Option<usize> {
    let v = text.trim();
    let (num, unit) = match v.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let scale: usize = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    num.trim().parse::<usize>().ok()?.checked_mul(scale)
}

/// Every drdsurv function: scalar, aggregate and window.
pub fn functions() -> (Vec<ScalarUDF>, Vec<AggregateUDF>, Vec<WindowUDF>) {
    let scalar = udf::scalar_functions()
        .into_iter()
        .chain(disclosure::disclosure_functions())
        .chain([drd_store::key_hash_udf()])
        .collect();
    let aggregate = udaf::aggregate_functions()
        .into_iter()
        .chain(udaf::mean_functions())
        .chain([disclosure::ckm_count()])
        .collect();
    let window = udwf::window_functions()
        .into_iter()
        .chain(alerts::alert_functions())
        .collect();
    (scalar, aggregate, window)
}

/// Registers every drdsurv function in `ctx`.
pub fn register_functions(ctx: &SessionContext) {
    let (scalar, aggregate, window) = functions();
    for f in scalar {
        ctx.register_udf(f);
    }
    for f in aggregate {
        ctx.register_udaf(f);
    }
    for f in window {
        ctx.register_udwf(f);
    }
}
