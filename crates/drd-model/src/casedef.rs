//! ICD-10 case definitions as data (domain.md §1–2, formats.md §4 `case_definitions`), and the
//! classifier that applies them to one death.
//!
//! A definition is the set of its enabled rows valid on the date of death. A death meets it
//! when its underlying cause falls in an including row's range and that row's substance
//! conditions hold, and no excluding row (`excluded = true`) whose conditions hold covers it.
//! Substance conditions look only at the substances *implicated*: formats.md says
//! `substances_present` never makes a death a misuse death.

use chrono::NaiveDate;

use crate::error::{ModelError, Result};
use crate::icd10::{Icd10, TCode};
use crate::substance::{Resolved, substance_key};

/// The three definitions drdsurv publishes. Others (e.g. CDC) can be added as data.
pub const ONS_DRUG_POISONING: &str = "ons_drug_poisoning";
/// ONS drug misuse (domain.md §1.2).
pub const ONS_DRUG_MISUSE: &str = "ons_drug_misuse";
/// EMCDDA Selection B (domain.md §2.3).
pub const EMCDDA_SELECTION_B: &str = "emcdda_selection_b";

/// One row of the case definitions table.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRule {
    /// Definition id, e.g. `ons_drug_misuse`.
    pub definition: String,
    /// First ICD-10 category of the range (3 characters, inclusive).
    pub icd10_from: String,
    /// Last ICD-10 category of the range (3 characters, inclusive).
    pub icd10_to: String,
    /// The row applies only if an implicated substance is controlled under the Misuse of Drugs Act 1971.
    pub requires_controlled_substance: bool,
    /// The row applies only if an implicated substance has one of these T-codes (empty: no condition).
    pub requires_t_codes: Vec<TCode>,
    /// `true` removes the range from what other rows of the definition include.
    pub excluded: bool,
    /// For excluding rows: applies only when every implicated controlled substance is one of
    /// these names (ONS's compound-analgesic exclusion). Empty: no such condition.
    pub excluded_if_only_substances: Vec<String>,
    /// Rows can be shipped switched off (the unconfirmed ONS exclusion, domain.md §1.2).
    pub enabled: bool,
    /// First date of death the row applies to (inclusive).
    pub valid_from: NaiveDate,
    /// Last date of death the row applies to (inclusive); `None` while current.
    pub valid_to: Option<NaiveDate>,
}

impl CaseRule {
    /// Checks the row's own consistency: categories are `A99` shaped, same letter, in order.
    pub fn validate(&self) -> Result<()> {
        for (what, c) in [
            ("icd10_from", &self.icd10_from),
            ("icd10_to", &self.icd10_to),
        ] {
            let code = Icd10::parse(c)?;
            if code.as_str().len() != 3 {
                return Err(ModelError::invalid(
                    "ICD-10 category",
                    c,
                    format!("a three-character category for {what}, e.g. X40"),
                ));
            }
        }
        if self.icd10_from.as_bytes()[0] != self.icd10_to.as_bytes()[0]
            || self.icd10_from > self.icd10_to
        {
            return Err(ModelError::invalid(
                "ICD-10 range",
                &format!("{}-{}", self.icd10_from, self.icd10_to),
                "a range within one chapter letter with icd10_from not after icd10_to",
            ));
        }
        if self.valid_to.is_some_and(|t| t < self.valid_from) {
            return Err(ModelError::invalid(
                "validity",
                &format!("{:?}", self.valid_to),
                "valid_to on or after valid_from",
            ));
        }
        if !self.excluded && !self.excluded_if_only_substances.is_empty() {
            return Err(ModelError::invalid(
                "case rule",
                &self.definition,
                "excluded_if_only_substances only on rows with excluded = true",
            ));
        }
        Ok(())
    }

    fn applies(&self, definition: &str, on: NaiveDate) -> bool {
        self.enabled
            && self.definition == definition
            && self.valid_from <= on
            && self.valid_to.is_none_or(|t| on <= t)
    }

    fn covers(&self, cause: &Icd10) -> bool {
        let cat = cause.category();
        self.icd10_from.as_str() <= cat && cat <= self.icd10_to.as_str()
    }

    fn substance_conditions_hold(&self, implicated: &[Resolved]) -> bool {
        let controlled_ok = !self.requires_controlled_substance
            || implicated.iter().any(|s| s.controlled_class.is_some());
        let t_ok = self.requires_t_codes.is_empty()
            || implicated.iter().any(|s| {
                s.t_code
                    .as_ref()
                    .is_some_and(|t| self.requires_t_codes.contains(t))
            });
        let only_ok = self.excluded_if_only_substances.is_empty() || {
            let allowed: Vec<String> = self
                .excluded_if_only_substances
                .iter()
                .map(|n| substance_key(n))
                .collect();
            let controlled: Vec<&Resolved> = implicated
                .iter()
                .filter(|s| s.controlled_class.is_some())
                .collect();
            !controlled.is_empty()
                && controlled
                    .iter()
                    .all(|s| allowed.contains(&substance_key(&s.name)))
        };
        controlled_ok && t_ok && only_ok
    }
}

/// A validated set of case-definition rows.
#[derive(Debug, Clone, Default)]
pub struct CaseDefinitions {
    rules: Vec<CaseRule>,
}

impl CaseDefinitions {
    /// Validates every row.
    pub fn new(rules: Vec<CaseRule>) -> Result<CaseDefinitions> {
        for r in &rules {
            r.validate()?;
        }
        Ok(CaseDefinitions { rules })
    }

    /// The rows.
    pub fn rules(&self) -> &[CaseRule] {
        &self.rules
    }

    /// Distinct definition ids, in first-seen order.
    pub fn definitions(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rules {
            if !out.contains(&r.definition.as_str()) {
                out.push(&r.definition);
            }
        }
        out
    }

    /// Whether a death with this underlying cause and these implicated substances (resolved on
    /// the date of death) meets a definition on that date.
    pub fn meets(
        &self,
        definition: &str,
        cause: &Icd10,
        implicated: &[Resolved],
        date_of_death: NaiveDate,
    ) -> bool {
        let rows = || {
            self.rules.iter().filter(|r| {
                r.applies(definition, date_of_death)
                    && r.covers(cause)
                    && r.substance_conditions_hold(implicated)
            })
        };
        rows().any(|r| !r.excluded) && !rows().any(|r| r.excluded)
    }
}
