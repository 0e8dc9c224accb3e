//! drd-stats integration tests (one binary): values against library routines.

mod properties;
mod reference;
