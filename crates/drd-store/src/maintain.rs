//! Table upkeep (`drdsurv maintain`): compaction, checkpoints, retention and vacuum, and
//! restoring a table to an earlier version (`drdsurv restore`).
//!
//! Ingest commits once per file, so a busy source table gains thousands of small files
//! within months and every read lists and opens them all. [`Store::maintain_table`] rewrites
//! small files into larger ones (a Delta `OPTIMIZE`, which changes no row), writes a
//! checkpoint so readers stop replaying the whole log, and vacuums files that no version
//! inside the retention window still needs.
//!
//! Retention is one figure for both Delta table properties that bound history:
//! `delta.logRetentionDuration` (how far back the log, and so time travel, reaches) and
//! `delta.deletedFileRetentionDuration` (how long removed data files stay). Delta's own
//! defaults (30 days and 7 days) would silently end time travel after a month; every table
//! drdsurv creates carries the configured retention (default 7 years) instead, and
//! `maintain` sets it on tables made before.

use std::collections::HashMap;

use deltalake::DeltaTable;
use object_store::path::Path;

use crate::{Error, Result, Store};

/// Seven years, in days: the default retention.
pub const DEFAULT_RETENTION_DAYS: u64 = 7 * 365 + 2;

static RETENTION_DAYS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(DEFAULT_RETENTION_DAYS);

/// Sets the retention that stores opened from now on in this process give the tables they
/// create (the binary calls it once with the config file's `[maintenance] retention_days`).
pub fn set_default_retention_days(days: u64) {
    RETENTION_DAYS.store(days.max(1), std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn default_retention_days() -> u64 {
    RETENTION_DAYS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The table properties that hold `days` of history.
pub fn retention_properties(days: u64) -> HashMap<String, String> {
    let v = format!("interval {days} days");
    HashMap::from([
        ("delta.logRetentionDuration".to_string(), v.clone()),
        ("delta.deletedFileRetentionDuration".to_string(), v),
    ])
}

/// What `maintain` does to each table.
#[derive(Debug, Clone)]
pub struct MaintainOptions {
    /// History kept, in days.
    pub retention_days: u64,
    /// Compaction's target file size in bytes.
    pub target_file_bytes: u64,
    /// Report what would change without writing.
    pub dry_run: bool,
}

impl Default for MaintainOptions {
    fn default() -> Self {
        MaintainOptions {
            retention_days: DEFAULT_RETENTION_DAYS,
            target_file_bytes: 128 * 1024 * 1024,
            dry_run: false,
        }
    }
}

/// What `maintain` did to one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableUpkeep {
    /// The table's path in the store.
    pub table: String,
    /// The version before maintenance.
    pub version_before: u64,
    /// The version after.
    pub version_after: u64,
    /// Live data files before compaction.
    pub files_before: usize,
    /// Live data files after compaction.
    pub files_after: usize,
    /// Whether the retention properties were set by this run.
    pub retention_set: bool,
    /// Whether a checkpoint was written.
    pub checkpointed: bool,
    /// Files the vacuum deleted (or would delete, in a dry run).
    pub vacuumed: usize,
}

fn delta(table: &str) -> impl Fn(deltalake::DeltaTableError) -> Error + '_ {
    move |e| Error::Delta {
        table: table.to_string(),
        source: Box::new(e),
    }
}

fn live_files(t: &DeltaTable) -> usize {
    t.snapshot().map(|s| s.log_data().num_files()).unwrap_or(0)
}

impl Store {
    /// Every Delta table in the store, as paths relative to its root, sorted. A table is a
    /// folder with a `_delta_log/`, at most three levels down
    /// (`sources/<source>/<submitter>/`).
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        let os = self.object_store()?;
        let mut found = Vec::new();
        let mut frontier: Vec<Option<Path>> = vec![None];
        // Root, then three levels of folders: a table at depth d is seen when its folder is
        // listed (its `_delta_log/` shows as a child).
        for _depth in 0..4 {
            let mut next = Vec::new();
            for prefix in frontier {
                let listing = match os.list_with_delimiter(prefix.as_ref()).await {
                    Ok(l) => l,
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => {
                        return Err(Error::ObjectStore {
                            location: prefix.map(|p| p.to_string()).unwrap_or_default(),
                            source: e,
                        });
                    }
                };
                for dir in listing.common_prefixes {
                    let name = dir.filename().unwrap_or_default();
                    if name == "_delta_log" {
                        if let Some(p) = &prefix {
                            found.push(p.to_string());
                        }
                    } else if !name.starts_with('_') && !name.starts_with('.') {
                        next.push(Some(dir));
                    }
                }
            }
            // A table's own sub-folders (partitions) are not searched further.
            next.retain(|d| {
                !found.iter().any(|t| {
                    d.as_ref()
                        .is_some_and(|d| d.as_ref().starts_with(&format!("{t}/")))
                })
            });
            frontier = next;
        }
        found.sort();
        Ok(found)
    }

    /// Compacts, sets retention, checkpoints and vacuums one table.
    pub async fn maintain_table(&self, rel: &str, opts: &MaintainOptions) -> Result<TableUpkeep> {
        let name = self.table_location(rel).to_string();
        let Some(mut t) = self.open_table(rel).await? else {
            return Err(Error::Delta {
                table: name,
                source: Box::new(deltalake::DeltaTableError::NotATable(
                    "no _delta_log".into(),
                )),
            });
        };
        let version_before = t.version().unwrap_or(0);
        let files_before = live_files(&t);
        let wanted = retention_properties(opts.retention_days);
        let current = t
            .snapshot()
            .map_err(delta(&name))?
            .metadata()
            .configuration()
            .clone();
        let retention_set = wanted.iter().any(|(k, v)| current.get(k) != Some(v));
        let mut up = TableUpkeep {
            table: rel.to_string(),
            version_before,
            version_after: version_before,
            files_before,
            files_after: files_before,
            retention_set,
            checkpointed: false,
            vacuumed: 0,
        };
        if opts.dry_run {
            let (_, m) = t
                .clone()
                .vacuum()
                .with_retention_period(retention(opts.retention_days))
                .with_dry_run(true)
                .await
                .map_err(delta(&name))?;
            up.vacuumed = m.files_deleted.len();
            return Ok(up);
        }
        if retention_set {
            t = t
                .set_tbl_properties()
                .with_properties(wanted)
                .await
                .map_err(delta(&name))?;
        }
        if files_before > 1 {
            let target = std::num::NonZeroU64::new(opts.target_file_bytes.max(1))
                .unwrap_or(std::num::NonZeroU64::MIN);
            let (t2, _metrics) = t
                .optimize()
                .with_target_size(target)
                .with_writer_properties(crate::writer_properties())
                .await
                .map_err(delta(&name))?;
            t = t2;
        }
        deltalake::checkpoints::create_checkpoint(&t, None)
            .await
            .map_err(delta(&name))?;
        up.checkpointed = true;
        let (t2, m) = t
            .vacuum()
            .with_retention_period(retention(opts.retention_days))
            .await
            .map_err(delta(&name))?;
        t = t2;
        up.vacuumed = m.files_deleted.len();
        up.version_after = t.version().unwrap_or(0);
        up.files_after = live_files(&t);
        tracing::info!(
            table = rel,
            files_before = up.files_before,
            files_after = up.files_after,
            vacuumed = up.vacuumed,
            "table maintained"
        );
        Ok(up)
    }

    /// Restores a table to an earlier version as a new commit (history is kept, so the
    /// restore itself can be undone). Returns the new version.
    pub async fn restore_table(&self, rel: &str, version: u64) -> Result<u64> {
        let name = self.table_location(rel).to_string();
        let Some(t) = self.open_table(rel).await? else {
            return Err(Error::Delta {
                table: name,
                source: Box::new(deltalake::DeltaTableError::NotATable(
                    "no _delta_log".into(),
                )),
            });
        };
        let (t, m) = t
            .restore()
            .with_version_to_restore(version)
            .await
            .map_err(delta(&name))?;
        tracing::info!(
            table = rel,
            version,
            files_removed = m.num_removed_file,
            files_restored = m.num_restored_file,
            "table restored"
        );
        Ok(t.version().unwrap_or(0))
    }
}

/// One commit of a table's log.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The version it made.
    pub version: u64,
    /// When, as RFC 3339 (UTC), or empty when the commit recorded no time.
    pub time: String,
    /// The Delta operation, e.g. `WRITE`, `OPTIMIZE`, `RESTORE`.
    pub operation: String,
}

impl Store {
    /// The commits still in a table's log, oldest first.
    pub async fn table_history(&self, rel: &str) -> Result<Vec<Commit>> {
        use futures::TryStreamExt as _;
        use object_store::ObjectStoreExt as _;
        let os = self.object_store()?;
        let log = Path::from(format!("{}/_delta_log", rel.trim_matches('/')));
        let err = |e| Error::ObjectStore {
            location: log.to_string(),
            source: e,
        };
        let metas: Vec<_> = os.list(Some(&log)).try_collect().await.map_err(err)?;
        let mut out = Vec::new();
        for m in metas {
            let Some(file) = m.location.filename() else {
                continue;
            };
            let Some(Ok(version)) = file.strip_suffix(".json").map(str::parse::<u64>) else {
                continue;
            };
            let bytes = os
                .get(&m.location)
                .await
                .map_err(err)?
                .bytes()
                .await
                .map_err(err)?;
            let mut c = Commit {
                version,
                time: String::new(),
                operation: String::new(),
            };
            for line in bytes.split(|b| *b == b'\n') {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                    continue;
                };
                if let Some(info) = v.get("commitInfo") {
                    c.operation = info["operation"].as_str().unwrap_or_default().to_string();
                    if let Some(ms) = info["timestamp"].as_i64() {
                        c.time = chrono::DateTime::from_timestamp_millis(ms)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            .unwrap_or_default();
                    }
                }
            }
            out.push(c);
        }
        out.sort_by_key(|c| c.version);
        if out.is_empty() {
            return Err(Error::Delta {
                table: self.table_location(rel).to_string(),
                source: Box::new(deltalake::DeltaTableError::NotATable(
                    "no commits in _delta_log".into(),
                )),
            });
        }
        Ok(out)
    }
}

fn retention(days: u64) -> chrono::Duration {
    chrono::Duration::days(days.min(i64::MAX as u64 / 86_400_000) as i64)
}
