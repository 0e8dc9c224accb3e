//! The model project: loading, dependency order, cycles, selection and data-test queries.

use std::path::{Path, PathBuf};

use drd_engine::models::{DataTest, ModelError, Project, TestKind, table_references};

/// A throwaway project folder.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("drdsurv-models-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn model(&self, layer: &str, name: &str, sql: &str, toml: &str) -> &Dir {
        let l = self.0.join(layer);
        std::fs::create_dir_all(&l).unwrap();
        std::fs::write(l.join(format!("{name}.sql")), sql).unwrap();
        std::fs::write(l.join(format!("{name}.toml")), toml).unwrap();
        self
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn models_run_after_the_models_they_read() {
    let d = Dir::new("order");
    d.model("staging", "stg_deaths", "SELECT * FROM sources_coroner", "")
        .model(
            "marts",
            "deaths",
            "WITH x AS (SELECT * FROM stg_deaths) SELECT * FROM x JOIN ref_substances r ON true",
            "materialisation = \"table\"",
        )
        .model(
            "indicators",
            "ind_dsr",
            "SELECT area, count(*) FROM deaths GROUP BY area",
            "",
        )
        .model(
            "alerts",
            "weekly",
            "SELECT * FROM stg_deaths",
            "materialisation = \"view\"",
        );
    let p = Project::load(d.path()).unwrap();
    assert_eq!(p.order, vec!["stg_deaths", "deaths", "ind_dsr", "weekly"]);
    let deaths = &p.models["deaths"];
    assert_eq!(deaths.depends_on, vec!["stg_deaths"]);
    assert_eq!(
        deaths.sources,
        vec!["ref_substances"],
        "the CTE x is not a table"
    );
    assert_eq!(p.models["stg_deaths"].sources, vec!["sources_coroner"]);
    // Selecting an indicator brings its upstream models, in order.
    assert_eq!(
        p.select(&["ind_dsr".into()]).unwrap(),
        vec!["stg_deaths", "deaths", "ind_dsr"]
    );
    assert_eq!(
        p.select(&["alerts/*".into()]).unwrap(),
        vec!["stg_deaths", "weekly"]
    );
    assert!(matches!(
        p.select(&["nope".into()]),
        Err(ModelError::NoMatch(_))
    ));
}

#[test]
fn a_cycle_is_refused_naming_it() {
    let d = Dir::new("cycle");
    d.model("marts", "a", "SELECT * FROM b", "")
        .model("marts", "b", "SELECT * FROM c", "")
        .model("marts", "c", "SELECT * FROM a JOIN src ON true", "")
        .model("marts", "d", "SELECT * FROM src", "");
    let e = Project::load(d.path()).unwrap_err().to_string();
    assert!(e.starts_with("the models form a cycle: "), "{e}");
    for m in ["a", "b", "c"] {
        assert!(e.contains(m), "{e}");
    }
    assert!(!e.contains(" d"), "{e}");
    assert_eq!(e.matches("->").count(), 3, "{e}");
}

#[test]
fn bad_models_name_the_file() {
    let d = Dir::new("bad");
    d.model("marts", "two", "SELECT 1; SELECT 2", "");
    let e = Project::load(d.path()).unwrap_err().to_string();
    assert!(
        e.contains("two.sql") && e.contains("exactly one SELECT"),
        "{e}"
    );
    let d = Dir::new("bad2");
    d.model("marts", "m", "SELECT 1", "materialization = \"table\"");
    let e = Project::load(d.path()).unwrap_err().to_string();
    assert!(e.contains("m.toml") && e.contains("materialization"), "{e}");
    let d = Dir::new("bad3");
    d.model("extras", "m", "SELECT 1", "");
    let e = Project::load(d.path()).unwrap_err().to_string();
    assert!(e.contains("'extras' is not a layer"), "{e}");
    assert!(
        table_references("DELETE FROM t")
            .unwrap_err()
            .contains("must be a SELECT")
    );
    let d = Dir::new("bad4");
    d.model(
        "marts",
        "m",
        "SELECT 1",
        "[[tests]]\ntype = \"not_null\"\ncolumn = [\"x\"]\n",
    );
    let e = Project::load(d.path()).unwrap_err().to_string();
    assert!(e.contains("m.toml") && e.contains("column"), "{e}");
}

#[tokio::test]
async fn data_tests_return_the_failing_rows() {
    let ctx = drd_engine::new_context();
    ctx.sql("CREATE TABLE out(area VARCHAR, sex VARCHAR, n INT) AS VALUES ('E1', 'male', 3), ('E1', 'male', 4), (NULL, 'female', 1), (NULL, 'female', 5), ('E9', 'other', 2)")
        .await
        .unwrap();
    ctx.sql("CREATE TABLE areas(code VARCHAR) AS VALUES ('E1'), ('E2')")
        .await
        .unwrap();
    let config: drd_engine::models::ModelConfig = toml::from_str(
        r#"
[[tests]]
type = "not_null"
columns = ["area"]
blocking = true
[[tests]]
type = "unique"
columns = ["area", "sex"]
severity = "warn"
[[tests]]
type = "accepted_values"
column = "sex"
values = ["male", "female"]
[[tests]]
type = "relationships"
column = "area"
to = "areas"
field = "code"
[[tests]]
type = "row_count"
min = 6
[[tests]]
name = "n positive"
type = "sql"
query = "SELECT * FROM {{ this }} WHERE n <= 1"
"#,
    )
    .unwrap();
    let failing = |t: &DataTest| {
        let sql = t.failing_rows_sql("out");
        let ctx = ctx.clone();
        async move { ctx.sql(&sql).await.unwrap().count().await.unwrap() }
    };
    let mut got = Vec::new();
    for t in &config.tests {
        got.push((t.label(), failing(t).await));
    }
    assert_eq!(
        got,
        vec![
            ("not_null(area)".to_string(), 2),
            // Two repeated keys, one of them with a NULL part (NULLs group together).
            ("unique(area, sex)".to_string(), 2),
            ("accepted_values(sex)".to_string(), 1),
            ("relationships(area -> areas.code)".to_string(), 1),
            ("row_count(Some(6)..None)".to_string(), 1),
            ("n positive".to_string(), 1),
        ]
    );
    assert!(config.tests[0].blocking);
    assert!(matches!(
        config.tests[4].kind,
        TestKind::RowCount {
            min: Some(6),
            max: None
        }
    ));
}
