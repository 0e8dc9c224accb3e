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
    let mut config = datafusion::prelude::SessionConfig::new();
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    let ctx = SessionContext::new_with_config(config);
    register_functions(&ctx);
    ctx
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
