//! The parallel middle of an ingest: one reader thread parses the file into [`Chunk`]s and
//! validation lanes, one per core, turn chunks into Arrow batches for their own Parquet
//! writers.
//!
//! Rows keep their file row numbers (each chunk knows its first row), so the order in which
//! lanes finish does not matter: every lane's data files go into the same single Delta commit
//! (`drd_store::Appender::commit_all`). The reader runs ahead of the lanes by at most two
//! chunks per lane, so memory stays bounded whatever the file size.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;
use drd_model::{Coded, ReasonCode, Source, SubstanceGroup, SubstanceLookup};
use tokio::sync::mpsc;

use crate::batch::BatchBuilder;
use crate::chunk::Chunk;
use crate::fault;
use crate::read::{Records, Unreadable};
use crate::validate::{
    Ctx, HeaderMap, Memo, Row, RowError, V, key_hash, quarantine_values, validate,
};

/// Rows per chunk.
pub const CHUNK_ROWS: usize = 8192;

/// How many lanes: one per core, at least one, at most eight; `DRDSURV_INGEST_LANES` overrides
/// it (for tuning).
pub fn lane_count() -> usize {
    std::env::var("DRDSURV_INGEST_LANES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 8)
}

/// Reads `records` into chunks on the calling thread and runs `work` over them on one thread
/// per lane state. With `needed` (the header columns `work` reads), raw CSV chunks are split
/// only as far as the last of them ([`Chunk::split_prefix`]) and NDJSON lines keep only their
/// values ([`Chunk::parse_json`]). `work` returns false to stop the whole run (its lane
/// failed). Returns the
/// lane states when every chunk has been handed out and worked, or why the file could not be
/// read.
pub fn fan_out<S, W>(
    records: &mut Records,
    states: Vec<S>,
    needed: Option<&[usize]>,
    mut on_chunk: impl FnMut(u64),
    work: W,
) -> Result<Vec<S>, Unreadable>
where
    S: Send,
    W: Fn(&mut S, &Chunk) -> bool + Sync,
{
    let lanes = states.len().max(1);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(lanes * 2);
    let rx = Mutex::new(rx);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Chunk>();
    let stop = AtomicBool::new(false);
    // Raw chunks are split by the lanes, which count the ragged rows and catch bad text (the
    // failure of the earliest rows wins, whichever lane saw it first).
    let ragged = AtomicU64::new(0);
    let bad_text: Mutex<Option<(u64, String)>> = Mutex::new(None);
    let json_keys = records.json_keys();
    let json_keys = json_keys.as_deref();
    let result = std::thread::scope(|scope| {
        let handles: Vec<_> = states
            .into_iter()
            .map(|mut st| {
                let (rx, back, stop, work) = (&rx, back_tx.clone(), &stop, &work);
                let (ragged, bad_text) = (&ragged, &bad_text);
                scope.spawn(move || {
                    loop {
                        let next = match rx.lock() {
                            Ok(g) => g.recv(),
                            Err(_) => break,
                        };
                        let Ok(mut chunk) = next else { break };
                        if chunk.is_raw() && !stop.load(Ordering::Relaxed) {
                            let utf8 = |row: u64| {
                                format!(
                                    "the text is not valid UTF-8 in the rows from data row {row}"
                                )
                            };
                            let split = match (json_keys, needed) {
                                (Some(keys), only) if chunk.is_json() => {
                                    chunk.parse_json(keys, only).map(|()| 0)
                                }
                                (_, Some(cols)) => {
                                    let k = cols.iter().max().map_or(1, |&j| j + 1);
                                    chunk
                                        .split_prefix(k)
                                        .map(|()| 0)
                                        .map_err(|_| utf8(chunk.first_row))
                                }
                                (_, None) => chunk.split().map_err(|_| utf8(chunk.first_row)),
                            };
                            match split {
                                Ok(n) => {
                                    ragged.fetch_add(n, Ordering::Relaxed);
                                }
                                Err(why) => {
                                    if let Ok(mut b) = bad_text.lock()
                                        && b.as_ref().is_none_or(|(r, _)| *r > chunk.first_row)
                                    {
                                        *b = Some((chunk.first_row, why));
                                    }
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                        if !stop.load(Ordering::Relaxed) && !work(&mut st, &chunk) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        let _ = back.send(chunk);
                    }
                    st
                })
            })
            .collect();
        drop(back_tx);
        let mut result = Ok(());
        while !stop.load(Ordering::Relaxed) {
            let mut chunk = back_rx.try_recv().unwrap_or_default();
            match records.next_chunk(&mut chunk, CHUNK_ROWS) {
                Ok(true) => {
                    on_chunk(records.rows);
                    if tx.send(chunk).is_err() {
                        break;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(tx);
        let states: Vec<S> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        result.map(|()| states)
    });
    records.ragged_rows += ragged.into_inner();
    if let Some((_, why)) = bad_text.into_inner().ok().flatten() {
        return Err(Unreadable(why));
    }
    result
}

/// The data rows (sorted) whose key and revision another row of the file shares (pass 1:
/// every such row is quarantined as `duplicate_key_in_file`).
pub fn duplicate_rows(
    records: &mut Records,
    map: &HeaderMap,
    source: Source,
) -> Result<Vec<u64>, Unreadable> {
    let states = (0..lane_count()).map(|_| Vec::new()).collect();
    // Only the key columns and the revision are read: `key_hash` reads no other.
    let needed: Vec<usize> = source
        .key_columns()
        .iter()
        .chain(&["revision"])
        .filter_map(|name| {
            let i = source.columns().iter().position(|c| c.name == *name)?;
            map.index.get(i).copied().flatten()
        })
        .collect();
    let lanes = fan_out(
        records,
        states,
        Some(&needed),
        |_| {},
        |keys: &mut Vec<(u64, u64, u64)>, chunk| {
            keys.extend((0..chunk.rows()).filter_map(|r| {
                let h = key_hash(Row::new(chunk, r, map), source)?;
                Some(((h >> 64) as u64, h as u64, chunk.first_row + r as u64))
            }));
            true
        },
    )?;
    // Each lane's keys are sorted on a thread of their own, then the sorted runs are merged
    // in one walk that compares neighbours (no copy of every key into one vector).
    let runs: Vec<Vec<(u64, u64, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .into_iter()
            .map(|mut l| {
                scope.spawn(move || {
                    l.sort_unstable();
                    l
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    Ok(shared_keys(&runs))
}

/// The row numbers (sorted) of every entry whose key (the first two fields) occurs more than
/// once across `runs`, each sorted by key.
fn shared_keys(runs: &[Vec<(u64, u64, u64)>]) -> Vec<u64> {
    let mut pos = vec![0usize; runs.len()];
    let mut rows = Vec::new();
    let mut group: Option<(u64, u64)> = None;
    let mut first_row = 0u64;
    let mut in_dup = false;
    loop {
        // The smallest head among the runs.
        let mut best: Option<(usize, (u64, u64, u64))> = None;
        for (i, r) in runs.iter().enumerate() {
            if let Some(&k) = r.get(pos[i])
                && best.is_none_or(|(_, b)| k < b)
            {
                best = Some((i, k));
            }
        }
        let Some((i, (h1, h2, row))) = best else {
            break;
        };
        pos[i] += 1;
        if group == Some((h1, h2)) {
            if !in_dup {
                rows.push(first_row);
                in_dup = true;
            }
            rows.push(row);
        } else {
            group = Some((h1, h2));
            first_row = row;
            in_dup = false;
        }
    }
    rows.sort_unstable();
    rows
}

/// Everything the lanes of one file share.
#[derive(Debug)]
pub struct FileJob {
    /// Source.
    pub source: Source,
    /// Header mapping.
    pub map: HeaderMap,
    /// Validation context.
    pub ctx: Ctx,
    /// Data rows sharing their key and revision with another row (sorted).
    pub dup_rows: Vec<u64>,
    /// Commit time stamp of every row.
    pub ingested_at: i64,
    /// Provenance values repeated on every row.
    pub sha256: Arc<str>,
    /// Geography vintage.
    pub vintage: Arc<str>,
    /// File name as the submitter sent it.
    pub file_name: Arc<str>,
    /// Rows per Arrow batch.
    pub batch_rows: usize,
    /// Substance lookup for unclassified-name warnings (coroner only).
    pub substances: Option<Arc<SubstanceLookup>>,
}

/// What one lane counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Rows accepted.
    pub accepted: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Accepted rows without `person_id`.
    pub unlinkable: u64,
    /// Quarantine reasons with their columns.
    pub histogram: BTreeMap<(ReasonCode, Option<String>), u64>,
    /// Substance names the lookup does not know (at most 100 kept).
    pub unclassified: BTreeSet<String>,
}

impl Tally {
    /// Adds another lane's counts.
    pub fn merge(&mut self, o: Tally) {
        self.accepted += o.accepted;
        self.quarantined += o.quarantined;
        self.unlinkable += o.unlinkable;
        for (k, v) in o.histogram {
            *self.histogram.entry(k).or_default() += v;
        }
        for u in o.unclassified {
            if self.unclassified.len() >= 100 {
                break;
            }
            self.unclassified.insert(u);
        }
    }
}

/// One validation lane: batch builders, the channels to its Parquet writers (`None` when
/// that table already holds the file), and its counts.
pub struct Lane {
    src: BatchBuilder,
    quarantine: BatchBuilder,
    src_tx: Option<mpsc::Sender<RecordBatch>>,
    q_tx: Option<mpsc::Sender<RecordBatch>>,
    memo: Memo,
    /// Whether the file's constant columns are set in `src`.
    constants_set: bool,
    /// Counts.
    pub tally: Tally,
    batches: u32,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane").field("tally", &self.tally).finish()
    }
}

/// Columns before the source-specific ones in every source table (`drd_model::schema`).
const PROVENANCE: usize = 7;

impl Lane {
    /// A lane writing to the given channels.
    pub fn new(
        src_schema: SchemaRef,
        q_schema: SchemaRef,
        src_tx: Option<mpsc::Sender<RecordBatch>>,
        q_tx: Option<mpsc::Sender<RecordBatch>>,
    ) -> Lane {
        Lane {
            src: BatchBuilder::new(src_schema),
            quarantine: BatchBuilder::new(q_schema),
            src_tx,
            q_tx,
            memo: Memo::default(),
            constants_set: false,
            tally: Tally::default(),
            batches: 0,
        }
    }

    fn send(tx: &Option<mpsc::Sender<RecordBatch>>, b: &mut BatchBuilder) -> bool {
        match tx {
            Some(tx) if !b.is_empty() => tx.blocking_send(b.finish()).is_ok(),
            _ => true,
        }
    }

    /// Sends what is buffered and closes the channels. False if a writer stopped.
    pub fn finish(mut self) -> (bool, Tally) {
        let ok =
            Lane::send(&self.src_tx, &mut self.src) && Lane::send(&self.q_tx, &mut self.quarantine);
        (ok, self.tally)
    }

    /// Validates every row of a chunk. False if a writer stopped.
    pub fn work(&mut self, job: &FileJob, chunk: &Chunk) -> bool {
        let ctx = &job.ctx;
        if !self.constants_set {
            self.src.set_constant(0, V::R(ctx.submitter.clone()));
            self.src.set_constant(3, V::Ts(job.ingested_at));
            self.src.set_constant(4, V::R(job.sha256.clone()));
            self.src.set_constant(6, V::R(job.vintage.clone()));
            self.constants_set = true;
        }
        // The file's duplicate rows from this chunk on (rows only grow within a chunk).
        let mut dups = &job.dup_rows[job.dup_rows.partition_point(|&d| d < chunk.first_row)..];
        for r in 0..chunk.rows() {
            let n = chunk.first_row + r as u64;
            let row = Row::new(chunk, r, &job.map);
            self.src.begin_row(PROVENANCE);
            let dup = match dups.first() {
                Some(&d) if d == n => {
                    dups = &dups[1..];
                    true
                }
                _ => false,
            };
            let outcome = validate(row, ctx, &mut self.memo, &mut self.src).and_then(|v| {
                if dup {
                    Err(RowError {
                        reason: ReasonCode::DuplicateKeyInFile,
                        column: job.source.key_columns()[0],
                        message: "another row in this file has the same key and revision; both are quarantined".into(),
                    })
                } else {
                    Ok(v)
                }
            });
            match outcome {
                Ok(valid) => {
                    self.tally.accepted += 1;
                    if valid.unlinkable && job.source != Source::Nsp {
                        self.tally.unlinkable += 1;
                    }
                    if let (Some(subs), Some((names, dod))) = (&job.substances, &valid.substances) {
                        self.note_unclassified(names, *dod, subs);
                    }
                    if self.src_tx.is_none() {
                        // The table already holds this file: count only.
                        self.src.rollback_row();
                        continue;
                    }
                    let b = &mut self.src;
                    b.set(1, V::I32(valid.revision));
                    b.set(2, valid.extract_date.map_or(V::Null, V::D));
                    b.set(5, V::I64(n as i64));
                    b.commit_row();
                    if b.len() >= job.batch_rows {
                        self.batches += 1;
                        if self.batches == 2 {
                            fault::point("rows_written");
                        }
                        if !Lane::send(&self.src_tx, &mut self.src) {
                            return false;
                        }
                    }
                }
                Err(e) => {
                    self.src.rollback_row();
                    self.tally.quarantined += 1;
                    *self
                        .tally
                        .histogram
                        .entry((e.reason, Some(e.column.to_string())))
                        .or_default() += 1;
                    if self.q_tx.is_none() {
                        continue;
                    }
                    let raw = serde_json::Value::Object(quarantine_values(row, ctx)).to_string();
                    self.quarantine.push_row([
                        V::R(ctx.submitter.clone()),
                        V::St(job.source.code()),
                        V::R(job.sha256.clone()),
                        V::R(job.file_name.clone()),
                        V::I64(n as i64),
                        V::St(e.reason.as_str()),
                        V::St(e.column),
                        V::S(e.message),
                        V::S(raw),
                        V::Ts(job.ingested_at),
                    ]);
                    if self.quarantine.len() >= job.batch_rows
                        && !Lane::send(&self.q_tx, &mut self.quarantine)
                    {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Coroner rows: remembers substance names the lookup cannot classify (for a warning).
    fn note_unclassified(&mut self, names: &[String], dod: NaiveDate, subs: &SubstanceLookup) {
        for name in names {
            if self.tally.unclassified.len() >= 100 {
                return;
            }
            if subs.resolve(name, dod).group == SubstanceGroup::Unclassified {
                self.tally.unclassified.insert(name.to_lowercase());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys shared within one run, across runs, or three times are all found; unique keys are
    /// not.
    #[test]
    fn shared_keys_across_sorted_runs() {
        let mut a = vec![(1, 1, 10), (5, 0, 11), (2, 7, 12), (9, 9, 13), (5, 0, 14)];
        let mut b = vec![(2, 7, 20), (3, 3, 21), (9, 9, 22), (1, 2, 23)];
        let mut c = vec![(9, 9, 30), (0, 0, 31)];
        for r in [&mut a, &mut b, &mut c] {
            r.sort_unstable();
        }
        assert_eq!(shared_keys(&[a, b, c]), vec![11, 12, 13, 14, 20, 22, 30]);
        assert!(shared_keys(&[vec![(1, 1, 1)], vec![]]).is_empty());
    }
}
