//! The national query service: `drdsurv serve --flight` queried by real clients (ADBC's Flight
//! SQL driver and pyarrow.flight, tests/python/flight_checks.py), on a copy of the store the
//! report tests build (marts and two releases). Also `sql --role`, TLS with a self-signed
//! certificate, federation across a local store and one on the S3 test server, and Ballista
//! standalone against the embedded engine with the role filters in force.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use sha2::Digest;

use crate::{drdsurv, repo, text};

/// The partnership the role tests read as, and another one it must never see.
const AREA: &str = "E08000025";
const OTHER: &str = "E06000047";
const JWT_SECRET: &str = "test-only-jwt-secret-0123456789abcdef";

const TOKENS: [(&str, &str, &str); 3] = [
    ("nat", "national", "token-national-3f9a"),
    ("ann", "partnership:E08000025", "token-partnership-77c1"),
    ("pub", "public", "token-public-a01e"),
];

fn sha(s: &str) -> String {
    let d = sha2::Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A copy of the reported store (marts, releases), made once.
fn store() -> &'static Path {
    static S: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let to = crate::report::reported_copy(dir.path());
        (dir, to)
    })
    .1
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    let mut t = String::from(
        "[server]\nmemory_limit = \"256M\"\nquery_timeout_seconds = 120\nrefresh_seconds = 1\naudit_flush_ms = 200\n",
    );
    t.push_str(extra);
    for (name, role, token) in TOKENS {
        t.push_str(&format!(
            "\n[[server.users]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_sha256 = \"{}\"\n",
            sha(token)
        ));
    }
    let p = dir.join("drdsurv.toml");
    std::fs::write(&p, t).unwrap();
    p
}

struct Server {
    child: Child,
    uri: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path, config: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drdsurv"))
        .args(["--store", store.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .args(extra)
        .args(["serve", "--flight", "127.0.0.1:0"])
        .env("DRDSURV_JWT_SECRET", JWT_SECRET)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let out = child.stdout.as_mut().unwrap();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            first.push(b[0] as char);
        }
    }
    let uri = first
        .split_whitespace()
        .find(|w| w.starts_with("grpc"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    Server { child, uri }
}

fn python(mode: &str, spec: &serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("spec.json");
    std::fs::write(&p, spec.to_string()).unwrap();
    let o = Command::new("python3")
        .arg(repo().join("tests/python/flight_checks.py"))
        .arg(mode)
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "flight_checks.py {mode}: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn spec(uri: &str, store: &Path) -> serde_json::Value {
    serde_json::json!({
        "uri": uri,
        "store": store.to_str().unwrap(),
        "area": AREA,
        "other_area": OTHER,
        "jwt_secret": JWT_SECRET,
        "basic_user": "nat",
        "tokens": {
            "national": TOKENS[0].2,
            "partnership": TOKENS[1].2,
            "public": TOKENS[2].2,
        },
    })
}

#[test]
fn flight_sql_roles_authentication_limits_and_audit_with_real_clients() {
    let store = store();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let server = serve(store, &cfg, &[]);
    let out = python("roles", &spec(&server.uri, store));
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // The script asserts every boundary; check here that it really ran them.
    assert_eq!(summary["refused"], 10, "{summary}");
    assert_eq!(summary["memory"].as_object().unwrap().len(), 3, "{summary}");
    let proofs = summary["row_filters"].as_object().unwrap();
    assert!(proofs.len() >= 20, "{summary}");
    assert!(
        proofs["sources.coroner"][0].as_u64().unwrap() > 0,
        "{summary}"
    );
    for k in ["no_token", "bad_token", "expired_jwt", "forged_jwt"] {
        assert!(
            summary[k].as_str().unwrap().contains("UNAUTHENTICATED"),
            "{k}: {summary}"
        );
    }
    // The server kept running through every refusal and limit.
    let q = serde_json::json!({"uri": server.uri, "token": TOKENS[0].2,
        "sql": "SELECT count(*) AS n FROM marts.benchmarks"});
    let rows: Vec<serde_json::Value> = serde_json::from_str(python("query", &q).trim()).unwrap();
    assert!(rows[0]["n"].as_i64().unwrap() > 0);
    // The audit table is a Delta table another implementation reads.
    drop(server);
    let o = Command::new("python3")
        .args([
            "-c",
            // Leaves with os._exit once the answer is out: delta-rs's native runtime can
            // abort during interpreter shutdown (see tests/python/native_exit.py).
            "import os, sys, deltalake; t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table(); \
             print(t.num_rows, sorted(set(t.column('outcome').to_pylist()))); \
             sys.stdout.flush(); os._exit(0)",
            store.join("audit").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let line = text(&o.stdout);
    assert!(
        line.contains("'memory_limit'") && line.contains("'ok'") && line.contains("'refused'"),
        "{line}"
    );
}

fn sql_as(store: &Path, cfg: Option<&Path>, engine: &str, role: &str, q: &str) -> String {
    let mut args = vec!["--store", store.to_str().unwrap(), "--engine", engine];
    if let Some(c) = cfg {
        args.extend(["--config", c.to_str().unwrap()]);
    }
    args.extend(["sql", "--role", role, "--format", "csv", q]);
    let o = drdsurv(&args);
    assert!(o.status.success(), "{q}: {}", text(&o.stderr));
    text(&o.stdout)
}

#[test]
fn sql_role_filters_equal_on_ballista_standalone_and_embedded() {
    let store = store();
    let role = format!("partnership:{AREA}");
    let queries = [
        "SELECT residence_area, sex, count(*) AS n FROM sources.current_coroner GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT t.partnership_code, count(*) AS n FROM sources.top t JOIN marts.mart_areas a ON a.partnership_code = t.partnership_code GROUP BY 1 ORDER BY 1",
        "SELECT area_type, count(*) AS n, sum(numerator) AS num FROM marts.benchmarks GROUP BY 1 ORDER BY 1",
    ];
    for q in queries {
        let embedded = sql_as(store, None, "embedded", &role, q);
        let ballista = sql_as(store, None, "ballista:standalone", &role, q);
        assert_eq!(embedded, ballista, "{q}");
        assert!(embedded.lines().count() > 1, "{q}: {embedded}");
        assert!(!embedded.contains(OTHER), "{q}: {embedded}");
        // The filter is in force: national sees more.
        let national = sql_as(store, None, "embedded", "national", q);
        assert!(national.lines().count() > embedded.lines().count() || q.contains("area_type"));
    }
    // The Flight server on Ballista standalone answers as the embedded engine does.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let server = serve(store, &cfg, &["--engine", "ballista:standalone"]);
    let q = queries[2];
    let spec = serde_json::json!({"uri": server.uri, "token": TOKENS[1].2, "sql": q});
    let over_flight: serde_json::Value =
        serde_json::from_str(python("query", &spec).trim()).unwrap();
    let o = drdsurv(&[
        "--store",
        store.to_str().unwrap(),
        "sql",
        "--role",
        &role,
        "--format",
        "json",
        q,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let embedded: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(over_flight, embedded);
    drop(server);

    let o = drdsurv(&[
        "--store",
        store.to_str().unwrap(),
        "sql",
        "--role",
        "public",
        "SELECT * FROM sources.coroner",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("not found"), "{}", text(&o.stderr));
}

#[test]
fn a_query_over_its_time_limit_stops_with_a_clear_error() {
    let store = store();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "").to_str().unwrap().to_string();
    let text_cfg = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("query_timeout_seconds = 120", "query_timeout_seconds = 3");
    std::fs::write(&cfg, text_cfg).unwrap();
    let t = std::time::Instant::now();
    let o = drdsurv(&[
        "--store",
        store.to_str().unwrap(),
        "--config",
        &cfg,
        "sql",
        "SELECT count(*) FROM generate_series(1, 1000000000000)",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("time limit of 3s"),
        "{}",
        text(&o.stderr)
    );
    // Stopped at the limit (plus the catalog load, which does not count), not run to the end.
    assert!(t.elapsed().as_secs() < 120, "{:?}", t.elapsed());
}

#[test]
fn flight_over_tls_with_a_self_signed_certificate() {
    let store = store();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost", "-addext"])
        .arg("subjectAltName=DNS:localhost,IP:127.0.0.1")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let cfg = config(
        dir.path(),
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let server = serve(store, &cfg, &[]);
    assert!(server.uri.starts_with("grpc+tls://"), "{}", server.uri);
    let pem = std::fs::read_to_string(&cert).unwrap();
    let q = serde_json::json!({"uri": server.uri, "token": TOKENS[1].2, "tls_root_pem": pem,
        "sql": format!("SELECT count(*) AS n, count(DISTINCT residence_area) AS areas FROM sources.coroner")});
    let rows: Vec<serde_json::Value> = serde_json::from_str(python("query", &q).trim()).unwrap();
    assert!(rows[0]["n"].as_i64().unwrap() > 0);
    assert_eq!(rows[0]["areas"], 1);
    // Plain gRPC to the TLS port fails.
    let plain = serde_json::json!({"uri": server.uri.replace("grpc+tls://", "grpc://"),
        "token": TOKENS[1].2, "sql": "SELECT 1"});
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("spec.json");
    std::fs::write(&p, plain.to_string()).unwrap();
    let o = Command::new("python3")
        .arg(repo().join("tests/python/flight_checks.py"))
        .arg("query")
        .arg(&p)
        .output()
        .unwrap();
    assert!(!o.status.success(), "plain gRPC to a TLS port answered");
}

#[test]
fn one_query_joins_a_local_store_and_a_store_on_s3() {
    let store = store();
    let wales = crate::places::Place::s3("wales");
    let url = wales.url("store");
    // The attached store: the coroner extract of the submitter covering AREA, ingested
    // straight onto S3.
    let fixture = crate::fixture_a();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("manifest.json")).unwrap())
            .unwrap();
    let sub = manifest["submitters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["source"] == "coroner" && s["areas"].as_array().unwrap().iter().any(|a| a == AREA)
        })
        .unwrap();
    let id = sub["id"].as_str().unwrap();
    let areas: Vec<&str> = sub["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let file = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["submitter"] == id && f["expect_rejected"].is_null())
        .map(|f| fixture.join(f["path"].as_str().unwrap()))
        .unwrap();
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_drdsurv"));
    ingest
        .args([
            "--store",
            &url,
            "ingest",
            "--source",
            "coroner",
            "--submitter",
            id,
        ])
        .args(["--areas", &areas.join(",")])
        .arg(&file)
        .env(
            "DRDSURV_LINKAGE_KEY",
            "federation-test-linkage-key-0123456789",
        );
    for (k, v) in wales.env() {
        ingest.env(k, v);
    }
    let o = ingest.output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &format!("[catalogs]\nwales = \"{url}\"\n"));
    let run = |role: &str, q: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drdsurv"));
        c.args([
            "--store",
            store.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .args(["sql", "--role", role, "--format", "csv", q]);
        for (k, v) in wales.env() {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{q}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    let one = |role: &str, q: &str| -> i64 {
        run(role, q).lines().nth(1).unwrap().trim().parse().unwrap()
    };
    let home = one("national", "SELECT count(*) FROM sources.coroner");
    let away = one("national", "SELECT count(*) FROM wales.sources.coroner");
    assert!(home > 0 && away > 0, "{home} {away}");
    let both = run(
        "national",
        "SELECT 'home' AS store, count(*) AS n FROM drdsurv.sources.coroner \
         UNION ALL SELECT 'wales', count(*) FROM wales.sources.coroner ORDER BY store",
    );
    assert_eq!(
        both.trim_end(),
        format!("store,n\nhome,{home}\nwales,{away}")
    );
    // A join across the two stores, and the role filter applies in both catalogs.
    let joined = one(
        "national",
        "SELECT count(*) FROM wales.sources.coroner w JOIN drdsurv.reference.partnerships p \
         ON p.code = w.residence_area",
    );
    assert!(joined > 0 && joined <= away);
    let role = format!("partnership:{AREA}");
    let mine = one(&role, "SELECT count(*) FROM wales.sources.coroner");
    let want = one(
        "national",
        &format!("SELECT count(*) FROM wales.sources.coroner WHERE residence_area = '{AREA}'"),
    );
    assert_eq!(mine, want);
    assert!(mine > 0 && mine < away, "{mine} of {away}");
}
