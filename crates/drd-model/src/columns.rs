//! The column contract of each extract (formats.md §1–3) and header normalisation.
//!
//! The synthetic generator writes these headers and the ingest maps incoming headers onto them,
//! so both sides share one list.

use crate::codes::Source;

/// Normalises a header as formats.md says: trim, lower-case, and spaces and hyphens count as
/// underscores (`Date of death` = `date_of_death`). A byte-order mark is dropped too.
pub fn normalise_header(raw: &str) -> String {
    raw.trim_start_matches('\u{feff}')
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The type an extract column carries, as formats.md states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Free text.
    Text,
    /// A date.
    Date,
    /// A whole number.
    Integer,
    /// A decimal number.
    Number,
    /// A coded value (see [`crate::codes`]).
    Code,
    /// Yes/no/unknown.
    YesNoUnknown,
    /// A GSS area code.
    Gss,
    /// A `;`- or `|`-separated list of substance names.
    List,
}

/// One column of an extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Normalised column name.
    pub name: &'static str,
    /// Whether the file is rejected without it.
    pub required: bool,
    /// Whether it is a direct identifier that must never be stored, logged or echoed in clear.
    pub identifier: bool,
    /// The value type.
    pub kind: ColumnKind,
}

const fn col(name: &'static str, required: bool, kind: ColumnKind) -> ColumnSpec {
    ColumnSpec {
        name,
        required,
        identifier: false,
        kind,
    }
}

const fn ident(name: &'static str, required: bool, kind: ColumnKind) -> ColumnSpec {
    ColumnSpec {
        name,
        required,
        identifier: true,
        kind,
    }
}

use ColumnKind as K;

/// Coroner extract columns (formats.md §1).
pub const CORONER_COLUMNS: &[ColumnSpec] = &[
    ident("case_ref", true, K::Text),
    col("coroner_area", true, K::Text),
    col("revision", false, K::Integer),
    col("extract_date", false, K::Date),
    ident("nhs_number", false, K::Text),
    ident("surname", false, K::Text),
    ident("forenames", false, K::Text),
    ident("date_of_birth", false, K::Date),
    col("age", false, K::Integer),
    col("sex", true, K::Code),
    col("residence_area", true, K::Gss),
    ident("postcode", false, K::Text),
    col("date_of_death", true, K::Date),
    col("date_of_inquest", false, K::Date),
    col("place_of_death", false, K::Code),
    col("underlying_cause_icd10", false, K::Code),
    col("conclusion", false, K::Code),
    col("substances_implicated", false, K::List),
    col("substances_present", false, K::List),
    col("known_drug_user", false, K::YesNoUnknown),
    col("injecting_history", false, K::YesNoUnknown),
    col("in_treatment", false, K::YesNoUnknown),
    col("released_from_prison_days", false, K::Integer),
    col("naloxone_administered", false, K::YesNoUnknown),
    col("alone_at_time", false, K::YesNoUnknown),
    col("withdrawn", false, K::YesNoUnknown),
];

/// Treatment Outcomes Profile columns (formats.md §2).
pub const TOP_COLUMNS: &[ColumnSpec] = &[
    col("provider_code", true, K::Text),
    col("partnership_code", true, K::Gss),
    ident("client_ref", true, K::Text),
    ident("nhs_number", false, K::Text),
    ident("date_of_birth", true, K::Date),
    col("sex", true, K::Code),
    col("episode_start", true, K::Date),
    col("top_date", true, K::Date),
    col("stage", true, K::Code),
    col("revision", false, K::Integer),
    col("alcohol_days", false, K::Integer),
    col("opiate_days", false, K::Integer),
    col("crack_days", false, K::Integer),
    col("cocaine_days", false, K::Integer),
    col("amphetamine_days", false, K::Integer),
    col("cannabis_days", false, K::Integer),
    col("other_drug_days", false, K::Integer),
    col("alcohol_units_per_day", false, K::Number),
    col("injected_days", false, K::Integer),
    col("shared_equipment", false, K::YesNoUnknown),
    col("shoplifting_days", false, K::Integer),
    col("selling_drugs_days", false, K::Integer),
    col("theft_days", false, K::Integer),
    col("assault", false, K::YesNoUnknown),
    col("psych_health", false, K::Integer),
    col("phys_health", false, K::Integer),
    col("quality_of_life", false, K::Integer),
    col("paid_work_days", false, K::Integer),
    col("education_days", false, K::Integer),
    col("acute_housing_problem", false, K::YesNoUnknown),
    col("risk_of_eviction", false, K::YesNoUnknown),
    col("exit_reason", false, K::Code),
];

/// Needle-and-syringe programme return columns (formats.md §3).
pub const NSP_COLUMNS: &[ColumnSpec] = &[
    col("site_code", true, K::Text),
    col("site_type", true, K::Code),
    col("partnership_code", true, K::Gss),
    col("period_start", true, K::Date),
    col("period_end", true, K::Date),
    col("revision", false, K::Integer),
    col("transactions", true, K::Integer),
    col("clients", false, K::Integer),
    col("new_clients", false, K::Integer),
    col("syringe_sets_issued", true, K::Integer),
    col("needles_issued", false, K::Integer),
    col("sharps_bins_issued", false, K::Integer),
    col("sharps_bins_returned", false, K::Integer),
    col("foil_packs", false, K::Integer),
    col("pipes_issued", false, K::Integer),
    col("naloxone_kits_issued", false, K::Integer),
    col("bbv_tests_offered", false, K::Integer),
    col("bbv_tests_done", false, K::Integer),
    col("referrals_to_treatment", false, K::Integer),
];

impl Source {
    /// The extract's columns.
    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            Source::Coroner => CORONER_COLUMNS,
            Source::Top => TOP_COLUMNS,
            Source::Nsp => NSP_COLUMNS,
        }
    }

    /// The required columns.
    pub fn required_columns(self) -> impl Iterator<Item = &'static str> {
        self.columns().iter().filter(|c| c.required).map(|c| c.name)
    }

    /// The key of the current view (formats.md §1–3), before `revision`.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Source::Coroner => &["coroner_area", "case_ref"],
            Source::Top => &["provider_code", "client_ref", "top_date", "stage"],
            Source::Nsp => &["site_code", "period_start"],
        }
    }

    /// Looks up a column by its normalised name.
    pub fn column(self, normalised: &str) -> Option<&'static ColumnSpec> {
        self.columns().iter().find(|c| c.name == normalised)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_normalisation() {
        assert_eq!(normalise_header("Date of death"), "date_of_death");
        assert_eq!(normalise_header("  NHS-Number "), "nhs_number");
        assert_eq!(normalise_header("\u{feff}case_ref"), "case_ref");
        assert_eq!(
            normalise_header("Underlying Cause ICD10"),
            "underlying_cause_icd10"
        );
    }

    #[test]
    fn contracts_match_formats_md() {
        let req: Vec<_> = Source::Coroner.required_columns().collect();
        assert_eq!(
            req,
            [
                "case_ref",
                "coroner_area",
                "sex",
                "residence_area",
                "date_of_death"
            ]
        );
        let req: Vec<_> = Source::Top.required_columns().collect();
        assert_eq!(
            req,
            [
                "provider_code",
                "partnership_code",
                "client_ref",
                "date_of_birth",
                "sex",
                "episode_start",
                "top_date",
                "stage"
            ]
        );
        let req: Vec<_> = Source::Nsp.required_columns().collect();
        assert_eq!(
            req,
            [
                "site_code",
                "site_type",
                "partnership_code",
                "period_start",
                "period_end",
                "transactions",
                "syringe_sets_issued"
            ]
        );
        let idents: Vec<_> = Source::Coroner
            .columns()
            .iter()
            .filter(|c| c.identifier)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            idents,
            [
                "case_ref",
                "nhs_number",
                "surname",
                "forenames",
                "date_of_birth",
                "postcode"
            ]
        );
        assert!(Source::Nsp.columns().iter().all(|c| !c.identifier));
        for s in [Source::Coroner, Source::Top, Source::Nsp] {
            for k in s.key_columns() {
                assert!(
                    s.column(k).unwrap().required,
                    "{s}: key column {k} must be required"
                );
            }
        }
    }
}
