//! `drdsurv worker`: claims, moves, crashes, shutdown and retries, on local folders and on
//! a real S3 server. Expected counts come from the generator's manifest and from the input
//! files themselves, never from a previous run of drdsurv.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use drd_model::Source;
use drd_store::TableKind;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};

use crate::places::{Place, moto};
use crate::{areas_of, fixture_a, manifest, text};

const KEY: &str = "e2e-test-linkage-key-not-for-production-use";
const FILE: &str = "top/provider-north-east-1/top-extract-2026-01-15.csv";
const SUBMITTER: &str = "provider-north-east-1";

fn rt() -> tokio::runtime::Runtime {
    crate::runtime(2)
}

/// Rows and planted-fault rows of a generated file, from the manifest.
fn expected(file: &str) -> (u64, u64) {
    let m = manifest();
    let rows = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == file)
        .unwrap()["rows"]
        .as_u64()
        .unwrap();
    let mut bad: Vec<u64> = m["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["file"] == file)
        .map(|f| f["row"].as_u64().unwrap())
        .collect();
    bad.sort_unstable();
    bad.dedup();
    (rows, bad.len() as u64)
}

/// A scenario: a store and one inbox at a place, and a config file.
struct Scenario<'p> {
    place: &'p Place,
    prefix: String,
    /// The store URL given to the worker (default: `<prefix>/store` at the place).
    store_url: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl<'p> Scenario<'p> {
    fn new(place: &'p Place, prefix: &str, submitter: &str, worker_toml: &str) -> Scenario<'p> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("drdsurv.toml");
        let areas: Vec<String> = areas_of(submitter)
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        let toml = format!(
            "[worker]\n{worker_toml}\n\n[[submitters]]\nid = \"{submitter}\"\nareas = [{}]\n\n\
             [[inboxes]]\nurl = \"{}\"\nsource = \"top\"\nsubmitter = \"{submitter}\"\n",
            areas.join(", "),
            place.url(&format!("{prefix}/inbox"))
        );
        std::fs::write(&config, toml).unwrap();
        Scenario {
            place,
            prefix: prefix.to_string(),
            store_url: place.url(&format!("{prefix}/store")),
            config,
            _dir: dir,
        }
    }

    fn command(&self, once: bool) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drdsurv"));
        c.args([
            "--store",
            &self.store_url,
            "--config",
            self.config.to_str().unwrap(),
            "worker",
        ]);
        if once {
            c.arg("--once");
        }
        c.env("DRDSURV_LINKAGE_KEY", KEY)
            .env_remove("RUST_LOG")
            .envs(self.place.env());
        c
    }

    fn run_once(&self, crash_at: Option<&str>) -> Output {
        let mut c = self.command(true);
        if let Some(p) = crash_at {
            c.env("DRDSURV_CRASH_AT", p);
        }
        c.output().unwrap()
    }

    fn inbox(&self) -> std::sync::Arc<dyn object_store::ObjectStore> {
        self.place
            .open(&format!("{}/inbox", self.prefix))
            .object_store()
            .unwrap()
    }

    fn put(&self, name: &str, bytes: Vec<u8>) {
        rt().block_on(self.inbox().put(
            &object_store::path::Path::from(name),
            PutPayload::from(bytes),
        ))
        .unwrap();
    }

    /// Every object in the inbox, as paths relative to it.
    fn listing(&self) -> Vec<String> {
        let os = self.inbox();
        rt().block_on(async {
            let v: Vec<object_store::ObjectMeta> = os.list(None).try_collect().await.unwrap();
            let mut names: Vec<String> = v.into_iter().map(|m| m.location.to_string()).collect();
            names.sort();
            names
        })
    }

    /// Receipts stored for the submitter: file SHA-256 → (read, accepted, quarantined).
    /// Each receipt: file SHA-256, rows read, accepted and quarantined, and the source and
    /// quarantine table versions it names (-1 for none).
    fn receipts(&self, submitter: &str) -> Vec<(String, [i64; 3], [i64; 2])> {
        let store = self.place.open(&format!("{}/store", self.prefix));
        let batches = rt()
            .block_on(store.read_table(TableKind::Receipts, Source::Top, submitter))
            .unwrap();
        let mut out = Vec::new();
        for b in batches {
            let sha = arrow::compute::cast(
                b.column_by_name("file_sha256").unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let sha = sha.as_string::<i32>();
            let col = |n: &str| {
                b.column_by_name(n)
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .clone()
            };
            let (r, a, q) = (
                col("rows_read"),
                col("rows_accepted"),
                col("rows_quarantined"),
            );
            let (sv, qv) = (col("source_version"), col("quarantine_version"));
            let or_null = |c: &arrow::array::Int64Array, i: usize| {
                if c.is_null(i) { -1 } else { c.value(i) }
            };
            for i in 0..b.num_rows() {
                out.push((
                    sha.value(i).to_string(),
                    [r.value(i), a.value(i), q.value(i)],
                    [or_null(&sv, i), or_null(&qv, i)],
                ));
            }
        }
        out.sort();
        out
    }

    /// Waits until some worker holds a claim in the inbox.
    fn wait_for_claim(&self) {
        let t = Instant::now();
        while !self.listing().iter().any(|n| n.starts_with(".claims/")) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "worker never claimed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn rows(&self, kind: TableKind, submitter: &str) -> u64 {
        let store = self.place.open(&format!("{}/store", self.prefix));
        rt().block_on(store.read_table(kind, Source::Top, submitter))
            .unwrap()
            .iter()
            .map(|b| b.num_rows() as u64)
            .sum()
    }
}

fn read_fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_a().join(rel)).unwrap()
}

/// Kills `drdsurv worker` at every crash point and at a random moment; after a restart the
/// file is in exactly once: one receipt, exact rows in source and quarantine, file in done/.
fn crash_and_restart(place: &Place) {
    let (rows, bad) = expected(FILE);
    assert!(
        bad > 0 && rows > 5_000,
        "the test file must be large and have faults"
    );
    let name = Path::new(FILE).file_name().unwrap().to_str().unwrap();
    let mut points: Vec<&str> = drd_ingest::fault::POINTS.to_vec();
    points.push("sigkill");
    for point in points {
        let sc = Scenario::new(
            place,
            &format!("kill-{point}"),
            SUBMITTER,
            "lease_seconds = 1\nbatch_rows = 1500\nretry_first_ms = 100",
        );
        sc.put(name, read_fixture(FILE));
        if point == "sigkill" {
            // Kill -9 once the worker holds its claim and is reading and validating the file
            // (the whole file takes well over a second in the test build).
            let mut child = sc
                .command(true)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            sc.wait_for_claim();
            std::thread::sleep(Duration::from_millis(150));
            child.kill().unwrap();
            let st = child.wait().unwrap();
            assert_eq!(st.signal(), Some(9), "{point}: {st:?}");
        } else {
            let o = sc.run_once(Some(point));
            assert_eq!(
                o.status.signal(),
                Some(6),
                "{} {point}: the worker should abort there: {:?}\n{}",
                place.label(),
                o.status,
                text(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(1200)); // the dead worker's lease runs out
        let o = sc.run_once(None);
        assert!(
            o.status.success(),
            "{} {point}: restart failed: {}",
            place.label(),
            text(&o.stderr)
        );
        let receipts = sc.receipts(SUBMITTER);
        assert_eq!(
            receipts.len(),
            1,
            "{} {point}: one receipt: {receipts:?}",
            place.label()
        );
        assert_eq!(
            receipts[0].1,
            [rows as i64, (rows - bad) as i64, bad as i64],
            "{} {point}: receipt counts",
            place.label()
        );
        // The receipt names the versions that hold the file's rows even when an earlier,
        // crashed attempt committed them (one file: the tables' newest versions).
        let newest = |kind| {
            let store = place.open(&format!("{}/store", sc.prefix));
            let rel = drd_store::table_path(kind, Source::Top, SUBMITTER);
            rt().block_on(store.table_info(&rel))
                .unwrap()
                .unwrap()
                .version as i64
        };
        assert_eq!(
            receipts[0].2,
            [newest(TableKind::Sources), newest(TableKind::Quarantine)],
            "{} {point}: receipt table versions",
            place.label()
        );
        assert_eq!(
            sc.rows(TableKind::Sources, SUBMITTER),
            rows - bad,
            "{} {point}: source rows",
            place.label()
        );
        assert_eq!(
            sc.rows(TableKind::Quarantine, SUBMITTER),
            bad,
            "{} {point}: quarantine rows",
            place.label()
        );
        assert_eq!(
            sc.listing(),
            vec![format!("done/{name}")],
            "{} {point}: the file is in done/, no claim is left",
            place.label()
        );
    }
}

#[test]
fn worker_crash_at_every_point_then_restart_is_exact_on_local_files() {
    crash_and_restart(&Place::local());
}

#[test]
fn worker_crash_at_every_point_then_restart_is_exact_on_s3() {
    crash_and_restart(&Place::s3("kill"));
}

/// Two workers on one inbox of 50 files: each file is ingested exactly once.
fn two_workers(place: &Place) {
    let sc = Scenario::new(place, "two", SUBMITTER, "batch_rows = 4096");
    let content = String::from_utf8(read_fixture(FILE)).unwrap();
    let mut lines = content.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    let (rows, _) = expected(FILE);
    assert_eq!(body.len() as u64, rows, "one line per row in this file");
    let per = body.len().div_ceil(50);
    let mut names = Vec::new();
    for (i, chunk) in body.chunks(per).enumerate() {
        let name = format!("part-{i:02}.csv");
        sc.put(
            &name,
            format!("{header}\n{}\n", chunk.join("\n")).into_bytes(),
        );
        names.push(name);
    }
    assert_eq!(names.len(), 50);
    let a = sc
        .command(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = sc
        .command(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&oa, &ob] {
        assert!(o.status.success(), "{}: {}", place.label(), text(&o.stderr));
    }
    let printed: Vec<serde_json::Value> = text(&oa.stdout)
        .lines()
        .chain(text(&ob.stdout).lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        printed.len(),
        50,
        "{}: 50 receipts between the two workers",
        place.label()
    );
    assert!(
        printed.iter().all(|r| r["status"] == "accepted"),
        "no file seen twice"
    );
    let stored = sc.receipts(SUBMITTER);
    let mut per_sha: BTreeMap<&str, usize> = BTreeMap::new();
    for (sha, _, _) in &stored {
        *per_sha.entry(sha).or_default() += 1;
    }
    assert_eq!(per_sha.len(), 50);
    assert!(
        per_sha.values().all(|&n| n == 1),
        "each file has exactly one receipt"
    );
    let sum = |i: usize| stored.iter().map(|(_, c, _)| c[i]).sum::<i64>() as u64;
    assert_eq!(sum(0), rows, "every row read once");
    assert_eq!(sum(1) + sum(2), rows);
    assert_eq!(sc.rows(TableKind::Sources, SUBMITTER), sum(1));
    assert_eq!(sc.rows(TableKind::Quarantine, SUBMITTER), sum(2));
    let want: Vec<String> = names.iter().map(|n| format!("done/{n}")).collect();
    assert_eq!(
        sc.listing(),
        want,
        "all 50 in done/, nothing left in the inbox, no claims"
    );
}

#[test]
fn two_workers_ingest_fifty_files_exactly_once_on_local_files() {
    two_workers(&Place::local());
}

#[test]
fn two_workers_ingest_fifty_files_exactly_once_on_s3() {
    two_workers(&Place::s3("two"));
}

/// Waits until the worker's stderr shows a line containing `needle`; returns the lines so far
/// and keeps draining the rest in the background.
fn wait_for_line(child: &mut Child, needle: &str) -> std::sync::mpsc::Receiver<String> {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let t = Instant::now();
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(120).saturating_sub(t.elapsed()))
            .unwrap_or_else(|_| panic!("no line containing '{needle}'"));
        if l.contains(needle) {
            return rx;
        }
    }
}

/// Starts the worker as a daemon, sends SIGTERM as soon as it holds a claim, and checks it
/// exits cleanly.
fn term_once_claimed(sc: &Scenario<'_>) {
    let mut child = sc
        .command(false)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
    let _rest = wait_for_line(&mut child, "worker started");
    sc.wait_for_claim();
    sigterm(&child);
    let st = child.wait().unwrap();
    assert!(st.success(), "clean exit on SIGTERM: {st:?}");
}

fn sigterm(child: &Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// SIGTERM mid-file: with no grace the file is abandoned cleanly (claim released, nothing
/// half-visible, the next run completes it once); with grace it is finished first.
#[test]
fn sigterm_abandons_or_finishes_the_current_file_cleanly() {
    let file = "top/provider-north-west-3/top-extract-2026-01-15.csv.gz";
    let submitter = "provider-north-west-3";
    let (rows, bad) = expected(file);
    let place = Place::local();
    let name = Path::new(file).file_name().unwrap().to_str().unwrap();

    let sc = Scenario::new(
        &place,
        "term0",
        submitter,
        "grace_seconds = 0\nbatch_rows = 1000\npoll_seconds = 0.2",
    );
    sc.put(name, read_fixture(file));
    term_once_claimed(&sc);
    assert_eq!(
        sc.listing(),
        vec![name.to_string()],
        "abandoned: file still in the inbox, claim released"
    );
    assert!(
        sc.receipts(submitter).is_empty(),
        "no receipt for an abandoned file"
    );
    let o = sc.run_once(None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(sc.receipts(submitter).len(), 1);
    assert_eq!(sc.rows(TableKind::Sources, submitter), rows - bad);
    assert_eq!(sc.rows(TableKind::Quarantine, submitter), bad);

    let sc = Scenario::new(
        &place,
        "term60",
        submitter,
        "grace_seconds = 120\nbatch_rows = 1000\npoll_seconds = 0.2",
    );
    sc.put(name, read_fixture(file));
    term_once_claimed(&sc);
    assert_eq!(
        sc.listing(),
        vec![format!("done/{name}")],
        "finished within the grace period"
    );
    let r = sc.receipts(submitter);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, [rows as i64, (rows - bad) as i64, bad as i64]);
}

/// A store that fails (its bucket does not exist yet) is retried with capped backoff; once
/// the bucket appears the file goes in, once.
#[test]
fn store_errors_are_retried_until_the_store_recovers() {
    let m = moto();
    let bucket = format!("late-{}", std::process::id());
    let place = Place::local();
    let mut sc = Scenario::new(
        &place,
        "retry",
        SUBMITTER,
        "retry_first_ms = 200\nretry_cap_seconds = 0.4\nretry_attempts = 200",
    );
    sc.store_url = format!("s3://{bucket}/store");
    let name = Path::new(FILE).file_name().unwrap().to_str().unwrap();
    sc.put(name, read_fixture(FILE));
    let mut child = sc
        .command(true)
        .env("RUST_LOG", "warn")
        .envs(m.settings())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rest = wait_for_line(&mut child, "retrying");
    // The store comes back.
    let made = Place::S3(m.bucket_named(&bucket));
    let st = child.wait().unwrap();
    let log: Vec<String> = rest.try_iter().collect();
    assert!(st.success(), "{st:?}: {}", log.join("\n"));
    let store = made.open("store");
    let count = |kind| -> u64 {
        rt().block_on(store.read_table(kind, Source::Top, SUBMITTER))
            .unwrap()
            .iter()
            .map(|b| b.num_rows() as u64)
            .sum()
    };
    let (rows, bad) = expected(FILE);
    assert_eq!(count(TableKind::Receipts), 1);
    assert_eq!(count(TableKind::Sources), rows - bad);
    assert_eq!(count(TableKind::Quarantine), bad);
    assert_eq!(sc.listing(), vec![format!("done/{name}")]);
}

/// A worker pass over an inbox holding a good file and two files that must be rejected
/// whole: the good one goes to done/, the others to rejected/ with their receipts beside
/// them, nothing of them is written, and `--once` exits 2.
#[test]
fn rejected_files_move_to_rejected_with_their_receipts() {
    let submitter = "provider-north-east-2";
    let place = Place::local();
    let sc = Scenario::new(&place, "rej", submitter, "");
    let dir = "top/provider-north-east-2";
    for name in [
        "top-extract-2026-01-15.csv",
        "late-submission-missing-column.csv",
        "top-extract-corrupt.ndjson",
    ] {
        sc.put(name, read_fixture(&format!("{dir}/{name}")));
    }
    let o = sc.run_once(None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(
        sc.listing(),
        vec![
            "done/top-extract-2026-01-15.csv",
            "rejected/late-submission-missing-column.csv",
            "rejected/late-submission-missing-column.csv.receipt.json",
            "rejected/top-extract-corrupt.ndjson",
            "rejected/top-extract-corrupt.ndjson.receipt.json",
        ]
    );
    let os = sc.inbox();
    let get = |p: &str| {
        let bytes = rt()
            .block_on(async {
                os.get(&object_store::path::Path::from(p))
                    .await
                    .unwrap()
                    .bytes()
                    .await
            })
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    let r = get("rejected/late-submission-missing-column.csv.receipt.json");
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["reason"], "missing_required_column");
    let r = get("rejected/top-extract-corrupt.ndjson.receipt.json");
    assert_eq!(r["reason"], "unreadable_file");
    let (rows, bad) = expected(&format!("{dir}/top-extract-2026-01-15.csv"));
    let receipts = sc.receipts(submitter);
    assert_eq!(receipts.len(), 1, "only the good file has a stored receipt");
    assert_eq!(sc.rows(TableKind::Sources, submitter), rows - bad);
}
