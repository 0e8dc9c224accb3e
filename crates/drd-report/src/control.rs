//! Disclosure control at the publication boundary (architecture.md "Disclosure control for
//! derived values", domain.md §5). Every number a release holds passes through here:
//!
//! - the numerator is a count of people or events: it goes through the policy at sub-national
//!   level; England's counts are not controlled;
//! - a `%` indicator's denominator is a count of people too (deaths, people in treatment) and is
//!   controlled the same way; population and PWID denominators (rates, per-PWID figures) are
//!   estimates and are not;
//! - the value and its intervals are published only when every count they derive from may be
//!   (`Disclosed::derived_visible`); otherwise they are empty with the note
//!   `suppressed small count`, and so are the comparisons, quintiles, funnel significance,
//!   trend and bottom-decile flag that would place the value;
//! - England, region and comparator values beside a row are the controlled values of those
//!   areas, never the raw ones;
//! - values and intervals were computed by the run from unrounded counts; the published
//!   numerators and denominators are the controlled (under `nhs_digital`, rounded) counts.
//!
//! `secondary` suppresses by tables: for each indicator slice and region, the partnerships ×
//! sex (or age band) table with its margins (each partnership's persons or all-ages row, and the
//! region's rows) goes through drd-stats' audited complementary suppression; a comparator
//! group's count is withheld when exactly one of its members' is, so that the group total
//! cannot give it away. `ckm` needs a cell key per published cell, computed from the records'
//! keys; the indicator models do not carry them yet, so publication refuses it.

use std::collections::{BTreeMap, HashMap, HashSet};

use drd_stats::disclosure::{
    Disclosed, MarginTable, Policy, SMALL_COUNT_MAX, SUPPRESSED_NOTE, Scope,
};
use serde::Deserialize;

use crate::Error;
use crate::release::{IndicatorRow, TrendRow};

/// A row as the run left it (`benchmarks` or `trends`), before control.
#[derive(Debug, Clone, Deserialize)]
pub struct RawRow {
    pub indicator_id: String,
    #[serde(default)]
    pub indicator_name: String,
    pub period: String,
    #[serde(default)]
    pub basis: String,
    pub area_code: String,
    #[serde(default)]
    pub area_name: String,
    pub area_type: String,
    #[serde(default)]
    pub region_code: Option<String>,
    #[serde(default)]
    pub comparator_group: Option<String>,
    #[serde(default = "persons")]
    pub sex: String,
    #[serde(default = "all")]
    pub age_band: String,
    #[serde(default = "all")]
    pub substance_group: String,
    pub unit: String,
    pub polarity: String,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
    pub lower95: Option<f64>,
    pub upper95: Option<f64>,
    #[serde(default)]
    pub lower998: Option<f64>,
    #[serde(default)]
    pub upper998: Option<f64>,
    #[serde(default)]
    pub comparison: Option<String>,
    #[serde(default)]
    pub comparison_2level: Option<String>,
    #[serde(default)]
    pub region_comparison: Option<String>,
    #[serde(default)]
    pub comparator_comparison: Option<String>,
    #[serde(default)]
    pub quintile: Option<i64>,
    #[serde(default)]
    pub comparator_quintile: Option<i64>,
    #[serde(default)]
    pub funnel_significance: Option<String>,
    #[serde(default)]
    pub trend: Option<String>,
    #[serde(default)]
    pub bottom_decile: Option<bool>,
    #[serde(default)]
    pub provisional: Option<bool>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub point: Option<i64>,
    #[serde(default)]
    pub run_id: Option<String>,
}

fn persons() -> String {
    "persons".into()
}
fn all() -> String {
    "all".into()
}

/// Whether an indicator's denominator counts people (and so is controlled).
pub fn denominator_is_count(unit: &str) -> bool {
    unit == "%"
}

/// The key of a row's indicator and breakdown (the same for every area).
fn bkey(r: &RawRow) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}|{}",
        r.indicator_id,
        r.basis,
        r.period,
        r.sex,
        r.age_band,
        r.substance_group,
        r.point.unwrap_or(0)
    )
}

fn count_of(v: Option<f64>) -> Option<u64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
        .map(|x| x.round() as u64)
}

const HIDDEN: Disclosed = Disclosed {
    count: None,
    derived_visible: false,
};

/// The control decision for one row.
#[derive(Debug, Clone, Copy)]
struct Decision {
    numerator: Option<Disclosed>,
    denominator: Option<Disclosed>,
}

impl Decision {
    fn visible(&self) -> bool {
        self.numerator.is_none_or(|d| d.derived_visible)
            && self.denominator.is_none_or(|d| d.derived_visible)
    }
}

/// Decides every row's counts under `policy`.
fn decide(rows: &[RawRow], policy: &Policy) -> Result<Vec<Decision>, Error> {
    if let Policy::Ckm(_) = policy {
        return Err(Error::Policy(
            "ckm needs a cell key for every published cell (the sum of its records' keys); the indicator models do not carry record keys yet. Publish with --policy nhs_digital or secondary".into(),
        ));
    }
    let lone = |count: Option<f64>, area_type: &str| {
        count_of(count).map(|n| policy.control_count(n, 0, Scope::of_area_type(area_type)))
    };
    let mut out: Vec<Decision> = rows
        .iter()
        .map(|r| Decision {
            numerator: lone(r.numerator, &r.area_type),
            denominator: if denominator_is_count(&r.unit) {
                lone(r.denominator, &r.area_type)
            } else {
                None
            },
        })
        .collect();
    if let Policy::Secondary { threshold } = policy {
        let threshold = (*threshold).max(SMALL_COUNT_MAX + 1);
        let hide_num = complementary(rows, threshold, |r| r.numerator)?;
        let hide_den = complementary(rows, threshold, |r| {
            denominator_is_count(&r.unit)
                .then_some(r.denominator)
                .flatten()
        })?;
        for i in hide_num {
            out[i].numerator = Some(HIDDEN);
        }
        for i in hide_den {
            out[i].denominator = Some(HIDDEN);
        }
    }
    Ok(out)
}

/// The rows whose count `field` `secondary` withholds: audited tables of partnerships ×
/// breakdown per region and slice, then the comparator-group rule.
fn complementary(
    rows: &[RawRow],
    threshold: u64,
    field: impl Fn(&RawRow) -> Option<f64>,
) -> Result<HashSet<usize>, Error> {
    // Slices: indicator, basis, period and point, plus the breakdown held fixed. A slice's
    // columns are the breakdown that varies: sex (male, female under persons) or age band
    // (bands under all), else the single persons/all column.
    type Slice = (String, String, String, i64, String);
    let mut by_slice: BTreeMap<Slice, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        if r.area_type == "england" || field(r).is_none() {
            continue;
        }
        let s = (
            r.indicator_id.clone(),
            r.basis.clone(),
            r.period.clone(),
            r.point.unwrap_or(0),
            r.substance_group.clone(),
        );
        by_slice.entry(s).or_default().push(i);
    }
    let mut hidden = HashSet::new();
    for idx in by_slice.values() {
        // Column of each row: its sex, or its age band when not persons/all.
        let col_of = |r: &RawRow| -> String {
            if r.sex != "persons" {
                format!("sex:{}", r.sex)
            } else if r.age_band != "all" {
                format!("age:{}", r.age_band)
            } else {
                "total".into()
            }
        };
        let mut cols: Vec<String> = idx
            .iter()
            .map(|&i| col_of(&rows[i]))
            .filter(|c| c != "total")
            .collect();
        cols.sort();
        cols.dedup();
        // Regions of this slice.
        let mut regions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in idx {
            let r = &rows[i];
            let region = match r.area_type.as_str() {
                "partnership" => r.region_code.clone(),
                "region" => Some(r.area_code.clone()),
                _ => None,
            };
            if let Some(g) = region {
                regions.entry(g).or_default().push(i);
            }
        }
        for (region, members) in &regions {
            let mut parts: Vec<String> = members
                .iter()
                .filter(|&&i| rows[i].area_type == "partnership")
                .map(|&i| rows[i].area_code.clone())
                .collect();
            parts.sort();
            parts.dedup();
            if parts.is_empty() {
                continue;
            }
            let find = |area: &str, col: &str| {
                members
                    .iter()
                    .copied()
                    .find(|&i| rows[i].area_code == area && col_of(&rows[i]) == col)
            };
            let value = |i: Option<usize>| i.and_then(|i| count_of(field(&rows[i]))).unwrap_or(0);
            // Interior: the breakdown columns plus an unpublished remainder (total minus the
            // published columns: unknown sex, say), so the margins add up and the remainder
            // is something an attacker does not know.
            let ncols = cols.len() + 1;
            let mut interior = Vec::with_capacity(parts.len());
            for p in &parts {
                let total = value(find(p, "total"));
                let mut row: Vec<u64> = cols.iter().map(|c| value(find(p, c))).collect();
                let shown: u64 = row.iter().sum();
                row.push(total.saturating_sub(shown));
                interior.push(row);
            }
            let table =
                MarginTable::from_interior(&interior).map_err(|e| Error::Policy(e.to_string()))?;
            let s = drd_stats::disclosure::secondary(&table, threshold)
                .map_err(|e| Error::Policy(e.to_string()))?;
            let cell_row = |r: usize, c: usize| -> Option<usize> {
                let area = if r == parts.len() {
                    region.as_str()
                } else {
                    parts[r].as_str()
                };
                let col = if c == ncols {
                    "total"
                } else if c < cols.len() {
                    cols[c].as_str()
                } else {
                    return None;
                };
                find(area, col)
            };
            for r in 0..=parts.len() {
                for c in 0..=ncols {
                    if s.suppressed[table.at(r, c)]
                        && let Some(i) = cell_row(r, c)
                    {
                        hidden.insert(i);
                    }
                }
            }
        }
        // A comparator group whose members include exactly one withheld count: withhold the
        // group's count too (group total minus the others would give it).
        let mut groups: BTreeMap<(String, String), (usize, Option<usize>)> = BTreeMap::new();
        for &i in idx {
            let r = &rows[i];
            match r.area_type.as_str() {
                "partnership" => {
                    if let Some(g) = &r.comparator_group {
                        let e = groups.entry((g.clone(), col_of(r))).or_default();
                        if hidden.contains(&i) {
                            e.0 += 1;
                        }
                    }
                }
                "comparator_group" => {
                    groups
                        .entry((r.area_code.clone(), col_of(r)))
                        .or_default()
                        .1 = Some(i);
                }
                _ => {}
            }
        }
        for (withheld, group_row) in groups.values() {
            if *withheld == 1
                && let Some(g) = group_row
            {
                hidden.insert(*g);
            }
        }
    }
    Ok(hidden)
}

/// Applies `policy` to the run's indicator rows; returns the published rows.
pub fn control_indicators(
    rows: &[RawRow],
    policy: &Policy,
    release_id: &str,
) -> Result<Vec<IndicatorRow>, Error> {
    let decisions = decide(rows, policy)?;
    // Controlled value of every area for each indicator and breakdown.
    let mut shown: HashMap<(String, String), Option<f64>> = HashMap::new();
    for (r, d) in rows.iter().zip(&decisions) {
        shown.insert(
            (bkey(r), r.area_code.clone()),
            if d.visible() { r.value } else { None },
        );
    }
    let mut england: HashMap<String, Option<f64>> = HashMap::new();
    for (r, d) in rows.iter().zip(&decisions) {
        if r.area_type == "england" {
            england.insert(bkey(r), if d.visible() { r.value } else { None });
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for (r, d) in rows.iter().zip(&decisions) {
        let k = bkey(r);
        let visible = d.visible();
        let keep = |v: Option<f64>| if visible { v } else { None };
        let other = |area: Option<&String>| {
            area.and_then(|a| shown.get(&(k.clone(), a.clone())).copied().flatten())
        };
        let (region_value, comparator_value) = match r.area_type.as_str() {
            "partnership" => (
                other(r.region_code.as_ref()),
                other(r.comparator_group.as_ref()),
            ),
            "region" => (keep(r.value), None),
            "comparator_group" => (None, keep(r.value)),
            _ => (None, None),
        };
        let nc = || "not compared".to_string();
        let cmp = |c: &Option<String>, against: Option<f64>| {
            if visible && against.is_some() {
                c.clone().unwrap_or_else(nc)
            } else {
                nc()
            }
        };
        let england_value = england.get(&k).copied().flatten();
        let denominator = match d.denominator {
            Some(dd) => dd.count.map(|c| c as f64),
            None => r.denominator,
        };
        let note = if !visible || d.numerator.is_some_and(|n| n.count.is_none()) {
            Some(SUPPRESSED_NOTE.to_string())
        } else {
            r.note.clone().filter(|n| !n.is_empty())
        };
        out.push(IndicatorRow {
            indicator_id: r.indicator_id.clone(),
            indicator_name: r.indicator_name.clone(),
            period: r.period.clone(),
            basis: r.basis.clone(),
            area_code: r.area_code.clone(),
            area_name: r.area_name.clone(),
            area_type: r.area_type.clone(),
            sex: r.sex.clone(),
            age_band: r.age_band.clone(),
            substance_group: r.substance_group.clone(),
            unit: r.unit.clone(),
            polarity: r.polarity.clone(),
            numerator: d.numerator.and_then(|n| n.count).map(|c| c as f64),
            denominator,
            value: keep(r.value),
            lower95: keep(r.lower95),
            upper95: keep(r.upper95),
            lower998: keep(r.lower998),
            upper998: keep(r.upper998),
            england_value,
            region_value,
            comparator_value,
            comparison: cmp(&r.comparison, england_value),
            comparison_2level: cmp(&r.comparison_2level, england_value),
            region_comparison: cmp(&r.region_comparison, region_value),
            comparator_comparison: cmp(&r.comparator_comparison, comparator_value),
            quintile: if visible { r.quintile } else { None },
            comparator_quintile: if visible { r.comparator_quintile } else { None },
            funnel_significance: if visible {
                r.funnel_significance.clone()
            } else {
                None
            },
            trend: if visible {
                r.trend.clone().unwrap_or_else(nc)
            } else {
                nc()
            },
            bottom_decile: visible && r.bottom_decile.unwrap_or(false),
            provisional: r.provisional.unwrap_or(false),
            note,
            release_id: release_id.to_string(),
            run_id: r.run_id.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Applies `policy` to the trend series. The release's own window (point 0) is also an
/// indicator row: it stays hidden wherever the indicator row is, so that the two files never
/// disagree on what is withheld.
pub fn control_trends(
    rows: &[RawRow],
    policy: &Policy,
    published: &[IndicatorRow],
    release_id: &str,
) -> Result<Vec<TrendRow>, Error> {
    let decisions = decide(rows, policy)?;
    let hidden_now: HashSet<(String, String)> = published
        .iter()
        .filter(|r| {
            r.sex == "persons"
                && r.age_band == "all"
                && r.substance_group == "all"
                && r.note.as_deref() == Some(SUPPRESSED_NOTE)
        })
        .map(|r| (r.indicator_id.clone(), r.area_code.clone()))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for (r, d) in rows.iter().zip(&decisions) {
        let point = r.point.unwrap_or(0);
        let force =
            point == 0 && hidden_now.contains(&(r.indicator_id.clone(), r.area_code.clone()));
        let visible = d.visible() && !force;
        let keep = |v: Option<f64>| if visible { v } else { None };
        let suppressed = !visible || d.numerator.is_some_and(|n| n.count.is_none());
        out.push(TrendRow {
            indicator_id: r.indicator_id.clone(),
            indicator_name: r.indicator_name.clone(),
            period: r.period.clone(),
            area_code: r.area_code.clone(),
            area_name: r.area_name.clone(),
            area_type: r.area_type.clone(),
            unit: r.unit.clone(),
            polarity: r.polarity.clone(),
            numerator: if force {
                None
            } else {
                d.numerator.and_then(|n| n.count).map(|c| c as f64)
            },
            denominator: match d.denominator {
                Some(_) if force => None,
                Some(dd) => dd.count.map(|c| c as f64),
                None => r.denominator,
            },
            value: keep(r.value),
            lower95: keep(r.lower95),
            upper95: keep(r.upper95),
            provisional: r.provisional.unwrap_or(false),
            note: if suppressed {
                Some(SUPPRESSED_NOTE.to_string())
            } else {
                r.note.clone().filter(|n| !n.is_empty())
            },
            point,
            release_id: release_id.to_string(),
        });
    }
    Ok(out)
}

/// A lone count under `policy` (alert observations: regional weekly deaths).
pub fn control_lone(count: i64, area_type: &str, policy: &Policy) -> Option<u64> {
    policy
        .control_count(count.max(0) as u64, 0, Scope::of_area_type(area_type))
        .count
}
