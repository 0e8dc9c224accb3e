//! Issue 9: the runbook's install, backfill and recovery sections, run for real. Each block
//! marked `<!-- runbook-test: NAME -->` in docs/runbook.md is run by bash (`-euo pipefail`)
//! with the built binary first on PATH as `drdsurv`, from the repository root, and checked
//! by what it leaves in the store. (That every `drdsurv …` line parses is a unit test of the
//! binary: `runbook_commands_parse`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{fixture_a, repo, text};

fn block(name: &str) -> String {
    let doc = std::fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let marker = format!("<!-- runbook-test: {name} -->");
    let after = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("runbook has no {marker}"))
        .1;
    let body = after.split_once("```sh\n").unwrap().1;
    body.split_once("```").unwrap().0.to_string()
}

/// A folder whose `drdsurv` is the built binary.
fn bin_dir(dir: &Path) -> PathBuf {
    let b = dir.join("bin");
    std::fs::create_dir_all(&b).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_drdsurv"), b.join("drdsurv")).unwrap();
    b
}

fn run_block(name: &str, bin: &Path, store: &Path, env: &[(&str, String)]) -> String {
    let script = block(name);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(repo())
        .env("PATH", path)
        .env("DRDSURV_STORE", store)
        .env_remove("DRDSURV_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env(
            "DRDSURV_LINKAGE_KEY",
            "e2e-test-linkage-key-not-for-production-use",
        )
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "runbook block {name} failed:\n{script}\nstdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn releases(store: &Path, period: &str) -> Vec<u32> {
    let mut r: Vec<u32> = std::fs::read_dir(store.join("published"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_prefix(&format!("{period}-r"))?.parse().ok()
        })
        .collect();
    r.sort_unstable();
    r
}

#[test]
fn install_section_runs_on_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let bin = bin_dir(dir.path());
    let store = dir.path().join("store");
    let etc = dir.path().join("etc");
    let out = run_block(
        "install",
        &bin,
        &store,
        &[("ETC", etc.display().to_string())],
    );
    use std::os::unix::fs::PermissionsExt as _;
    for f in ["linkage_key", "jwt_secret"] {
        let p = etc.join("credentials").join(f);
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o400, "{f}");
        let key = std::fs::read_to_string(&p).unwrap();
        assert_eq!(key.len(), 64, "32 random bytes as hex: {key}");
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    assert_eq!(out.matches("ok: store reachable").count(), 3, "{out}");
    // The reference import is version 0 of a Delta table, listed by restore --list.
    assert!(store.join("reference/partnerships/_delta_log").is_dir());
    let v0 = out
        .lines()
        .find(|l| l.starts_with("0\t"))
        .unwrap_or_else(|| panic!("no version 0 listed: {out}"));
    assert!(
        v0.ends_with("\tCREATE TABLE") || v0.contains("WRITE"),
        "{v0}"
    );
    // maintain --dry-run lists the one table and changes nothing.
    let upkeep: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"version_before\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(upkeep.len(), 1, "{out}");
    assert_eq!(upkeep[0]["table"], "reference/partnerships");
    assert_eq!(upkeep[0]["version_after"], upkeep[0]["version_before"]);
}

#[test]
fn backfill_and_recovery_sections_run_on_a_published_store() {
    let dir = tempfile::tempdir().unwrap();
    let bin = bin_dir(dir.path());
    let store = crate::report::reported_copy(dir.path());

    // Backfill: the revised extract of the coroner who sent two.
    let generated = fixture_a();
    let manifest = crate::manifest();
    let files: Vec<&serde_json::Value> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["source"] == "coroner" && f["expect_rejected"].is_null())
        .collect();
    let revised = files
        .iter()
        .filter(|f| {
            files
                .iter()
                .filter(|g| g["submitter"] == f["submitter"])
                .count()
                > 1
        })
        .max_by_key(|f| f["path"].as_str().unwrap().to_string())
        .unwrap();
    let submitter = revised["submitter"].as_str().unwrap();
    let areas = crate::areas_of(submitter);
    let before = releases(&store, "2025Q4");
    let out = run_block(
        "backfill",
        &bin,
        &store,
        &[
            ("SUBMITTER", submitter.to_string()),
            ("AREAS", areas.join(",")),
            (
                "LATE_FILE",
                generated
                    .join(revised["path"].as_str().unwrap())
                    .display()
                    .to_string(),
            ),
        ],
    );
    // The run committed, and a new release was published and rendered.
    let ledger: serde_json::Value = serde_json::from_str(
        out.lines()
            .find(|l| l.starts_with('{') && l.contains("\"run_id\""))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ledger["status"], "committed", "{ledger}");
    assert_eq!(ledger["period"], "2025Q4");
    let after = releases(&store, "2025Q4");
    let newest = *after.last().unwrap();
    assert!(newest > *before.last().unwrap(), "{before:?} → {after:?}");
    let index = std::fs::read_to_string(store.join("reports/2025Q4/index.html")).unwrap();
    assert!(
        index.contains(&format!("2025Q4-r{newest}")),
        "the reports show the new release"
    );

    // Recovery: a wrong population file imported by mistake, then the runbook's block.
    let count = |out: &str| -> u64 {
        out.lines()
            .rev()
            .find_map(|l| l.trim().trim_matches('|').trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no count in {out}"))
    };
    let sql = |q: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_drdsurv"))
            .args(["--store", store.to_str().unwrap(), "sql", q])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let good_rows = count(&sql("SELECT count(*) AS rows FROM reference.population"));
    let population = std::fs::read_to_string(generated.join("reference/population.csv")).unwrap();
    let wrong: String = population
        .lines()
        .take(41)
        .map(|l| format!("{l}\n"))
        .collect();
    let wrong_file = dir.path().join("population-wrong.csv");
    std::fs::write(&wrong_file, wrong).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_drdsurv"))
        .args(["--store", store.to_str().unwrap()])
        .args(["reference", "import", "--table", "population"])
        .arg(&wrong_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        count(&sql("SELECT count(*) AS rows FROM reference.population")),
        40
    );
    let out = run_block("recovery", &bin, &store, &[]);
    assert!(
        out.contains("\tRESTORE"),
        "the last commit is the restore: {out}"
    );
    assert_eq!(count(&out), good_rows, "{out}");
    assert!(good_rows > 40);
}
