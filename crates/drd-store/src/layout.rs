//! Table locations (architecture.md, "Data flow").

use drd_model::{Coded, Source};

/// Per-submitter table kinds written by ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// `sources/<source>/<submitter>/`: accepted, pseudonymised rows (append-only).
    Sources,
    /// `quarantine/<source>/<submitter>/`: rejected rows with reasons.
    Quarantine,
    /// `receipts/<source>/<submitter>/`: one row per file.
    Receipts,
}

impl TableKind {
    /// Folder name.
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Sources => "sources",
            TableKind::Quarantine => "quarantine",
            TableKind::Receipts => "receipts",
        }
    }
}

/// The relative location of a submitter's table. Submitter ids are checked by the caller to be
/// lower-case letters, digits, `-` and `_`, so they are safe as path segments.
pub fn table_path(kind: TableKind, source: Source, submitter: &str) -> String {
    format!("{}/{}/{}", kind.as_str(), source.code(), submitter)
}
