//! # drd-ingest: provider extracts into the store, nothing lost, nothing leaked
//!
//! [`Ingestor::ingest`] takes one file from a submitter and:
//! 1. runs a [`prepass`](prepass::prepass) over the whole file (SHA-256, gzip, format by
//!    extension and magic bytes, UTF-8 or Windows-1252);
//! 2. rejects it whole when it is unreadable or lacks a required column (nothing is written);
//! 3. reads it as a stream of records ([`read`]), maps headers as formats.md says, finds rows
//!    sharing a key and revision, and [`validate`]s every row;
//! 4. writes accepted rows, pseudonymised ([`key::LinkageKey`]), to
//!    `sources/<source>/<submitter>/`, rejected rows with reason, column and message to
//!    `quarantine/…`, and a [`receipt::Receipt`] to `receipts/…`, each commit tagged with the
//!    file's SHA-256 so re-ingesting changes nothing and a retry after a crash completes only
//!    what is missing.
//!
//! No identifier in clear reaches a table, a quarantine row, a receipt, a log line or an error:
//! NHS numbers, names, case and client references become keyed HMACs, dates of birth become
//! ages, postcodes become districts, and messages about identifier columns name the rule only.

pub mod batch;
pub mod chunk;
pub mod defaults;
pub mod export;
pub mod fault;
pub mod ingest;
pub mod json;
pub mod key;
pub mod lanes;
pub mod prepass;
pub mod read;
pub mod receipt;
pub mod validate;
pub mod worker;

pub use export::export_quarantine;
pub use ingest::{Ingestor, PROGRESS_EVERY, Progress, app_id, check_submitter};
pub use key::LinkageKey;
pub use receipt::{Receipt, Status};

/// Errors that stop an ingest (a file rejected whole is a receipt, not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read from disk.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] drd_store::Error),
    /// Bad usage (submitter id, areas, key).
    #[error("{0}")]
    Usage(String),
    /// A background encoding task stopped unexpectedly (retried like a store error).
    #[error("internal: {0}")]
    Task(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
