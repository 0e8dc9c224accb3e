//! The closed list of quarantine reason codes (formats.md, "Reason codes"). Ingest, the
//! synthetic generator's manifest of planted faults and the quarantine export all use this one
//! enum, so a code cannot drift between them.

use crate::codes::Source;
use crate::error::{ModelError, Result};

/// Why a row (or a whole file) was not accepted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// A required column is absent; the whole file is rejected, naming every missing column.
    MissingRequiredColumn,
    /// Not a readable CSV, XLSX or NDJSON; the whole file is rejected.
    UnreadableFile,
    /// A required field is blank.
    MissingRequiredValue,
    /// A date is unparseable, impossible or before 1900.
    InvalidDate,
    /// A date is after the extract was received.
    FutureDate,
    /// Dates in an impossible order (inquest before death, TOP before episode start, period end
    /// before start, birth after the event).
    DateOrder,
    /// An NSP period longer than 92 days.
    PeriodTooLong,
    /// Not a number where one is required.
    InvalidNumber,
    /// A number outside its allowed range.
    OutOfRange,
    /// Not one of the allowed values of a coded field.
    InvalidCode,
    /// Not of the GSS code shape.
    InvalidGssCode,
    /// A GSS-shaped code that is not in the loaded geography vintage.
    UnknownArea,
    /// A real area that this submitter may not send.
    NotAuthorisedForArea,
    /// Not 10 digits, or a wrong Modulus 11 check digit.
    InvalidNhsNumber,
    /// Not a UK postcode.
    InvalidPostcode,
    /// A coroner case with neither `age` nor `date_of_birth`.
    MissingAgeAndDob,
    /// Counts that contradict each other.
    CountInconsistent,
    /// The same key and revision twice in one file (both rows are quarantined).
    DuplicateKeyInFile,
}

impl ReasonCode {
    /// Every code, in the order of formats.md.
    pub const ALL: [ReasonCode; 18] = [
        ReasonCode::MissingRequiredColumn,
        ReasonCode::UnreadableFile,
        ReasonCode::MissingRequiredValue,
        ReasonCode::InvalidDate,
        ReasonCode::FutureDate,
        ReasonCode::DateOrder,
        ReasonCode::PeriodTooLong,
        ReasonCode::InvalidNumber,
        ReasonCode::OutOfRange,
        ReasonCode::InvalidCode,
        ReasonCode::InvalidGssCode,
        ReasonCode::UnknownArea,
        ReasonCode::NotAuthorisedForArea,
        ReasonCode::InvalidNhsNumber,
        ReasonCode::InvalidPostcode,
        ReasonCode::MissingAgeAndDob,
        ReasonCode::CountInconsistent,
        ReasonCode::DuplicateKeyInFile,
    ];

    /// The code as written in quarantine tables and receipts.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::MissingRequiredColumn => "missing_required_column",
            ReasonCode::UnreadableFile => "unreadable_file",
            ReasonCode::MissingRequiredValue => "missing_required_value",
            ReasonCode::InvalidDate => "invalid_date",
            ReasonCode::FutureDate => "future_date",
            ReasonCode::DateOrder => "date_order",
            ReasonCode::PeriodTooLong => "period_too_long",
            ReasonCode::InvalidNumber => "invalid_number",
            ReasonCode::OutOfRange => "out_of_range",
            ReasonCode::InvalidCode => "invalid_code",
            ReasonCode::InvalidGssCode => "invalid_gss_code",
            ReasonCode::UnknownArea => "unknown_area",
            ReasonCode::NotAuthorisedForArea => "not_authorised_for_area",
            ReasonCode::InvalidNhsNumber => "invalid_nhs_number",
            ReasonCode::InvalidPostcode => "invalid_postcode",
            ReasonCode::MissingAgeAndDob => "missing_age_and_dob",
            ReasonCode::CountInconsistent => "count_inconsistent",
            ReasonCode::DuplicateKeyInFile => "duplicate_key_in_file",
        }
    }

    /// Parses a code written as [`ReasonCode::as_str`] gives it.
    pub fn parse(raw: &str) -> Result<ReasonCode> {
        let t = raw.trim();
        ReasonCode::ALL
            .into_iter()
            .find(|r| r.as_str() == t)
            .ok_or_else(|| {
                let all: Vec<&str> = ReasonCode::ALL.iter().map(|r| r.as_str()).collect();
                ModelError::invalid("reason code", t, format!("one of {}", all.join(", ")))
            })
    }

    /// Whether the code rejects a whole file rather than one row.
    pub fn is_whole_file(self) -> bool {
        matches!(
            self,
            ReasonCode::MissingRequiredColumn | ReasonCode::UnreadableFile
        )
    }

    /// Whether the code can occur for a source, given that source's columns (formats.md §1–3).
    /// NHS numbers are in coroner and TOP extracts; postcodes and age in coroner ones; periods
    /// and counts in NSP returns.
    pub fn can_occur_in(self, source: Source) -> bool {
        match self {
            ReasonCode::InvalidNhsNumber => matches!(source, Source::Coroner | Source::Top),
            ReasonCode::InvalidPostcode | ReasonCode::MissingAgeAndDob => source == Source::Coroner,
            ReasonCode::PeriodTooLong | ReasonCode::CountInconsistent => source == Source::Nsp,
            _ => true,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::codes::Coded;

    #[test]
    fn closed_list_round_trips() {
        assert_eq!(ReasonCode::ALL.len(), 18);
        for r in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(r.as_str()).unwrap(), r);
            // The manifest is written with serde: its spelling must agree with as_str.
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        let e = ReasonCode::parse("bad_vibes").unwrap_err().to_string();
        assert!(
            e.contains("'bad_vibes'") && e.contains("unknown_area"),
            "{e}"
        );
    }

    #[test]
    fn applicability_by_source() {
        assert!(ReasonCode::InvalidPostcode.can_occur_in(Source::Coroner));
        assert!(!ReasonCode::InvalidPostcode.can_occur_in(Source::Top));
        assert!(!ReasonCode::InvalidNhsNumber.can_occur_in(Source::Nsp));
        assert!(ReasonCode::PeriodTooLong.can_occur_in(Source::Nsp));
        assert!(ReasonCode::UnknownArea.can_occur_in(Source::Top));
        assert_eq!(Source::parse("NSP").unwrap(), Source::Nsp);
        assert!(ReasonCode::UnreadableFile.is_whole_file());
        assert!(!ReasonCode::DuplicateKeyInFile.is_whole_file());
    }
}
