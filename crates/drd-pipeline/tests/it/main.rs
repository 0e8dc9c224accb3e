//! drd-pipeline integration tests (one binary): schedules across daylight-saving changes,
//! catch-up after downtime, and the shipped pipeline files.
#![allow(clippy::unwrap_used)]

mod run;
mod schedule;
mod spec;
