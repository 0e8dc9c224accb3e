//! Substances named on coroner extracts, mapped to groups through a versioned lookup
//! (formats.md §1, domain.md §1.3). The lookup is data (`reference/substances.csv`); this
//! module holds the types and the matching rule.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::codes::ControlledClass;
use crate::error::{ModelError, Result};
use crate::icd10::TCode;

/// Substance groups (formats.md §1). `Unclassified` is never in the lookup: it is what an
/// unknown name resolves to, so that the lookup can be extended (formats.md: not a row error).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SubstanceGroup {
    /// Heroin and morphine, counted together because heroin breaks down to morphine (domain.md §1.3).
    HeroinMorphine,
    /// Methadone.
    Methadone,
    /// Buprenorphine.
    Buprenorphine,
    /// Other opioids (oxycodone, tramadol, codeine, dihydrocodeine, …).
    OtherOpioids,
    /// Fentanyl and its analogues.
    FentanylAnalogues,
    /// Nitazenes (benzimidazole opioids).
    Nitazenes,
    /// Cocaine, including crack.
    Cocaine,
    /// Amphetamines, including methamphetamine.
    Amphetamines,
    /// MDMA.
    Mdma,
    /// Prescribable benzodiazepines.
    Benzodiazepines,
    /// "Street" benzodiazepines (etizolam, bromazolam, …).
    StreetBenzodiazepines,
    /// Gabapentinoids (pregabalin, gabapentin).
    Gabapentinoids,
    /// Antidepressants.
    Antidepressants,
    /// New psychoactive substances (e.g. synthetic cannabinoid receptor agonists).
    Nps,
    /// Alcohol.
    Alcohol,
    /// Anything else in the lookup (cannabis, ketamine, paracetamol, …).
    Other,
    /// A name the lookup does not know.
    Unclassified,
}

impl SubstanceGroup {
    /// Every group a lookup row may name (not `Unclassified`).
    pub const LOOKUP_GROUPS: [SubstanceGroup; 16] = [
        SubstanceGroup::HeroinMorphine,
        SubstanceGroup::Methadone,
        SubstanceGroup::Buprenorphine,
        SubstanceGroup::OtherOpioids,
        SubstanceGroup::FentanylAnalogues,
        SubstanceGroup::Nitazenes,
        SubstanceGroup::Cocaine,
        SubstanceGroup::Amphetamines,
        SubstanceGroup::Mdma,
        SubstanceGroup::Benzodiazepines,
        SubstanceGroup::StreetBenzodiazepines,
        SubstanceGroup::Gabapentinoids,
        SubstanceGroup::Antidepressants,
        SubstanceGroup::Nps,
        SubstanceGroup::Alcohol,
        SubstanceGroup::Other,
    ];

    /// The group id used in files and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            SubstanceGroup::HeroinMorphine => "heroin_morphine",
            SubstanceGroup::Methadone => "methadone",
            SubstanceGroup::Buprenorphine => "buprenorphine",
            SubstanceGroup::OtherOpioids => "other_opioids",
            SubstanceGroup::FentanylAnalogues => "fentanyl_analogues",
            SubstanceGroup::Nitazenes => "nitazenes",
            SubstanceGroup::Cocaine => "cocaine",
            SubstanceGroup::Amphetamines => "amphetamines",
            SubstanceGroup::Mdma => "mdma",
            SubstanceGroup::Benzodiazepines => "benzodiazepines",
            SubstanceGroup::StreetBenzodiazepines => "street_benzodiazepines",
            SubstanceGroup::Gabapentinoids => "gabapentinoids",
            SubstanceGroup::Antidepressants => "antidepressants",
            SubstanceGroup::Nps => "nps",
            SubstanceGroup::Alcohol => "alcohol",
            SubstanceGroup::Other => "other",
            SubstanceGroup::Unclassified => "unclassified",
        }
    }

    /// Parses a group id a lookup row may name.
    pub fn parse(raw: &str) -> Result<SubstanceGroup> {
        let t = raw.trim();
        let norm = crate::codes::normalise_code(t);
        Self::LOOKUP_GROUPS
            .into_iter()
            .find(|g| g.as_str() == norm)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::LOOKUP_GROUPS.iter().map(|g| g.as_str()).collect();
                ModelError::invalid("substance group", t, format!("one of {}", all.join(", ")))
            })
    }
}

/// Matching key for a substance name: lower case with all whitespace removed, so that
/// `Crack  Cocaine`, ` crack cocaine ` and `CRACK COCAINE` all match (case- and
/// whitespace-insensitive).
pub fn substance_key(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits a substance list cell: names separated by `;` or `|`, trimmed, blanks dropped.
pub fn split_substance_list(raw: &str) -> Vec<String> {
    raw.split([';', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// One versioned row of the substance lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct SubstanceEntry {
    /// The canonical name.
    pub name: String,
    /// Other names that mean the same substance.
    pub synonyms: Vec<String>,
    /// Its group.
    pub group: SubstanceGroup,
    /// Misuse of Drugs Act 1971 class, `None` if not controlled in this validity window.
    pub controlled_class: Option<ControlledClass>,
    /// The ICD-10 T-code EMCDDA Selection B uses.
    pub t_code: Option<TCode>,
    /// First day the row applies (inclusive).
    pub valid_from: NaiveDate,
    /// Last day the row applies (inclusive); `None` while current.
    pub valid_to: Option<NaiveDate>,
}

impl SubstanceEntry {
    /// Whether the row applies on a date.
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && self.valid_to.is_none_or(|t| date <= t)
    }
}

/// A substance name resolved on a date.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The canonical name, or the name as written when unclassified.
    pub name: String,
    /// The group (`Unclassified` for an unknown name).
    pub group: SubstanceGroup,
    /// Controlled class on that date.
    pub controlled_class: Option<ControlledClass>,
    /// ICD-10 T-code.
    pub t_code: Option<TCode>,
}

/// The substance lookup: every name and synonym of every row, matched case- and
/// whitespace-insensitively, with validity dates.
#[derive(Debug, Clone, Default)]
pub struct SubstanceLookup {
    entries: Vec<SubstanceEntry>,
    index: HashMap<String, Vec<usize>>,
}

impl SubstanceLookup {
    /// Builds the lookup. Fails if one name (or synonym) has two rows valid on the same day, or
    /// if a row ends before it starts.
    pub fn new(entries: Vec<SubstanceEntry>) -> Result<SubstanceLookup> {
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.valid_to.is_some_and(|t| t < e.valid_from) {
                return Err(ModelError::invalid(
                    "substance validity",
                    &e.name,
                    "valid_to on or after valid_from",
                ));
            }
            for n in std::iter::once(&e.name).chain(&e.synonyms) {
                let key = substance_key(n);
                let slot = index.entry(key).or_default();
                for &j in slot.iter() {
                    let o: &SubstanceEntry = &entries[j];
                    let overlap = e.valid_from <= o.valid_to.unwrap_or(NaiveDate::MAX)
                        && o.valid_from <= e.valid_to.unwrap_or(NaiveDate::MAX);
                    if overlap && j != i {
                        return Err(ModelError::invalid(
                            "substance name",
                            n,
                            format!(
                                "one row per name on any date, but rows for '{}' and '{}' overlap in validity",
                                o.name, e.name
                            ),
                        ));
                    }
                }
                if !slot.contains(&i) {
                    slot.push(i);
                }
            }
        }
        Ok(SubstanceLookup { entries, index })
    }

    /// Every row.
    pub fn entries(&self) -> &[SubstanceEntry] {
        &self.entries
    }

    /// The row for a name valid on a date.
    pub fn lookup(&self, name: &str, on: NaiveDate) -> Option<&SubstanceEntry> {
        self.index
            .get(&substance_key(name))?
            .iter()
            .map(|&i| &self.entries[i])
            .find(|e| e.valid_on(on))
    }

    /// Resolves a name on a date; unknown names are `Unclassified`, kept as written (trimmed).
    pub fn resolve(&self, name: &str, on: NaiveDate) -> Resolved {
        match self.lookup(name, on) {
            Some(e) => Resolved {
                name: e.name.clone(),
                group: e.group,
                controlled_class: e.controlled_class,
                t_code: e.t_code.clone(),
            },
            None => Resolved {
                name: name.trim().to_string(),
                group: SubstanceGroup::Unclassified,
                controlled_class: None,
                t_code: None,
            },
        }
    }

    /// Resolves every name of a list cell (see [`split_substance_list`]).
    pub fn resolve_list(&self, cell: &str, on: NaiveDate) -> Vec<Resolved> {
        split_substance_list(cell)
            .iter()
            .map(|n| self.resolve(n, on))
            .collect()
    }
}
