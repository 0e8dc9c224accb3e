//! The current view of a source (formats.md, "Resubmission and the current view"), defined
//! once as SQL so that ingest tests, the pipeline's staging models and national queries all use
//! the same rule:
//!
//! one row per key; rows ordered by `revision` descending, then `extract_date` descending with
//! nulls last, then `ingested_at` descending; the first wins; withdrawn cases leave the view.

use arrow::array::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use drd_model::Source;
use drd_model::schema::pseudonymous_key_column;

use crate::{Error, Result, Store, TableKind, table_path};

/// The stored key columns of a source's current view (pseudonymised where the extract key is
/// an identifier: `case_ref` is stored as `case_id`, `client_ref` as `client_id`).
pub fn stored_key(source: Source) -> Vec<&'static str> {
    source
        .key_columns()
        .iter()
        .map(|k| match (*k, pseudonymous_key_column(source)) {
            ("case_ref" | "client_ref", Some(p)) => p,
            (k, _) => k,
        })
        .collect()
}

/// SQL for the current view over `relation` (a table name, or a parenthesised union of the
/// submitters' tables). The result has the relation's columns.
pub fn current_view_sql(source: Source, relation: &str) -> String {
    let keys = stored_key(source).join(", ");
    let withdrawn = if source == Source::Coroner {
        " WHERE NOT withdrawn"
    } else {
        ""
    };
    format!(
        "SELECT * EXCLUDE (drdsurv_rank) FROM (\
           SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} \
             ORDER BY revision DESC, extract_date DESC NULLS LAST, ingested_at DESC) AS drdsurv_rank \
           FROM {relation}) ranked \
         WHERE drdsurv_rank = 1{}",
        withdrawn.replace("WHERE", "AND")
    )
}

impl Store {
    /// A DataFusion context with one table registered per submitter of `source` and `kind`
    /// (named `<kind>_<submitter>` with `-` as `_`). Returns the registered names.
    pub async fn register_tables(
        &self,
        ctx: &SessionContext,
        kind: TableKind,
        source: Source,
        submitters: &[String],
    ) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for s in submitters {
            let rel = table_path(kind, source, s);
            let Some(t) = self.open_table(&rel).await? else {
                continue;
            };
            let name = format!("{}_{}", kind.as_str(), s.replace('-', "_"));
            let loc = self.table_location(&rel).to_string();
            let de = |e: deltalake::DeltaTableError| Error::Delta {
                table: loc.clone(),
                source: Box::new(e),
            };
            t.update_datafusion_session(&ctx.state()).map_err(de)?;
            let provider = t.table_provider().await.map_err(|e| Error::Delta {
                table: loc.clone(),
                source: Box::new(deltalake::DeltaTableError::Generic(e.to_string())),
            })?;
            ctx.register_table(name.as_str(), provider)
                .map_err(|e| Error::Delta {
                    table: loc.clone(),
                    source: Box::new(deltalake::DeltaTableError::Generic(e.to_string())),
                })?;
            names.push(name);
        }
        Ok(names)
    }

    /// Runs SQL and collects the result.
    pub async fn sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        let df_err = |e: deltalake::datafusion::error::DataFusionError| Error::Delta {
            table: "query".into(),
            source: Box::new(deltalake::DeltaTableError::Generic(e.to_string())),
        };
        ctx.sql(sql)
            .await
            .map_err(df_err)?
            .collect()
            .await
            .map_err(df_err)
    }

    /// Every row of one table.
    pub async fn read_table(
        &self,
        kind: TableKind,
        source: Source,
        submitter: &str,
    ) -> Result<Vec<RecordBatch>> {
        let ctx = SessionContext::new();
        let names = self
            .register_tables(&ctx, kind, source, &[submitter.to_string()])
            .await?;
        match names.first() {
            Some(n) => Store::sql(&ctx, &format!("SELECT * FROM {n}")).await,
            None => Ok(Vec::new()),
        }
    }

    /// The current view of a source over the given submitters' tables.
    pub async fn current_view(
        &self,
        source: Source,
        submitters: &[String],
    ) -> Result<Vec<RecordBatch>> {
        let ctx = SessionContext::new();
        let names = self
            .register_tables(&ctx, TableKind::Sources, source, submitters)
            .await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let union = names
            .iter()
            .map(|n| format!("SELECT * FROM {n}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        Store::sql(&ctx, &current_view_sql(source, &format!("({union})"))).await
    }
}
