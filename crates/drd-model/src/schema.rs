//! Arrow schemas of the stored tables: the three source record types after ingest, and the
//! reference tables.
//!
//! Source records are pseudonymised. No column holds an NHS number, name, date of birth, full
//! postcode or provider case/client reference: those become `person_id` (keyed HMAC), the
//! submitter-salted `case_id`/`client_id`, `age`/`age_band` and `postcode_district`
//! (formats.md, "Direct identifiers"). Yes/no/unknown fields are nullable booleans (null means
//! unknown). Every source row carries the provenance columns of formats.md ("Resubmission and
//! the current view"). Schemas only grow: a later version may add nullable columns, never
//! remove, rename or retype one.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::codes::Source;

/// TOP days-used columns (formats.md §2), each 0–28, in stored order.
pub const TOP_SUBSTANCE_DAYS: [&str; 7] = [
    "alcohol_days",
    "opiate_days",
    "crack_days",
    "cocaine_days",
    "amphetamine_days",
    "cannabis_days",
    "other_drug_days",
];

/// Optional NSP count columns (formats.md §3), each ≥ 0, in stored order after `syringe_sets_issued`.
pub const NSP_OPTIONAL_COUNTS: [&str; 9] = [
    "needles_issued",
    "sharps_bins_issued",
    "sharps_bins_returned",
    "foil_packs",
    "pipes_issued",
    "naloxone_kits_issued",
    "bbv_tests_offered",
    "bbv_tests_done",
    "referrals_to_treatment",
];

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn date(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Date32, nullable)
}
fn int32(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int32, nullable)
}
fn int64(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}
fn boolean(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Boolean, nullable)
}
fn float64(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}
fn list_utf8(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("element", DataType::Utf8, false))),
        true,
    )
}

/// Provenance columns carried by every stored source row.
pub fn provenance_fields() -> Vec<Field> {
    vec![
        utf8("submitter", false),
        int32("revision", false),
        date("extract_date", true),
        Field::new(
            "ingested_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        utf8("file_sha256", false),
        int64("row_number", false),
        utf8("geography_vintage", false),
    ]
}

/// Name of the pseudonymous key column each source stores in place of its provider reference.
pub fn pseudonymous_key_column(source: Source) -> Option<&'static str> {
    match source {
        Source::Coroner => Some("case_id"),
        Source::Top => Some("client_id"),
        Source::Nsp => None,
    }
}

/// Stored coroner case.
pub fn coroner_schema() -> SchemaRef {
    let mut f = provenance_fields();
    f.extend([
        utf8("case_id", false),
        utf8("coroner_area", false),
        utf8("person_id", true),
        int32("age", true),
        utf8("age_band", true),
        utf8("sex", false),
        utf8("residence_area", false),
        utf8("postcode_district", true),
        date("date_of_death", false),
        date("date_of_inquest", true),
        int32("registration_delay_days", true),
        utf8("place_of_death", true),
        utf8("underlying_cause_icd10", true),
        utf8("conclusion", true),
        list_utf8("substances_implicated"),
        list_utf8("substances_present"),
        boolean("known_drug_user", true),
        boolean("injecting_history", true),
        boolean("in_treatment", true),
        int32("released_from_prison_days", true),
        boolean("naloxone_administered", true),
        boolean("alone_at_time", true),
        boolean("withdrawn", false),
    ]);
    Arc::new(Schema::new(f))
}

/// Stored Treatment Outcomes Profile form.
pub fn top_schema() -> SchemaRef {
    let mut f = provenance_fields();
    f.extend([
        utf8("provider_code", false),
        utf8("partnership_code", false),
        utf8("client_id", false),
        utf8("person_id", true),
        int32("age", false),
        utf8("age_band", false),
        utf8("sex", false),
        date("episode_start", false),
        date("top_date", false),
        utf8("stage", false),
    ]);
    for n in TOP_SUBSTANCE_DAYS {
        f.push(int32(n, true));
    }
    f.push(float64("alcohol_units_per_day", true));
    f.push(int32("injected_days", true));
    f.push(boolean("shared_equipment", true));
    for n in ["shoplifting_days", "selling_drugs_days", "theft_days"] {
        f.push(int32(n, true));
    }
    f.push(boolean("assault", true));
    for n in [
        "psych_health",
        "phys_health",
        "quality_of_life",
        "paid_work_days",
        "education_days",
    ] {
        f.push(int32(n, true));
    }
    f.push(boolean("acute_housing_problem", true));
    f.push(boolean("risk_of_eviction", true));
    f.push(utf8("exit_reason", true));
    Arc::new(Schema::new(f))
}

/// Stored needle-and-syringe programme return.
pub fn nsp_schema() -> SchemaRef {
    let mut f = provenance_fields();
    f.extend([
        utf8("site_code", false),
        utf8("site_type", false),
        utf8("partnership_code", false),
        date("period_start", false),
        date("period_end", false),
        int64("transactions", false),
        int64("clients", true),
        int64("new_clients", true),
        int64("syringe_sets_issued", false),
    ]);
    for n in NSP_OPTIONAL_COUNTS {
        f.push(int64(n, true));
    }
    Arc::new(Schema::new(f))
}

/// The stored schema of a source.
pub fn source_schema(source: Source) -> SchemaRef {
    match source {
        Source::Coroner => coroner_schema(),
        Source::Top => top_schema(),
        Source::Nsp => nsp_schema(),
    }
}

/// Quarantined rows: one per rejected row, with the reason and the row's values after
/// identifiers were pseudonymised or dropped (`raw_json`, an object keyed by column).
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("submitter", false),
        utf8("source", false),
        utf8("file_sha256", false),
        utf8("file_name", false),
        int64("row_number", false),
        utf8("reason", false),
        utf8("column", true),
        utf8("message", false),
        utf8("raw_json", false),
        Field::new(
            "ingested_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// Receipts: one row per ingested file, reconciling rows read = accepted + quarantined.
pub fn receipts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("submitter", false),
        utf8("source", false),
        utf8("file_sha256", false),
        utf8("file_name", false),
        utf8("format", true),
        utf8("encoding", true),
        utf8("status", false),
        utf8("error", true),
        int64("rows_read", false),
        int64("rows_accepted", false),
        int64("rows_quarantined", false),
        int64("unlinkable_rows", false),
        utf8("reasons_json", false),
        list_utf8("warnings"),
        int64("source_version", true),
        int64("quarantine_version", true),
        int64("duration_ms", false),
        Field::new(
            "ingested_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// Reference table: partnerships (formats.md §4), with the geography vintage.
pub fn partnerships_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("code", false),
        utf8("name", false),
        utf8("region_code", false),
        utf8("region_name", false),
        utf8("comparator_group", true),
        utf8("vintage", false),
    ]))
}

/// Reference table: population by area, year, sex and ESP2013 band (long layout).
pub fn population_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("code", false),
        int32("year", false),
        utf8("sex", false),
        utf8("age_band", false),
        int64("population", false),
    ]))
}

/// Reference table: estimated people who inject drugs.
pub fn pwid_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("code", false),
        int32("year", false),
        float64("estimated_pwid", false),
    ]))
}

/// Reference table: substances and their synonyms, one row per name (synonyms expanded).
pub fn substances_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("name", false),
        utf8("canonical_name", false),
        utf8("group", false),
        utf8("controlled_class", true),
        utf8("icd10_t_code", true),
        date("valid_from", false),
        date("valid_to", true),
    ]))
}

/// Reference table: ICD-10 case definitions.
pub fn case_definitions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("definition", false),
        utf8("icd10_from", false),
        utf8("icd10_to", false),
        boolean("requires_controlled_substance", false),
        list_utf8("requires_t_codes"),
        boolean("excluded", false),
        list_utf8("excluded_if_only_substances"),
        boolean("enabled", false),
        date("valid_from", false),
        date("valid_to", true),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTIFIERS: [&str; 8] = [
        "nhs_number",
        "surname",
        "forenames",
        "date_of_birth",
        "postcode",
        "case_ref",
        "client_ref",
        "dob",
    ];

    #[test]
    fn stored_sources_hold_no_identifier() {
        for s in [Source::Coroner, Source::Top, Source::Nsp] {
            let schema = source_schema(s);
            for f in schema.fields() {
                assert!(
                    !IDENTIFIERS.contains(&f.name().as_str()),
                    "{s}: stores identifier column {}",
                    f.name()
                );
            }
            // Every non-identifier extract column is stored under its own name.
            for c in s.columns().iter().filter(|c| !c.identifier) {
                assert!(
                    schema.field_with_name(c.name).is_ok(),
                    "{s}: extract column {} is not stored",
                    c.name
                );
            }
            for p in [
                "revision",
                "extract_date",
                "ingested_at",
                "file_sha256",
                "row_number",
            ] {
                assert!(
                    schema.field_with_name(p).is_ok(),
                    "{s}: provenance column {p} missing"
                );
            }
            if let Some(k) = pseudonymous_key_column(s) {
                assert!(
                    !schema
                        .field_with_name(k)
                        .unwrap_or_else(|_| panic!("{k}"))
                        .is_nullable()
                );
            }
        }
    }

    #[test]
    fn reference_schemas_have_formats_md_columns() {
        let names = |s: SchemaRef| {
            s.fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(population_schema()),
            ["code", "year", "sex", "age_band", "population"]
        );
        assert_eq!(names(pwid_schema()), ["code", "year", "estimated_pwid"]);
        let cd = names(case_definitions_schema());
        for c in [
            "definition",
            "icd10_from",
            "icd10_to",
            "requires_controlled_substance",
            "requires_t_codes",
            "excluded",
            "valid_from",
            "valid_to",
        ] {
            assert!(cd.contains(&c.to_string()), "{c}");
        }
    }
}
