//! Pipeline files (`pipelines/<name>.toml`). Every field is documented in
//! `pipelines/README.md`; unknown fields are an error, so a typo never passes silently.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use drd_model::period::{Granularity, Period};
use serde::Deserialize;

use crate::schedule::Schedule;

/// Why a pipeline file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid pipeline.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Retry of a failed run: `max_attempts` in all, waiting `initial_backoff` × 2ⁿ between them,
/// never more than `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, at least 1.
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// First wait, in seconds.
    #[serde(default = "thirty")]
    pub initial_backoff_seconds: u64,
    /// Longest wait, in seconds.
    #[serde(default = "hour")]
    pub max_backoff_seconds: u64,
}

fn one() -> u32 {
    1
}
fn thirty() -> u64 {
    30
}
fn hour() -> u64 {
    3600
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 1,
            initial_backoff_seconds: 30,
            max_backoff_seconds: 3600,
        }
    }
}

impl Retry {
    /// The wait before attempt `attempt` (2 is the first retry): capped exponential backoff.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let n = attempt.saturating_sub(2).min(40);
        let secs = self
            .initial_backoff_seconds
            .saturating_mul(1u64 << n)
            .min(self.max_backoff_seconds);
        Duration::from_secs(secs)
    }
}

/// Which period a scheduled fire runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodRule {
    /// The last complete period before the fire's local date (quarterly indicators).
    Previous,
    /// The period containing the fire's local date (weekly alerts, up to date).
    Current,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    schedule: String,
    #[serde(default = "london")]
    timezone: String,
    grain: String,
    #[serde(default = "previous")]
    period: PeriodRule,
    #[serde(default)]
    lookback: u32,
    models: Vec<String>,
    #[serde(default)]
    retry: Retry,
    #[serde(default)]
    deadline_minutes: Option<u64>,
    #[serde(default = "one_usize")]
    concurrency: usize,
    #[serde(default)]
    memory_limit: Option<String>,
}

fn london() -> String {
    "Europe/London".into()
}
fn previous() -> PeriodRule {
    PeriodRule::Previous
}
fn one_usize() -> usize {
    1
}

/// A pipeline, validated.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// Name (the file name without `.toml` must match it).
    pub name: String,
    /// Cron schedule in its time zone.
    pub schedule: Schedule,
    /// Period grain.
    pub grain: Granularity,
    /// Which period a fire runs.
    pub period: PeriodRule,
    /// Earlier periods re-run on every run, so late registrations restate them.
    pub lookback: u32,
    /// Model selection: model names, or layer globs such as `indicators/*`, or `*`.
    pub models: Vec<String>,
    /// Retry of failed runs.
    pub retry: Retry,
    /// A run still going this long after it started is marked `late` (not killed).
    pub deadline: Option<Duration>,
    /// Most runs of this pipeline at once.
    pub concurrency: usize,
    /// Memory pool for the run's queries, in bytes (`memory_limit = "1200M"`; none when
    /// absent). `DRDSURV_MEMORY_LIMIT` overrides it.
    pub memory_limit: Option<usize>,
}

impl PipelineSpec {
    /// Parses and validates a pipeline file's text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<PipelineSpec, SpecError> {
        let invalid = |message: String| SpecError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && stem != raw.name
        {
            return Err(invalid(format!(
                "name '{}' does not match the file name '{stem}'",
                raw.name
            )));
        }
        let schedule =
            Schedule::new(&raw.schedule, &raw.timezone).map_err(|e| invalid(e.to_string()))?;
        let grain = match raw.grain.as_str() {
            "year" => Granularity::Year,
            "quarter" => Granularity::Quarter,
            "month" => Granularity::Month,
            other => {
                return Err(invalid(format!(
                    "grain '{other}' is not one of year, quarter, month"
                )));
            }
        };
        if raw.models.is_empty() {
            return Err(invalid("models must name at least one model".into()));
        }
        if raw.retry.max_attempts == 0 {
            return Err(invalid("retry.max_attempts must be at least 1".into()));
        }
        if raw.concurrency == 0 {
            return Err(invalid("concurrency must be at least 1".into()));
        }
        if raw.lookback > 40 {
            return Err(invalid(format!(
                "lookback {} is more than 40 periods",
                raw.lookback
            )));
        }
        let memory_limit = match &raw.memory_limit {
            None => None,
            Some(text) => Some(drd_engine::parse_size(text).ok_or_else(|| {
                invalid(format!(
                    "memory_limit '{text}' is not a size such as \"1200M\" or \"2G\""
                ))
            })?),
        };
        Ok(PipelineSpec {
            name: raw.name,
            schedule,
            grain,
            period: raw.period,
            lookback: raw.lookback,
            models: raw.models,
            retry: raw.retry,
            deadline: raw.deadline_minutes.map(|m| Duration::from_secs(m * 60)),
            concurrency: raw.concurrency,
            memory_limit,
        })
    }

    /// Reads and validates one pipeline file.
    pub fn load(path: &Path) -> Result<PipelineSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        PipelineSpec::parse(path, &text)
    }

    /// Every `*.toml` pipeline in a folder, sorted by name.
    pub fn load_dir(dir: &Path) -> Result<Vec<PipelineSpec>, SpecError> {
        let io = |source| SpecError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| PipelineSpec::load(p)).collect()
    }

    /// The period a fire at `at` runs (its local date decides).
    pub fn period_for_fire(&self, at: DateTime<Utc>) -> Period {
        let local = self.schedule.local_date(at);
        let p = Period::containing(self.grain, local);
        match self.period {
            PeriodRule::Previous => p.prev(),
            PeriodRule::Current => p,
        }
    }

    /// The periods one run for `period` computes, oldest first: the lookback periods, then
    /// `period` itself.
    pub fn periods_for(&self, period: Period) -> Vec<Period> {
        (0..=self.lookback as i32)
            .rev()
            .map(|n| period.shift(-n))
            .collect()
    }
}

/// A backfill over a range of periods: what a coalesced catch-up runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backfill {
    /// First period (lookback included).
    pub from: Period,
    /// Last period.
    pub to: Period,
    /// How many scheduled fires it stands for.
    pub fires: usize,
}

impl PipelineSpec {
    /// What the scheduler runs at `now` when this pipeline last fired at `last_fire`: `None`
    /// when no fire time has passed since; otherwise one backfill covering every missed fire's
    /// periods (a scheduler that was down for days runs once, not once per missed fire).
    pub fn catch_up(&self, last_fire: DateTime<Utc>, now: DateTime<Utc>) -> Option<Backfill> {
        let fires = self.schedule.fires_between(last_fire, now);
        let (first, last) = (fires.first()?, fires.last()?);
        Some(Backfill {
            from: self.period_for_fire(*first).shift(-(self.lookback as i32)),
            to: self.period_for_fire(*last),
            fires: fires.len(),
        })
    }
}
