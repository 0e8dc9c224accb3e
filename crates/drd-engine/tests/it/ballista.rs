//! drdsurv's functions on Ballista standalone (an in-process scheduler and executor) give the
//! same rows as embedded DataFusion, over Parquet fixtures registered the same way in both
//! contexts: the shipped `alert_signals` model (the EARS and Farrington window functions), and
//! the DSR core of `ind_death_rates` (the `dsr` aggregate and its Dobson limits), with the
//! functions found by name on the executor.
//!
//! The whole pipeline on Ballista standalone, every model against embedded, is the e2e test
//! `tests/e2e/ballista.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use drd_engine::models::Project;

/// Fixture tables, made with SQL and written as Parquet (one folder per table).
const FIXTURES: &[(&str, &str)] = &[
    (
        "mart_areas",
        "SELECT 'P' || CAST(p AS VARCHAR) AS partnership_code, 'P' || CAST(p AS VARCHAR) AS area_code,
                'Partnership ' || CAST(p AS VARCHAR) AS area_name, 'partnership' AS area_type
         FROM unnest(range(1, 7)) AS t(p)
         UNION ALL
         SELECT 'P' || CAST(p AS VARCHAR), CASE WHEN p <= 3 THEN 'R1' ELSE 'R2' END, 'Region', 'region'
         FROM unnest(range(1, 7)) AS t(p)
         UNION ALL
         SELECT 'P' || CAST(p AS VARCHAR), 'E92000001', 'England', 'england'
         FROM unnest(range(1, 7)) AS t(p)",
    ),
    (
        "ref_esp2013",
        "SELECT make_array('0-4','5-9','10-14','15-19','20-24','25-29','30-34','35-39','40-44','45-49',
                           '50-54','55-59','60-64','65-69','70-74','75-79','80-84','85-89','90+')[i] AS age_band,
                CAST(make_array(5000,5500,5500,5500,6000,6000,6500,7000,7000,7000,7000,6500,6000,5500,
                                5000,4000,2500,1500,1000)[i] AS BIGINT) AS weight
         FROM unnest(range(1, 20)) AS t(i)",
    ),
    (
        "mart_population",
        "SELECT a.area_code, CAST(y AS INT) AS year, s.sex, e.age_band,
                CAST(2000 + (y * 37 + length(a.area_code) * 101 + length(e.age_band) * 53
                             + ascii(substr(a.area_code, 2, 1)) * 17) % 3000 AS BIGINT)
                  * CASE a.area_type WHEN 'partnership' THEN 1 WHEN 'region' THEN 3 ELSE 6 END AS population
         FROM (SELECT DISTINCT area_code, area_type FROM mart_areas) a
         CROSS JOIN unnest(range(2019, 2026)) AS t(y)
         CROSS JOIN (VALUES ('male'), ('female')) AS s(sex)
         CROSS JOIN ref_esp2013 e",
    ),
    (
        "mart_deaths",
        "SELECT 'P' || CAST(i % 6 + 1 AS VARCHAR) AS partnership_code,
                CASE i % 3 WHEN 0 THEN 'male' WHEN 1 THEN 'female' ELSE 'unknown' END AS sex,
                make_array('15-19','20-24','25-29','30-34','35-39','40-44','45-49','50-54','55-59','60-64')[i * 7 % 10 + 1] AS age_band,
                CAST(2019 + i * 13 % 7 AS INT) AS registration_year,
                CAST(2019 + i * 13 % 7 - i % 2 AS INT) AS occurrence_year,
                i % 17 = 0 AS still_open,
                i % 5 <> 0 AS ons_drug_poisoning,
                i % 5 > 1 AS ons_drug_misuse
         FROM unnest(range(0, 4000)) AS t(i)
         WHERE i % 6 <> 5 OR i < 60",
    ),
    (
        "run_windows",
        "SELECT * FROM (VALUES
             ('deaths', 'current', '2023-2025', DATE '2023-01-01', DATE '2025-12-31', 2023, 2025),
             ('deaths', 'previous', '2022-2024', DATE '2022-01-01', DATE '2024-12-31', 2022, 2024)
         ) AS t(kind, which, label, window_start, window_end, first_year, last_year)",
    ),
    (
        "alert_series",
        "SELECT r || '/nitazenes' AS series_id, r AS region_code, 'Region ' || r AS region_name,
                'nitazenes' AS substance_group,
                CAST(CAST(DATE '2020-01-06' AS INT) + 7 * k AS DATE) AS week_start,
                to_char(CAST(CAST(DATE '2020-01-06' AS INT) + 7 * k AS DATE), '%G-W%V') AS week,
                CAST(CASE WHEN r = 'R1' AND k >= 300 THEN 9 + k % 3 ELSE (k * 7 + length(r)) % 4 END AS BIGINT) AS deaths
         FROM unnest(range(0, 304)) AS t(k)
         CROSS JOIN (VALUES ('R1'), ('R2')) AS s(r)",
    ),
    (
        "run_params",
        "SELECT DATE '2025-10-26' AS period_end, '2025Q4' AS period, 'run-ballista' AS run_id",
    ),
];

/// Writes the fixtures under `dir` and registers each as a Parquet listing table in `ctx`.
async fn write_fixtures(dir: &Path) {
    let ctx = drd_engine::new_context();
    for (name, sql) in FIXTURES {
        let out = dir.join(name);
        std::fs::create_dir_all(&out).unwrap();
        ctx.sql(&format!(
            "COPY ({sql}) TO '{}/' STORED AS PARQUET",
            out.display()
        ))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        register(&ctx, dir, name).await;
    }
}

async fn register(ctx: &SessionContext, dir: &Path, name: &str) {
    ctx.register_parquet(
        name.to_string(),
        format!("{}/", dir.join(name).display()),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
}

/// Rows as (text of the non-float columns, float columns), sorted by the text.
fn rows(batches: &[RecordBatch]) -> Vec<(String, Vec<Option<f64>>)> {
    let mut out = Vec::new();
    for b in batches {
        let text: Vec<_> = b
            .columns()
            .iter()
            .map(|c| datafusion::arrow::compute::cast(c, &DataType::Utf8).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            let mut key = Vec::new();
            let mut nums = Vec::new();
            for (i, c) in b.columns().iter().enumerate() {
                if c.data_type() == &DataType::Float64 {
                    let f = c.as_primitive::<Float64Type>();
                    nums.push((!f.is_null(r)).then(|| f.value(r)));
                } else {
                    let t = text[i].as_string::<i32>();
                    key.push(if t.is_null(r) { "NULL" } else { t.value(r) }.to_string());
                }
            }
            out.push((key.join("|"), nums));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_same(model: &str, embedded: &[RecordBatch], ballista: &[RecordBatch]) -> usize {
    let (e, b) = (rows(embedded), rows(ballista));
    assert_eq!(e.len(), b.len(), "{model}: row counts differ");
    for ((ek, ev), (bk, bv)) in e.iter().zip(&b) {
        assert_eq!(ek, bk, "{model}");
        for (x, y) in ev.iter().zip(bv) {
            match (x, y) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1e-300),
                    "{model} {ek}: embedded {x}, Ballista {y}"
                ),
                (None, None) => {}
                _ => panic!("{model} {ek}: embedded {x:?}, Ballista {y:?}"),
            }
        }
    }
    e.len()
}

#[test]
fn alert_model_and_dsr_on_ballista_standalone_equal_embedded_datafusion() {
    // Planning and (de)serialising these plans recurses deeply; debug builds need more than
    // tokio's default 2 MiB per worker. The body runs on a worker, not the test thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(64 << 20)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::spawn(compare_models()).await.unwrap() });
}

async fn compare_models() {
    let dir = tempfile::tempdir().unwrap();
    write_fixtures(dir.path()).await;
    let project =
        Project::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/models")).unwrap();
    let embedded = drd_engine::new_context();
    let ballista = drd_engine::ballista::standalone_context().await.unwrap();
    for (name, _) in FIXTURES {
        register(&embedded, dir.path(), name).await;
        register(&ballista, dir.path(), name).await;
    }
    // The DSR of drug-misuse deaths per area and sex, 2023-2025, with its Dobson limits: the
    // core of ind_death_rates, here over small fixtures (the whole model runs on Ballista in
    // tests/e2e/ballista.rs).
    let dsr = "WITH d AS (
            SELECT a.area_code, d.sex, d.age_band, count(*) AS deaths
            FROM mart_deaths d JOIN mart_areas a ON a.partnership_code = d.partnership_code
            WHERE d.ons_drug_misuse AND d.registration_year BETWEEN 2023 AND 2025
            GROUP BY a.area_code, d.sex, d.age_band),
        p AS (
            SELECT area_code, sex, age_band, sum(population) AS population
            FROM mart_population WHERE year BETWEEN 2023 AND 2025
            GROUP BY area_code, sex, age_band)
        SELECT p.area_code, p.sex, sum(coalesce(d.deaths, 0)) AS deaths,
               dsr(CAST(coalesce(d.deaths, 0) AS DOUBLE), CAST(p.population AS DOUBLE), CAST(e.weight AS DOUBLE)) AS value,
               dsr_lower(CAST(coalesce(d.deaths, 0) AS DOUBLE), CAST(p.population AS DOUBLE), CAST(e.weight AS DOUBLE), 0.95) AS lower95,
               dsr_upper(CAST(coalesce(d.deaths, 0) AS DOUBLE), CAST(p.population AS DOUBLE), CAST(e.weight AS DOUBLE), 0.95) AS upper95
        FROM p JOIN ref_esp2013 e ON e.age_band = p.age_band
        LEFT JOIN d ON d.area_code = p.area_code AND d.sex = p.sex AND d.age_band = p.age_band
        GROUP BY p.area_code, p.sex";
    let mut counts = BTreeMap::new();
    for (name, sql) in [
        (
            "alert_signals",
            project.models["alert_signals"].sql.as_str(),
        ),
        ("dsr per area", dsr),
    ] {
        let e = embedded.sql(sql).await.unwrap().collect().await.unwrap();
        let b = ballista
            .sql(sql)
            .await
            .unwrap_or_else(|err| panic!("{name} on Ballista: {err}"))
            .collect()
            .await
            .unwrap_or_else(|err| panic!("{name} on Ballista: {err}"));
        counts.insert(name, assert_same(name, &e, &b));
        if name == "dsr per area" {
            // Real rates and suppressed ones (under 10 deaths) are both compared.
            let r = rows(&e);
            assert!(r.iter().any(|(_, v)| v[0].is_some()), "{r:?}");
            assert!(r.iter().any(|(_, v)| v[0].is_none()), "{r:?}");
        }
    }
    assert!(counts["dsr per area"] >= 18, "{counts:?}");
    assert!(
        counts["alert_signals"] >= 1,
        "no signal to compare: {counts:?}"
    );
}
