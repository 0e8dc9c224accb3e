//! End-to-end tests across crates. They run the built `drdsurv` binary
//! (`CARGO_BIN_EXE_drdsurv`), never a second build, and share one generated fixture.
#![allow(clippy::unwrap_used)]

mod ballista;
mod cli;
mod flight;
mod generate;
mod ingest;
mod maintain;
mod otel;
mod pipeline;
mod places;
mod report;
mod runbook;
mod sql;
mod storage;
mod worker;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs drdsurv with arguments.
pub fn drdsurv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drdsurv"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// A multi-threaded Tokio runtime for tests that call the library crates directly.
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap()
}

/// Text of an output stream.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `generate --out A --scale small --seed 7`, made once per test run.
pub fn fixture_a() -> &'static Path {
    static A: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &A.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("A");
        let o = drdsurv(&[
            "generate",
            "--out",
            out.to_str().unwrap(),
            "--scale",
            "small",
            "--seed",
            "7",
        ]);
        assert!(o.status.success(), "generate failed: {}", text(&o.stderr));
        (dir, out)
    })
    .1
}

/// The manifest of [`fixture_a`].
pub fn manifest() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture_a().join("manifest.json")).unwrap()).unwrap()
}

/// The partnership codes a submitter of [`fixture_a`] may send.
pub fn areas_of(submitter: &str) -> Vec<String> {
    manifest()["submitters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == submitter)
        .unwrap()["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// `demo` (seed 7, 7 years, small: generated, ingested as every submitter, reference data
/// imported), made once per test run. Tests that write to a store take their own copy
/// ([`demo_store_copy`]).
pub fn demo_store() -> &'static Path {
    static D: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &D.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let o = drdsurv(&[
            "--store",
            store.to_str().unwrap(),
            "demo",
            "--until",
            "ingest",
        ]);
        assert!(o.status.success(), "demo failed: {}", text(&o.stderr));
        (dir, store)
    })
    .1
}

/// A private copy of the demo store in `dir` (its path is returned).
pub fn demo_store_copy(dir: &Path) -> PathBuf {
    let to = dir.join("store");
    let o = Command::new("cp")
        .arg("-a")
        .arg(demo_store())
        .arg(&to)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    to
}
