//! Reporting periods: calendar years, quarters and months (`2025`, `2025Q3`, `2025-07`), with
//! ranges for backfills, the previous period, and the indicator windows of architecture.md
//! ("Period windows"): the 3 complete registration years and the trailing 12 months.

use chrono::{Datelike, NaiveDate};

use crate::error::{ModelError, Result};

const EXPECTED: &str = "a period such as 2025 (year), 2025Q3 (quarter) or 2025-07 (month)";

/// A calendar year, quarter or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// A calendar year.
    Year(i32),
    /// A calendar quarter, 1–4.
    Quarter(i32, u8),
    /// A calendar month, 1–12.
    Month(i32, u8),
}

/// Granularity of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// Calendar years.
    Year,
    /// Calendar quarters.
    Quarter,
    /// Calendar months.
    Month,
}

impl Period {
    /// Parses `2025`, `2025Q3` (also `2025q3`, `2025-Q3`) or `2025-07`. Years run 1900–2999.
    pub fn parse(raw: &str) -> Result<Period> {
        let t = raw.trim();
        let err = || ModelError::invalid("period", t, EXPECTED);
        let year = |s: &str| -> Result<i32> {
            if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
                let y: i32 = s.parse().map_err(|_| err())?;
                if (1900..=2999).contains(&y) {
                    Ok(y)
                } else {
                    Err(err())
                }
            } else {
                Err(err())
            }
        };
        if t.len() == 4 {
            return Ok(Period::Year(year(t)?));
        }
        let upper = t.to_ascii_uppercase();
        if let Some((y, q)) = upper.split_once('Q') {
            let y = y.strip_suffix('-').unwrap_or(y);
            let q: u8 = if q.len() == 1 {
                q.parse().map_err(|_| err())?
            } else {
                return Err(err());
            };
            return if (1..=4).contains(&q) {
                Ok(Period::Quarter(year(y)?, q))
            } else {
                Err(err())
            };
        }
        if let Some((y, m)) = t.split_once('-') {
            let m: u8 = if m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()) {
                m.parse().map_err(|_| err())?
            } else {
                return Err(err());
            };
            return if (1..=12).contains(&m) {
                Ok(Period::Month(year(y)?, m))
            } else {
                Err(err())
            };
        }
        Err(err())
    }

    /// The granularity.
    pub fn granularity(self) -> Granularity {
        match self {
            Period::Year(_) => Granularity::Year,
            Period::Quarter(..) => Granularity::Quarter,
            Period::Month(..) => Granularity::Month,
        }
    }

    /// The calendar year the period falls in.
    pub fn year(self) -> i32 {
        match self {
            Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) => y,
        }
    }

    /// First day of the period.
    pub fn start(self) -> NaiveDate {
        let (y, m) = match self {
            Period::Year(y) => (y, 1),
            Period::Quarter(y, q) => (y, u32::from(q) * 3 - 2),
            Period::Month(y, m) => (y, u32::from(m)),
        };
        ymd(y, m, 1)
    }

    /// Last day of the period (inclusive).
    pub fn end(self) -> NaiveDate {
        self.next().start().pred_opt().unwrap_or(NaiveDate::MAX)
    }

    /// Whether `date` lies in the period.
    pub fn contains(self, date: NaiveDate) -> bool {
        self.start() <= date && date <= self.end()
    }

    /// The period of the same granularity containing `date`.
    pub fn containing(granularity: Granularity, date: NaiveDate) -> Period {
        match granularity {
            Granularity::Year => Period::Year(date.year()),
            Granularity::Quarter => Period::Quarter(date.year(), (date.month0() / 3 + 1) as u8),
            Granularity::Month => Period::Month(date.year(), date.month() as u8),
        }
    }

    /// The period immediately before.
    pub fn prev(self) -> Period {
        self.shift(-1)
    }

    /// The period immediately after.
    pub fn next(self) -> Period {
        self.shift(1)
    }

    /// Moves by `n` periods of the same granularity (negative is earlier).
    pub fn shift(self, n: i32) -> Period {
        match self {
            Period::Year(y) => Period::Year(y + n),
            Period::Quarter(y, q) => {
                let i = y * 4 + i32::from(q) - 1 + n;
                Period::Quarter(i.div_euclid(4), (i.rem_euclid(4) + 1) as u8)
            }
            Period::Month(y, m) => {
                let i = y * 12 + i32::from(m) - 1 + n;
                Period::Month(i.div_euclid(12), (i.rem_euclid(12) + 1) as u8)
            }
        }
    }

    /// The last complete calendar year at or before the end of this period: the period's own
    /// year if it ends on 31 December, else the year before.
    pub fn last_complete_year(self) -> i32 {
        let end = self.end();
        if end.month() == 12 && end.day() == 31 {
            end.year()
        } else {
            end.year() - 1
        }
    }

    /// The pooled window of `n` complete calendar years ending with
    /// [`Period::last_complete_year`]: the deaths window of architecture.md. For n = 3,
    /// `2025Q3` gives `2022-2024` and `2025Q4` gives `2023-2025`.
    pub fn pooled_years(self, n: u32) -> Window {
        let last = self.last_complete_year();
        Window {
            first: Period::Year(last - n as i32 + 1),
            last: Period::Year(last),
        }
    }

    /// The window of the last 12 months ending with this period, in this period's granularity:
    /// `2024Q4-2025Q3` for `2025Q3`, `2024-08-2025-07` for `2025-07`, `2025` for `2025`.
    pub fn trailing_12_months(self) -> Window {
        let n = match self.granularity() {
            Granularity::Year => 1,
            Granularity::Quarter => 4,
            Granularity::Month => 12,
        };
        Window {
            first: self.shift(-(n - 1)),
            last: self,
        }
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y}"),
            Period::Quarter(y, q) => write!(f, "{y}Q{q}"),
            Period::Month(y, m) => write!(f, "{y}-{m:02}"),
        }
    }
}

impl std::str::FromStr for Period {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        Period::parse(s)
    }
}

/// A contiguous run of periods of one granularity, both ends inclusive: a backfill range
/// (`--from 2024Q1 --to 2025Q2`) or an indicator window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// First period.
    pub first: Period,
    /// Last period.
    pub last: Period,
}

impl Window {
    /// A range of periods; both must have the same granularity and `from` ≤ `to`.
    pub fn new(from: Period, to: Period) -> Result<Window> {
        if from.granularity() != to.granularity() {
            return Err(ModelError::invalid(
                "period range",
                &format!("{from} to {to}"),
                "two periods of the same kind (years, quarters or months)",
            ));
        }
        if from > to {
            return Err(ModelError::invalid(
                "period range",
                &format!("{from} to {to}"),
                "the first period not after the last",
            ));
        }
        Ok(Window {
            first: from,
            last: to,
        })
    }

    /// Every period in the window, in order.
    pub fn periods(self) -> impl Iterator<Item = Period> {
        let mut cur = Some(self.first);
        std::iter::from_fn(move || {
            let p = cur?;
            cur = (p < self.last).then(|| p.next());
            Some(p)
        })
    }

    /// First day of the window.
    pub fn start(self) -> NaiveDate {
        self.first.start()
    }

    /// Last day of the window (inclusive).
    pub fn end(self) -> NaiveDate {
        self.last.end()
    }

    /// Whether `date` lies in the window.
    pub fn contains(self, date: NaiveDate) -> bool {
        self.start() <= date && date <= self.end()
    }

    /// The `period` label of published files: `2022-2024`, `2024Q4-2025Q3`, or one period.
    pub fn label(self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    #[test]
    fn parse_and_format_round_trip() {
        for s in ["2025", "2025Q3", "2025-07", "1999Q1", "2030-12"] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(p("2025q3"), Period::Quarter(2025, 3));
        assert_eq!(p("2025-Q3"), Period::Quarter(2025, 3));
        assert_eq!(p(" 2025 "), Period::Year(2025));
        for bad in [
            "2025Q5",
            "2025Q0",
            "2025-13",
            "2025-7",
            "25",
            "2025Q",
            "Q3 2025",
            "1899",
            "2025-07-01",
            "",
        ] {
            let e = Period::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("'{}'", bad.trim())) && e.contains("2025Q3"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(p("2024Q1").start().to_string(), "2024-01-01");
        assert_eq!(p("2024Q1").end().to_string(), "2024-03-31");
        assert_eq!(p("2024-02").end().to_string(), "2024-02-29");
        assert_eq!(p("2024").end().to_string(), "2024-12-31");
        assert!(p("2025Q3").contains(NaiveDate::from_ymd_opt(2025, 9, 30).unwrap()));
        assert!(!p("2025Q3").contains(NaiveDate::from_ymd_opt(2025, 10, 1).unwrap()));
        assert_eq!(
            Period::containing(
                Granularity::Quarter,
                NaiveDate::from_ymd_opt(2025, 10, 1).unwrap()
            ),
            p("2025Q4")
        );
    }

    #[test]
    fn previous_and_next_cross_years() {
        assert_eq!(p("2025Q1").prev(), p("2024Q4"));
        assert_eq!(p("2024Q4").next(), p("2025Q1"));
        assert_eq!(p("2025-01").prev(), p("2024-12"));
        assert_eq!(p("2025").prev(), p("2024"));
        assert_eq!(p("2025-03").shift(-15), p("2023-12"));
    }

    #[test]
    fn windows_from_architecture_md() {
        // Deaths: the 3 complete years ending with the last complete year at or before P's end.
        assert_eq!(p("2025Q3").pooled_years(3).label(), "2022-2024");
        assert_eq!(p("2025Q4").pooled_years(3).label(), "2023-2025");
        assert_eq!(p("2025").pooled_years(3).label(), "2023-2025");
        assert_eq!(p("2025-12").pooled_years(3).label(), "2023-2025");
        assert_eq!(p("2025-11").pooled_years(3).label(), "2022-2024");
        assert_eq!(p("2025Q3").last_complete_year(), 2024);
        // Treatment and NSP: the 12 months ending with P.
        assert_eq!(p("2025Q3").trailing_12_months().label(), "2024Q4-2025Q3");
        assert_eq!(p("2025-07").trailing_12_months().label(), "2024-08-2025-07");
        assert_eq!(p("2025").trailing_12_months().label(), "2025");
        let w = p("2025Q3").trailing_12_months();
        assert_eq!(
            (w.start().to_string(), w.end().to_string()),
            ("2024-10-01".into(), "2025-09-30".into())
        );
    }

    #[test]
    fn ranges_for_backfill() {
        let w = Window::new(p("2024Q3"), p("2025Q2")).unwrap();
        let all: Vec<String> = w.periods().map(|x| x.to_string()).collect();
        assert_eq!(all, ["2024Q3", "2024Q4", "2025Q1", "2025Q2"]);
        assert_eq!(
            Window::new(p("2025"), p("2025")).unwrap().periods().count(),
            1
        );
        let e = Window::new(p("2025Q2"), p("2024Q3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("2025Q2 to 2024Q3"), "{e}");
        assert!(Window::new(p("2025"), p("2025Q2")).is_err());
    }
}
