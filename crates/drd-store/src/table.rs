//! Delta tables in a store: create with a schema, check schema evolution is additive, append
//! batches as zstd Parquet in one atomic commit carrying an application transaction, and read
//! application-transaction versions back.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::datafusion::execution::{SessionState, SessionStateBuilder};
use deltalake::datafusion::logical_expr::LogicalPlan;
use deltalake::delta_datafusion::planner::DeltaPlanner;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, MetadataExt, StructType, Transaction};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::EnabledStatistics;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

use crate::{Error, Result, Store};

/// What an append committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AppendResult {
    /// The table version of the commit.
    pub version: u64,
    /// Rows written.
    pub rows: u64,
}

/// A table's current state.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Current version.
    pub version: u64,
    /// Arrow schema.
    pub schema: SchemaRef,
}

fn delta(table: &str) -> impl Fn(DeltaTableError) -> Error + '_ {
    move |e| Error::Delta {
        table: table.to_string(),
        source: Box::new(e),
    }
}

/// Writer properties for every data file: zstd Parquet (architecture). Level 1 and
/// column-chunk statistics (what Delta's file statistics need, without per-page ones): on
/// 1M TOP rows this writes no more bytes than level 3 and costs far less CPU
/// (bench/results/ingest_top_profile.txt).
pub fn writer_properties() -> WriterProperties {
    let level = ZstdLevel::try_new(1).unwrap_or_default();
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build()
}

/// What a replacing write reads from.
enum Input {
    Batches(Vec<RecordBatch>),
    Plan(LogicalPlan, Box<SessionState>),
}

/// The rows the table's last commit added (its `operationMetrics`).
async fn added_rows(t: &DeltaTable) -> std::result::Result<u64, DeltaTableError> {
    use futures::TryStreamExt;
    let mut last: Vec<_> = t.history(Some(1)).try_collect().await?;
    let metrics = last
        .first_mut()
        .and_then(|c| c.info.remove("operationMetrics"))
        .ok_or_else(|| DeltaTableError::Generic("the write recorded no metrics".into()))?;
    metrics
        .get("num_added_rows")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| DeltaTableError::Generic(format!("no num_added_rows in {metrics}")))
}

impl Store {
    fn builder(&self, rel: &str) -> Result<DeltaTableBuilder> {
        let loc = self.table_location(rel);
        let name = loc.to_string();
        let mut b = DeltaTableBuilder::from_url(loc.clone())
            .map_err(delta(&name))?
            .with_storage_options(self.options.clone());
        if let Some(mem) = &self.memory {
            b = b.with_storage_backend(mem.clone(), loc);
        }
        Ok(b)
    }

    /// Opens a table if it exists.
    pub async fn open_table(&self, rel: &str) -> Result<Option<DeltaTable>> {
        let loc = self.table_location(rel);
        let name = loc.to_string();
        if let Ok(p) = loc.to_file_path()
            && self.backend == crate::Backend::Local
            && !p.join("_delta_log").is_dir()
        {
            return Ok(None);
        }
        let mut t = self.builder(rel)?.build().map_err(delta(&name))?;
        match t.load().await {
            Ok(()) => Ok(Some(t)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(delta(&name)(e)),
        }
    }

    /// Opens a table, creating it with `schema` if it does not exist. An existing table must
    /// hold every column of `schema` with the same type, or lack only nullable ones (they are
    /// added on the next append); anything else is a [`Error::Schema`].
    pub async fn ensure_table(&self, rel: &str, schema: &SchemaRef) -> Result<DeltaTable> {
        let name = self.table_location(rel).to_string();
        if let Some(t) = self.open_table(rel).await? {
            check_additive(&name, &t, schema)?;
            return Ok(t);
        }
        if self.backend == crate::Backend::Local
            && let Ok(p) = self.table_location(rel).to_file_path()
        {
            std::fs::create_dir_all(&p).map_err(|e| Error::Schema {
                table: name.clone(),
                reason: format!("cannot create the folder: {e}"),
            })?;
        }
        let st = kernel_schema(&name, schema)?;
        let t = self.builder(rel)?.build().map_err(delta(&name))?;
        let created = t
            .create()
            .with_columns(st.fields().cloned())
            .with_configuration(
                crate::retention_properties(self.retention_days)
                    .into_iter()
                    .map(|(k, v)| (k, Some(v))),
            )
            .with_save_mode(SaveMode::ErrorIfExists)
            .await;
        match created {
            Ok(t) => Ok(t),
            // Another writer created it between our look and our create: use theirs.
            Err(_) => match self.open_table(rel).await? {
                Some(t) => {
                    check_additive(&name, &t, schema)?;
                    Ok(t)
                }
                None => Err(Error::Delta {
                    table: name,
                    source: Box::new(DeltaTableError::NotATable("create failed".into())),
                }),
            },
        }
    }

    /// Starts an append to a table (created if needed). Batches are encoded as they arrive, so
    /// memory stays bounded; nothing is visible until [`Appender::commit`].
    pub async fn appender(
        &self,
        rel: &str,
        schema: &SchemaRef,
        txn: Option<(&str, i64)>,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<Appender> {
        let table = self.ensure_table(rel, schema).await?;
        let name = self.table_location(rel).to_string();
        let mut props = CommitProperties::default()
            .with_metadata(metadata)
            .with_max_retries(50);
        if let Some((app, v)) = txn {
            props = props.with_application_transaction(Transaction::new(app, v));
        }
        let writer = RecordBatchWriter::for_table(&table)
            .map_err(delta(&name))?
            .with_writer_properties(writer_properties());
        Ok(Appender {
            name,
            table,
            writer,
            props,
            rows: 0,
        })
    }

    /// The version recorded for an application id in a table, if any (the table's
    /// application transactions, read from its log).
    pub async fn txn_version(&self, rel: &str, app_id: &str) -> Result<Option<i64>> {
        let Some(t) = self.open_table(rel).await? else {
            return Ok(None);
        };
        let name = self.table_location(rel).to_string();
        let snap = t.snapshot().map_err(delta(&name))?;
        snap.transaction_version(t.log_store().as_ref(), app_id)
            .await
            .map_err(delta(&name))
    }

    /// The table version whose commit carries application transaction `app_id`, looking back
    /// at most `depth` commits from the newest (a retry after a crash asks about a commit made
    /// moments before). `None` when no commit in that range carries it.
    pub async fn txn_commit_version(
        &self,
        rel: &str,
        app_id: &str,
        depth: u64,
    ) -> Result<Option<i64>> {
        let Some(t) = self.open_table(rel).await? else {
            return Ok(None);
        };
        let name = self.table_location(rel).to_string();
        let latest = t.version().unwrap_or(0);
        let log = t.log_store();
        for v in (latest.saturating_sub(depth)..=latest).rev() {
            let Some(bytes) = log.read_commit_entry(v).await.map_err(delta(&name))? else {
                continue;
            };
            for line in bytes.split(|b| *b == b'\n') {
                let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
                    continue;
                };
                if action
                    .get("txn")
                    .and_then(|t| t.get("appId"))
                    .and_then(serde_json::Value::as_str)
                    == Some(app_id)
                {
                    return Ok(Some(v as i64));
                }
            }
        }
        Ok(None)
    }

    /// Current version and schema of a table, if it exists.
    pub async fn table_info(&self, rel: &str) -> Result<Option<TableInfo>> {
        let Some(t) = self.open_table(rel).await? else {
            return Ok(None);
        };
        let name = self.table_location(rel).to_string();
        let version = t.version().unwrap_or(0);
        let schema = t
            .snapshot()
            .map_err(delta(&name))?
            .snapshot()
            .arrow_schema();
        Ok(Some(TableInfo { version, schema }))
    }

    /// The commit information of a table's latest version (its operation, metrics and the
    /// application metadata a writer attached), if the table exists.
    pub async fn last_commit_info(
        &self,
        rel: &str,
    ) -> Result<Option<HashMap<String, serde_json::Value>>> {
        use futures::TryStreamExt;
        let Some(t) = self.open_table(rel).await? else {
            return Ok(None);
        };
        let name = self.table_location(rel).to_string();
        let mut last: Vec<_> = t
            .history(Some(1))
            .try_collect()
            .await
            .map_err(delta(&name))?;
        Ok(last.pop().map(|c| c.info.into_iter().collect()))
    }

    /// The Delta table handle for reading (e.g. registering with DataFusion).
    pub async fn table(&self, rel: &str) -> Result<Option<DeltaTable>> {
        self.open_table(rel).await
    }
}

/// A Delta (kernel) schema for an Arrow schema.
fn kernel_schema(table: &str, schema: &SchemaRef) -> Result<StructType> {
    schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| Error::Schema {
            table: table.to_string(),
            reason: e.to_string(),
        })
}

fn check_additive(name: &str, t: &DeltaTable, wanted: &SchemaRef) -> Result<()> {
    let have = t.snapshot().map_err(delta(name))?.snapshot().arrow_schema();
    for f in have.fields() {
        match wanted.field_with_name(f.name()) {
            Ok(w) if w.data_type() == f.data_type() => {}
            Ok(w) => {
                return Err(Error::Schema {
                    table: name.into(),
                    reason: format!(
                        "column {} is {} in the table but {} now",
                        f.name(),
                        f.data_type(),
                        w.data_type()
                    ),
                });
            }
            Err(_) => {
                return Err(Error::Schema {
                    table: name.into(),
                    reason: format!("column {} would be removed", f.name()),
                });
            }
        }
    }
    for w in wanted.fields() {
        if have.field_with_name(w.name()).is_err() && !w.is_nullable() {
            return Err(Error::Schema {
                table: name.into(),
                reason: format!("new column {} must be nullable", w.name()),
            });
        }
    }
    Ok(())
}

/// An append in progress.
pub struct Appender {
    name: String,
    table: DeltaTable,
    writer: RecordBatchWriter,
    props: CommitProperties,
    rows: u64,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("table", &self.name)
            .field("rows", &self.rows)
            .finish()
    }
}

impl Appender {
    /// Encodes one batch.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write_with_mode(batch, deltalake::writer::WriteMode::MergeSchema)
            .await
            .map_err(delta(&self.name))
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Commits everything written as one Delta version.
    pub async fn commit(self) -> Result<AppendResult> {
        Appender::commit_all(vec![self]).await
    }

    /// Commits several appends to the same table, started with the same transaction and
    /// metadata (parallel writers of one file), as one Delta version: all their data files
    /// become visible together or not at all. The first appender's commit properties are used.
    pub async fn commit_all(appenders: Vec<Appender>) -> Result<AppendResult> {
        let mut it = appenders.into_iter();
        let Some(mut first) = it.next() else {
            return Err(Error::Schema {
                table: String::new(),
                reason: "nothing to commit".into(),
            });
        };
        let name = first.name.clone();
        let mut rows = first.rows;
        let mut actions: Vec<Action> = first
            .writer
            .flush()
            .await
            .map_err(delta(&name))?
            .into_iter()
            .map(Action::Add)
            .collect();
        let wanted = first.writer.arrow_schema();
        for mut a in it {
            rows += a.rows;
            actions.extend(
                a.writer
                    .flush()
                    .await
                    .map_err(delta(&name))?
                    .into_iter()
                    .map(Action::Add),
            );
        }
        let table = &mut first.table;
        let snapshot = table.snapshot().map_err(delta(&name))?;
        // New nullable columns (additive evolution, checked when the append started).
        let have = snapshot.snapshot().arrow_schema();
        if wanted
            .fields()
            .iter()
            .any(|f| have.field_with_name(f.name()).is_err())
        {
            let st = kernel_schema(&name, &wanted)?;
            let meta = snapshot
                .metadata()
                .clone()
                .with_schema(&st)
                .map_err(|e| delta(&name)(e.into()))?;
            actions.push(Action::Metadata(meta));
        }
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        let finalized = CommitBuilder::from(first.props.clone())
            .with_actions(actions)
            .build(Some(snapshot), table.log_store(), operation)
            .await
            .map_err(delta(&name))?;
        Ok(AppendResult {
            version: finalized.version(),
            rows,
        })
    }
}

impl Store {
    /// Writes `batches` as a new version of a whole table (created if needed), replacing what
    /// the newest version held, schema included. Earlier versions stay readable until vacuumed, so a reader
    /// pinned to a version (the run ledger's) is not disturbed. Returns the new version.
    pub async fn overwrite(
        &self,
        rel: &str,
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<i64> {
        let (v, _) = self
            .replace(rel, schema, Input::Batches(batches), metadata)
            .await?;
        Ok(v)
    }

    /// Replaces a table's contents with the rows of a DataFusion plan, executed in `state`
    /// (which knows the plan's functions and object stores) and streamed into the new
    /// version's files, so the rows are never all in memory. `schema` (plain string types)
    /// creates the table when it does not exist. Returns the new version and the rows written.
    pub async fn overwrite_from_plan(
        &self,
        rel: &str,
        schema: &SchemaRef,
        plan: LogicalPlan,
        state: SessionState,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<(i64, u64)> {
        // The write plans its own row-counting node, which only Delta's planner knows.
        let state = SessionStateBuilder::new_from_existing(state)
            .with_query_planner(DeltaPlanner::new())
            .build();
        self.replace(rel, schema, Input::Plan(plan, Box::new(state)), metadata)
            .await
    }

    async fn replace(
        &self,
        rel: &str,
        schema: &SchemaRef,
        input: Input,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<(i64, u64)> {
        let name = self.table_location(rel).to_string();
        // Two writers replacing the same table at once (two runs of a pipeline). Delta's
        // conflict checker lets an overwrite rebase over a concurrent one (it treats the other's
        // added files as a blind append), which would leave both runs' rows in the table. So
        // the commit may not rebase at all (no commit retries): if the table moved while we
        // wrote, the write is made again on top of the newer version, which it then replaces
        // whole (the files of the refused attempt are never referenced).
        let mut attempt = 0;
        let t = loop {
            attempt += 1;
            // The schema is the new version's: a model's columns may change between runs.
            let table = match self.open_table(rel).await? {
                Some(t) => t,
                None => self.ensure_table(rel, schema).await?,
            };
            let props = CommitProperties::default()
                .with_metadata(metadata.clone())
                .with_max_retries(0);
            let builder = match &input {
                Input::Batches(b) => table.write(b.clone()),
                Input::Plan(plan, state) => table
                    .write(Vec::new())
                    .with_input_plan(plan.clone())
                    .with_session_state(Arc::new(state.as_ref().clone())),
            };
            let written = builder
                .with_save_mode(SaveMode::Overwrite)
                .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
                .with_writer_properties(writer_properties())
                .with_commit_properties(props)
                .await;
            match written {
                Err(
                    e @ (DeltaTableError::Transaction {
                        source:
                            TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_),
                    }
                    | DeltaTableError::VersionAlreadyExists(_)),
                ) if attempt < 20 => {
                    tracing::debug!(table = %name, attempt, error = %e, "concurrent overwrite; writing again");
                }
                other => break other.map_err(delta(&name))?,
            }
        };
        let version = t.version().map(|v| v as i64).ok_or_else(|| Error::Delta {
            table: name.clone(),
            source: Box::new(DeltaTableError::Generic("no version after a write".into())),
        })?;
        let rows = match &input {
            Input::Batches(b) => b.iter().map(|b| b.num_rows() as u64).sum(),
            Input::Plan(..) => added_rows(&t).await.map_err(delta(&name))?,
        };
        Ok((version, rows))
    }

    /// A table at a given version (`None` when the table does not exist).
    pub async fn open_table_at(&self, rel: &str, version: i64) -> Result<Option<DeltaTable>> {
        if self.open_table(rel).await?.is_none() {
            return Ok(None);
        }
        let name = self.table_location(rel).to_string();
        let mut t = self.builder(rel)?.build().map_err(delta(&name))?;
        t.load_version(version.max(0) as u64)
            .await
            .map_err(delta(&name))?;
        Ok(Some(t))
    }

    /// The submitters that have a table of `kind` for `source` (sorted).
    pub async fn submitters(
        &self,
        kind: crate::TableKind,
        source: drd_model::Source,
    ) -> Result<Vec<String>> {
        let os = self.object_store()?;
        let prefix = object_store::path::Path::from(format!(
            "{}/{}",
            kind.as_str(),
            drd_model::Coded::code(source)
        ));
        let listing = match os.list_with_delimiter(Some(&prefix)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::ObjectStore {
                    location: prefix.to_string(),
                    source: e,
                });
            }
        };
        let mut out: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }
}
