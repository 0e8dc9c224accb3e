//! Command-line interface (architecture.md, "Binary drdsurv"). Commands that later issues
//! build are not listed until they exist.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::config;

/// drdsurv: federated reporting pipeline for drug-related death surveillance.
#[derive(Debug, Parser)]
#[command(name = "drdsurv", version, about, propagate_version = true)]
struct Cli {
    /// Store URL (path, file://, memory://, s3://, gs://, az://).
    #[arg(
        long,
        global = true,
        env = "DRDSURV_STORE",
        default_value = "./drdsurv-data"
    )]
    store: String,
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "DRDSURV_CONFIG")]
    config: Option<PathBuf>,
    /// Query engine for run, schedule and sql: embedded (the default), ballista://HOST:PORT
    /// (a cluster of drdsurv ballista-scheduler and ballista-executor processes), or
    /// ballista:standalone (an in-process Ballista scheduler and executor). Overrides the
    /// config file's `engine`.
    #[arg(long, global = true, env = "DRDSURV_ENGINE")]
    engine: Option<String>,
    /// Log format: human or json. Filter with RUST_LOG.
    #[arg(long, global = true, default_value = "human")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write synthetic extracts (formats.md) and reference CSVs.
    Generate {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        synth: SynthArgs,
    },
    /// Ingest extract files for one submitter. Prints one JSON receipt per file; exits 2 if a
    /// file was rejected whole.
    Ingest {
        /// Source: coroner, top or nsp.
        #[arg(long)]
        source: String,
        /// Submitter id (lower-case letters, digits, '-', '_').
        #[arg(long)]
        submitter: String,
        /// Partnership codes this submitter may send, comma-separated. Default: the
        /// submitter's entry in the config file.
        #[arg(long, value_delimiter = ',')]
        areas: Vec<String>,
        /// Files to ingest.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Poll the inboxes listed in the config file and ingest new files. Prints one JSON
    /// receipt per file. Stops cleanly on SIGTERM or Ctrl-C.
    Worker {
        /// Look at every inbox once, then exit (2 if a file was rejected whole, 1 if a file
        /// kept failing).
        #[arg(long)]
        once: bool,
    },
    /// A submitter's quarantined rows.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineCmd,
    },
    /// Run one SQL query over the store's sources, reference tables and committed marts, with
    /// every drdsurv function registered, on the chosen engine, and
    /// print the result.
    Sql {
        /// The query, e.g. "SELECT wilson_lower(81, 263, 0.95)".
        query: String,
        /// Output: table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// Read as this role (national, public or partnership:<code>): the same tables and
        /// row filters as a Flight SQL user with the role.
        #[arg(long, default_value = "national")]
        role: String,
    },
    /// Run a pipeline's models for one period (plus its lookback periods) or a range of
    /// periods (a backfill). Prints one JSON ledger row per run; exits 1 if a run failed.
    Run {
        /// Pipeline name (a file in the pipelines folder).
        pipeline: String,
        /// One period, e.g. 2025Q3.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        period: Option<String>,
        /// First period of a backfill.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// Last period of a backfill.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// Skip periods whose last run for this pipeline committed (resume a backfill).
        #[arg(long)]
        only_failed: bool,
        /// Folder of pipeline files.
        #[arg(long, env = "DRDSURV_PIPELINES", default_value = "pipelines")]
        pipelines: PathBuf,
        /// Folder of SQL models.
        #[arg(long, env = "DRDSURV_MODELS", default_value = "sql/models")]
        models: PathBuf,
    },
    /// Fire every pipeline in the pipelines folder on its schedule, until SIGTERM or Ctrl-C
    /// (runs in progress finish first). Fires missed while it was down run as one backfill
    /// per pipeline; each scheduled run is a ledger row with trigger `schedule`.
    Schedule {
        /// Check once for fires due now, run them, then exit (1 if a run failed).
        #[arg(long)]
        once: bool,
        /// Seconds between checks for due fires.
        #[arg(long, default_value_t = 30)]
        tick_seconds: u64,
        /// Only these pipelines (default: every file in the folder).
        #[arg(long = "pipeline")]
        only: Vec<String>,
        /// Folder of pipeline files.
        #[arg(long, env = "DRDSURV_PIPELINES", default_value = "pipelines")]
        pipelines: PathBuf,
        /// Folder of SQL models.
        #[arg(long, env = "DRDSURV_MODELS", default_value = "sql/models")]
        models: PathBuf,
    },
    /// Table upkeep: compact small files, write a checkpoint and vacuum, for every Delta
    /// table in the store (or one). History inside the retention (config
    /// `[maintenance] retention_days`, default 7 years) stays queryable. Prints one JSON line
    /// per table.
    Maintain {
        /// Only this table, e.g. sources/top/provider-a or marts/indicators.
        #[arg(long)]
        table: Option<String>,
        /// History kept, in days (overrides the config file).
        #[arg(long)]
        retention_days: Option<u64>,
        /// Report what vacuum would delete; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delta time travel for recovery: list a table's versions, or restore it to one. A
    /// restore is a new commit, so it can itself be undone.
    Restore {
        /// The table, e.g. marts/indicators or sources/coroner/coroner-leeds.
        table: String,
        /// Restore to this version.
        #[arg(long = "to-version", value_name = "N", conflicts_with = "list")]
        to_version: Option<u64>,
        /// List the versions (version, time, operation), newest last.
        #[arg(long)]
        list: bool,
    },
    /// Container and service health probe: with --url, GET it and succeed on 200 (the
    /// server's /healthz); without, succeed when the store can be listed. Exits 1 otherwise.
    Healthcheck {
        /// An http:// URL to GET, e.g. http://127.0.0.1:8080/healthz.
        #[arg(long)]
        url: Option<String>,
    },
    /// The run ledger: status, timings and errors of pipeline runs, newest last.
    Runs {
        /// Only this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// Only the last N runs.
        #[arg(long)]
        last: Option<usize>,
    },
    /// The drug-alert review queue: candidate signals from committed runs, never published.
    Alerts {
        #[command(subcommand)]
        action: AlertsCmd,
    },
    /// Run a Ballista scheduler whose sessions know every drdsurv SQL function (stock
    /// Ballista processes do not). Runs until stopped.
    BallistaScheduler {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:50050")]
        bind: std::net::SocketAddr,
        /// Host name executors and clients reach this scheduler at.
        #[arg(long, default_value = "localhost")]
        external_host: String,
    },
    /// Run a Ballista executor with every drdsurv SQL function in its registry. Runs until
    /// stopped.
    BallistaExecutor {
        /// Address of the executor's Flight service.
        #[arg(long, default_value = "0.0.0.0:50051")]
        bind: std::net::SocketAddr,
        /// Port of the executor's gRPC service.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Host name the scheduler reaches this executor at.
        #[arg(long)]
        external_host: Option<String>,
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "localhost:50050")]
        scheduler: String,
        /// Tasks at once (default: the number of cores).
        #[arg(long)]
        concurrent_tasks: Option<usize>,
        /// Folder for shuffle files (default: a temporary folder).
        #[arg(long)]
        work_dir: Option<String>,
    },
    /// Versioned reference data (formats.md §4).
    Reference {
        #[command(subcommand)]
        action: ReferenceCmd,
    },
    /// Apply disclosure control to the last committed run for a period and write an
    /// immutable release, published/<period>-r<N>/ (Parquet, CSV, JSON and a manifest).
    /// Publishing the same run with the same policy again changes nothing.
    Publish {
        /// The period, e.g. 2025Q4.
        #[arg(long)]
        period: String,
        /// Disclosure policy: nhs_digital (1-7 withheld, others to the nearest 5) or
        /// secondary (primary and audited complementary suppression).
        #[arg(long, default_value = "nhs_digital")]
        policy: String,
    },
    /// Render the reports of a period's latest release into reports/<period>/.
    Report {
        /// The period (default: the latest period with a release).
        #[arg(long)]
        period: Option<String>,
        /// Only this partnership (GSS code); the national index is not rewritten.
        #[arg(long)]
        area: Option<String>,
    },
    /// Serve SQL over Arrow Flight SQL (users, roles, limits and TLS from the config file's
    /// [server]) and/or the reports read-only over HTTP (GET /<period>/<area>/, /healthz),
    /// until SIGTERM or Ctrl-C.
    Serve {
        /// Address for Flight SQL, e.g. 0.0.0.0:50051.
        #[arg(long, required_unless_present = "http")]
        flight: Option<std::net::SocketAddr>,
        /// Address for HTTP, e.g. 127.0.0.1:8080.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
    },
    /// Run the main job on synthetic data: generate the extracts, ingest them as every
    /// submitter, run national_quarterly for the last quarter, publish the release and
    /// render every report. Running it again reuses the store.
    Demo {
        #[command(flatten)]
        synth: SynthArgs,
        /// Folder of pipeline files.
        #[arg(long, env = "DRDSURV_PIPELINES", default_value = "pipelines")]
        pipelines: PathBuf,
        /// Folder of SQL models.
        #[arg(long, env = "DRDSURV_MODELS", default_value = "sql/models")]
        models: PathBuf,
        /// Stop after this stage: ingest (extracts and reference data in the store) or
        /// render (everything, the default).
        #[arg(long, default_value = "render", value_parser = ["ingest", "render"])]
        until: String,
    },
}

#[derive(Debug, Subcommand)]
enum QuarantineCmd {
    /// Write a submitter's quarantined rows (pseudonymised) as CSV to standard output, with
    /// reason, column and message, for correction and resubmission.
    Export {
        /// Submitter id.
        #[arg(long)]
        submitter: String,
        /// Only this file (its SHA-256, as in the receipt).
        #[arg(long)]
        file: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AlertsCmd {
    /// List queued signals, oldest week first: id, status, series, week, method, observed,
    /// expected, threshold, reviewer and note (tab-separated), or JSON lines.
    List {
        /// Only this status: new, reviewed or dismissed.
        #[arg(long)]
        status: Option<String>,
        /// Output: table (tab-separated) or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Record a decision on a signal. The status and note survive every later run.
    Review {
        /// The alert id (from `alerts list`).
        id: String,
        /// reviewed or dismissed.
        #[arg(long)]
        status: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
        /// Who decided (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ReferenceCmd {
    /// Validate a reference file and store it as a new version of `reference/<table>/`. The
    /// next pipeline run uses it and records the version in the ledger.
    Import {
        /// partnerships, population, pwid, substances, case_definitions or esp2013.
        #[arg(long)]
        table: String,
        /// Geography vintage of a partnerships file.
        #[arg(long, default_value = "2021")]
        vintage: String,
        /// The CSV file (population also accepts the ONS mid-year-estimate wide layout).
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct SynthArgs {
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Number of complete years (trends need 5, pooled rates 3).
    #[arg(long, default_value_t = 7)]
    years: u32,
    /// Volume: small (demo, tests) or national.
    #[arg(long, default_value = "small")]
    scale: String,
    /// Last complete year of data.
    #[arg(long, default_value_t = drd_synth::DEFAULT_END_YEAR)]
    end_year: i32,
}

impl SynthArgs {
    fn config(&self) -> Result<drd_synth::Config, drd_synth::Error> {
        let cfg = drd_synth::Config {
            seed: self.seed,
            years: self.years,
            scale: drd_synth::Scale::parse(&self.scale)?,
            end_year: self.end_year,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// A failure shown to the user: one message and an exit code (architecture.md: 1 failure,
/// 2 bad usage or a file rejected whole).
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let format =
        drd_telemetry::LogFormat::parse(&cli.log_format).map_err(|e| usage(e.to_string()))?;
    let service = drd_telemetry::Service {
        version: env!("CARGO_PKG_VERSION").to_string(),
        submitter: match &cli.command {
            Command::Ingest { submitter, .. } => Some(submitter.clone()),
            _ => None,
        },
    };
    let _telemetry = drd_telemetry::init_for(format, &service)?;
    if let Some(c) = &cli.config
        && !c.is_file()
    {
        return Err(usage(format!("config file {} does not exist", c.display())));
    }
    let base_config = load_config(cli.config.as_deref())?;
    // Tables created by this command keep the configured history.
    drd_store::set_default_retention_days(base_config.maintenance.retention_days);
    let engine = match &cli.engine {
        Some(e) => e.clone(),
        None => base_config.engine.unwrap_or_else(|| "embedded".into()),
    };
    let engine = drd_engine::Engine::parse(&engine).map_err(usage)?;
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Sql {
            query,
            format,
            role,
        } => {
            let format = drd_engine::output::Format::parse(&format).ok_or_else(|| {
                usage(format!(
                    "unknown format '{format}': expected table, csv or json"
                ))
            })?;
            let role = drd_server::access::Role::parse(&role).map_err(usage)?;
            let rt = runtime()?;
            // A query never creates a store: a local store that does not exist adds no tables.
            let local = cli.store.strip_prefix("file://").unwrap_or(&cli.store);
            let is_local = !cli.store.contains("://") || cli.store.starts_with("file://");
            let batches = if !is_local || std::path::Path::new(local).exists() {
                let cfg = load_config(cli.config.as_deref())?;
                // Only the tables the query names are opened: a store has hundreds.
                let service = rt
                    .block_on(query_service(&cli.store, &cfg, engine, None))?
                    .with_wanted(drd_server::access::Wanted::from_sql(&query));
                let who = drd_server::auth::Principal {
                    user: "cli".into(),
                    role,
                };
                rt.block_on(service.collect(&who, &query))
                    .map_err(|e| Failure {
                        code: 1,
                        message: e.message,
                    })?
                    .1
            } else {
                let ctx = rt
                    .block_on(engine.context(None, &[]))
                    .map_err(|e| Failure {
                        code: 1,
                        message: format!("engine {engine}: {e}"),
                    })?;
                rt.block_on(drd_engine::output::run(&ctx, &query))?
            };
            writeln!(stdout, "{}", drd_engine::output::render(&batches, format)?)?;
        }
        Command::Run {
            pipeline,
            period,
            from,
            to,
            only_failed,
            pipelines,
            models,
        } => {
            let spec =
                drd_pipeline::PipelineSpec::load(&pipelines.join(format!("{pipeline}.toml")))
                    .map_err(|e| usage(e.to_string()))?;
            let project =
                drd_engine::models::Project::load(&models).map_err(|e| usage(e.to_string()))?;
            let selection = project
                .select(&spec.models)
                .map_err(|e| usage(e.to_string()))?;
            let parse =
                |p: &str| drd_model::period::Period::parse(p).map_err(|e| usage(e.to_string()));
            let periods: Vec<drd_model::period::Period> = match (period, from, to) {
                (Some(p), None, None) => spec.periods_for(parse(&p)?),
                (None, Some(f), Some(t)) => drd_model::period::Window::new(parse(&f)?, parse(&t)?)
                    .map_err(|e| usage(e.to_string()))?
                    .periods()
                    .collect(),
                _ => return Err(usage("give --period P, or --from P --to P")),
            };
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let done: std::collections::BTreeSet<String> = if only_failed {
                let ledger = rt.block_on(drd_pipeline::run::read_ledger(&store))?;
                let mut last: std::collections::BTreeMap<String, String> = Default::default();
                for r in ledger.into_iter().filter(|r| r.pipeline == spec.name) {
                    last.insert(r.period, r.status);
                }
                last.into_iter()
                    .filter(|(_, s)| s == "committed")
                    .map(|(p, _)| p)
                    .collect()
            } else {
                Default::default()
            };
            let mut failed = 0;
            let progress = Progress::new("periods", periods.len());
            for (i, p) in periods.into_iter().enumerate() {
                progress.step(i);
                if done.contains(&p.to_string()) {
                    continue;
                }
                let run_id = drd_pipeline::run::new_run_id(&spec.name, p);
                let options = drd_pipeline::run::RunOptions {
                    memory_limit: spec.memory_limit,
                    engine: engine.clone(),
                    ..Default::default()
                };
                let record = rt.block_on(drd_pipeline::run::run_models_with(
                    &store, &project, &selection, &spec.name, p, &run_id, &options,
                ))?;
                failed += usize::from(record.status != "committed");
                writeln!(stdout, "{}", serde_json::to_string(&record)?)?;
            }
            progress.done();
            if failed > 0 {
                return Err(Failure {
                    code: 1,
                    message: format!("{failed} run(s) failed; see the ledger (drdsurv runs)"),
                });
            }
        }
        Command::Alerts {
            action: AlertsCmd::List { status, format },
        } => {
            if let Some(s) = &status
                && !["new", "reviewed", "dismissed"].contains(&s.as_str())
            {
                return Err(usage(format!(
                    "unknown status '{s}': expected new, reviewed or dismissed"
                )));
            }
            if format != "table" && format != "json" {
                return Err(usage(format!(
                    "unknown format '{format}': expected table or json"
                )));
            }
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let alerts = rt.block_on(drd_pipeline::alerts::list(&store))?;
            let f = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_default();
            for a in alerts
                .iter()
                .filter(|a| status.as_deref().is_none_or(|s| a.status == s))
            {
                if format == "json" {
                    writeln!(stdout, "{}", serde_json::to_string(a)?)?;
                } else {
                    writeln!(
                        stdout,
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        a.alert_id,
                        a.status,
                        a.series_id,
                        a.week,
                        a.method,
                        a.observed,
                        f(a.expected),
                        f(a.threshold),
                        a.reviewed_by.as_deref().unwrap_or(""),
                        a.note.as_deref().unwrap_or("")
                    )?;
                }
            }
        }
        Command::Alerts {
            action:
                AlertsCmd::Review {
                    id,
                    status,
                    note,
                    by,
                },
        } => {
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".into());
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let a = rt
                .block_on(drd_pipeline::alerts::review(
                    &store,
                    &id,
                    &status,
                    note.as_deref(),
                    &by,
                    chrono::Utc::now(),
                ))
                .map_err(|e| match e {
                    drd_pipeline::alerts::ReviewError::Run(e) => Failure::from(e),
                    other => usage(other.to_string()),
                })?;
            writeln!(stdout, "{}", serde_json::to_string(&a)?)?;
        }
        Command::Reference {
            action:
                ReferenceCmd::Import {
                    table,
                    vintage,
                    file,
                },
        } => {
            let text = std::fs::read(&file).map_err(|e| Failure {
                code: 2,
                message: format!("cannot read {}: {e}", file.display()),
            })?;
            let name = file.display().to_string();
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let (version, rows) = rt
                .block_on(drd_pipeline::reference::import(
                    &store, &table, &name, &text, &vintage,
                ))
                .map_err(|e| match e {
                    drd_pipeline::reference::ReferenceError::Store(e) => Failure::from(e),
                    other => usage(other.to_string()),
                })?;
            writeln!(
                stdout,
                "{}",
                serde_json::json!({"table": table, "file": name, "rows": rows, "version": version})
            )?;
        }
        Command::Schedule {
            once,
            tick_seconds,
            only,
            pipelines,
            models,
        } => {
            let mut specs = drd_pipeline::PipelineSpec::load_dir(&pipelines)
                .map_err(|e| usage(e.to_string()))?;
            if !only.is_empty() {
                if let Some(missing) = only.iter().find(|n| !specs.iter().any(|s| &s.name == *n)) {
                    return Err(usage(format!(
                        "no pipeline '{missing}' in {}",
                        pipelines.display()
                    )));
                }
                specs.retain(|s| only.contains(&s.name));
            }
            let project =
                drd_engine::models::Project::load(&models).map_err(|e| usage(e.to_string()))?;
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let scheduler = std::sync::Arc::new(
                drd_pipeline::scheduler::Scheduler::new(
                    store,
                    project,
                    specs,
                    std::sync::Arc::new(drd_pipeline::SystemClock),
                )?
                .with_engine(engine.clone()),
            );
            if once {
                let records = rt.block_on(scheduler.tick())?;
                for r in &records {
                    writeln!(stdout, "{}", serde_json::to_string(r)?)?;
                }
                let failed = records.iter().filter(|r| r.status != "committed").count();
                if failed > 0 {
                    return Err(Failure {
                        code: 1,
                        message: format!(
                            "{failed} scheduled run(s) failed; see the ledger (drdsurv runs)"
                        ),
                    });
                }
            } else {
                // The signal handler is installed before the first tick, so a SIGTERM that
                // comes while the first fires run still stops the daemon cleanly.
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let stop = {
                    let _inside = rt.enter();
                    stop_signal()
                };
                rt.spawn(async move {
                    stop.await;
                    tracing::info!("stop signal received");
                    let _ = tx.send(());
                });
                rt.block_on(scheduler.serve(
                    std::time::Duration::from_secs(tick_seconds.max(1)),
                    async {
                        let _ = rx.await;
                    },
                ))?;
            }
        }
        Command::BallistaScheduler {
            bind,
            external_host,
        } => {
            let rt = runtime()?;
            let stores = cluster_stores(&cli.store)?;
            rt.block_on(drd_engine::ballista::run_scheduler(
                bind,
                &external_host,
                &stores,
            ))
            .map_err(|e| Failure {
                code: 1,
                message: format!("ballista scheduler: {e}"),
            })?;
        }
        Command::BallistaExecutor {
            bind,
            grpc_port,
            external_host,
            scheduler,
            concurrent_tasks,
            work_dir,
        } => {
            let (host, port) = scheduler
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| usage(format!("--scheduler '{scheduler}' is not HOST:PORT")))?;
            let opts = drd_engine::ballista::ExecutorOptions {
                bind,
                grpc_port,
                external_host,
                scheduler_host: host,
                scheduler_port: port,
                concurrent_tasks: concurrent_tasks
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
                work_dir,
                stores: cluster_stores(&cli.store)?,
            };
            let rt = runtime()?;
            rt.block_on(drd_engine::ballista::run_executor(opts))
                .map_err(|e| Failure {
                    code: 1,
                    message: format!("ballista executor: {e}"),
                })?;
        }
        Command::Maintain {
            table,
            retention_days,
            dry_run,
        } => {
            let cfg = load_config(cli.config.as_deref())?;
            let opts = drd_store::MaintainOptions {
                retention_days: retention_days.unwrap_or(cfg.maintenance.retention_days),
                target_file_bytes: cfg.maintenance.target_file_mb.saturating_mul(1 << 20),
                dry_run,
            };
            if opts.retention_days == 0 {
                return Err(usage("--retention-days must be at least 1"));
            }
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let tables = match table {
                Some(t) => vec![t.trim_matches('/').to_string()],
                None => rt.block_on(store.list_tables())?,
            };
            let progress = Progress::new("maintain", tables.len());
            for (i, t) in tables.iter().enumerate() {
                let up = rt.block_on(store.maintain_table(t, &opts))?;
                progress.step(i + 1);
                writeln!(stdout, "{}", serde_json::to_string(&up)?)?;
            }
            progress.done();
        }
        Command::Restore {
            table,
            to_version: version,
            list,
        } => {
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let table = table.trim_matches('/').to_string();
            match (version, list) {
                (Some(v), false) => {
                    let now = rt.block_on(store.restore_table(&table, v))?;
                    writeln!(stdout, "restored {table} to version {v} as version {now}")?;
                }
                (None, true) => {
                    for h in rt.block_on(store.table_history(&table))? {
                        writeln!(stdout, "{}\t{}\t{}", h.version, h.time, h.operation)?;
                    }
                }
                _ => return Err(usage("give --to-version N to restore, or --list")),
            }
        }
        Command::Healthcheck { url } => {
            let failed = |m: String| Failure {
                code: 1,
                message: format!("unhealthy: {m}"),
            };
            match url {
                Some(u) => {
                    let status = http_get_status(&u).map_err(failed)?;
                    if status != 200 {
                        return Err(failed(format!("{u} answered {status}")));
                    }
                    writeln!(stdout, "ok: {u} answered 200")?;
                }
                None => {
                    let store = drd_store::Store::open(&cli.store)?;
                    let rt = runtime()?;
                    // One listing round trip to the store.
                    rt.block_on(async {
                        tokio::time::timeout(
                            std::time::Duration::from_secs(15),
                            store.submitters(
                                drd_store::TableKind::Sources,
                                drd_model::Source::Coroner,
                            ),
                        )
                        .await
                    })
                    .map_err(|_| failed("the store did not answer within 15 s".into()))?
                    .map_err(|e| failed(format!("the store cannot be listed: {e}")))?;
                    writeln!(stdout, "ok: store reachable")?;
                }
            }
        }
        Command::Runs { pipeline, last } => {
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let mut rows: Vec<_> = rt
                .block_on(drd_pipeline::run::read_ledger(&store))?
                .into_iter()
                .filter(|r| pipeline.as_deref().is_none_or(|p| r.pipeline == p))
                .collect();
            if let Some(n) = last {
                let skip = rows.len().saturating_sub(n);
                rows.drain(..skip);
            }
            for r in rows {
                writeln!(
                    stdout,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.run_id,
                    r.pipeline,
                    r.period,
                    r.status,
                    r.finished_at.format("%Y-%m-%d %H:%M:%S"),
                    r.trigger,
                    if r.late { "late" } else { "" },
                    r.error.unwrap_or_default()
                )?;
            }
        }
        Command::Generate { out, synth } => {
            let cfg = synth.config().map_err(|e| usage(e.to_string()))?;
            let m = generate(&cfg, &out)?;
            writeln!(stdout, "{}", summary(&m, &out))?;
        }
        Command::Ingest {
            source,
            submitter,
            areas,
            files,
        } => {
            let source = <drd_model::Source as drd_model::Coded>::parse(&source)
                .map_err(|e| usage(e.to_string()))?;
            drd_ingest::check_submitter(&submitter).map_err(|e| usage(e.to_string()))?;
            let config = load_config(cli.config.as_deref())?;
            let areas = if areas.is_empty() {
                config
                    .submitter_areas(&submitter)
                    .map(<[String]>::to_vec)
                    .unwrap_or_default()
            } else {
                areas
            };
            if areas.is_empty() {
                return Err(usage(format!(
                    "no authorised areas for submitter {submitter}: pass --areas CODE[,CODE…] or list the submitter in the config file (ingest refuses to start without them)"
                )));
            }
            let partnerships = drd_ingest::defaults::partnerships();
            let authorised = authorised_areas(&areas, &partnerships)?;
            let key = drd_ingest::LinkageKey::from_env().map_err(|e| usage(e.to_string()))?;
            let store = drd_store::Store::open(&cli.store)?;
            let substances = drd_ingest::defaults::substances();
            let bar = progress_bar();
            let progress = bar
                .clone()
                .map(|b| drd_ingest::Progress(std::sync::Arc::new(move |n| b.set_position(n))));
            let ingestor = drd_ingest::Ingestor {
                batch_rows: config.worker.batch_rows,
                progress: progress.as_ref(),
                ..drd_ingest::Ingestor::new(&store, &key, &partnerships, &substances)
            };
            let rt = runtime()?;
            let mut rejected = 0;
            for f in &files {
                if let Some(b) = &bar {
                    b.reset();
                }
                let r = rt.block_on(ingestor.ingest(source, &submitter, &authorised, f))?;
                if r.status == drd_ingest::Status::Rejected {
                    rejected += 1;
                }
                if let Some(b) = &bar {
                    b.suspend(|| {
                        writeln!(stdout, "{}", serde_json::to_string(&r).unwrap_or_default())
                    })?;
                } else {
                    writeln!(stdout, "{}", serde_json::to_string(&r)?)?;
                }
            }
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            if rejected > 0 {
                return Err(Failure {
                    code: 2,
                    message: format!(
                        "{rejected} of {} file(s) rejected whole (see their receipts)",
                        files.len()
                    ),
                });
            }
        }
        Command::Worker { once } => {
            let Some(path) = cli.config.as_deref() else {
                return Err(usage(
                    "worker needs a config file listing its inboxes: pass --config FILE or set DRDSURV_CONFIG",
                ));
            };
            let config = load_config(Some(path))?;
            if config.inboxes.is_empty() {
                return Err(usage(format!(
                    "config {} lists no [[inboxes]]",
                    path.display()
                )));
            }
            let partnerships = drd_ingest::defaults::partnerships();
            let w = &config.worker;
            let default_poll = config::seconds("poll_seconds", w.poll_seconds).map_err(usage)?;
            let mut inboxes = Vec::new();
            for ib in &config.inboxes {
                let source = <drd_model::Source as drd_model::Coded>::parse(&ib.source)
                    .map_err(|e| usage(format!("inbox {}: {e}", ib.url)))?;
                drd_ingest::check_submitter(&ib.submitter)
                    .map_err(|e| usage(format!("inbox {}: {e}", ib.url)))?;
                let areas = ib
                    .areas
                    .as_deref()
                    .or_else(|| config.submitter_areas(&ib.submitter))
                    .unwrap_or_default();
                if areas.is_empty() {
                    return Err(usage(format!(
                        "inbox {}: no authorised areas for submitter {} (give areas in the inbox or a [[submitters]] entry)",
                        ib.url, ib.submitter
                    )));
                }
                let poll = match ib.poll_seconds {
                    Some(p) => config::seconds("poll_seconds", p).map_err(usage)?,
                    None => default_poll,
                };
                inboxes.push(drd_ingest::worker::Inbox {
                    store: drd_store::Store::open(&ib.url)?,
                    source,
                    submitter: ib.submitter.clone(),
                    areas: authorised_areas(areas, &partnerships)?,
                    poll,
                });
            }
            let mut settings = drd_ingest::worker::Settings::new(once);
            settings.lease = config::seconds("lease_seconds", w.lease_seconds).map_err(usage)?;
            settings.grace = config::seconds("grace_seconds", w.grace_seconds).map_err(usage)?;
            settings.backoff = drd_ingest::worker::Backoff {
                first: std::time::Duration::from_millis(w.retry_first_ms),
                cap: config::seconds("retry_cap_seconds", w.retry_cap_seconds).map_err(usage)?,
                attempts: w.retry_attempts,
            };
            let key = drd_ingest::LinkageKey::from_env().map_err(|e| usage(e.to_string()))?;
            let store = drd_store::Store::open(&cli.store)?;
            let substances = drd_ingest::defaults::substances();
            let ingestor = drd_ingest::Ingestor {
                batch_rows: w.batch_rows,
                ..drd_ingest::Ingestor::new(&store, &key, &partnerships, &substances)
            };
            let rt = runtime()?;
            let summary = rt.block_on(async {
                let (tx, rx) = tokio::sync::watch::channel(false);
                let stop = stop_signal();
                tokio::spawn(async move {
                    stop.await;
                    tracing::info!("stop signal received; finishing the current file");
                    let _ = tx.send(true);
                });
                let mut print = |r: &drd_ingest::Receipt| {
                    let line = serde_json::to_string(r).unwrap_or_default();
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                };
                drd_ingest::worker::run(&ingestor, &inboxes, &settings, rx, &mut print).await
            })?;
            if summary.failed > 0 {
                return Err(Failure {
                    code: 1,
                    message: format!(
                        "{} file(s) kept failing and were left in their inbox",
                        summary.failed
                    ),
                });
            }
            if once && summary.rejected > 0 {
                return Err(Failure {
                    code: 2,
                    message: format!(
                        "{} file(s) rejected whole (moved to rejected/ with their receipts)",
                        summary.rejected
                    ),
                });
            }
        }
        Command::Quarantine {
            action: QuarantineCmd::Export { submitter, file },
        } => {
            drd_ingest::check_submitter(&submitter).map_err(|e| usage(e.to_string()))?;
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let n = rt.block_on(drd_ingest::export_quarantine(
                &store,
                &submitter,
                file.as_deref(),
                &mut stdout,
            ))?;
            tracing::info!(rows = n, "quarantine exported");
        }
        Command::Publish { period, policy } => {
            drd_model::period::Period::parse(&period).map_err(|e| usage(e.to_string()))?;
            let policy =
                drd_stats::disclosure::Policy::parse(&policy).map_err(|e| usage(e.to_string()))?;
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let p = rt.block_on(drd_report::publish(&store, &period, &policy))?;
            writeln!(stdout, "{}", serde_json::to_string(&p.manifest)?)?;
            if !p.created {
                tracing::info!(release = %p.manifest.release_id, "run already published; nothing written");
            }
        }
        Command::Report { period, area } => {
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let r = rt.block_on(drd_report::render(
                &store,
                period.as_deref(),
                area.as_deref(),
            ))?;
            writeln!(
                stdout,
                "rendered {} partnership report(s) from release {}; index: {}",
                r.areas,
                r.release_id,
                store
                    .table_location(&r.index)
                    .as_str()
                    .trim_end_matches('/')
            )?;
        }
        Command::Serve { flight, http } => {
            let store = drd_store::Store::open(&cli.store)?;
            let cfg = load_config(cli.config.as_deref())?;
            let rt = runtime()?;
            rt.block_on(async {
                let signalled = stop_signal();
                let stop = tokio::sync::watch::channel(false);
                let mut tasks = tokio::task::JoinSet::new();
                if let Some(addr) = http {
                    let listener = tokio::net::TcpListener::bind(addr).await?;
                    let addr = listener.local_addr()?;
                    writeln!(stdout, "serving reports on http://{addr}/ (read-only)")?;
                    let mut rx = stop.1.clone();
                    let store = store.clone();
                    tasks.spawn(async move {
                        drd_server::http::serve(listener, store, async move {
                            let _ = rx.wait_for(|v| *v).await;
                        })
                        .await
                        .map_err(|e| format!("http: {e}"))
                    });
                }
                if let Some(addr) = flight {
                    let srv = &cfg.server;
                    let auditor = drd_server::audit::Auditor::start(
                        store.clone(),
                        std::time::Duration::from_millis(srv.audit_flush_ms.max(10)),
                    );
                    let service = query_service(&cli.store, &cfg, engine.clone(), Some(auditor))
                        .await?
                        .with_table_memory(drd_engine::parse_size(&srv.table_memory).unwrap_or(0));
                    let secret = jwt_secret(srv)?;
                    let auth =
                        drd_server::auth::Authenticator::new(&srv.users, secret).map_err(usage)?;
                    if srv.users.is_empty() {
                        tracing::warn!(
                            "no [[server.users]] configured: only JWTs can authenticate"
                        );
                    }
                    let tls = match (&srv.tls_cert, &srv.tls_key) {
                        (Some(c), Some(k)) => Some(drd_server::flight::Tls {
                            cert_pem: std::fs::read(c)
                                .map_err(|e| usage(format!("tls_cert {}: {e}", c.display())))?,
                            key_pem: std::fs::read(k)
                                .map_err(|e| usage(format!("tls_key {}: {e}", k.display())))?,
                        }),
                        _ => None,
                    };
                    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
                    let svc = drd_server::flight::Service::new(std::sync::Arc::new(service), auth)
                        .map_err(usage)?;
                    let listener = tokio::net::TcpListener::bind(addr).await?;
                    let addr = listener.local_addr()?;
                    writeln!(
                        stdout,
                        "serving Flight SQL on {scheme}://{addr} (read-only)"
                    )?;
                    let mut rx = stop.1.clone();
                    tasks.spawn(async move {
                        drd_server::flight::serve(listener, svc, tls, async move {
                            let _ = rx.wait_for(|v| *v).await;
                        })
                        .await
                    });
                }
                stdout.flush()?;
                tokio::select! {
                    () = signalled => {}
                    Some(r) = tasks.join_next() => {
                        let r = r.map_err(|e| Failure { code: 1, message: e.to_string() })?;
                        r.map_err(|e| Failure { code: 1, message: e })?;
                    }
                }
                let _ = stop.0.send(true);
                while let Some(r) = tasks.join_next().await {
                    let r = r.map_err(|e| Failure {
                        code: 1,
                        message: e.to_string(),
                    })?;
                    r.map_err(|e| Failure {
                        code: 1,
                        message: e,
                    })?;
                }
                Ok::<(), Failure>(())
            })?;
        }
        Command::Demo {
            synth,
            pipelines,
            models,
            until,
        } => {
            let started = Instant::now();
            let mut stages: Vec<(&str, f64)> = Vec::new();
            let cfg = synth.config().map_err(|e| usage(e.to_string()))?;
            let out = PathBuf::from(&cli.store).join("inbox");
            writeln!(
                stdout,
                "drdsurv demo: synthetic data, seed {}, {} years to {}, {:?} scale",
                cfg.seed, cfg.years, cfg.end_year, cfg.scale
            )?;
            // The pipeline and models are checked before anything is written.
            let job = if until == "render" {
                let spec = drd_pipeline::PipelineSpec::load(&pipelines.join("national_quarterly.toml"))
                    .map_err(|e| usage(format!("{e} (run the demo from the drdsurv checkout, or set DRDSURV_PIPELINES and DRDSURV_MODELS)")))?;
                let project =
                    drd_engine::models::Project::load(&models).map_err(|e| usage(e.to_string()))?;
                Some((spec, project))
            } else {
                None
            };
            let t = Instant::now();
            let m = generate(&cfg, &out)?;
            writeln!(stdout, "{}", summary(&m, &out))?;
            stages.push(("generate", t.elapsed().as_secs_f64()));
            let t = Instant::now();
            let totals = demo_ingest(&cli.store, &m, &out)?;
            writeln!(
                stdout,
                "ingested as {} submitters with the demo's own linkage key (synthetic data only; real runs need DRDSURV_LINKAGE_KEY_FILE) in {:.1} s:",
                m.submitters.len(),
                t.elapsed().as_secs_f64()
            )?;
            for (source, [files, read, accepted, quarantined, rejected, duplicate]) in &totals {
                writeln!(
                    stdout,
                    "  {source:<8} {files:>4} files: {read} rows read, {accepted} accepted, {quarantined} quarantined; {rejected} file(s) rejected whole, {duplicate} already ingested"
                )?;
            }
            let imported = demo_reference(&cli.store, &out)?;
            writeln!(
                stdout,
                "reference data in reference/: {}",
                imported.join(", ")
            )?;
            stages.push(("ingest", t.elapsed().as_secs_f64()));
            let Some((spec, project)) = job else {
                writeln!(
                    stdout,
                    "store: {} (stopped after ingest; `drdsurv run national_quarterly --period {}Q4` continues)",
                    cli.store, cfg.end_year
                )?;
                return Ok(());
            };

            // The national pipeline for the last quarter of the data, unless the last committed
            // run for it read exactly these inputs and definitions.
            let t = Instant::now();
            let period = drd_model::period::Period::Quarter(cfg.end_year, 4);
            let store = drd_store::Store::open(&cli.store)?;
            let rt = runtime()?;
            let selection = project
                .select(&spec.models)
                .map_err(|e| usage(e.to_string()))?;
            let (inputs, definitions) = rt.block_on(async {
                let ctx = drd_engine::new_context();
                let i = drd_pipeline::run::register_sources(&store, &ctx).await?;
                let d = drd_pipeline::reference::register(&store, &ctx).await?;
                Ok::<_, drd_pipeline::run::RunError>((i, d))
            })?;
            let ledger = rt.block_on(drd_pipeline::run::read_ledger(&store))?;
            let reusable = ledger.iter().rfind(|r| {
                r.status == "committed"
                    && r.pipeline == spec.name
                    && r.period == period.to_string()
                    && r.inputs == inputs
                    && r.definitions == definitions
            });
            let run_id = match reusable {
                Some(r) => {
                    writeln!(
                        stdout,
                        "run: {} is up to date (run {} read the same inputs and definitions)",
                        spec.name, r.run_id
                    )?;
                    r.run_id.clone()
                }
                None => {
                    let run_id = drd_pipeline::run::new_run_id(&spec.name, period);
                    let options = drd_pipeline::run::RunOptions {
                        memory_limit: spec.memory_limit,
                        engine: engine.clone(),
                        ..Default::default()
                    };
                    let record = rt.block_on(drd_pipeline::run::run_models_with(
                        &store, &project, &selection, &spec.name, period, &run_id, &options,
                    ))?;
                    if record.status != "committed" {
                        return Err(Failure {
                            code: 1,
                            message: format!(
                                "run {run_id} failed: {}",
                                record.error.unwrap_or_else(|| {
                                    "a blocking data test failed; see drdsurv runs".into()
                                })
                            ),
                        });
                    }
                    writeln!(
                        stdout,
                        "run: {} for {period} committed as {run_id} ({} models)",
                        spec.name,
                        record.models.len()
                    )?;
                    run_id
                }
            };
            stages.push(("run", t.elapsed().as_secs_f64()));

            let t = Instant::now();
            let published = rt.block_on(drd_report::publish(
                &store,
                &period.to_string(),
                &drd_stats::disclosure::Policy::NhsDigital,
            ))?;
            let man = &published.manifest;
            writeln!(
                stdout,
                "publish: release {} from run {run_id}, policy {}{}",
                man.release_id,
                man.policy,
                if published.created {
                    ""
                } else {
                    " (already published; unchanged)"
                }
            )?;
            stages.push(("publish", t.elapsed().as_secs_f64()));

            let t = Instant::now();
            let rendered =
                rt.block_on(drd_report::render(&store, Some(&period.to_string()), None))?;
            stages.push(("render", t.elapsed().as_secs_f64()));
            let alerts = man.rows.get("alerts").copied().unwrap_or(0);
            let (read, accepted, quarantined) = totals
                .values()
                .fold((0, 0, 0), |a, t| (a.0 + t[1], a.1 + t[2], a.2 + t[3]));
            writeln!(stdout, "\nSummary")?;
            writeln!(stdout, "  partnerships reported: {}", rendered.areas)?;
            writeln!(
                stdout,
                "  rows read this time: {read} ({accepted} accepted, {quarantined} quarantined; files seen before are skipped)"
            )?;
            writeln!(stdout, "  drug-alert signals for review: {alerts}")?;
            let times: Vec<String> = stages
                .iter()
                .map(|(s, secs)| format!("{s} {secs:.1} s"))
                .collect();
            writeln!(
                stdout,
                "  time per stage: {} (total {:.1} s)",
                times.join(", "),
                started.elapsed().as_secs_f64()
            )?;
            let index = store.table_location(&rendered.index);
            let shown = index
                .to_file_path()
                .map(|p| p.display().to_string().trim_end_matches('/').to_string())
                .unwrap_or_else(|()| index.to_string());
            writeln!(stdout, "  national index: {shown}")?;
        }
    }
    Ok(())
}

/// The demo's ingest: every generated file, as its submitter, with the submitter's areas from
/// the manifest. Returns per source: files, rows read, accepted, quarantined, files rejected
/// whole, files already ingested.
fn demo_ingest(
    store: &str,
    m: &drd_synth::Manifest,
    inbox: &std::path::Path,
) -> Result<std::collections::BTreeMap<&'static str, [u64; 6]>, Failure> {
    let key = drd_ingest::LinkageKey::from_bytes(
        b"drdsurv demo linkage key: synthetic data only, never for real extracts",
    )?;
    let store = drd_store::Store::open(store)?;
    let partnerships = drd_ingest::defaults::partnerships();
    let substances = drd_ingest::defaults::substances();
    let ingestor = drd_ingest::Ingestor::new(&store, &key, &partnerships, &substances);
    let rt = runtime()?;
    let mut totals = std::collections::BTreeMap::new();
    for sub in &m.submitters {
        let source = <drd_model::Source as drd_model::Coded>::parse(sub.source)?;
        let areas: std::collections::HashSet<String> = sub.areas.iter().cloned().collect();
        for f in m.files.iter().filter(|f| f.submitter == sub.id) {
            let r = rt.block_on(ingestor.ingest(source, &sub.id, &areas, &inbox.join(&f.path)))?;
            let t: &mut [u64; 6] = totals.entry(sub.source).or_default();
            t[0] += 1;
            t[1] += r.rows_read;
            t[2] += r.rows_accepted;
            t[3] += r.rows_quarantined;
            match r.status {
                drd_ingest::Status::Rejected => t[4] += 1,
                drd_ingest::Status::Duplicate => t[5] += 1,
                drd_ingest::Status::Accepted => {}
            }
        }
    }
    Ok(totals)
}

/// The demo's reference data: the generated geography (with comparator groups), population
/// and PWID estimates, and the shipped definitions, each imported as a reference table.
fn demo_reference(store: &str, inbox: &std::path::Path) -> Result<Vec<String>, Failure> {
    let store = drd_store::Store::open(store)?;
    let rt = runtime()?;
    let mut done = Vec::new();
    for (table, file) in [
        ("partnerships", "partnerships_2021.csv"),
        ("population", "population.csv"),
        ("pwid", "pwid_estimates.csv"),
        ("substances", "substances.csv"),
        ("case_definitions", "case_definitions.csv"),
        ("esp2013", "esp2013.csv"),
    ] {
        let path = inbox.join("reference").join(file);
        let text = std::fs::read(&path)?;
        let (_, rows) = rt
            .block_on(drd_pipeline::reference::import(
                &store,
                table,
                &path.display().to_string(),
                &text,
                "2021",
            ))
            .map_err(|e| Failure {
                code: 1,
                message: e.to_string(),
            })?;
        done.push(format!("{table} ({rows} rows)"));
    }
    Ok(done)
}

/// The status code of a plain-HTTP GET (no TLS: probes run beside the server).
fn http_get_status(url: &str) -> Result<u16, String> {
    use std::io::Read as _;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs can be probed"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let timeout = std::time::Duration::from_secs(5);
    let mut conn =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{url}: {e}"))?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        conn,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{url}: {e}"))?;
    let mut head = [0u8; 12];
    conn.read_exact(&mut head)
        .map_err(|e| format!("{url}: {e}"))?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP response"))
}

/// Progress of a long command over a known number of steps, on standard error when it is a
/// terminal (like the ingest row counter, [`progress_bar`]); nothing otherwise, so logs and
/// pipes stay clean.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(label: &'static str, total: usize) -> Progress {
        use std::io::IsTerminal as _;
        if !std::io::stderr().is_terminal() || total < 2 {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {elapsed} (eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label);
        Progress(Some(bar))
    }

    fn step(&self, done: usize) {
        if let Some(b) = &self.0 {
            b.set_position(done as u64);
        }
    }

    fn done(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    // Ballista (de)serialises whole plans recursively on the runtime's workers (an in-process
    // scheduler and executor run there too); the national models' plans overflowed tokio's
    // default 2 MiB worker stack in the debug build. The stack is reserved, not committed.
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(64 << 20)
        .enable_all()
        .build()?)
}

/// The object store a Ballista process must reach for `--store` (none when the store is a
/// local path, or not given: `file://` is always reachable).
fn cluster_stores(store: &str) -> Result<Vec<drd_engine::ballista::StoreEntry>, Failure> {
    if !store.contains("://") || store.starts_with("file://") {
        return Ok(Vec::new());
    }
    Ok(drd_store::Store::open(store)?
        .engine_object_store()?
        .into_iter()
        .collect())
}

/// The query service over the store and the config's attached catalogs.
async fn query_service(
    store: &str,
    cfg: &config::Config,
    engine: drd_engine::Engine,
    auditor: Option<drd_server::audit::Auditor>,
) -> Result<drd_server::query::QueryService, Failure> {
    let home = drd_store::Store::open(store)?;
    let mut attached = std::collections::BTreeMap::new();
    for (name, url) in &cfg.catalogs {
        attached.insert(
            name.clone(),
            drd_store::Store::open(url).map_err(|e| usage(format!("catalog {name}: {e}")))?,
        );
    }
    let srv = &cfg.server;
    let limits = drd_server::query::Limits {
        memory: srv.memory_limit.as_deref().and_then(drd_engine::parse_size),
        timeout: std::time::Duration::from_secs_f64(srv.query_timeout_seconds),
    };
    drd_server::query::QueryService::new(
        home,
        attached,
        engine,
        limits,
        std::time::Duration::from_secs_f64(srv.refresh_seconds),
        auditor,
    )
    .await
    .map_err(|e| Failure {
        code: 1,
        message: e,
    })
}

/// The JWT secret: `DRDSURV_JWT_SECRET`, else `[server] jwt_secret_file`, else none.
fn jwt_secret(srv: &config::ServerConfig) -> Result<Option<Vec<u8>>, Failure> {
    if let Ok(v) = std::env::var("DRDSURV_JWT_SECRET")
        && !v.is_empty()
    {
        return Ok(Some(v.into_bytes()));
    }
    match &srv.jwt_secret_file {
        Some(p) => {
            let b = std::fs::read(p)
                .map_err(|e| usage(format!("jwt_secret_file {}: {e}", p.display())))?;
            let trimmed = String::from_utf8_lossy(&b).trim_end().as_bytes().to_vec();
            Ok(Some(trimmed))
        }
        None => Ok(None),
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<config::Config, Failure> {
    match path {
        Some(p) => config::Config::load(p).map_err(usage),
        None => Ok(config::Config::default()),
    }
}

/// Checks partnership codes against the geography.
fn authorised_areas(
    areas: &[String],
    partnerships: &drd_model::reference::Partnerships,
) -> Result<std::collections::HashSet<String>, Failure> {
    let mut authorised = std::collections::HashSet::new();
    for a in areas {
        let code = drd_model::GssCode::parse_area(a).map_err(|e| usage(format!("areas: {e}")))?;
        if partnerships.get(code.as_str()).is_none() {
            return Err(usage(format!(
                "areas: {code} is not a partnership in the {} geography",
                partnerships.vintage
            )));
        }
        authorised.insert(code.to_string());
    }
    Ok(authorised)
}

/// A row counter on standard error when it is a terminal; `None` otherwise.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {human_pos} rows ({per_sec})")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

/// Installs the SIGTERM and SIGINT handlers at once and returns a future that ends at the
/// first of them. Call it inside the runtime and before announcing readiness: a signal that
/// arrives between the two would otherwise meet the default action and kill the process.
fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (Ok(mut term), Err(_)) => {
                    term.recv().await;
                }
                (Err(_), Ok(mut int)) => {
                    int.recv().await;
                }
                (Err(_), Err(_)) => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn generate(
    cfg: &drd_synth::Config,
    out: &std::path::Path,
) -> Result<drd_synth::Manifest, Failure> {
    let t = Instant::now();
    tracing::info!(seed = cfg.seed, years = cfg.years, scale = ?cfg.scale, out = %out.display(), "generating synthetic extracts");
    let m = drd_synth::generate(cfg, out)?;
    tracing::info!(
        files = m.files.len(),
        faults = m.faults.len(),
        seconds = t.elapsed().as_secs_f64(),
        "generated"
    );
    Ok(m)
}

fn summary(m: &drd_synth::Manifest, out: &std::path::Path) -> String {
    let rows = |s: &str| {
        m.files
            .iter()
            .filter(|f| f.source == s)
            .filter_map(|f| f.rows)
            .sum::<u64>()
    };
    format!(
        "wrote {} files to {}: coroner {} rows, top {} rows, nsp {} rows; {} planted faults; manifest {}",
        m.files.len(),
        out.display(),
        rows("coroner"),
        rows("top"),
        rows("nsp"),
        m.faults.len(),
        out.join("manifest.json").display()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Splits a shell line into words and operators (`|`, `||`, `&&`, `;`, `>`, `<`, `$(`,
    /// `)`), honouring quotes and backslashes; stops at a comment. A word that is only a
    /// variable reference (`$X`, `"$X"`, `${X}`) becomes `1`.
    fn shell_words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut started = false;
        let mut var_only = true;
        let mut chars = line.chars().peekable();
        let flush = |out: &mut Vec<String>, cur: &mut String, started: &mut bool, v: &mut bool| {
            if *started {
                let is_var = *v && cur.starts_with('$') && !cur.starts_with("$(");
                out.push(if is_var {
                    "1".into()
                } else {
                    std::mem::take(cur)
                });
            }
            cur.clear();
            *started = false;
            *v = true;
        };
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    started = true;
                    var_only = false;
                    for d in chars.by_ref() {
                        if d == '\'' {
                            break;
                        }
                        cur.push(d);
                    }
                }
                '"' => {
                    started = true;
                    while let Some(d) = chars.next() {
                        match d {
                            '"' => break,
                            '\\' => cur.extend(chars.next()),
                            _ => cur.push(d),
                        }
                    }
                }
                '\\' => {
                    started = true;
                    var_only = false;
                    cur.extend(chars.next());
                }
                '#' if !started => break,
                ' ' | '\t' => flush(&mut out, &mut cur, &mut started, &mut var_only),
                '$' if chars.peek() == Some(&'(') => {
                    chars.next();
                    flush(&mut out, &mut cur, &mut started, &mut var_only);
                    out.push("$(".into());
                }
                '|' | '&' | ';' | '>' | '<' | ')' => {
                    flush(&mut out, &mut cur, &mut started, &mut var_only);
                    let mut op = c.to_string();
                    if matches!(chars.peek(), Some(&d) if d == c) {
                        op.push(c);
                        chars.next();
                    }
                    out.push(op);
                }
                _ => {
                    if !started && c != '$' {
                        var_only = false;
                    }
                    started = true;
                    cur.push(c);
                }
            }
        }
        flush(&mut out, &mut cur, &mut started, &mut var_only);
        out
    }

    /// Every `drdsurv …` command in a line: the words after `drdsurv` up to an operator.
    fn commands(line: &str) -> Vec<Vec<String>> {
        let ops = ["|", "||", "&&", ";", ">", ">>", "<", "$(", ")", "&"];
        let mut out = Vec::new();
        for seg in shell_words(line).split(|w| ops.contains(&w.as_str())) {
            let mut it = seg
                .iter()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'));
            if it.next().is_some_and(|w| w == "drdsurv") {
                let mut cmd = vec!["drdsurv".to_string()];
                cmd.extend(it.cloned());
                out.push(cmd);
            }
        }
        out
    }

    #[test]
    fn shell_words_split_like_a_shell() {
        assert_eq!(
            commands(r#"GOOD=$(drdsurv restore "$TABLE" --list | tail -n 2) # x"#),
            vec![vec!["drdsurv", "restore", "1", "--list"]]
        );
        assert_eq!(
            commands(r#"drdsurv alerts review 42 --note 'a "b"' > out.csv"#),
            vec![vec![
                "drdsurv", "alerts", "review", "42", "--note", "a \"b\""
            ]]
        );
        assert!(commands("echo drdsurv run x").is_empty());
    }

    /// Every `drdsurv …` command in docs/runbook.md (in shell blocks and inline code) is a
    /// command line this binary accepts.
    #[test]
    fn runbook_commands_parse() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runbook.md");
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<String> = Vec::new();
        let mut in_block = false;
        let mut pending = String::new();
        for raw in text.lines() {
            let t = raw.trim_start();
            if t.starts_with("```") {
                in_block = !in_block;
                continue;
            }
            if in_block {
                if let Some(head) = t.strip_suffix('\\') {
                    pending.push_str(head);
                    continue;
                }
                pending.push_str(t);
                lines.push(std::mem::take(&mut pending));
            } else {
                // Inline code spans.
                for (i, span) in t.split('`').enumerate() {
                    if i % 2 == 1 && span.starts_with("drdsurv ") && !span.contains('…') {
                        lines.push(span.to_string());
                    }
                }
            }
        }
        let mut checked = 0;
        let mut subcommands = std::collections::BTreeSet::new();
        for line in &lines {
            for cmd in commands(line) {
                if let Err(e) = Cli::try_parse_from(&cmd) {
                    // --version prints and "fails" with DisplayVersion; that is a success.
                    assert!(
                        matches!(e.kind(), clap::error::ErrorKind::DisplayVersion),
                        "runbook command {cmd:?} does not parse: {e}"
                    );
                }
                if let Some(sub) = cmd.iter().skip(1).find(|w| !w.starts_with('-')) {
                    subcommands.insert(sub.clone());
                }
                checked += 1;
            }
        }
        assert!(checked >= 40, "only {checked} commands found");
        for needed in [
            "maintain", "restore", "run", "publish", "ingest", "worker", "serve",
        ] {
            assert!(subcommands.contains(needed), "{needed}: {subcommands:?}");
        }
        // The check can fail: a misspelt option is refused.
        assert!(Cli::try_parse_from(["drdsurv", "maintain", "--retention", "5"]).is_err());
    }
}
