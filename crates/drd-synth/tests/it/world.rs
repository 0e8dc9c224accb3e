//! The shipped partnerships file is exactly what the generator derives, and the world's
//! populations meet the constraints.

use drd_model::EspBand;
use drd_model::reference::{load_partnerships, load_population, load_pwid};
use drd_synth::world::{World, partnerships_csv, population_csv, pwid_csv};

#[test]
fn shipped_partnerships_match_the_generated_comparator_groups() {
    let shipped = include_str!("../../../../reference/partnerships_2021.csv");
    let world = World::new(2019, 2025);
    assert_eq!(
        shipped,
        partnerships_csv(&world),
        "reference/partnerships_2021.csv is stale: regenerate it with `drdsurv generate` and copy reference/partnerships_2021.csv"
    );
    let p = load_partnerships("partnerships_2021.csv", shipped.as_bytes(), "2021").unwrap();
    let mut sizes = std::collections::BTreeMap::new();
    for x in p.all() {
        *sizes
            .entry(x.comparator_group.clone().unwrap())
            .or_insert(0) += 1;
    }
    assert_eq!(sizes.len(), 16);
    assert!(sizes.values().all(|n| (9..=10).contains(n)), "{sizes:?}");
}

#[test]
fn populations_total_about_57_million_and_are_never_zero() {
    let world = World::new(2019, 2025);
    let pop = load_population("population.csv", population_csv(&world).as_bytes()).unwrap();
    assert_eq!(pop.len(), 152 * 7 * 2 * 19);
    assert!(
        pop.iter().all(|r| r.population > 0),
        "a cell has population 0"
    );
    let total_2019: u64 = pop
        .iter()
        .filter(|r| r.year == 2019)
        .map(|r| r.population)
        .sum();
    assert!(
        (56_000_000..=58_000_000).contains(&total_2019),
        "{total_2019}"
    );
    let area = |code: &str| {
        pop.iter()
            .filter(|r| r.code.as_str() == code && r.year == 2025)
            .map(|r| r.population)
            .sum::<u64>()
    };
    let scilly = area("E06000053");
    let city = area("E09000001");
    assert!((1_500..5_000).contains(&scilly), "Isles of Scilly {scilly}");
    assert!((5_000..15_000).contains(&city), "City of London {city}");
    assert_eq!(
        pop.iter()
            .filter(|r| r.code.as_str() == "E06000053"
                && r.year == 2025
                && r.age_band == EspBand::parse("90+").unwrap())
            .count(),
        2
    );
    let pwid = load_pwid("pwid.csv", pwid_csv(&world).as_bytes()).unwrap();
    let total: f64 = pwid
        .iter()
        .filter(|r| r.year == 2025)
        .map(|r| r.estimated_pwid)
        .sum();
    assert!((40_000.0..200_000.0).contains(&total), "PWID {total}");
}

#[test]
fn treatment_outcomes_differ_by_area() {
    // Successful completion share of episodes, per partnership, at national volume over 3 years.
    let world = World::new(2019, 2025);
    let k_total: f64 = world
        .areas
        .iter()
        .map(|a| world.adults(a, 2023) * a.prevalence)
        .sum();
    let k = drd_synth::top::NATIONAL_NEW_EPISODES / k_total;
    let mut shares: Vec<f64> = world
        .areas
        .iter()
        .filter_map(|a| {
            let mut r = drd_synth::rng::stream(7, "test", a.p.code.as_str(), 0);
            let mut next = 0;
            let eps: Vec<_> = (2021..=2023)
                .flat_map(|y| {
                    drd_synth::top::episodes(&world, 7, a, y, 1.0, k, &mut r, &mut next, "T")
                })
                .collect();
            (eps.len() >= 200).then(|| {
                eps.iter()
                    .filter(|e| e.exit_reason.starts_with("completed"))
                    .count() as f64
                    / eps.len() as f64
            })
        })
        .collect();
    shares.sort_by(f64::total_cmp);
    let (p10, p90) = (shares[shares.len() / 10], shares[shares.len() * 9 / 10]);
    assert!(shares.len() > 120, "{}", shares.len());
    assert!(
        p90 / p10 > 1.3,
        "completion shares barely vary: p10 {p10:.3}, p90 {p90:.3}"
    );
    assert!(
        (0.15..0.6).contains(&p10) && p90 < 0.75,
        "p10 {p10:.3}, p90 {p90:.3}"
    );
}
