//! drd-ingest integration tests: one case per formats.md rule, file formats and encodings,
//! idempotency, and the current view. Each test ingests real files into a real local Delta
//! store and reads the tables back.
#![allow(clippy::unwrap_used)]

mod formats;
mod rules;
mod spans;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use arrow::array::{Array, RecordBatch};
use chrono::NaiveDate;
use drd_ingest::{Ingestor, LinkageKey, Receipt};
use drd_model::Source;
use drd_store::{Store, TableKind};

pub const SUBMITTER: &str = "test-submitter";
pub const AUTHORISED: [&str; 2] = ["E06000001", "E06000002"];

/// The span test swaps in its own tracing dispatcher; tracing caches each callsite's interest
/// when it is first hit, so a span first reached on another test's thread while that
/// dispatcher is being installed can be cached as "never". Every other test holds this lock
/// shared and the span test holds it alone.
pub static TELEMETRY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub fn key() -> LinkageKey {
    LinkageKey::from_bytes(b"integration-test-linkage-key-0123456789").unwrap()
}

pub fn received() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

/// Ingests files into a store and returns the receipts.
pub async fn ingest(store: &Store, source: Source, files: &[&Path]) -> Vec<Receipt> {
    let key = key();
    let partnerships = drd_ingest::defaults::partnerships();
    let substances = drd_ingest::defaults::substances();
    let ing = Ingestor {
        store,
        key: &key,
        partnerships: &partnerships,
        substances: &substances,
        xlsx_limit: 10 << 20,
        batch_rows: 2,
        received: received(),
        progress: None,
    };
    let authorised: HashSet<String> = AUTHORISED.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    for f in files {
        out.push(ing.ingest(source, SUBMITTER, &authorised, f).await.unwrap());
    }
    out
}

/// All rows of a table as maps of column → display string.
pub async fn rows(store: &Store, kind: TableKind, source: Source) -> Vec<BTreeMap<String, String>> {
    let batches: Vec<RecordBatch> = store.read_table(kind, source, SUBMITTER).await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            let mut m = BTreeMap::new();
            for (i, f) in b.schema().fields().iter().enumerate() {
                let col = b.column(i);
                let v = if col.is_null(r) {
                    String::new()
                } else {
                    arrow::util::display::ArrayFormatter::try_new(col.as_ref(), &Default::default())
                        .unwrap()
                        .value(r)
                        .to_string()
                };
                m.insert(f.name().clone(), v);
            }
            out.push(m);
        }
    }
    out
}
