//! The configuration file (`--config`, `DRDSURV_CONFIG`): TOML with the worker's settings,
//! the submitters' authorised areas and the inboxes. Unknown keys are errors, so a typo never
//! silently falls back to a default.
//!
//! ```toml
//! engine = "ballista://ballista-scheduler:50050"   # default: embedded (--engine overrides)
//!
//! [worker]
//! poll_seconds = 30        # default for every inbox
//! lease_seconds = 600      # a claim not refreshed this long is taken over
//! grace_seconds = 20       # on SIGTERM, time for the current file to finish
//! batch_rows = 65536
//! retry_first_ms = 1000    # store errors: 1 s, 2 s, 4 s … capped, then left for later
//! retry_cap_seconds = 60
//! retry_attempts = 8
//!
//! [[submitters]]
//! id = "coroner-north-east"
//! areas = ["E06000047", "E08000021"]
//!
//! [[inboxes]]
//! url = "s3://drd-inbox/coroner-north-east/"   # or a folder
//! source = "coroner"
//! submitter = "coroner-north-east"
//! # areas = […]            # default: the submitter's entry
//! # poll_seconds = 60
//! ```

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where `run`, `schedule` and `sql` execute queries: `embedded`, `ballista://HOST:PORT`
    /// or `ballista:standalone`. `--engine` and `DRDSURV_ENGINE` override it.
    #[serde(default)]
    pub engine: Option<String>,
    /// Worker settings.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// Submitters and what they may send.
    #[serde(default)]
    pub submitters: Vec<SubmitterConfig>,
    /// Inboxes the worker polls.
    #[serde(default)]
    pub inboxes: Vec<InboxConfig>,
}

/// `[worker]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    pub poll_seconds: f64,
    pub lease_seconds: f64,
    pub grace_seconds: f64,
    pub batch_rows: usize,
    pub retry_first_ms: u64,
    pub retry_cap_seconds: f64,
    pub retry_attempts: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll_seconds: 30.0,
            lease_seconds: 600.0,
            grace_seconds: 20.0,
            batch_rows: 65_536,
            retry_first_ms: 1000,
            retry_cap_seconds: 60.0,
            retry_attempts: 8,
        }
    }
}

/// `[[submitters]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitterConfig {
    pub id: String,
    pub areas: Vec<String>,
}

/// `[[inboxes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    pub url: String,
    pub source: String,
    pub submitter: String,
    pub areas: Option<Vec<String>>,
    pub poll_seconds: Option<f64>,
}

/// Turns seconds from the file into a duration, refusing negative or absurd values.
pub fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| format!("{name} = {v} is not a valid number of seconds"))
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let c: Config =
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        let w = &c.worker;
        if w.batch_rows == 0 || w.retry_attempts == 0 {
            return Err(format!(
                "config {}: [worker] batch_rows and retry_attempts must be at least 1",
                path.display()
            ));
        }
        let mut seen = HashSet::new();
        for s in &c.submitters {
            if !seen.insert(s.id.as_str()) {
                return Err(format!(
                    "config {}: submitter {} is listed twice",
                    path.display(),
                    s.id
                ));
            }
        }
        Ok(c)
    }

    /// The authorised areas of a submitter: from its `[[submitters]]` entry.
    pub fn submitter_areas(&self, id: &str) -> Option<&[String]> {
        self.submitters
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.areas.as_slice())
    }
}
