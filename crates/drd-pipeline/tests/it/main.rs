//! drd-pipeline integration tests (one binary): schedules across daylight-saving changes,
//! catch-up after downtime, the scheduler (coalesced backfill, retries, deadline, concurrency),
//! runs and the ledger, the OpenTelemetry span tree and metrics of a run, and the shipped
//! pipeline files.
#![allow(clippy::unwrap_used)]

mod run;
mod schedule;
mod scheduler;
mod spans;
mod spec;
