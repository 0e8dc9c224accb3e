//! drd-engine integration tests (one binary): the `.slt` files in tests/slt and the model project.
#![allow(clippy::unwrap_used)]

mod models;
mod slt;
