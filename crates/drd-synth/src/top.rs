//! Treatment Outcomes Profile rows (formats.md §2): episodes with start, review (about every 3
//! months), exit and some post-exit TOPs. Outcomes improve more in areas with better treatment
//! quality, so areas differ. Clients who later die (linked deaths) appear with the same NHS
//! number, name and date of birth as in the coroner extract.

use chrono::{Datelike, NaiveDate};
use drd_model::Source;

use crate::deaths::Death;
use crate::faults::ix;
use crate::out::Cell;
use crate::people::{Person, person};
use crate::rng::Stream;
use crate::world::{Area, World};

/// New treatment episodes a year in England at national volume (about 300,000 people are in
/// treatment in a year; the mean episode lasts about a year).
pub const NATIONAL_NEW_EPISODES: f64 = 150_000.0;

/// Substance profile of a client at start.
#[derive(Debug, Clone, Copy)]
struct Profile {
    opiate: bool,
    crack: bool,
    cocaine: bool,
    alcohol: bool,
    cannabis: bool,
    amphetamine: bool,
    injecting: bool,
}

/// One episode to write.
#[derive(Debug)]
pub struct Episode {
    /// Client reference within the provider.
    pub client_ref: String,
    /// The person.
    pub person: Person,
    /// Whether the NHS number is recorded.
    pub nhs_known: bool,
    /// Partnership commissioning it.
    pub area: usize,
    /// Episode start.
    pub start: NaiveDate,
    /// Exit date (may be after the extract date: still in treatment).
    pub exit: NaiveDate,
    /// Exit reason code.
    pub exit_reason: &'static str,
    profile: Profile,
}

fn profile(r: &mut Stream) -> Profile {
    let opiate = r.chance(0.5);
    Profile {
        opiate,
        crack: opiate && r.chance(0.45),
        cocaine: r.chance(0.18),
        alcohol: r.chance(if opiate { 0.2 } else { 0.45 }),
        cannabis: r.chance(0.25),
        amphetamine: r.chance(0.04),
        injecting: opiate && r.chance(0.35),
    }
}

fn exit_reason(r: &mut Stream, quality: f64) -> &'static str {
    let success = (0.38 * quality).min(0.7);
    let w = [
        success * 0.7,
        success * 0.3,
        0.10,
        0.30,
        0.06,
        0.05,
        0.0,
        0.04,
    ];
    [
        "completed_drug_free",
        "completed_occasional_user",
        "transferred",
        "dropped_out",
        "declined",
        "prison",
        "died",
        "other",
    ][r.weighted(&w)]
}

/// New episodes for one area in one year from one provider (`share` of the area's demand).
#[allow(clippy::too_many_arguments)]
pub fn episodes(
    world: &World,
    seed: u64,
    area: &Area,
    year: i32,
    share: f64,
    k: f64,
    r: &mut Stream,
    next_ref: &mut u64,
    prefix: &str,
) -> Vec<Episode> {
    let n = r.poisson(k * world.adults(area, year) * area.prevalence * share);
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(NaiveDate::MIN)
            + chrono::Duration::days(r.int(0, 364));
        let sex = usize::from(!r.chance(0.68));
        let age = (38.0 + 9.5 * r.normal()).clamp(18.0, 72.0) as u32;
        let serial = (r.f() * 1e15) as u64;
        let person = person(seed, area.p.code.as_str(), serial, sex, age, start);
        let days = r.lognormal(250.0, 0.75).clamp(20.0, 1500.0) as i64;
        *next_ref += 1;
        out.push(Episode {
            client_ref: format!("{prefix}{:07}", *next_ref),
            person,
            nhs_known: r.chance(0.8),
            area: area.idx,
            start,
            exit: start + chrono::Duration::days(days),
            exit_reason: exit_reason(r, area.treatment_quality),
            profile: profile(r),
        });
    }
    out
}

/// The episode of a client who later died (linked death).
pub fn linked_episode(
    d: &Death,
    r: &mut Stream,
    next_ref: &mut u64,
    prefix: &str,
) -> Option<Episode> {
    let (start, exit, died) = d.treatment?;
    *next_ref += 1;
    let mut p = profile(r);
    p.opiate = true;
    Some(Episode {
        client_ref: format!("{prefix}{:07}", *next_ref),
        person: d.person.clone(),
        nhs_known: d.nhs_known || r.chance(0.5),
        area: d.area,
        start,
        exit,
        exit_reason: if died {
            "died"
        } else {
            r.pick(&[
                "dropped_out",
                "dropped_out",
                "completed_drug_free",
                "transferred",
            ])
        },
        profile: p,
    })
}

fn days(r: &mut Stream, using: bool, level: f64) -> Cell {
    if r.chance(0.04) {
        return Cell::E; // not answered
    }
    if !using {
        return Cell::I(0);
    }
    Cell::I((level * 28.0 + 4.0 * r.normal()).round().clamp(0.0, 28.0) as i64)
}

fn yn(r: &mut Stream, p: f64) -> Cell {
    let x = r.f();
    if x < 0.05 {
        Cell::E
    } else if x < 0.05 + 0.95 * p {
        Cell::S(r.pick(&["Y", "Y", "yes"]))
    } else {
        Cell::S(r.pick(&["N", "N", "no"]))
    }
}

/// Every TOP row of an episode dated on or before `extract`, in date order.
pub fn top_rows(
    world: &World,
    ep: &Episode,
    provider: &str,
    extract: NaiveDate,
    uk_codes: bool,
    r: &mut Stream,
) -> Vec<Vec<Cell>> {
    let s = Source::Top;
    let area = &world.areas[ep.area];
    let mut dates: Vec<(NaiveDate, &'static str)> =
        vec![(ep.start + chrono::Duration::days(r.int(0, 6)), "start")];
    let mut t = dates[0].0;
    loop {
        t += chrono::Duration::days(91 + r.int(-20, 20));
        if t >= ep.exit {
            break;
        }
        dates.push((t, "review"));
    }
    dates.push((
        ep.exit
            .max(dates[dates.len() - 1].0 + chrono::Duration::days(1)),
        "exit",
    ));
    if ep.exit_reason != "died" && r.chance(0.1) {
        dates.push((
            ep.exit + chrono::Duration::days(r.int(150, 210)),
            "post_exit",
        ));
    }
    // Outcome trajectory: abstinence more likely with better treatment.
    let improve = (0.45 * area.treatment_quality).min(0.85);
    let mut rows = Vec::new();
    for (i, (date, stage)) in dates.iter().enumerate() {
        if *date > extract {
            break;
        }
        let progress = if i == 0 {
            0.0
        } else {
            (i as f64 / 3.0).min(1.0) * if r.chance(improve) { 1.0 } else { 0.3 }
        };
        let level = |base: f64| (base * (1.0 - progress)).max(0.0);
        let p = ep.profile;
        let mut row = vec![Cell::E; s.columns().len()];
        let mut set = |name: &str, v: Cell| row[ix(s, name)] = v;
        set("provider_code", Cell::O(provider.to_string()));
        set("partnership_code", Cell::O(area.p.code.to_string()));
        set("client_ref", Cell::O(ep.client_ref.clone()));
        if ep.nhs_known {
            set("nhs_number", Cell::O(ep.person.nhs.clone()));
        }
        set("date_of_birth", Cell::D(ep.person.dob));
        set("sex", Cell::S(if ep.person.sex == 0 { "M" } else { "F" }));
        set("episode_start", Cell::D(ep.start));
        set("top_date", Cell::D(*date));
        set(
            "stage",
            Cell::S(if uk_codes {
                match *stage {
                    "start" => "S",
                    "review" => "R",
                    "exit" => "E",
                    _ => "P",
                }
            } else {
                stage
            }),
        );
        let v = |r: &mut Stream, using: bool, base: f64| days(r, using, level(base));
        let (other, shop, sell, theft) = (
            r.chance(0.05),
            p.opiate && r.chance(0.2),
            r.chance(0.05),
            r.chance(0.04),
        );
        let cells = [
            ("alcohol_days", v(r, p.alcohol, 0.6)),
            ("opiate_days", v(r, p.opiate, 0.85)),
            ("crack_days", v(r, p.crack, 0.5)),
            ("cocaine_days", v(r, p.cocaine, 0.35)),
            ("amphetamine_days", v(r, p.amphetamine, 0.4)),
            ("cannabis_days", v(r, p.cannabis, 0.7)),
            ("other_drug_days", v(r, other, 0.2)),
            ("injected_days", v(r, p.injecting, 0.6)),
            ("shoplifting_days", v(r, shop, 0.3)),
            ("selling_drugs_days", v(r, sell, 0.2)),
            ("theft_days", v(r, theft, 0.2)),
            (
                "paid_work_days",
                Cell::I(if r.chance(0.2 + 0.3 * progress) {
                    r.int(4, 20)
                } else {
                    0
                }),
            ),
            (
                "education_days",
                Cell::I(if r.chance(0.05) { r.int(1, 12) } else { 0 }),
            ),
        ];
        for (n, c) in cells {
            set(n, c);
        }
        set(
            "alcohol_units_per_day",
            if p.alcohol {
                Cell::F((level(14.0) * 2.0).round() / 2.0)
            } else {
                Cell::F(0.0)
            },
        );
        set(
            "shared_equipment",
            if p.injecting {
                yn(r, 0.25 * (1.0 - progress))
            } else {
                Cell::E
            },
        );
        set("assault", yn(r, 0.05));
        let score = |r: &mut Stream, base: f64| {
            Cell::I(
                (base + 6.0 * progress + 2.5 * r.normal())
                    .round()
                    .clamp(0.0, 20.0) as i64,
            )
        };
        set("psych_health", score(r, 9.0));
        set("phys_health", score(r, 10.0));
        set("quality_of_life", score(r, 9.0));
        set("acute_housing_problem", yn(r, 0.15 * (1.0 - progress)));
        set("risk_of_eviction", yn(r, 0.08));
        if *stage == "exit" {
            set("exit_reason", Cell::S(ep.exit_reason));
        }
        rows.push(row);
        let _ = date.year();
    }
    rows
}
