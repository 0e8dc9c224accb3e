//! The query audit: one row per query in the `audit/` Delta table (who, when, the SQL and its
//! SHA-256, rows returned, duration, outcome).
//!
//! Queries hand their record to an [`Auditor`] and never wait for the store: a background
//! task appends whatever has arrived as one Delta commit every flush interval (and on
//! shutdown, see [`Auditor::close`]), so the audit costs a commit per interval, not per query.
//! If a commit fails the rows are kept and retried with the next batch, and the failure is
//! logged (without the SQL).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

/// Where the audit table lives in the store.
pub const AUDIT_TABLE: &str = "audit";

/// Records kept for retry while the audit table cannot be written.
const MAX_PENDING: usize = 100_000;

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every row was sent.
    Ok,
    /// Refused before running: not read-only, or a table the role may not read.
    Refused,
    /// The SQL did not plan or failed while running.
    Error,
    /// The query's memory limit was reached.
    MemoryLimit,
    /// The query's time limit was reached.
    Timeout,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::Timeout => "timeout",
        }
    }
}

/// One query.
#[derive(Debug, Clone)]
pub struct Record {
    pub query_id: String,
    pub user: String,
    pub role: String,
    pub started_at: DateTime<Utc>,
    pub sql: String,
    pub rows: u64,
    pub duration: Duration,
    pub outcome: Outcome,
    pub message: Option<String>,
}

/// SHA-256 of the SQL text, hex.
pub fn sql_hash(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// The audit table's columns.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("query_id", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
        Field::new(
            "started_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("sql", DataType::Utf8, false),
        Field::new("sql_sha256", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("duration_us", DataType::Int64, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, true),
    ]))
}

fn batch(records: &[Record]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let s = |f: fn(&Record) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(records.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        s(|r| &r.query_id),
        s(|r| &r.user),
        s(|r| &r.role),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                records.iter().map(|r| r.started_at.timestamp_micros()),
            )
            .with_timezone("UTC"),
        ),
        s(|r| &r.sql),
        Arc::new(StringArray::from_iter_values(
            records.iter().map(|r| sql_hash(&r.sql)),
        )),
        Arc::new(Int64Array::from_iter_values(
            records.iter().map(|r| r.rows as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            records.iter().map(|r| r.duration.as_millis() as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            records.iter().map(|r| r.duration.as_micros() as i64),
        )),
        s(|r| r.outcome.as_str()),
        Arc::new(StringArray::from(
            records
                .iter()
                .map(|r| r.message.as_deref())
                .collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema(), columns)
}

enum Msg {
    Record(Box<Record>),
    Close(oneshot::Sender<()>),
}

/// Hands records to the background writer.
#[derive(Debug, Clone)]
pub struct Auditor {
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit message")
    }
}

impl Auditor {
    /// Starts the writer on the current runtime.
    pub fn start(store: drd_store::Store, flush: Duration) -> Auditor {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        tokio::spawn(async move {
            let mut pending: Vec<Record> = Vec::new();
            let mut tick = tokio::time::interval(flush);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(Msg::Record(r)) => pending.push(*r),
                        Some(Msg::Close(done)) => {
                            while let Ok(Msg::Record(r)) = rx.try_recv() {
                                pending.push(*r);
                            }
                            write(&store, &mut pending).await;
                            let _ = done.send(());
                            return;
                        }
                        None => {
                            write(&store, &mut pending).await;
                            return;
                        }
                    },
                    _ = tick.tick() => write(&store, &mut pending).await,
                }
            }
        });
        Auditor { tx }
    }

    /// Queues one record.
    pub fn log(&self, r: Record) {
        tracing::info!(
            target: "drdsurv::audit",
            query_id = %r.query_id,
            user = %r.user,
            role = %r.role,
            sql_sha256 = %sql_hash(&r.sql),
            rows = r.rows,
            duration_ms = r.duration.as_millis() as u64,
            outcome = r.outcome.as_str(),
            "query"
        );
        if self.tx.send(Msg::Record(Box::new(r))).is_err() {
            tracing::error!("the audit writer has stopped; a query record was not written");
        }
    }

    /// Writes everything queued and stops the writer.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn write(store: &drd_store::Store, pending: &mut Vec<Record>) {
    if pending.is_empty() {
        return;
    }
    let result = async {
        let b = batch(pending).map_err(|e| e.to_string())?;
        let mut app = store
            .appender(AUDIT_TABLE, &schema(), None, Default::default())
            .await
            .map_err(|e| e.to_string())?;
        app.write(b).await.map_err(|e| e.to_string())?;
        app.commit().await.map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(_) => pending.clear(),
        Err(e) => {
            tracing::error!(
                records = pending.len(),
                error = %e,
                "could not write the audit table; will retry with the next batch"
            );
            // Bounded: a store that stays broken must not take the server's memory with it.
            if pending.len() > MAX_PENDING {
                let dropped = pending.len() - MAX_PENDING;
                pending.drain(..dropped);
                tracing::error!(
                    dropped,
                    "audit records dropped after repeated write failures"
                );
            }
        }
    }
}
