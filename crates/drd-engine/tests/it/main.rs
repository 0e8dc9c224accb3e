//! drd-engine integration tests (one binary): the `.slt` files in tests/slt, the model project,
//! and the models on Ballista standalone against embedded DataFusion.
#![allow(clippy::unwrap_used)]

mod ballista;
mod memory;
mod models;
mod slt;
