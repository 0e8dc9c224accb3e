//! Fault injection for the crash tests: `DRDSURV_CRASH_AT=<point>` makes the process abort
//! (no unwinding, no clean-up, like a kill) when it reaches that point. Unset, it costs one
//! cached look-up per point. The points, in the order a worker meets them:
//!
//! | point | where |
//! |---|---|
//! | `claimed` | the worker holds the claim; nothing read yet |
//! | `rows_written` | two batches of source rows are encoded as Parquet, nothing committed |
//! | `source_committed` | the source table holds the file; quarantine and receipt do not |
//! | `quarantine_committed` | source and quarantine hold it; no receipt |
//! | `receipt_committed` | all three tables hold it; the file is still in the inbox |
//! | `moved` | the file is in `done/`; the claim is not released |

use std::sync::OnceLock;

/// Every crash point, in order.
pub const POINTS: [&str; 6] = [
    "claimed",
    "rows_written",
    "source_committed",
    "quarantine_committed",
    "receipt_committed",
    "moved",
];

fn armed() -> Option<&'static str> {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    AT.get_or_init(|| std::env::var("DRDSURV_CRASH_AT").ok())
        .as_deref()
}

/// Aborts the process if `DRDSURV_CRASH_AT` names this point.
pub fn point(name: &str) {
    if armed() == Some(name) {
        tracing::error!(point = name, "DRDSURV_CRASH_AT: aborting on purpose");
        std::process::abort();
    }
}
