//! The scheduler behind `drdsurv schedule`: fires every pipeline on its cron schedule, runs
//! the periods each fire stands for, and remembers the last fire in the store.
//!
//! - **Catch-up.** Each pipeline's last handled fire is kept in the `scheduler` table. On each
//!   tick, every fire time since then is coalesced into one backfill
//!   ([`PipelineSpec::catch_up`]), so a scheduler that was down for days runs once when it
//!   comes back, not once per missed fire. A pipeline seen for the first time starts from
//!   the tick's time: its history is a backfill someone asks for (`drdsurv run --from`).
//! - **Crash safety.** The last fire is written only after every period of the fire has
//!   finished, so a scheduler killed mid-fire runs the fire again when it restarts. Runs are
//!   atomic and idempotent, so nothing is duplicated or half-published.
//! - **Order.** A fire's periods run one after another, oldest first, so the latest period's
//!   run is the one readers see last.
//! - **Concurrency.** At most `concurrency` runs of one pipeline at a time (a fire that comes
//!   while a long run is going waits for it); different pipelines run side by side.
//! - **Retry.** A failed run is retried up to `retry.max_attempts` in all, with capped
//!   exponential backoff; each attempt is its own ledger row.
//! - **Deadline.** A run still going `deadline_minutes` after it started is logged as late when
//!   the deadline passes, and its ledger row says `late` (it is never killed).
//!
//! Time comes from a [`Clock`], so tests step it by days in milliseconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use drd_engine::models::Project;
use drd_model::period::{Period, Window};
use drd_store::Store;
use tokio::sync::{Mutex, Semaphore};

use crate::run::{self, RunError, RunOptions, RunRecord};
use crate::schedule::Clock;
use crate::spec::{Backfill, PipelineSpec};

/// The scheduler's state table: one row per pipeline.
pub const SCHEDULER_TABLE: &str = "scheduler";

fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("pipeline", DataType::Utf8, false),
        Field::new("last_fire", ts.clone(), false),
        Field::new("updated_at", ts, false),
    ]))
}

/// One pipeline the scheduler drives.
struct Planned {
    spec: PipelineSpec,
    models: Vec<String>,
    permits: Arc<Semaphore>,
    running: AtomicUsize,
    most_running: AtomicUsize,
}

/// What one tick started: a backfill for a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    /// Pipeline.
    pub pipeline: String,
    /// The periods it covers and how many fires it stands for.
    pub backfill: Backfill,
    /// The latest fire time it covers.
    pub fire_time: DateTime<Utc>,
}

/// Fires pipelines on their schedules. Cheap to share: every field is behind an `Arc`.
pub struct Scheduler {
    store: Store,
    project: Arc<Project>,
    pipelines: Vec<Arc<Planned>>,
    clock: Arc<dyn Clock>,
    /// Last fire per pipeline as planned in this process (ahead of the stored one while a
    /// fire runs).
    planned: Mutex<BTreeMap<String, DateTime<Utc>>>,
    /// Serialises writes of the state table.
    state_lock: Mutex<()>,
    /// Where the runs' queries execute.
    engine: drd_engine::Engine,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field(
                "pipelines",
                &self
                    .pipelines
                    .iter()
                    .map(|p| &p.spec.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler for `specs`, with their model selections resolved in `project`.
    pub fn new(
        store: Store,
        project: Project,
        specs: Vec<PipelineSpec>,
        clock: Arc<dyn Clock>,
    ) -> Result<Scheduler, RunError> {
        let mut pipelines = Vec::new();
        for spec in specs {
            let models = project
                .select(&spec.models)
                .map_err(|e| RunError::Engine(format!("pipeline {}: {e}", spec.name)))?;
            pipelines.push(Arc::new(Planned {
                permits: Arc::new(Semaphore::new(spec.concurrency)),
                spec,
                models,
                running: AtomicUsize::new(0),
                most_running: AtomicUsize::new(0),
            }));
        }
        Ok(Scheduler {
            store,
            project: Arc::new(project),
            pipelines,
            clock,
            planned: Mutex::new(BTreeMap::new()),
            state_lock: Mutex::new(()),
            engine: drd_engine::Engine::Embedded,
        })
    }

    /// Runs every pipeline's queries on `engine` (embedded DataFusion by default).
    #[must_use]
    pub fn with_engine(mut self, engine: drd_engine::Engine) -> Scheduler {
        self.engine = engine;
        self
    }

    /// The most runs of `pipeline` this scheduler has had going at once.
    pub fn most_running(&self, pipeline: &str) -> usize {
        self.pipelines
            .iter()
            .find(|p| p.spec.name == pipeline)
            .map_or(0, |p| p.most_running.load(Ordering::SeqCst))
    }

    /// The stored last fire of every pipeline.
    pub async fn stored_fires(&self) -> Result<BTreeMap<String, DateTime<Utc>>, RunError> {
        let Some(t) = self.store.table(SCHEDULER_TABLE).await? else {
            return Ok(BTreeMap::new());
        };
        let ctx = SessionContext::new();
        run::register_delta(&ctx, "scheduler", &t).await?;
        let batches = Store::sql(&ctx, "SELECT pipeline, last_fire FROM scheduler").await?;
        let mut out = BTreeMap::new();
        for b in &batches {
            let names = arrow::compute::cast(b.column(0), &DataType::Utf8)
                .map_err(|e| RunError::Engine(e.to_string()))?;
            let names = names.as_string::<i32>();
            let fires = b.column(1).as_primitive::<TimestampMicrosecondType>();
            for r in 0..b.num_rows() {
                if let Some(t) = DateTime::from_timestamp_micros(fires.value(r)) {
                    out.insert(names.value(r).to_string(), t);
                }
            }
        }
        Ok(out)
    }

    /// Plans the fires due now: for each pipeline, one backfill covering every fire time
    /// since its last fire. Marks them planned, so the next tick does not start them again.
    pub async fn due(&self) -> Result<Vec<Fire>, RunError> {
        let now = self.clock.now();
        let stored = self.stored_fires().await?;
        let mut planned = self.planned.lock().await;
        let mut out = Vec::new();
        let mut first_seen = Vec::new();
        for p in &self.pipelines {
            let name = &p.spec.name;
            let last = match planned.get(name).or_else(|| stored.get(name)) {
                Some(t) => *t,
                None => {
                    first_seen.push(name.clone());
                    now
                }
            };
            planned.insert(name.clone(), last);
            if let Some(backfill) = p.spec.catch_up(last, now) {
                let fire_time = p
                    .spec
                    .schedule
                    .fires_between(last, now)
                    .last()
                    .copied()
                    .unwrap_or(now);
                planned.insert(name.clone(), fire_time);
                out.push(Fire {
                    pipeline: name.clone(),
                    backfill,
                    fire_time,
                });
            }
        }
        drop(planned);
        // A pipeline seen for the first time is scheduled from now on, also after a restart.
        for name in first_seen {
            tracing::info!(pipeline = %name, "first scheduled: fires from now on");
            self.store_fire(&name, now).await?;
        }
        Ok(out)
    }

    /// Runs one fire to the end: every period oldest first, each within the pipeline's
    /// concurrency limit, with retries and the deadline; then stores the fire as handled.
    /// Returns the ledger rows of every attempt.
    pub async fn run_fire(&self, fire: &Fire) -> Result<Vec<RunRecord>, RunError> {
        let Some(p) = self.pipelines.iter().find(|p| p.spec.name == fire.pipeline) else {
            return Err(RunError::Engine(format!(
                "pipeline {} is not scheduled",
                fire.pipeline
            )));
        };
        let periods: Vec<Period> = Window::new(fire.backfill.from, fire.backfill.to)
            .map_err(|e| RunError::Engine(e.to_string()))?
            .periods()
            .collect();
        tracing::info!(
            pipeline = %fire.pipeline,
            from = %fire.backfill.from,
            to = %fire.backfill.to,
            fires = fire.backfill.fires,
            "scheduled fire"
        );
        let mut records = Vec::new();
        for period in periods {
            let permit = p
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| RunError::Engine(e.to_string()))?;
            let now_running = p.running.fetch_add(1, Ordering::SeqCst) + 1;
            p.most_running.fetch_max(now_running, Ordering::SeqCst);
            let result = self.run_with_retries(p, period).await;
            p.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            records.extend(result?);
        }
        self.store_fire(&fire.pipeline, fire.fire_time).await?;
        Ok(records)
    }

    async fn run_with_retries(
        &self,
        p: &Planned,
        period: Period,
    ) -> Result<Vec<RunRecord>, RunError> {
        let spec = &p.spec;
        let options = RunOptions {
            trigger: "schedule".into(),
            deadline: spec.deadline,
            memory_limit: spec.memory_limit,
            engine: self.engine.clone(),
        };
        let mut records = Vec::new();
        for attempt in 1..=spec.retry.max_attempts {
            if attempt > 1 {
                tokio::time::sleep(spec.retry.backoff(attempt)).await;
            }
            let run_id = run::new_run_id(&spec.name, period);
            let work = run::run_models_with(
                &self.store,
                &self.project,
                &p.models,
                &spec.name,
                period,
                &run_id,
                &options,
            );
            let record = match spec.deadline {
                None => work.await?,
                Some(deadline) => {
                    tokio::pin!(work);
                    tokio::select! {
                        r = &mut work => r?,
                        () = tokio::time::sleep(deadline) => {
                            tracing::warn!(run_id, ?deadline, "run passed its deadline: late");
                            work.await?
                        }
                    }
                }
            };
            let committed = record.status == "committed";
            if !committed {
                tracing::warn!(
                    run_id,
                    attempt,
                    of = spec.retry.max_attempts,
                    error = record.error.as_deref().unwrap_or(""),
                    "scheduled run failed"
                );
            }
            records.push(record);
            if committed {
                break;
            }
        }
        Ok(records)
    }

    /// Records `fire` as `pipeline`'s last handled fire (never moving it back).
    async fn store_fire(&self, pipeline: &str, fire: DateTime<Utc>) -> Result<(), RunError> {
        let _g = self.state_lock.lock().await;
        let mut fires = self.stored_fires().await?;
        let e = fires.entry(pipeline.to_string()).or_insert(fire);
        *e = (*e).max(fire);
        let now = Utc::now().timestamp_micros();
        let names: Vec<&str> = fires.keys().map(String::as_str).collect();
        let times: Vec<i64> = fires.values().map(|t| t.timestamp_micros()).collect();
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(names)),
                Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![now; fires.len()]).with_timezone("UTC"),
                ),
            ],
        )
        .map_err(|e| RunError::Engine(e.to_string()))?;
        self.store
            .overwrite(SCHEDULER_TABLE, &schema(), vec![batch], HashMap::new())
            .await?;
        Ok(())
    }

    /// One tick: plans what is due and runs every fire, each pipeline's fire on its own task.
    /// Returns when they have all finished (the daemon loop spawns ticks instead).
    pub async fn tick(self: &Arc<Self>) -> Result<Vec<RunRecord>, RunError> {
        let fires = self.due().await?;
        let mut tasks = Vec::new();
        for fire in fires {
            let me = Arc::clone(self);
            tasks.push(tokio::spawn(async move { me.run_fire(&fire).await }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.extend(t.await.map_err(|e| RunError::Engine(e.to_string()))??);
        }
        Ok(out)
    }

    /// The daemon: a tick every `every`, each fire on its own task, until `stop` resolves;
    /// then waits for the runs going to finish. A failing fire is logged and retried at its
    /// next tick (its last fire is not stored).
    pub async fn serve(
        self: Arc<Self>,
        every: std::time::Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<(), RunError> {
        tokio::pin!(stop);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            match self.due().await {
                Ok(fires) => {
                    for fire in fires {
                        let me = Arc::clone(&self);
                        tasks.spawn(async move {
                            if let Err(e) = me.run_fire(&fire).await {
                                tracing::error!(pipeline = %fire.pipeline, error = %e, "scheduled fire failed");
                                // Forget the plan, so the next tick tries the fire again.
                                me.planned.lock().await.remove(&fire.pipeline);
                            }
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not plan scheduled fires"),
            }
            while tasks.try_join_next().is_some() {}
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        tracing::info!(
            running = tasks.len(),
            "scheduler stopping; waiting for runs in progress"
        );
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}
