//! Issue 7: the demo as the whole main job, publication with disclosure control, the reports
//! and their checks in a real browser, and `serve --http`.
//!
//! One fixture: a copy of the ingested demo store on which `demo` runs again (so it runs the
//! pipeline, publishes and renders, and finds every file already ingested), then once more
//! (nothing changes but timestamps), then `publish --policy secondary` makes a second release.
//! The checks of published files and pages are independent programs: Python (pyarrow,
//! delta-rs, html.parser) and Node (playwright-core driving /usr/bin/chromium, axe-core).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::{demo_store_copy, drdsurv, repo, text};

const PERIOD: &str = "2025Q4";

pub(crate) struct Reported {
    _dir: tempfile::TempDir,
    pub(crate) store: PathBuf,
    first: String,
    second: String,
    /// Two reports' HTML after the first demo, to compare with the second's.
    before: Vec<(String, String)>,
    secondary: serde_json::Value,
}

pub(crate) fn reported() -> &'static Reported {
    static R: OnceLock<Reported> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = demo_store_copy(dir.path());
        let s = store.to_str().unwrap();
        let demo = || {
            let o = Command::new(env!("CARGO_BIN_EXE_drdsurv"))
                .args(["--store", s, "demo"])
                .current_dir(repo())
                .env_remove("RUST_LOG")
                .output()
                .unwrap();
            assert!(o.status.success(), "demo failed: {}", text(&o.stderr));
            text(&o.stdout)
        };
        let first = demo();
        let before = ["E06000001", "E09000033"]
            .iter()
            .map(|a| {
                let p = store.join(format!("reports/{PERIOD}/{a}/index.html"));
                (a.to_string(), std::fs::read_to_string(p).unwrap())
            })
            .collect();
        let second = demo();
        let o = drdsurv(&[
            "--store",
            s,
            "publish",
            "--period",
            PERIOD,
            "--policy",
            "secondary",
        ]);
        assert!(o.status.success(), "publish secondary: {}", text(&o.stderr));
        let secondary = serde_json::from_str(text(&o.stdout).trim()).unwrap();
        Reported {
            _dir: dir,
            store,
            first,
            second,
            before,
            secondary,
        }
    })
}

/// A private copy of the reported store in `dir` (its path is returned), for tests that write.
pub(crate) fn reported_copy(dir: &Path) -> PathBuf {
    let to = dir.join("store");
    let o = Command::new("cp")
        .arg("-a")
        .arg(&reported().store)
        .arg(&to)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    to
}

fn python(args: &[&str]) -> String {
    let o = Command::new("python3")
        .arg(repo().join("tests/python/report_checks.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "report_checks.py {args:?}: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn areas(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("reports").join(PERIOD))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_type()
                .unwrap()
                .is_dir()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    v.sort();
    v
}

/// The page without the one line that changes between renders.
fn without_timestamp(html: &str) -> String {
    html.lines()
        .map(|l| match l.find(" · rendered ") {
            Some(i) => l[..i].to_string(),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn demo_runs_the_whole_job_and_a_second_demo_changes_nothing() {
    let r = reported();
    for want in [
        "run: national_quarterly for 2025Q4 committed",
        "publish: release 2025Q4-r1",
        "partnerships reported: 152",
        "time per stage: generate",
        "national index: ",
    ] {
        assert!(
            r.first.contains(want),
            "first demo lacks {want:?}:\n{}",
            r.first
        );
    }
    // The store was already ingested: every file is a duplicate.
    assert!(r.first.contains(" 0 accepted"), "{}", r.first);
    let reports = areas(&r.store);
    assert_eq!(reports.len(), 152, "{reports:?}");
    for a in &reports {
        for f in ["index.html", "indicators.csv", "indicators.json"] {
            assert!(
                r.store.join(format!("reports/{PERIOD}/{a}/{f}")).is_file(),
                "{a}/{f}"
            );
        }
    }
    assert!(
        r.store
            .join(format!("reports/{PERIOD}/index.html"))
            .is_file()
    );
    // Second demo: nothing ingested, no new run, no new release, the same pages.
    assert!(r.second.contains("is up to date"), "{}", r.second);
    assert!(
        r.second.contains("(already published; unchanged)"),
        "{}",
        r.second
    );
    for (area, html) in &r.before {
        let now =
            std::fs::read_to_string(r.store.join(format!("reports/{PERIOD}/{area}/index.html")))
                .unwrap();
        assert!(now.contains(" · rendered "), "no timestamp line in {area}");
        assert_eq!(
            without_timestamp(html),
            without_timestamp(&now),
            "{area} changed"
        );
    }
    // The manifest says where every number came from.
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.store.join(format!("published/{PERIOD}-r1/manifest.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(m["policy"], "nhs_digital");
    assert!(
        m["run_id"]
            .as_str()
            .unwrap()
            .starts_with("national_quarterly-2025Q4")
    );
    assert!(
        m["inputs"].as_object().unwrap().len() > 50,
        "{}",
        m["inputs"]
    );
    assert!(
        m["definitions"]["case_definitions"]
            .as_str()
            .unwrap()
            .starts_with("reference/case_definitions@v"),
        "{}",
        m["definitions"]
    );
    for f in [
        "indicators.parquet",
        "indicators.csv",
        "indicators.json",
        "trends.csv",
    ] {
        assert!(
            r.store.join(format!("published/{PERIOD}-r1/{f}")).is_file(),
            "{f}"
        );
    }
}

#[test]
fn a_second_policy_makes_a_new_immutable_release_with_a_note() {
    let r = reported();
    assert_eq!(r.secondary["release_id"], "2025Q4-r2");
    assert_eq!(r.secondary["policy"], "secondary");
    let note = r.secondary["revision"]["note"].as_str().unwrap();
    assert!(note.contains("2025Q4-r1"), "{note}");
    // Release 1 is untouched: its manifest still names its own policy and release.
    let m1: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.store.join(format!("published/{PERIOD}-r1/manifest.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(m1["policy"], "nhs_digital");
    assert_eq!(m1["release_id"], "2025Q4-r1");
    // Publishing the same run with the same policy again writes nothing new.
    let s = r.store.to_str().unwrap();
    let o = drdsurv(&[
        "--store",
        s,
        "publish",
        "--period",
        PERIOD,
        "--policy",
        "secondary",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let again: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(again["release_id"], "2025Q4-r2");
    assert_eq!(again["created_at"], r.secondary["created_at"]);
    assert!(!r.store.join(format!("published/{PERIOD}-r3")).exists());
    // An unknown policy and a period without a run are clear errors.
    let o = drdsurv(&[
        "--store", s, "publish", "--period", PERIOD, "--policy", "loose",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("'loose' is not a policy"),
        "{}",
        text(&o.stderr)
    );
    let o = drdsurv(&["--store", s, "publish", "--period", "2019Q1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no committed run for period 2019Q1"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn disclosure_scan_of_every_published_file() {
    let r = reported();
    let out = python(&["scan", r.store.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // Both releases, every area's files and pages.
    assert_eq!(v["releases"], serde_json::json!(["2025Q4-r1", "2025Q4-r2"]));
    assert!(v["files"].as_u64().unwrap() > 3 * 152, "{v}");
    assert!(v["rows"].as_u64().unwrap() > 100_000, "{v}");
    assert!(v["html_counts"].as_u64().unwrap() > 152 * 40, "{v}");
}

#[test]
fn html_tables_equal_the_csv_for_three_reports() {
    let r = reported();
    // One report with withheld values (the smallest partnership by population has plenty),
    // and two others.
    let csv =
        std::fs::read_to_string(r.store.join(format!("reports/{PERIOD}/indicators.csv"))).unwrap();
    let suppressed = csv
        .lines()
        .find(|l| l.contains("suppressed small count") && l.contains(",partnership,"))
        .expect("no suppressed partnership row anywhere");
    let area = suppressed
        .split(',')
        .find(|c| c.starts_with("E0") && c.len() == 9)
        .unwrap()
        .to_string();
    let mut three = vec![area.clone()];
    for a in ["E08000025", "E06000001", "E09000033"] {
        if a != area && three.len() < 3 {
            three.push(a.to_string());
        }
    }
    let mut args = vec!["agree", r.store.to_str().unwrap(), PERIOD];
    args.extend(three.iter().map(String::as_str));
    let out = python(&args);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["rows"].as_u64().unwrap() > 3 * 30, "{v}");
    assert!(v["suppressed_rows"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn spine_chart_marks_lie_where_their_values_put_them() {
    let r = reported();
    let all = areas(&r.store);
    let mut args = vec!["spine", r.store.to_str().unwrap(), PERIOD];
    args.extend(all.iter().map(String::as_str));
    let out = python(&args);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["charts"].as_u64().unwrap() > 152 * 8, "{v}");
}

#[test]
fn reports_open_in_chromium_without_errors_and_pass_axe() {
    let r = reported();
    let browser = repo().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules missing: run tests/run.sh (npm ci there)"
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    let root = r.store.join("reports").join(PERIOD);
    let mut pages = vec![root.join("index.html")];
    pages.extend(
        areas(&r.store)
            .iter()
            .map(|a| root.join(a).join("index.html")),
    );
    let o = Command::new("node")
        .arg(browser.join("check_reports.mjs"))
        .arg("--shots")
        .arg(&shots)
        .arg("--screenshots")
        .arg("2")
        // axe on the index and every 10th report (about 3 s a page); every page is opened
        // and checked for errors, requests and overflow.
        .arg("--axe-every")
        .arg("10")
        .args(&pages)
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(
        o.status.success(),
        "browser checks failed:\n{out}\n{}",
        text(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 153);
    assert!(lines.iter().all(|l| l["ok"] == true));
    let axed = lines
        .iter()
        .filter(|l| l["axe_violations"].is_array())
        .count();
    assert!(axed >= 16, "axe ran on {axed} pages");
    // The partnership pages carry their charts (spines, trends, funnels).
    assert!(lines[1]["charts"].as_u64().unwrap() >= 15, "{}", lines[1]);
    let pngs = std::fs::read_dir(&shots).unwrap().count();
    assert!(pngs >= 2, "{pngs} screenshots in {}", shots.display());
}

fn http_get(addr: &str, raw_path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {raw_path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let t = String::from_utf8_lossy(&buf).into_owned();
    let code = t
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, t)
}

#[test]
fn serve_http_serves_reports_read_only_and_refuses_traversal() {
    let r = reported();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drdsurv"))
        .args([
            "--store",
            r.store.to_str().unwrap(),
            "serve",
            "--http",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let out = child.stdout.as_mut().unwrap();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            first.push(b[0] as char);
        }
    }
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let (code, body) = http_get(&addr, "/healthz");
    assert_eq!(code, 200, "{body}");
    assert!(body.ends_with("ok\n"));
    let (code, body) = http_get(&addr, &format!("/{PERIOD}/E06000001/"));
    assert_eq!(code, 200);
    assert!(
        body.contains("Hartlepool") && body.contains("text/html"),
        "{}",
        &body[..300]
    );
    let (code, body) = http_get(&addr, &format!("/{PERIOD}/E06000001/indicators.csv"));
    assert_eq!(code, 200);
    assert!(body.contains("indicator_id,indicator_name,period,basis,area_code"));
    for bad in [
        "/../runs/_delta_log/00000000000000000000.json",
        "/%2e%2e/published/2025Q4-r1/manifest.json",
        "/2025Q4/..%2F..%2Fsources",
        "/2025Q4/%2E%2E/%2E%2E/reference",
        "/2025Q4/..\\..\\runs",
    ] {
        let (code, body) = http_get(&addr, bad);
        assert!(code == 400 || code == 404, "{bad}: {code}");
        assert!(
            !body.contains("run_id") && !body.contains("commitInfo"),
            "{bad} leaked: {body}"
        );
    }
    let (code, _) = http_get(&addr, "/2025Q4/nowhere/index.html");
    assert_eq!(code, 404);
    // Read-only.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "PUT /{PERIOD}/x.html HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert!(buf.starts_with("HTTP/1.1 405"), "{buf}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_interrupted_publish_is_invisible_and_the_next_publish_completes_it() {
    let r = reported();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let o = Command::new("cp")
        .arg("-a")
        .arg(&r.store)
        .arg(&store)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = store.to_str().unwrap();
    // A publish that died after writing one data file and before its manifest.
    let half = store.join(format!("published/{PERIOD}-r3"));
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("indicators.csv"), "half-written").unwrap();
    let o = drdsurv(&[
        "--store",
        s,
        "report",
        "--period",
        PERIOD,
        "--area",
        "E06000001",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("from release 2025Q4-r2"),
        "{}",
        text(&o.stdout)
    );
    let page =
        std::fs::read_to_string(store.join(format!("reports/{PERIOD}/E06000001/index.html")))
            .unwrap();
    assert!(
        page.contains("2025Q4-r2") && page.contains("Revision note"),
        "no r2 or its note"
    );
    let o = drdsurv(&["--store", s, "publish", "--period", PERIOD]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let m: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(m["release_id"], "2025Q4-r3");
    assert_eq!(m["revision"]["previous_release"], "2025Q4-r2");
    let csv = std::fs::read_to_string(half.join("indicators.csv")).unwrap();
    assert!(
        csv.starts_with("indicator_id,indicator_name,period,basis,"),
        "{}",
        &csv[..40]
    );
    assert!(half.join("manifest.json").is_file());
}
