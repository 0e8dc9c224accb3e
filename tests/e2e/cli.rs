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
fn demo_generates_into_the_store_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let o = drdsurv(&["--store", store.to_str().unwrap(), "demo"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("seed 7, 7 years"), "{out}");
    assert!(store.join("inbox/manifest.json").is_file());
    assert!(
        store.join("inbox/coroner").is_dir()
            && store.join("inbox/top").is_dir()
            && store.join("inbox/nsp").is_dir()
    );
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
