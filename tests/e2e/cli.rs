//! User-facing behaviour of the binary: clear errors with the right exit codes, no panics, the
//! demo, and JSON logs.

use crate::{drdsurv, text};

fn assert_clean_failure(args: &[&str], code: i32, needle: &str) {
    let o = drdsurv(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: stderr lacks {needle:?}: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{args:?} panicked: {err}"
    );
}

#[test]
fn user_errors_are_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    assert_clean_failure(
        &["generate", "--out", out, "--scale", "huge"],
        2,
        "unknown scale 'huge': expected small or national",
    );
    assert_clean_failure(
        &["generate", "--out", out, "--years", "0"],
        2,
        "--years 0 is out of range",
    );
    assert_clean_failure(
        &["--log-format", "xml", "generate", "--out", out],
        2,
        "unknown log format 'xml'",
    );
    assert_clean_failure(
        &["--engine", "spark", "generate", "--out", out],
        2,
        "unknown engine 'spark'",
    );
    assert_clean_failure(
        &[
            "--config",
            "/nonexistent/drdsurv.toml",
            "generate",
            "--out",
            out,
        ],
        2,
        "does not exist",
    );
    assert_clean_failure(&["generate"], 2, "--out");
    assert_clean_failure(&["frobnicate"], 2, "unrecognized subcommand");
    // A place that cannot be written: a file where a folder must go.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let under = blocker.join("out");
    assert_clean_failure(
        &["generate", "--out", under.to_str().unwrap(), "--years", "1"],
        1,
        "cannot write",
    );
}

#[test]
fn demo_until_ingest_generates_and_ingests_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_s = store.to_str().unwrap();
    let o = drdsurv(&[
        "--store", store_s, "demo", "--years", "2", "--until", "ingest",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("seed 7, 2 years"), "{out}");
    assert!(out.contains("demo's own linkage key"), "{out}");
    assert!(store.join("inbox/manifest.json").is_file());
    for s in ["coroner", "top", "nsp"] {
        assert!(store.join("inbox").join(s).is_dir());
        assert!(store.join("sources").join(s).is_dir(), "{s} ingested");
    }
    // Per source: files, rows read = accepted + quarantined, some of each.
    let counts = |out: &str| -> Vec<[u64; 6]> {
        out.lines()
            .filter(|l| l.contains(" files: "))
            .map(|l| {
                let n: Vec<u64> = l
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|t| !t.is_empty())
                    .map(|t| t.parse().unwrap())
                    .collect();
                [n[0], n[1], n[2], n[3], n[4], n[5]]
            })
            .collect()
    };
    let first = counts(&out);
    assert_eq!(first.len(), 3, "{out}");
    for [files, read, acc, q, rejected, dup] in &first {
        assert!(*files > 0 && *acc > 0 && *q > 0, "{out}");
        assert_eq!(read, &(acc + q), "{out}");
        assert_eq!(*dup, 0);
        assert!(
            *rejected >= 1,
            "every source has a file rejected whole: {out}"
        );
    }
    let o = drdsurv(&[
        "--store", store_s, "demo", "--years", "2", "--until", "ingest",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let again = counts(&text(&o.stdout));
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(b[2], 0, "nothing accepted twice");
        assert_eq!(b[5], a[0] - a[4], "every accepted file is recognised");
    }
}

#[test]
fn json_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("j");
    let o = drdsurv(&[
        "--log-format",
        "json",
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--years",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<String> = text(&o.stderr).lines().map(str::to_string).collect();
    assert!(lines.len() >= 2, "{lines:?}");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v.get("level").is_some() && v.get("message").is_some(),
            "{l}"
        );
    }
}

/// The config file: the documented example is accepted, typos are named, and a submitter's
/// entry supplies `ingest`'s authorised areas.
#[test]
fn config_file_is_checked_and_supplies_areas() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("drdsurv.toml");
    let cfg_s = cfg.to_str().unwrap();
    // The example in config.rs's documentation, verbatim.
    let doc: String = include_str!("../../crates/drdsurv/src/config.rs")
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
        .collect();
    assert!(doc.contains("[[inboxes]]"), "{doc}");
    std::fs::write(&cfg, &doc).unwrap();
    // Accepted: it gets as far as needing the linkage key.
    assert_clean_failure(
        &["--config", cfg_s, "worker", "--once"],
        2,
        "DRDSURV_LINKAGE_KEY",
    );
    std::fs::write(&cfg, "[worker]\npoll_secs = 3\n").unwrap();
    assert_clean_failure(&["--config", cfg_s, "worker", "--once"], 2, "poll_secs");
    std::fs::write(&cfg, "[worker]\npoll_seconds = 3\n").unwrap();
    assert_clean_failure(
        &["--config", cfg_s, "worker", "--once"],
        2,
        "lists no [[inboxes]]",
    );
    assert_clean_failure(&["worker", "--once"], 2, "needs a config file");

    // ingest without --areas takes them from the submitter's entry.
    let csv = dir.path().join("nsp.csv");
    std::fs::write(
        &csv,
        "site_code,site_type,partnership_code,period_start,period_end,transactions,syringe_sets_issued\n\
         E06000001-S001,pharmacy,E06000001,2025-07-01,2025-07-31,12,40\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let store_s = store.to_str().unwrap();
    let ingest = |cfg: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drdsurv"))
            .args(["--store", store_s, "--config", cfg, "ingest"])
            .args([
                "--source",
                "nsp",
                "--submitter",
                "nsp-a",
                csv.to_str().unwrap(),
            ])
            .env(
                "DRDSURV_LINKAGE_KEY",
                "e2e-test-linkage-key-not-for-production-use",
            )
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let o = ingest(cfg_s);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no authorised areas for submitter nsp-a"));
    std::fs::write(
        &cfg,
        "[[submitters]]\nid = \"nsp-a\"\nareas = [\"E06000001\"]\n",
    )
    .unwrap();
    let o = ingest(cfg_s);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (r["rows_accepted"].as_u64(), r["rows_quarantined"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
}

/// Long commands draw progress only on a terminal: `maintain --dry-run` over the demo store,
/// once with standard error a pipe (no bar) and once under `script`, which gives it a
/// pseudo-terminal (the bar is drawn).
#[test]
fn progress_shows_on_a_terminal_only() {
    let store = crate::demo_store().to_str().unwrap().to_string();
    let bin = env!("CARGO_BIN_EXE_drdsurv");
    let o = std::process::Command::new(bin)
        .args(["--store", &store, "maintain", "--dry-run"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let tables = text(&o.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .count();
    assert!(tables > 100, "{tables} tables");
    assert!(
        !text(&o.stderr).contains("maintain ["),
        "{}",
        text(&o.stderr)
    );
    let o = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{bin} --store {store} maintain --dry-run"),
            "/dev/null",
        ])
        .env("TERM", "xterm")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("maintain ["),
        "no progress bar on a terminal"
    );
}
