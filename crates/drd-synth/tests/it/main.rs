//! drd-synth integration tests: realism of the generated deaths, determinism, and the
//! shipped partnerships file.
#![allow(clippy::unwrap_used)]

mod realism;
mod world;
