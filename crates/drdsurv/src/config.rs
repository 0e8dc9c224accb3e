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
//!
//! [server]                     # serve --flight, and sql --role
//! memory_limit = "512M"        # per query; spilling is off for served queries
//! query_timeout_seconds = 60
//! refresh_seconds = 30         # how often newly committed tables are picked up
//! table_memory = "256M"        # small marts and reference tables held in memory; "0": none
//! audit_flush_ms = 500         # the audit table gets one commit per interval
//! jwt_secret_file = "/run/credentials/drdsurv/jwt"   # or DRDSURV_JWT_SECRET; HS256, >= 32 bytes
//! # tls_cert = "server.crt"    # PEM; both or neither
//! # tls_key = "server.key"
//!
//! [[server.users]]
//! name = "nat-analyst"
//! role = "national"            # or public, or partnership:E06000047
//! token_sha256 = "875ca15102495ea430c9af8e6eeb9a455e58e74d842b8bf852eed00b0482e739"   # printf %s "$TOKEN" | sha256sum
//!
//! [catalogs]                   # more stores, queried as <name>.<schema>.<table>
//! wales = "s3://drd-wales/store"
//!
//! [maintenance]                # drdsurv maintain
//! retention_days = 2557        # 7 years of history: time travel and vacuum
//! target_file_mb = 128         # compaction's target file size
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
    /// The query service.
    #[serde(default)]
    pub server: ServerConfig,
    /// More stores attached as named catalogs.
    #[serde(default)]
    pub catalogs: std::collections::BTreeMap<String, String>,
    /// Table upkeep.
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
}

/// `[maintenance]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// History kept, in days: time travel reaches this far back and vacuum keeps every file
    /// a version inside it needs. Also given to tables when they are created.
    pub retention_days: u64,
    /// Compaction's target file size, in MiB.
    pub target_file_mb: u64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            retention_days: drd_store::DEFAULT_RETENTION_DAYS,
            target_file_mb: 128,
        }
    }
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub memory_limit: Option<String>,
    pub query_timeout_seconds: f64,
    pub refresh_seconds: f64,
    pub table_memory: String,
    pub audit_flush_ms: u64,
    pub jwt_secret_file: Option<std::path::PathBuf>,
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    pub users: Vec<drd_server::auth::UserConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            memory_limit: Some("1G".into()),
            query_timeout_seconds: 300.0,
            refresh_seconds: 30.0,
            table_memory: "256M".into(),
            audit_flush_ms: 500,
            jwt_secret_file: None,
            tls_cert: None,
            tls_key: None,
            users: Vec::new(),
        }
    }
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
        if c.maintenance.retention_days == 0 || c.maintenance.target_file_mb == 0 {
            return Err(format!(
                "config {}: [maintenance] retention_days and target_file_mb must be at least 1",
                path.display()
            ));
        }
        if w.batch_rows == 0 || w.retry_attempts == 0 {
            return Err(format!(
                "config {}: [worker] batch_rows and retry_attempts must be at least 1",
                path.display()
            ));
        }
        let srv = &c.server;
        if let Some(m) = &srv.memory_limit
            && drd_engine::parse_size(m).is_none()
        {
            return Err(format!(
                "config {}: [server] memory_limit = {m:?} is not a size such as 512M or 2G",
                path.display()
            ));
        }
        if srv.table_memory.trim() != "0" && drd_engine::parse_size(&srv.table_memory).is_none() {
            return Err(format!(
                "config {}: [server] table_memory = {:?} is not a size such as 256M, or 0",
                path.display(),
                srv.table_memory
            ));
        }
        seconds("query_timeout_seconds", srv.query_timeout_seconds)
            .and(seconds("refresh_seconds", srv.refresh_seconds))
            .map_err(|e| format!("config {}: [server] {e}", path.display()))?;
        if srv.tls_cert.is_some() != srv.tls_key.is_some() {
            return Err(format!(
                "config {}: [server] tls_cert and tls_key go together",
                path.display()
            ));
        }
        drd_server::auth::Authenticator::new(&srv.users, None)
            .map_err(|e| format!("config {}: [server] {e}", path.display()))?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn examples(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                examples(&p, out);
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }

    /// Every example config under deploy/config loads with this loader, and its server users
    /// pass the same checks `serve` makes.
    #[test]
    fn deploy_config_examples_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let mut files = Vec::new();
        examples(&root, &mut files);
        files.sort();
        assert!(files.len() >= 6, "{files:?}");
        let mut inboxes = 0;
        let mut users = 0;
        for f in &files {
            let c = Config::load(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            drd_server::auth::Authenticator::new(&c.server.users, None)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            inboxes += c.inboxes.len();
            users += c.server.users.len();
        }
        assert!(
            inboxes >= 6 && users >= 2,
            "{inboxes} inboxes, {users} users"
        );
        // The loader is strict: a misspelt key in an example would fail.
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[maintenance]\nretention_dayz = 5\n").unwrap();
        let e = Config::load(&bad).unwrap_err();
        assert!(e.contains("retention_dayz"), "{e}");
    }
}
