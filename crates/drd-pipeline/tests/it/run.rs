//! Runs, the ledger, and what readers see: a failing blocking test leaves every mart as the
//! last committed run left it; a re-run commits cleanly and gives the same tables.

use std::path::{Path, PathBuf};

use datafusion::prelude::SessionContext;
use drd_engine::models::Project;
use drd_model::period::Period;
use drd_pipeline::run::{committed_outputs, read_ledger, register_committed_marts, run_models};
use drd_store::Store;

pub(crate) struct Dir(PathBuf);

impl Dir {
    pub(crate) fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("drdsurv-run-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn model(&self, layer: &str, name: &str, sql: &str, toml: &str) {
        let l = self.0.join(layer);
        std::fs::create_dir_all(&l).unwrap();
        std::fs::write(l.join(format!("{name}.sql")), sql).unwrap();
        std::fs::write(l.join(format!("{name}.toml")), toml).unwrap();
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) const COUNTS_OK: &str = "SELECT 'E1' AS area, 3 AS n UNION ALL SELECT 'E2', 5";
pub(crate) const COUNTS_BAD: &str =
    "SELECT 'E1' AS area, 3 AS n UNION ALL SELECT CAST(NULL AS VARCHAR), 5";
const NOT_NULL: &str = "[[tests]]\ntype = \"not_null\"\ncolumns = [\"area\"]\nblocking = true\n";

pub(crate) fn project(d: &Dir, counts: &str) -> Project {
    d.model(
        "staging",
        "stg_nsp",
        "SELECT count(*) AS n FROM sources_nsp",
        "materialisation = \"view\"",
    );
    d.model("marts", "counts", counts, NOT_NULL);
    d.model(
        "indicators",
        "ind",
        "SELECT c.area, c.n * 2 AS v, p.period FROM counts c CROSS JOIN run_params p",
        "[[tests]]\ntype = \"unique\"\ncolumns = [\"area\"]\nblocking = true\n",
    );
    Project::load(d.path()).unwrap()
}

async fn read(store: &Store, sql: &str) -> Vec<String> {
    let ctx = SessionContext::new();
    register_committed_marts(store, &ctx).await.unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    text.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn a_failed_run_leaves_readers_on_the_last_committed_run() {
    let store = Store::open("memory://run-ledger").unwrap();
    let d = Dir::new("ledger");
    let p = project(&d, COUNTS_OK);
    let order = p.select(&["*".into()]).unwrap();
    assert_eq!(order, vec!["stg_nsp", "counts", "ind"]);
    let period = Period::Quarter(2026, 3);

    let r1 = run_models(&store, &p, &order, "test", period, "run-1")
        .await
        .unwrap();
    assert_eq!(r1.status, "committed", "{:?}", r1.error);
    let first = read(&store, "SELECT area, v, period FROM ind ORDER BY area").await;
    assert!(
        first
            .iter()
            .any(|l| l.contains("E1") && l.contains("6") && l.contains("2026Q3")),
        "{first:?}"
    );

    // A run whose blocking test fails: the model was written, but nobody reads it.
    let p_bad = project(&d, COUNTS_BAD);
    let r2 = run_models(&store, &p_bad, &order, "test", period, "run-2")
        .await
        .unwrap();
    assert_eq!(r2.status, "failed");
    assert!(
        r2.error
            .as_deref()
            .unwrap()
            .contains("blocking test not_null(area) of counts failed on 1 rows"),
        "{:?}",
        r2.error
    );
    assert_eq!(
        r2.tests
            .iter()
            .find(|t| t.model == "counts")
            .unwrap()
            .sample
            .len(),
        1
    );
    let newest = store
        .table_info("marts/counts")
        .await
        .unwrap()
        .unwrap()
        .version as i64;
    let committed = committed_outputs(&store).await.unwrap();
    assert!(
        newest > committed["counts"].0,
        "the failed run wrote a newer version"
    );
    assert_eq!(committed["counts"].1, "run-1");
    assert_eq!(
        read(&store, "SELECT area, v, period FROM ind ORDER BY area").await,
        first
    );
    let nulls = read(
        &store,
        "SELECT count(*) AS nulls FROM counts WHERE area IS NULL",
    )
    .await;
    assert!(nulls.iter().any(|l| l.contains("| 0 ")), "{nulls:?}");

    // Re-running the good models commits cleanly and gives identical tables.
    let r3 = run_models(&store, &p, &order, "test", period, "run-3")
        .await
        .unwrap();
    assert_eq!(r3.status, "committed");
    assert_eq!(
        read(&store, "SELECT area, v, period FROM ind ORDER BY area").await,
        first
    );
    let ledger = read_ledger(&store).await.unwrap();
    let statuses: Vec<(&str, &str)> = ledger
        .iter()
        .map(|r| (r.run_id.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("run-1", "committed"),
            ("run-2", "failed"),
            ("run-3", "committed")
        ]
    );
    assert_eq!(committed_outputs(&store).await.unwrap()["ind"].1, "run-3");
}

#[tokio::test]
async fn a_model_error_fails_the_run_and_names_the_model() {
    let store = Store::open("memory://run-error").unwrap();
    let d = Dir::new("error");
    d.model(
        "marts",
        "broken",
        "SELECT no_such_column FROM sources_top",
        "",
    );
    let p = Project::load(d.path()).unwrap();
    let r = run_models(
        &store,
        &p,
        &["broken".into()],
        "test",
        Period::Year(2025),
        "run-x",
    )
    .await
    .unwrap();
    assert_eq!(r.status, "failed");
    let e = r.error.unwrap();
    assert!(
        e.starts_with("model broken: ") && e.contains("no_such_column"),
        "{e}"
    );
    assert!(committed_outputs(&store).await.unwrap().is_empty());
}

/// A history model materialised by period, after `counts`, and a model after it whose
/// blocking test fails when `fail` is set.
fn history_project(d: &Dir, fail: bool) -> Project {
    d.model("marts", "counts", COUNTS_OK, "materialisation = \"view\"");
    d.model(
        "indicators",
        "hist",
        "SELECT p.period, c.area, c.n FROM counts c CROSS JOIN run_params p",
        "materialisation = \"overwrite_by_period\"\nperiod_column = \"period\"\n",
    );
    d.model(
        "benchmarks",
        "after",
        if fail {
            "SELECT CAST(NULL AS VARCHAR) AS area FROM hist"
        } else {
            "SELECT area FROM hist"
        },
        NOT_NULL,
    );
    Project::load(d.path()).unwrap()
}

#[tokio::test]
async fn overwrite_by_period_replaces_the_runs_period_and_keeps_the_committed_others() {
    let store = Store::open("memory://run-by-period").unwrap();
    let (good, bad) = (Dir::new("by-period-good"), Dir::new("by-period-bad"));
    let (p, p_bad) = (history_project(&good, false), history_project(&bad, true));
    let order = p.select(&["*".into()]).unwrap();
    let run = |p: &Project, period: Period, id: &str| {
        let (p, order) = (p.clone(), order.clone());
        let (store, id) = (store.clone(), id.to_string());
        async move {
            run_models(&store, &p, &order, "hist", period, &id)
                .await
                .unwrap()
        }
    };
    let periods = || async {
        read(
            &store,
            "SELECT period, count(*) AS n FROM hist GROUP BY period ORDER BY period",
        )
        .await
        .into_iter()
        .filter(|l| l.contains("2026Q"))
        .map(|l| {
            l.split_whitespace()
                .filter(|w| *w != "|")
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
    };
    assert_eq!(
        run(&p, Period::Quarter(2026, 1), "r1").await.status,
        "committed"
    );
    assert_eq!(
        run(&p, Period::Quarter(2026, 2), "r2").await.status,
        "committed"
    );
    assert_eq!(periods().await, vec!["2026Q1 2", "2026Q2 2"]);
    // Re-running a period replaces its rows: no duplicates.
    assert_eq!(
        run(&p, Period::Quarter(2026, 1), "r3").await.status,
        "committed"
    );
    assert_eq!(periods().await, vec!["2026Q1 2", "2026Q2 2"]);
    // A failed run writes its period into a new version of hist, which is never committed;
    // the next run builds on the committed rows, so the failed period never appears.
    let failed = run(&p_bad, Period::Quarter(2026, 3), "r4").await;
    assert_eq!(failed.status, "failed", "{:?}", failed.error);
    assert_eq!(periods().await, vec!["2026Q1 2", "2026Q2 2"]);
    assert_eq!(
        run(&p, Period::Quarter(2026, 4), "r5").await.status,
        "committed"
    );
    assert_eq!(periods().await, vec!["2026Q1 2", "2026Q2 2", "2026Q4 2"]);
}

#[tokio::test]
async fn overwrite_by_period_refuses_rows_of_another_period_and_a_missing_column() {
    let store = Store::open("memory://run-by-period-bad").unwrap();
    let d = Dir::new("by-period-wrong");
    d.model(
        "marts",
        "hist",
        "SELECT '2020Q1' AS period, 1 AS n",
        "materialisation = \"overwrite_by_period\"\nperiod_column = \"period\"\n",
    );
    let p = Project::load(d.path()).unwrap();
    let r = run_models(
        &store,
        &p,
        &["hist".into()],
        "t",
        Period::Quarter(2026, 1),
        "w1",
    )
    .await
    .unwrap();
    assert_eq!(r.status, "failed");
    let e = r.error.unwrap();
    assert!(e.contains("period = 2020Q1 in a run for 2026Q1"), "{e}");

    let d = Dir::new("by-period-nocol");
    d.model(
        "marts",
        "hist",
        "SELECT 1 AS n",
        "materialisation = \"overwrite_by_period\"\n",
    );
    let e = Project::load(d.path()).unwrap_err().to_string();
    assert!(e.contains("needs period_column"), "{e}");
}
