//! The same records in every accepted file form give the same stored rows; re-ingesting is a
//! no-op; a revision supersedes in the current view.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use drd_ingest::Status;
use drd_model::Source;
use drd_store::{Store, TableKind};
use drd_synth::out::{Cell, Encoding, Format, HeaderStyle, Style, TableWriter};

use crate::{SUBMITTER, ingest, rows};

const HEADERS: [&str; 9] = [
    "case_ref",
    "coroner_area",
    "sex",
    "residence_area",
    "date_of_death",
    "age",
    "surname",
    "substances_implicated",
    "notes",
];

fn d(y: i32, m: u32, dd: u32) -> Cell {
    Cell::D(NaiveDate::from_ymd_opt(y, m, dd).unwrap())
}

fn records() -> Vec<Vec<Cell>> {
    vec![
        vec![
            Cell::S("A/1"),
            Cell::S("Coroner, North"),
            Cell::S("F"),
            Cell::S("E06000001"),
            d(2024, 3, 7),
            Cell::I(41),
            Cell::S("Brontë"),
            Cell::S("heroin|Crack Cocaine"),
            Cell::S("said \"no\",\nthen left"),
        ],
        vec![
            Cell::S("A/2"),
            Cell::S("Coroner, North"),
            Cell::S("male"),
            Cell::S("E06000002"),
            d(2023, 12, 31),
            Cell::I(29),
            Cell::S("O\u{2019}Connor"),
            Cell::E,
            Cell::E,
        ],
        vec![
            Cell::S("A/3"),
            Cell::S("Coroner, North"),
            Cell::S("2"),
            Cell::S("E06000001"),
            d(2024, 1, 5),
            Cell::I(55),
            Cell::E,
            Cell::S("mystery powder;alcohol"),
            Cell::S("x"),
        ],
    ]
}

fn write(dir: &std::path::Path, name: &str, style: Style) -> PathBuf {
    let p = dir.join(format!("{name}.{}", style.extension()));
    let mut w = TableWriter::create(&p, style, &HEADERS).unwrap();
    for r in records() {
        w.row(&r).unwrap();
    }
    w.finish().unwrap();
    p
}

/// Stored rows without provenance, keyed by pseudonymous case id.
async fn stored(store: &Store) -> BTreeMap<String, BTreeMap<String, String>> {
    rows(store, TableKind::Sources, Source::Coroner)
        .await
        .into_iter()
        .map(|mut r| {
            for k in [
                "ingested_at",
                "file_sha256",
                "row_number",
                "submitter",
                "geography_vintage",
            ] {
                r.remove(k);
            }
            (r["case_id"].clone(), r)
        })
        .collect()
}

#[tokio::test]
async fn every_file_form_gives_the_same_rows() {
    let _shared = crate::TELEMETRY.read().await;
    let plain = Style::PLAIN;
    let styles = [
        ("plain", plain),
        (
            "bom-crlf-title",
            Style {
                encoding: Encoding::Utf8Bom,
                crlf: true,
                headers: HeaderStyle::Title,
                ..plain
            },
        ),
        (
            "cp1252-uk",
            Style {
                encoding: Encoding::Windows1252,
                uk_dates: true,
                headers: HeaderStyle::UpperHyphen,
                ..plain
            },
        ),
        (
            "gzip",
            Style {
                gzip: true,
                ..plain
            },
        ),
        (
            "ndjson",
            Style {
                format: Format::Ndjson,
                ..plain
            },
        ),
        (
            "ndjson-gz",
            Style {
                format: Format::Ndjson,
                gzip: true,
                uk_dates: true,
                ..plain
            },
        ),
        (
            "xlsx",
            Style {
                format: Format::Xlsx,
                ..plain
            },
        ),
    ];
    let mut reference: Option<BTreeMap<String, BTreeMap<String, String>>> = None;
    for (name, style) in styles {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
        let f = write(dir.path(), name, style);
        let r = &ingest(&store, Source::Coroner, &[&f]).await[0];
        assert_eq!(
            (r.status, r.rows_read, r.rows_accepted),
            (Status::Accepted, 3, 3),
            "{name}: {:?} {:?}",
            r.error,
            r.reasons
        );
        assert!(
            r.warnings.iter().any(|w| w.contains("'notes'")),
            "{name}: {:?}",
            r.warnings
        );
        assert!(
            r.warnings.iter().any(|w| w.contains("'mystery powder'")),
            "{name}: unclassified substance warning missing"
        );
        if style.encoding == Encoding::Windows1252 {
            assert_eq!(r.encoding, Some(Encoding::Windows1252));
        }
        let rows = stored(&store).await;
        assert_eq!(rows.len(), 3, "{name}");
        let lists: Vec<&String> = rows.values().map(|r| &r["substances_implicated"]).collect();
        assert!(
            lists
                .iter()
                .any(|l| l.contains("heroin") && l.contains("Crack Cocaine")),
            "{name}: {lists:?}"
        );
        match &reference {
            None => reference = Some(rows),
            Some(want) => assert_eq!(&rows, want, "{name} stores different values from plain CSV"),
        }
    }
    // Names are never stored; the three sexes parse to canonical codes.
    let r = reference.unwrap();
    let text = format!("{r:?}");
    assert!(
        !text.contains("Bront") && !text.contains("Connor") && !text.contains("A/1"),
        "{text}"
    );
    let mut sexes: Vec<&str> = r.values().map(|x| x["sex"].as_str()).collect();
    sexes.sort_unstable();
    assert_eq!(sexes, ["female", "female", "male"]);
}

#[tokio::test]
async fn reingesting_changes_nothing_and_revisions_supersede() {
    let _shared = crate::TELEMETRY.read().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
    let f = write(dir.path(), "first", Style::PLAIN);
    let r1 = ingest(&store, Source::Coroner, &[&f]).await.remove(0);
    let v = store
        .table_info(&drd_store::table_path(
            TableKind::Sources,
            Source::Coroner,
            SUBMITTER,
        ))
        .await
        .unwrap()
        .unwrap()
        .version;
    let again = ingest(&store, Source::Coroner, &[&f]).await.remove(0);
    assert_eq!(again.status, Status::Duplicate);
    assert_eq!(again.file_sha256, r1.file_sha256);
    assert_eq!(
        store
            .table_info(&drd_store::table_path(
                TableKind::Sources,
                Source::Coroner,
                SUBMITTER
            ))
            .await
            .unwrap()
            .unwrap()
            .version,
        v
    );
    assert_eq!(
        rows(&store, TableKind::Receipts, Source::Coroner)
            .await
            .len(),
        1
    );

    // A later extract: A/1 concluded (revision 2), A/2 withdrawn, A/3 corrected by a newer
    // extract date at the same revision.
    let p = dir.path().join("second.csv");
    std::fs::write(
        &p,
        "case_ref,coroner_area,revision,extract_date,sex,residence_area,date_of_death,age,underlying_cause_icd10,withdrawn\n\
         A/1,\"Coroner, North\",2,2025-02-01,F,E06000001,2024-03-07,41,X42,\n\
         A/2,\"Coroner, North\",2,2025-02-01,M,E06000002,2023-12-31,29,,Y\n\
         A/3,\"Coroner, North\",1,2025-02-01,F,E06000001,2024-01-05,56,X44,N\n",
    )
    .unwrap();
    let r2 = ingest(&store, Source::Coroner, &[&p]).await.remove(0);
    assert_eq!((r2.rows_accepted, r2.rows_quarantined), (3, 0));
    let all = rows(&store, TableKind::Sources, Source::Coroner).await;
    assert_eq!(all.len(), 6, "history is kept");
    let batches = store
        .current_view(Source::Coroner, &[SUBMITTER.to_string()])
        .await
        .unwrap();
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n, 2, "withdrawn A/2 leaves the current view");
    let ctx = deltalake::datafusion::prelude::SessionContext::new();
    let schema = batches[0].schema();
    let mem = deltalake::datafusion::datasource::MemTable::try_new(schema, vec![batches]).unwrap();
    ctx.register_table("cv", std::sync::Arc::new(mem)).unwrap();
    let out = Store::sql(
        &ctx,
        "SELECT age, revision, underlying_cause_icd10 FROM cv ORDER BY age",
    )
    .await
    .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&out)
        .unwrap()
        .to_string();
    assert!(text.contains("| 41  | 2        | X42"), "{text}");
    assert!(
        text.contains("| 56  | 1        | X44"),
        "newer extract_date wins at equal revision: {text}"
    );
}

#[tokio::test]
async fn a_retry_after_a_crash_completes_without_duplicating() {
    let _shared = crate::TELEMETRY.read().await;
    // Simulate a crash after the source and quarantine commits but before the receipt: ingest
    // fully, then remove the receipts table. The retry must write the receipt only.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
    let p = dir.path().join("x.csv");
    std::fs::write(
        &p,
        "case_ref,coroner_area,sex,residence_area,date_of_death,age\n\
         A/1,C,F,E06000001,2024-03-07,41\n\
         A/2,C,Q,E06000001,2024-03-07,41\n\
         A/3,C,M,E06000002,2024-03-08,30\n",
    )
    .unwrap();
    let first = ingest(&store, Source::Coroner, &[&p]).await.remove(0);
    assert_eq!((first.rows_accepted, first.rows_quarantined), (2, 1));
    let path = |k| drd_store::table_path(k, Source::Coroner, SUBMITTER);
    let version = |k| {
        let store = &store;
        async move { store.table_info(&path(k)).await.unwrap().map(|t| t.version) }
    };
    let (vs, vq) = (
        version(TableKind::Sources).await,
        version(TableKind::Quarantine).await,
    );
    std::fs::remove_dir_all(dir.path().join("store").join(path(TableKind::Receipts))).unwrap();
    let retry = ingest(&store, Source::Coroner, &[&p]).await.remove(0);
    assert_eq!(retry.status, Status::Accepted);
    assert_eq!(
        (retry.rows_read, retry.rows_accepted, retry.rows_quarantined),
        (3, 2, 1),
        "counts rebuilt"
    );
    assert!(retry.reconciles());
    assert_eq!(
        version(TableKind::Sources).await,
        vs,
        "source rows were not written again"
    );
    assert_eq!(
        version(TableKind::Quarantine).await,
        vq,
        "quarantine rows were not written again"
    );
    assert_eq!(
        rows(&store, TableKind::Sources, Source::Coroner)
            .await
            .len(),
        2
    );
    assert_eq!(
        rows(&store, TableKind::Quarantine, Source::Coroner)
            .await
            .len(),
        1
    );
    assert_eq!(
        rows(&store, TableKind::Receipts, Source::Coroner)
            .await
            .len(),
        1,
        "exactly one receipt"
    );
    // And now it is a duplicate.
    assert_eq!(
        ingest(&store, Source::Coroner, &[&p])
            .await
            .remove(0)
            .status,
        Status::Duplicate
    );
}
