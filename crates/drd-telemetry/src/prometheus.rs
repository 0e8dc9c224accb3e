//! The Prometheus side of metrics: the same `histogram.`/`counter.`/`monotonic_counter.`
//! events that become OpenTelemetry metrics are also kept in this process, and
//! [`render`] writes them in the Prometheus text exposition format (version 0.0.4) for
//! `drdsurv serve --http`'s `/metrics`.
//!
//! Labels are the event's string fields other than `message` (for example `outcome`,
//! `pipeline`, `source`): events only carry low-cardinality values there, never row content.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};

/// Upper bounds of the histogram buckets, in the metric's unit (seconds for durations).
const BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

type Labels = Vec<(String, String)>;

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Registry {
    counters: BTreeMap<String, BTreeMap<Labels, f64>>,
    /// Up-down counters: Prometheus gauges.
    gauges: BTreeMap<String, BTreeMap<Labels, f64>>,
    histograms: BTreeMap<String, BTreeMap<Labels, Histogram>>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Default)]
struct EventVisitor {
    metrics: Vec<(Kind, String, f64)>,
    labels: Labels,
}

impl EventVisitor {
    fn number(&mut self, field: &Field, v: f64) {
        let name = field.name();
        if let Some(n) = name.strip_prefix("monotonic_counter.") {
            self.metrics.push((Kind::Counter, n.to_string(), v));
        } else if let Some(n) = name.strip_prefix("counter.") {
            self.metrics.push((Kind::Gauge, n.to_string(), v));
        } else if let Some(n) = name.strip_prefix("histogram.") {
            self.metrics.push((Kind::Histogram, n.to_string(), v));
        }
    }
}

impl Visit for EventVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.number(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value as f64);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value as f64);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() != "message" && !field.name().contains('.') {
            self.labels
                .push((field.name().to_string(), value.to_string()));
        }
    }
    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

/// A `tracing` layer that records metric events for [`render`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PrometheusLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PrometheusLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let has_metric = event.metadata().fields().iter().any(|f| {
            let n = f.name();
            n.starts_with("monotonic_counter.")
                || n.starts_with("counter.")
                || n.starts_with("histogram.")
        });
        if !has_metric {
            return;
        }
        let mut v = EventVisitor::default();
        event.record(&mut v);
        v.labels.sort();
        record(&v.metrics, &v.labels);
    }
}

fn record(metrics: &[(Kind, String, f64)], labels: &Labels) {
    let mut r = registry()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (kind, name, value) in metrics {
        match kind {
            Kind::Counter => {
                *r.counters
                    .entry(name.clone())
                    .or_default()
                    .entry(labels.clone())
                    .or_default() += value;
            }
            Kind::Gauge => {
                *r.gauges
                    .entry(name.clone())
                    .or_default()
                    .entry(labels.clone())
                    .or_default() += value;
            }
            Kind::Histogram => {
                let h = r
                    .histograms
                    .entry(name.clone())
                    .or_default()
                    .entry(labels.clone())
                    .or_default();
                h.count += 1;
                h.sum += value;
                for (i, le) in BUCKETS.iter().enumerate() {
                    if value <= le {
                        h.counts[i] += 1;
                    }
                }
            }
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Every metric recorded in this process so far, in the Prometheus text format, with
/// `drdsurv_build_info{version}` first.
pub fn render(version: &str) -> String {
    let r = registry()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP drdsurv_build_info The running drdsurv's version."
    );
    let _ = writeln!(out, "# TYPE drdsurv_build_info gauge");
    let _ = writeln!(
        out,
        "drdsurv_build_info{{version=\"{}\"}} 1",
        escape(version)
    );
    for (name, series) in &r.counters {
        let _ = writeln!(out, "# TYPE {name}_total counter");
        for (labels, v) in series {
            let _ = writeln!(
                out,
                "{name}_total{} {}",
                label_text(labels, None),
                number(*v)
            );
        }
    }
    for (name, series) in &r.gauges {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, v) in series {
            let _ = writeln!(out, "{name}{} {}", label_text(labels, None), number(*v));
        }
    }
    for (name, series) in &r.histograms {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (labels, h) in series {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    label_text(labels, Some(("le", number(*le)))),
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                label_text(labels, Some(("le", "+Inf".into()))),
                h.count
            );
            let _ = writeln!(
                out,
                "{name}_sum{} {}",
                label_text(labels, None),
                number(h.sum)
            );
            let _ = writeln!(out, "{name}_count{} {}", label_text(labels, None), h.count);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn events_become_prometheus_series() {
        let sub = tracing_subscriber::registry().with(PrometheusLayer);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(
                monotonic_counter.t_queries = 1u64,
                outcome = "ok",
                rows = 7u64,
                "x"
            );
            tracing::info!(monotonic_counter.t_queries = 2u64, outcome = "ok", "x");
            tracing::info!(monotonic_counter.t_queries = 1u64, outcome = "timeout", "x");
            tracing::info!(histogram.t_seconds = 0.5f64, "x");
            tracing::info!(histogram.t_seconds = 7.0f64, "x");
            tracing::info!(counter.t_open = 3i64, "x");
            tracing::info!(counter.t_open = -1i64, "x");
            tracing::info!(rows = 5u64, "not a metric");
        });
        let text = render("9.9.9");
        assert!(
            text.contains("drdsurv_build_info{version=\"9.9.9\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("t_queries_total{outcome=\"ok\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("t_queries_total{outcome=\"timeout\"} 1\n"),
            "{text}"
        );
        // The bucket counts are cumulative.
        assert!(text.contains("t_seconds_bucket{le=\"0.1\"} 0\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.25\"} 0\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.5\"} 1\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"10\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_sum 7.5\n"), "{text}");
        assert!(text.contains("t_seconds_count 2\n"), "{text}");
        assert!(text.contains("t_open 2\n"), "{text}");
        assert!(!text.contains("rows"), "{text}");
    }
}
