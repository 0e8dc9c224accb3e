//! `--engine` for `sql`: a query over the store's current views and reference tables (a join,
//! an aggregate and a drdsurv function) gives the same rows embedded, on Ballista standalone
//! (`--engine ballista:standalone`), and on a cluster of separate drdsurv processes
//! (`drdsurv ballista-scheduler` and `drdsurv ballista-executor`, `--engine
//! ballista://HOST:PORT`). On Ballista, Delta versions are read as listing tables over their
//! files, so this also checks that nothing is lost or duplicated in that translation.
//!
//! Known gap (issue 6): `run` with a Ballista engine does not finish. The staging models
//! stg_deaths and stg_nsp complete and are written, but stg_top's job grew past 5,000
//! stages in 10 minutes on the small demo; not diagnosed yet, so no run is tested here.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{demo_store, drdsurv, text};

const QUERY: &str = "SELECT r.region_code, c.sex, count(*) AS cases, \
    wilson_lower(count(*), 100000, 0.95) AS lower95, count(DISTINCT c.case_id) AS distinct_cases \
    FROM current_coroner c JOIN ref_partnerships r ON r.code = c.residence_area \
    GROUP BY r.region_code, c.sex ORDER BY r.region_code, c.sex";

/// `sql QUERY --format csv` on `engine`.
fn csv(store: &Path, engine: &str, query: &str) -> String {
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
    let embedded = csv(store, "embedded", query);
    let lines: Vec<&str> = embedded.lines().filter(|l| !l.is_empty()).collect();
    // Nine regions, two or three sexes each, and every case counted once.
    assert!(lines.len() > 18, "{embedded}");
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[2], f[4], "a case counted twice: {l}");
    }
    assert_eq!(csv(store, "ballista:standalone", query), embedded);

    let cluster = Cluster::start(store);
    assert_eq!(csv(store, &cluster.engine(), query), embedded);

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
