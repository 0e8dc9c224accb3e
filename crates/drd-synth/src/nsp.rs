//! Needle-and-syringe programme monthly returns (formats.md §3). About one site per 12,000
//! adults (about 3,000 in England); syringe sets per PWID per year vary across areas from about
//! 80 to over 300, spanning the WHO low/medium/high bands (domain.md §4.2).

use chrono::NaiveDate;
use drd_model::Source;

use crate::faults::ix;
use crate::out::Cell;
use crate::rng::{Stream, hash_keys, unit};
use crate::world::{Area, World};

/// One site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Site code.
    pub code: String,
    /// Site type.
    pub kind: &'static str,
    /// Area index.
    pub area: usize,
    /// Share of the area's activity.
    pub weight: f64,
    /// Whether the site records client codes.
    pub records_clients: bool,
}

/// The sites of an area (seed-independent).
pub fn sites(world: &World, area: &Area) -> Vec<Site> {
    let n = (world.adults(area, world.first_year) / 12_000.0)
        .round()
        .max(1.0) as usize;
    let mut out: Vec<Site> = (0..n)
        .map(|k| {
            let h = |w: &str| {
                unit(hash_keys(&[
                    area.p.code.as_str().as_bytes(),
                    &k.to_le_bytes(),
                    w.as_bytes(),
                ]))
            };
            let x = h("type");
            let kind = if x < 0.8 {
                "pharmacy"
            } else if x < 0.9 {
                "specialist"
            } else if x < 0.95 {
                "outreach"
            } else if x < 0.98 {
                "mobile"
            } else {
                "vending"
            };
            let weight = match kind {
                "specialist" => 6.0,
                "outreach" | "mobile" => 2.5,
                _ => 1.0,
            } * (0.5 + h("size"));
            Site {
                code: format!("{}-S{:03}", area.p.code, k + 1),
                kind,
                area: area.idx,
                weight,
                records_clients: kind != "pharmacy" || h("clients") < 0.3,
            }
        })
        .collect();
    let total: f64 = out.iter().map(|s| s.weight).sum();
    for s in &mut out {
        s.weight /= total;
    }
    out
}

/// One monthly return.
pub fn return_row(
    world: &World,
    site: &Site,
    month_start: NaiveDate,
    month_end: NaiveDate,
    r: &mut Stream,
) -> Vec<Cell> {
    let s = Source::Nsp;
    let area = &world.areas[site.area];
    let year = chrono::Datelike::year(&month_start);
    let pwid = world.pwid(area, year);
    let visits = pwid * 2.4 * area.nsp_intensity.sqrt() * site.weight;
    let tx = r.poisson(visits) as i64;
    let per_visit = 5.5 * area.nsp_intensity.sqrt() * (0.85 + 0.3 * r.f());
    let sets = (tx as f64 * per_visit).round() as i64;
    let mut row = vec![Cell::E; s.columns().len()];
    let mut set = |name: &str, v: Cell| row[ix(s, name)] = v;
    set("site_code", Cell::O(site.code.clone()));
    set("site_type", Cell::S(site.kind));
    set("partnership_code", Cell::O(area.p.code.to_string()));
    set("period_start", Cell::D(month_start));
    set("period_end", Cell::D(month_end));
    set("transactions", Cell::I(tx));
    if site.records_clients {
        let clients = ((tx as f64) * (0.35 + 0.2 * r.f())).round() as i64;
        set("clients", Cell::I(clients));
        set(
            "new_clients",
            Cell::I(((clients as f64) * 0.1 * r.f()).round() as i64),
        );
    }
    set("syringe_sets_issued", Cell::I(sets));
    set(
        "needles_issued",
        Cell::I((sets as f64 * 0.3 * r.f()).round() as i64),
    );
    let bins = (tx as f64 * 0.3).round() as i64;
    set("sharps_bins_issued", Cell::I(bins));
    set(
        "sharps_bins_returned",
        Cell::I((bins as f64 * (0.4 + 0.4 * r.f())).round() as i64),
    );
    set(
        "foil_packs",
        Cell::I((tx as f64 * 0.2 * r.f()).round() as i64),
    );
    set(
        "pipes_issued",
        Cell::I((tx as f64 * 0.05 * r.f()).round() as i64),
    );
    set(
        "naloxone_kits_issued",
        Cell::I(r.poisson(tx as f64 * 0.03) as i64),
    );
    if site.kind != "pharmacy" {
        let offered = r.poisson(tx as f64 * 0.08) as i64;
        set("bbv_tests_offered", Cell::I(offered));
        set(
            "bbv_tests_done",
            Cell::I((offered as f64 * (0.5 + 0.4 * r.f())).floor() as i64),
        );
        set(
            "referrals_to_treatment",
            Cell::I(r.poisson(tx as f64 * 0.02) as i64),
        );
    }
    row
}
