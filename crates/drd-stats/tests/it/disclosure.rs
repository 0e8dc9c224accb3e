//! Disclosure control: the linear-programming attack on secondary suppression (scipy, in
//! tests/python/suppression_attack.py), differencing of cell-key tables, and the small-count
//! property for every policy.

use drd_stats::disclosure::{
    MarginTable, PTable, Policy, SMALL_COUNT_MAX, Scope, cell_key, ckm, record_key, secondary,
};
use proptest::prelude::*;

/// splitmix64: a fixed, dependency-free generator for the seeded tables.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A table of 3–12 rows by 3–8 columns: about a quarter of the cells 1–4, a tenth 0, the
/// rest 5–60.
fn random_table(rng: &mut Rng) -> Vec<Vec<u64>> {
    let rows = 3 + rng.below(10) as usize;
    let cols = 3 + rng.below(6) as usize;
    (0..rows)
        .map(|_| {
            (0..cols)
                .map(|_| match rng.below(20) {
                    0..=4 => 1 + rng.below(4),
                    5..=6 => 0,
                    _ => 5 + rng.below(56),
                })
                .collect()
        })
        .collect()
}

fn json_bools(v: &[bool]) -> String {
    let s: Vec<&str> = v
        .iter()
        .map(|b| if *b { "true" } else { "false" })
        .collect();
    format!("[{}]", s.join(","))
}

#[test]
fn secondary_suppression_survives_the_linear_programming_attack() {
    let mut rng = Rng(20_261_126);
    let mut tables = Vec::new();
    let mut suppressed_total = 0;
    for _ in 0..24 {
        let t = MarginTable::from_interior(&random_table(&mut rng)).unwrap();
        let s = secondary(&t, 5).unwrap();
        assert!(s.primary.iter().zip(&s.suppressed).all(|(p, s)| !p || *s));
        suppressed_total += s.suppressed.iter().filter(|x| **x).count();
        let cells: Vec<String> = t.cells.iter().map(u64::to_string).collect();
        tables.push(format!(
            r#"{{"rows":{},"cols":{},"cells":[{}],"suppressed":{},"primary":{}}}"#,
            t.rows,
            t.cols,
            cells.join(","),
            json_bools(&s.suppressed),
            json_bools(&s.primary)
        ));
    }
    assert!(suppressed_total > 24, "the tables should need suppression");
    let dir = std::env::temp_dir().join(format!("drdsurv-attack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tables.json");
    std::fs::write(&path, format!(r#"{{"tables":[{}]}}"#, tables.join(","))).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/suppression_attack.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 (tests/run.sh installs it with scipy)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "the attack recovered cells or failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"failures\": 0"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Records for 152 areas: area `a` has `counts[a]` records with pseudonyms of their own.
fn records(rng: &mut Rng) -> Vec<Vec<String>> {
    (0..152)
        .map(|a| {
            let n = match rng.below(4) {
                0 => rng.below(5),
                1 => 5 + rng.below(10),
                _ => 15 + rng.below(200),
            };
            (0..n)
                .map(|i| format!("pseudonym-{a}-{i}-{}", rng.next()))
                .collect()
        })
        .collect()
}

#[test]
fn cell_key_tables_do_not_difference_to_a_small_count() {
    let pt = PTable::synthetic();
    let mut rng = Rng(7);
    let areas = records(&mut rng);
    let cell = |recs: &[&String]| -> (u64, Option<u64>) {
        let key = cell_key(recs.iter().map(|p| record_key(p)));
        (
            recs.len() as u64,
            ckm(recs.len() as u64, key, &pt, Scope::SubNational).count,
        )
    };
    let all: Vec<&String> = areas.iter().flatten().collect();
    let (_, total_all) = cell(&all);
    let mut small_areas = 0;
    for removed in 0..areas.len() {
        let rest: Vec<&String> = areas
            .iter()
            .enumerate()
            .filter(|(a, _)| *a != removed)
            .flat_map(|(_, r)| r)
            .collect();
        let (_, total_rest) = cell(&rest);
        let diff = total_all.unwrap() as i64 - total_rest.unwrap() as i64;
        assert!(
            !(1..=4).contains(&diff.abs()),
            "removing area {removed} ({} records) differences to {diff}",
            areas[removed].len()
        );
        let own: Vec<&String> = areas[removed].iter().collect();
        small_areas += usize::from((1..=4).contains(&own.len()));
        // The same cell in two tables (its records are the same) gets the same value.
        let mut shuffled = own.clone();
        shuffled.reverse();
        assert_eq!(cell(&own).1, cell(&shuffled).1);
    }
    assert!(small_areas > 5, "the test needs areas with 1-4 records");
    // The noise is not always zero: some cells are perturbed.
    let perturbed = areas
        .iter()
        .filter(|r| {
            let (n, p) = cell(&r.iter().collect::<Vec<_>>());
            p != Some(n)
        })
        .count();
    assert!(
        perturbed > 30,
        "only {perturbed} of 152 cells were perturbed"
    );
}

#[test]
fn a_user_ptable_is_used_as_given() {
    // Every cell shifted up by 3 (publishes 0 as 0; 1..=7 would show 4..=10).
    let mut csv = String::from("pcv,ckey,pvalue\n");
    for p in 1..=750 {
        for k in 0..256 {
            csv.push_str(&format!("{p},{k},3\n"));
        }
    }
    let pt = PTable::from_csv("shift3.csv", &csv).unwrap();
    assert_eq!(pt.perturb(10, 0), 13);
    assert_eq!(pt.perturb(0, 9), 0);
    // 2 + 3 = 5: still a small count, so it is suppressed, and so are its rates.
    let d = ckm(2, 17, &pt, Scope::SubNational);
    assert_eq!(d.count, None);
    assert!(!d.derived_visible);
    let e = PTable::from_csv("bad.csv", "pcv,ckey,pvalue\n1,0,-2\n").unwrap_err();
    assert!(e.to_string().contains("negative"), "{e}");
}

fn policies() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::NhsDigital),
        (1u64..12).prop_map(|threshold| Policy::Secondary { threshold }),
        Just(Policy::Ckm(PTable::synthetic())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// No policy leaves a sub-national count of 1–7 visible, nor a value derived from a true
    /// count of 1–7 (a rate or share whose numerator it is).
    #[test]
    fn no_policy_shows_a_small_count(
        policy in policies(),
        interior in prop::collection::vec(prop::collection::vec(0u64..40, 3..6), 3..6),
        keys in prop::collection::vec(any::<u8>(), 64),
    ) {
        let cols = interior[0].len();
        let interior: Vec<Vec<u64>> = interior.into_iter().map(|mut r| { r.resize(cols, 0); r }).collect();
        let t = MarginTable::from_interior(&interior).unwrap();
        let out = policy.control_table(&t, Some(&keys[..t.cells.len().min(64)]), Scope::SubNational).unwrap();
        for (d, &true_count) in out.iter().zip(&t.cells) {
            if let Some(c) = d.count {
                prop_assert!(!(1..=SMALL_COUNT_MAX).contains(&c), "{} published {c}", policy.name());
            }
            if (1..=SMALL_COUNT_MAX).contains(&true_count) {
                prop_assert!(!d.derived_visible, "{} shows a rate on {true_count}", policy.name());
            }
        }
        for &c in &t.cells {
            let d = policy.control_count(c, keys[0], Scope::SubNational);
            prop_assert!(d.count.is_none_or(|p| !(1..=SMALL_COUNT_MAX).contains(&p)));
            prop_assert!(!(1..=SMALL_COUNT_MAX).contains(&c) || !d.derived_visible);
        }
    }
}
