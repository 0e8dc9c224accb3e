//! # drd-telemetry: logging set up once for every drdsurv command
//!
//! [`init`] installs a `tracing` subscriber: human-readable lines on standard error by default,
//! or one JSON object per event with [`LogFormat::Json`]. `RUST_LOG` filters as usual
//! (default `info`, with dependencies at `warn`). [`otel_layer`] turns the same spans into
//! OpenTelemetry spans for any SDK exporter (the identifier-scan test uses the in-memory one;
//! OTLP export to a collector is configured here too when it lands), so binaries never
//! configure tracing themselves.
//!
//! Log messages are constant strings with values in fields, and never carry a row's content
//! (docs/style.md): identifiers must not reach a log.
//!
//! ```
//! drd_telemetry::init(drd_telemetry::LogFormat::Human).unwrap();
//! tracing::info!(files = 3, "generated");
//! ```

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
}

/// Installs the global subscriber, writing to standard error. Call once, first thing in `main`.
pub fn init(format: LogFormat) -> Result<(), Error> {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let r = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    r.map_err(|e| Error::AlreadySet(e.to_string()))
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
