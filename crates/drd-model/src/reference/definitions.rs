//! Definitions as data: the substance lookup, ICD-10 case definitions and the standard
//! population.

use std::collections::HashSet;
use std::io::Read;

use chrono::NaiveDate;

use super::{Table, parse_bool};
use crate::age::EspBand;
use crate::casedef::{CaseDefinitions, CaseRule};
use crate::codes::{Coded, ControlledClass};
use crate::date::parse_date;
use crate::error::{ModelError, Result};
use crate::icd10::TCode;
use crate::substance::{SubstanceEntry, SubstanceGroup, SubstanceLookup, split_substance_list};

fn opt_date(t: &Table, i: usize, col: &str) -> Result<Option<NaiveDate>> {
    t.parse_opt(i, col, parse_date)
}

/// Loads `name, synonyms, group, controlled_class, icd10_t_code, valid_from, valid_to`.
/// Synonyms are separated by `;` or `|`. A blank `controlled_class` means not controlled in
/// that window; a blank `valid_to` means current. One name (or synonym) may have several rows
/// only if their validity windows do not overlap (e.g. pregabalin before and after it became
/// Class C in April 2019).
pub fn load_substances<R: Read>(file: &str, reader: R) -> Result<SubstanceLookup> {
    let t = Table::read(
        file,
        reader,
        &[
            "name",
            "synonyms",
            "group",
            "controlled_class",
            "icd10_t_code",
            "valid_from",
            "valid_to",
        ],
        &[],
    )?;
    let mut entries = Vec::with_capacity(t.rows.len());
    for i in 0..t.rows.len() {
        let entry = SubstanceEntry {
            name: t.required(i, "name")?.to_string(),
            synonyms: split_substance_list(t.value(i, "synonyms")),
            group: t.parse(i, "group", SubstanceGroup::parse)?,
            controlled_class: t.parse_opt(i, "controlled_class", ControlledClass::parse)?,
            t_code: t.parse_opt(i, "icd10_t_code", TCode::parse)?,
            valid_from: t.parse(i, "valid_from", parse_date)?,
            valid_to: opt_date(&t, i, "valid_to")?,
        };
        if entry.valid_to.is_some_and(|to| to < entry.valid_from) {
            return Err(t.err(i, "valid_to", "valid_to is before valid_from"));
        }
        entries.push(entry);
        // Check overlaps row by row so the error can name the row.
        SubstanceLookup::new(entries.clone()).map_err(|e| t.wrap(i, "name", &e))?;
    }
    SubstanceLookup::new(entries)
}

/// Loads case definitions: `definition, icd10_from, icd10_to, requires_controlled_substance,
/// requires_t_codes, excluded, valid_from, valid_to`, plus the optional `enabled` (default
/// true) and `excluded_if_only_substances`. Definition ids are lower-case snake case.
pub fn load_case_definitions<R: Read>(file: &str, reader: R) -> Result<CaseDefinitions> {
    let required = [
        "definition",
        "icd10_from",
        "icd10_to",
        "requires_controlled_substance",
        "requires_t_codes",
        "excluded",
        "valid_from",
        "valid_to",
    ];
    let t = Table::read(file, reader, &required, &[])?;
    let mut rules = Vec::with_capacity(t.rows.len());
    for i in 0..t.rows.len() {
        let definition = t.parse(i, "definition", |v| {
            if v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                Ok(v.to_string())
            } else {
                Err(ModelError::invalid(
                    "definition id",
                    v,
                    "lower-case letters, digits and underscores, e.g. ons_drug_misuse",
                ))
            }
        })?;
        let t_codes = split_substance_list(t.value(i, "requires_t_codes"))
            .iter()
            .map(|c| TCode::parse(c))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| t.wrap(i, "requires_t_codes", &e))?;
        let rule = CaseRule {
            definition,
            icd10_from: t.parse(i, "icd10_from", |v| Ok(v.to_ascii_uppercase()))?,
            icd10_to: t.parse(i, "icd10_to", |v| Ok(v.to_ascii_uppercase()))?,
            requires_controlled_substance: t.parse(
                i,
                "requires_controlled_substance",
                parse_bool,
            )?,
            requires_t_codes: t_codes,
            excluded: t.parse(i, "excluded", parse_bool)?,
            excluded_if_only_substances: split_substance_list(
                t.value(i, "excluded_if_only_substances"),
            ),
            enabled: t.parse_opt(i, "enabled", parse_bool)?.unwrap_or(true),
            valid_from: t.parse(i, "valid_from", parse_date)?,
            valid_to: opt_date(&t, i, "valid_to")?,
        };
        rule.validate().map_err(|e| t.wrap(i, "icd10_from", &e))?;
        rules.push(rule);
    }
    CaseDefinitions::new(rules)
}

/// Loads a standard population `age_band, weight` over the 19 ESP2013 bands, each exactly once
/// (for ESP2013 itself, or another standard mapped onto the same bands).
pub fn load_standard_population<R: Read>(file: &str, reader: R) -> Result<Vec<(EspBand, f64)>> {
    let t = Table::read(
        file,
        reader,
        &["age_band", "weight"],
        &[("standard_population", "weight")],
    )?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for i in 0..t.rows.len() {
        let band = t.parse(i, "age_band", EspBand::parse)?;
        let w = t.parse(i, "weight", |v| match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(ModelError::invalid(
                "standard population weight",
                v,
                "a number of 0 or more",
            )),
        })?;
        if !seen.insert(band) {
            return Err(t.err(i, "age_band", format!("band {band} appears twice")));
        }
        out.push((band, w));
    }
    let missing: Vec<String> = EspBand::all()
        .filter(|b| !seen.contains(b))
        .map(|b| b.label())
        .collect();
    if !missing.is_empty() {
        return Err(ModelError::Reference {
            file: file.into(),
            row: None,
            line: None,
            column: Some("age_band".into()),
            message: format!("missing band(s): {}", missing.join(", ")),
        });
    }
    out.sort_by_key(|(b, _)| *b);
    Ok(out)
}
