//! The synthetic world every extract is drawn from: the 152 real partnerships (2021 geography)
//! with synthetic populations, PWID estimates, drug-death risk, treatment performance and
//! comparator groups, and the submitters (coroner areas, treatment providers, NSP schemes).
//!
//! Everything here depends only on the partnership codes and the years, never on the seed, so
//! the comparator groups shipped in `reference/partnerships_2021.csv` are stable.

use drd_model::reference::{Partnership, load_partnerships};
use drd_model::{EspBand, GssCode};

use crate::rng::{hash_keys, unit};

/// The 2021 upper-tier authorities (ONS, OGL v3.0; see reference/README.md).
pub const UTLA_2021: &str = include_str!("../../../reference/utla_2021.csv");

/// England's population the synthetic estimates are scaled to in the first year (mid-2021 was
/// about 56.5 million).
pub const ENGLAND_POPULATION: f64 = 56_500_000.0;

/// Relative drug-death risk by region code, after ONS regional rates: the North East has about
/// three times London's drug-misuse mortality.
fn region_risk(region: &str) -> f64 {
    match region {
        "E12000001" => 1.75, // North East
        "E12000002" => 1.45, // North West
        "E12000003" => 1.15, // Yorkshire and The Humber
        "E12000004" => 0.95, // East Midlands
        "E12000005" => 0.95, // West Midlands
        "E12000006" => 0.75, // East of England
        "E12000007" => 0.66, // London
        "E12000008" => 0.80, // South East
        "E12000009" => 1.10, // South West
        _ => 1.0,
    }
}

fn region_deprivation(region: &str) -> f64 {
    match region {
        "E12000001" => 0.7,
        "E12000002" => 0.5,
        "E12000003" => 0.4,
        "E12000005" => 0.3,
        "E12000007" => 0.2,
        "E12000008" => -0.6,
        "E12000006" => -0.4,
        "E12000009" => -0.3,
        _ => 0.0,
    }
}

/// Share of the population in each ESP2013 band (roughly England 2021).
const AGE_SHARE: [f64; 19] = [
    5.7, 6.1, 6.0, 5.6, 6.1, 6.7, 6.9, 6.6, 6.2, 6.4, 6.9, 6.7, 5.8, 5.0, 5.0, 3.6, 2.5, 1.4, 0.8,
];

/// One partnership and its synthetic attributes.
#[derive(Debug, Clone)]
pub struct Area {
    /// Reference row (code, name, region, comparator group).
    pub p: Partnership,
    /// Index in [`World::areas`].
    pub idx: usize,
    /// Synthetic total population in the first year.
    pub base_population: f64,
    /// Deprivation score, about N(0, 1).
    pub deprivation: f64,
    /// Relative drug-death risk (multiplies age- and sex-specific rates).
    pub death_risk: f64,
    /// Relative prevalence of drug use (PWID and treatment demand).
    pub prevalence: f64,
    /// Treatment performance, about 0.6–1.4: raises completion and abstinence.
    pub treatment_quality: f64,
    /// NSP provision intensity, drives coverage (syringes per PWID).
    pub nsp_intensity: f64,
    /// Age-structure tilt: positive is younger (London), negative is older (coast, rural).
    pub youth: f64,
}

/// The world: areas, years, submitters.
#[derive(Debug, Clone)]
pub struct World {
    /// The partnerships, in reference-file order.
    pub areas: Vec<Area>,
    /// First year of data.
    pub first_year: i32,
    /// Last year of data (complete).
    pub end_year: i32,
}

fn h(code: &str, what: &str) -> f64 {
    unit(hash_keys(&[code.as_bytes(), what.as_bytes()]))
}

/// An approximately normal number from two hashes.
fn hn(code: &str, what: &str) -> f64 {
    let u1 = h(code, what).max(1e-12);
    let u2 = h(code, &format!("{what}/2"));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl World {
    /// Builds the world for the years `first_year..=end_year`.
    pub fn new(first_year: i32, end_year: i32) -> World {
        let parts = load_partnerships("reference/utla_2021.csv", UTLA_2021.as_bytes(), "2021")
            .unwrap_or_else(|e| panic!("embedded geography is invalid: {e}"));
        let mut areas: Vec<Area> = parts
            .all()
            .iter()
            .enumerate()
            .map(|(idx, p)| {
                let code = p.code.as_str();
                let region = p.region_code.as_str();
                let (lo, hi): (f64, f64) = match (code, p.code.entity()) {
                    ("E06000053", _) => (2_100.0, 2_300.0),   // Isles of Scilly
                    ("E09000001", _) => (8_000.0, 9_500.0),   // City of London
                    ("E06000017", _) => (38_000.0, 42_000.0), // Rutland
                    (_, "E10") => (520_000.0, 1_500_000.0),
                    (_, "E08") => (160_000.0, 1_100_000.0),
                    (_, "E09") => (150_000.0, 390_000.0),
                    _ => (90_000.0, 560_000.0),
                };
                let base_population = lo * (hi / lo).powf(h(code, "population"));
                let deprivation =
                    (region_deprivation(region) + 0.8 * hn(code, "deprivation")).clamp(-2.2, 2.2);
                let death_risk = region_risk(region)
                    * (0.11 * deprivation).exp()
                    * (0.07 * hn(code, "death")).exp();
                let prevalence = region_risk(region).powf(0.6)
                    * (0.18 * deprivation).exp()
                    * (0.12 * hn(code, "prevalence")).exp();
                let treatment_quality = (0.22 * hn(code, "treatment")).exp();
                let nsp_intensity = (0.35 * hn(code, "nsp")).exp();
                let youth = if region == "E12000007" {
                    0.8
                } else {
                    0.4 * hn(code, "youth") - 0.1
                };
                Area {
                    p: p.clone(),
                    idx,
                    base_population,
                    deprivation,
                    death_risk,
                    prevalence,
                    treatment_quality,
                    nsp_intensity,
                    youth,
                }
            })
            .collect();
        let total: f64 = areas.iter().map(|a| a.base_population).sum();
        let fixed: f64 = areas
            .iter()
            .filter(|a| is_tiny(a))
            .map(|a| a.base_population)
            .sum();
        let k = (ENGLAND_POPULATION - fixed) / (total - fixed);
        for a in areas.iter_mut().filter(|a| !is_tiny(a)) {
            a.base_population *= k;
        }
        assign_comparator_groups(&mut areas);
        World {
            areas,
            first_year,
            end_year,
        }
    }

    /// The years of data.
    pub fn years(&self) -> impl Iterator<Item = i32> + use<> {
        self.first_year..=self.end_year
    }

    /// Population of an area in a year, by sex (0 male, 1 female) and band. Never 0.
    pub fn population(&self, area: &Area, year: i32, sex: usize, band: EspBand) -> u64 {
        let growth = 1.006f64.powi(year - self.first_year);
        let b = band.index();
        let mut share = AGE_SHARE[b];
        if (4..=8).contains(&b) {
            share *= 1.0 + 0.35 * area.youth;
        } else if b >= 13 {
            share *= (1.0 - 0.45 * area.youth).max(0.3);
        }
        let norm: f64 = (0..19)
            .map(|i| {
                let mut s = AGE_SHARE[i];
                if (4..=8).contains(&i) {
                    s *= 1.0 + 0.35 * area.youth;
                } else if i >= 13 {
                    s *= (1.0 - 0.45 * area.youth).max(0.3);
                }
                s
            })
            .sum();
        let male_share = match b {
            0..=11 => 0.505,
            12..=14 => 0.49,
            15..=16 => 0.47,
            17 => 0.41,
            _ => 0.33,
        };
        let sex_share = if sex == 0 {
            male_share
        } else {
            1.0 - male_share
        };
        (area.base_population * growth * share / norm * sex_share)
            .round()
            .max(1.0) as u64
    }

    /// People aged 15–64 in an area and year.
    pub fn adults(&self, area: &Area, year: i32) -> f64 {
        EspBand::all()
            .filter(|b| (3..=12).contains(&b.index()))
            .map(|b| (self.population(area, year, 0, b) + self.population(area, year, 1, b)) as f64)
            .sum()
    }

    /// Estimated people who inject drugs: about 0.17% of 15–64s, scaled by prevalence.
    pub fn pwid(&self, area: &Area, year: i32) -> f64 {
        (self.adults(area, year) * 0.0017 * area.prevalence)
            .round()
            .max(3.0)
    }

    /// The area with a code.
    pub fn area(&self, code: &str) -> Option<&Area> {
        self.areas.iter().find(|a| a.p.code.as_str() == code)
    }
}

fn is_tiny(a: &Area) -> bool {
    matches!(a.p.code.as_str(), "E06000053" | "E09000001" | "E06000017")
}

/// Comparator groups of similar areas: 8 bands of deprivation, each split in two by the size of
/// the population, giving 16 groups of 9–10 areas (`CG01`…`CG16`). Real comparator groups
/// (e.g. CIPFA nearest neighbours) use many more covariates; this is enough to benchmark on.
fn assign_comparator_groups(areas: &mut [Area]) {
    let mut order: Vec<usize> = (0..areas.len()).collect();
    order.sort_by(|&a, &b| {
        areas[a]
            .deprivation
            .total_cmp(&areas[b].deprivation)
            .then(areas[a].p.code.cmp(&areas[b].p.code))
    });
    let n = order.len();
    let bands = 8;
    let mut group = 0;
    for band in 0..bands {
        let lo = band * n / bands;
        let hi = (band + 1) * n / bands;
        let mut members: Vec<usize> = order[lo..hi].to_vec();
        members.sort_by(|&a, &b| {
            areas[a]
                .base_population
                .total_cmp(&areas[b].base_population)
                .then(areas[a].p.code.cmp(&areas[b].p.code))
        });
        let half = members.len() / 2;
        for (i, &m) in members.iter().enumerate() {
            let g = group + usize::from(i >= half);
            areas[m].p.comparator_group = Some(format!("CG{:02}", g + 1));
        }
        group += 2;
    }
}

/// The partnerships file in formats.md §4 columns, as shipped in `reference/partnerships_2021.csv`.
pub fn partnerships_csv(world: &World) -> String {
    let mut out = String::from("code,name,region_code,region_name,comparator_group\n");
    for a in &world.areas {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            a.p.code,
            csv_text(&a.p.name),
            a.p.region_code,
            csv_text(&a.p.region_name),
            a.p.comparator_group.as_deref().unwrap_or("")
        ));
    }
    out
}

/// The covariates behind the comparator groups.
pub fn comparator_csv(world: &World) -> String {
    let mut out =
        String::from("code,comparator_group,population,deprivation_score,prevalence_index\n");
    for a in &world.areas {
        out.push_str(&format!(
            "{},{},{},{:.3},{:.3}\n",
            a.p.code,
            a.p.comparator_group.as_deref().unwrap_or(""),
            a.base_population.round(),
            a.deprivation,
            a.prevalence
        ));
    }
    out
}

/// Quotes a CSV field when needed.
pub fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Who submits what.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Submitter {
    /// Source: `coroner`, `top` or `nsp`.
    pub source: &'static str,
    /// Submitter id (folder name).
    pub id: String,
    /// Display name (a coroner area's name as the coroner writes it, a provider's name).
    pub name: String,
    /// Partnership codes this submitter may send.
    pub areas: Vec<String>,
    /// Indices of those areas in the world.
    #[serde(skip)]
    pub area_idx: Vec<usize>,
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn by_region(world: &World) -> Vec<Vec<usize>> {
    let mut regions: Vec<(String, Vec<usize>)> = Vec::new();
    for a in &world.areas {
        match regions
            .iter_mut()
            .find(|(r, _)| r == a.p.region_code.as_str())
        {
            Some((_, v)) => v.push(a.idx),
            None => regions.push((a.p.region_code.to_string(), vec![a.idx])),
        }
    }
    regions.into_iter().map(|(_, v)| v).collect()
}

fn submitter(
    world: &World,
    source: &'static str,
    id: String,
    name: String,
    idx: Vec<usize>,
) -> Submitter {
    let areas = idx
        .iter()
        .map(|&i| world.areas[i].p.code.to_string())
        .collect();
    Submitter {
        source,
        id,
        name,
        areas,
        area_idx: idx,
    }
}

/// Coroner areas: consecutive partnerships of a region in groups of 1–4, named after their
/// first partnership.
pub fn coroner_submitters(world: &World) -> Vec<Submitter> {
    let sizes = [3, 1, 2, 4, 2, 3, 1, 2];
    let mut out = Vec::new();
    let mut k = 0;
    for members in by_region(world) {
        let mut i = 0;
        while i < members.len() {
            let n = sizes[k % sizes.len()].min(members.len() - i);
            let chunk = members[i..i + n].to_vec();
            let first = &world.areas[chunk[0]].p.name;
            let name = if n == 1 {
                format!("{first} Coroner Area")
            } else {
                format!("{first} and District Coroner Area")
            };
            out.push(submitter(
                world,
                "coroner",
                format!("coroner-{}", slug(first)),
                name,
                chunk,
            ));
            i += n;
            k += 1;
        }
    }
    out
}

/// Treatment providers: 2–4 regional providers per region covering consecutive partnerships,
/// plus one national charity serving every twelfth partnership alongside the local provider.
pub fn top_submitters(world: &World) -> Vec<Submitter> {
    let mut out = Vec::new();
    for (r, members) in by_region(world).into_iter().enumerate() {
        let n_prov = (members.len() / 6).clamp(2, 4);
        for j in 0..n_prov {
            let lo = j * members.len() / n_prov;
            let hi = (j + 1) * members.len() / n_prov;
            let chunk = members[lo..hi].to_vec();
            let region = slug(&world.areas[chunk[0]].p.region_name);
            out.push(submitter(
                world,
                "top",
                format!("provider-{region}-{}", j + 1),
                format!(
                    "{} Recovery Partnership {}",
                    world.areas[chunk[0]].p.region_name,
                    j + 1
                ),
                chunk,
            ));
        }
        let _ = r;
    }
    let national: Vec<usize> = (0..world.areas.len()).filter(|i| i % 12 == 5).collect();
    out.push(submitter(
        world,
        "top",
        "provider-national-charity".into(),
        "National Recovery Charity".into(),
        national,
    ));
    out
}

/// NSP schemes, each covering one or more regions.
pub fn nsp_submitters(world: &World) -> Vec<Submitter> {
    let groups: [(&str, &[&str]); 6] = [
        ("nsp-north", &["E12000001", "E12000002", "E12000003"]),
        ("nsp-midlands", &["E12000004", "E12000005"]),
        ("nsp-east", &["E12000006"]),
        ("nsp-london", &["E12000007"]),
        ("nsp-south-east", &["E12000008"]),
        ("nsp-south-west", &["E12000009"]),
    ];
    groups
        .iter()
        .map(|(id, regions)| {
            let idx: Vec<usize> = world
                .areas
                .iter()
                .filter(|a| regions.contains(&a.p.region_code.as_str()))
                .map(|a| a.idx)
                .collect();
            let name = format!(
                "{} Needle and Syringe Scheme",
                id.trim_start_matches("nsp-").replace('-', " ")
            );
            submitter(world, "nsp", (*id).to_string(), name, idx)
        })
        .collect()
}

/// The population CSV (formats.md §4 long layout) for every area, year, sex and band.
pub fn population_csv(world: &World) -> String {
    let mut out = String::from("code,year,sex,age_band,population\n");
    for a in &world.areas {
        for y in world.years() {
            for (s, sex) in ["male", "female"].iter().enumerate() {
                for b in EspBand::all() {
                    out.push_str(&format!(
                        "{},{y},{sex},{},{}\n",
                        a.p.code,
                        b.label(),
                        world.population(a, y, s, b)
                    ));
                }
            }
        }
    }
    out
}

/// The PWID estimates CSV.
pub fn pwid_csv(world: &World) -> String {
    let mut out = String::from("code,year,estimated_pwid\n");
    for a in &world.areas {
        for y in world.years() {
            out.push_str(&format!("{},{y},{}\n", a.p.code, world.pwid(a, y)));
        }
    }
    out
}

/// A GSS-shaped code guaranteed not to be in the 2021 vintage (for `unknown_area` faults).
pub fn unknown_area_code() -> GssCode {
    GssCode::parse("E06000099").unwrap_or_else(|e| panic!("{e}"))
}
