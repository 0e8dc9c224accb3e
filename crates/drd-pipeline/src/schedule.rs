//! Cron schedules in a time zone, and the clock the scheduler reads.
//!
//! Fire times come from croner, evaluated in the pipeline's zone (default Europe/London), so
//! daylight saving is handled as an analyst expects: a daily job at 01:30 runs once on the
//! day the clocks go forward (at the first instant after the gap, 02:00 BST) and once on the
//! day they go back (at the first 01:30, BST). Interval jobs (`*/15 * * * *`) run in both
//! copies of a repeated hour.

use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A cron expression or time zone that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

/// A cron schedule in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    expr: String,
}

/// Most fire times [`Schedule::fires_between`] lists (a minutely job over 10 years is far
/// more than any catch-up needs; it coalesces them anyway).
pub const MAX_FIRES: usize = 100_000;

impl Schedule {
    /// A schedule from a five-field cron expression (minute hour day month weekday; an
    /// optional leading seconds field is accepted) and an IANA zone name.
    pub fn new(expr: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let cron: Cron = expr.parse().map_err(|e| {
            ScheduleError(format!("schedule '{expr}' is not a cron expression: {e}"))
        })?;
        let tz: Tz = timezone.parse().map_err(|_| {
            ScheduleError(format!(
                "timezone '{timezone}' is not an IANA time zone (such as Europe/London)"
            ))
        })?;
        Ok(Schedule {
            cron,
            tz,
            expr: expr.to_string(),
        })
    }

    /// The cron expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Every fire time in (`from`, `to`], oldest first (at most [`MAX_FIRES`]).
    pub fn fires_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = from;
        while out.len() < MAX_FIRES {
            match self.next_after(t) {
                Some(n) if n <= to => {
                    out.push(n);
                    t = n;
                }
                _ => break,
            }
        }
        out
    }

    /// The local calendar date of an instant in the schedule's zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        self.tz.from_utc_datetime(&at.naive_utc()).date_naive()
    }
}

/// Where the scheduler reads the time: the system clock in production, a fixed or stepped
/// one in tests.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that says what it is told.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock at `t`.
    pub fn new(t: DateTime<Utc>) -> FixedClock {
        FixedClock(Mutex::new(t))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .map(|g| *g)
            .unwrap_or_else(|p| *p.into_inner())
    }
}
