//! Population by area, year, sex and ESP2013 band, in the formats.md §4 long layout or the ONS
//! mid-year-estimate wide layout; and PWID estimates.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use super::{Table, parse_count, parse_year};
use crate::age::EspBand;
use crate::codes::{Coded, Sex};
use crate::error::{ModelError, Result};
use crate::ids::GssCode;

/// One population cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopulationRow {
    /// Area GSS code.
    pub code: GssCode,
    /// Mid-year of the estimate.
    pub year: i32,
    /// `Male` or `Female`.
    pub sex: Sex,
    /// Age band.
    pub age_band: EspBand,
    /// Persons.
    pub population: u64,
}

fn parse_mf(raw: &str) -> Result<Sex> {
    match Sex::parse(raw)? {
        Sex::Unknown => Err(ModelError::invalid(
            "sex code",
            raw.trim(),
            "male or female (M/F, 1/2); population cells are by sex",
        )),
        s => Ok(s),
    }
}

/// Loads the long layout: `code, year, sex, age_band, population`. Rejects duplicate cells and
/// negative or fractional populations.
pub fn load_population<R: Read>(file: &str, reader: R) -> Result<Vec<PopulationRow>> {
    let t = Table::read(
        file,
        reader,
        &["code", "year", "sex", "age_band", "population"],
        &[("area_code", "code")],
    )?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(t.rows.len());
    for i in 0..t.rows.len() {
        let row = PopulationRow {
            code: t.parse(i, "code", GssCode::parse)?,
            year: t.parse(i, "year", parse_year)?,
            sex: t.parse(i, "sex", parse_mf)?,
            age_band: t.parse(i, "age_band", EspBand::parse)?,
            population: t.parse(i, "population", parse_count)?,
        };
        if !seen.insert((row.code.to_string(), row.year, row.sex, row.age_band)) {
            return Err(t.err(
                i,
                "age_band",
                format!(
                    "duplicate cell {} {} {} {}",
                    row.code, row.year, row.sex, row.age_band
                ),
            ));
        }
        out.push(row);
    }
    Ok(out)
}

/// Loads an ONS mid-year-estimate file in either of the layouts ONS publishes, summing single
/// years of age into ESP2013 bands:
///
/// - **wide by age** (MYE2 tables): one row per area (and sex), one column per single year of
///   age `0` … `90`, where `90` means 90 and over (`90+` is accepted too);
/// - **long by age, wide by year** (the 2022+ CSV downloads): one row per area, sex and single
///   year of age (`age`, 90 meaning 90+), and one column per year, `population_2021`,
///   `population_2022`, …; every year column becomes rows for that year.
///
/// The layout is chosen from the header.
///
/// ONS publishes one table per sex and per year, so `sex` and `year` come from columns when the
/// file has them (`sex`; `year` or `mid_year`) and otherwise from the arguments. Area codes come
/// from `code` (also `ladcode`, `lad_code`, `area_code`, `geography_code`). When the file has
/// an `all_ages` column, it must equal the sum of the single years. Thousands separators are
/// accepted. Single years are summed into ESP2013 bands.
pub fn load_population_ons_wide<R: Read>(
    file: &str,
    reader: R,
    year: Option<i32>,
    sex: Option<Sex>,
) -> Result<Vec<PopulationRow>> {
    let aliases = [
        ("ladcode", "code"),
        ("lad_code", "code"),
        ("ladcode21", "code"),
        ("ladcode23", "code"),
        ("utla_code", "code"),
        ("area_code", "code"),
        ("geography_code", "code"),
        ("mid_year", "year"),
        ("90+", "90"),
    ];
    let t = Table::read(file, reader, &["code"], &aliases)?;
    if t.has("age") && !t.has("0") {
        return load_long_by_age(&t);
    }
    let missing: Vec<String> = (0..=90)
        .map(|a| a.to_string())
        .filter(|a| !t.has(a))
        .collect();
    if !missing.is_empty() {
        return Err(ModelError::Reference {
            file: file.into(),
            row: None,
            line: Some(1),
            column: None,
            message: format!(
                "the ONS wide layout needs one column per single year of age 0 to 90 (90 meaning 90+); missing: {}",
                missing.join(", ")
            ),
        });
    }
    if !t.has("sex") && sex.is_none() {
        return Err(ModelError::Reference {
            file: file.into(),
            row: None,
            line: Some(1),
            column: Some("sex".into()),
            message: "the file has no sex column: say which sex the table holds".into(),
        });
    }
    if !t.has("year") && year.is_none() {
        return Err(ModelError::Reference {
            file: file.into(),
            row: None,
            line: Some(1),
            column: Some("year".into()),
            message: "the file has no year column: say which mid-year the table holds".into(),
        });
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for i in 0..t.rows.len() {
        let code = t.parse(i, "code", GssCode::parse)?;
        let row_sex = match t.parse_opt(i, "sex", parse_mf)? {
            Some(s) => s,
            None => {
                sex.ok_or_else(|| t.err(i, "sex", "blank sex and no sex given for the file"))?
            }
        };
        let row_year = match t.parse_opt(i, "year", parse_year)? {
            Some(y) => y,
            None => {
                year.ok_or_else(|| t.err(i, "year", "blank year and no year given for the file"))?
            }
        };
        if !seen.insert((code.to_string(), row_year, row_sex)) {
            return Err(t.err(
                i,
                "code",
                format!("{code} appears twice for {row_year} {}", row_sex.code()),
            ));
        }
        let mut bands: BTreeMap<EspBand, u64> = BTreeMap::new();
        let mut total = 0u64;
        for age in 0..=90u32 {
            let col = age.to_string();
            let n = t.parse(i, &col, parse_count)?;
            total += n;
            *bands.entry(EspBand::from_age(age)?).or_default() += n;
        }
        if let Some(all) = t.parse_opt(i, "all_ages", parse_count)?
            && all != total
        {
            return Err(t.err(
                i,
                "all_ages",
                format!("all ages is {all} but the single years 0 to 90 add up to {total}"),
            ));
        }
        for (age_band, population) in bands {
            out.push(PopulationRow {
                code: code.clone(),
                year: row_year,
                sex: row_sex,
                age_band,
                population,
            });
        }
    }
    Ok(out)
}

/// The long-by-age layout: `code, sex, age, population_YYYY…`.
fn load_long_by_age(t: &Table) -> Result<Vec<PopulationRow>> {
    let year_cols: Vec<(String, i32)> = t
        .headers()
        .iter()
        .filter_map(|h| {
            h.strip_prefix("population_")
                .and_then(|y| y.parse::<i32>().ok())
                .map(|y| (h.clone(), y))
        })
        .collect();
    if year_cols.is_empty() || !t.has("sex") {
        return Err(ModelError::Reference {
            file: t.file.clone(),
            row: None,
            line: Some(1),
            column: None,
            message: "the ONS long layout needs sex, age and at least one population_YYYY column"
                .into(),
        });
    }
    let mut cells: BTreeMap<(String, i32, Sex, EspBand), u64> = BTreeMap::new();
    let mut seen = HashSet::new();
    for i in 0..t.rows.len() {
        let code = t.parse(i, "code", GssCode::parse)?;
        let sex = t.parse(i, "sex", parse_mf)?;
        let age = t.parse(i, "age", |v| {
            let a = v.trim_end_matches('+');
            match a.parse::<u32>() {
                Ok(a) if a <= 90 => Ok(a),
                _ => Err(ModelError::invalid(
                    "single year of age",
                    v,
                    "a whole number from 0 to 90 (90 meaning 90 and over)",
                )),
            }
        })?;
        if !seen.insert((code.to_string(), sex, age)) {
            return Err(t.err(
                i,
                "age",
                format!("{code} {} age {age} appears twice", sex.code()),
            ));
        }
        let band = EspBand::from_age(age)?;
        for (col, year) in &year_cols {
            let n = t.parse(i, col, parse_count)?;
            *cells
                .entry((code.to_string(), *year, sex, band))
                .or_default() += n;
        }
    }
    cells
        .into_iter()
        .map(|((code, year, sex, age_band), population)| {
            Ok(PopulationRow {
                code: GssCode::parse(&code)?,
                year,
                sex,
                age_band,
                population,
            })
        })
        .collect()
}

/// One PWID estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct PwidRow {
    /// Area GSS code.
    pub code: GssCode,
    /// Year of the estimate.
    pub year: i32,
    /// Estimated people who inject drugs.
    pub estimated_pwid: f64,
}

/// Loads `code, year, estimated_pwid`. Estimates must be positive: they are coverage
/// denominators (formats.md §3).
pub fn load_pwid<R: Read>(file: &str, reader: R) -> Result<Vec<PwidRow>> {
    let t = Table::read(
        file,
        reader,
        &["code", "year", "estimated_pwid"],
        &[("pwid", "estimated_pwid")],
    )?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(t.rows.len());
    for i in 0..t.rows.len() {
        let code = t.parse(i, "code", GssCode::parse)?;
        let year = t.parse(i, "year", parse_year)?;
        let estimated_pwid = t.parse(i, "estimated_pwid", |v| {
            let x: f64 = v
                .replace(',', "")
                .parse()
                .map_err(|_| ModelError::invalid("PWID estimate", v, "a positive number"))?;
            if x.is_finite() && x > 0.0 {
                Ok(x)
            } else {
                Err(ModelError::invalid(
                    "PWID estimate",
                    v,
                    "a positive number (it divides syringes issued)",
                ))
            }
        })?;
        if !seen.insert((code.to_string(), year)) {
            return Err(t.err(i, "year", format!("{code} has two estimates for {year}")));
        }
        out.push(PwidRow {
            code,
            year,
            estimated_pwid,
        });
    }
    Ok(out)
}
