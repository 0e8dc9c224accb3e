//! One storage test body run against local files, memory and a real S3 server (moto):
//! tables are created with a schema and only grow additively, appends carry the file's
//! transaction id, reads see exactly what was committed, and four writers committing to one
//! table at the same moment lose nothing (Delta optimistic concurrency).

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::SessionContext;
use drd_store::Store;
use object_store::{PutMode, PutOptions, PutPayload};

use crate::places::{Place, moto};

const WRITERS: usize = 4;
const COMMITS_EACH: usize = 5;
const ROWS_PER_COMMIT: usize = 250;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("writer", DataType::Utf8, false),
        Field::new("n", DataType::Int64, false),
    ]))
}

fn batch(writer: usize, commit: usize) -> RecordBatch {
    let w: Vec<String> = (0..ROWS_PER_COMMIT).map(|_| format!("w{writer}")).collect();
    let n: Vec<i64> = (0..ROWS_PER_COMMIT)
        .map(|i| (commit * ROWS_PER_COMMIT + i) as i64)
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(w)),
            Arc::new(Int64Array::from(n)),
        ],
    )
    .unwrap()
}

async fn count_rows(store: &Store, rel: &str) -> (u64, i64) {
    let t = store.table(rel).await.unwrap().unwrap();
    let ctx = SessionContext::new();
    t.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table("t", t.table_provider().await.unwrap())
        .unwrap();
    let b = Store::sql(&ctx, "SELECT count(*), sum(n) FROM t")
        .await
        .unwrap();
    let c = b[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    let s = b[0]
        .column(1)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    (c as u64, s)
}

/// The body every backend must pass.
async fn storage_contract(store: Store) {
    let rel = "sources/test/contract";
    let t = store.ensure_table(rel, &schema()).await.unwrap();
    let v0 = t.version().unwrap();
    // Additive-only schema: an extra nullable column is allowed, a changed type is not.
    let mut wider = schema().fields().to_vec();
    wider.push(Arc::new(Field::new("note", DataType::Utf8, true)));
    store
        .ensure_table(rel, &Arc::new(Schema::new(wider)))
        .await
        .unwrap();
    let narrower = Arc::new(Schema::new(vec![
        Field::new("writer", DataType::Utf8, false),
        Field::new("n", DataType::Utf8, false),
    ]));
    let e = store.ensure_table(rel, &narrower).await.unwrap_err();
    assert!(e.to_string().contains("column n"), "{e}");

    // One append with a transaction id: visible through txn_version and reads.
    let mut a = store
        .appender(
            rel,
            &schema(),
            Some(("drdsurv-file-abc", 1)),
            Default::default(),
        )
        .await
        .unwrap();
    a.write(batch(9, 0)).await.unwrap();
    let r = a.commit().await.unwrap();
    assert_eq!(r.version, v0 + 1);
    assert_eq!(
        store.txn_version(rel, "drdsurv-file-abc").await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.txn_version(rel, "drdsurv-file-xyz").await.unwrap(),
        None
    );
    let base_rows = ROWS_PER_COMMIT as u64;
    let base_sum: i64 = (0..ROWS_PER_COMMIT as i64).sum();
    assert_eq!(count_rows(&store, rel).await, (base_rows, base_sum));

    // Four writers, each with its own table handle, committing at the same time.
    let before = store.table_info(rel).await.unwrap().unwrap().version;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            for c in 0..COMMITS_EACH {
                let mut a = store
                    .appender(rel, &schema(), None, Default::default())
                    .await
                    .unwrap();
                a.write(batch(w, c)).await.unwrap();
                if a.commit().await.is_ok() {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut commits = 0;
    for t in tasks {
        commits += t.await.unwrap();
    }
    assert_eq!(
        commits,
        (WRITERS * COMMITS_EACH) as u64,
        "every commit succeeds"
    );
    let per_writer_sum: i64 = (0..(COMMITS_EACH * ROWS_PER_COMMIT) as i64).sum();
    assert_eq!(
        count_rows(&store, rel).await,
        (
            base_rows + commits * ROWS_PER_COMMIT as u64,
            base_sum + WRITERS as i64 * per_writer_sum
        ),
        "exact rows after concurrent commits"
    );
    let after = store.table_info(rel).await.unwrap().unwrap().version;
    assert_eq!(
        after,
        before + commits,
        "final version = initial + successful commits"
    );
}

fn rt() -> tokio::runtime::Runtime {
    crate::runtime(4)
}

#[test]
fn storage_contract_on_local_files() {
    let p = Place::local();
    rt().block_on(storage_contract(p.open("store")));
}

#[test]
fn storage_contract_in_memory() {
    rt().block_on(storage_contract(Store::open("memory:///").unwrap()));
}

#[test]
fn storage_contract_on_s3() {
    let p = Place::s3("contract");
    rt().block_on(async {
        // Delta's commits are only safe if the server refuses a second create-if-absent
        // write to one key. Check that before trusting anything else on this server.
        let os = p.open("probe").object_store().unwrap();
        let key = object_store::path::Path::from("_probe/once");
        let create = || PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        os.put_opts(&key, PutPayload::from_static(b"first"), create())
            .await
            .unwrap();
        let second = os
            .put_opts(&key, PutPayload::from_static(b"second"), create())
            .await;
        assert!(
            matches!(second, Err(object_store::Error::AlreadyExists { .. })),
            "S3 server at {} accepted a second create-if-absent write ({second:?}): \
             concurrent Delta commits are NOT SAFE on it; the S3 variant is not passed",
            moto().endpoint
        );
        // And when many race for one key, exactly one wins.
        for round in 0..5 {
            let key = object_store::path::Path::from(format!("_probe/race-{round}"));
            let tries: Vec<_> = (0..16)
                .map(|i| {
                    let os = os.clone();
                    let key = key.clone();
                    tokio::spawn(async move {
                        os.put_opts(&key, PutPayload::from(vec![i as u8]), create())
                            .await
                            .is_ok()
                    })
                })
                .collect();
            let mut wins = 0;
            for t in tries {
                wins += usize::from(t.await.unwrap());
            }
            assert_eq!(
                wins, 1,
                "{wins} of 16 concurrent create-if-absent writes to one key succeeded: \
                 concurrent Delta commits are NOT SAFE on this server"
            );
        }
        storage_contract(p.open("store")).await;
    });
}
