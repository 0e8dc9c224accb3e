//! `drdsurv run`, `runs` and `sql` over a demo store: the shipped staging models commit, the
//! ledger lists every run, and `sql` reads the marts through the last committed run.

use crate::{drdsurv, repo, text};

#[test]
fn run_commits_staging_models_and_sql_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let o = drdsurv(&["--store", s, "demo", "--years", "2"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let pipelines = repo().join("pipelines");
    let models = repo().join("sql/models");
    let (p, m) = (pipelines.to_str().unwrap(), models.to_str().unwrap());
    // `drdsurv --store S run national_quarterly ARGS --pipelines P --models M`, as a command
    // (so one call can add an environment variable).
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_drdsurv"));
        c.args(["--store", s, "run", "national_quarterly"])
            .args(args)
            .args(["--pipelines", p, "--models", m])
            .env_remove("RUST_LOG");
        c
    };
    let o = run(&["--period", "2025Q4"]).output().unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let rows: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Lookback 4: the quarter and the four before it, oldest first, each committed.
    let periods: Vec<&str> = rows.iter().map(|r| r["period"].as_str().unwrap()).collect();
    assert_eq!(
        periods,
        vec!["2024Q4", "2025Q1", "2025Q2", "2025Q3", "2025Q4"]
    );
    assert!(rows.iter().all(|r| r["status"] == "committed"), "{rows:?}");
    let models_run: Vec<&str> = rows[0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(models_run, vec!["stg_deaths", "stg_nsp", "stg_top"]);

    // --only-failed skips periods whose last run committed.
    let o = run(&["--from", "2025Q3", "--to", "2025Q4", "--only-failed"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().count(), 0, "{}", text(&o.stdout));

    // The ledger lists them.
    let o = drdsurv(&[
        "--store",
        s,
        "runs",
        "--pipeline",
        "national_quarterly",
        "--last",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.contains("\tcommitted\t")), "{out}");

    // sql sees the committed marts and the sources; staging holds each key once, and no
    // more rows than the sources hold.
    let one = |q: &str| -> i64 {
        let o = drdsurv(&["--store", s, "sql", q, "--format", "csv"]);
        assert!(o.status.success(), "{q}: {}", text(&o.stderr));
        text(&o.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let staged = one("SELECT count(*) FROM stg_deaths");
    let keys = one("SELECT count(DISTINCT (coroner_area, case_id)) FROM sources_coroner");
    assert!(staged > 0 && staged <= keys, "{staged} staged, {keys} keys");
    assert_eq!(
        one(
            "SELECT count(*) - count(DISTINCT (provider_code, client_id, top_date, stage)) FROM stg_top"
        ),
        0
    );
    assert!(one("SELECT count(*) FROM stg_nsp") > 0);

    // Killed between two model commits: stg_deaths and stg_nsp get new versions, the run
    // never reaches the ledger, and readers still see the last committed run.
    let before = one("SELECT count(*) FROM stg_deaths");
    let versions = |t: &str| {
        std::fs::read_dir(store.join("marts").join(t).join("_delta_log"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
    };
    let (nsp_v, top_v) = (versions("stg_nsp"), versions("stg_top"));
    let ledger_before = text(&drdsurv(&["--store", s, "runs"]).stdout)
        .lines()
        .count();
    let o = run(&["--from", "2026Q1", "--to", "2026Q1"])
        .env("DRDSURV_FAULT", "after_model:stg_nsp")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(86), "{}", text(&o.stderr));
    assert_eq!(
        versions("stg_nsp"),
        nsp_v + 1,
        "the killed run wrote stg_nsp"
    );
    assert_eq!(
        versions("stg_top"),
        top_v,
        "the killed run stopped before stg_top"
    );
    assert_eq!(
        text(&drdsurv(&["--store", s, "runs"]).stdout)
            .lines()
            .count(),
        ledger_before
    );
    assert_eq!(one("SELECT count(*) FROM stg_deaths"), before);
    // Re-running commits cleanly.
    let o = run(&["--from", "2026Q1", "--to", "2026Q1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("\"status\":\"committed\""));
    assert_eq!(one("SELECT count(*) FROM stg_deaths"), before);

    // A query never creates a store.
    let absent = dir.path().join("no-store-here");
    let o = drdsurv(&["--store", absent.to_str().unwrap(), "sql", "SELECT 1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!absent.exists(), "sql created {}", absent.display());
}
