//! Issue 9: `drdsurv maintain` on a copy of the demo store, checked by an independent reader
//! (Python delta-rs): compaction leaves fewer files and the same rows, a checkpoint is
//! written, the retention properties are set, and every earlier version is still readable.

use std::process::Command;

use crate::{demo_store_copy, drdsurv, text};

const CHECK: &str = r#"
import json, os, sys
from deltalake import DeltaTable
path = sys.argv[1]
dt = DeltaTable(path)
old = DeltaTable(path)
out = {
    "version": dt.version(),
    "files": len(dt.file_uris()),
    "rows": dt.to_pyarrow_table().num_rows,
    "config": dt.metadata().configuration,
    "history_rows": [],
}
for v in range(0, dt.version() + 1):
    old.load_as_version(v)
    out["history_rows"].append(old.to_pyarrow_table().num_rows)
print(json.dumps(out))
sys.stdout.flush()
# delta-rs's native runtime can abort while the interpreter shuts down ("terminate called
# without an active exception"), replacing the exit code after the answer is written: leave
# at once, as tests/python/native_exit.py does for the check scripts.
os._exit(0)
"#;

fn inspect(table: &std::path::Path) -> serde_json::Value {
    let o = Command::new("python3")
        .args(["-c", CHECK])
        .arg(table)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn maintain_compacts_checkpoints_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    let s = store.to_str().unwrap();
    // The TOP table with the most data files.
    let top = store.join("sources/top");
    let table = std::fs::read_dir(&top)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| {
            std::fs::read_dir(p)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".parquet")
                })
                .count()
        })
        .unwrap();
    let rel = format!(
        "sources/top/{}",
        table.file_name().unwrap().to_string_lossy()
    );
    let before = inspect(&table);
    assert!(before["files"].as_u64().unwrap() > 1, "{before}");

    let o = drdsurv(&[
        "--store",
        s,
        "maintain",
        "--table",
        &rel,
        "--retention-days",
        "3650",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(report["table"], rel.as_str());
    assert!(report["checkpointed"].as_bool().unwrap());

    let after = inspect(&table);
    assert_eq!(after["rows"], before["rows"], "compaction changes no row");
    assert_eq!(after["files"], 1, "{after}");
    assert_eq!(report["files_after"], 1);
    assert_eq!(report["files_before"], before["files"]);
    let cfg = &after["config"];
    assert_eq!(cfg["delta.logRetentionDuration"], "interval 3650 days");
    assert_eq!(
        cfg["delta.deletedFileRetentionDuration"],
        "interval 3650 days"
    );
    // Every version before maintenance still reads the same (vacuum removed nothing needed).
    let n = before["history_rows"].as_array().unwrap().len();
    assert_eq!(
        after["history_rows"].as_array().unwrap()[..n],
        before["history_rows"].as_array().unwrap()[..],
    );
    assert!(
        std::fs::read_dir(table.join("_delta_log"))
            .unwrap()
            .any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".checkpoint.parquet")),
        "a checkpoint was written"
    );
    // A query over the maintained table agrees.
    let o = drdsurv(&["--store", s, "sql", "SELECT count(*) AS n FROM sources.top"]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    // Tables drdsurv creates carry the default retention from the start (7 years).
    let fresh = inspect(&store.join("receipts/top").join(table.file_name().unwrap()));
    assert_eq!(
        fresh["config"]["delta.logRetentionDuration"], "interval 2557 days",
        "{fresh}"
    );
}
