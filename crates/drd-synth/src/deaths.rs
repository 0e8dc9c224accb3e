//! Coroner cases: the truth (every death as it happened) and how each coroner reports it at an
//! extract date.
//!
//! Poisoning deaths arise at rate K × population × age profile × sex × area risk × trend, with
//! K calibrated to about 5,000 poisoning deaths a year in England at national volume
//! (domain.md §1.5), about two thirds meeting the misuse definition. Ages peak at 40–49 and
//! about 70% are male. Inquests (registration) follow after a log-normal delay with a median
//! near 6 months and a long tail (domain.md §1.4), so recent deaths are still open at extract
//! time. A cluster of nitazene deaths is planted in one region in the last quarter.

use chrono::{Datelike, NaiveDate};
use drd_model::EspBand;

use crate::people::{Person, person};
use crate::rng::{Stream, stream};
use crate::world::{Submitter, World};

/// Relative poisoning death rate by ESP band (peak 40–49).
const AGE_PROFILE: [f64; 19] = [
    0.0, 0.0, 0.02, 0.25, 0.75, 1.3, 1.9, 2.5, 3.0, 2.9, 2.2, 1.4, 0.8, 0.45, 0.3, 0.25, 0.2, 0.2,
    0.2,
];
/// Male rate relative to female (gives about 70% male).
const MALE_RATE: f64 = 2.35;
/// Poisoning deaths a year in England in the calibration year.
const NATIONAL_POISONING: f64 = 4_900.0;
/// Cases that are not drug poisoning but reach the extract (alcohol, natural causes), as a
/// share of poisoning cases.
const NON_POISONING_SHARE: f64 = 0.08;

/// Region and timing of the planted nitazene cluster.
pub const CLUSTER_REGION: &str = "E12000005";
/// Number of planted cluster deaths.
pub const CLUSTER_SIZE: usize = 10;

/// What kind of death a case is, as generated (the classifier decides the flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Meant to meet the ONS misuse definition.
    Misuse,
    /// Poisoning with no controlled substance.
    PoisoningOnly,
    /// Not a drug poisoning.
    Other,
}

/// One death, as it truly happened.
#[derive(Debug, Clone)]
pub struct Death {
    /// Index of the residence area.
    pub area: usize,
    /// Index of the coroner submitter.
    pub coroner: usize,
    /// Serial within the coroner, for the case reference.
    pub serial: u32,
    /// The person.
    pub person: Person,
    /// Age at death.
    pub age: u32,
    /// Whether the extract has the date of birth.
    pub dob_known: bool,
    /// Whether the extract has the age column filled.
    pub age_known: bool,
    /// Whether the extract has the NHS number.
    pub nhs_known: bool,
    /// Whether the extract has the names.
    pub names_known: bool,
    /// Postcode, if recorded.
    pub postcode: Option<String>,
    /// Date of death.
    pub date_of_death: NaiveDate,
    /// Date the inquest concludes (registration), which may be after the extract date.
    pub date_of_inquest: NaiveDate,
    /// Date toxicology results come back.
    pub toxicology_date: NaiveDate,
    /// Underlying cause once the inquest concludes.
    pub cause: &'static str,
    /// Conclusion once the inquest concludes.
    pub conclusion: &'static str,
    /// Substances implicated.
    pub implicated: Vec<&'static str>,
    /// Substances found but not implicated.
    pub present: Vec<&'static str>,
    /// Place of death.
    pub place: &'static str,
    /// Y/N/U circumstances: known drug user, injecting history, in treatment, naloxone, alone.
    pub circumstances: [&'static str; 5],
    /// Days since prison release, if within a year.
    pub prison_days: Option<i64>,
    /// Kind.
    pub kind: Kind,
    /// Part of the planted cluster.
    pub cluster: bool,
    /// A recent treatment history to write into the TOP extract: (episode start, exit date, died in treatment).
    pub treatment: Option<(NaiveDate, NaiveDate, bool)>,
    /// Reported in error: the revised extract withdraws it.
    pub withdrawn: bool,
}

impl Death {
    /// Whether the inquest has concluded by a date.
    pub fn concluded_by(&self, d: NaiveDate) -> bool {
        self.date_of_inquest <= d
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// Trend: about +3% a year (domain.md §1.5: the most since records began).
fn trend(world: &World, year: i32) -> f64 {
    1.03f64.powi(year - (world.end_year - 2))
}

/// K such that the calibration year has [`NATIONAL_POISONING`] expected deaths.
fn calibrate(world: &World) -> f64 {
    let y = world.end_year - 2;
    let mut total = 0.0;
    for a in &world.areas {
        for b in EspBand::all() {
            for s in 0..2 {
                let rel = if s == 0 { MALE_RATE } else { 1.0 };
                total += world.population(a, y, s, b) as f64
                    * AGE_PROFILE[b.index()]
                    * rel
                    * a.death_risk;
            }
        }
    }
    NATIONAL_POISONING / total
}

const MISUSE_CAUSES: &[(&str, f64)] = &[
    ("X42", 48.0),
    ("F11", 10.0),
    ("X41", 4.0),
    ("X44", 9.0),
    ("Y12", 8.0),
    ("X62", 5.0),
    ("X64", 3.0),
    ("Y14", 2.0),
    ("F19", 5.0),
    ("F14", 2.0),
    ("X61", 1.5),
    ("Y11", 1.0),
    ("F13", 0.5),
    ("X40", 1.0),
];
const POISONING_CAUSES: &[(&str, f64)] = &[
    ("X42", 20.0),
    ("X41", 15.0),
    ("X44", 12.0),
    ("X61", 15.0),
    ("X64", 10.0),
    ("X60", 8.0),
    ("Y11", 6.0),
    ("Y14", 6.0),
    ("X40", 6.0),
    ("Y12", 2.0),
];
const OTHER_CAUSES: &[(&str, f64)] = &[
    ("F10", 35.0),
    ("X45", 25.0),
    ("I21", 15.0),
    ("R99", 10.0),
    ("K70", 15.0),
];

fn pick_weighted(r: &mut Stream, xs: &[(&'static str, f64)]) -> &'static str {
    let w: Vec<f64> = xs.iter().map(|x| x.1).collect();
    xs[r.weighted(&w)].0
}

/// Main controlled substance of a misuse death, by year (nitazenes appear from 2021).
fn primary_controlled(r: &mut Stream, year: i32) -> &'static str {
    let nitazene = if year >= 2021 {
        0.006 * f64::from((year - 2020).min(5))
    } else {
        0.0
    };
    let opts: &[(&'static str, f64)] = &[
        ("heroin", 34.0),
        ("morphine", 6.0),
        ("methadone", 14.0),
        ("cocaine", 14.0),
        ("crack cocaine", 4.0),
        ("buprenorphine", 2.0),
        ("oxycodone", 2.0),
        ("tramadol", 3.0),
        ("fentanyl", 1.5),
        ("amphetamine", 3.0),
        ("MDMA", 2.5),
        ("methamphetamine", 0.5),
        ("ketamine", 1.5),
        ("etizolam", 1.5),
        ("bromazolam", 1.0),
        ("synthetic cannabinoid receptor agonists", 1.0),
        ("diazepam", 3.0),
        ("codeine", 2.0),
        ("dihydrocodeine", 1.5),
    ];
    if r.chance(nitazene) {
        return r.pick(&[
            "isotonitazene",
            "metonitazene",
            "protonitazene",
            "N-pyrrolidino etonitazene",
        ]);
    }
    pick_weighted(r, opts)
}

const CO_SUBSTANCES: &[(&str, f64)] = &[
    ("alcohol", 0.25),
    ("diazepam", 0.15),
    ("pregabalin", 0.12),
    ("gabapentin", 0.06),
    ("cocaine", 0.18),
    ("mirtazapine", 0.05),
    ("amitriptyline", 0.04),
    ("methadone", 0.08),
];
const NON_CONTROLLED: &[&str] = &[
    "paracetamol",
    "amitriptyline",
    "mirtazapine",
    "citalopram",
    "sertraline",
    "alcohol",
];

/// Generates every death of one coroner in one year.
pub fn deaths_for(
    world: &World,
    seed: u64,
    coroners: &[Submitter],
    coroner: usize,
    year: i32,
    k: f64,
) -> Vec<Death> {
    let sub = &coroners[coroner];
    let mut r = stream(seed, "coroner", &sub.id, year);
    let mut out = Vec::new();
    let t = trend(world, year);
    for &ai in &sub.area_idx {
        let area = &world.areas[ai];
        for b in EspBand::all() {
            for s in 0..2usize {
                let rel = if s == 0 { MALE_RATE } else { 1.0 };
                let lambda = k
                    * world.population(area, year, s, b) as f64
                    * AGE_PROFILE[b.index()]
                    * rel
                    * area.death_risk
                    * t;
                let n = r.poisson(lambda * (1.0 + NON_POISONING_SHARE));
                for _ in 0..n {
                    let kind = if r.chance(NON_POISONING_SHARE / (1.0 + NON_POISONING_SHARE)) {
                        Kind::Other
                    } else {
                        let p_misuse = match b.index() {
                            0..=9 => 0.75,
                            10..=12 => 0.55,
                            _ => 0.20,
                        };
                        if r.chance(p_misuse) {
                            Kind::Misuse
                        } else {
                            Kind::PoisoningOnly
                        }
                    };
                    let upper = b.upper().unwrap_or(95);
                    let age = r.int(i64::from(b.lower()), i64::from(upper)) as u32;
                    let dod = ymd(year, 1, 1)
                        + chrono::Duration::days(r.int(0, if year % 4 == 0 { 365 } else { 364 }));
                    out.push(make_death(
                        &mut r, world, seed, coroner, ai, s, age, dod, kind,
                    ));
                }
            }
        }
    }
    let first_in_region = coroners
        .iter()
        .position(|c| world.areas[c.area_idx[0]].p.region_code.as_str() == CLUSTER_REGION);
    if year == world.end_year && first_in_region == Some(coroner) {
        plant_cluster(&mut r, world, seed, sub, coroner, &mut out);
    }
    out.sort_by_key(|d| (d.date_of_death, d.area, d.age));
    for (i, d) in out.iter_mut().enumerate() {
        d.serial = i as u32 + 1;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn make_death(
    r: &mut Stream,
    world: &World,
    seed: u64,
    coroner: usize,
    area: usize,
    sex: usize,
    age: u32,
    dod: NaiveDate,
    kind: Kind,
) -> Death {
    let code = world.areas[area].p.code.as_str();
    let serial = (r.f() * 1e15) as u64;
    let person = person(seed, code, serial, sex, age, dod);
    let year = dod.year();
    let (cause, implicated, conclusion) = match kind {
        Kind::Misuse => {
            let cause = pick_weighted(r, MISUSE_CAUSES);
            let mut imp = vec![primary_controlled(r, year)];
            for (s, p) in CO_SUBSTANCES {
                if r.chance(*p) && !imp.contains(s) {
                    imp.push(s);
                }
            }
            if cause == "F13" {
                imp = vec!["diazepam"];
            }
            let concl = r.pick(&[
                "drug_related",
                "drug_related",
                "accident",
                "accident",
                "misadventure",
                "narrative",
                "open",
                "suicide",
            ]);
            (cause, imp, concl)
        }
        Kind::PoisoningOnly => {
            let cause = pick_weighted(r, POISONING_CAUSES);
            let mut imp = vec![r.pick(&NON_CONTROLLED[..5])];
            if r.chance(0.3) {
                imp.push("alcohol");
            }
            if year < 2019 && r.chance(0.1) {
                imp.push("pregabalin"); // not controlled before April 2019
            }
            let concl = if cause.starts_with("X6") {
                "suicide"
            } else {
                r.pick(&["accident", "open", "narrative", "misadventure"])
            };
            (cause, imp, concl)
        }
        Kind::Other => {
            let cause = pick_weighted(r, OTHER_CAUSES);
            let imp = if cause == "F10" || cause == "X45" || cause == "K70" {
                vec!["alcohol"]
            } else {
                vec![]
            };
            let concl = if cause == "I21" || cause == "K70" {
                "natural"
            } else {
                r.pick(&["accident", "narrative", "natural"])
            };
            (cause, imp, concl)
        }
    };
    let mut present: Vec<&'static str> = Vec::new();
    for s in ["cannabis", "diazepam", "paracetamol", "cocaine"] {
        if r.chance(0.12) && !implicated.contains(&s) {
            present.push(s);
        }
    }
    let delay = r.lognormal(175.0, 0.72).clamp(10.0, 1400.0).round() as i64;
    let tox = r.lognormal(50.0, 0.3).clamp(14.0, 200.0).round() as i64;
    let misuse = kind == Kind::Misuse;
    let yn = |r: &mut Stream, p_yes: f64| -> &'static str {
        let x = r.f();
        if x < p_yes {
            "Y"
        } else if x < p_yes + (1.0 - p_yes) * 0.8 {
            "N"
        } else {
            "U"
        }
    };
    let circumstances = [
        yn(r, if misuse { 0.8 } else { 0.15 }),
        yn(r, if misuse { 0.35 } else { 0.03 }),
        yn(r, if misuse { 0.3 } else { 0.02 }),
        yn(r, if misuse { 0.12 } else { 0.01 }),
        yn(r, 0.55),
    ];
    let prison_days = (misuse && r.chance(0.03)).then(|| r.int(1, 365));
    let place = r.pick(&[
        "home",
        "home",
        "home",
        "home",
        "home",
        "other_private",
        "public_place",
        "hostel",
        "hospital",
        "hospital",
        "prison",
        "other",
        "unknown",
    ]);
    let dob_known = r.chance(0.8);
    let age_known = !dob_known || r.chance(0.85);
    let nhs_known = r.chance(0.85);
    let names_known = r.chance(0.7);
    let postcode = r
        .chance(0.75)
        .then(|| crate::people::postcode(r, &world.areas[area].p.name));
    let treatment = (misuse && r.chance(0.3)).then(|| {
        let start = dod - chrono::Duration::days(r.int(30, 900));
        if r.chance(0.5) {
            (start, dod, true)
        } else {
            (
                start,
                (dod - chrono::Duration::days(r.int(10, 330)))
                    .max(start + chrono::Duration::days(7)),
                false,
            )
        }
    });
    Death {
        area,
        coroner,
        serial: 0,
        person,
        age,
        dob_known,
        age_known,
        nhs_known,
        names_known,
        postcode,
        date_of_death: dod,
        date_of_inquest: dod + chrono::Duration::days(delay),
        toxicology_date: dod + chrono::Duration::days(tox),
        cause,
        conclusion,
        implicated,
        present,
        place,
        circumstances,
        prison_days,
        kind,
        cluster: false,
        treatment,
        withdrawn: false,
    }
}

/// At least 8 nitazene deaths in one region within 4 weeks of the final quarter.
fn plant_cluster(
    r: &mut Stream,
    world: &World,
    seed: u64,
    sub: &Submitter,
    coroner: usize,
    out: &mut Vec<Death>,
) {
    // Monday 3 November of the final year, or the Monday after 1 November.
    let nov1 = ymd(world.end_year, 11, 1);
    let start =
        nov1 + chrono::Duration::days(i64::from((7 - nov1.weekday().num_days_from_monday()) % 7));
    for i in 0..CLUSTER_SIZE {
        let area = sub.area_idx[i % sub.area_idx.len()];
        let dod = start + chrono::Duration::days(r.int(0, 26));
        let age = r.int(24, 52) as u32;
        let sex = usize::from(r.chance(0.2));
        let mut d = make_death(r, world, seed, coroner, area, sex, age, dod, Kind::Misuse);
        d.implicated = vec![r.pick(&["isotonitazene", "protonitazene", "metonitazene"])];
        if r.chance(0.5) {
            d.implicated.push("heroin");
        }
        d.toxicology_date = dod + chrono::Duration::days(r.int(20, 45));
        d.cause = "X42";
        d.cluster = true;
        out.push(d);
    }
}

/// Every death of every coroner, year by year.
pub fn all_deaths(world: &World, seed: u64, coroners: &[Submitter]) -> Vec<Vec<Death>> {
    let k = calibrate(world);
    (0..coroners.len())
        .map(|c| {
            world
                .years()
                .flat_map(|y| deaths_for(world, seed, coroners, c, y, k))
                .collect()
        })
        .collect()
}

/// Registration-year window check helper: the ESP band of an age.
pub fn band_of(age: u32) -> EspBand {
    EspBand::from_age(age.min(120))
        .unwrap_or_else(|_| EspBand::from_index(18).unwrap_or_else(|| unreachable!()))
}
