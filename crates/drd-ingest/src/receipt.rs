//! The receipt of one file: what was read, accepted and quarantined, and why.

use drd_model::ReasonCode;

use crate::prepass::{Encoding, Format};

/// Rows quarantined for one reason in one column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReasonCount {
    /// Reason code.
    pub reason: ReasonCode,
    /// Column.
    pub column: Option<String>,
    /// Rows.
    pub rows: u64,
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Read; every row accepted or quarantined.
    Accepted,
    /// Rejected whole; nothing written.
    Rejected,
    /// The same content was ingested before; nothing changed.
    Duplicate,
}

/// One receipt per file (printed as JSON and stored in `receipts/<source>/<submitter>/`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    /// File name (no folder).
    pub file_name: String,
    /// SHA-256 of the file as received.
    pub file_sha256: String,
    /// Submitter id.
    pub submitter: String,
    /// Source.
    pub source: String,
    /// Outcome.
    pub status: Status,
    /// Whole-file reason, when rejected.
    pub reason: Option<ReasonCode>,
    /// Whole-file error message, when rejected.
    pub error: Option<String>,
    /// Detected format.
    pub format: Option<Format>,
    /// Detected encoding.
    pub encoding: Option<Encoding>,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows written to the source table.
    pub rows_accepted: u64,
    /// Rows written to quarantine.
    pub rows_quarantined: u64,
    /// Quarantine histogram.
    pub reasons: Vec<ReasonCount>,
    /// Warnings: unknown columns, unclassified substances, ragged rows.
    pub warnings: Vec<String>,
    /// Accepted rows with no `person_id`.
    pub unlinkable_rows: u64,
    /// Their share of accepted rows.
    pub unlinkable_share: f64,
    /// Source table version committed.
    pub source_version: Option<u64>,
    /// Quarantine table version committed.
    pub quarantine_version: Option<u64>,
    /// Receipts table version committed.
    pub receipt_version: Option<u64>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

impl Receipt {
    /// rows read = rows accepted + rows quarantined.
    pub fn reconciles(&self) -> bool {
        self.rows_read == self.rows_accepted + self.rows_quarantined
            && self.reasons.iter().map(|r| r.rows).sum::<u64>() == self.rows_quarantined
    }
}
