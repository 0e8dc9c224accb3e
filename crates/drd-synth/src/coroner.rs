//! Coroner extract files (formats.md §1), one or two extracts per coroner area.

use chrono::NaiveDate;
use drd_model::Source;

use crate::deaths::Death;
use crate::faults::ix;
use crate::out::Cell;
use crate::people::ACCENTED;
use crate::rng::Stream;
use crate::world::{Submitter, World};

/// The state of a case as a coroner knows it on an extract date.
#[allow(clippy::too_many_arguments)] // one call site each; a struct would only rename them
pub fn case_row(
    world: &World,
    sub: &Submitter,
    d: &Death,
    extract: NaiveDate,
    revision: i64,
    withdrawn: bool,
    accented: bool,
    r: &mut Stream,
) -> Vec<Cell> {
    let s = Source::Coroner;
    let mut row = vec![Cell::E; s.columns().len()];
    let mut set = |name: &str, v: Cell| row[ix(s, name)] = v;
    let year = chrono::Datelike::year(&d.date_of_death);
    set(
        "case_ref",
        Cell::O(format!(
            "{}/{year}/{:05}",
            sub.id
                .trim_start_matches("coroner-")
                .chars()
                .take(4)
                .collect::<String>()
                .to_uppercase(),
            d.serial
        )),
    );
    set("coroner_area", Cell::O(sub.name.clone()));
    set("revision", Cell::I(revision));
    set("extract_date", Cell::D(extract));
    if d.nhs_known {
        set(
            "nhs_number",
            Cell::O(if r.chance(0.1) {
                format!(
                    "{} {} {}",
                    &d.person.nhs[..3],
                    &d.person.nhs[3..6],
                    &d.person.nhs[6..]
                )
            } else {
                d.person.nhs.clone()
            }),
        );
    }
    if d.names_known || !d.nhs_known {
        if accented && r.chance(0.4) {
            let (f, l) = r.pick(ACCENTED);
            set("forenames", Cell::S(f));
            set("surname", Cell::S(l));
        } else {
            set("forenames", Cell::S(d.person.forenames));
            set("surname", Cell::S(d.person.surname));
        }
    }
    if d.dob_known {
        set("date_of_birth", Cell::D(d.person.dob));
    }
    if d.age_known {
        set("age", Cell::I(i64::from(d.age)));
    }
    set(
        "sex",
        Cell::S(match (d.person.sex, r.int(0, 5)) {
            (0, 0) => "male",
            (0, 1) => "1",
            (0, _) => "M",
            (_, 0) => "female",
            (_, 1) => "2",
            _ => "F",
        }),
    );
    set(
        "residence_area",
        Cell::O(world.areas[d.area].p.code.to_string()),
    );
    if let Some(pc) = &d.postcode {
        set("postcode", Cell::O(pc.clone()));
    }
    set("date_of_death", Cell::D(d.date_of_death));
    set("place_of_death", Cell::S(d.place));
    if d.concluded_by(extract) {
        set("date_of_inquest", Cell::D(d.date_of_inquest));
        let cause = match r.int(0, 9) {
            0 if d.cause.starts_with('F') => format!("{}.2", d.cause),
            1 => format!("{}0", d.cause.to_lowercase()),
            2 => format!(" {} ", d.cause),
            _ => d.cause.to_string(),
        };
        set("underlying_cause_icd10", Cell::O(cause));
        set("conclusion", Cell::S(d.conclusion));
    } else {
        set("conclusion", Cell::S("pending"));
    }
    if d.toxicology_date <= extract {
        let sep = if r.chance(0.2) { "|" } else { ";" };
        if !d.implicated.is_empty() {
            set("substances_implicated", Cell::O(d.implicated.join(sep)));
        }
        if !d.present.is_empty() {
            set("substances_present", Cell::O(d.present.join(sep)));
        }
    }
    let names = [
        "known_drug_user",
        "injecting_history",
        "in_treatment",
        "naloxone_administered",
        "alone_at_time",
    ];
    for (n, v) in names.iter().zip(d.circumstances) {
        set(
            n,
            Cell::S(match (v, r.int(0, 3)) {
                ("Y", 0) => "yes",
                ("N", 0) => "no",
                ("U", 0) => "",
                (v, _) => v,
            }),
        );
    }
    if let Some(p) = d.prison_days {
        set("released_from_prison_days", Cell::I(p));
    }
    set("withdrawn", if withdrawn { Cell::S("Y") } else { Cell::E });
    row
}
