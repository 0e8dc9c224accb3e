//! `drdsurv ingest` over the whole small synthetic dataset, as each submitter, checked by
//! independent Python readers: exact quarantine, reconciling receipts, the revised extract
//! superseding, and no identifier anywhere in the store, the receipts or the logs.

use std::io::Write;
use std::process::Command;

use crate::{fixture_a, repo, text};

#[test]
fn synthetic_dataset_ingests_exactly_and_leaks_nothing() {
    let generated = fixture_a();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let receipts_path = dir.path().join("receipts.jsonl");
    let log_path = dir.path().join("stderr.log");
    let mut receipts = std::fs::File::create(&receipts_path).unwrap();
    let mut log = std::fs::File::create(&log_path).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(generated.join("manifest.json")).unwrap()).unwrap();
    let mut rejected_whole = 0;
    for s in manifest["submitters"].as_array().unwrap() {
        let (source, id) = (s["source"].as_str().unwrap(), s["id"].as_str().unwrap());
        let areas: Vec<&str> = s["areas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let folder = generated.join(source).join(id);
        let mut files: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drdsurv"));
        cmd.args([
            "--store",
            store.to_str().unwrap(),
            "ingest",
            "--source",
            source,
            "--submitter",
            id,
            "--areas",
            &areas.join(","),
        ]);
        cmd.args(&files)
            .env(
                "DRDSURV_LINKAGE_KEY",
                "e2e-test-linkage-key-not-for-production-use",
            )
            .env_remove("RUST_LOG");
        let o = cmd.output().unwrap();
        receipts.write_all(&o.stdout).unwrap();
        log.write_all(&o.stderr).unwrap();
        match o.status.code() {
            Some(0) => {}
            Some(2) => rejected_whole += 1,
            other => panic!("{source}/{id}: exit {other:?}: {}", text(&o.stderr)),
        }
        assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
    }
    assert_eq!(
        rejected_whole, 3,
        "one submitter per source has whole-file rejections"
    );
    drop(receipts);
    drop(log);
    let py = |script: &str, args: &[&std::path::Path]| {
        let o = Command::new("python3")
            .arg(repo().join("tests/python").join(script))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("python3: {e}; run tests/run.sh"));
        assert!(
            o.status.success(),
            "{script} failed:\n{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    };
    let out = py("check_ingest.py", &[generated, &store, &receipts_path]);
    assert!(out.contains("all ingest checks passed"), "{out}");
    let out = py(
        "scan_identifiers.py",
        &[generated, &store, &receipts_path, &log_path],
    );
    assert!(
        out.contains("; 0 hit(s)") && out.contains("positive control"),
        "{out}"
    );
}
