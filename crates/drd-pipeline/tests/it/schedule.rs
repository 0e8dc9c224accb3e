//! Fire times with an injected clock, in Europe/London.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use drd_pipeline::{Clock, FixedClock, Schedule};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Fires of a schedule whose local date is `day`, stepping from the clock's time.
fn fires_on(s: &Schedule, clock: &FixedClock, day: &str) -> Vec<DateTime<Utc>> {
    let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    let mut out = Vec::new();
    let end = clock.now() + chrono::Duration::days(3);
    while let Some(next) = s.next_after(clock.now()) {
        if next > end {
            break;
        }
        if s.local_date(next) == day {
            out.push(next);
        }
        clock.set(next);
    }
    out
}

#[test]
fn a_0130_daily_job_fires_once_when_the_clocks_go_forward() {
    let s = Schedule::new("30 1 * * *", "Europe/London").unwrap();
    let clock = FixedClock::new(utc("2027-03-26T12:00:00Z"));
    let fires = fires_on(&s, &clock, "2027-03-28");
    assert_eq!(fires.len(), 1, "{fires:?}");
    // 01:30 does not exist that night: the run is the first instant after the gap, 02:00 BST.
    assert_eq!(fires[0], utc("2027-03-28T01:00:00Z"));
    assert_eq!(
        fires[0]
            .with_timezone(&London)
            .format("%H:%M %Z")
            .to_string(),
        "02:00 BST"
    );
    // The days either side fire at 01:30 local as usual.
    assert_eq!(
        s.next_after(utc("2027-03-27T00:00:00Z")),
        Some(utc("2027-03-27T01:30:00Z"))
    );
    assert_eq!(
        s.next_after(utc("2027-03-28T12:00:00Z")),
        Some(utc("2027-03-29T00:30:00Z"))
    );
}

#[test]
fn a_0130_daily_job_fires_once_when_the_clocks_go_back() {
    let s = Schedule::new("30 1 * * *", "Europe/London").unwrap();
    let clock = FixedClock::new(utc("2026-10-23T12:00:00Z"));
    let fires = fires_on(&s, &clock, "2026-10-25");
    assert_eq!(fires.len(), 1, "{fires:?}");
    // 01:30 happens twice that night (BST, then GMT): the job runs at the first.
    assert_eq!(fires[0], utc("2026-10-25T00:30:00Z"));
    // Asking again from just after the first 01:30 must not give the second one.
    assert_eq!(
        s.next_after(utc("2026-10-25T00:30:00Z")),
        Some(utc("2026-10-26T01:30:00Z"))
    );
}

#[test]
fn an_interval_job_runs_in_both_copies_of_the_repeated_hour() {
    let s = Schedule::new("0 * * * *", "Europe/London").unwrap();
    let fires = s.fires_between(utc("2026-10-24T23:30:00Z"), utc("2026-10-25T02:30:00Z"));
    // 01:00 BST (00:00Z), 01:00 GMT (01:00Z), 02:00 GMT (02:00Z).
    assert_eq!(
        fires,
        vec![
            utc("2026-10-25T00:00:00Z"),
            utc("2026-10-25T01:00:00Z"),
            utc("2026-10-25T02:00:00Z")
        ]
    );
}

#[test]
fn bad_schedules_are_refused_with_the_value() {
    let e = Schedule::new("61 1 * * *", "Europe/London")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'61 1 * * *'"), "{e}");
    let e = Schedule::new("30 1 * * *", "Europe/Londres")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'Europe/Londres'"), "{e}");
    assert!(
        London
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .is_some()
    );
}
