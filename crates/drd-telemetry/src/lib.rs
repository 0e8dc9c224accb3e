//! # drd-telemetry: logging set up once for every drdsurv command
//!
//! [`init`] installs a `tracing` subscriber: human-readable lines on standard error by default,
//! or one JSON object per event with [`LogFormat::Json`]. `RUST_LOG` filters as usual
//! (default `info`, with dependencies at `warn`). [`otel_layer`] turns the same spans into
//! OpenTelemetry spans for any SDK exporter, and [`metrics_layer`] turns events with metric
//! fields into OpenTelemetry metrics (tests use the in-memory exporters). When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, [`init`] exports both over OTLP (HTTP/protobuf or
//! gRPC, chosen by `OTEL_EXPORTER_OTLP_PROTOCOL`); otherwise export is off. The same metric
//! events are always kept in-process for Prometheus ([`prometheus::render`], served at
//! `/metrics`). Binaries never configure tracing themselves.
//!
//! Log messages are constant strings with values in fields, and never carry a row's content
//! (docs/style.md): identifiers must not reach a log.
//!
//! ```
//! let _telemetry = drd_telemetry::init(drd_telemetry::LogFormat::Human).unwrap();
//! tracing::info!(files = 3, "generated");
//! ```

pub mod prometheus;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Parses `human` or `json`.
    pub fn parse(s: &str) -> Result<LogFormat, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(Error::Format(other.to_string())),
        }
    }
}

/// Telemetry set-up errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An unknown `--log-format`.
    #[error("unknown log format '{0}': expected human or json")]
    Format(String),
    /// `RUST_LOG` did not parse.
    #[error(
        "RUST_LOG is not a valid filter ({0}); e.g. RUST_LOG=info or RUST_LOG=drd_ingest=debug"
    )]
    Filter(String),
    /// A subscriber was already installed.
    #[error("logging was already initialised: {0}")]
    AlreadySet(String),
    /// The OTLP exporter could not be built from the `OTEL_*` variables.
    #[error("OpenTelemetry export is not set up ({0}); check OTEL_EXPORTER_OTLP_ENDPOINT")]
    Otlp(String),
}

/// What [`init`] set up. Keep it alive until the command ends: dropping it flushes and shuts
/// down the OpenTelemetry exporters, so the last spans and metrics are sent.
#[derive(Debug, Default)]
#[must_use = "dropping the guard at once shuts the exporters down"]
pub struct Telemetry {
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    meter: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
    /// The gRPC exporter's connection lives on this runtime (the SDK's export threads only
    /// block on futures), so it outlasts every command's own runtime.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Telemetry {
    /// Whether spans and metrics are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.tracer.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// Whether the standard variables ask for OTLP export: `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
/// traces endpoint) is set and `OTEL_SDK_DISABLED` is not `true`.
fn otlp_wanted() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    let disabled =
        std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Whether a signal goes over gRPC: `OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, is `grpc` (the default is `http/protobuf`).
fn grpc(signal: &str) -> bool {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    get(&format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"))
        .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("grpc"))
}

/// Who is exporting: the resource attributes beside the standard ones.
#[derive(Debug, Clone, Default)]
pub struct Service {
    /// `service.version` (the binary's version).
    pub version: String,
    /// `drdsurv.submitter`, for a command that works for one submitter.
    pub submitter: Option<String>,
}

/// The resource every span and metric carries. `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES` are read by the SDK; drdsurv adds `service.name = drdsurv`,
/// `service.version` and `deployment.environment = unspecified` where those left them out,
/// and the submitter.
pub fn resource(service: &Service) -> opentelemetry_sdk::Resource {
    use opentelemetry::{Key, KeyValue};
    let from_env = opentelemetry_sdk::Resource::builder().build();
    let mut extra = Vec::new();
    if std::env::var("OTEL_SERVICE_NAME").map_or(true, |v| v.trim().is_empty())
        && from_env
            .get(&Key::new("service.name"))
            .is_none_or(|v| v.as_str().starts_with("unknown_service"))
    {
        extra.push(KeyValue::new("service.name", "drdsurv"));
    }
    if from_env.get(&Key::new("service.version")).is_none() && !service.version.is_empty() {
        extra.push(KeyValue::new("service.version", service.version.clone()));
    }
    if from_env.get(&Key::new("deployment.environment")).is_none() {
        let env = from_env
            .get(&Key::new("deployment.environment.name"))
            .map_or_else(|| "unspecified".to_string(), |v| v.as_str().into_owned());
        extra.push(KeyValue::new("deployment.environment", env));
    }
    if let Some(s) = &service.submitter {
        extra.push(KeyValue::new("drdsurv.submitter", s.clone()));
    }
    opentelemetry_sdk::Resource::builder()
        .with_attributes(extra)
        .build()
}

/// Installs the global subscriber, writing to standard error. Call once, first thing in `main`,
/// and keep the returned guard until the end. Same as [`init_for`] with no service details.
pub fn init(format: LogFormat) -> Result<Telemetry, Error> {
    init_for(format, &Service::default())
}

/// Installs the global subscriber, writing to standard error; keep the returned guard until
/// the end.
///
/// When `OTEL_EXPORTER_OTLP_ENDPOINT` is set, every span also goes to an OTLP collector
/// (batched), and events with `histogram.`, `counter.` or `monotonic_counter.` fields become
/// metrics on the same endpoint. Only the standard `OTEL_*` variables configure export:
/// endpoint, `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `grpc`), headers,
/// timeout, `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` ([`resource`]). Otherwise
/// nothing is exported.
pub fn init_for(format: LogFormat, service: &Service) -> Result<Telemetry, Error> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(v).map_err(|e| Error::Filter(e.to_string()))?
        }
        // Dependencies' own progress logs (Delta snapshots, object stores) are too chatty for
        // users; their warnings and errors still show.
        _ => EnvFilter::new(
            "info,deltalake=warn,deltalake_core=warn,delta_kernel=warn,buoyant_kernel=warn,object_store=warn",
        ),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let fmt = match format {
        LogFormat::Human => fmt.with_target(false).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let mut telemetry = Telemetry::default();
    if otlp_wanted() {
        let resource = resource(service);
        let otlp = |e: opentelemetry_otlp::ExporterBuildError| Error::Otlp(e.to_string());
        let (grpc_traces, grpc_metrics) = (grpc("TRACES"), grpc("METRICS"));
        if grpc_traces || grpc_metrics {
            telemetry.runtime = Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("otlp-grpc")
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Otlp(e.to_string()))?,
            );
        }
        let _in_rt = telemetry
            .runtime
            .as_ref()
            .map(tokio::runtime::Runtime::enter);
        let spans = if grpc_traces {
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .map_err(otlp)?
        } else {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .map_err(otlp)?
        };
        telemetry.tracer = Some(
            opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(spans)
                .with_resource(resource.clone())
                .build(),
        );
        let metrics = if grpc_metrics {
            opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .map_err(otlp)?
        } else {
            opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .build()
                .map_err(otlp)?
        };
        telemetry.meter = Some(
            opentelemetry_sdk::metrics::SdkMeterProvider::builder()
                .with_periodic_exporter(metrics)
                .with_resource(resource)
                .build(),
        );
    }
    let otel = telemetry.tracer.as_ref().map(otel_layer);
    let metrics = telemetry.meter.clone().map(metrics_layer);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .with(metrics)
        .with(prometheus::PrometheusLayer)
        .try_init()
        .map_err(|e| Error::AlreadySet(e.to_string()))?;
    Ok(telemetry)
}

/// A `tracing` layer that turns events with `histogram.`, `counter.` or `monotonic_counter.`
/// fields into OpenTelemetry metrics through `provider` (run duration, rows, test failures,
/// late runs).
pub fn metrics_layer<S>(
    provider: opentelemetry_sdk::metrics::SdkMeterProvider,
) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::MetricsLayer::new(provider)
}

/// A `tracing` layer that records every span, with its fields and events, as an
/// OpenTelemetry span through `provider` (and so through its exporters).
pub fn otel_layer<S>(
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;
    tracing_opentelemetry::layer().with_tracer(provider.tracer("drdsurv"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats() {
        assert_eq!(LogFormat::parse("JSON").unwrap(), LogFormat::Json);
        assert_eq!(LogFormat::parse("human").unwrap(), LogFormat::Human);
        let e = LogFormat::parse("xml").unwrap_err().to_string();
        assert!(e.contains("'xml'") && e.contains("json"), "{e}");
    }
}
