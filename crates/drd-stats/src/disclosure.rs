//! Statistical disclosure control for published counts (domain.md §5, architecture.md
//! "Disclosure control for derived values"). Three named policies:
//!
//! - [`Policy::NhsDigital`]: sub-national counts of 1–7 are suppressed, 8 or more are rounded
//!   to the nearest 5, 0 stays 0; totals are summed from unrounded counts and then rounded.
//! - [`Policy::Secondary`]: cells below a threshold (default 5) are suppressed, then
//!   complementary cells, audited by linear programming, until no suppressed cell of a table
//!   with margins can be narrowed to an interval shorter than [`MIN_INTERVAL_WIDTH`].
//! - [`Policy::Ckm`]: the ONS cell key method: a stable record key 0–255 per record, a cell key
//!   (the sum of its records' keys mod 256) and noise looked up in a p-table.
//!
//! England counts are never controlled ([`Scope::National`]). Whatever the policy, a value
//! derived from a count (a rate, a share, their intervals) is published only when
//! [`Disclosed::derived_visible`] says so, and a suppressed value carries
//! [`SUPPRESSED_NOTE`]. These functions decide; the publication boundary (drd-report)
//! applies them.

use sha2::{Digest, Sha256};

use crate::Error;

/// The note a suppressed value carries (architecture.md, `note` values).
pub const SUPPRESSED_NOTE: &str = "suppressed small count";

/// Counts from 1 to this are never published at sub-national level, and nor is any value
/// derived from them (the NHS Digital rule; the property every policy keeps).
pub const SMALL_COUNT_MAX: u64 = 7;

/// The narrowest interval a suppressed cell of a [`Policy::Secondary`] table may be narrowed
/// to by its margins.
pub const MIN_INTERVAL_WIDTH: f64 = 2.0;

/// Whether a count is about England as a whole (never controlled) or a smaller area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// England: national counts are published as they are.
    National,
    /// A partnership, region or comparator group.
    SubNational,
}

impl Scope {
    /// The scope of an `area_type` value (`england` is national; every other type is not).
    pub fn of_area_type(area_type: &str) -> Scope {
        if area_type.eq_ignore_ascii_case("england") {
            Scope::National
        } else {
            Scope::SubNational
        }
    }
}

/// A disclosure-control policy, selectable per output.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// NHS Digital's 2018 rule (domain.md §5.1).
    NhsDigital,
    /// Primary suppression below `threshold`, then complementary suppression.
    Secondary {
        /// Counts from 1 to `threshold - 1` are primary suppressed (default 5).
        threshold: u64,
    },
    /// The ONS cell key method with a p-table.
    Ckm(PTable),
}

impl Policy {
    /// The policy named `nhs_digital`, `secondary` (threshold 5) or `ckm` (the synthetic
    /// p-table).
    pub fn parse(name: &str) -> Result<Policy, Error> {
        match name {
            "nhs_digital" => Ok(Policy::NhsDigital),
            "secondary" => Ok(Policy::Secondary { threshold: 5 }),
            "ckm" => Ok(Policy::Ckm(PTable::synthetic())),
            other => Err(Error::BadArgument {
                function: "disclosure policy",
                argument: "policy",
                message: format!(
                    "'{other}' is not a policy (expected nhs_digital, secondary or ckm)"
                ),
            }),
        }
    }

    /// The policy's name as it is selected.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::NhsDigital => "nhs_digital",
            Policy::Secondary { .. } => "secondary",
            Policy::Ckm(_) => "ckm",
        }
    }
}

/// One count after disclosure control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disclosed {
    /// The published count; `None` when suppressed.
    pub count: Option<u64>,
    /// Whether values derived from the count (a rate or share, its intervals, a mean over
    /// these people) may be published.
    pub derived_visible: bool,
}

impl Disclosed {
    const fn shown(count: u64) -> Disclosed {
        Disclosed {
            count: Some(count),
            derived_visible: true,
        }
    }

    /// The note for the count, or for a value derived from it (`None` when it is shown).
    pub fn note(&self) -> Option<&'static str> {
        (self.count.is_none() || !self.derived_visible).then_some(SUPPRESSED_NOTE)
    }
}

/// `n` rounded to the nearest multiple of 5 (an integer never lies half-way).
pub fn round_to_5(n: u64) -> u64 {
    (n + 2) / 5 * 5
}

/// NHS Digital's rule (domain.md §5.1) for one count: national counts as they are; at
/// sub-national level 0 stays 0, 1–7 are suppressed and 8 or more are rounded to the nearest
/// 5. A total is controlled the same way, from the sum of the unrounded counts. Rates and
/// shares derived from a suppressed count are suppressed too.
pub fn nhs_digital(count: u64, scope: Scope) -> Disclosed {
    match (scope, count) {
        (Scope::National, n) => Disclosed::shown(n),
        (Scope::SubNational, 0) => Disclosed::shown(0),
        (Scope::SubNational, 1..=SMALL_COUNT_MAX) => Disclosed {
            count: None,
            derived_visible: false,
        },
        (Scope::SubNational, n) => Disclosed::shown(round_to_5(n)),
    }
}

// ---------------------------------------------------------------------------------------------
// Cell key method
// ---------------------------------------------------------------------------------------------

/// Largest perturbation cell value: counts above it reuse the rows 501–750.
pub const PCV_MAX: u64 = 750;

/// The stable record key (0–255) of a record, derived from its pseudonym (`case_id`,
/// `client_id` or `person_id`): the first byte of SHA-256 over a fixed label and the
/// pseudonym. Pseudonyms are keyed HMACs, so a reader without record-level access cannot
/// compute a record key; the same record always gets the same key (domain.md §5.3, step 1).
pub fn record_key(pseudonym: &str) -> u8 {
    let mut h = Sha256::new();
    h.update(b"drdsurv/ckm-record-key/v1\0");
    h.update(pseudonym.as_bytes());
    h.finalize()[0]
}

/// A cell's key: the sum of its records' keys, mod 256 (domain.md §5.3, step 2).
pub fn cell_key(record_keys: impl IntoIterator<Item = u8>) -> u8 {
    record_keys.into_iter().fold(0u8, |k, r| k.wrapping_add(r))
}

/// The perturbation cell value of a count: the count itself up to 750, then
/// `((count - 1) mod 250) + 501` (domain.md §5.3, step 3). 0 for 0.
pub fn pcv(count: u64) -> u64 {
    if count <= PCV_MAX {
        count
    } else {
        (count - 1) % 250 + 501
    }
}

/// A p-table: the noise (`pvalue`) for every perturbation cell value 1–750 and cell key
/// 0–255. Empty cells (count 0) are never perturbed.
#[derive(Clone, PartialEq)]
pub struct PTable {
    /// `pvalue[(pcv - 1) * 256 + ckey]`.
    pvalue: Vec<i32>,
    /// Where the table came from (for the release manifest).
    pub name: String,
}

impl std::fmt::Debug for PTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PTable").field("name", &self.name).finish()
    }
}

/// Counts below this are published as 0 by the synthetic p-table.
pub const SYNTHETIC_THRESHOLD: u64 = 10;

impl PTable {
    /// The synthetic p-table drdsurv ships, modelled on the ONS "10_5" sample table
    /// (domain.md §5.3). Counts 1–9 are published as 0. A count of 10 or more is rounded to a
    /// multiple of 5, down or up as the cell key decides: with `r = pcv mod 5`, it rounds up
    /// when `ckey < floor(256 r / 5)` and down otherwise, so it rounds up with probability
    /// close to `r / 5` and the published count is unbiased over cell keys. Every published
    /// count is 0 or a multiple of 5 of at least 10, so two overlapping tables never
    /// difference to a count of 1–4.
    pub fn synthetic() -> PTable {
        let mut pvalue = Vec::with_capacity(PCV_MAX as usize * 256);
        for p in 1..=PCV_MAX {
            for ckey in 0..256u64 {
                let v = if p < SYNTHETIC_THRESHOLD {
                    -(p as i64)
                } else {
                    let r = p % 5;
                    if r == 0 {
                        0
                    } else if ckey < 256 * r / 5 {
                        (5 - r) as i64
                    } else {
                        -(r as i64)
                    }
                };
                pvalue.push(v as i32);
            }
        }
        PTable {
            pvalue,
            name: "drdsurv synthetic 10_5 (v1)".into(),
        }
    }

    /// A p-table from CSV text with the columns `pcv`, `ckey` and `pvalue` (a header row,
    /// then one row per pair; other columns are ignored). Every pcv 1–750 and ckey 0–255
    /// must appear exactly once, and no perturbed count may be negative.
    pub fn from_csv(name: &str, text: &str) -> Result<PTable, Error> {
        let bad = |message: String| Error::BadArgument {
            function: "ptable",
            argument: "file",
            message,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| bad(format!("{name} is empty")))?;
        let cols: Vec<String> = header
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
            .collect();
        let find = |c: &str| {
            cols.iter()
                .position(|h| h == c)
                .ok_or_else(|| bad(format!("{name} has no '{c}' column")))
        };
        let (ip, ik, iv) = (find("pcv")?, find("ckey")?, find("pvalue")?);
        let mut pvalue = vec![None::<i32>; PCV_MAX as usize * 256];
        for (n, line) in lines {
            let f: Vec<&str> = line
                .split(',')
                .map(|s| s.trim().trim_matches('"'))
                .collect();
            let get = |i: usize, c: &str| -> Result<i64, Error> {
                let v = f.get(i).copied().unwrap_or("");
                v.parse::<i64>().map_err(|_| {
                    bad(format!(
                        "{name} line {}: {c} '{v}' is not a whole number",
                        n + 1
                    ))
                })
            };
            let (p, k, v) = (get(ip, "pcv")?, get(ik, "ckey")?, get(iv, "pvalue")?);
            if !(1..=PCV_MAX as i64).contains(&p) || !(0..=255).contains(&k) {
                return Err(bad(format!(
                    "{name} line {}: pcv {p} / ckey {k} is outside 1-750 / 0-255",
                    n + 1
                )));
            }
            if p + v < 0 || v.abs() > 1000 {
                return Err(bad(format!(
                    "{name} line {}: pvalue {v} for pcv {p} would publish a negative count",
                    n + 1
                )));
            }
            let slot = &mut pvalue[(p as usize - 1) * 256 + k as usize];
            if slot.is_some() {
                return Err(bad(format!(
                    "{name} line {}: pcv {p}, ckey {k} appears twice",
                    n + 1
                )));
            }
            *slot = Some(v as i32);
        }
        let pvalue = pvalue
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                v.ok_or_else(|| {
                    bad(format!(
                        "{name} has no row for pcv {}, ckey {}",
                        i / 256 + 1,
                        i % 256
                    ))
                })
            })
            .collect::<Result<Vec<i32>, Error>>()?;
        Ok(PTable {
            pvalue,
            name: name.to_string(),
        })
    }

    /// The table as CSV (`pcv,ckey,pvalue`), the form [`PTable::from_csv`] reads.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("pcv,ckey,pvalue\n");
        for (i, v) in self.pvalue.iter().enumerate() {
            s.push_str(&format!("{},{},{v}\n", i / 256 + 1, i % 256));
        }
        s
    }

    /// The noise for a count with a cell key (0 for an empty cell).
    pub fn pvalue(&self, count: u64, ckey: u8) -> i64 {
        if count == 0 {
            return 0;
        }
        i64::from(self.pvalue[(pcv(count) as usize - 1) * 256 + usize::from(ckey)])
    }

    /// The perturbed count: `count + pvalue`.
    pub fn perturb(&self, count: u64, ckey: u8) -> u64 {
        (count as i64 + self.pvalue(count, ckey)).max(0) as u64
    }
}

/// The cell key method for one cell of `count` records with cell key `ckey`. National cells
/// are published as they are. A perturbed count is published unless it is 1–7 (possible only
/// with a user's p-table); values derived from the cell are published only when the true
/// count is not 1–7 and the published count is at least [`SYNTHETIC_THRESHOLD`], so that a
/// suppressed rate does not tell a true zero from a small count. The cell key, pcv and
/// pvalue never leave this function.
pub fn ckm(count: u64, ckey: u8, table: &PTable, scope: Scope) -> Disclosed {
    if scope == Scope::National {
        return Disclosed::shown(count);
    }
    let published = table.perturb(count, ckey);
    let small = |n: u64| (1..=SMALL_COUNT_MAX).contains(&n);
    Disclosed {
        count: (!small(published)).then_some(published),
        derived_visible: !small(count) && !small(published) && published >= SYNTHETIC_THRESHOLD,
    }
}

// ---------------------------------------------------------------------------------------------
// Secondary suppression
// ---------------------------------------------------------------------------------------------

/// A table of counts with its margins: `rows` × `cols` interior cells, then a total column
/// and a total row, stored row by row as `(rows + 1) × (cols + 1)` cells; the last cell is
/// the grand total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarginTable {
    /// Interior rows.
    pub rows: usize,
    /// Interior columns.
    pub cols: usize,
    /// Every cell, margins included, row by row.
    pub cells: Vec<u64>,
}

impl MarginTable {
    /// A table from its interior cells; the margins are summed.
    pub fn from_interior(interior: &[Vec<u64>]) -> Result<MarginTable, Error> {
        let rows = interior.len();
        let cols = interior.first().map_or(0, Vec::len);
        if rows == 0 || cols == 0 || interior.iter().any(|r| r.len() != cols) {
            return Err(Error::BadArgument {
                function: "secondary",
                argument: "table",
                message: "must have at least one row and column, all rows the same length".into(),
            });
        }
        let w = cols + 1;
        let mut cells = vec![0u64; (rows + 1) * w];
        for (r, row) in interior.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                cells[r * w + c] = v;
                cells[r * w + cols] += v;
                cells[rows * w + c] += v;
                cells[rows * w + cols] += v;
            }
        }
        Ok(MarginTable { rows, cols, cells })
    }

    /// The index of cell (`r`, `c`); `r == rows` is the total row, `c == cols` the total
    /// column.
    pub fn at(&self, r: usize, c: usize) -> usize {
        r * (self.cols + 1) + c
    }

    /// The linear constraints of the margins, each a list of (cell, coefficient) summing to 0:
    /// every row (the total row too) sums to its total, every column to its total.
    fn constraints(&self) -> Vec<Vec<(usize, f64)>> {
        let mut out = Vec::with_capacity(self.rows + self.cols + 2);
        for r in 0..=self.rows {
            let mut e: Vec<(usize, f64)> = (0..self.cols).map(|c| (self.at(r, c), 1.0)).collect();
            e.push((self.at(r, self.cols), -1.0));
            out.push(e);
        }
        for c in 0..self.cols {
            let mut e: Vec<(usize, f64)> = (0..self.rows).map(|r| (self.at(r, c), 1.0)).collect();
            e.push((self.at(self.rows, c), -1.0));
            out.push(e);
        }
        out
    }
}

/// The bounds an attacker gets for each suppressed cell by linear programming over the
/// published cells and the margin equations, with every cell non-negative: `(lower, upper)`,
/// `upper` infinite when nothing bounds it. `None` for published cells.
pub fn audit(table: &MarginTable, suppressed: &[bool]) -> Result<Vec<Option<(f64, f64)>>, Error> {
    let mut out = vec![None; table.cells.len()];
    for (i, s) in suppressed.iter().enumerate() {
        if *s {
            out[i] = Some(cell_bounds(table, suppressed, i)?);
        }
    }
    Ok(out)
}

/// The attacker's bounds for suppressed cell `target`.
fn cell_bounds(
    table: &MarginTable,
    suppressed: &[bool],
    target: usize,
) -> Result<(f64, f64), Error> {
    use microlp::{ComparisonOp, OptimizationDirection, Problem};
    let solve = |dir: OptimizationDirection| -> Result<Option<f64>, Error> {
        let mut p = Problem::new(dir);
        let vars: Vec<Option<microlp::Variable>> = suppressed
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                s.then(|| p.add_var(if i == target { 1.0 } else { 0.0 }, (0.0, f64::INFINITY)))
            })
            .collect();
        for e in table.constraints() {
            let mut terms: Vec<(microlp::Variable, f64)> = Vec::new();
            let mut rhs = 0.0;
            for (cell, coef) in e {
                match vars[cell] {
                    Some(v) => terms.push((v, coef)),
                    None => rhs -= coef * table.cells[cell] as f64,
                }
            }
            if !terms.is_empty() {
                p.add_constraint(terms, ComparisonOp::Eq, rhs);
            }
        }
        match p.solve() {
            Ok(outcome) => match outcome.solution() {
                Some(s) => Ok(Some(s.objective())),
                None => Err(lp_error("the solve stopped before an answer")),
            },
            Err(microlp::Error::Unbounded) => Ok(None),
            Err(e) => Err(lp_error(&e.to_string())),
        }
    };
    let lower = solve(OptimizationDirection::Minimize)?.unwrap_or(0.0);
    let upper = solve(OptimizationDirection::Maximize)?.unwrap_or(f64::INFINITY);
    // The margin equations are totally unimodular: optimal vertices are whole numbers.
    Ok((
        lower.round(),
        if upper.is_finite() {
            upper.round()
        } else {
            upper
        },
    ))
}

fn lp_error(message: &str) -> Error {
    Error::BadArgument {
        function: "secondary",
        argument: "table",
        message: format!("the suppression audit failed: {message}"),
    }
}

/// What [`secondary`] decided for a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryResult {
    /// Cells below the threshold (margins included).
    pub primary: Vec<bool>,
    /// Every suppressed cell: the primary ones and their complements.
    pub suppressed: Vec<bool>,
}

impl SecondaryResult {
    /// The table as published: `None` for suppressed cells.
    pub fn published(&self, table: &MarginTable) -> Vec<Option<u64>> {
        table
            .cells
            .iter()
            .zip(&self.suppressed)
            .map(|(&v, &s)| (!s).then_some(v))
            .collect()
    }
}

/// Secondary suppression of a table with margins. Every cell (margins included) from 1 to
/// `threshold - 1` is suppressed; then, while the [`audit`] can narrow any suppressed cell to
/// an interval shorter than [`MIN_INTERVAL_WIDTH`], one more cell in that cell's row or column
/// is suppressed: the one that widens its interval most, preferring interior cells to
/// margins and small counts to large (zeros last). A table with nothing to suppress is
/// returned unchanged; a table where every cell must go is entirely suppressed.
pub fn secondary(table: &MarginTable, threshold: u64) -> Result<SecondaryResult, Error> {
    let primary: Vec<bool> = table
        .cells
        .iter()
        .map(|&v| v > 0 && v < threshold)
        .collect();
    let mut suppressed = primary.clone();
    let width = |b: (f64, f64)| b.1 - b.0;
    loop {
        let bounds = audit(table, &suppressed)?;
        let Some(target) = bounds
            .iter()
            .position(|b| b.is_some_and(|b| width(b) < MIN_INTERVAL_WIDTH))
        else {
            break;
        };
        let (tr, tc) = (target / (table.cols + 1), target % (table.cols + 1));
        let mut candidates: Vec<usize> = (0..=table.cols)
            .map(|c| table.at(tr, c))
            .chain((0..=table.rows).map(|r| table.at(r, tc)))
            .filter(|&i| !suppressed[i])
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        if candidates.is_empty() {
            // Its row and column are all suppressed yet it is still pinned: widen the search
            // to the smallest published cell anywhere.
            candidates = (0..table.cells.len()).filter(|&i| !suppressed[i]).collect();
            if candidates.is_empty() {
                break;
            }
        }
        let is_margin =
            |i: usize| i / (table.cols + 1) == table.rows || i % (table.cols + 1) == table.cols;
        // Preference: interior first, then non-zero small counts, zeros last.
        candidates.sort_by_key(|&i| (is_margin(i), table.cells[i] == 0, table.cells[i], i));
        let before = width(bounds[target].unwrap_or((0.0, 0.0)));
        let mut best = (candidates[0], before);
        for &c in &candidates {
            suppressed[c] = true;
            let w = width(cell_bounds(table, &suppressed, target)?);
            suppressed[c] = false;
            if w >= MIN_INTERVAL_WIDTH {
                best = (c, w);
                break;
            }
            if w > best.1 {
                best = (c, w);
            }
        }
        suppressed[best.0] = true;
    }
    Ok(SecondaryResult {
        primary,
        suppressed,
    })
}

impl Policy {
    /// Applies the policy to one table with margins (cells as [`MarginTable`] stores them).
    /// `cell_keys` gives each cell's cell key for [`Policy::Ckm`] (ignored otherwise; a cell
    /// without one is suppressed). Under [`Policy::Secondary`] the primary threshold is raised
    /// to the floor every policy keeps: counts 1–7 are never published, whatever the
    /// configured threshold. National tables are published as they are.
    pub fn control_table(
        &self,
        table: &MarginTable,
        cell_keys: Option<&[u8]>,
        scope: Scope,
    ) -> Result<Vec<Disclosed>, Error> {
        if scope == Scope::National {
            return Ok(table.cells.iter().map(|&c| Disclosed::shown(c)).collect());
        }
        Ok(match self {
            Policy::NhsDigital => table.cells.iter().map(|&c| nhs_digital(c, scope)).collect(),
            Policy::Ckm(pt) => table
                .cells
                .iter()
                .enumerate()
                .map(|(i, &c)| match cell_keys.and_then(|k| k.get(i)) {
                    Some(&key) => ckm(c, key, pt, scope),
                    None => Disclosed {
                        count: None,
                        derived_visible: false,
                    },
                })
                .collect(),
            Policy::Secondary { threshold } => {
                let s = secondary(table, (*threshold).max(SMALL_COUNT_MAX + 1))?;
                table
                    .cells
                    .iter()
                    .zip(&s.suppressed)
                    .map(|(&c, &hidden)| {
                        if hidden {
                            Disclosed {
                                count: None,
                                derived_visible: false,
                            }
                        } else {
                            Disclosed::shown(c)
                        }
                    })
                    .collect()
            }
        })
    }

    /// Applies a cell-by-cell policy to one count (a value outside any table). Under
    /// [`Policy::Secondary`] a lone count has no margins to protect, so only its primary rule
    /// (with the 1–7 floor) applies.
    pub fn control_count(&self, count: u64, cell_key: u8, scope: Scope) -> Disclosed {
        match (self, scope) {
            (_, Scope::National) => Disclosed::shown(count),
            (Policy::NhsDigital, _) => nhs_digital(count, scope),
            (Policy::Ckm(pt), _) => ckm(count, cell_key, pt, scope),
            (Policy::Secondary { threshold }, _) => {
                if count > 0 && count < (*threshold).max(SMALL_COUNT_MAX + 1) {
                    Disclosed {
                        count: None,
                        derived_visible: false,
                    }
                } else {
                    Disclosed::shown(count)
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nhs_digital_rule() {
        let sub = |n| nhs_digital(n, Scope::SubNational).count;
        assert_eq!(sub(0), Some(0));
        for n in 1..=7 {
            assert_eq!(sub(n), None);
            assert!(!nhs_digital(n, Scope::SubNational).derived_visible);
        }
        assert_eq!(sub(8), Some(10));
        assert_eq!(sub(12), Some(10));
        assert_eq!(sub(13), Some(15));
        assert_eq!(sub(1234), Some(1235));
        assert_eq!(nhs_digital(3, Scope::National).count, Some(3));
    }

    #[test]
    fn pcv_repeats_rows_501_to_750() {
        assert_eq!(pcv(750), 750);
        assert_eq!(pcv(751), 501);
        assert_eq!(pcv(1000), 750);
        assert_eq!(pcv(1001), 501);
    }

    #[test]
    fn synthetic_ptable_round_trips_through_csv() {
        let t = PTable::synthetic();
        let back = PTable::from_csv("synthetic", &t.to_csv()).unwrap();
        assert_eq!(back.pvalue, t.pvalue);
        let missing = t.to_csv().replacen("1,0,-1\n", "", 1);
        let e = PTable::from_csv("mine.csv", &missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no row for pcv 1, ckey 0"), "{e}");
    }

    #[test]
    fn secondary_protects_a_lone_small_cell() {
        let t = MarginTable::from_interior(&[vec![3, 20, 30], vec![15, 25, 35]]).unwrap();
        let s = secondary(&t, 5).unwrap();
        let b = audit(&t, &s.suppressed).unwrap();
        for (i, x) in b.iter().enumerate() {
            if let Some((lo, hi)) = x {
                assert!(hi - lo >= MIN_INTERVAL_WIDTH, "cell {i}: {lo}..{hi}");
            }
        }
        // Primary only would be recovered exactly from its row.
        let only = audit(&t, &s.primary).unwrap();
        assert_eq!(only[0], Some((3.0, 3.0)));
        assert!(s.suppressed.iter().filter(|x| **x).count() >= 4);
    }
}
