//! # drd-synth: synthetic extracts in the real formats
//!
//! Writes coroner, TOP and NSP extracts exactly as formats.md describes them, for a seed, a
//! number of years and a scale, together with the reference CSVs they need and a JSON
//! [`Manifest`] of everything written, including each planted fault (file, row, column,
//! expected reason). The demo, the tests and the benchmarks all run on this data.
//!
//! The main types: [`Config`] says what to generate; [`world::World`] holds the 152 real
//! partnerships with their synthetic populations and risks; [`deaths`], [`top`] and [`nsp`]
//! draw records; [`out::TableWriter`] writes one file with a submitter's quirks. Output is
//! deterministic: every file has its own random stream keyed by (seed, source, submitter,
//! year), so the same seed gives byte-identical trees however many threads run.
//!
//! ```no_run
//! let cfg = drd_synth::Config { seed: 7, years: 7, scale: drd_synth::Scale::Small, end_year: 2025 };
//! let manifest = drd_synth::generate(&cfg, std::path::Path::new("/tmp/extracts")).unwrap();
//! println!("{} files", manifest.files.len());
//! ```

pub mod coroner;
pub mod deaths;
pub mod faults;
pub mod nsp;
pub mod out;
pub mod people;
pub mod rng;
pub mod top;
pub mod world;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use drd_model::{Coded, ReasonCode, Source};

use crate::deaths::Death;
use crate::out::{Cell, Encoding, Format, HeaderStyle, Style, TableWriter};
use crate::rng::{Stream, stream};
use crate::world::{Submitter, World};

/// How much data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Demo and tests: all 152 partnerships, deaths and NSP at national volume, TOP at 1/20.
    Small,
    /// Realistic England volumes.
    National,
}

impl Scale {
    /// Parses `small` or `national`.
    pub fn parse(s: &str) -> Result<Scale, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "small" => Ok(Scale::Small),
            "national" => Ok(Scale::National),
            other => Err(Error::Config(format!(
                "unknown scale '{other}': expected small or national"
            ))),
        }
    }

    fn top_fraction(self) -> f64 {
        match self {
            Scale::Small => 1.0 / 20.0,
            Scale::National => 1.0,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Config {
    /// Random seed.
    pub seed: u64,
    /// Number of complete calendar years.
    pub years: u32,
    /// Volume.
    pub scale: Scale,
    /// Last complete year. Fixed rather than taken from the clock so that output never depends
    /// on the day it is generated.
    pub end_year: i32,
}

impl Config {
    /// Checks the configuration before anything is written.
    pub fn validate(&self) -> Result<(), Error> {
        if self.years == 0 || self.years > 30 {
            return Err(Error::Config(format!(
                "--years {} is out of range: expected 1 to 30",
                self.years
            )));
        }
        if !(1950..=2999).contains(&self.end_year) {
            return Err(Error::Config(format!(
                "--end-year {} is out of range: expected 1950 to 2999",
                self.end_year
            )));
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 7,
            years: 7,
            scale: Scale::Small,
            end_year: DEFAULT_END_YEAR,
        }
    }
}

/// Default last complete year of synthetic data.
pub const DEFAULT_END_YEAR: i32 = 2025;

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// One file written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileRecord {
    /// Path relative to the output folder, `/`-separated.
    pub path: String,
    /// Source.
    pub source: &'static str,
    /// Submitter id.
    pub submitter: String,
    /// Container format.
    pub format: Format,
    /// CSV encoding (null for XLSX and NDJSON).
    pub encoding: Option<Encoding>,
    /// Gzip-compressed.
    pub gzip: bool,
    /// Dates written DD/MM/YYYY.
    pub uk_dates: bool,
    /// CRLF line endings.
    pub crlf: bool,
    /// Data rows (header not counted), `null` for an unreadable file.
    pub rows: Option<u64>,
    /// Extract date stated in the file, if any.
    pub extract_date: Option<NaiveDate>,
    /// Columns present beyond the contract (ignored with a warning by ingest).
    pub unknown_columns: Vec<String>,
    /// Set when the whole file must be rejected.
    pub expect_rejected: Option<ReasonCode>,
}

/// One planted fault.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fault {
    /// File path.
    pub file: String,
    /// 1-based data row, `null` for a whole-file fault.
    pub row: Option<u64>,
    /// Column, when one is to blame.
    pub column: Option<String>,
    /// Expected reason code.
    pub reason: ReasonCode,
}

/// What was generated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Manifest {
    /// Generator name and version.
    pub generator: String,
    /// The configuration.
    pub config: Config,
    /// First year of data.
    pub first_year: i32,
    /// Submitters and the partnerships each may send.
    pub submitters: Vec<Submitter>,
    /// Files, in a fixed order.
    pub files: Vec<FileRecord>,
    /// Planted faults.
    pub faults: Vec<Fault>,
    /// The withdrawn case: the file and row of its withdrawing revision.
    pub withdrawn: Option<RowRef>,
    /// The planted nitazene cluster.
    pub nitazene_cluster: Cluster,
    /// Reference CSVs written under `reference/`.
    pub reference: Vec<String>,
}

/// A row of a file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RowRef {
    /// File path.
    pub file: String,
    /// 1-based data row.
    pub row: u64,
}

/// The planted nitazene cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cluster {
    /// Region code.
    pub region_code: String,
    /// Number of deaths.
    pub deaths: usize,
    /// First and last date of death.
    pub first: Option<NaiveDate>,
    /// Last date of death.
    pub last: Option<NaiveDate>,
}

/// Rate of planted row faults (formats.md: real extracts are messy; about 0.5% of rows).
pub const FAULT_RATE: f64 = 0.005;

/// The world, submitters and deaths for a configuration, without writing anything.
#[derive(Debug)]
pub struct Truth {
    /// The world.
    pub world: World,
    /// Coroner submitters.
    pub coroners: Vec<Submitter>,
    /// Deaths by coroner.
    pub deaths: Vec<Vec<Death>>,
}

impl Truth {
    /// Builds the truth for a configuration.
    pub fn new(cfg: &Config) -> Result<Truth, Error> {
        cfg.validate()?;
        let world = World::new(cfg.end_year - cfg.years as i32 + 1, cfg.end_year);
        let coroners = world::coroner_submitters(&world);
        let mut deaths = deaths::all_deaths(&world, cfg.seed, &coroners);
        // The revised coroner withdraws one case reported in error (formats.md, `withdrawn`).
        let (x1, x2) = revised_extract_dates(&world);
        if let Some(d) = deaths[REVISED_CORONER].iter_mut().find(|d| {
            d.date_of_death.year_ce().1 as i32 == world.end_year
                && d.date_of_death <= x1
                && !d.concluded_by(x2)
                && !d.cluster
        }) {
            d.withdrawn = true;
        }
        Ok(Truth {
            world,
            coroners,
            deaths,
        })
    }

    /// The extract date most submitters use: 31 January after the last year.
    pub fn extract_date(&self) -> NaiveDate {
        extract_date(&self.world)
    }
}

use chrono::Datelike;

fn extract_date(world: &World) -> NaiveDate {
    NaiveDate::from_ymd_opt(world.end_year + 1, 1, 31).unwrap_or(NaiveDate::MIN)
}

/// The coroner that sends a first extract and then a revised one.
pub const REVISED_CORONER: usize = 1;

fn revised_extract_dates(world: &World) -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(world.end_year, 9, 30).unwrap_or(NaiveDate::MIN),
        extract_date(world),
    )
}

/// A job's output.
#[derive(Debug, Default)]
struct JobOut {
    files: Vec<FileRecord>,
    faults: Vec<Fault>,
    withdrawn: Option<RowRef>,
}

/// Generates everything into `out_dir` (created if needed) and writes `manifest.json`.
pub fn generate(cfg: &Config, out_dir: &Path) -> Result<Manifest, Error> {
    let truth = Truth::new(cfg)?;
    let world = &truth.world;
    let tops = world::top_submitters(world);
    let nsps = world::nsp_submitters(world);
    mkdir(out_dir)?;

    #[derive(Debug)]
    enum Job {
        Reference,
        Coroner(usize),
        Top(usize),
        Nsp(usize, i32),
        WholeFile(Source),
    }
    let mut jobs: Vec<Job> = vec![Job::Reference];
    // Big jobs first so two workers finish together.
    jobs.extend((0..tops.len()).map(Job::Top));
    for y in world.years() {
        jobs.extend((0..nsps.len()).map(|i| Job::Nsp(i, y)));
    }
    jobs.extend((0..truth.coroners.len()).map(Job::Coroner));
    jobs.extend([Source::Coroner, Source::Top, Source::Nsp].map(Job::WholeFile));

    let results: Vec<Mutex<Option<Result<JobOut, Error>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = match job {
                        Job::Reference => write_reference(world, out_dir),
                        Job::Coroner(c) => write_coroner(cfg, &truth, *c, out_dir),
                        Job::Top(p) => write_top(cfg, &truth, &tops, *p, out_dir),
                        Job::Nsp(s, y) => write_nsp(cfg, world, &nsps, *s, *y, out_dir),
                        Job::WholeFile(s) => {
                            write_whole_file_faults(cfg, &truth, &tops, &nsps, *s, out_dir)
                        }
                    };
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });

    let mut manifest = Manifest {
        generator: format!("drd-synth {}", env!("CARGO_PKG_VERSION")),
        config: *cfg,
        first_year: world.first_year,
        submitters: truth
            .coroners
            .iter()
            .chain(&tops)
            .chain(&nsps)
            .cloned()
            .collect(),
        files: Vec::new(),
        faults: Vec::new(),
        withdrawn: None,
        nitazene_cluster: cluster_summary(&truth),
        reference: REFERENCE_FILES
            .iter()
            .map(|s| format!("reference/{s}"))
            .collect(),
    };
    for slot in results {
        let out = slot
            .into_inner()
            .ok()
            .flatten()
            .ok_or_else(|| Error::Config("a generator thread failed".into()))??;
        manifest.files.extend(out.files);
        manifest.faults.extend(out.faults);
        if out.withdrawn.is_some() {
            manifest.withdrawn = out.withdrawn;
        }
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Config(e.to_string()))?;
    let path = out_dir.join("manifest.json");
    std::fs::write(&path, json).map_err(|source| Error::Io { path, source })?;
    Ok(manifest)
}

fn cluster_summary(truth: &Truth) -> Cluster {
    let dates: Vec<NaiveDate> = truth
        .deaths
        .iter()
        .flatten()
        .filter(|d| d.cluster)
        .map(|d| d.date_of_death)
        .collect();
    Cluster {
        region_code: deaths::CLUSTER_REGION.into(),
        deaths: dates.len(),
        first: dates.iter().min().copied(),
        last: dates.iter().max().copied(),
    }
}

fn mkdir(p: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(p).map_err(|source| Error::Io {
        path: p.to_path_buf(),
        source,
    })
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reference files written alongside the extracts.
pub const REFERENCE_FILES: [&str; 7] = [
    "partnerships_2021.csv",
    "comparator_groups.csv",
    "population.csv",
    "pwid_estimates.csv",
    "substances.csv",
    "case_definitions.csv",
    "esp2013.csv",
];

/// The shipped substance lookup, case definitions and standard population (drd-model's copy).
pub use drd_model::reference::shipped::{CASE_DEFINITIONS_CSV, ESP2013_CSV, SUBSTANCES_CSV};

fn write_reference(world: &World, out_dir: &Path) -> Result<JobOut, Error> {
    let dir = out_dir.join("reference");
    mkdir(&dir)?;
    let files = [
        ("partnerships_2021.csv", world::partnerships_csv(world)),
        ("comparator_groups.csv", world::comparator_csv(world)),
        ("population.csv", world::population_csv(world)),
        ("pwid_estimates.csv", world::pwid_csv(world)),
        ("substances.csv", SUBSTANCES_CSV.to_string()),
        ("case_definitions.csv", CASE_DEFINITIONS_CSV.to_string()),
        ("esp2013.csv", ESP2013_CSV.to_string()),
    ];
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io_err(&p))?;
    }
    Ok(JobOut::default())
}

/// A submitter's file conventions, decided by its position so they are stable.
fn style_for(source: Source, i: usize) -> Style {
    let mut s = Style::PLAIN;
    match source {
        Source::Coroner => {
            if i % 13 == 4 {
                s.format = Format::Xlsx;
            }
            if i == 7 {
                s.encoding = Encoding::Windows1252;
                s.crlf = true;
            } else if i % 4 == 1 {
                s.encoding = Encoding::Utf8Bom;
            }
            s.crlf |= i.is_multiple_of(3);
            s.uk_dates = i % 5 == 2;
            s.headers = if i % 6 == 3 {
                HeaderStyle::Title
            } else if i % 9 == 5 {
                HeaderStyle::UpperHyphen
            } else {
                HeaderStyle::Snake
            };
        }
        Source::Top => {
            match i % 7 {
                2 => {
                    s.format = Format::Ndjson;
                    s.gzip = true;
                }
                4 => s.gzip = true,
                5 => s.format = Format::Ndjson,
                _ => {}
            }
            s.uk_dates = i % 6 == 3;
            s.encoding = if s.format == Format::Csv && i % 5 == 1 {
                Encoding::Utf8Bom
            } else {
                Encoding::Utf8
            };
            s.crlf = s.format == Format::Csv && i % 4 == 2;
            s.headers = if i % 8 == 6 {
                HeaderStyle::Title
            } else {
                HeaderStyle::Snake
            };
        }
        Source::Nsp => {
            match i {
                1 => s.gzip = true,
                5 => s.format = Format::Xlsx,
                _ => {}
            }
            s.uk_dates = i == 3;
            s.crlf = i == 2;
            s.headers = if i == 4 {
                HeaderStyle::UpperHyphen
            } else {
                HeaderStyle::Snake
            };
        }
    }
    if s.format != Format::Csv {
        s.encoding = Encoding::Utf8;
        s.crlf = false;
    }
    s
}

/// Which canonical columns a submitter's files carry, in what order, and whether they add an
/// unknown `Notes` column.
fn layout_for(source: Source, i: usize) -> (Vec<usize>, bool) {
    let cols = source.columns();
    let mut keep: Vec<usize> = (0..cols.len())
        .filter(|&c| {
            let name = cols[c].name;
            if cols[c].required {
                return true;
            }
            match source {
                // Some coroners send no names or postcode, one no extract date or revision.
                Source::Coroner => {
                    let no_names = i % 5 == 3
                        && matches!(name, "surname" | "forenames" | "postcode" | "alone_at_time");
                    let no_provenance = i % 11 == 6 && matches!(name, "extract_date" | "revision");
                    !no_names && !no_provenance
                }
                Source::Top => !(i % 5 == 4 && matches!(name, "revision" | "education_days")),
                Source::Nsp => {
                    !(i == 4 && matches!(name, "foil_packs" | "pipes_issued" | "revision"))
                }
            }
        })
        .collect();
    if i % 4 == 2 {
        keep.reverse();
    }
    (keep, source == Source::Coroner && i % 7 == 1)
}

/// Writes rows with planted faults. `showcase` plants every reason that can occur in the source
/// once, so each appears at least once per source (the issue's requirement); other files plant
/// faults at [`FAULT_RATE`].
struct FaultyWriter<'a> {
    w: TableWriter,
    rel: String,
    source: Source,
    layout: Vec<usize>,
    in_layout: Vec<bool>,
    notes: bool,
    foreign_area: String,
    pending: Vec<ReasonCode>,
    dup_pending: bool,
    r: Stream,
    faults: &'a mut Vec<Fault>,
    n: u64,
}

const NOTES: &[&str] = &[
    "",
    "",
    "",
    "Family liaison: contact via solicitor, \"urgent\"",
    "Toxicology delayed,\nlab backlog",
    "Referred from neighbouring area, see file",
];

impl<'a> FaultyWriter<'a> {
    #[allow(clippy::too_many_arguments)]
    fn create(
        out_dir: &Path,
        rel: String,
        source: Source,
        sub_index: usize,
        style: Style,
        foreign_area: String,
        showcase: bool,
        r: Stream,
        faults: &'a mut Vec<Fault>,
    ) -> Result<Self, Error> {
        let (layout, notes) = layout_for(source, sub_index);
        let mut headers: Vec<&str> = layout.iter().map(|&c| source.columns()[c].name).collect();
        if notes {
            headers.push("notes");
        }
        let path = out_dir.join(&rel);
        if let Some(parent) = path.parent() {
            mkdir(parent)?;
        }
        let w = TableWriter::create(&path, style, &headers).map_err(io_err(&path))?;
        let mut in_layout = vec![false; source.columns().len()];
        for &c in &layout {
            in_layout[c] = true;
        }
        let pending = if showcase {
            faults::row_reasons(source)
        } else {
            Vec::new()
        };
        Ok(FaultyWriter {
            w,
            rel,
            source,
            layout,
            in_layout,
            notes,
            foreign_area,
            pending,
            dup_pending: showcase,
            r,
            faults,
            n: 0,
        })
    }

    fn emit(&mut self, row: &[Cell]) -> Result<(), Error> {
        let mut cells: Vec<Cell> = self.layout.iter().map(|&c| row[c].clone()).collect();
        if self.notes {
            cells.push(Cell::S(self.r.pick(NOTES)));
        }
        self.n += 1;
        self.w.row(&cells).map_err(|e| Error::Io {
            path: PathBuf::from(&self.rel),
            source: e,
        })
    }

    fn write(&mut self, mut row: Vec<Cell>) -> Result<(), Error> {
        let showcase_turn = !self.pending.is_empty() && self.n % 5 == 2;
        let random_fault = !showcase_turn && self.r.chance(FAULT_RATE);
        if showcase_turn || random_fault {
            let reasons = faults::row_reasons(self.source);
            let reason = if showcase_turn {
                self.pending[0]
            } else {
                self.r.pick(&reasons)
            };
            let ctx = faults::Ctx {
                source: self.source,
                foreign_area: &self.foreign_area,
                in_layout: &self.in_layout,
            };
            let mut trial = row.clone();
            if let Some(col) = faults::inject(reason, &mut trial, &ctx, &mut self.r) {
                if showcase_turn {
                    self.pending.remove(0);
                }
                self.emit(&trial)?;
                self.faults.push(Fault {
                    file: self.rel.clone(),
                    row: Some(self.n),
                    column: Some(col.to_string()),
                    reason,
                });
                return Ok(());
            }
            if showcase_turn {
                // This file's layout cannot carry it (e.g. no postcode column): give up on it here.
                self.pending.remove(0);
            }
        }
        let duplicate = (self.dup_pending && self.n == 9) || self.r.chance(FAULT_RATE / 8.0);
        if duplicate {
            self.dup_pending = false;
            self.emit(&row)?;
            let first = self.n;
            self.emit(&row)?;
            for rown in [first, self.n] {
                self.faults.push(Fault {
                    file: self.rel.clone(),
                    row: Some(rown),
                    column: None,
                    reason: ReasonCode::DuplicateKeyInFile,
                });
            }
            return Ok(());
        }
        row.shrink_to_fit();
        self.emit(&row)
    }

    fn finish(
        self,
        source: &'static str,
        submitter: &str,
        style: Style,
        extract_date: Option<NaiveDate>,
    ) -> Result<FileRecord, Error> {
        let rows = self.w.finish().map_err(|e| Error::Io {
            path: PathBuf::from(&self.rel),
            source: e,
        })?;
        Ok(FileRecord {
            path: self.rel,
            source,
            submitter: submitter.to_string(),
            format: style.format,
            encoding: (style.format == Format::Csv).then_some(style.encoding),
            gzip: style.gzip,
            uk_dates: style.uk_dates && style.format != Format::Xlsx,
            crlf: style.crlf,
            rows: Some(rows),
            extract_date,
            unknown_columns: if self.notes {
                vec!["notes".into()]
            } else {
                Vec::new()
            },
            expect_rejected: None,
        })
    }
}

fn foreign_area(world: &World, sub: &Submitter) -> String {
    world
        .areas
        .iter()
        .find(|a| !sub.area_idx.contains(&a.idx))
        .map(|a| a.p.code.to_string())
        .unwrap_or_default()
}

fn write_coroner(cfg: &Config, truth: &Truth, c: usize, out_dir: &Path) -> Result<JobOut, Error> {
    let world = &truth.world;
    let sub = &truth.coroners[c];
    let style = style_for(Source::Coroner, c);
    let accented = style.encoding == Encoding::Windows1252;
    let mut out = JobOut::default();
    let deaths = &truth.deaths[c];
    let x2 = extract_date(world);
    let showcase = c == 0;
    // (extract date, [(death index, revision, withdrawn)])
    type Extract = (NaiveDate, Vec<(usize, i64, bool)>);
    let mut extracts: Vec<Extract> = Vec::new();
    if c == REVISED_CORONER {
        let (x1, _) = revised_extract_dates(world);
        let first: Vec<(usize, i64, bool)> = deaths
            .iter()
            .enumerate()
            .filter(|(_, d)| d.date_of_death <= x1)
            .map(|(i, _)| (i, 1, false))
            .collect();
        let mut second = Vec::new();
        for (i, d) in deaths.iter().enumerate() {
            if d.date_of_death > x2 {
                continue;
            }
            if d.date_of_death > x1 {
                second.push((i, 1, false));
            } else if d.withdrawn {
                second.push((i, 2, true));
            } else if (d.concluded_by(x2) && !d.concluded_by(x1))
                || (d.toxicology_date <= x2 && d.toxicology_date > x1)
            {
                second.push((i, 2, false));
            }
        }
        extracts.push((x1, first));
        extracts.push((x2, second));
    } else {
        extracts.push((
            x2,
            deaths
                .iter()
                .enumerate()
                .filter(|(_, d)| d.date_of_death <= x2)
                .map(|(i, _)| (i, 1, false))
                .collect(),
        ));
    }
    for (k, (x, cases)) in extracts.into_iter().enumerate() {
        let rel = format!("coroner/{}/extract-{x}.{}", sub.id, style.extension());
        let r = stream(cfg.seed, "coroner", &sub.id, 10_000 + k as i32);
        let mut fw = FaultyWriter::create(
            out_dir,
            rel.clone(),
            Source::Coroner,
            c,
            style,
            foreign_area(world, sub),
            showcase && k == 0,
            r,
            &mut out.faults,
        )?;
        let mut rr = stream(cfg.seed, "coroner-values", &sub.id, 10_000 + k as i32);
        for (i, rev, withdrawn) in cases {
            let row =
                coroner::case_row(world, sub, &deaths[i], x, rev, withdrawn, accented, &mut rr);
            if withdrawn {
                // The withdrawal itself is never a planted fault.
                fw.emit(&row)?;
                out.withdrawn = Some(RowRef {
                    file: rel.clone(),
                    row: fw.n,
                });
                continue;
            }
            fw.write(row)?;
        }
        out.files
            .push(fw.finish("coroner", &sub.id, style, Some(x))?);
    }
    Ok(out)
}

fn write_top(
    cfg: &Config,
    truth: &Truth,
    tops: &[Submitter],
    p: usize,
    out_dir: &Path,
) -> Result<JobOut, Error> {
    let world = &truth.world;
    let sub = &tops[p];
    let style = style_for(Source::Top, p);
    let national = sub.id == "provider-national-charity";
    let mut out = JobOut::default();
    let x = NaiveDate::from_ymd_opt(world.end_year + 1, 1, 15).unwrap_or(NaiveDate::MIN);
    let rel = format!("top/{}/top-extract-{x}.{}", sub.id, style.extension());
    let r = stream(cfg.seed, "top-faults", &sub.id, 0);
    let mut fw = FaultyWriter::create(
        out_dir,
        rel,
        Source::Top,
        p,
        style,
        foreign_area(world, sub),
        p == 0,
        r,
        &mut out.faults,
    )?;
    let k_total: f64 = world
        .areas
        .iter()
        .map(|a| world.adults(a, world.end_year - 2) * a.prevalence)
        .sum();
    let k = top::NATIONAL_NEW_EPISODES * cfg.scale.top_fraction() / k_total;
    let prefix = format!("C{:02}", p + 1);
    let mut next_ref = 0u64;
    let served_by_charity = |ai: usize| tops.last().is_some_and(|t| t.area_idx.contains(&ai));
    for y in world.years() {
        let mut r = stream(cfg.seed, "top", &sub.id, y);
        let mut eps = Vec::new();
        for &ai in &sub.area_idx {
            let share = if national {
                0.3
            } else if served_by_charity(ai) {
                0.7
            } else {
                1.0
            };
            eps.extend(top::episodes(
                world,
                cfg.seed,
                &world.areas[ai],
                y,
                share,
                k,
                &mut r,
                &mut next_ref,
                &prefix,
            ));
        }
        if !national {
            for d in truth.deaths.iter().flatten() {
                if sub.area_idx.contains(&d.area) && d.treatment.is_some_and(|t| t.0.year() == y) {
                    eps.extend(top::linked_episode(d, &mut r, &mut next_ref, &prefix));
                }
            }
        }
        eps.sort_by(|a, b| a.start.cmp(&b.start).then(a.client_ref.cmp(&b.client_ref)));
        let uk_codes = p % 3 == 1;
        for ep in &eps {
            for row in top::top_rows(world, ep, &sub.id, x, uk_codes, &mut r) {
                fw.write(row)?;
            }
        }
    }
    out.files.push(fw.finish("top", &sub.id, style, None)?);
    Ok(out)
}

fn write_nsp(
    cfg: &Config,
    world: &World,
    nsps: &[Submitter],
    s: usize,
    y: i32,
    out_dir: &Path,
) -> Result<JobOut, Error> {
    let sub = &nsps[s];
    let style = style_for(Source::Nsp, s);
    let mut out = JobOut::default();
    let rel = format!("nsp/{}/returns-{y}.{}", sub.id, style.extension());
    let r = stream(cfg.seed, "nsp-faults", &sub.id, y);
    let mut fw = FaultyWriter::create(
        out_dir,
        rel,
        Source::Nsp,
        s,
        style,
        foreign_area(world, sub),
        s == 0 && y == world.end_year,
        r,
        &mut out.faults,
    )?;
    let mut r = stream(cfg.seed, "nsp", &sub.id, y);
    for &ai in &sub.area_idx {
        for site in nsp::sites(world, &world.areas[ai]) {
            for m in 1..=12u32 {
                let start = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MIN);
                let end = if m == 12 {
                    NaiveDate::from_ymd_opt(y, 12, 31)
                } else {
                    NaiveDate::from_ymd_opt(y, m + 1, 1).and_then(|d| d.pred_opt())
                }
                .unwrap_or(NaiveDate::MIN);
                fw.write(nsp::return_row(world, &site, start, end, &mut r))?;
            }
        }
    }
    out.files.push(fw.finish("nsp", &sub.id, style, None)?);
    Ok(out)
}

/// Two whole-file faults per source: a file missing a required column, and an unreadable file.
fn write_whole_file_faults(
    cfg: &Config,
    truth: &Truth,
    tops: &[Submitter],
    nsps: &[Submitter],
    source: Source,
    out_dir: &Path,
) -> Result<JobOut, Error> {
    let world = &truth.world;
    let mut out = JobOut::default();
    let (sub, dropped, unreadable_name, unreadable): (&Submitter, &str, &str, &[u8]) = match source {
        Source::Coroner => (&truth.coroners[2], "sex", "scan-of-extract.xlsx", b"PK\x03\x04\x14\x00\x00\x00this workbook was truncated in transfer"),
        Source::Top => (&tops[1], "stage", "top-extract-corrupt.ndjson", b"{\"provider_code\": \"P1\", \"client_ref\": \n<html><body>Session expired</body></html>\n"),
        Source::Nsp => (&nsps[2], "syringe_sets_issued", "returns-summary.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n\x00\x00\x01"),
    };
    let dir = format!("{}/{}", source, sub.id);
    // The file missing a column: otherwise ordinary rows.
    let rel = format!("{dir}/late-submission-missing-column.csv");
    let path = out_dir.join(&rel);
    if let Some(parent) = path.parent() {
        mkdir(parent)?;
    }
    let headers: Vec<&str> = source
        .columns()
        .iter()
        .map(|c| c.name)
        .filter(|n| *n != dropped)
        .collect();
    let mut w = TableWriter::create(&path, Style::PLAIN, &headers).map_err(io_err(&path))?;
    let mut r = stream(cfg.seed, "whole-file", source.code(), 0);
    let keep: Vec<usize> = (0..source.columns().len())
        .filter(|&c| source.columns()[c].name != dropped)
        .collect();
    let rows: Vec<Vec<Cell>> = match source {
        Source::Coroner => truth.deaths[2]
            .iter()
            .take(12)
            .map(|d| coroner::case_row(world, sub, d, extract_date(world), 1, false, false, &mut r))
            .collect(),
        Source::Top => {
            let mut next = 0;
            let eps = top::episodes(
                world,
                cfg.seed,
                &world.areas[sub.area_idx[0]],
                world.end_year,
                0.05,
                0.002,
                &mut r,
                &mut next,
                "L",
            );
            eps.iter()
                .flat_map(|e| top::top_rows(world, e, &sub.id, extract_date(world), false, &mut r))
                .take(12)
                .collect()
        }
        Source::Nsp => {
            let site = &nsp::sites(world, &world.areas[sub.area_idx[0]])[0];
            (1..=6u32)
                .map(|m| {
                    let s = NaiveDate::from_ymd_opt(world.end_year, m, 1).unwrap_or(NaiveDate::MIN);
                    let e = NaiveDate::from_ymd_opt(world.end_year, m + 1, 1)
                        .and_then(|d| d.pred_opt())
                        .unwrap_or(NaiveDate::MIN);
                    nsp::return_row(world, site, s, e, &mut r)
                })
                .collect()
        }
    };
    for row in &rows {
        let cells: Vec<Cell> = keep.iter().map(|&c| row[c].clone()).collect();
        w.row(&cells).map_err(io_err(&path))?;
    }
    let n = w.finish().map_err(io_err(&path))?;
    out.files.push(FileRecord {
        path: rel.clone(),
        source: source_str(source),
        submitter: sub.id.clone(),
        format: Format::Csv,
        encoding: Some(Encoding::Utf8),
        gzip: false,
        uk_dates: false,
        crlf: false,
        rows: Some(n),
        extract_date: None,
        unknown_columns: Vec::new(),
        expect_rejected: Some(ReasonCode::MissingRequiredColumn),
    });
    out.faults.push(Fault {
        file: rel,
        row: None,
        column: Some(dropped.to_string()),
        reason: ReasonCode::MissingRequiredColumn,
    });
    let rel = format!("{dir}/{unreadable_name}");
    let path = out_dir.join(&rel);
    std::fs::write(&path, unreadable).map_err(io_err(&path))?;
    let format = if unreadable_name.ends_with(".xlsx") {
        Format::Xlsx
    } else if unreadable_name.ends_with(".ndjson") {
        Format::Ndjson
    } else {
        Format::Csv
    };
    out.files.push(FileRecord {
        path: rel.clone(),
        source: source_str(source),
        submitter: sub.id.clone(),
        format,
        encoding: None,
        gzip: false,
        uk_dates: false,
        crlf: false,
        rows: None,
        extract_date: None,
        unknown_columns: Vec::new(),
        expect_rejected: Some(ReasonCode::UnreadableFile),
    });
    out.faults.push(Fault {
        file: rel,
        row: None,
        column: None,
        reason: ReasonCode::UnreadableFile,
    });
    Ok(out)
}

fn source_str(s: Source) -> &'static str {
    match s {
        Source::Coroner => "coroner",
        Source::Top => "top",
        Source::Nsp => "nsp",
    }
}
