//! drdsurv's SQL on a Ballista cluster: the same functions on the client, the scheduler and
//! every executor.
//!
//! Stock Ballista processes know only DataFusion's built-in functions, and Ballista ships
//! plans that name functions without their code. So every party builds its state here:
//! - [`session_state`]: a DataFusion state with every drdsurv function registered, used by the
//!   scheduler's session builder and, through [`function_registry`], by executors;
//! - [`standalone_context`]: an in-process scheduler and executor (tests, one machine);
//! - [`remote_context`]: a client of a cluster (`--engine ballista://host:port`);
//! - [`run_scheduler`] and [`run_executor`]: the `drdsurv ballista-scheduler` and
//!   `drdsurv ballista-executor` processes.
//!
//! Ballista serialises table providers by kind: Parquet listing tables, views and empty
//! tables travel; in-memory tables and Delta providers do not. The client state carries
//! drd-store's [`PortablePlans`] mark, so drd-store registers Delta versions as listing tables
//! over their files ([`drd_store::delta_provider`]), and [`register_rows`](crate::register_rows)
//! turns small in-memory tables into views over literal rows.
//!
//! Object stores: the scheduler lists a table's files when it plans a query and the executors
//! read them, so both must reach the store. A local store needs nothing; for `s3://`, `gs://`
//! or `az://` each process registers the store it is started with ([`run_scheduler`] and
//! [`ExecutorOptions::stores`]), and the standalone executor shares the client's runtime.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};
use drd_store::PortablePlans;
use object_store::ObjectStore;
use url::Url;

/// An object store and the URL (scheme and bucket) its tables' files are named under.
pub type StoreEntry = (Url, Arc<dyn ObjectStore>);

/// Object stores a process must reach.
pub type Stores = [StoreEntry];

/// A session state with DataFusion's defaults and every drdsurv function, whose tables are
/// registered in portable form ([`PortablePlans`]) and whose Parquet strings read as plain
/// `Utf8` (as in [`new_context`](crate::new_context)).
pub fn session_state(config: SessionConfig) -> Result<SessionState> {
    // Ballista 55.0.0 is used in the one configuration in which it gave the embedded engine's
    // answers on every model (tests/e2e/ballista.rs; README "Ballista"):
    // - the static planner: the adaptive one (on by default) never finished the current view
    //   of a source, re-planning and adding a stage about every 100 ms (980 stages for stg_nsp
    //   before we stopped it; the static planner finishes it in about a second);
    // - one partition per stage: with 4 or 16, the static planner's per-task partition
    //   slicing gave wrong rows without an error (mart_episodes: 3 episodes split in two with
    //   4 partitions; 223 episodes with the wrong re-presentation flag with 16).
    //   So a cluster runs a query's stages and a union's branches in parallel, never one
    //   stage's partitions.
    // `DRDSURV_BALLISTA_SET="key=value;..."` overrides any session setting, for diagnosing a
    // cluster; the defaults above are the only ones the tests vouch for.
    let mut config = config
        .with_ballista_adaptive_query_planner(false)
        .with_extension(Arc::new(PortablePlans));
    config.options_mut().execution.target_partitions = 1;
    if let Ok(extra) = std::env::var("DRDSURV_BALLISTA_SET") {
        for kv in extra.split(';').filter(|kv| !kv.trim().is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                DataFusionError::Configuration(format!(
                    "DRDSURV_BALLISTA_SET: '{kv}' is not key=value"
                ))
            })?;
            config.options_mut().set(k.trim(), v.trim())?;
        }
    }
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    // Built first, then extended: `with_scalar_functions` would replace the defaults.
    let mut state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .build();
    let (scalar, aggregate, window) = crate::functions();
    for f in scalar {
        state.register_udf(Arc::new(f))?;
    }
    for f in aggregate {
        state.register_udaf(Arc::new(f))?;
    }
    for f in window {
        state.register_udwf(Arc::new(f))?;
    }
    Ok(state)
}

/// The executors' registry: DataFusion's functions and drdsurv's.
pub fn function_registry() -> Result<BallistaFunctionRegistry> {
    Ok(BallistaFunctionRegistry::from(&session_state(
        SessionConfig::new_with_ballista(),
    )?))
}

/// [`session_state`] with `stores` registered in its runtime.
fn state_with_stores(config: SessionConfig, stores: &Stores) -> Result<SessionState> {
    let state = session_state(config)?;
    for (url, store) in stores {
        state
            .runtime_env()
            .register_object_store(url, Arc::clone(store));
    }
    Ok(state)
}

/// A context on an in-process Ballista scheduler and executor that know every drdsurv function.
pub async fn standalone_context() -> Result<SessionContext> {
    standalone_context_with(&[]).await
}

/// [`standalone_context`] whose scheduler and executor reach `stores` (the executor shares
/// the runtime they are registered in).
pub async fn standalone_context_with(stores: &Stores) -> Result<SessionContext> {
    let state = state_with_stores(SessionConfig::new_with_ballista(), stores)?;
    let ctx = SessionContext::standalone_with_state(state).await?;
    // Upgrading the state for Ballista resets the client's function lists: register again.
    crate::register_functions(&ctx);
    Ok(ctx)
}

/// A context on a Ballista cluster at `url` (`ballista://host:port` or `df://host:port`).
pub async fn remote_context(url: &str) -> Result<SessionContext> {
    let url = url.replacen("ballista://", "df://", 1);
    let ctx =
        SessionContext::remote_with_state(&url, session_state(SessionConfig::new_with_ballista())?)
            .await?;
    crate::register_functions(&ctx);
    Ok(ctx)
}

/// Runs a Ballista scheduler on `bind` (in-memory cluster state) whose sessions know every
/// drdsurv function and reach `stores`. Returns when the server stops.
pub async fn run_scheduler(bind: SocketAddr, external_host: &str, stores: &Stores) -> Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    let err = |e: ballista_core::error::BallistaError| DataFusionError::External(Box::new(e));
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        external_host: external_host.to_string(),
        ..SchedulerConfig::default()
    }
    .with_override_session_builder({
        let stores = stores.to_vec();
        Arc::new(move |config| state_with_stores(config, &stores))
    });
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(err)?;
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(err)
}

/// Where an executor listens and which scheduler it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Address to bind (flight port).
    pub bind: SocketAddr,
    /// Port of the executor's gRPC service.
    pub grpc_port: u16,
    /// Host name the scheduler and other executors reach it at.
    pub external_host: Option<String>,
    /// Scheduler host.
    pub scheduler_host: String,
    /// Scheduler port.
    pub scheduler_port: u16,
    /// Tasks at once (default: the number of cores).
    pub concurrent_tasks: usize,
    /// Where shuffle files go (default: a temporary folder).
    pub work_dir: Option<String>,
    /// Object stores the executor reads tables from (none for a local store).
    pub stores: Vec<StoreEntry>,
}

/// Runs a Ballista executor whose function registry holds every drdsurv function. Returns when
/// the executor stops.
pub async fn run_executor(opts: ExecutorOptions) -> Result<()> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    let config = ExecutorProcessConfig {
        bind_host: opts.bind.ip().to_string(),
        port: opts.bind.port(),
        grpc_port: opts.grpc_port,
        external_host: opts.external_host,
        scheduler_host: opts.scheduler_host,
        scheduler_port: opts.scheduler_port,
        vcores: opts.concurrent_tasks.max(1),
        work_dir: opts.work_dir,
        override_function_registry: Some(Arc::new(function_registry()?)),
        override_runtime_producer: (!opts.stores.is_empty()).then(|| {
            let stores = opts.stores.clone();
            let producer: ballista_core::RuntimeProducer = Arc::new(move |_config| {
                let runtime =
                    datafusion::execution::runtime_env::RuntimeEnvBuilder::new().build()?;
                for (url, store) in &stores {
                    runtime.register_object_store(url, Arc::clone(store));
                }
                Ok(Arc::new(runtime))
            });
            producer
        }),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))
}
