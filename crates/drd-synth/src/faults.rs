//! Planting known faults in otherwise valid rows, one fault per row, so that each planted row
//! has exactly one expected reason code (formats.md, "Reason codes").

use chrono::NaiveDate;
use drd_model::{ReasonCode, Source};

use crate::out::Cell;
use crate::rng::Stream;

/// Index of a column in a source's canonical column list.
pub fn ix(source: Source, name: &str) -> usize {
    source
        .columns()
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("{source}: no column {name}"))
}

/// What the injector needs to know about the file.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The source.
    pub source: Source,
    /// A real partnership this submitter may not send.
    pub foreign_area: &'a str,
    /// Whether each canonical column is in this file's layout.
    pub in_layout: &'a [bool],
}

fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, dd).unwrap_or(NaiveDate::MIN)
}

fn date_of(c: &Cell) -> Option<NaiveDate> {
    match c {
        Cell::D(x) => Some(*x),
        _ => None,
    }
}

/// Plants `reason` in `row` and returns the column it names, or `None` if this row cannot
/// carry that fault (the caller then tries another).
pub fn inject(
    reason: ReasonCode,
    row: &mut [Cell],
    ctx: &Ctx<'_>,
    r: &mut Stream,
) -> Option<&'static str> {
    use ReasonCode as R;
    let s = ctx.source;
    let has = |name: &str| ctx.in_layout[ix(s, name)];
    let set = |row: &mut [Cell], name: &str, v: Cell| row[ix(s, name)] = v;
    let area_col = if s == Source::Coroner {
        "residence_area"
    } else {
        "partnership_code"
    };
    match (reason, s) {
        (R::MissingRequiredValue, _) => {
            let req: Vec<&'static str> = s.required_columns().collect();
            let col = r.pick(&req);
            set(row, col, Cell::E);
            if col == "date_of_birth" {
                // TOP: a blank required date of birth; nothing else depends on it being present.
            }
            Some(col)
        }
        (R::InvalidDate, Source::Coroner) => {
            set(
                row,
                "date_of_death",
                Cell::S(r.pick(&["31/02/2024", "2023-13-05", "1899-07-14", "30-06-2023"])),
            );
            set(row, "date_of_inquest", Cell::E);
            Some("date_of_death")
        }
        (R::InvalidDate, Source::Top) => {
            set(
                row,
                "top_date",
                Cell::S(r.pick(&["2024-02-30", "31/04/2023", "2023/05/06"])),
            );
            Some("top_date")
        }
        (R::InvalidDate, Source::Nsp) => {
            set(
                row,
                "period_end",
                Cell::S(r.pick(&["2024-04-31", "31/06/2023", "June 2023"])),
            );
            Some("period_end")
        }
        (R::FutureDate, Source::Coroner) => {
            let dod = date_of(&row[ix(s, "date_of_death")])?;
            set(row, "date_of_inquest", Cell::D(d(2099, 3, 14).max(dod)));
            Some("date_of_inquest")
        }
        (R::FutureDate, Source::Top) => {
            set(row, "top_date", Cell::D(d(2099, 3, 14)));
            Some("top_date")
        }
        (R::FutureDate, Source::Nsp) => {
            set(row, "period_start", Cell::D(d(2099, 1, 1)));
            set(row, "period_end", Cell::D(d(2099, 1, 31)));
            Some("period_start")
        }
        (R::DateOrder, Source::Coroner) => {
            let dod = date_of(&row[ix(s, "date_of_death")])?;
            set(
                row,
                "date_of_inquest",
                Cell::D(dod - chrono::Duration::days(r.int(3, 60))),
            );
            Some("date_of_inquest")
        }
        (R::DateOrder, Source::Top) => {
            let start = date_of(&row[ix(s, "episode_start")])?;
            set(
                row,
                "top_date",
                Cell::D(start - chrono::Duration::days(r.int(5, 40))),
            );
            Some("top_date")
        }
        (R::DateOrder, Source::Nsp) => {
            let start = date_of(&row[ix(s, "period_start")])?;
            set(
                row,
                "period_end",
                Cell::D(start - chrono::Duration::days(r.int(1, 20))),
            );
            Some("period_end")
        }
        (R::PeriodTooLong, Source::Nsp) => {
            let start = date_of(&row[ix(s, "period_start")])?;
            set(
                row,
                "period_end",
                Cell::D(start + chrono::Duration::days(r.int(120, 180))),
            );
            Some("period_end")
        }
        (R::InvalidNumber, Source::Coroner) => {
            if has("age") {
                set(row, "age", Cell::S(r.pick(&["forty", "4O", "unknown age"])));
                set(row, "date_of_birth", Cell::E);
                Some("age")
            } else {
                set(row, "revision", Cell::S("two"));
                Some("revision")
            }
        }
        (R::InvalidNumber, Source::Top) => {
            set(
                row,
                "opiate_days",
                Cell::S(r.pick(&["several", "1O", "n/k"])),
            );
            Some("opiate_days")
        }
        (R::InvalidNumber, Source::Nsp) => {
            set(
                row,
                "transactions",
                Cell::S(r.pick(&["12a", "lots", "1,2,3"])),
            );
            Some("transactions")
        }
        (R::OutOfRange, Source::Coroner) => {
            if has("age") {
                set(row, "age", Cell::I(r.int(121, 160)));
                set(row, "date_of_birth", Cell::E);
                Some("age")
            } else {
                set(row, "revision", Cell::I(0));
                Some("revision")
            }
        }
        (R::OutOfRange, Source::Top) => {
            if r.chance(0.5) {
                set(row, "opiate_days", Cell::I(r.int(29, 40)));
                Some("opiate_days")
            } else {
                set(row, "psych_health", Cell::I(r.int(21, 30)));
                Some("psych_health")
            }
        }
        (R::OutOfRange, Source::Nsp) => {
            set(row, "syringe_sets_issued", Cell::I(-r.int(1, 50)));
            Some("syringe_sets_issued")
        }
        (R::InvalidCode, Source::Coroner) => {
            set(row, "sex", Cell::S(r.pick(&["X", "other", "3"])));
            Some("sex")
        }
        (R::InvalidCode, Source::Top) => {
            set(row, "stage", Cell::S(r.pick(&["mid", "follow-up", "Z"])));
            set(row, "exit_reason", Cell::E);
            Some("stage")
        }
        (R::InvalidCode, Source::Nsp) => {
            set(
                row,
                "site_type",
                Cell::S(r.pick(&["clinic", "hospital", "shop"])),
            );
            Some("site_type")
        }
        (R::InvalidGssCode, _) => {
            set(
                row,
                area_col,
                Cell::S(r.pick(&["E0800002", "Birmingham", "E080000255", "e08000025"])),
            );
            Some(area_col)
        }
        (R::UnknownArea, _) => {
            // GSS-shaped but not in the 2021 vintage; Welsh codes too, as no Welsh vintage is loaded.
            set(
                row,
                area_col,
                Cell::S(r.pick(&["E06000099", "W06000015", "E10000099"])),
            );
            Some(area_col)
        }
        (R::NotAuthorisedForArea, _) => {
            set(row, area_col, Cell::O(ctx.foreign_area.to_string()));
            Some(area_col)
        }
        (R::InvalidNhsNumber, Source::Coroner | Source::Top) => {
            if !has("nhs_number") {
                return None;
            }
            let bad = match &row[ix(s, "nhs_number")] {
                Cell::O(v) if r.chance(0.7) => crate::people::corrupt_nhs(v),
                _ => (r.pick(&["12345", "999 123 45678", "NHS0000000"])).to_string(),
            };
            set(row, "nhs_number", Cell::O(bad));
            Some("nhs_number")
        }
        (R::InvalidPostcode, Source::Coroner) => {
            if !has("postcode") {
                return None;
            }
            set(
                row,
                "postcode",
                Cell::S(r.pick(&["NOT KNOWN", "B70 7CQ", "12345", "NFA"])),
            );
            Some("postcode")
        }
        (R::MissingAgeAndDob, Source::Coroner) => {
            set(row, "age", Cell::E);
            set(row, "date_of_birth", Cell::E);
            Some("age")
        }
        (R::CountInconsistent, Source::Nsp) => {
            let tx = match row[ix(s, "transactions")] {
                Cell::I(t) => t,
                _ => return None,
            };
            if r.chance(0.5) {
                set(row, "clients", Cell::I(tx + r.int(1, 20)));
                Some("clients")
            } else {
                let offered = r.int(1, 10);
                set(row, "bbv_tests_offered", Cell::I(offered));
                set(row, "bbv_tests_done", Cell::I(offered + r.int(1, 5)));
                Some("bbv_tests_done")
            }
        }
        _ => None,
    }
}

/// Row-level codes that can be planted in a source (not the whole-file ones, and not
/// `duplicate_key_in_file`, which the writer plants by repeating a row).
pub fn row_reasons(source: Source) -> Vec<ReasonCode> {
    ReasonCode::ALL
        .into_iter()
        .filter(|r| {
            !r.is_whole_file() && *r != ReasonCode::DuplicateKeyInFile && r.can_occur_in(source)
        })
        .collect()
}
