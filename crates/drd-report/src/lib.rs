//! # drd-report: the publication boundary and the partnership reports
//!
//! Numbers leave the store through this crate only (architecture.md "Principles"). Two steps:
//!
//! - [`publish`]: takes the last committed run for a period, applies disclosure control
//!   ([`control`], policy `nhs_digital` by default) and writes an immutable release,
//!   `published/<period>-r<N>/`, as Parquet, CSV and JSON with a [`release::Manifest`]
//!   (run id, input versions, definitions, policy, time made; a revision note when it
//!   restates an earlier release of the same period).
//! - [`render`]: renders the latest release of a period into `reports/<period>/`: one
//!   self-contained HTML page per partnership (inline CSS and SVG, no script, printable on A4)
//!   with `indicators.csv` and `indicators.json` beside it, and the national index with the
//!   all-areas files.
//!
//! Reports are made from the release only, never from marts, so nothing reaches a reader
//! without passing the boundary.
//!
//! ```no_run
//! # async fn f(store: &drd_store::Store) -> Result<(), drd_report::Error> {
//! let policy = drd_stats::disclosure::Policy::NhsDigital;
//! let published = drd_report::publish(store, "2025Q4", &policy).await?;
//! let written = drd_report::render(store, Some("2025Q4"), None).await?;
//! # Ok(()) }
//! ```

pub mod control;
pub mod publish;
pub mod release;
pub mod render;
mod svg;

pub use publish::{Published, publish};
pub use render::{Rendered, render};

/// Errors of publication and rendering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No committed run exists for the period asked for.
    #[error(
        "no committed run for period {period}{pipeline}: run `drdsurv run national_quarterly --period {period}` first"
    )]
    NoRun {
        /// The period.
        period: String,
        /// ` of pipeline X`, or empty.
        pipeline: String,
    },
    /// No release exists to render.
    #[error("no release for {0}: run `drdsurv publish --period <P>` first")]
    NoRelease(String),
    /// The disclosure policy cannot be applied.
    #[error("disclosure policy: {0}")]
    Policy(String),
    /// A release could not be written or read back.
    #[error("release: {0}")]
    Release(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// A query over the run's tables failed.
    #[error("reading the run's tables: {0}")]
    Engine(String),
}

impl From<drd_store::Error> for Error {
    fn from(e: drd_store::Error) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<drd_pipeline::run::RunError> for Error {
    fn from(e: drd_pipeline::run::RunError) -> Self {
        Error::Store(e.to_string())
    }
}
