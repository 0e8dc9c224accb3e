//! The partnerships table: upper-tier local authorities with their region and comparator group.

use std::collections::HashMap;
use std::io::Read;

use super::Table;
use crate::error::{ModelError, Result};
use crate::ids::GssCode;

/// One partnership (upper-tier local authority).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partnership {
    /// GSS code, e.g. `E06000001`.
    pub code: GssCode,
    /// Name.
    pub name: String,
    /// Region GSS code (`E12…` in England).
    pub region_code: GssCode,
    /// Region name.
    pub region_name: String,
    /// Group of similar areas, if assigned.
    pub comparator_group: Option<String>,
}

/// The partnerships of one geography vintage.
#[derive(Debug, Clone)]
pub struct Partnerships {
    /// Vintage label, e.g. `2021`.
    pub vintage: String,
    rows: Vec<Partnership>,
    by_code: HashMap<String, usize>,
}

impl Partnerships {
    /// Every partnership in file order.
    pub fn all(&self) -> &[Partnership] {
        &self.rows
    }

    /// The partnership with a code.
    pub fn get(&self, code: &str) -> Option<&Partnership> {
        self.by_code.get(code).map(|&i| &self.rows[i])
    }

    /// Number of partnerships.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Loads partnerships from the formats.md §4 layout (`code, name, region_code, region_name,
/// comparator_group`) or the `utla_*` layout of `utla_2021.csv` (`utla_code, utla_name,
/// region_code, region_name`), also ONS lookup headers (`UTLA21CD`, `UTLA21NM`, `RGN21CD`,
/// `RGN21NM`). Checks GSS shapes (areas `E`/`W`), unique codes, non-blank names, and one name per
/// region code.
pub fn load_partnerships<R: Read>(file: &str, reader: R, vintage: &str) -> Result<Partnerships> {
    const ALIASES: &[(&str, &str)] = &[
        ("utla_code", "code"),
        ("utla_name", "name"),
        ("utla21cd", "code"),
        ("utla21nm", "name"),
        ("rgn21cd", "region_code"),
        ("rgn21nm", "region_name"),
        ("region", "region_name"),
    ];
    let t = Table::read(
        file,
        reader,
        &["code", "name", "region_code", "region_name"],
        ALIASES,
    )?;
    let mut rows = Vec::with_capacity(t.rows.len());
    let mut by_code = HashMap::new();
    let mut regions: HashMap<String, String> = HashMap::new();
    for i in 0..t.rows.len() {
        let code = t.parse(i, "code", GssCode::parse_area)?;
        let name = t.required(i, "name")?.to_string();
        let region_code = t.parse(i, "region_code", GssCode::parse)?;
        let region_name = t.required(i, "region_name")?.to_string();
        let comparator_group =
            Some(t.value(i, "comparator_group").to_string()).filter(|s| !s.is_empty());
        if let Some(prev) = regions.insert(region_code.to_string(), region_name.clone())
            && prev != region_name
        {
            return Err(t.err(i, "region_name", format!("region {region_code} is called '{prev}' on an earlier row and '{region_name}' here")));
        }
        if by_code.insert(code.to_string(), rows.len()).is_some() {
            return Err(t.err(
                i,
                "code",
                format!("'{code}' appears more than once; each partnership has one row"),
            ));
        }
        rows.push(Partnership {
            code,
            name,
            region_code,
            region_name,
            comparator_group,
        });
    }
    if rows.is_empty() {
        return Err(ModelError::Reference {
            file: file.into(),
            row: None,
            line: None,
            column: None,
            message: "the file has a header but no partnerships".into(),
        });
    }
    Ok(Partnerships {
        vintage: vintage.to_string(),
        rows,
        by_code,
    })
}
