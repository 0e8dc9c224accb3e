//! The scheduler with an injected clock over a memory store: one coalesced backfill after
//! downtime, retries of a failing run, the deadline's `late` flag, and the concurrency limit.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use drd_model::period::Period;
use drd_pipeline::run::read_ledger;
use drd_pipeline::scheduler::{Fire, Scheduler};
use drd_pipeline::spec::Backfill;
use drd_pipeline::{FixedClock, PipelineSpec};
use drd_store::Store;

use crate::run::{COUNTS_BAD, COUNTS_OK, Dir, project};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A daily 01:30 (London) pipeline over the month containing the fire; `extra` adds fields.
fn daily(extra: &str) -> PipelineSpec {
    PipelineSpec::parse(
        Path::new("daily.toml"),
        &format!(
            "name = \"daily\"\nschedule = \"30 1 * * *\"\ngrain = \"month\"\nperiod = \"current\"\nmodels = [\"*\"]\n{extra}"
        ),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_down_for_three_days_runs_one_coalesced_backfill_when_it_restarts() {
    let store = Store::open("memory://scheduler-catch-up").unwrap();
    let d = Dir::new("sched-catch-up");
    let clock = Arc::new(FixedClock::new(utc("2026-11-20T00:00:00Z")));
    let start = |clock: &Arc<FixedClock>| {
        Arc::new(
            Scheduler::new(
                store.clone(),
                project(&d, COUNTS_OK),
                vec![daily("")],
                clock.clone(),
            )
            .unwrap(),
        )
    };
    let s = start(&clock);
    // First seen: nothing runs, the scheduler starts from now.
    assert!(s.tick().await.unwrap().is_empty());
    // 01:30 passes: one run, for November.
    clock.set(utc("2026-11-20T02:00:00Z"));
    let runs = s.tick().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0].period.as_str(),
            runs[0].status.as_str(),
            runs[0].trigger.as_str()
        ),
        ("2026-11", "committed", "schedule")
    );
    assert!(s.tick().await.unwrap().is_empty(), "the same fire twice");
    drop(s);

    // Down from the 20th to midday on the 23rd: the 21st, 22nd and 23rd fires were missed.
    // A new process (same store) plans exactly one backfill standing for the three of them.
    clock.set(utc("2026-11-23T12:00:00Z"));
    let s = start(&clock);
    let fires = s.due().await.unwrap();
    assert_eq!(fires.len(), 1, "{fires:?}");
    assert_eq!(fires[0].backfill.fires, 3);
    assert_eq!(fires[0].fire_time, utc("2026-11-23T01:30:00Z"));
    let runs = s.run_fire(&fires[0]).await.unwrap();
    assert_eq!(runs.len(), 1, "one period, one run");
    assert!(s.due().await.unwrap().is_empty());
    // The fire is stored: another restart at the same time has nothing to do.
    let s = start(&clock);
    assert!(s.tick().await.unwrap().is_empty());
    assert_eq!(
        s.stored_fires().await.unwrap()["daily"],
        utc("2026-11-23T01:30:00Z")
    );
    let ledger = read_ledger(&store).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert!(ledger.iter().all(|r| r.trigger == "schedule" && !r.late));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_is_retried_and_a_run_past_its_deadline_is_late() {
    let store = Store::open("memory://scheduler-retry").unwrap();
    let d = Dir::new("sched-retry");
    let clock = Arc::new(FixedClock::new(utc("2026-11-20T00:00:00Z")));
    let spec =
        daily("deadline_minutes = 0\n[retry]\nmax_attempts = 3\ninitial_backoff_seconds = 0\n");
    let s = Arc::new(
        Scheduler::new(
            store.clone(),
            project(&d, COUNTS_BAD),
            vec![spec],
            clock.clone(),
        )
        .unwrap(),
    );
    assert!(s.tick().await.unwrap().is_empty());
    clock.set(utc("2026-11-20T02:00:00Z"));
    // A blocking test fails every attempt: three ledger rows, each failed, none committed.
    let runs = s.tick().await.unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.status == "failed"), "{runs:?}");
    let ids: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "each attempt is its own run");
    // A zero-minute deadline: every run is late, and the ledger says so.
    let ledger = read_ledger(&store).await.unwrap();
    assert_eq!(ledger.len(), 3);
    assert!(ledger.iter().all(|r| r.late && r.status == "failed"));
    // The fire is handled: its failure does not retry forever.
    assert!(s.due().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_runs_of_a_pipeline_at_once_than_its_concurrency() {
    let store = Store::open("memory://scheduler-concurrency").unwrap();
    let d = Dir::new("sched-concurrency");
    let clock = Arc::new(FixedClock::new(utc("2026-11-20T00:00:00Z")));
    let fire = |m: u8| Fire {
        pipeline: "daily".into(),
        backfill: Backfill {
            from: Period::Month(2026, m),
            to: Period::Month(2026, m + 1),
            fires: 1,
        },
        fire_time: utc("2026-11-20T01:30:00Z"),
    };
    for (limit, store) in [
        (1, store.clone()),
        (2, Store::open("memory://scheduler-c2").unwrap()),
    ] {
        let s = Arc::new(
            Scheduler::new(
                store.clone(),
                project(&d, COUNTS_OK),
                vec![daily(&format!("concurrency = {limit}\n"))],
                clock.clone(),
            )
            .unwrap(),
        );
        // Three fires at once, two periods each: six runs.
        let tasks: Vec<_> = [1, 4, 7]
            .into_iter()
            .map(|m| {
                let (s, f) = (Arc::clone(&s), fire(m));
                tokio::spawn(async move { s.run_fire(&f).await })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        let runs: Vec<_> = done.into_iter().flat_map(|r| r.unwrap()).collect();
        assert_eq!(runs.len(), 6);
        assert!(runs.iter().all(|r| r.status == "committed"), "{runs:?}");
        let most = s.most_running("daily");
        assert!(
            most >= 1 && most <= limit,
            "{most} runs at once, limit {limit}"
        );
        if limit == 1 {
            assert_eq!(most, 1);
        }
    }
}
