//! drd-stats integration tests (one binary): values against library routines, and properties.
#![allow(clippy::unwrap_used)]

mod alerts;
mod disclosure;
mod properties;
mod reference;
