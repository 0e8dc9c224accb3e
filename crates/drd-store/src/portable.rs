//! Tables for sessions whose plans travel to other processes (a Ballista cluster).
//!
//! Ballista serialises a query's logical plan and sends it to its scheduler, which plans it
//! and sends the stages to executors. Only some table providers survive that trip: Parquet
//! listing tables, views and empty tables do; Delta's own provider and in-memory tables do
//! not (docs/api-notes.md §2). So a session marked with [`PortablePlans`] gets, from
//! [`delta_provider`], a listing table over exactly the files of the Delta version it was
//! given (never a directory listing, which would also pick up files a later version removed),
//! and [`Store::overwrite_from_stream`] writes a distributed query's rows to a new Delta version
//! as they arrive, without holding them.
//!
//! drdsurv never partitions its tables, and never turns on deletion vectors or column mapping;
//! a table that needs a Delta reader feature is refused rather than read wrongly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use deltalake::DeltaTable;
use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::catalog::streaming::StreamingTable;
use deltalake::datafusion::datasource::empty::EmptyTable;
use deltalake::datafusion::datasource::file_format::parquet::ParquetFormat;
use deltalake::datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::{
    SendableRecordBatchStream, SessionStateBuilder, TaskContext,
};
use deltalake::datafusion::logical_expr::LogicalPlanBuilder;
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::streaming::PartitionStream;
use deltalake::datafusion::prelude::SessionContext;

use crate::{Error, Result, Store};

/// A [`SessionConfig`](deltalake::datafusion::prelude::SessionConfig) extension marking a
/// session whose plans are shipped to other processes: [`delta_provider`] then registers
/// listing tables instead of Delta providers.
#[derive(Debug, Default, Clone, Copy)]
pub struct PortablePlans;

/// A [`SessionConfig`](deltalake::datafusion::prelude::SessionConfig) extension asking
/// [`delta_provider`] for Parquet listing tables over each version's files even though plans
/// stay in this process: the query service's choice. A Delta provider re-derives the file
/// list of its snapshot on every scan, about 15-20 ms per scan of a mart; a listing table of
/// known files plans in well under a millisecond, and the runtime's caches keep the footers.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListingScans;

/// Whether `ctx` asks for listing tables ([`ListingScans`] or [`PortablePlans`]).
fn listing_scans(ctx: &SessionContext) -> bool {
    plans_travel(ctx)
        || ctx
            .state()
            .config()
            .get_extension::<ListingScans>()
            .is_some()
}

/// Whether `ctx`'s plans travel to other processes (its config carries [`PortablePlans`]).
pub fn plans_travel(ctx: &SessionContext) -> bool {
    ctx.state()
        .config()
        .get_extension::<PortablePlans>()
        .is_some()
}

fn delta_err(table: &str, e: impl std::fmt::Display) -> Error {
    Error::Delta {
        table: table.to_string(),
        source: Box::new(deltalake::DeltaTableError::Generic(e.to_string())),
    }
}

/// A table provider for `t` at the version it was loaded at, registering its object store in
/// `ctx`. In a session whose plans travel ([`plans_travel`]) it is a Parquet listing table
/// over the version's files (an empty table when it has none); otherwise Delta's provider.
pub async fn delta_provider(
    ctx: &SessionContext,
    t: &DeltaTable,
) -> Result<Arc<dyn TableProvider>> {
    let loc = t.table_url().to_string();
    t.update_datafusion_session(&ctx.state())
        .map_err(|e| delta_err(&loc, e))?;
    if !listing_scans(ctx) {
        return t.table_provider().await.map_err(|e| delta_err(&loc, e));
    }
    let urls = match file_urls(t) {
        Ok(u) => u,
        // Plans that stay here can always fall back to Delta's own provider.
        Err(_) if !plans_travel(ctx) => {
            return t.table_provider().await.map_err(|e| delta_err(&loc, e));
        }
        Err(e) => return Err(e),
    };
    let snapshot = t.snapshot().map_err(|e| delta_err(&loc, e))?;
    let schema: SchemaRef = snapshot.snapshot().arrow_schema();
    listing_over(ctx, &loc, schema, urls)
}

/// The Parquet files of `t`'s loaded version, refusing a table that needs Delta reader
/// features a plain listing of its files cannot honour.
fn file_urls(t: &DeltaTable) -> Result<Vec<ListingTableUrl>> {
    let loc = t.table_url().to_string();
    let snapshot = t.snapshot().map_err(|e| delta_err(&loc, e))?;
    if let Some(features) = snapshot.protocol().reader_features()
        && !features.is_empty()
    {
        return Err(delta_err(
            &loc,
            format!(
                "the table needs Delta reader features ({features:?}) that a plain listing of its files cannot honour; query it with the embedded engine"
            ),
        ));
    }
    t.get_file_uris()
        .map_err(|e| delta_err(&loc, e))?
        .map(|u| ListingTableUrl::parse(&u))
        .collect::<std::result::Result<Vec<_>, DataFusionError>>()
        .map_err(|e| delta_err(&loc, e))
}

fn listing_over(
    ctx: &SessionContext,
    loc: &str,
    schema: SchemaRef,
    urls: Vec<ListingTableUrl>,
) -> Result<Arc<dyn TableProvider>> {
    if urls.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let format = ParquetFormat::default().with_options(ctx.state().table_options().parquet.clone());
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| delta_err(loc, e))?;
    Ok(Arc::new(table))
}

/// One listing table over the files of every table in `tables` (each at the version it was
/// loaded at), for a session whose plans travel: the rows of `UNION ALL BY NAME` over them in
/// one scan. Its schema is the tables' schemas merged by name, in order of first appearance
/// (the column order `UNION ALL BY NAME` gives); a file without a column reads it as NULL.
///
/// Why: a union of many submitters' tables is a plan with one branch per table, and a query
/// that reads it several times (the current view reads it three times) becomes a Ballista job
/// with a stage per branch per read. One scan keeps the job as small as for one submitter.
pub async fn union_provider(
    ctx: &SessionContext,
    name: &str,
    tables: &[DeltaTable],
) -> Result<Arc<dyn TableProvider>> {
    let mut schemas = Vec::with_capacity(tables.len());
    let mut urls = Vec::new();
    for t in tables {
        let loc = t.table_url().to_string();
        t.update_datafusion_session(&ctx.state())
            .map_err(|e| delta_err(&loc, e))?;
        let snapshot = t.snapshot().map_err(|e| delta_err(&loc, e))?;
        schemas.push(snapshot.snapshot().arrow_schema().as_ref().clone());
        urls.extend(file_urls(t)?);
    }
    let merged = arrow::datatypes::Schema::try_merge(schemas).map_err(|e| delta_err(name, e))?;
    listing_over(ctx, name, Arc::new(merged), urls)
}

/// A partition that hands out one stream, once: the rows of a query already running elsewhere.
struct OneShot {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShot")
            .field("schema", &self.schema)
            .finish()
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut s| s.take());
        taken.unwrap_or_else(|| {
            let err = DataFusionError::Execution(
                "these rows were already read once; a write that must start again cannot replay them"
                    .into(),
            );
            Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                futures::stream::once(async move { Err(err) }),
            ))
        })
    }
}

impl Store {
    /// Replaces a table's contents with the rows of `rows` (a query executing elsewhere, such
    /// as on a Ballista cluster), written into the new version's files as they arrive. Like
    /// [`Store::overwrite_from_plan`], but the rows can be read only once: if the table moved
    /// while they were written, the write fails instead of starting again.
    pub async fn overwrite_from_stream(
        &self,
        rel: &str,
        schema: &SchemaRef,
        rows: SendableRecordBatchStream,
        metadata: HashMap<String, serde_json::Value>,
    ) -> Result<(i64, u64)> {
        let loc = self.table_location(rel).to_string();
        let part = OneShot {
            schema: rows.schema(),
            stream: Mutex::new(Some(rows)),
        };
        let source = StreamingTable::try_new(part.schema.clone(), vec![Arc::new(part)])
            .map_err(|e| delta_err(&loc, e))?;
        let plan = LogicalPlanBuilder::scan(
            "rows",
            deltalake::datafusion::datasource::provider_as_source(Arc::new(source)),
            None,
        )
        .and_then(LogicalPlanBuilder::build)
        .map_err(|e| delta_err(&loc, e))?;
        let state = SessionStateBuilder::new().with_default_features().build();
        self.overwrite_from_plan(rel, schema, plan, state, metadata)
            .await
    }
}
