//! One case per rule of formats.md. Each case writes a CSV with a valid row, the bad row and
//! another valid row, ingests it and checks the exact reason, column and 1-based data row, the
//! receipt counts, and that the message shows the bad value unless the column is an identifier.
//! The test fails if a reason code that can occur in a source has no case there.

use std::collections::{BTreeMap, BTreeSet};

use drd_ingest::Status;
use drd_model::{ReasonCode, Source};
use drd_store::{Store, TableKind};

use crate::ingest;

fn base(source: Source) -> Vec<(&'static str, &'static str)> {
    match source {
        Source::Coroner => vec![
            ("case_ref", "C/1"),
            ("coroner_area", "Test Coroner Area"),
            ("revision", "1"),
            ("extract_date", "2025-01-31"),
            ("nhs_number", "943 476 5919"),
            ("surname", "Smith"),
            ("forenames", "John"),
            ("date_of_birth", "1980-05-01"),
            ("age", "44"),
            ("sex", "M"),
            ("residence_area", "E06000001"),
            ("postcode", "TS24 7AA"),
            ("date_of_death", "02/11/2024"),
            ("date_of_inquest", "2025-01-10"),
            ("place_of_death", "home"),
            ("underlying_cause_icd10", "X42"),
            ("conclusion", "accident"),
            ("substances_implicated", "heroin;cocaine"),
            ("substances_present", "cannabis"),
            ("known_drug_user", "Y"),
            ("injecting_history", "N"),
            ("in_treatment", "U"),
            ("released_from_prison_days", "12"),
            ("naloxone_administered", ""),
            ("alone_at_time", "yes"),
            ("withdrawn", ""),
        ],
        Source::Top => vec![
            ("provider_code", "P1"),
            ("partnership_code", "E06000002"),
            ("client_ref", "CL1"),
            ("nhs_number", "9434765919"),
            ("date_of_birth", "1985-03-03"),
            ("sex", "F"),
            ("episode_start", "2024-01-10"),
            ("top_date", "2024-04-10"),
            ("stage", "review"),
            ("revision", ""),
            ("opiate_days", "12"),
            ("crack_days", "0"),
            ("alcohol_units_per_day", "2.5"),
            ("injected_days", "3"),
            ("shared_equipment", "N"),
            ("psych_health", "11"),
            ("paid_work_days", "0"),
            ("acute_housing_problem", "no"),
            ("exit_reason", ""),
        ],
        Source::Nsp => vec![
            ("site_code", "S1"),
            ("site_type", "pharmacy"),
            ("partnership_code", "E06000001"),
            ("period_start", "2024-03-01"),
            ("period_end", "2024-03-31"),
            ("transactions", "40"),
            ("clients", "20"),
            ("new_clients", "2"),
            ("syringe_sets_issued", "300"),
            ("bbv_tests_offered", "5"),
            ("bbv_tests_done", "4"),
        ],
    }
}

/// (source, changes to the base row, expected reason, column). Identifier columns must not
/// have their value in the message; others must.
type Case = (
    Source,
    &'static [(&'static str, &'static str)],
    ReasonCode,
    &'static str,
);

const CASES: &[Case] = &[
    // Coroner (formats.md §1 and "Rules for every source").
    (
        Source::Coroner,
        &[("sex", "")],
        ReasonCode::MissingRequiredValue,
        "sex",
    ),
    (
        Source::Coroner,
        &[("case_ref", " ")],
        ReasonCode::MissingRequiredValue,
        "case_ref",
    ),
    (
        Source::Coroner,
        &[("date_of_death", "31/02/2024")],
        ReasonCode::InvalidDate,
        "date_of_death",
    ),
    (
        Source::Coroner,
        &[("date_of_death", "1899-12-31"), ("date_of_inquest", "")],
        ReasonCode::InvalidDate,
        "date_of_death",
    ),
    (
        Source::Coroner,
        &[("date_of_birth", "1980-13-01")],
        ReasonCode::InvalidDate,
        "date_of_birth",
    ),
    (
        Source::Coroner,
        &[("date_of_inquest", "2025-07-15")],
        ReasonCode::FutureDate,
        "date_of_inquest",
    ),
    (
        Source::Coroner,
        &[("date_of_inquest", "2024-10-01")],
        ReasonCode::DateOrder,
        "date_of_inquest",
    ),
    (
        Source::Coroner,
        &[("date_of_birth", "2024-12-01")],
        ReasonCode::DateOrder,
        "date_of_birth",
    ),
    (
        Source::Coroner,
        &[("age", "forty"), ("date_of_birth", "")],
        ReasonCode::InvalidNumber,
        "age",
    ),
    (
        Source::Coroner,
        &[("revision", "two")],
        ReasonCode::InvalidNumber,
        "revision",
    ),
    (
        Source::Coroner,
        &[("age", "130"), ("date_of_birth", "")],
        ReasonCode::OutOfRange,
        "age",
    ),
    (
        Source::Coroner,
        &[("revision", "0")],
        ReasonCode::OutOfRange,
        "revision",
    ),
    (
        Source::Coroner,
        &[("released_from_prison_days", "400")],
        ReasonCode::OutOfRange,
        "released_from_prison_days",
    ),
    (
        Source::Coroner,
        &[("sex", "X")],
        ReasonCode::InvalidCode,
        "sex",
    ),
    (
        Source::Coroner,
        &[("place_of_death", "garden")],
        ReasonCode::InvalidCode,
        "place_of_death",
    ),
    (
        Source::Coroner,
        &[("conclusion", "unclear")],
        ReasonCode::InvalidCode,
        "conclusion",
    ),
    (
        Source::Coroner,
        &[("underlying_cause_icd10", "heroin")],
        ReasonCode::InvalidCode,
        "underlying_cause_icd10",
    ),
    (
        Source::Coroner,
        &[("known_drug_user", "maybe")],
        ReasonCode::InvalidCode,
        "known_drug_user",
    ),
    (
        Source::Coroner,
        &[("withdrawn", "U")],
        ReasonCode::InvalidCode,
        "withdrawn",
    ),
    (
        Source::Coroner,
        &[("residence_area", "E0600001")],
        ReasonCode::InvalidGssCode,
        "residence_area",
    ),
    (
        Source::Coroner,
        &[("residence_area", "E06000099")],
        ReasonCode::UnknownArea,
        "residence_area",
    ),
    (
        Source::Coroner,
        &[("residence_area", "W06000015")],
        ReasonCode::UnknownArea,
        "residence_area",
    ),
    (
        Source::Coroner,
        &[("residence_area", "E06000003")],
        ReasonCode::NotAuthorisedForArea,
        "residence_area",
    ),
    (
        Source::Coroner,
        &[("nhs_number", "9434765918")],
        ReasonCode::InvalidNhsNumber,
        "nhs_number",
    ),
    (
        Source::Coroner,
        &[("nhs_number", "12345")],
        ReasonCode::InvalidNhsNumber,
        "nhs_number",
    ),
    (
        Source::Coroner,
        &[("postcode", "B70 7CQ")],
        ReasonCode::InvalidPostcode,
        "postcode",
    ),
    (
        Source::Coroner,
        &[("age", ""), ("date_of_birth", "")],
        ReasonCode::MissingAgeAndDob,
        "age",
    ),
    // Treatment Outcomes Profile (formats.md §2).
    (
        Source::Top,
        &[("stage", "")],
        ReasonCode::MissingRequiredValue,
        "stage",
    ),
    (
        Source::Top,
        &[("date_of_birth", "")],
        ReasonCode::MissingRequiredValue,
        "date_of_birth",
    ),
    (
        Source::Top,
        &[("top_date", "2024-02-30")],
        ReasonCode::InvalidDate,
        "top_date",
    ),
    (
        Source::Top,
        &[("top_date", "2026-01-01")],
        ReasonCode::FutureDate,
        "top_date",
    ),
    (
        Source::Top,
        &[("top_date", "2024-01-01")],
        ReasonCode::DateOrder,
        "top_date",
    ),
    (
        Source::Top,
        &[("date_of_birth", "2024-02-01")],
        ReasonCode::DateOrder,
        "date_of_birth",
    ),
    (
        Source::Top,
        &[("opiate_days", "lots")],
        ReasonCode::InvalidNumber,
        "opiate_days",
    ),
    (
        Source::Top,
        &[("alcohol_units_per_day", "two")],
        ReasonCode::InvalidNumber,
        "alcohol_units_per_day",
    ),
    (
        Source::Top,
        &[("opiate_days", "29")],
        ReasonCode::OutOfRange,
        "opiate_days",
    ),
    (
        Source::Top,
        &[("psych_health", "21")],
        ReasonCode::OutOfRange,
        "psych_health",
    ),
    (
        Source::Top,
        &[("stage", "Z")],
        ReasonCode::InvalidCode,
        "stage",
    ),
    (
        Source::Top,
        &[("exit_reason", "completed_drug_free")],
        ReasonCode::InvalidCode,
        "exit_reason",
    ),
    (
        Source::Top,
        &[("partnership_code", "Hartlepool")],
        ReasonCode::InvalidGssCode,
        "partnership_code",
    ),
    (
        Source::Top,
        &[("partnership_code", "E10000099")],
        ReasonCode::UnknownArea,
        "partnership_code",
    ),
    (
        Source::Top,
        &[("partnership_code", "E09000001")],
        ReasonCode::NotAuthorisedForArea,
        "partnership_code",
    ),
    (
        Source::Top,
        &[("nhs_number", "943-476-5918")],
        ReasonCode::InvalidNhsNumber,
        "nhs_number",
    ),
    // Needle-and-syringe returns (formats.md §3).
    (
        Source::Nsp,
        &[("transactions", "")],
        ReasonCode::MissingRequiredValue,
        "transactions",
    ),
    (
        Source::Nsp,
        &[("period_end", "2024-04-31")],
        ReasonCode::InvalidDate,
        "period_end",
    ),
    (
        Source::Nsp,
        &[("period_start", "2099-01-01"), ("period_end", "2099-01-31")],
        ReasonCode::FutureDate,
        "period_start",
    ),
    (
        Source::Nsp,
        &[("period_end", "2024-02-20")],
        ReasonCode::DateOrder,
        "period_end",
    ),
    (
        Source::Nsp,
        &[("period_end", "2024-06-30")],
        ReasonCode::PeriodTooLong,
        "period_end",
    ),
    (
        Source::Nsp,
        &[("transactions", "12a")],
        ReasonCode::InvalidNumber,
        "transactions",
    ),
    (
        Source::Nsp,
        &[("syringe_sets_issued", "-5")],
        ReasonCode::OutOfRange,
        "syringe_sets_issued",
    ),
    (
        Source::Nsp,
        &[("site_type", "clinic")],
        ReasonCode::InvalidCode,
        "site_type",
    ),
    (
        Source::Nsp,
        &[("partnership_code", "E080000255")],
        ReasonCode::InvalidGssCode,
        "partnership_code",
    ),
    (
        Source::Nsp,
        &[("partnership_code", "E06000099")],
        ReasonCode::UnknownArea,
        "partnership_code",
    ),
    (
        Source::Nsp,
        &[("partnership_code", "E06000004")],
        ReasonCode::NotAuthorisedForArea,
        "partnership_code",
    ),
    (
        Source::Nsp,
        &[("clients", "41")],
        ReasonCode::CountInconsistent,
        "clients",
    ),
    (
        Source::Nsp,
        &[("new_clients", "21")],
        ReasonCode::CountInconsistent,
        "new_clients",
    ),
    (
        Source::Nsp,
        &[("bbv_tests_done", "6")],
        ReasonCode::CountInconsistent,
        "bbv_tests_done",
    ),
];

/// Key fields made unique per row so only the planted fault can trip.
fn with_row_key(
    source: Source,
    mut row: Vec<(&'static str, String)>,
    n: usize,
) -> Vec<(&'static str, String)> {
    let (col, v) = match source {
        Source::Coroner => ("case_ref", format!("C/{n}")),
        Source::Top => ("client_ref", format!("CL{n}")),
        Source::Nsp => ("site_code", format!("S{n}")),
    };
    for (c, x) in row.iter_mut() {
        if *c == col && !x.trim().is_empty() {
            *x = v.clone();
        }
    }
    row
}

fn csv_file(
    dir: &std::path::Path,
    name: &str,
    rows: &[Vec<(&'static str, String)>],
) -> std::path::PathBuf {
    let mut w = csv::Writer::from_path(dir.join(name)).unwrap();
    w.write_record(rows[0].iter().map(|(c, _)| *c)).unwrap();
    for r in rows {
        w.write_record(r.iter().map(|(_, v)| v.as_str())).unwrap();
    }
    w.flush().unwrap();
    dir.join(name)
}

/// The rows as NDJSON, one object per row (every value a string, empty ones null).
fn ndjson_file(
    dir: &std::path::Path,
    name: &str,
    rows: &[Vec<(&'static str, String)>],
) -> std::path::PathBuf {
    let mut text = String::new();
    for r in rows {
        let obj: serde_json::Map<String, serde_json::Value> = r
            .iter()
            .map(|(c, v)| {
                let v = if v.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::Value::String(v.clone())
                };
                (c.to_string(), v)
            })
            .collect();
        text.push_str(&serde_json::Value::Object(obj).to_string());
        text.push('\n');
    }
    std::fs::write(dir.join(name), text).unwrap();
    dir.join(name)
}

fn row_with(
    source: Source,
    changes: &[(&'static str, &'static str)],
) -> Vec<(&'static str, String)> {
    base(source)
        .into_iter()
        .map(|(c, v)| {
            (
                c,
                changes
                    .iter()
                    .find(|(k, _)| *k == c)
                    .map_or(v, |(_, x)| *x)
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_rule_has_a_case_and_each_case_is_exact() {
    let _shared = crate::TELEMETRY.read().await;
    let mut covered: BTreeMap<Source, BTreeSet<ReasonCode>> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, (source, changes, reason, column)) in CASES.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
        let rows = vec![
            with_row_key(*source, row_with(*source, &[]), 1),
            with_row_key(*source, row_with(*source, changes), 2),
            with_row_key(*source, row_with(*source, &[]), 3),
        ];
        let f = csv_file(dir.path(), &format!("case-{i}.csv"), &rows);
        let r = &ingest(&store, *source, &[&f]).await[0];
        let q = crate::rows(&store, TableKind::Quarantine, *source).await;
        let accepted = crate::rows(&store, TableKind::Sources, *source).await;
        let what = format!("case {i} {source} {changes:?}");
        if r.status != Status::Accepted
            || (r.rows_read, r.rows_accepted, r.rows_quarantined) != (3, 2, 1)
            || !r.reconciles()
        {
            failures.push(format!(
                "{what}: receipt {:?} read {} accepted {} quarantined {} ({:?})",
                r.status,
                r.rows_read,
                r.rows_accepted,
                r.rows_quarantined,
                q.first().map(|x| &x["message"])
            ));
            continue;
        }
        let got = (
            q[0]["row_number"].as_str(),
            q[0]["reason"].as_str(),
            q[0]["column"].as_str(),
        );
        if got != ("2", reason.as_str(), *column) {
            failures.push(format!(
                "{what}: got {got:?} ({}), want (2, {reason}, {column})",
                q[0]["message"]
            ));
            continue;
        }
        let bad = changes
            .iter()
            .find(|(c, _)| c == column)
            .map_or("", |(_, v)| v.trim());
        let identifier = source.column(column).unwrap().identifier;
        let msg = &q[0]["message"];
        if !msg.contains(column) {
            failures.push(format!("{what}: message does not name the column: {msg}"));
        }
        if identifier && !bad.is_empty() && msg.contains(bad) {
            failures.push(format!("{what}: message echoes an identifier: {msg}"));
        }
        if !identifier && !bad.is_empty() && !msg.contains(bad) {
            failures.push(format!(
                "{what}: message lacks the bad value '{bad}': {msg}"
            ));
        }
        assert_eq!(accepted.len(), 2, "{what}");
        assert!(accepted.iter().all(|a| a["row_number"] != "2"), "{what}");
        assert_eq!(r.reasons.len(), 1);
        assert_eq!(
            (
                r.reasons[0].reason,
                r.reasons[0].column.as_deref(),
                r.reasons[0].rows
            ),
            (*reason, Some(*column), 1)
        );
        covered.entry(*source).or_default().insert(*reason);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Whole-file and duplicate rules are covered by the tests below; every other code must have
    // a row case in every source where it can occur.
    for source in [Source::Coroner, Source::Top, Source::Nsp] {
        for reason in ReasonCode::ALL {
            if reason.is_whole_file()
                || reason == ReasonCode::DuplicateKeyInFile
                || !reason.can_occur_in(source)
            {
                continue;
            }
            assert!(
                covered.get(&source).is_some_and(|s| s.contains(&reason)),
                "no case for {reason} in {source}"
            );
        }
    }
}

#[tokio::test]
async fn duplicate_key_and_revision_quarantines_both_rows() {
    let _shared = crate::TELEMETRY.read().await;
    for source in [Source::Coroner, Source::Top, Source::Nsp] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
        let dup = with_row_key(source, row_with(source, &[]), 2);
        let rows = vec![
            with_row_key(source, row_with(source, &[]), 1),
            dup.clone(),
            with_row_key(source, row_with(source, &[]), 3),
            dup,
        ];
        // The same rows as CSV and as NDJSON (whose key pass parses only the key columns),
        // each into a store of its own.
        for (k, f) in [
            csv_file(dir.path(), "dup.csv", &rows),
            ndjson_file(dir.path(), "dup.ndjson", &rows),
        ]
        .iter()
        .enumerate()
        {
            let store =
                Store::open(dir.path().join(format!("store{k}")).to_str().unwrap()).unwrap();
            let r = &ingest(&store, source, &[f]).await[0];
            assert_eq!(
                (r.rows_read, r.rows_accepted, r.rows_quarantined),
                (4, 2, 2),
                "{source} {f:?}"
            );
            let q = crate::rows(&store, TableKind::Quarantine, source).await;
            let mut got: Vec<(String, String)> = q
                .iter()
                .map(|x| (x["row_number"].clone(), x["reason"].clone()))
                .collect();
            got.sort();
            assert_eq!(
                got,
                [
                    ("2".to_string(), "duplicate_key_in_file".to_string()),
                    ("4".to_string(), "duplicate_key_in_file".to_string())
                ],
                "{source} {f:?}"
            );
        }
        // A higher revision of the same key is not a duplicate.
        let mut rev2 = with_row_key(source, row_with(source, &[]), 2);
        for (c, v) in rev2.iter_mut() {
            if *c == "revision" {
                *v = "2".into();
            }
        }
        if rev2.iter().any(|(c, _)| *c == "revision") {
            let f = csv_file(
                dir.path(),
                "rev.csv",
                &[with_row_key(source, row_with(source, &[]), 2), rev2],
            );
            let r = &ingest(&store, source, &[&f]).await[0];
            assert_eq!(
                (r.rows_accepted, r.rows_quarantined),
                (2, 0),
                "{source}: revisions are distinct keys"
            );
        }
    }
}

#[tokio::test]
async fn whole_file_rejections_write_nothing() {
    let _shared = crate::TELEMETRY.read().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
    // Missing required columns: every missing column is named, with the file.
    let mut rows = vec![row_with(Source::Coroner, &[])];
    rows[0].retain(|(c, _)| *c != "sex" && *c != "date_of_death");
    let f = csv_file(dir.path(), "no-sex.csv", &rows);
    let pdf = dir.path().join("report.csv");
    std::fs::write(&pdf, b"%PDF-1.4\n1 0 obj\n").unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, b"").unwrap();
    let fake_xlsx = dir.path().join("book.xlsx");
    std::fs::write(&fake_xlsx, b"name,age\nx,1\n").unwrap();
    let bad_gz = dir.path().join("extract.csv.gz");
    std::fs::write(&bad_gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    let broken_zip = dir.path().join("trunc.xlsx");
    std::fs::write(&broken_zip, b"PK\x03\x04truncated").unwrap();
    let receipts = ingest(
        &store,
        Source::Coroner,
        &[&f, &pdf, &empty, &fake_xlsx, &bad_gz, &broken_zip],
    )
    .await;
    assert_eq!(receipts[0].reason, Some(ReasonCode::MissingRequiredColumn));
    let e = receipts[0].error.as_deref().unwrap();
    assert!(
        e.contains("no-sex.csv") && e.contains("sex") && e.contains("date_of_death"),
        "{e}"
    );
    for r in &receipts[1..] {
        assert_eq!(
            (r.status, r.reason),
            (Status::Rejected, Some(ReasonCode::UnreadableFile)),
            "{}: {:?}",
            r.file_name,
            r.error
        );
        assert!(r.error.as_deref().unwrap().contains(&r.file_name));
    }
    for r in &receipts {
        assert_eq!(r.status, Status::Rejected);
        assert_eq!(r.rows_accepted + r.rows_quarantined, 0);
    }
    for kind in [
        TableKind::Sources,
        TableKind::Quarantine,
        TableKind::Receipts,
    ] {
        assert!(
            store
                .table_info(&drd_store::table_path(
                    kind,
                    Source::Coroner,
                    crate::SUBMITTER
                ))
                .await
                .unwrap()
                .is_none(),
            "{kind:?} was written"
        );
    }
}

#[tokio::test]
async fn a_file_name_holding_an_identifier_is_recorded_as_withheld() {
    let _shared = crate::TELEMETRY.read().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store").to_str().unwrap()).unwrap();
    let source = Source::Coroner;
    let rows = vec![
        with_row_key(source, row_with(source, &[]), 1),
        with_row_key(source, row_with(source, &[("sex", "Q")]), 2),
    ];
    let f = csv_file(dir.path(), "smith-943 476 5919.csv", &rows);
    let r = &ingest(&store, source, &[&f]).await[0];
    assert_eq!((r.rows_accepted, r.rows_quarantined), (1, 1));
    let want = format!("withheld-{}.csv", &r.file_sha256[..12]);
    assert_eq!(r.file_name, want);
    let q = crate::rows(&store, TableKind::Quarantine, source).await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["file_name"], want);
    assert!(
        q.iter()
            .flat_map(|m| m.values())
            .all(|v| !v.contains("943 476 5919") && !v.contains("9434765919"))
    );
    // An ordinary name is kept as sent.
    let f = csv_file(dir.path(), "extract-2025-01-31.csv", &rows[..1]);
    let r = &ingest(&store, source, &[&f]).await[0];
    assert_eq!(r.file_name, "extract-2025-01-31.csv");
}
