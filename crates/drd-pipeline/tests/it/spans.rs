//! A run's OpenTelemetry spans and metrics, through the SDK's in-memory exporters: one `run`
//! span, a `model` span per model under it and a `test` span per data test under its model,
//! each carrying run_id, pipeline, period and model; a late run gets a span event; run
//! duration, rows and test failures arrive as metrics.

use drd_model::period::Period;
use drd_pipeline::run::{RunOptions, run_models_with};
use drd_store::Store;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

use crate::run::{COUNTS_BAD, COUNTS_OK, Dir, project};

fn attr(s: &SpanData, k: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == k)
        .map(|kv| kv.value.to_string())
}

/// Sum of a u64 counter, or of an f64 histogram's count, by metric name.
fn metric(exporter: &InMemoryMetricExporter, name: &str) -> Option<f64> {
    let mut out = None;
    for rm in exporter.get_finished_metrics().unwrap() {
        for sm in rm.scope_metrics() {
            for m in sm.metrics().filter(|m| m.name() == name) {
                // Only this test's pipeline: other tests of the binary run pipelines too.
                fn ours<'a>(mut a: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> bool {
                    a.any(|kv| kv.key.as_str() == "pipeline" && kv.value.as_str() == "nq")
                }
                let v = match m.data() {
                    AggregatedMetrics::U64(MetricData::Sum(s)) => s
                        .data_points()
                        .filter(|p| ours(p.attributes()))
                        .map(|p| p.value() as f64)
                        .sum(),
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => h
                        .data_points()
                        .filter(|p| ours(p.attributes()))
                        .map(|p| p.count() as f64)
                        .sum(),
                    other => panic!("{name}: unexpected {other:?}"),
                };
                out = Some(v);
            }
        }
    }
    out
}

#[test]
fn a_run_emits_its_span_tree_and_metrics() {
    let spans = InMemorySpanExporter::default();
    let tracer = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let metrics = InMemoryMetricExporter::default();
    let meter = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(drd_telemetry::otel_layer(&tracer))
        .with(drd_telemetry::metrics_layer(meter.clone()));
    let store = Store::open("memory://spans").unwrap();
    let (ok, bad) = (Dir::new("spans-ok"), Dir::new("spans-bad"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let period = Period::Quarter(2026, 3);
    // The global default, not a thread-scoped one: tracing caches each callsite's interest
    // process-wide, and the other tests of this binary reach the same callsites from threads
    // with no subscriber, which could leave a scoped subscriber without some spans. Spans of
    // other tests land here too; the checks below pick this test's runs by id.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let (good, failed) = {
        let p = project(&ok, COUNTS_OK);
        let order = p.select(&["*".into()]).unwrap();
        let good = rt
            .block_on(run_models_with(
                &store,
                &p,
                &order,
                "nq",
                period,
                "run-ok",
                &RunOptions::default(),
            ))
            .unwrap();
        // A blocking test fails, and a zero deadline makes the run late.
        let p = project(&bad, COUNTS_BAD);
        let late = RunOptions {
            trigger: "schedule".into(),
            deadline: Some(std::time::Duration::ZERO),
            memory_limit: None,
            ..Default::default()
        };
        let failed = rt
            .block_on(run_models_with(
                &store, &p, &order, "nq", period, "run-bad", &late,
            ))
            .unwrap();
        (good, failed)
    };
    assert_eq!(
        (good.status.as_str(), failed.status.as_str()),
        ("committed", "failed")
    );
    tracer.force_flush().unwrap();
    meter.force_flush().unwrap();
    let all = spans.get_finished_spans().unwrap();

    // The committed run: run > 3 models > 2 tests, every span naming the run.
    let run = |id: &str| {
        let r: Vec<&SpanData> = all
            .iter()
            .filter(|s| s.name == "run" && attr(s, "run_id").as_deref() == Some(id))
            .collect();
        assert_eq!(r.len(), 1, "{id}: {all:#?}");
        r[0]
    };
    let children = |parent: &SpanData, name: &str| -> Vec<&SpanData> {
        all.iter()
            .filter(|s| s.name == name && s.parent_span_id == parent.span_context.span_id())
            .collect()
    };
    let r = run("run-ok");
    assert_eq!(attr(r, "pipeline").as_deref(), Some("nq"));
    assert_eq!(attr(r, "period").as_deref(), Some("2026Q3"));
    assert_eq!(attr(r, "status").as_deref(), Some("committed"));
    let models = children(r, "model");
    let names: Vec<String> = models.iter().map(|m| attr(m, "model").unwrap()).collect();
    assert_eq!(names, vec!["stg_nsp", "counts", "ind"]);
    for m in &models {
        for k in ["run_id", "pipeline", "period"] {
            assert_eq!(attr(m, k), attr(r, k), "model span {k}");
        }
        assert_eq!(attr(m, "status").as_deref(), Some("ok"));
    }
    assert_eq!(attr(models[1], "rows").as_deref(), Some("2"));
    let tests: Vec<(String, String, String)> = models
        .iter()
        .flat_map(|m| children(m, "test"))
        .map(|t| {
            (
                attr(t, "model").unwrap(),
                attr(t, "test").unwrap(),
                attr(t, "failures").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tests,
        vec![
            ("counts".into(), "not_null(area)".into(), "0".into()),
            ("ind".into(), "unique(area)".into(), "0".into())
        ]
    );
    assert!(r.events.iter().all(|e| !e.name.contains("late")));

    // The failed, late run: the blocking test's span counts its failing row, the run stops
    // there, and the run span carries the late event.
    let r = run("run-bad");
    assert_eq!(attr(r, "status").as_deref(), Some("failed"));
    assert_eq!(attr(r, "late").as_deref(), Some("true"));
    assert_eq!(attr(r, "trigger").as_deref(), Some("schedule"));
    let models = children(r, "model");
    assert_eq!(models.len(), 2, "the run stops at the failing test");
    let t = children(models[1], "test");
    assert_eq!(attr(t[0], "failures").as_deref(), Some("1"));
    assert!(
        r.events.iter().any(|e| e.name.contains("marked late")),
        "{:?}",
        r.events
    );

    // Metrics: two run durations, rows of both runs (1 + 2 + 2, then 1 + 2), one failure, one
    // late run.
    assert_eq!(metric(&metrics, "drdsurv_run_duration_seconds"), Some(2.0));
    assert_eq!(metric(&metrics, "drdsurv_model_rows"), Some(8.0));
    assert_eq!(metric(&metrics, "drdsurv_test_failures"), Some(1.0));
    assert_eq!(metric(&metrics, "drdsurv_runs_late"), Some(1.0));
}
