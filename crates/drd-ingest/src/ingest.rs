//! Ingesting one file: the whole sequence from bytes to committed tables and a receipt.
//!
//! Order of commits: source rows, then quarantine rows, then the receipt. Each commit carries
//! the Delta application transaction `drdsurv-file-<sha256>`, so a file whose receipt is
//! committed is recognised as a duplicate, and a retry after a crash skips the tables that
//! already hold the file and completes the others: nothing is written twice.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use drd_model::reference::Partnerships;
use drd_model::schema::{quarantine_schema, receipts_schema, source_schema};
use drd_model::{Coded, ReasonCode, Source, SubstanceLookup};
use drd_store::{Appender, Store, TableKind, table_path};
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn};

use crate::batch::BatchBuilder;
use crate::fault;
use crate::key::LinkageKey;
use crate::lanes::{FileJob, Lane, Tally, duplicate_rows, fan_out, lane_count};
use crate::prepass::prepass_then;
use crate::read::{Unreadable, open};
use crate::receipt::{ReasonCount, Receipt, Status};
use crate::validate::{Ctx, HeaderMap, V};
use crate::{Error, Result};

/// Settings shared by every file.
#[derive(Debug)]
pub struct Ingestor<'a> {
    /// The store.
    pub store: &'a Store,
    /// Linkage key.
    pub key: &'a LinkageKey,
    /// Geography vintage.
    pub partnerships: &'a Partnerships,
    /// Substance lookup (for unclassified-name warnings).
    pub substances: &'a SubstanceLookup,
    /// Largest XLSX accepted.
    pub xlsx_limit: u64,
    /// Rows per Arrow batch.
    pub batch_rows: usize,
    /// Receipt date: later dates are `future_date`.
    pub received: NaiveDate,
    /// Told the number of rows read so far, every [`PROGRESS_EVERY`] rows (a progress bar).
    pub progress: Option<&'a Progress>,
}

impl<'a> Ingestor<'a> {
    /// An ingestor with the usual settings: the default XLSX size limit, 65,536 rows per
    /// batch, today as the receipt date, no progress callback.
    pub fn new(
        store: &'a Store,
        key: &'a LinkageKey,
        partnerships: &'a Partnerships,
        substances: &'a SubstanceLookup,
    ) -> Ingestor<'a> {
        Ingestor {
            store,
            key,
            partnerships,
            substances,
            xlsx_limit: crate::read::DEFAULT_XLSX_LIMIT,
            batch_rows: 65_536,
            received: Utc::now().date_naive(),
            progress: None,
        }
    }
}

/// How often [`Ingestor::progress`] is called, in rows.
pub const PROGRESS_EVERY: u64 = 16_384;

/// A callback told how many rows have been read (called from the reader thread).
pub struct Progress(pub Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// The transaction id recorded with every commit of a file.
pub fn app_id(sha256: &str) -> String {
    format!("drdsurv-file-{sha256}")
}

/// Checks a submitter id is safe as a path segment and in a log.
pub fn check_submitter(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid submitter id '{id}': use 1-64 lower-case letters, digits, '-' or '_'"
        )))
    }
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Pass 1 of a CSV or NDJSON file whose header has every required column, run while the
/// pre-pass is still hashing the file. `None` for anything else: the caller then rejects the
/// file, or runs the pass itself (workbooks, which are costly to open twice).
fn early_key_pass(
    path: &Path,
    pre: &crate::prepass::Prepass,
    source: Source,
    xlsx_limit: u64,
) -> Option<Result<Vec<u64>, Unreadable>> {
    use crate::prepass::Format;
    if !matches!(pre.format, Ok(Format::Csv | Format::Ndjson)) {
        return None;
    }
    let mut records = open(path, pre, xlsx_limit).ok()?;
    let map = HeaderMap::new(source, &records.headers);
    if !map.missing.is_empty() {
        return None;
    }
    Some(duplicate_rows(&mut records, &map, source))
}

impl Ingestor<'_> {
    /// Ingests one file for a submitter. Whole-file rejections are `Ok` receipts with status
    /// `Rejected`; `Err` is for store failures and bad usage.
    pub async fn ingest(
        &self,
        source: Source,
        submitter: &str,
        authorised: &HashSet<String>,
        path: &Path,
    ) -> Result<Receipt> {
        check_submitter(submitter)?;
        let started = Instant::now();
        // The pre-pass, with the key pass (pass 1) of a text file started while the file's
        // SHA-256 is still being computed (wasted for a file already ingested: rare, and no
        // dearer than the pass itself).
        let (owned, limit) = (path.to_path_buf(), self.xlsx_limit);
        let (pre, early_dups) = tokio::task::spawn_blocking(move || {
            prepass_then(&owned, |pre| early_key_pass(&owned, pre, source, limit))
        })
        .await
        .map_err(|e| Error::Task(format!("the pre-pass failed: {e}")))?
        .map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let file_name = stored_file_name(path, &pre.sha256);
        let span = info_span!(
            "ingest_file",
            source = source.code(),
            submitter,
            sha256 = &pre.sha256[..12],
            rows_read = tracing::field::Empty,
            rows_accepted = tracing::field::Empty,
            rows_quarantined = tracing::field::Empty,
            outcome = tracing::field::Empty
        );
        let _g = span.enter();
        let mut receipt = Receipt {
            file_name: file_name.clone(),
            file_sha256: pre.sha256.clone(),
            submitter: submitter.to_string(),
            source: source.code().to_string(),
            status: Status::Accepted,
            reason: None,
            error: None,
            format: pre.format.as_ref().ok().copied(),
            encoding: pre.encoding,
            rows_read: 0,
            rows_accepted: 0,
            rows_quarantined: 0,
            reasons: Vec::new(),
            warnings: Vec::new(),
            unlinkable_rows: 0,
            unlinkable_share: 0.0,
            source_version: None,
            quarantine_version: None,
            receipt_version: None,
            duration_ms: 0,
        };
        let app = app_id(&pre.sha256);
        let rel = |k: TableKind| table_path(k, source, submitter);
        if let Some(v) = self
            .store
            .txn_version(&rel(TableKind::Receipts), &app)
            .await?
        {
            info!(receipt_txn = v, "file already ingested");
            receipt.status = Status::Duplicate;
            receipt.duration_ms = started.elapsed().as_millis() as u64;
            span.record("outcome", "duplicate");
            return Ok(receipt);
        }
        let reject = |mut r: Receipt, reason: ReasonCode, msg: String| {
            r.status = Status::Rejected;
            r.reason = Some(reason);
            r.error = Some(msg);
            r.duration_ms = started.elapsed().as_millis() as u64;
            span.record("outcome", "rejected");
            warn!(reason = reason.as_str(), "file rejected whole");
            Ok(r)
        };
        let records = match open(path, &pre, self.xlsx_limit) {
            Ok(r) => r,
            Err(Unreadable(m)) => {
                return reject(
                    receipt,
                    ReasonCode::UnreadableFile,
                    format!("{file_name}: {m}"),
                );
            }
        };
        let map = HeaderMap::new(source, &records.headers);
        if !map.missing.is_empty() {
            let msg = format!(
                "{file_name}: missing required column(s): {}",
                map.missing.join(", ")
            );
            return reject(receipt, ReasonCode::MissingRequiredColumn, msg);
        }
        for u in &map.unknown {
            receipt.warnings.push(format!(
                "unknown column '{u}' ignored; its values are not stored"
            ));
        }

        // Pass 1: key hashes, to find rows sharing key and revision (both are quarantined);
        // usually done during the pre-pass already.
        let dups = {
            let found = match early_dups {
                Some(found) => found,
                None => {
                    let map = map.clone();
                    let mut records = records;
                    tokio::task::spawn_blocking(move || duplicate_rows(&mut records, &map, source))
                        .await
                        .map_err(|e| Error::Task(format!("the key pass failed: {e}")))?
                }
            };
            match found {
                Ok(d) => d,
                Err(Unreadable(m)) => {
                    return reject(
                        receipt,
                        ReasonCode::UnreadableFile,
                        format!("{file_name}: {m}"),
                    );
                }
            }
        };

        // Which tables already hold this file (a retry after a crash).
        let source_done = self
            .store
            .txn_version(&rel(TableKind::Sources), &app)
            .await?
            .is_some();
        let quarantine_done = self
            .store
            .txn_version(&rel(TableKind::Quarantine), &app)
            .await?
            .is_some();
        // The versions those commits made, for the receipt (a crash-completed file's receipt
        // names the same versions as one ingested in a single go).
        let mut done_versions = [None, None];
        for (i, (done, kind)) in [
            (source_done, TableKind::Sources),
            (quarantine_done, TableKind::Quarantine),
        ]
        .into_iter()
        .enumerate()
        {
            if done {
                done_versions[i] = self
                    .store
                    .txn_commit_version(&rel(kind), &app, 1000)
                    .await?
                    .map(|v| v as u64);
            }
        }
        if source_done || quarantine_done {
            warn!(
                source_done,
                quarantine_done, "completing a partly committed file"
            );
        }

        debug!(
            ms = started.elapsed().as_millis() as u64,
            "pre-pass and key pass done"
        );
        // Pass 2: validate on every core, each lane writing its own Parquet files.
        let ingested_at = now_micros();
        let job = Arc::new(FileJob {
            source,
            map,
            ctx: Ctx {
                source,
                submitter: submitter.into(),
                pseudo: self.key.pseudonymiser(),
                partnerships: Arc::new(self.partnerships.clone()),
                authorised: Arc::new(authorised.clone()),
                received: self.received,
            },
            dup_rows: dups,
            ingested_at,
            sha256: pre.sha256.as_str().into(),
            vintage: self.partnerships.vintage.as_str().into(),
            file_name: file_name.as_str().into(),
            batch_rows: self.batch_rows,
            substances: (source == Source::Coroner).then(|| Arc::new(self.substances.clone())),
        });
        let src_schema = source_schema(source);
        let q_schema = quarantine_schema();
        let meta = HashMap::from([
            (
                "file_sha256".to_string(),
                serde_json::Value::from(pre.sha256.clone()),
            ),
            ("submitter".to_string(), submitter.into()),
        ]);
        // One lock per table: the first lane with rows creates a missing table and the others
        // then open it (two concurrent creates would both commit table metadata).
        let (src_lock, q_lock) = (Arc::default(), Arc::default());
        let sink = |kind: TableKind, schema: &arrow::datatypes::SchemaRef| {
            let lock = if kind == TableKind::Sources {
                &src_lock
            } else {
                &q_lock
            };
            Sink::start(
                self.store.clone(),
                rel(kind),
                schema.clone(),
                app.clone(),
                meta.clone(),
                Arc::clone(lock),
            )
        };
        let mut lanes = Vec::new();
        let mut src_sinks = Vec::new();
        let mut q_sinks = Vec::new();
        for _ in 0..lane_count() {
            let s = (!source_done).then(|| sink(TableKind::Sources, &src_schema));
            let q = (!quarantine_done).then(|| sink(TableKind::Quarantine, &q_schema));
            lanes.push(Lane::new(
                src_schema.clone(),
                q_schema.clone(),
                s.as_ref().map(|s| s.tx.clone()),
                q.as_ref().map(|q| q.tx.clone()),
            ));
            src_sinks.extend(s);
            q_sinks.extend(q);
        }
        for s in src_sinks.iter_mut().chain(q_sinks.iter_mut()) {
            s.close_sender();
        }
        let progress = self.progress.map(|p| p.0.clone());
        let (path2, pre2, limit, job2) = (
            path.to_path_buf(),
            pre.clone(),
            self.xlsx_limit,
            job.clone(),
        );
        let ran = tokio::task::spawn_blocking(move || -> Result<_, Unreadable> {
            let mut records = open(&path2, &pre2, limit)?;
            let mut told = 0;
            let lanes = fan_out(
                &mut records,
                lanes,
                None,
                |rows| {
                    if let Some(p) = &progress
                        && rows / PROGRESS_EVERY > told
                    {
                        told = rows / PROGRESS_EVERY;
                        p(told * PROGRESS_EVERY);
                    }
                },
                |lane: &mut Lane, chunk| lane.work(&job2, chunk),
            )?;
            let mut tally = Tally::default();
            let mut ok = true;
            for l in lanes {
                let (sent, t) = l.finish();
                ok &= sent;
                tally.merge(t);
            }
            Ok((tally, ok, records.rows, records.ragged_rows))
        })
        .await
        .map_err(|e| Error::Task(format!("validation failed: {e}")))?;
        let (tally, sent, n, ragged) = match ran {
            Ok(r) => r,
            Err(Unreadable(m)) => {
                return reject(
                    receipt,
                    ReasonCode::UnreadableFile,
                    format!("{file_name}: {m}"),
                );
            }
        };
        // A writer that stopped early says why here.
        debug!(ms = started.elapsed().as_millis() as u64, "validation done");
        let src_parts = Sink::join_all(src_sinks).await?;
        let q_parts = Sink::join_all(q_sinks).await?;
        if !sent {
            // Some rows never reached a writer: committing would publish part of the file.
            return Err(Error::Task(
                "a Parquet writer stopped before every row reached it".into(),
            ));
        }
        receipt.rows_read = n;
        receipt.rows_accepted = tally.accepted;
        receipt.rows_quarantined = tally.quarantined;
        receipt.unlinkable_rows = tally.unlinkable;
        let histogram = tally.histogram;
        if ragged > 0 {
            receipt.warnings.push(format!(
                "{ragged} row(s) had a different number of fields from the header (padded or cut)"
            ));
        }
        for u in &tally.unclassified {
            receipt.warnings.push(format!(
                "unclassified substance '{u}': not in the substance lookup"
            ));
        }
        // Commit the source rows, then quarantine, then the receipt.
        let [source_before, quarantine_before] = done_versions;
        receipt.source_version = source_before;
        receipt.quarantine_version = quarantine_before;
        if !src_parts.is_empty() {
            receipt.source_version = Some(Appender::commit_all(src_parts).await?.version);
            fault::point("source_committed");
        }
        if !q_parts.is_empty() {
            receipt.quarantine_version = Some(Appender::commit_all(q_parts).await?.version);
            fault::point("quarantine_committed");
        }
        debug!(
            ms = started.elapsed().as_millis() as u64,
            "tables committed"
        );
        receipt.reasons = histogram
            .into_iter()
            .map(|((reason, column), rows)| ReasonCount {
                reason,
                column,
                rows,
            })
            .collect();
        receipt.unlinkable_share = if receipt.rows_accepted == 0 || source == Source::Nsp {
            0.0
        } else {
            receipt.unlinkable_rows as f64 / receipt.rows_accepted as f64
        };
        receipt.duration_ms = started.elapsed().as_millis() as u64;
        receipt.receipt_version = Some(
            self.write_receipt(&receipt, source, submitter, &app, ingested_at, &meta)
                .await?,
        );
        fault::point("receipt_committed");
        span.record("rows_read", receipt.rows_read);
        span.record("rows_accepted", receipt.rows_accepted);
        span.record("rows_quarantined", receipt.rows_quarantined);
        span.record("outcome", "accepted");
        info!(
            rows_read = receipt.rows_read,
            rows_accepted = receipt.rows_accepted,
            rows_quarantined = receipt.rows_quarantined,
            monotonic_counter.drdsurv_ingest_files = 1u64,
            monotonic_counter.drdsurv_ingest_rows_accepted = receipt.rows_accepted,
            monotonic_counter.drdsurv_ingest_rows_quarantined = receipt.rows_quarantined,
            source = source.code(),
            "file ingested"
        );
        Ok(receipt)
    }

    async fn write_receipt(
        &self,
        r: &Receipt,
        source: Source,
        submitter: &str,
        app: &str,
        ingested_at: i64,
        meta: &HashMap<String, serde_json::Value>,
    ) -> Result<u64> {
        let schema = receipts_schema();
        let mut b = BatchBuilder::new(schema.clone());
        let json = serde_json::to_string(&r.reasons).unwrap_or_default();
        let fmt = |x: Option<serde_json::Value>| {
            x.and_then(|v| v.as_str().map(str::to_string))
                .map_or(V::Null, V::S)
        };
        b.push_row([
            V::S(submitter.to_string()),
            V::S(source.code().to_string()),
            V::S(r.file_sha256.clone()),
            V::S(r.file_name.clone()),
            fmt(r
                .format
                .map(|f| serde_json::to_value(f).unwrap_or_default())),
            fmt(r
                .encoding
                .map(|e| serde_json::to_value(e).unwrap_or_default())),
            V::S("accepted".into()),
            V::Null,
            V::I64(r.rows_read as i64),
            V::I64(r.rows_accepted as i64),
            V::I64(r.rows_quarantined as i64),
            V::I64(r.unlinkable_rows as i64),
            V::S(json),
            if r.warnings.is_empty() {
                V::Null
            } else {
                V::L(r.warnings.clone())
            },
            r.source_version.map_or(V::Null, |v| V::I64(v as i64)),
            r.quarantine_version.map_or(V::Null, |v| V::I64(v as i64)),
            V::I64(r.duration_ms as i64),
            V::Ts(ingested_at),
        ]);
        let mut a = self
            .store
            .appender(
                &table_path(TableKind::Receipts, source, submitter),
                &schema,
                Some((app, 1)),
                meta.clone(),
            )
            .await?;
        a.write(b.finish()).await?;
        Ok(a.commit().await?.version)
    }
}

/// One table's Parquet writer for one lane, on its own task so that encoding runs beside
/// validation. The append is opened on the first batch, so a lane (or a file) with no rows
/// for a table writes nothing there; nothing is visible until the appends are committed.
struct Sink {
    tx: mpsc::Sender<arrow::array::RecordBatch>,
    task: tokio::task::JoinHandle<Result<Option<Appender>>>,
}

impl Sink {
    fn start(
        store: Store,
        rel: String,
        schema: arrow::datatypes::SchemaRef,
        app: String,
        meta: HashMap<String, serde_json::Value>,
        open_lock: Arc<tokio::sync::Mutex<()>>,
    ) -> Sink {
        let (tx, mut rx) = mpsc::channel::<arrow::array::RecordBatch>(2);
        let task = tokio::spawn(async move {
            let mut appender: Option<Appender> = None;
            while let Some(b) = rx.recv().await {
                let a = match &mut appender {
                    Some(a) => a,
                    None => {
                        let _one_at_a_time = open_lock.lock().await;
                        appender.insert(
                            store
                                .appender(&rel, &schema, Some((&app, 1)), meta.clone())
                                .await?,
                        )
                    }
                };
                a.write(b).await?;
            }
            Ok(appender)
        });
        Sink { tx, task }
    }

    /// Drops this handle's sender, so the task ends once the lane's clone is dropped.
    fn close_sender(&mut self) {
        let (closed, _) = mpsc::channel(1);
        self.tx = closed;
    }

    /// Waits for every writer; the appends that received rows.
    async fn join_all(sinks: Vec<Sink>) -> Result<Vec<Appender>> {
        let mut out = Vec::new();
        let mut first_err = None;
        for s in sinks {
            drop(s.tx);
            match s.task.await {
                Ok(Ok(Some(a))) => out.push(a),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(Error::Task(format!("a Parquet writer failed: {e}")));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// The name a file is recorded under (receipts, quarantine, messages): its own name, unless
/// the name may hold an identifier (an NHS number or a postcode, [`drd_model::ids::may_identify`]);
/// then `withheld-<first 12 hex digits of its SHA-256>` with the file's extension.
fn stored_file_name(path: &Path, sha256: &str) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !drd_model::ids::may_identify(&name) {
        return name;
    }
    let lower = name.to_ascii_lowercase();
    let ext = [
        ".csv.gz",
        ".ndjson.gz",
        ".json.gz",
        ".csv",
        ".xlsx",
        ".ndjson",
        ".json",
        ".gz",
    ]
    .into_iter()
    .find(|e| lower.ends_with(e))
    .unwrap_or("");
    tracing::warn!(
        sha256 = &sha256[..12.min(sha256.len())],
        "file name may hold an identifier: recorded as withheld"
    );
    format!("withheld-{}{ext}", &sha256[..12.min(sha256.len())])
}
