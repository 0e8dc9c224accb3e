//! Read-only HTTP for the reports: `GET /healthz` answers `ok`; `GET /metrics` gives this
//! process's metrics in the Prometheus text format (`drd_telemetry::prometheus`); `GET /<path>` serves
//! `reports/<path>` from the store (a path ending in `/` serves its `index.html`); `GET /`
//! lists the periods with reports. Only GET and HEAD are allowed.
//!
//! Paths are checked before they reach the store: after percent-decoding, a segment that is
//! empty, `.` or `..`, or that holds a backslash, a NUL or a control character is refused with
//! 400, so nothing outside the reports root can be named.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// The prefix in the store that is served.
pub const ROOT: &str = "reports";

struct App {
    os: Arc<dyn ObjectStore>,
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: drd_store::Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let os = store
        .object_store()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(App { os }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Decodes `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The store path a request path names under [`ROOT`], or why it is refused.
pub fn resolve(raw_path: &str) -> Result<String, &'static str> {
    let decoded = percent_decode(raw_path).ok_or("malformed path")?;
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (body, dir) = match trimmed.strip_suffix('/') {
        Some(b) => (b, true),
        None => (trimmed, trimmed.is_empty()),
    };
    let mut segs = Vec::new();
    if !body.is_empty() {
        for seg in body.split('/') {
            if seg.is_empty()
                || seg == "."
                || seg == ".."
                || seg.contains('\\')
                || seg.chars().any(char::is_control)
            {
                return Err("path outside the reports");
            }
            segs.push(seg);
        }
    }
    let mut p = String::from(ROOT);
    for s in &segs {
        p.push('/');
        p.push_str(s);
    }
    if dir {
        p.push_str("/index.html");
    }
    Ok(p)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn handle(State(app): State<Arc<App>>, method: Method, uri: Uri) -> Response {
    let metrics = uri.path() == "/metrics";
    let resp = respond(&app, &method, &uri).await;
    if !metrics {
        let status = resp.status();
        tracing::info!(
            monotonic_counter.drdsurv_http_requests = 1u64,
            status = status.as_str(),
            "http request"
        );
    }
    resp
}

async fn respond(app: &App, method: &Method, uri: &Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "read-only: GET and HEAD only\n",
        );
    }
    if uri.path() == "/healthz" {
        return plain(StatusCode::OK, "ok\n");
    }
    if uri.path() == "/metrics" {
        return (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            drd_telemetry::prometheus::render(env!("CARGO_PKG_VERSION")),
        )
            .into_response();
    }
    if uri.path() == "/" {
        return index(app).await;
    }
    let path = match resolve(uri.path()) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(reason = why, "http request refused");
            return plain(StatusCode::BAD_REQUEST, "bad path\n");
        }
    };
    match app.os.get(&Path::from(path.as_str())).await {
        Ok(r) => match r.bytes().await {
            Ok(b) => {
                let mut resp = Response::new(if method == Method::HEAD {
                    Body::empty()
                } else {
                    Body::from(b)
                });
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type(&path)),
                );
                resp.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                resp
            }
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "read failed\n"),
        },
        Err(object_store::Error::NotFound { .. }) => plain(StatusCode::NOT_FOUND, "not found\n"),
        Err(e) => {
            tracing::warn!(error = %e, "http read failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "read failed\n")
        }
    }
}

async fn index(app: &App) -> Response {
    let periods = match app.os.list_with_delimiter(Some(&Path::from(ROOT))).await {
        Ok(l) => l
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    let items: String = periods
        .iter()
        .rev()
        .map(|p| {
            let p: String = p
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            format!("<li><a href=\"/{p}/\">{p}</a></li>")
        })
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"en-GB\"><head><meta charset=\"utf-8\"><title>drdsurv reports</title></head><body><main><h1>drdsurv reports</h1><ul>{items}</ul></main></body></html>"
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn refuses_traversal_in_every_spelling() {
        for bad in [
            "/../runs/x",
            "/2025Q4/../../sources/x",
            "/%2e%2e/secret",
            "/2025Q4/%2E%2E/%2E%2E/x",
            "/a//b",
            "/a/./b",
            "/a\\..\\b",
            "/a/%5c../b",
            "/a/%00",
            "/%zz",
        ] {
            assert!(resolve(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(
            resolve("/2025Q4/").as_deref(),
            Ok("reports/2025Q4/index.html")
        );
        assert_eq!(
            resolve("/2025Q4/E06000001/indicators.csv").as_deref(),
            Ok("reports/2025Q4/E06000001/indicators.csv")
        );
    }
}
