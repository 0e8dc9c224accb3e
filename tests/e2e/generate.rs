//! `drdsurv generate`: determinism, and the independent Python check of every file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::{drdsurv, fixture_a, repo, text};

fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_identical_trees() {
    let a = fixture_a();
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("B");
    let o = drdsurv(&[
        "generate",
        "--out",
        b.to_str().unwrap(),
        "--scale",
        "small",
        "--seed",
        "7",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (ta, tb) = (tree(a), tree(&b));
    assert!(ta.len() > 100, "only {} files", ta.len());
    let names_a: Vec<_> = ta.keys().collect();
    let names_b: Vec<_> = tb.keys().collect();
    assert_eq!(names_a, names_b, "different file lists");
    let differing: Vec<_> = ta
        .iter()
        .filter(|(k, v)| tb[*k] != **v)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(
        differing.is_empty(),
        "files differ between two runs with seed 7: {differing:?}"
    );
    // Gzip members carry mtime 0 and XLSX files a fixed document time.
    let gz = ta.iter().find(|(k, _)| k.ends_with(".gz")).unwrap();
    assert_eq!(&gz.1[4..8], &[0, 0, 0, 0], "{} has a gzip mtime", gz.0);
    assert!(ta.keys().any(|k| k.ends_with(".xlsx")));
}

#[test]
fn another_seed_gives_different_records() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("C");
    let o = drdsurv(&[
        "generate",
        "--out",
        c.to_str().unwrap(),
        "--seed",
        "8",
        "--years",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let a = fixture_a();
    let f = "nsp/nsp-north/returns-2025.csv";
    assert_ne!(
        std::fs::read(a.join(f)).unwrap(),
        std::fs::read(c.join(f)).unwrap()
    );
}

#[test]
fn python_reads_every_file_and_agrees_with_the_manifest() {
    let a = fixture_a();
    let script = repo().join("tests/python/check_extracts.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(a)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 not runnable ({e}); run tests/run.sh, which installs it")
        });
    assert!(
        o.status.success(),
        "independent check failed:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(text(&o.stdout).contains("all checks passed"));
}

#[test]
fn manifest_lists_faults_for_every_source() {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_a().join("manifest.json")).unwrap()).unwrap();
    let faults = m["faults"].as_array().unwrap();
    for src in ["coroner", "top", "nsp"] {
        let n = faults
            .iter()
            .filter(|f| f["file"].as_str().unwrap().starts_with(src))
            .count();
        assert!(n > 10, "{src}: {n} faults");
    }
    assert_eq!(m["config"]["seed"], 7);
    assert!(m["nitazene_cluster"]["deaths"].as_u64().unwrap() >= 8);
    // The reference files ship beside the extracts and match the repository's copies.
    for f in [
        "partnerships_2021.csv",
        "substances.csv",
        "case_definitions.csv",
        "esp2013.csv",
    ] {
        assert_eq!(
            std::fs::read(fixture_a().join("reference").join(f)).unwrap(),
            std::fs::read(repo().join("reference").join(f)).unwrap(),
            "{f}"
        );
    }
}
