//! Ingesting one file: the whole sequence from bytes to committed tables and a receipt.
//!
//! Order of commits: source rows, then quarantine rows, then the receipt. Each commit carries
//! the Delta application transaction `drdsurv-file-<sha256>`, so a file whose receipt is
//! committed is recognised as a duplicate, and a retry after a crash skips the tables that
//! already hold the file and completes the others: nothing is written twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use csv::StringRecord;
use drd_model::reference::Partnerships;
use drd_model::schema::{quarantine_schema, receipts_schema, source_schema};
use drd_model::{Coded, ReasonCode, Source, SubstanceGroup, SubstanceLookup};
use drd_store::{Store, TableKind, table_path};
use tracing::{info, info_span, warn};

use crate::batch::BatchBuilder;
use crate::fault;
use crate::key::LinkageKey;
use crate::prepass::prepass;
use crate::read::{Unreadable, open};
use crate::receipt::{ReasonCount, Receipt, Status};
use crate::validate::{Ctx, HeaderMap, Row, V, key_of, quarantine_values, validate};
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

/// A callback told how many rows have been read.
pub struct Progress(pub Box<dyn Fn(u64) + Send + Sync>);

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
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pre = prepass(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
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
        let mut records = match open(path, &pre, self.xlsx_limit) {
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

        // Pass 1: keys, to find rows sharing key and revision (both are quarantined).
        let dups = match self.duplicate_keys(path, &pre, source, &map) {
            Ok(d) => d,
            Err(Unreadable(m)) => {
                return reject(
                    receipt,
                    ReasonCode::UnreadableFile,
                    format!("{file_name}: {m}"),
                );
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
        if source_done || quarantine_done {
            warn!(
                source_done,
                quarantine_done, "completing a partly committed file"
            );
        }

        let authorised_ctx = Ctx {
            source,
            submitter,
            key: self.key,
            partnerships: self.partnerships,
            authorised,
            received: self.received,
        };
        let ingested_at = now_micros();
        let shared_vintage: std::sync::Arc<str> = self.partnerships.vintage.as_str().into();
        let shared_submitter: std::sync::Arc<str> = submitter.into();
        let shared_sha: std::sync::Arc<str> = pre.sha256.as_str().into();
        let src_schema = source_schema(source);
        let q_schema = quarantine_schema();
        let mut src_builder = BatchBuilder::new(src_schema.clone());
        let mut q_builder = BatchBuilder::new(q_schema.clone());
        let meta = HashMap::from([
            (
                "file_sha256".to_string(),
                serde_json::Value::from(pre.sha256.clone()),
            ),
            ("submitter".to_string(), submitter.into()),
        ]);
        let mut src_app = None;
        let mut q_app = None;
        let mut histogram: BTreeMap<(ReasonCode, Option<String>), u64> = BTreeMap::new();
        let mut unclassified: BTreeSet<String> = BTreeSet::new();
        let mut rec = StringRecord::new();
        let mut n: u64 = 0;
        let mut src_batches = 0u32;
        loop {
            match records.next_into(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(Unreadable(m)) => {
                    return reject(
                        receipt,
                        ReasonCode::UnreadableFile,
                        format!("{file_name}: {m} (after {n} rows)"),
                    );
                }
            }
            n += 1;
            if n.is_multiple_of(PROGRESS_EVERY)
                && let Some(p) = self.progress
            {
                (p.0)(n);
            }
            let row = Row::new(&rec, &map, source);
            let outcome = validate(row, &authorised_ctx).and_then(|v| {
                let dup = key_of(row, source).map(|k| hash_key(&k)).is_some_and(|h| dups.contains(&h));
                if dup {
                    Err(crate::validate::RowError { reason: ReasonCode::DuplicateKeyInFile, column: source.key_columns()[0], message: "another row in this file has the same key and revision; both are quarantined".into() })
                } else {
                    Ok(v)
                }
            });
            match outcome {
                Ok(valid) => {
                    receipt.rows_accepted += 1;
                    if valid.unlinkable && source != Source::Nsp {
                        receipt.unlinkable_rows += 1;
                    }
                    if source == Source::Coroner && unclassified.len() < 100 {
                        let dod = match &valid.values[8] {
                            V::D(d) => *d,
                            _ => self.received,
                        };
                        for i in [14, 15] {
                            if let V::L(names) = &valid.values[i] {
                                for name in names {
                                    if self.substances.resolve(name, dod).group
                                        == SubstanceGroup::Unclassified
                                    {
                                        unclassified.insert(name.to_lowercase());
                                    }
                                }
                            }
                        }
                    }
                    if source_done {
                        continue;
                    }
                    let mut values = Vec::with_capacity(src_schema.fields().len());
                    values.extend([
                        V::R(shared_submitter.clone()),
                        V::I32(valid.revision),
                        valid.extract_date.map_or(V::Null, V::D),
                        V::Ts(ingested_at),
                        V::R(shared_sha.clone()),
                        V::I64(n as i64),
                        V::R(shared_vintage.clone()),
                    ]);
                    values.extend(valid.values);
                    src_builder.push(&values);
                    if src_builder.len() >= self.batch_rows {
                        src_batches += 1;
                        if src_batches == 2 {
                            fault::point("rows_written");
                        }
                        self.flush_rows(
                            &mut src_app,
                            &rel(TableKind::Sources),
                            &src_schema,
                            &app,
                            &meta,
                            &mut src_builder,
                        )
                        .await?;
                    }
                }
                Err(e) => {
                    receipt.rows_quarantined += 1;
                    *histogram
                        .entry((e.reason, Some(e.column.to_string())))
                        .or_default() += 1;
                    if quarantine_done {
                        continue;
                    }
                    let raw = serde_json::Value::Object(quarantine_values(row, &authorised_ctx))
                        .to_string();
                    q_builder.push(&[
                        V::S(submitter.to_string()),
                        V::S(source.code().to_string()),
                        V::S(pre.sha256.clone()),
                        V::S(file_name.clone()),
                        V::I64(n as i64),
                        V::S(e.reason.as_str().to_string()),
                        V::S(e.column.to_string()),
                        V::S(e.message),
                        V::S(raw),
                        V::Ts(ingested_at),
                    ]);
                    if q_builder.len() >= self.batch_rows {
                        self.flush_rows(
                            &mut q_app,
                            &rel(TableKind::Quarantine),
                            &q_schema,
                            &app,
                            &meta,
                            &mut q_builder,
                        )
                        .await?;
                    }
                }
            }
        }
        receipt.rows_read = n;
        if records.ragged_rows > 0 {
            receipt.warnings.push(format!(
                "{} row(s) had a different number of fields from the header (padded or cut)",
                records.ragged_rows
            ));
        }
        for u in &unclassified {
            receipt.warnings.push(format!(
                "unclassified substance '{u}': not in the substance lookup"
            ));
        }
        // Commit the source rows, then quarantine, then the receipt.
        self.flush_rows(
            &mut src_app,
            &rel(TableKind::Sources),
            &src_schema,
            &app,
            &meta,
            &mut src_builder,
        )
        .await?;
        if let Some(a) = src_app {
            receipt.source_version = Some(a.commit().await?.version);
            fault::point("source_committed");
        }
        self.flush_rows(
            &mut q_app,
            &rel(TableKind::Quarantine),
            &q_schema,
            &app,
            &meta,
            &mut q_builder,
        )
        .await?;
        if let Some(a) = q_app {
            receipt.quarantine_version = Some(a.commit().await?.version);
            fault::point("quarantine_committed");
        }
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
            "file ingested"
        );
        Ok(receipt)
    }

    /// Hands the buffered rows to the table's encoder, opening it on first use so that a
    /// file with no rows for a table makes no commit there.
    async fn flush_rows(
        &self,
        slot: &mut Option<Encoder>,
        rel: &str,
        schema: &arrow::datatypes::SchemaRef,
        app: &str,
        meta: &HashMap<String, serde_json::Value>,
        rows: &mut BatchBuilder,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if slot.is_none() {
            let a = self
                .store
                .appender(rel, schema, Some((app, 1)), meta.clone())
                .await?;
            *slot = Some(Encoder::start(a));
        }
        if let Some(e) = slot.as_mut() {
            e.send(rows.finish()).await?;
        }
        Ok(())
    }

    fn duplicate_keys(
        &self,
        path: &Path,
        pre: &crate::prepass::Prepass,
        source: Source,
        map: &HeaderMap,
    ) -> std::result::Result<HashSet<u64>, Unreadable> {
        let mut records = open(path, pre, self.xlsx_limit)?;
        let mut hashes = Vec::new();
        let mut rec = StringRecord::new();
        while records.next_into(&mut rec)? {
            if let Some(k) = key_of(Row::new(&rec, map, source), source) {
                hashes.push(hash_key(&k));
            }
        }
        hashes.sort_unstable();
        Ok(hashes
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect())
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
        b.push(&[
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

fn hash_key(k: &(Vec<String>, i32)) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    k.hash(&mut h);
    h.finish()
}

/// Parquet encoding of one table's append on its own task, so that reading and validating
/// the next rows overlaps with compressing the previous batch (two cores: about twice the
/// throughput of doing both in turn). Nothing is visible until [`Encoder::commit`]; dropping
/// an encoder abandons its append.
struct Encoder {
    tx: tokio::sync::mpsc::Sender<arrow::array::RecordBatch>,
    task: tokio::task::JoinHandle<Result<drd_store::Appender>>,
}

impl Encoder {
    fn start(mut appender: drd_store::Appender) -> Encoder {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<arrow::array::RecordBatch>(2);
        let task = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                appender.write(b).await?;
            }
            Ok(appender)
        });
        Encoder { tx, task }
    }

    async fn send(&mut self, batch: arrow::array::RecordBatch) -> Result<()> {
        if self.tx.send(batch).await.is_ok() {
            return Ok(());
        }
        // The encoder stopped: its error says why.
        match (&mut self.task).await {
            Ok(Err(e)) => Err(e),
            Ok(Ok(_)) => Err(Error::Task("the Parquet encoder stopped early".into())),
            Err(e) => Err(Error::Task(format!("the Parquet encoder failed: {e}"))),
        }
    }

    async fn commit(self) -> Result<drd_store::AppendResult> {
        drop(self.tx);
        let appender = self
            .task
            .await
            .map_err(|e| Error::Task(format!("the Parquet encoder failed: {e}")))??;
        Ok(appender.commit().await?)
    }
}
