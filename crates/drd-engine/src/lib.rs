//! drdsurv's query engine: DataFusion [`SessionContext`]s with every drd-stats method
//! registered as a SQL function.
//!
//! [`new_context`] is the one way the project makes a context; [`register_functions`] adds the
//! functions to a context made elsewhere. The functions live in [`udf`]: each is a
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

use datafusion::prelude::SessionContext;

pub mod alerts;
pub mod disclosure;
pub mod models;
pub mod output;
pub mod udaf;
pub mod udf;
pub mod udwf;

/// A session context with every drdsurv function registered.
pub fn new_context() -> SessionContext {
    let ctx = SessionContext::new();
    register_functions(&ctx);
    ctx
}

/// Registers every drdsurv function in `ctx`.
pub fn register_functions(ctx: &SessionContext) {
    for f in udf::scalar_functions() {
        ctx.register_udf(f);
    }
    for f in udaf::aggregate_functions()
        .into_iter()
        .chain(udaf::mean_functions())
    {
        ctx.register_udaf(f);
    }
    for f in udwf::window_functions()
        .into_iter()
        .chain(alerts::alert_functions())
    {
        ctx.register_udwf(f);
    }
    for f in disclosure::disclosure_functions() {
        ctx.register_udf(f);
    }
    ctx.register_udaf(disclosure::ckm_count());
}
