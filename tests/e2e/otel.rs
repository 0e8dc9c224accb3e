//! Issue 9: OpenTelemetry end to end. OTLP receivers started here (a tonic gRPC server and a
//! plain HTTP/1.1 server, both decoding with `opentelemetry-proto`'s generated types) take
//! what the `drdsurv` binary exports when only the standard `OTEL_*` variables are set:
//! ingest, a pipeline run, report rendering and a query, over each protocol. Checks the
//! span and metric names and attributes, the resource, that one pipeline run is one trace
//! tree (run → model → test), and, with the independent Python scanner, that no exported
//! value holds an identifier from the extracts. Also `/metrics` of `serve --http`, parsed by
//! the Python Prometheus client.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric;
use prost::Message as _;

use crate::{fixture_a, repo, text};

/// What a receiver was sent.
#[derive(Clone, Default)]
struct Received {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    /// `(path, content-type)` of each HTTP request.
    http: Arc<Mutex<Vec<(String, String)>>>,
}

impl Received {
    fn clear(&self) {
        self.traces.lock().unwrap().clear();
        self.metrics.lock().unwrap().clear();
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// An OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/metrics` with protobuf bodies.
fn http_receiver(r: Received) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let r = r.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (mut len, mut ctype) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap_or((h, ""));
                        match k.trim().to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap_or(0),
                            "content-type" => ctype = v.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    r.http.lock().unwrap().push((path.clone(), ctype));
                    let ok = match path.as_str() {
                        "/v1/traces" => ExportTraceServiceRequest::decode(body.as_slice())
                            .map(|m| r.traces.lock().unwrap().push(m))
                            .is_ok(),
                        "/v1/metrics" => ExportMetricsServiceRequest::decode(body.as_slice())
                            .map(|m| r.metrics.lock().unwrap().push(m))
                            .is_ok(),
                        _ => false,
                    };
                    let status = if ok { "200 OK" } else { "400 Bad Request" };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
                    );
                }
            });
        }
    });
    port
}

/// An OTLP/gRPC receiver on the given runtime.
fn grpc_receiver(rt: &tokio::runtime::Runtime, r: Received) -> u16 {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(r.clone()))
            .add_service(MetricsServiceServer::new(r))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    port
}

fn value_text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value_text(&kv.value)))
        .collect()
}

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    attrs: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
}

fn spans(r: &Received) -> Vec<Span> {
    let mut out = Vec::new();
    for req in r.traces.lock().unwrap().iter() {
        for rs in &req.resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|x| attrs(&x.attributes))
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    out.push(Span {
                        name: s.name.clone(),
                        trace: s.trace_id.clone(),
                        id: s.span_id.clone(),
                        parent: s.parent_span_id.clone(),
                        attrs: attrs(&s.attributes),
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Metric name → (the attribute sets of its data points, the sum of its values, resource).
fn metrics(r: &Received) -> BTreeMap<String, (Vec<BTreeMap<String, String>>, f64)> {
    let mut out: BTreeMap<String, (Vec<BTreeMap<String, String>>, f64)> = BTreeMap::new();
    for req in r.metrics.lock().unwrap().iter() {
        for rm in &req.resource_metrics {
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    let e = out.entry(m.name.clone()).or_default();
                    match &m.data {
                        Some(metric::Data::Sum(s)) => {
                            for p in &s.data_points {
                                e.0.push(attrs(&p.attributes));
                                e.1 += match p.value {
                                    Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i)) => i as f64,
                                    Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(d)) => d,
                                    None => 0.0,
                                };
                            }
                        }
                        Some(metric::Data::Histogram(h)) => {
                            for p in &h.data_points {
                                e.0.push(attrs(&p.attributes));
                                e.1 += p.count as f64;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

fn resource_of_metrics(r: &Received) -> Vec<BTreeMap<String, String>> {
    r.metrics
        .lock()
        .unwrap()
        .iter()
        .flat_map(|req| req.resource_metrics.iter())
        .map(|rm| {
            rm.resource
                .as_ref()
                .map(|x| attrs(&x.attributes))
                .unwrap_or_default()
        })
        .collect()
}

fn otel_cmd(store: &Path, endpoint: &str, protocol: &str, args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_drdsurv"))
        .arg("--store")
        .arg(store)
        .args(args)
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .env_remove("OTEL_SERVICE_NAME")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=e2e-test",
        )
        .env(
            "DRDSURV_LINKAGE_KEY",
            "e2e-test-linkage-key-not-for-production-use",
        )
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{protocol} {args:?}: {}",
        text(&o.stderr)
    );
    o
}

/// Runs ingest, a pipeline run, report rendering and a query with export to `endpoint`, and
/// checks what arrived. Returns a text dump of every exported attribute for the scanner.
fn exercise(store: &Path, r: &Received, endpoint: &str, protocol: &str) -> String {
    let generated = fixture_a();
    let manifest = crate::manifest();
    let sub = manifest["submitters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "coroner")
        .unwrap();
    let areas = crate::areas_of(sub["id"].as_str().unwrap());
    let file = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["submitter"] == sub["id"] && f["expect_rejected"].is_null())
        .unwrap();
    let submitter = format!("otel-{}", protocol.replace('/', "-"));
    let mut dump = String::new();
    let mut keep = |r: &Received, what: &str| {
        for s in spans(r) {
            dump.push_str(&format!("{what} span {}", s.name));
            for (k, v) in s.attrs.iter().chain(s.resource.iter()) {
                dump.push_str(&format!(" {k}={v}"));
            }
            dump.push('\n');
        }
        for (name, (points, _)) in metrics(r) {
            for p in points {
                dump.push_str(&format!("{what} metric {name} {p:?}\n"));
            }
        }
    };

    // Ingest: a span per file with counts, the submitter on the resource, file metrics.
    r.clear();
    otel_cmd(
        store,
        endpoint,
        protocol,
        &[
            "ingest",
            "--source",
            "coroner",
            "--submitter",
            &submitter,
            "--areas",
            &areas.join(","),
            generated
                .join(file["path"].as_str().unwrap())
                .to_str()
                .unwrap(),
        ],
    );
    let s = spans(r);
    let f = s
        .iter()
        .find(|s| s.name == "ingest_file")
        .unwrap_or_else(|| panic!("{protocol}: no ingest_file span in {s:?}"));
    assert_eq!(f.attrs["outcome"], "accepted", "{f:?}");
    assert_eq!(f.attrs["submitter"], submitter);
    assert_eq!(f.attrs["source"], "coroner");
    assert_eq!(
        f.attrs["rows_read"].parse::<u64>().unwrap(),
        file["rows"].as_u64().unwrap(),
        "{f:?}"
    );
    assert_eq!(f.resource["drdsurv.submitter"], submitter);
    assert_eq!(f.resource["service.name"], "drdsurv");
    assert_eq!(f.resource["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(f.resource["deployment.environment"], "e2e-test");
    let m = metrics(r);
    assert_eq!(m["drdsurv_ingest_files"].1, 1.0, "{m:?}");
    assert_eq!(
        m["drdsurv_ingest_rows_accepted"].1,
        f.attrs["rows_accepted"].parse::<f64>().unwrap()
    );
    assert!(
        resource_of_metrics(r)
            .iter()
            .all(|res| res.get("drdsurv.submitter") == Some(&submitter))
    );
    keep(r, "ingest");

    // A pipeline run: one trace, run → model → test.
    r.clear();
    let o = otel_cmd(
        store,
        endpoint,
        protocol,
        &["run", "alerts_weekly", "--period", "2025-12"],
    );
    let ledger: serde_json::Value =
        serde_json::from_str(text(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(ledger["status"], "committed", "{ledger}");
    let s = spans(r);
    let runs: Vec<_> = s.iter().filter(|s| s.name == "run").collect();
    assert_eq!(runs.len(), 1, "{protocol}: one run span");
    let run = runs[0];
    assert!(run.parent.is_empty(), "the run span is a root");
    assert_eq!(run.attrs["pipeline"], "alerts_weekly");
    assert_eq!(run.attrs["period"], "2025-12");
    assert_eq!(run.attrs["status"], "committed");
    assert!(!run.resource.contains_key("drdsurv.submitter"));
    let models: Vec<_> = s.iter().filter(|s| s.name == "model").collect();
    let tests: Vec<_> = s.iter().filter(|s| s.name == "test").collect();
    assert_eq!(models.len(), ledger["models"].as_array().unwrap().len());
    assert_eq!(tests.len(), ledger["tests"].as_array().unwrap().len());
    assert!(!tests.is_empty(), "the alert models carry tests");
    let model_ids: BTreeSet<&[u8]> = models.iter().map(|m| m.id.as_slice()).collect();
    for m in &models {
        assert_eq!(m.trace, run.trace, "model {:?} in the run's trace", m.attrs);
        assert_eq!(m.parent, run.id, "model {:?} under the run", m.attrs);
    }
    for t in &tests {
        assert_eq!(t.trace, run.trace, "test {:?} in the run's trace", t.attrs);
        assert!(
            model_ids.contains(t.parent.as_slice()),
            "test {:?} under a model",
            t.attrs
        );
    }
    let ran: BTreeSet<String> = models.iter().map(|m| m.attrs["model"].clone()).collect();
    let listed: BTreeSet<String> = ledger["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ran, listed);
    let m = metrics(r);
    assert_eq!(m["drdsurv_run_duration_seconds"].1, 1.0, "{m:?}");
    assert!(m["drdsurv_model_rows"].1 > 0.0, "{m:?}");
    assert!(
        m["drdsurv_run_duration_seconds"]
            .0
            .iter()
            .all(|p| p["pipeline"] == "alerts_weekly")
    );
    keep(r, "run");

    // Report rendering: one area.
    r.clear();
    otel_cmd(
        store,
        endpoint,
        protocol,
        &["report", "--period", "2025Q4", "--area", "E06000001"],
    );
    let s = spans(r);
    let rep = s
        .iter()
        .find(|s| s.name == "render_reports")
        .unwrap_or_else(|| panic!("{protocol}: no render_reports span in {s:?}"));
    assert_eq!(rep.attrs["areas"], "1");
    assert!(rep.attrs["release"].starts_with("2025Q4-r"), "{rep:?}");
    let m = metrics(r);
    assert_eq!(m["drdsurv_reports_rendered"].1, 1.0, "{m:?}");
    assert_eq!(m["drdsurv_report_render_seconds"].1, 1.0, "{m:?}");
    keep(r, "report");

    // A query, as a partnership.
    r.clear();
    otel_cmd(
        store,
        endpoint,
        protocol,
        &[
            "sql",
            "SELECT count(*) AS n FROM sources.coroner",
            "--role",
            "partnership:E06000001",
        ],
    );
    let s = spans(r);
    let q = s
        .iter()
        .find(|s| s.name == "query")
        .unwrap_or_else(|| panic!("{protocol}: no query span in {s:?}"));
    assert_eq!(q.attrs["outcome"], "ok");
    assert_eq!(q.attrs["rows"], "1");
    assert_eq!(q.attrs["role"], "partnership:E06000001");
    let m = metrics(r);
    assert_eq!(m["drdsurv_queries"].1, 1.0, "{m:?}");
    assert!(
        m["drdsurv_query_duration_seconds"]
            .0
            .iter()
            .all(|p| p["outcome"] == "ok" && p["role_kind"] == "partnership")
    );
    assert_eq!(
        m.get("drdsurv_query_plan_seconds").map(|p| p.1),
        Some(1.0),
        "{m:?}"
    );
    keep(r, "query");
    dump
}

#[test]
fn otlp_export_over_http_and_grpc_reaches_real_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::report::reported_copy(dir.path());
    let rt = crate::runtime(2);

    let over_http = Received::default();
    let http_port = http_receiver(over_http.clone());
    let mut dump = exercise(
        &store,
        &over_http,
        &format!("http://127.0.0.1:{http_port}"),
        "http/protobuf",
    );
    let paths: BTreeSet<(String, String)> =
        over_http.http.lock().unwrap().iter().cloned().collect();
    assert!(
        paths.contains(&("/v1/traces".into(), "application/x-protobuf".into()))
            && paths.contains(&("/v1/metrics".into(), "application/x-protobuf".into())),
        "{paths:?}"
    );

    let over_grpc = Received::default();
    let grpc_port = grpc_receiver(&rt, over_grpc.clone());
    dump.push_str(&exercise(
        &store,
        &over_grpc,
        &format!("http://127.0.0.1:{grpc_port}"),
        "grpc",
    ));
    // Nothing came over HTTP while gRPC was chosen.
    assert!(over_grpc.http.lock().unwrap().is_empty());

    // No exported value holds an identifier from the extracts (independent scanner, with its
    // own positive control).
    let dump_file = dir.path().join("otlp.txt");
    std::fs::write(&dump_file, &dump).unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = Command::new("python3")
        .arg(repo().join("tests/python/scan_identifiers.py"))
        .arg(fixture_a())
        .arg(&empty)
        .arg(&dump_file)
        .output()
        .unwrap();
    let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success() && out.contains("; 0 hit(s)") && out.contains("positive control"),
        "{out}"
    );
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::report::reported().store.clone();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drdsurv"))
        .arg("--store")
        .arg(&store)
        .args(["serve", "--http", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let get = |path: &str| -> (u16, String) {
        let addr = base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        let code = body.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, body)
    };
    assert_eq!(get("/healthz").0, 200);
    assert_eq!(get("/2025Q4/E06000001/").0, 200);
    assert_eq!(get("/2025Q4/E06000001/").0, 200);
    assert_eq!(get("/nowhere").0, 404);
    let (code, resp) = get("/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 200);
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{resp}"
    );
    let body = resp.split("\r\n\r\n").nth(1).unwrap().to_string();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &body).unwrap();
    // The official Python client's parser reads it, and the counts are the requests made.
    let o = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, json\n\
             from prometheus_client.parser import text_string_to_metric_families\n\
             out = {}\n\
             for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
             \x20   for s in fam.samples:\n\
             \x20       out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value\n\
             print(json.dumps(out))\n",
        )
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{body}", text(&o.stderr));
    let parsed: BTreeMap<String, f64> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        parsed[&format!(
            "drdsurv_build_info{{\"version\": \"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )],
        1.0,
        "{parsed:?}"
    );
    assert_eq!(
        parsed["drdsurv_http_requests_total{\"status\": \"200\"}"], 3.0,
        "{parsed:?}"
    );
    assert_eq!(
        parsed["drdsurv_http_requests_total{\"status\": \"404\"}"], 1.0,
        "{parsed:?}"
    );
}
