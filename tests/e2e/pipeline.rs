//! `drdsurv run`, `runs`, `sql` and `alerts` over the demo store.
//!
//! - The run mechanics (lookback, `--only-failed`, the ledger, a run killed between two model
//!   commits) on a staging-only copy of `national_quarterly`, so that they stay quick.
//! - The acceptance run of the national pipeline: every indicator for every area level, the
//!   planted nitazene cluster raised as a candidate signal, few other signals, review status
//!   kept across re-runs, and a re-run giving identical tables; three indicators for four
//!   areas equal an independent recomputation in Python from the raw extracts.

use crate::{demo_store_copy, drdsurv, repo, text};

#[test]
fn run_commits_staging_models_and_sql_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    let s = store.to_str().unwrap();
    // national_quarterly's schedule, grain and lookback, with the staging models only.
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    let spec = std::fs::read_to_string(repo().join("pipelines/national_quarterly.toml"))
        .unwrap()
        .replace("models = [\"*\"]", "models = [\"staging/*\"]");
    assert!(spec.contains("staging/*"));
    std::fs::write(pipelines.join("national_quarterly.toml"), spec).unwrap();
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
    let keys = one(
        "SELECT count(*) FROM (SELECT coroner_area, case_id FROM sources.coroner GROUP BY 1, 2)",
    );
    assert!(staged > 0 && staged <= keys, "{staged} staged, {keys} keys");
    assert_eq!(
        one(
            "SELECT count(*) FROM (SELECT provider_code, client_id, top_date, stage FROM stg_top GROUP BY 1, 2, 3, 4 HAVING count(*) > 1)"
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

/// `drdsurv --store S run PIPELINE --from P --to P` with the shipped pipelines and models;
/// returns the ledger rows it printed.
fn run_pipeline(s: &str, pipeline: &str, period: &str) -> Vec<serde_json::Value> {
    run_pipeline_on(s, "embedded", pipeline, period)
}

/// [`run_pipeline`] on an engine (`--engine ENGINE`).
pub fn run_pipeline_on(
    s: &str,
    engine: &str,
    pipeline: &str,
    period: &str,
) -> Vec<serde_json::Value> {
    let p = repo().join("pipelines");
    let m = repo().join("sql/models");
    let o = drdsurv(&[
        "--store",
        s,
        "--engine",
        engine,
        "run",
        pipeline,
        "--from",
        period,
        "--to",
        period,
        "--pipelines",
        p.to_str().unwrap(),
        "--models",
        m.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "{engine}: {}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sql_csv(s: &str, q: &str) -> Vec<Vec<String>> {
    let o = drdsurv(&["--store", s, "sql", q, "--format", "csv"]);
    assert!(o.status.success(), "{q}: {}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn alerts(s: &str) -> Vec<serde_json::Value> {
    let o = drdsurv(&["--store", s, "alerts", "list", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The areas the independent check recomputes: Lancashire (large: 350 drug-misuse deaths in
/// 2023-2025), Rutland (3 deaths: no rate, and the note), Stockton-on-Tees (its coroner sent an
/// extract and then a revised one that supersedes and withdraws cases) and Northumberland
/// (treated by two providers, one of which also sent two files that are rejected whole).
const CHECKED_AREAS: [&str; 4] = ["E10000017", "E06000017", "E06000004", "E06000057"];

/// Starts `tests/python/independent_indicators.py` over the store's raw inbox.
fn independent_check(store: &std::path::Path) -> std::process::Child {
    std::process::Command::new("python3")
        .arg(repo().join("tests/python/independent_indicators.py"))
        .arg(store.join("inbox"))
        .arg("2025")
        .args(CHECKED_AREAS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 not runnable ({e}); run tests/run.sh"))
}

/// Drug-misuse DSR, the linked in-treatment share and NSP coverage for [`CHECKED_AREAS`] equal
/// the Python recomputation from the raw extracts: counts exactly, values to 1e-9 relative,
/// and a NULL value with the right note where there are too few deaths.
fn matches_the_independent_check(s: &str, check: std::process::Child) {
    let o = check.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let want: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut compared = 0;
    for area in CHECKED_AREAS {
        for id in [
            "drug_misuse_dsr",
            "misuse_deaths_in_treatment_share",
            "nsp_syringes_per_pwid",
        ] {
            let got = sql_csv(
                s,
                &format!(
                    "SELECT numerator, denominator, value, coalesce(note, '') FROM benchmarks \
                     WHERE indicator_id = '{id}' AND area_code = '{area}' AND sex = 'persons' \
                     AND age_band = 'all' AND basis IN ('registration', '')"
                ),
            );
            assert_eq!(got.len(), 1, "{area} {id}: {got:?}");
            let w = &want[area][id];
            let (num, den) = (
                got[0][0].parse::<f64>().unwrap(),
                got[0][1].parse::<f64>().unwrap(),
            );
            assert_eq!(
                num,
                w["numerator"].as_f64().unwrap(),
                "{area} {id} numerator"
            );
            assert_eq!(
                den,
                w["denominator"].as_f64().unwrap(),
                "{area} {id} denominator"
            );
            match w["value"].as_f64() {
                Some(v) => {
                    let g: f64 = got[0][2].parse().unwrap();
                    assert!(
                        (g - v).abs() <= 1e-9 * v.abs().max(1e-300),
                        "{area} {id}: drdsurv {g}, independent {v}"
                    );
                }
                None => assert_eq!(got[0][2], "", "{area} {id}: expected no value"),
            }
            if let Some(note) = w.get("note") {
                assert_eq!(got[0][3], note.as_str().unwrap_or(""), "{area} {id} note");
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 12);
    // The checked areas cover what the acceptance asks for: a rate withheld for too few deaths.
    assert!(want["E06000017"]["drug_misuse_dsr"]["value"].is_null());
    assert!(
        want["E10000017"]["drug_misuse_dsr"]["numerator"]
            .as_f64()
            .unwrap()
            >= 100.0
    );
}

#[test]
fn national_quarterly_benchmarks_every_area_and_raises_the_planted_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    let s = store.to_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("inbox/manifest.json")).unwrap()).unwrap();

    // The independent recomputation from the raw extracts runs alongside the pipeline.
    let check = independent_check(&store);
    let rows = run_pipeline(s, "national_quarterly", "2025Q4");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "committed", "{:?}", rows[0]);
    matches_the_independent_check(s, check);
    // The definitions the run used are recorded.
    assert!(
        rows[0]["definitions"]["case_definitions"]
            .as_str()
            .unwrap()
            .starts_with("reference/case_definitions@v"),
        "{:?}",
        rows[0]["definitions"]
    );

    // Every indicator for all 152 partnerships, the 9 regions, England and every comparator
    // group of the geography.
    let groups: usize = sql_csv(
        s,
        "SELECT count(DISTINCT comparator_group) FROM reference.partnerships",
    )[0][0]
        .parse()
        .unwrap();
    assert!(groups > 1);
    let counts = sql_csv(
        s,
        "SELECT indicator_id, area_type, count(DISTINCT area_code) FROM benchmarks GROUP BY 1, 2 ORDER BY 1, 2",
    );
    let indicators: std::collections::BTreeSet<&str> =
        counts.iter().map(|r| r[0].as_str()).collect();
    for id in [
        "drug_poisoning_dsr",
        "drug_misuse_dsr",
        "drug_misuse_rate_by_age",
        "misuse_deaths_in_treatment_share",
        "misuse_deaths_after_prison_share",
        "deaths_by_substance",
        "treatment_successful_completion",
        "top_abstinent_opiate_crack",
        "top_stopped_injecting",
        "top_stopped_sharing",
        "nsp_syringes_per_pwid",
        "nsp_transactions_per_pwid",
        "registration_delay_median",
        "deaths_still_open_share",
        "nsp_bbv_testing_share",
    ] {
        assert!(indicators.contains(id), "{id} missing: {indicators:?}");
    }
    for r in &counts {
        let want = match r[1].as_str() {
            "partnership" => 152,
            "region" => 9,
            "england" => 1,
            "comparator_group" => groups,
            other => panic!("area type {other}"),
        };
        assert_eq!(r[2].parse::<usize>().unwrap(), want, "{r:?}");
    }
    assert_eq!(counts.len(), indicators.len() * 4, "{counts:?}");

    // The planted nitazene cluster is a candidate signal in its region, within 2 weeks of its
    // first death; at most 5 other signals over the final year.
    let cluster = &manifest["nitazene_cluster"];
    let series = format!("{}/nitazenes", cluster["region_code"].as_str().unwrap());
    let first: chrono::NaiveDate = cluster["first"].as_str().unwrap().parse().unwrap();
    let queued = alerts(s);
    let hits: Vec<&serde_json::Value> = queued
        .iter()
        .filter(|a| {
            let week: chrono::NaiveDate = a["week_start"].as_str().unwrap().parse().unwrap();
            a["series_id"] == series.as_str()
                && week >= first - chrono::Duration::days(6)
                && week <= first + chrono::Duration::days(14)
        })
        .collect();
    assert!(
        !hits.is_empty(),
        "no signal for {series} near {first}: {queued:?}"
    );
    let others = queued
        .iter()
        .filter(|a| a["series_id"] != series.as_str())
        .count();
    assert!(others <= 5, "{others} other signals: {queued:?}");
    assert!(queued.iter().all(|a| a["status"] == "new"));

    // A reviewer's decision survives a re-run that raises the same signal again.
    let id = hits[0]["alert_id"].as_str().unwrap();
    let o = drdsurv(&[
        "--store",
        s,
        "alerts",
        "review",
        id,
        "--status",
        "reviewed",
        "--note",
        "RDIS notified; local alert issued",
        "--by",
        "analyst-1",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = drdsurv(&["--store", s, "alerts", "review", id, "--status", "closed"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a status outside the list is refused"
    );
    let rows = run_pipeline(s, "alerts_weekly", "2025-12");
    assert_eq!(rows[0]["status"], "committed", "{:?}", rows[0]);
    let after = alerts(s);
    let a = after.iter().find(|a| a["alert_id"] == id).unwrap();
    assert_eq!(a["status"], "reviewed");
    assert_eq!(a["note"], "RDIS notified; local alert issued");
    assert_eq!(a["reviewed_by"], "analyst-1");
    assert_eq!(a["last_run_id"], rows[0]["run_id"], "new evidence merged");
    assert_ne!(a["first_run_id"], a["last_run_id"]);
    let o = drdsurv(&["--store", s, "alerts", "list", "--status", "new"]);
    assert!(!text(&o.stdout).contains(id));

    // Re-running the same period gives identical tables, with no duplicates.
    let snapshot =
        |t: &str, cols: &str| sql_csv(s, &format!("SELECT {cols} FROM {t} ORDER BY {cols}"));
    let bench_cols = "indicator_id, basis, area_code, sex, age_band, substance_group, numerator, denominator, value, lower95, upper95, comparison, quintile, trend, bottom_decile, note";
    let before = snapshot("benchmarks", bench_cols);
    let deaths_before = snapshot(
        "mart_deaths",
        "coroner_area, case_id, ons_drug_misuse, linked_in_treatment",
    );
    let rows = run_pipeline(s, "national_quarterly", "2025Q4");
    assert_eq!(rows[0]["status"], "committed");
    assert_eq!(snapshot("benchmarks", bench_cols), before);
    assert_eq!(
        snapshot(
            "mart_deaths",
            "coroner_area, case_id, ons_drug_misuse, linked_in_treatment"
        ),
        deaths_before
    );
}

/// Restating history: a new version of the substance lookup that moves pregabalin out of the
/// gabapentinoids changes exactly the gabapentinoid counts, by the number of deaths whose only
/// implicated gabapentinoid is pregabalin; every other indicator is unchanged, and the ledger
/// records the old and the new substances version.
#[test]
fn reclassifying_a_substance_restates_only_the_counts_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    let s = store.to_str().unwrap();
    let before_run = run_pipeline(s, "national_quarterly", "2025Q4");
    let old_version = before_run[0]["definitions"]["substances"]
        .as_str()
        .unwrap()
        .to_string();
    let england = |where_: &str| {
        sql_csv(
            s,
            &format!(
                "SELECT indicator_id, basis, sex, age_band, substance_group, numerator FROM benchmarks WHERE area_type = 'england' AND {where_} ORDER BY 1, 2, 3, 4, 5"
            ),
        )
    };
    let gaba = |rows: &[Vec<String>]| -> f64 { rows[0][5].parse().unwrap() };
    let gaba_before =
        england("indicator_id = 'deaths_by_substance' AND substance_group = 'gabapentinoids'");
    let others_before = england(
        "NOT (indicator_id = 'deaths_by_substance' AND substance_group = 'gabapentinoids')",
    );
    // The deaths that should move: registered in the window, poisoning, dying after pregabalin
    // became the row being replaced (1 April 2019), with pregabalin (or Lyrica) implicated and
    // no gabapentin (or Neurontin). Counted from the staged raw names, not from the groups.
    let moved: f64 = sql_csv(
        s,
        "SELECT count(*) FROM mart_deaths d JOIN stg_deaths s ON s.coroner_area = d.coroner_area AND s.case_id = d.case_id \
         WHERE d.ons_drug_poisoning AND d.registration_year BETWEEN 2023 AND 2025 AND d.date_of_death >= DATE '2019-04-01' \
         AND regexp_like(lower(array_to_string(s.substances_implicated, '|')), 'pregabalin|lyrica') \
         AND NOT regexp_like(lower(array_to_string(s.substances_implicated, '|')), 'gabapentin|neurontin')",
    )[0][0]
        .parse()
        .unwrap();
    assert!(moved > 0.0, "the fixture has no pregabalin-only deaths");

    let shipped = std::fs::read_to_string(repo().join("reference/substances.csv")).unwrap();
    let line = "pregabalin,lyrica,gabapentinoids,C,,2019-04-01,,Class C from 1 April 2019";
    assert!(shipped.contains(line));
    let changed = shipped.replace(
        line,
        "pregabalin,lyrica,other,C,,2019-04-01,,reclassified for a test",
    );
    let file = dir.path().join("substances_v2.csv");
    std::fs::write(&file, changed).unwrap();
    let o = drdsurv(&[
        "--store",
        s,
        "reference",
        "import",
        "--table",
        "substances",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let after_run = run_pipeline(s, "national_quarterly", "2025Q4");
    let new_version = after_run[0]["definitions"]["substances"].as_str().unwrap();
    assert_ne!(
        new_version, old_version,
        "the ledger records the new version"
    );
    assert!(
        new_version.starts_with("reference/substances@v"),
        "{new_version}"
    );
    let gaba_after =
        england("indicator_id = 'deaths_by_substance' AND substance_group = 'gabapentinoids'");
    assert_eq!(gaba(&gaba_before) - gaba(&gaba_after), moved);
    assert_eq!(
        england(
            "NOT (indicator_id = 'deaths_by_substance' AND substance_group = 'gabapentinoids')"
        ),
        others_before,
        "only the gabapentinoid counts change"
    );
}

#[test]
fn schedule_starts_from_now_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let (p, m) = (repo().join("pipelines"), repo().join("sql/models"));
    let folders = [
        "--pipelines",
        p.to_str().unwrap(),
        "--models",
        m.to_str().unwrap(),
    ];
    // A first start has nothing due: it records each pipeline's start and runs nothing.
    let once = |extra: &[&str]| {
        let mut args = vec!["--store", s, "schedule", "--once"];
        args.extend_from_slice(&folders);
        args.extend_from_slice(extra);
        drdsurv(&args)
    };
    let o = once(&[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "");
    assert!(store.join("scheduler/_delta_log").is_dir());
    let o = once(&["--pipeline", "no_such_pipeline"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no pipeline 'no_such_pipeline'"));

    // The daemon (on a new store) stops on SIGTERM with status 0, once it has started.
    let fresh = dir.path().join("fresh");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_drdsurv"))
        .args([
            "--store",
            fresh.to_str().unwrap(),
            "schedule",
            "--tick-seconds",
            "1",
        ])
        .args(folders)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("first scheduled") {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut log, &mut line).unwrap();
        assert!(n > 0, "the scheduler ended before starting: {seen}");
        seen.push_str(&line);
    }
    let k = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    std::io::Read::read_to_string(&mut log, &mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {seen}");
    assert!(seen.contains("scheduler stopping"), "{seen}");
}
