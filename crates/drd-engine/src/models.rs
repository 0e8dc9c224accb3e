//! SQL models: `sql/models/<layer>/<model>.sql` (one SELECT) with `<model>.toml` beside it
//! (schema in `sql/README.md`). [`Project::load`] reads them all, finds the tables each model
//! reads from its SQL (DataFusion's parser, CTE-aware), and orders the models so every model
//! runs after the models it reads. A cycle is refused with an error that names it.
//!
//! A name a model reads that is not another model is a source table (`stg_*` read
//! `sources.*`), resolved when the run registers tables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::resolve::resolve_table_references;
use serde::Deserialize;

/// The layers, in the order data flows through them.
pub const LAYERS: [&str; 5] = ["staging", "marts", "indicators", "benchmarks", "alerts"];

/// Why the model project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A model or its config is invalid.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Models read each other in a cycle.
    #[error("the models form a cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The models of the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A selection names no model.
    #[error("no model matches '{0}' (use a model name, <layer>/* or *)")]
    NoMatch(String),
}

/// How a model's output is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Materialisation {
    /// A new Delta version of the whole table on every run.
    #[default]
    Table,
    /// Not stored: later models read the query itself.
    View,
    /// Each run replaces the rows of its own period (its `period_column` must hold the run's
    /// period label on every row) and keeps every other period's rows as the last committed
    /// run left them.
    OverwriteByPeriod,
}

/// What a failing test does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Recorded in the ledger; the run goes on.
    Warn,
    /// Recorded as an error.
    #[default]
    Error,
}

/// One data test of a model's output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TestKind {
    /// No NULL in these columns.
    NotNull {
        /// Columns.
        columns: Vec<String>,
    },
    /// No two rows share these columns.
    Unique {
        /// Columns (together).
        columns: Vec<String>,
    },
    /// Every non-NULL value is one of these.
    AcceptedValues {
        /// Column.
        column: String,
        /// Allowed values (text).
        values: Vec<String>,
    },
    /// Every non-NULL value appears in another model's or table's column.
    Relationships {
        /// Column.
        column: String,
        /// The other table.
        to: String,
        /// Its column.
        field: String,
    },
    /// The row count lies in [min, max].
    RowCount {
        /// Fewest rows.
        #[serde(default)]
        min: Option<u64>,
        /// Most rows.
        #[serde(default)]
        max: Option<u64>,
    },
    /// A query returning the failing rows (none when the test passes).
    Sql {
        /// The query; `{{ this }}` names the model's output.
        query: String,
    },
}

/// A data test with what failing means. In the config file it is one table with `type`,
/// the type's own fields, and optionally `name`, `severity` and `blocking`; any other field
/// is an error.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "toml::Table")]
pub struct DataTest {
    /// Name in the ledger (default: the type and its columns).
    pub name: Option<String>,
    /// The check.
    pub kind: TestKind,
    /// Warn or error (default error).
    pub severity: Severity,
    /// A failing blocking test stops the run before it commits (default false).
    pub blocking: bool,
}

impl TryFrom<toml::Table> for DataTest {
    type Error = String;

    fn try_from(mut t: toml::Table) -> Result<Self, String> {
        let name = match t.remove("name") {
            Some(toml::Value::String(s)) => Some(s),
            Some(other) => return Err(format!("test name must be text, got {other}")),
            None => None,
        };
        let severity = match t.remove("severity") {
            Some(v) => v
                .try_into::<Severity>()
                .map_err(|e| format!("severity: {e}"))?,
            None => Severity::default(),
        };
        let blocking = match t.remove("blocking") {
            Some(toml::Value::Boolean(b)) => b,
            Some(other) => return Err(format!("blocking must be true or false, got {other}")),
            None => false,
        };
        let kind: TestKind = toml::Value::Table(t)
            .try_into()
            .map_err(|e| e.to_string())?;
        Ok(DataTest {
            name,
            kind,
            severity,
            blocking,
        })
    }
}

impl DataTest {
    /// The test's name in the ledger.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        match &self.kind {
            TestKind::NotNull { columns } => format!("not_null({})", columns.join(", ")),
            TestKind::Unique { columns } => format!("unique({})", columns.join(", ")),
            TestKind::AcceptedValues { column, .. } => format!("accepted_values({column})"),
            TestKind::Relationships { column, to, field } => {
                format!("relationships({column} -> {to}.{field})")
            }
            TestKind::RowCount { min, max } => format!("row_count({min:?}..{max:?})"),
            TestKind::Sql { .. } => "sql".into(),
        }
    }

    /// A query over `table` that returns the failing rows (for row counts: one row when the
    /// count is outside the range).
    pub fn failing_rows_sql(&self, table: &str) -> String {
        let q = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
        let lit = |v: &str| format!("'{}'", v.replace('\'', "''"));
        match &self.kind {
            TestKind::NotNull { columns } => {
                let cond: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{} IS NULL", q(c)))
                    .collect();
                format!("SELECT * FROM {table} WHERE {}", cond.join(" OR "))
            }
            TestKind::Unique { columns } => {
                // Hashes first (drd-store's key hash: 8 bytes a row where the key strings can
                // be a hundred), then the real keys of the few rows whose hash repeats. A
                // collision only adds candidates, so the result is exact; grouping 7 million
                // staged TOP keys directly took 1.8 GB.
                let cols: Vec<String> = columns.iter().map(|c| q(c)).collect();
                let tcols: Vec<String> = cols.iter().map(|c| format!("drdsurv_t.{c}")).collect();
                let (cols, tcols) = (cols.join(", "), tcols.join(", "));
                format!(
                    "WITH drdsurv_dup AS (SELECT drdsurv_key_hash({cols}) AS drdsurv_h FROM {table} \
                       GROUP BY 1 HAVING count(*) > 1) \
                     SELECT {cols}, count(*) AS duplicates FROM (\
                       SELECT drdsurv_t.* FROM drdsurv_dup RIGHT SEMI JOIN {table} drdsurv_t \
                       ON drdsurv_dup.drdsurv_h = drdsurv_key_hash({tcols})) drdsurv_c \
                     GROUP BY {cols} HAVING count(*) > 1"
                )
            }
            TestKind::AcceptedValues { column, values } => {
                let vals: Vec<String> = values.iter().map(|v| lit(v)).collect();
                format!(
                    "SELECT * FROM {table} WHERE {c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({})",
                    vals.join(", "),
                    c = q(column)
                )
            }
            TestKind::Relationships { column, to, field } => format!(
                "SELECT * FROM {table} WHERE {c} IS NOT NULL AND {c} NOT IN (SELECT {f} FROM {to} WHERE {f} IS NOT NULL)",
                c = q(column),
                f = q(field)
            ),
            TestKind::RowCount { min, max } => {
                let mut cond = Vec::new();
                if let Some(m) = min {
                    cond.push(format!("n < {m}"));
                }
                if let Some(m) = max {
                    cond.push(format!("n > {m}"));
                }
                if cond.is_empty() {
                    cond.push("false".into());
                }
                format!(
                    "SELECT n FROM (SELECT count(*) AS n FROM {table}) WHERE {}",
                    cond.join(" OR ")
                )
            }
            TestKind::Sql { query } => query
                .replace("{{ this }}", table)
                .replace("{{this}}", table),
        }
    }
}

/// A model's config file.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// What the model is (shown in the ledger and docs).
    #[serde(default)]
    pub description: String,
    /// How it is stored.
    #[serde(default)]
    pub materialisation: Materialisation,
    /// The column holding the period, for `overwrite_by_period`.
    #[serde(default)]
    pub period_column: Option<String>,
    /// Data tests.
    #[serde(default)]
    pub tests: Vec<DataTest>,
}

/// One model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Name (the file name).
    pub name: String,
    /// Layer (the folder).
    pub layer: String,
    /// The SELECT.
    pub sql: String,
    /// Its config.
    pub config: ModelConfig,
    /// The `.sql` file.
    pub path: PathBuf,
    /// Other models it reads.
    pub depends_on: Vec<String>,
    /// Tables it reads that are not models (sources, reference tables).
    pub sources: Vec<String>,
}

/// Every model of a project, in an order where each model follows the models it reads.
#[derive(Debug, Clone)]
pub struct Project {
    /// Models by name.
    pub models: BTreeMap<String, Model>,
    /// Run order.
    pub order: Vec<String>,
}

impl Project {
    /// Loads `dir/<layer>/<model>.sql` and `.toml` for every layer folder present.
    pub fn load(dir: &Path) -> Result<Project, ModelError> {
        let mut found: Vec<(String, String, PathBuf)> = Vec::new();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io { path, source }
        };
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let layer_dir = entry.map_err(io(dir))?.path();
            if !layer_dir.is_dir() {
                continue;
            }
            let layer = layer_dir
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            if !LAYERS.contains(&layer.as_str()) {
                return Err(ModelError::Invalid {
                    path: layer_dir,
                    message: format!("'{layer}' is not a layer ({})", LAYERS.join(", ")),
                });
            }
            for f in std::fs::read_dir(&layer_dir).map_err(io(&layer_dir))? {
                let p = f.map_err(io(&layer_dir))?.path();
                if p.extension().is_some_and(|x| x == "sql") {
                    let name = p
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default()
                        .to_string();
                    found.push((layer.clone(), name, p));
                }
            }
        }
        let mut sources = Vec::new();
        for (layer, name, path) in &found {
            let sql = std::fs::read_to_string(path).map_err(io(path))?;
            let cfg_path = path.with_extension("toml");
            let config = match std::fs::read_to_string(&cfg_path) {
                Ok(text) => toml::from_str(&text).map_err(|e| ModelError::Invalid {
                    path: cfg_path.clone(),
                    message: e.to_string(),
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ModelError::Invalid {
                        path: cfg_path,
                        message: "every model needs its config file beside it".into(),
                    });
                }
                Err(e) => return Err(io(&cfg_path)(e)),
            };
            let config: ModelConfig = config;
            match (&config.materialisation, &config.period_column) {
                (Materialisation::OverwriteByPeriod, None) => {
                    return Err(ModelError::Invalid {
                        path: cfg_path,
                        message: "materialisation overwrite_by_period needs period_column, the column holding the run's period".into(),
                    });
                }
                (Materialisation::Table | Materialisation::View, Some(_)) => {
                    return Err(ModelError::Invalid {
                        path: cfg_path,
                        message: "period_column is only for materialisation overwrite_by_period"
                            .into(),
                    });
                }
                _ => {}
            }
            sources.push(Model {
                name: name.clone(),
                layer: layer.clone(),
                sql,
                config,
                path: path.clone(),
                depends_on: Vec::new(),
                sources: Vec::new(),
            });
        }
        Project::from_models(sources)
    }

    /// Builds a project from models (their `depends_on` and `sources` are worked out here).
    pub fn from_models(list: Vec<Model>) -> Result<Project, ModelError> {
        let mut models: BTreeMap<String, Model> = BTreeMap::new();
        for m in list {
            if let Some(other) = models.get(&m.name) {
                return Err(ModelError::Invalid {
                    path: m.path.clone(),
                    message: format!(
                        "model '{}' is also defined in {}",
                        m.name,
                        other.path.display()
                    ),
                });
            }
            models.insert(m.name.clone(), m);
        }
        let names: BTreeSet<String> = models.keys().cloned().collect();
        for m in models.values_mut() {
            let refs = table_references(&m.sql).map_err(|message| ModelError::Invalid {
                path: m.path.clone(),
                message,
            })?;
            for r in refs {
                if r == m.name {
                    return Err(ModelError::Cycle {
                        cycle: vec![m.name.clone(), m.name.clone()],
                    });
                }
                if names.contains(&r) {
                    m.depends_on.push(r);
                } else {
                    m.sources.push(r);
                }
            }
        }
        let order = topological_order(&models)?;
        Ok(Project { models, order })
    }

    /// The models a pipeline's selection runs, with every model upstream of them, in run
    /// order. Patterns: a model name, `<layer>/*`, or `*`.
    pub fn select(&self, patterns: &[String]) -> Result<Vec<String>, ModelError> {
        let mut chosen: BTreeSet<String> = BTreeSet::new();
        for p in patterns {
            let before = chosen.len();
            if p == "*" {
                chosen.extend(self.models.keys().cloned());
            } else if let Some(layer) = p.strip_suffix("/*") {
                chosen.extend(
                    self.models
                        .values()
                        .filter(|m| m.layer == layer)
                        .map(|m| m.name.clone()),
                );
            } else if self.models.contains_key(p) {
                chosen.insert(p.clone());
            }
            if chosen.len() == before && !self.matches_any(p) {
                return Err(ModelError::NoMatch(p.clone()));
            }
        }
        // Upstream closure.
        let mut stack: Vec<String> = chosen.iter().cloned().collect();
        while let Some(n) = stack.pop() {
            if let Some(m) = self.models.get(&n) {
                for d in &m.depends_on {
                    if chosen.insert(d.clone()) {
                        stack.push(d.clone());
                    }
                }
            }
        }
        Ok(self
            .order
            .iter()
            .filter(|n| chosen.contains(*n))
            .cloned()
            .collect())
    }

    fn matches_any(&self, p: &str) -> bool {
        p == "*"
            || self.models.contains_key(p)
            || p.strip_suffix("/*")
                .is_some_and(|l| self.models.values().any(|m| m.layer == l))
    }
}

/// The tables a SELECT reads (CTE names excluded), as written (lower-cased unless quoted).
pub fn table_references(sql: &str) -> Result<Vec<String>, String> {
    let mut stmts = DFParser::parse_sql(sql).map_err(|e| format!("not valid SQL: {e}"))?;
    if stmts.len() != 1 {
        return Err(format!(
            "a model holds exactly one SELECT, found {} statements",
            stmts.len()
        ));
    }
    let Some(stmt) = stmts.pop_front() else {
        return Err("empty model".into());
    };
    match &stmt {
        DFStatement::Statement(s)
            if matches!(**s, datafusion::sql::sqlparser::ast::Statement::Query(_)) => {}
        _ => {
            return Err("a model must be a SELECT (a query), not another kind of statement".into());
        }
    }
    let (tables, _ctes) = resolve_table_references(&stmt, true).map_err(|e| e.to_string())?;
    let mut out: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Kahn's algorithm with the names in order for a stable result; on a cycle, one cycle is
/// found by walking the remaining dependencies.
fn topological_order(models: &BTreeMap<String, Model>) -> Result<Vec<String>, ModelError> {
    let mut indegree: BTreeMap<&str, usize> = models.keys().map(|k| (k.as_str(), 0)).collect();
    for m in models.values() {
        if let Some(d) = indegree.get_mut(m.name.as_str()) {
            *d = m.depends_on.len();
        }
    }
    // Ready models run layer by layer, then by name, so the order is stable and readable.
    let key = |n: &str| {
        let layer = models.get(n).map_or("", |m| m.layer.as_str());
        (
            LAYERS
                .iter()
                .position(|l| *l == layer)
                .unwrap_or(LAYERS.len()),
            n.to_string(),
        )
    };
    let mut ready: BTreeSet<(usize, String)> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| key(k))
        .collect();
    let mut order = Vec::with_capacity(models.len());
    while let Some((_, n)) = ready.pop_first() {
        let n = n.as_str();
        order.push(n.to_string());
        for m in models.values() {
            if m.depends_on.iter().any(|d| d == n)
                && let Some(d) = indegree.get_mut(m.name.as_str())
            {
                *d -= 1;
                if *d == 0 {
                    ready.insert(key(&m.name));
                }
            }
        }
    }
    if order.len() == models.len() {
        return Ok(order);
    }
    // Walk from any model left over along dependencies that are also left over.
    let left: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d > 0)
        .map(|(k, _)| *k)
        .collect();
    let mut path: Vec<&str> = Vec::new();
    let mut at = *left.iter().next().unwrap_or(&"");
    loop {
        if let Some(i) = path.iter().position(|p| *p == at) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(at.to_string());
            return Err(ModelError::Cycle { cycle });
        }
        path.push(at);
        let next = models
            .get(at)
            .and_then(|m| m.depends_on.iter().find(|d| left.contains(d.as_str())));
        match next {
            Some(n) => at = n.as_str(),
            None => {
                return Err(ModelError::Cycle {
                    cycle: path.iter().map(|s| s.to_string()).collect(),
                });
            }
        }
    }
}
