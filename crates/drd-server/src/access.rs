//! Who may read what: roles, the catalog a store exposes, and each role's session.
//!
//! A store exposes its tables in four schemas of one catalog (`drdsurv` for the store the
//! server was started on, and one more catalog per attached store):
//!
//! | schema | tables | area column |
//! |---|---|---|
//! | `sources` | `coroner`, `top`, `nsp` (every submitter's rows), `current_<source>` (the current view) | `residence_area` (coroner), `partnership_code` (TOP, NSP) |
//! | `sources` | `receipts_<source>`, `quarantine_<source>` | none: `national` only |
//! | `marts` | every committed mart, at the version the ledger names | `area_code` (England, region and comparator rows are open to all), else `partnership_code`, else `residence_area`, else `national` only |
//! | `published` | `indicators`, `trends`, `alerts`, `quality`, `areas` of the latest release of every period | none needed: open to every role |
//! | `reference`, `ops` | reference tables; `runs` (the ledger) and `audit` | none: `national` only |
//!
//! Restrictions are enforced by the engine, not by rewriting the query: a role's session holds
//! only the tables it may read, and a restricted table is registered as a view whose plan
//! scans the real table through a filter on its area column. The real table is never
//! registered under any name in that session, so joins, subqueries, CTEs, `information_schema`
//! and table functions can only ever reach the filtered rows. URL tables
//! (`SELECT * FROM 'path'`) are not enabled.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
    SchemaProvider, TableProvider,
};
use datafusion::common::TableReference;
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, col, lit};
use datafusion::prelude::SessionContext;
use drd_model::{Coded, Source};
use drd_store::{Store, TableKind};

/// The catalog name of the store the server or CLI was started on.
pub const HOME: &str = "drdsurv";

/// What a user may read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything.
    National,
    /// Record-level rows of one partnership (its code), marts rows of that partnership plus
    /// every England, region and comparator-group row, and every published table.
    Partnership(String),
    /// Published tables only.
    Public,
}

impl Role {
    /// Parses `national`, `public` or `partnership:<9-character ONS code>`.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text.trim() {
            "national" => Ok(Role::National),
            "public" => Ok(Role::Public),
            t => match t.strip_prefix("partnership:") {
                Some(code)
                    if code.len() == 9
                        && code.starts_with('E')
                        && code.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    Ok(Role::Partnership(code.to_string()))
                }
                _ => Err(format!(
                    "unknown role '{text}': expected national, public or partnership:<code> (e.g. partnership:E06000047)"
                )),
            },
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::National => f.write_str("national"),
            Role::Partnership(c) => write!(f, "partnership:{c}"),
            Role::Public => f.write_str("public"),
        }
    }
}

/// How a table is restricted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Rows are restricted by this column; with `open_rows_by_type`, rows whose `area_type`
    /// is not `partnership` (England, regions, comparator groups) are visible to every role
    /// that may see the table at all.
    Area {
        column: String,
        open_rows_by_type: bool,
    },
    /// Only `national` sees the table.
    NationalOnly,
    /// Every role sees every row (published, disclosure-controlled figures).
    Open,
}

/// One exposed table.
#[derive(Clone)]
pub struct Exposed {
    pub schema: &'static str,
    pub name: String,
    pub provider: Arc<dyn TableProvider>,
    pub access: Access,
}

impl std::fmt::Debug for Exposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposed")
            .field("schema", &self.schema)
            .field("name", &self.name)
            .field("access", &self.access)
            .finish()
    }
}

/// The schema of bare table names.
pub const DEFAULT_SCHEMA: &str = "marts";

/// The schemas, in the order they are listed.
pub const SCHEMAS: [&str; 5] = ["sources", "marts", "published", "reference", "ops"];

fn area_column(source: Source) -> &'static str {
    match source {
        Source::Coroner => "residence_area",
        Source::Top | Source::Nsp => "partnership_code",
    }
}

/// A mart's access, from its columns.
fn mart_access(provider: &Arc<dyn TableProvider>) -> Access {
    let schema = provider.schema();
    let has = |c: &str| schema.column_with_name(c).is_some();
    for c in ["area_code", "partnership_code", "residence_area"] {
        if has(c) {
            return Access::Area {
                column: c.to_string(),
                open_rows_by_type: c == "area_code" && has("area_type"),
            };
        }
    }
    Access::NationalOnly
}

type LoadError = Box<dyn std::error::Error + Send + Sync>;

/// Which tables a catalog needs to load: all of them (a server, a query over
/// `information_schema`, or one that cannot be parsed), or only those one query names.
///
/// A store has hundreds of Delta tables (three per submitter); opening them all costs more
/// than a one-off query over a few marts (bench/results/national.txt), so `drdsurv sql` loads
/// only what its query names. Access rules do not depend on it: a table that is not loaded is
/// simply not there, like a table the role may not read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Wanted {
    #[default]
    All,
    /// (schema, table) pairs; bare names are in `marts`, the default schema.
    Only(std::collections::BTreeSet<(String, String)>),
}

impl Wanted {
    /// The tables `sql` names, in any catalog.
    pub fn from_sql(sql: &str) -> Wanted {
        let Ok(statements) = datafusion::sql::parser::DFParser::parse_sql(sql) else {
            return Wanted::All;
        };
        let mut only = std::collections::BTreeSet::new();
        for statement in &statements {
            let Ok((tables, _ctes)) =
                datafusion::sql::resolve::resolve_table_references(statement, true)
            else {
                return Wanted::All;
            };
            for t in tables {
                let schema = t.schema().unwrap_or(DEFAULT_SCHEMA);
                if schema == "information_schema" {
                    return Wanted::All;
                }
                only.insert((schema.to_string(), t.table().to_string()));
            }
        }
        Wanted::Only(only)
    }

    fn schema(&self, schema: &str) -> bool {
        match self {
            Wanted::All => true,
            Wanted::Only(t) => t.iter().any(|(s, _)| s == schema),
        }
    }

    fn table(&self, schema: &str, table: &str) -> bool {
        match self {
            Wanted::All => true,
            Wanted::Only(t) => t.iter().any(|(s, n)| s == schema && n == table),
        }
    }
}

/// Every table of `store` (or those `wanted`), as providers made in `ctx` (an engine's
/// context: its providers are the ones its plans can carry).
pub async fn load(
    store: &Store,
    ctx: &SessionContext,
    wanted: &Wanted,
) -> Result<Vec<Exposed>, LoadError> {
    let mut out = Vec::new();
    let sources = [Source::Coroner, Source::Top, Source::Nsp];
    let wanted_source = |source: Source| {
        let code = source.code();
        [
            code.to_string(),
            format!("current_{code}"),
            format!("receipts_{code}"),
            format!("quarantine_{code}"),
        ]
        .iter()
        .any(|n| wanted.table("sources", n))
    };
    if sources.iter().any(|s| wanted_source(*s)) {
        drd_pipeline::run::register_sources(store, ctx).await?;
    }
    if wanted.schema("reference") {
        drd_pipeline::reference::register(store, ctx).await?;
    }
    let marts = if wanted.schema("marts") {
        drd_pipeline::run::register_committed_marts_where(store, ctx, |m| wanted.table("marts", m))
            .await?
    } else {
        Vec::new()
    };
    for source in sources {
        if !wanted_source(source) {
            continue;
        }
        let code = source.code();
        let access = Access::Area {
            column: area_column(source).to_string(),
            open_rows_by_type: false,
        };
        for (registered, name) in [
            (format!("sources_{code}"), code.to_string()),
            (format!("current_{code}"), format!("current_{code}")),
        ] {
            out.push(Exposed {
                schema: "sources",
                name,
                provider: ctx.table_provider(registered.as_str()).await?,
                access: access.clone(),
            });
        }
        for kind in [TableKind::Receipts, TableKind::Quarantine] {
            if !wanted.table("sources", &format!("{}_{code}", kind.as_str())) {
                continue;
            }
            let subs = store.submitters(kind, source).await?;
            if drd_store::plans_travel(ctx) {
                // Operational tables are read on the coordinator only.
                continue;
            }
            let names = store.register_tables(ctx, kind, source, &subs).await?;
            if names.is_empty() {
                continue;
            }
            let sql = names
                .iter()
                .map(|n| format!("SELECT * FROM {n}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL BY NAME ");
            let view = ctx.sql(&sql).await?.into_view();
            out.push(Exposed {
                schema: "sources",
                name: format!("{}_{code}", kind.as_str()),
                provider: view,
                access: Access::NationalOnly,
            });
        }
    }
    for m in marts {
        let provider = ctx.table_provider(m.as_str()).await?;
        out.push(Exposed {
            schema: "marts",
            access: mart_access(&provider),
            name: m,
            provider,
        });
    }
    if wanted.schema("reference") {
        for t in drd_pipeline::reference::TABLES {
            out.push(Exposed {
                schema: "reference",
                name: t.to_string(),
                provider: ctx.table_provider(format!("ref_{t}").as_str()).await?,
                access: Access::NationalOnly,
            });
        }
    }
    let audit_latest = !drd_store::plans_travel(ctx);
    if audit_latest && wanted.table("ops", "audit") {
        out.push(Exposed {
            schema: "ops",
            name: "audit".to_string(),
            provider: Arc::new(LatestAudit {
                store: store.clone(),
            }),
            access: Access::NationalOnly,
        });
    }
    for (name, rel) in [
        ("runs", drd_pipeline::run::RUNS_TABLE),
        ("audit", crate::audit::AUDIT_TABLE),
    ] {
        if (name == "audit" && audit_latest) || !wanted.table("ops", name) {
            continue;
        }
        if let Some(t) = store.table(rel).await? {
            out.push(Exposed {
                schema: "ops",
                name: name.to_string(),
                provider: drd_store::delta_provider(ctx, &t).await?,
                access: Access::NationalOnly,
            });
        }
    }
    if wanted.schema("published") {
        out.extend(published(store, ctx).await?);
    }
    Ok(out)
}

/// The largest table (its Parquet files' bytes) [`hold_small_tables`] holds in memory.
pub const HELD_FILE_BYTES: u64 = 16 << 20;

/// Replaces the listing tables of `marts` and `reference` whose files total at most
/// [`HELD_FILE_BYTES`] with in-memory tables of their rows, while their decoded size fits in
/// `budget` (bytes, reduced by what is taken). Returns how many tables are held.
///
/// Why: the query service answers the same small aggregate tables again and again (a
/// partnership dashboard reads `marts.benchmarks` four times per query). Read from Parquet,
/// every query opened the file, decompressed its pages and decoded its strings; held, a scan
/// is a slice of batches already in memory. They are read once per catalog load, at the
/// version that load saw, so a refresh replaces them with the newer version's rows.
/// Record-level `sources` tables are never held, and neither is any table of a session whose
/// plans travel (in-memory tables do not survive the trip).
pub async fn hold_small_tables(
    ctx: &SessionContext,
    tables: &mut [Exposed],
    budget: &mut usize,
) -> datafusion::error::Result<usize> {
    if drd_store::plans_travel(ctx) {
        return Ok(0);
    }
    let mut held = 0;
    for t in tables.iter_mut() {
        if !matches!(t.schema, "marts" | "reference") {
            continue;
        }
        let Some(listing) = t
            .provider
            .downcast_ref::<datafusion::datasource::listing::ListingTable>()
        else {
            continue;
        };
        // A table whose size cannot be told (a folder, an error) is left as it is.
        let mut bytes = 0u64;
        for url in listing.table_paths() {
            let Ok(os) = ctx.runtime_env().object_store(url) else {
                bytes = u64::MAX;
                break;
            };
            match object_store::ObjectStoreExt::head(os.as_ref(), url.prefix()).await {
                Ok(m) => bytes += m.size,
                Err(_) => bytes = u64::MAX,
            }
            if bytes > HELD_FILE_BYTES {
                break;
            }
        }
        if bytes > HELD_FILE_BYTES {
            continue;
        }
        let batches = ctx.read_table(t.provider.clone())?.collect().await?;
        let size: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        if size > *budget {
            continue;
        }
        *budget -= size;
        let schema = t.provider.schema();
        t.provider = Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![batches],
        )?);
        held += 1;
    }
    Ok(held)
}

/// The published tables: the latest release of every period, read from its Parquet files.
async fn published(store: &Store, ctx: &SessionContext) -> Result<Vec<Exposed>, LoadError> {
    let os = store.object_store()?;
    let releases = drd_report::release::list_releases(&os).await?;
    let mut latest: BTreeMap<String, u32> = BTreeMap::new();
    for (p, n) in releases {
        let e = latest.entry(p).or_insert(n);
        *e = (*e).max(n);
    }
    if latest.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for table in ["indicators", "trends", "alerts", "quality", "areas"] {
        let files: Vec<String> = latest
            .iter()
            .map(|(p, n)| {
                let id = drd_report::release::release_id(p, *n);
                format!(
                    "{}/{table}.parquet",
                    store
                        .table_location(&format!("{}/{id}", drd_report::release::PUBLISHED))
                        .as_str()
                        .trim_end_matches('/')
                )
            })
            .collect();
        let df = ctx
            .read_parquet(files, datafusion::prelude::ParquetReadOptions::default())
            .await?;
        out.push(Exposed {
            schema: "published",
            name: table.to_string(),
            provider: df.into_view(),
            access: Access::Open,
        });
    }
    Ok(out)
}

/// A context like `base` (functions, configuration, runtime, engine) with an empty default
/// catalog, for [`load`] to register a store's tables in.
pub fn scratch_context(base: &SessionContext) -> datafusion::error::Result<SessionContext> {
    let mut state = base.state();
    // Tables are read at the version of the last refresh: listing tables over those versions'
    // files plan far faster than Delta providers (drd_store::ListingScans).
    state
        .config_mut()
        .set_extension(Arc::new(drd_store::ListingScans));
    let (catalog_name, schema_name) = {
        let o = &state.config().options().catalog;
        (o.default_catalog.clone(), o.default_schema.clone())
    };
    let list = Arc::new(MemoryCatalogProviderList::new());
    let catalog = Arc::new(MemoryCatalogProvider::new());
    catalog.register_schema(&schema_name, Arc::new(MemorySchemaProvider::new()))?;
    datafusion::catalog::CatalogProviderList::register_catalog(
        list.as_ref(),
        catalog_name,
        catalog,
    );
    let state = SessionStateBuilder::new_from_existing(state)
        .with_catalog_list(list)
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// The rows of a table `role` may see: `None` when the role may not see the table at all.
fn visible(role: &Role, t: &Exposed) -> Option<Option<Expr>> {
    match (role, &t.access) {
        (Role::National, _) => Some(None),
        (_, Access::Open) => Some(None),
        (Role::Public, _) | (_, Access::NationalOnly) => None,
        (
            Role::Partnership(code),
            Access::Area {
                column,
                open_rows_by_type,
            },
        ) => {
            let own = col(column.as_str()).eq(lit(code.as_str()));
            Some(Some(if *open_rows_by_type {
                own.or(col("area_type").not_eq(lit("partnership")))
            } else {
                own
            }))
        }
    }
}

/// A session for `role` over `catalogs` (catalog name → its tables), made from `base` (an
/// engine context, so its functions, configuration and runtime carry over). Nothing else is
/// registered: the session's catalogs hold only what the role may read.
pub fn role_context(
    base: &SessionContext,
    catalogs: &BTreeMap<String, Vec<Exposed>>,
    role: &Role,
) -> datafusion::error::Result<SessionContext> {
    let mut state = base.state();
    {
        let opts = state.config_mut().options_mut();
        opts.catalog.information_schema = true;
        opts.catalog.default_catalog = HOME.to_string();
        opts.catalog.default_schema = DEFAULT_SCHEMA.to_string();
        opts.catalog.create_default_catalog_and_schema = false;
    }
    let list = Arc::new(MemoryCatalogProviderList::new());
    for (cname, tables) in catalogs {
        let catalog = Arc::new(MemoryCatalogProvider::new());
        for schema_name in SCHEMAS {
            let schema = Arc::new(MemorySchemaProvider::new());
            let mut any = false;
            for t in tables.iter().filter(|t| t.schema == schema_name) {
                let Some(filter) = visible(role, t) else {
                    continue;
                };
                let provider = match filter {
                    None => t.provider.clone(),
                    Some(expr) => {
                        let plan = LogicalPlanBuilder::scan(
                            TableReference::full(cname.as_str(), schema_name, t.name.as_str()),
                            provider_as_source(t.provider.clone()),
                            None,
                        )?
                        .filter(expr)?
                        .build()?;
                        Arc::new(datafusion::catalog::view::ViewTable::new(plan, None))
                            as Arc<dyn TableProvider>
                    }
                };
                schema.register_table(t.name.clone(), provider)?;
                any = true;
            }
            if any {
                catalog.register_schema(schema_name, schema)?;
            }
        }
        if cname == HOME || !catalog.schema_names().is_empty() {
            if catalog.schema("marts").is_none() && cname == HOME {
                // The default schema must exist, even when empty, for unqualified names.
                catalog.register_schema("marts", Arc::new(MemorySchemaProvider::new()))?;
            }
            datafusion::catalog::CatalogProviderList::register_catalog(
                list.as_ref(),
                cname.clone(),
                catalog,
            );
        }
    }
    let state = SessionStateBuilder::new_from_existing(state)
        .with_catalog_list(list)
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// The audit table at its newest version on every scan (every other table is read at the
/// version of the last refresh): a national user sees queries audited moments ago. Empty
/// until the first audit commit.
#[derive(Debug)]
struct LatestAudit {
    store: Store,
}

#[async_trait::async_trait]
impl TableProvider for LatestAudit {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        crate::audit::schema()
    }

    fn table_type(&self) -> datafusion::logical_expr::TableType {
        datafusion::logical_expr::TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let err = |e: &dyn std::fmt::Display| {
            datafusion::error::DataFusionError::External(format!("audit table: {e}").into())
        };
        let Some(t) = self
            .store
            .table(crate::audit::AUDIT_TABLE)
            .await
            .map_err(|e| err(&e))?
        else {
            let schema = match projection {
                Some(p) => Arc::new(self.schema().project(p)?),
                None => self.schema(),
            };
            return Ok(Arc::new(datafusion::physical_plan::empty::EmptyExec::new(
                schema,
            )));
        };
        if let Some(s) = state
            .as_any()
            .downcast_ref::<datafusion::execution::SessionState>()
        {
            t.update_datafusion_session(s).map_err(|e| err(&e))?;
        }
        let provider = t.table_provider().await.map_err(|e| err(&e))?;
        provider.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Wanted;
    use super::*;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };

    /// A listing table over one Parquet file of `n` rows, and the file's size.
    async fn listing(
        ctx: &SessionContext,
        dir: &std::path::Path,
        n: usize,
    ) -> (Arc<dyn TableProvider>, u64) {
        let path = dir.join(format!("t{n}.parquet"));
        ctx.sql(&format!(
            "COPY (SELECT v, md5(CAST(v AS VARCHAR)) AS area_code FROM generate_series(1, {n}) t(v)) TO '{}' STORED AS PARQUET",
            path.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let url = ListingTableUrl::parse(path.to_str().unwrap()).unwrap();
        let fmt = datafusion::datasource::file_format::parquet::ParquetFormat::default();
        let config = ListingTableConfig::new(url)
            .with_listing_options(ListingOptions::new(Arc::new(fmt)))
            .infer_schema(&ctx.state())
            .await
            .unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        (Arc::new(ListingTable::try_new(config).unwrap()), size)
    }

    async fn count(ctx: &SessionContext, p: &Arc<dyn TableProvider>) -> usize {
        let b = ctx.read_table(p.clone()).unwrap().collect().await.unwrap();
        b.iter().map(|b| b.num_rows()).sum()
    }

    /// Small marts and reference tables are held while the budget lasts, with the same rows;
    /// record-level sources, tables over the size bound and tables past the budget are not.
    #[tokio::test]
    async fn small_tables_are_held_in_memory_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = SessionContext::new();
        let (small, _) = listing(&ctx, dir.path(), 1000).await;
        let (other, _) = listing(&ctx, dir.path(), 2000).await;
        let (big, big_bytes) = listing(&ctx, dir.path(), 1_500_000).await;
        assert!(big_bytes > HELD_FILE_BYTES, "{big_bytes}");
        let exposed = |schema, name: &str, p: &Arc<dyn TableProvider>| Exposed {
            schema,
            name: name.to_string(),
            provider: p.clone(),
            access: Access::NationalOnly,
        };
        let mut tables = vec![
            exposed("marts", "small", &small),
            exposed("sources", "coroner", &small),
            exposed("marts", "big", &big),
            exposed("reference", "other", &other),
        ];
        let is_held = |t: &Exposed| {
            t.provider
                .downcast_ref::<datafusion::datasource::MemTable>()
                .is_some()
        };
        // Room for the first small table only.
        let first: usize = ctx
            .read_table(small.clone())
            .unwrap()
            .collect()
            .await
            .unwrap()
            .iter()
            .map(|b| b.get_array_memory_size())
            .sum();
        let mut budget = first + 10;
        let held = hold_small_tables(&ctx, &mut tables, &mut budget)
            .await
            .unwrap();
        assert_eq!(held, 1);
        assert_eq!(budget, 10);
        assert!(is_held(&tables[0]));
        assert!(!is_held(&tables[1]) && !is_held(&tables[2]) && !is_held(&tables[3]));
        assert_eq!(count(&ctx, &tables[0].provider).await, 1000);
        assert_eq!(tables[0].provider.schema(), small.schema());
        // With room for everything, the reference table is held too; the rest never are.
        let mut budget = 1 << 30;
        let held = hold_small_tables(&ctx, &mut tables, &mut budget)
            .await
            .unwrap();
        assert_eq!(held, 1);
        assert!(is_held(&tables[3]) && !is_held(&tables[1]) && !is_held(&tables[2]));
        assert_eq!(count(&ctx, &tables[3].provider).await, 2000);
        assert_eq!(count(&ctx, &tables[2].provider).await, 1_500_000);
    }

    fn only(pairs: &[(&str, &str)]) -> Wanted {
        Wanted::Only(
            pairs
                .iter()
                .map(|(s, t)| (s.to_string(), t.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_query_wants_the_tables_it_names() {
        let sql = "WITH d AS (SELECT * FROM Mart_Deaths) \
                   SELECT * FROM d JOIN reference.esp2013 e ON true \
                   WHERE EXISTS (SELECT 1 FROM drdsurv.sources.current_top)";
        assert_eq!(
            Wanted::from_sql(sql),
            only(&[
                ("marts", "mart_deaths"),
                ("reference", "esp2013"),
                ("sources", "current_top"),
            ])
        );
        let w = Wanted::from_sql("SELECT count(*) FROM sources.receipts_nsp");
        assert!(w.table("sources", "receipts_nsp"));
        assert!(!w.table("sources", "nsp"));
        assert!(!w.schema("marts"));
    }

    #[test]
    fn catalog_listings_and_unparsed_text_want_everything() {
        for sql in [
            "SELECT * FROM information_schema.tables",
            "SELECT * FROM drdsurv.information_schema.columns",
            "SELEC nothing FROM",
        ] {
            assert_eq!(Wanted::from_sql(sql), Wanted::All, "{sql}");
        }
        assert!(Wanted::All.table("ops", "audit"));
    }
}
