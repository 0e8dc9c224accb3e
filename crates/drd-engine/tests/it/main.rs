//! drd-engine integration tests (one binary): the `.slt` files in tests/slt.

mod slt;
