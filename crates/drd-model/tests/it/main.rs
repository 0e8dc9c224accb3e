//! drd-model integration tests: the shipped reference CSVs, loaders on bad input, and the
//! hand-checked case-definition classification.
#![allow(clippy::unwrap_used)]

mod classification;
mod loaders;

use std::path::PathBuf;

pub fn reference_file(name: &str) -> (String, Vec<u8>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../reference")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (name.to_string(), bytes)
}
