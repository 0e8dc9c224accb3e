//! `drdsurv publish`: one committed run → one immutable, disclosure-controlled release.
//!
//! The run is the last committed ledger row for the period that wrote `benchmarks`; its mart
//! versions are read, never the newest table versions. The release number is one more than
//! the period's highest complete release. Data files go first; the manifest is written last
//! and only if absent, so a crash leaves an incomplete folder that no reader opens and the
//! next publish overwrites, and a complete release is never changed. Publishing the same run
//! with the same policy again returns the existing release.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use drd_model::{Coded, Source};
use drd_stats::disclosure::Policy;
use drd_store::{Store, TableKind};
use serde::Deserialize;
use tracing::instrument;

use crate::Error;
use crate::control::{self, RawRow};
use crate::release::{
    self, AlertRow, AreaRow, IndicatorRow, Manifest, PUBLISHED, QualityRow, ReleaseTables, Revision,
};

/// What `publish` did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The release's manifest.
    pub manifest: Manifest,
    /// False when the run was already published with this policy (nothing written).
    pub created: bool,
}

/// The model a release is made from, and the trend series beside it.
const BENCHMARKS: &str = "benchmarks";
const TRENDS: &str = "trends";

fn engine(e: impl std::fmt::Display) -> Error {
    Error::Engine(e.to_string())
}

/// Rows of a query as `T` (through Arrow's JSON writer).
async fn query<T: for<'de> Deserialize<'de>>(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<T>, Error> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(engine)?
        .collect()
        .await
        .map_err(engine)?;
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::ArrayWriter::new(&mut buf);
        for b in &batches {
            w.write(b).map_err(engine)?;
        }
        w.finish().map_err(engine)?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(engine)
}

/// Publishes the last committed run for `period` under `policy`.
#[instrument(skip(store, policy), fields(policy = policy.name()))]
pub async fn publish(store: &Store, period: &str, policy: &Policy) -> Result<Published, Error> {
    let ledger = drd_pipeline::run::read_ledger(store).await?;
    let run = ledger
        .iter()
        .rfind(|r| {
            r.status == "committed" && r.period == period && r.outputs.contains_key(BENCHMARKS)
        })
        .ok_or_else(|| Error::NoRun {
            period: period.to_string(),
            pipeline: String::new(),
        })?;
    let os = store.object_store()?;
    let releases = release::list_releases(&os).await?;
    let last = releases
        .iter()
        .filter(|(p, _)| p == period)
        .map(|(_, n)| *n)
        .max();
    let previous = match last {
        Some(n) => Some(release::read_release(&os, &release::release_id(period, n)).await?),
        None => None,
    };
    if let Some(prev) = &previous
        && prev.manifest.run_id == run.run_id
        && prev.manifest.policy == policy.name()
    {
        return Ok(Published {
            manifest: prev.manifest.clone(),
            created: false,
        });
    }
    let n = last.unwrap_or(0) + 1;
    let id = release::release_id(period, n);

    // The run's tables, at the versions its ledger row names.
    let ctx = SessionContext::new();
    let mut marts = BTreeMap::new();
    for model in [BENCHMARKS, TRENDS] {
        if let Some(&v) = run.outputs.get(model)
            && let Some(t) = store.open_table_at(&format!("marts/{model}"), v).await?
        {
            let provider = drd_store::delta_provider(&ctx, &t).await?;
            ctx.register_table(model, provider).map_err(engine)?;
            marts.insert(model.to_string(), v);
        }
    }
    let raw: Vec<RawRow> = query(
        &ctx,
        "SELECT * FROM benchmarks ORDER BY CASE area_type WHEN 'england' THEN 0 WHEN 'region' THEN 1 WHEN 'comparator_group' THEN 2 ELSE 3 END, area_code, indicator_id, basis, sex, age_band, substance_group",
    )
    .await?;
    let areas = areas_of(&raw);
    let indicators = control::control_indicators(&raw, policy, &id)?;
    let trends = if marts.contains_key(TRENDS) {
        let mut raw_t: Vec<RawRow> = query(
            &ctx,
            "SELECT * FROM trends ORDER BY area_code, indicator_id, point DESC",
        )
        .await?;
        // The trend rows carry the partnership's region and group for secondary suppression.
        let geo: HashMap<&str, &AreaRow> = areas.iter().map(|a| (a.code.as_str(), a)).collect();
        for r in &mut raw_t {
            if let Some(a) = geo.get(r.area_code.as_str()) {
                r.region_code = Some(a.region_code.clone());
                r.comparator_group = a.comparator_group.clone();
            }
        }
        control::control_trends(&raw_t, policy, &indicators, &id)?
    } else {
        Vec::new()
    };
    let alerts = alerts_for(store, period, policy, &id).await?;
    let quality = quality_for(store, run.started_at, &id).await?;
    let tables = ReleaseTables {
        indicators,
        trends,
        alerts,
        quality,
        areas,
    };

    let dir = format!("{PUBLISHED}/{id}");
    let files = release::write_tables(&os, &dir, &tables).await?;
    let revision = previous.as_ref().map(|p| {
        revise(
            &p.manifest,
            &p.tables.indicators,
            &tables.indicators,
            &run.run_id,
            policy.name(),
        )
    });
    let manifest = Manifest {
        release_id: id.clone(),
        period: period.to_string(),
        pipeline: run.pipeline.clone(),
        run_id: run.run_id.clone(),
        data_as_of: run.started_at,
        run_late: run.late,
        policy: policy.name().to_string(),
        inputs: run.inputs.clone(),
        definitions: run.definitions.clone(),
        marts,
        rows: BTreeMap::from([
            ("indicators".to_string(), tables.indicators.len()),
            ("trends".to_string(), tables.trends.len()),
            ("alerts".to_string(), tables.alerts.len()),
            ("quality".to_string(), tables.quality.len()),
            ("areas".to_string(), tables.areas.len()),
        ]),
        files,
        revision,
        created_at: chrono::Utc::now(),
        drdsurv_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    release::put_manifest(&os, &dir, &manifest).await?;
    tracing::info!(release = %id, rows = tables.indicators.len(), "release published");
    Ok(Published {
        manifest,
        created: true,
    })
}

/// The partnerships and their regions and groups, from the run's own rows.
fn areas_of(raw: &[RawRow]) -> Vec<AreaRow> {
    let region_names: HashMap<&str, &str> = raw
        .iter()
        .filter(|r| r.area_type == "region")
        .map(|r| (r.area_code.as_str(), r.area_name.as_str()))
        .collect();
    let mut seen: BTreeMap<String, AreaRow> = BTreeMap::new();
    for r in raw.iter().filter(|r| r.area_type == "partnership") {
        seen.entry(r.area_code.clone()).or_insert_with(|| {
            let region = r.region_code.clone().unwrap_or_default();
            AreaRow {
                code: r.area_code.clone(),
                name: r.area_name.clone(),
                region_name: region_names
                    .get(region.as_str())
                    .copied()
                    .unwrap_or("")
                    .to_string(),
                region_code: region,
                comparator_group: r.comparator_group.clone(),
            }
        });
    }
    seen.into_values().collect()
}

/// Signals awaiting or past review (not dismissed), up to the end of the period. Weekly
/// regional counts are sub-national: `observed` goes through the policy.
async fn alerts_for(
    store: &Store,
    period: &str,
    policy: &Policy,
    id: &str,
) -> Result<Vec<AlertRow>, Error> {
    let end = drd_model::Period::parse(period)
        .map(|p| p.end())
        .map_err(|e| Error::Release(e.to_string()))?;
    let all = drd_pipeline::alerts::list(store).await?;
    Ok(all
        .into_iter()
        .filter(|a| a.status != "dismissed" && a.week_start <= end)
        .map(|a| AlertRow {
            alert_id: a.alert_id,
            region_code: a.region_code,
            region_name: a.region_name,
            substance_group: a.substance_group,
            week: a.week,
            method: a.method,
            observed: control::control_lone(a.observed, "region", policy).map(|c| c as f64),
            expected: a.expected,
            threshold: a.threshold,
            status: a.status,
            note: None,
            release_id: id.to_string(),
        })
        .collect())
}

#[derive(Deserialize)]
struct QualityAgg {
    submitter: String,
    files: i64,
    files_rejected: i64,
    rows_read: i64,
    rows_accepted: i64,
    rows_quarantined: i64,
    last_received: Option<String>,
}

/// Files and rows each submitter sent up to the run's start, from the receipts.
async fn quality_for(
    store: &Store,
    as_of: chrono::DateTime<chrono::Utc>,
    id: &str,
) -> Result<Vec<QualityRow>, Error> {
    let mut out = Vec::new();
    for source in [Source::Coroner, Source::Top, Source::Nsp] {
        let subs = store.submitters(TableKind::Receipts, source).await?;
        if subs.is_empty() {
            continue;
        }
        let ctx = SessionContext::new();
        let names = store
            .register_tables(&ctx, TableKind::Receipts, source, &subs)
            .await?;
        if names.is_empty() {
            continue;
        }
        let union = names
            .iter()
            .map(|n| format!("SELECT * FROM {n}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL BY NAME ");
        let sql = format!(
            "SELECT submitter, count(*) AS files, \
                    sum(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END) AS files_rejected, \
                    sum(rows_read) AS rows_read, sum(rows_accepted) AS rows_accepted, \
                    sum(rows_quarantined) AS rows_quarantined, \
                    CAST(CAST(max(ingested_at) AS DATE) AS VARCHAR) AS last_received \
             FROM ({union}) r WHERE ingested_at <= to_timestamp_micros({}) \
             GROUP BY submitter ORDER BY submitter",
            as_of.timestamp_micros()
        );
        let rows: Vec<QualityAgg> = query(&ctx, &sql).await?;
        out.extend(rows.into_iter().map(|q| QualityRow {
            source: source.code().to_string(),
            submitter: q.submitter,
            files: q.files,
            files_rejected: q.files_rejected,
            rows_read: q.rows_read,
            rows_accepted: q.rows_accepted,
            rows_quarantined: q.rows_quarantined,
            last_received: q.last_received,
            release_id: id.to_string(),
        }));
    }
    Ok(out)
}

/// How the new release's figures differ from the previous release of the same period.
fn revise(
    prev: &Manifest,
    before: &[IndicatorRow],
    after: &[IndicatorRow],
    run_id: &str,
    policy: &str,
) -> Revision {
    type Key = (String, String, String, String, String, String, String);
    let key = |r: &IndicatorRow| -> Key {
        (
            r.indicator_id.clone(),
            r.basis.clone(),
            r.period.clone(),
            r.area_code.clone(),
            r.sex.clone(),
            r.age_band.clone(),
            r.substance_group.clone(),
        )
    };
    let figures = |r: &IndicatorRow| [r.numerator, r.denominator, r.value, r.lower95, r.upper95];
    let old: HashMap<Key, &IndicatorRow> = before.iter().map(|r| (key(r), r)).collect();
    let new: HashMap<Key, &IndicatorRow> = after.iter().map(|r| (key(r), r)).collect();
    let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    };
    let mut changed = 0;
    for (k, r) in &new {
        if let Some(o) = old.get(k) {
            changed += figures(r)
                .iter()
                .zip(figures(o))
                .filter(|(a, b)| !same(**a, *b))
                .count();
        }
    }
    let added_or_removed = new.keys().filter(|k| !old.contains_key(*k)).count()
        + old.keys().filter(|k| !new.contains_key(*k)).count();
    let note = if prev.run_id == run_id && prev.policy != policy {
        format!(
            "Re-issued from the same run under the {policy} disclosure policy (release {} used {}); counts are withheld or rounded differently, the underlying figures are unchanged.",
            prev.release_id, prev.policy
        )
    } else if changed == 0 && added_or_removed == 0 {
        format!(
            "Re-issued from a later run; every figure is the same as in release {}.",
            prev.release_id
        )
    } else {
        format!(
            "Revised: {changed} published figures differ from release {}, because data arrived or was corrected after it (for example inquests concluded late).",
            prev.release_id
        )
    };
    Revision {
        previous_release: prev.release_id.clone(),
        previous_run_id: prev.run_id.clone(),
        changed_values: changed,
        added_or_removed_rows: added_or_removed,
        note,
    }
}

/// Shared by `render`: the object store the releases and reports live in.
pub(crate) fn object_store(store: &Store) -> Result<Arc<dyn object_store::ObjectStore>, Error> {
    Ok(store.object_store()?)
}
