//! Pipeline files: the shipped ones load; catch-up coalesces missed fires into one backfill.

use std::path::Path;

use chrono::{DateTime, Utc};
use drd_model::period::Period;
use drd_pipeline::{PeriodRule, PipelineSpec};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn daily() -> PipelineSpec {
    PipelineSpec::parse(
        Path::new("daily_test.toml"),
        r#"
name = "daily_test"
schedule = "30 1 * * *"
grain = "month"
period = "current"
lookback = 1
models = ["*"]
"#,
    )
    .unwrap()
}

#[test]
fn a_scheduler_down_for_three_days_runs_one_coalesced_backfill() {
    let spec = daily();
    // Last fired 2026-11-20 01:30; back up on 2026-11-23 at 12:00: three fires were missed.
    let b = spec
        .catch_up(utc("2026-11-20T01:30:00Z"), utc("2026-11-23T12:00:00Z"))
        .unwrap();
    assert_eq!(b.fires, 3);
    assert_eq!(
        (b.from, b.to),
        (Period::Month(2026, 10), Period::Month(2026, 11))
    );
    // Nothing due an hour after a fire.
    assert!(
        spec.catch_up(utc("2026-11-23T01:30:00Z"), utc("2026-11-23T02:30:00Z"))
            .is_none()
    );
    // A backfill across a month boundary starts at the first missed fire's period.
    let b = spec
        .catch_up(utc("2026-11-28T01:30:00Z"), utc("2026-12-02T09:00:00Z"))
        .unwrap();
    assert_eq!(
        (b.fires, b.from, b.to),
        (4, Period::Month(2026, 10), Period::Month(2026, 12))
    );
}

#[test]
fn the_shipped_pipelines_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines");
    let specs = PipelineSpec::load_dir(Path::new(dir)).unwrap();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"national_quarterly") && names.contains(&"alerts_weekly"),
        "{names:?}"
    );
    let nq = specs
        .iter()
        .find(|s| s.name == "national_quarterly")
        .unwrap();
    assert_eq!(nq.period, PeriodRule::Previous);
    // A fire on 5 January 2027 runs the last complete quarter.
    assert_eq!(
        nq.period_for_fire(utc("2027-01-05T06:00:00Z")),
        Period::Quarter(2026, 4)
    );
    assert_eq!(
        nq.periods_for(Period::Quarter(2026, 4)).last(),
        Some(&Period::Quarter(2026, 4))
    );
    // The national run is held to a memory pool (bench/results/national_quarterly.txt).
    assert_eq!(nq.memory_limit, Some(1000 << 20));
}

#[test]
fn mistakes_in_a_pipeline_file_name_the_file_and_the_field() {
    let bad = |text: &str| {
        PipelineSpec::parse(Path::new("p.toml"), text)
            .unwrap_err()
            .to_string()
    };
    let base = "name = \"p\"\nschedule = \"0 6 * * 1\"\ngrain = \"quarter\"\nmodels = [\"*\"]\n";
    assert!(bad(&format!("{base}lookbak = 2\n")).contains("lookbak"));
    assert!(bad(&base.replace("quarter", "fortnight")).contains("grain 'fortnight'"));
    assert!(bad(&base.replace("name = \"p\"", "name = \"q\"")).contains("does not match"));
    assert!(bad(&format!("{base}memory_limit = \"lots\"\n")).contains("memory_limit 'lots'"));
    let ok = |text: &str| PipelineSpec::parse(Path::new("p.toml"), text).unwrap();
    assert_eq!(ok(base).memory_limit, None);
    assert_eq!(
        ok(&format!("{base}memory_limit = \"2G\"\n")).memory_limit,
        Some(2 << 30)
    );
    let e = bad(&format!("{base}[retry]\nmax_attempts = 0\n"));
    assert!(
        e.starts_with("p.toml: ") && e.contains("max_attempts"),
        "{e}"
    );
    let r = drd_pipeline::Retry {
        max_attempts: 5,
        initial_backoff_seconds: 30,
        max_backoff_seconds: 100,
    };
    let waits: Vec<u64> = (2..=5).map(|a| r.backoff(a).as_secs()).collect();
    assert_eq!(waits, vec![30, 60, 100, 100]);
}
