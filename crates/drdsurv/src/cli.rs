//! Command-line interface (architecture.md, "Binary drdsurv"). Commands that later issues
//! build are not listed until they exist.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

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
    /// Query engine: embedded, or ballista://HOST:PORT.
    #[arg(
        long,
        global = true,
        env = "DRDSURV_ENGINE",
        default_value = "embedded"
    )]
    engine: String,
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
        /// Partnership codes this submitter may send, comma-separated.
        #[arg(long, value_delimiter = ',')]
        areas: Vec<String>,
        /// Files to ingest.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// A submitter's quarantined rows.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineCmd,
    },
    /// Run the main job on synthetic data. Today: generate the extracts; later issues add
    /// ingest, the national pipeline and the reports.
    Demo {
        #[command(flatten)]
        synth: SynthArgs,
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
    drd_telemetry::init(format)?;
    if cli.engine != "embedded" && !cli.engine.starts_with("ballista://") {
        return Err(usage(format!(
            "unknown engine '{}': expected embedded or ballista://HOST:PORT",
            cli.engine
        )));
    }
    if let Some(c) = &cli.config
        && !c.is_file()
    {
        return Err(usage(format!("config file {} does not exist", c.display())));
    }
    let mut stdout = std::io::stdout().lock();
    match cli.command {
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
            if areas.is_empty() {
                return Err(usage(format!(
                    "no authorised areas for submitter {submitter}: pass --areas CODE[,CODE…] (ingest refuses to start without them)"
                )));
            }
            let partnerships = drd_ingest::defaults::partnerships();
            let mut authorised = std::collections::HashSet::new();
            for a in &areas {
                let code = drd_model::GssCode::parse_area(a)
                    .map_err(|e| usage(format!("--areas: {e}")))?;
                if partnerships.get(code.as_str()).is_none() {
                    return Err(usage(format!(
                        "--areas: {code} is not a partnership in the {} geography",
                        partnerships.vintage
                    )));
                }
                authorised.insert(code.to_string());
            }
            let key = drd_ingest::LinkageKey::from_env().map_err(|e| usage(e.to_string()))?;
            let store = drd_store::Store::open(&cli.store)?;
            let substances = drd_ingest::defaults::substances();
            let ingestor = drd_ingest::Ingestor {
                store: &store,
                key: &key,
                partnerships: &partnerships,
                substances: &substances,
                xlsx_limit: drd_ingest::read::DEFAULT_XLSX_LIMIT,
                batch_rows: 65_536,
                received: chrono::Utc::now().date_naive(),
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let mut rejected = 0;
            for f in &files {
                let r = rt.block_on(ingestor.ingest(source, &submitter, &authorised, f))?;
                if r.status == drd_ingest::Status::Rejected {
                    rejected += 1;
                }
                writeln!(stdout, "{}", serde_json::to_string(&r)?)?;
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
        Command::Quarantine {
            action: QuarantineCmd::Export { submitter, file },
        } => {
            drd_ingest::check_submitter(&submitter).map_err(|e| usage(e.to_string()))?;
            let store = drd_store::Store::open(&cli.store)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let n = rt.block_on(drd_ingest::export_quarantine(
                &store,
                &submitter,
                file.as_deref(),
                &mut stdout,
            ))?;
            tracing::info!(rows = n, "quarantine exported");
        }
        Command::Demo { synth } => {
            let cfg = synth.config().map_err(|e| usage(e.to_string()))?;
            let out = PathBuf::from(&cli.store).join("inbox");
            writeln!(
                stdout,
                "drdsurv demo: synthetic data, seed {}, {} years to {}, {:?} scale",
                cfg.seed, cfg.years, cfg.end_year, cfg.scale
            )?;
            let m = generate(&cfg, &out)?;
            writeln!(stdout, "{}", summary(&m, &out))?;
            writeln!(
                stdout,
                "Not yet part of the demo: ingest, the national pipeline and the reports (later issues)."
            )?;
        }
    }
    Ok(())
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
