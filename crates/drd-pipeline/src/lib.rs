//! drdsurv pipelines: what runs, when, and for which periods.
//!
//! - [`spec`]: a pipeline file in `pipelines/` (TOML): name, cron schedule and time zone,
//!   period grain, lookback, model selection, retry, deadline and concurrency.
//! - [`schedule`]: the next fire time of a cron schedule in its time zone (croner, DST-aware),
//!   behind a [`schedule::Clock`] so tests inject the time, and the catch-up rule: fires
//!   missed while the scheduler was down are coalesced into one backfill.
//!
//! - [`alerts`]: the drug-alert review queue (`alerts/`), merged from each committed run's
//!   `alert_signals` and reviewed by people (`drdsurv alerts`).
//! - [`reference`]: the reference tables (`reference/<table>/` in the store, or the shipped
//!   copies) registered for a run as `ref_<table>`, and `reference import`.
//! - [`scheduler`]: `drdsurv schedule`: fires each pipeline on its schedule with catch-up,
//!   retries, deadlines (`late`) and a concurrency limit, keeping its last fires in the store.
//! - [`run`]: runs a pipeline's models for a period on `drd-engine`, writes stored models as
//!   new Delta versions under `marts/`, runs their data tests, and commits the run to the
//!   ledger (`runs/`), through which readers resolve every mart.

pub mod alerts;
pub mod reference;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod spec;

pub use schedule::{Clock, FixedClock, Schedule, SystemClock};
pub use spec::{PeriodRule, PipelineSpec, Retry, SpecError};
