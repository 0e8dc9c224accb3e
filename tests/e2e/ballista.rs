//! The national models on Ballista standalone (`--engine ballista:standalone`: an in-process
//! scheduler and executor with every drdsurv function) store the same tables as embedded
//! DataFusion.
//!
//! One demo store, one period, two runs of the whole `national_quarterly` pipeline: first
//! embedded, then on Ballista. The second run must commit a new version of every table, so the
//! comparison is never of a table with itself. Every model's two versions are then read back by
//! delta-rs and pyarrow (`tests/python/compare_versions.py`) and compared row by row: text,
//! integers, booleans, dates and lists exactly, floating-point values to 1e-9 relative (a
//! distributed sum may add in another order). The models include the `dsr` aggregate
//! (`ind_death_rates`), window functions (`row_number` in the current views and `benchmarks`,
//! the EARS and Farrington window functions in `alert_signals`) and Ballista's shuffles between
//! them.
//!
//! A cluster of separate processes (`drdsurv ballista-scheduler` and `drdsurv
//! ballista-executor`, `--engine ballista://HOST:PORT`) answers a query over the current views
//! and a reference table (a join, an aggregate and a drdsurv function) exactly as embedded and
//! standalone do.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{demo_store, demo_store_copy, drdsurv, repo, text};

/// `run national_quarterly --from P --to P` on `engine`; returns the ledger row.
fn run(s: &str, engine: &str, period: &str) -> Value {
    let rows = crate::pipeline::run_pipeline_on(s, engine, "national_quarterly", period);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "committed", "{engine}: {:?}", rows[0]);
    rows.into_iter().next().unwrap()
}

/// Each model's output version in a ledger row.
fn versions(row: &Value) -> BTreeMap<String, i64> {
    row["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap().to_string(),
                m["version"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn national_models_on_ballista_standalone_equal_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    let s = store.to_str().unwrap();

    let embedded = versions(&run(s, "embedded", "2025Q4"));
    for needed in [
        "ind_death_rates",
        "indicators",
        "benchmarks",
        "alert_signals",
    ] {
        assert!(embedded.contains_key(needed), "{needed} did not run");
    }
    let ballista = versions(&run(s, "ballista:standalone", "2025Q4"));
    assert_eq!(
        ballista.keys().collect::<Vec<_>>(),
        embedded.keys().collect::<Vec<_>>()
    );
    // Every table the Ballista run committed is a new version, compared with the embedded one.
    let mut pairs = serde_json::Map::new();
    for (model, e) in &embedded {
        let b = ballista[model];
        assert!(
            b > *e,
            "{model}: the Ballista run wrote version {b}, embedded {e}"
        );
        pairs.insert(model.clone(), serde_json::json!([e, b]));
    }
    // Read back by delta-rs and pyarrow, not by drdsurv.
    let o = Command::new("python3")
        .arg(repo().join("tests/python/compare_versions.py"))
        .arg(&store)
        .arg(Value::Object(pairs).to_string())
        .output()
        .unwrap_or_else(|e| panic!("python3 not runnable ({e}); run tests/run.sh"));
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    let total: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("total "))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // The demo's national run is not small: the comparison covers real volumes, and real death
    // rates (not only suppressed ones).
    assert!(total > 500_000, "only {total} rows compared:\n{out}");
    let o = drdsurv(&[
        "--store",
        s,
        "sql",
        "SELECT count(*) FROM ind_death_rates WHERE value IS NOT NULL",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rates: usize = text(&o.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(rates > 1000, "only {rates} death rates with a value");
}

const QUERY: &str = "SELECT r.region_code, c.sex, count(*) AS cases, \
    wilson_lower(count(*), 100000, 0.95) AS lower95, count(DISTINCT c.case_id) AS distinct_cases \
    FROM sources.current_coroner c JOIN reference.partnerships r ON r.code = c.residence_area \
    GROUP BY r.region_code, c.sex ORDER BY r.region_code, c.sex";

/// `sql QUERY --format csv` on `engine`.
fn sql_csv(store: &Path, engine: &str, query: &str) -> String {
    let o = drdsurv(&[
        "--store",
        store.to_str().unwrap(),
        "--engine",
        engine,
        "sql",
        query,
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{engine}: {}", text(&o.stderr));
    text(&o.stdout)
}

#[test]
fn sql_on_ballista_standalone_and_on_a_cluster_equals_embedded() {
    let store = demo_store();
    let query = QUERY;
    let embedded = sql_csv(store, "embedded", query);
    let lines: Vec<&str> = embedded.lines().filter(|l| !l.is_empty()).collect();
    // Nine regions, two or three sexes each, and every case counted once.
    assert!(lines.len() > 18, "{embedded}");
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[2], f[4], "a case counted twice: {l}");
    }
    assert_eq!(sql_csv(store, "ballista:standalone", query), embedded);

    let cluster = Cluster::start(store);
    assert_eq!(sql_csv(store, &cluster.engine(), query), embedded);

    // A bad engine is a usage error.
    let o = drdsurv(&["--engine", "ballista://nohost", "sql", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

/// A Ballista scheduler and one executor, as drdsurv processes on free loopback ports; both
/// are killed when dropped.
struct Cluster {
    scheduler: Child,
    executor: Child,
    port: u16,
    _work: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start(store: &Path) -> Cluster {
        let bin = env!("CARGO_BIN_EXE_drdsurv");
        let s = store.to_str().unwrap();
        let port = free_port();
        let scheduler = Command::new(bin)
            .args(["--store", s, "ballista-scheduler", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--external-host", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the scheduler did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let work = tempfile::tempdir().unwrap();
        let executor = Command::new(bin)
            .args(["--store", s, "ballista-executor", "--bind"])
            .arg(format!("127.0.0.1:{}", free_port()))
            .args(["--grpc-port", &free_port().to_string()])
            .args(["--external-host", "127.0.0.1"])
            .args(["--scheduler", &format!("127.0.0.1:{port}")])
            .args([
                "--concurrent-tasks",
                "2",
                "--work-dir",
                work.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Cluster {
            scheduler,
            executor,
            port,
            _work: work,
        }
    }

    fn engine(&self) -> String {
        format!("ballista://127.0.0.1:{}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.executor.kill();
        let _ = self.scheduler.kill();
        let _ = self.executor.wait();
        let _ = self.scheduler.wait();
    }
}
