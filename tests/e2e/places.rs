//! Where the end-to-end storage tests put their store and inboxes: local folders, or buckets
//! on a real S3-compatible server (moto from pip `moto[server]`, through
//! `tests/python/s3_server.py`, which makes its create-if-absent writes atomic as real S3's
//! are), started once per test binary on a free loopback port and stopped when the tests end.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use drd_store::Store;

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

/// The moto server of this test run.
pub fn moto() -> &'static Moto {
    static M: OnceLock<Moto> = OnceLock::new();
    M.get_or_init(start_moto)
}

fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A watchdog shell stops moto when this test process ends, whichever way it ends.
    let script = format!(
        "python3 {script} 127.0.0.1 {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {me} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
        me = std::process::id(),
        script = crate::repo().join("tests/python/s3_server.py").display()
    );
    let have = Command::new("python3")
        .args(["-c", "import moto.server, flask"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have,
        "moto's server is not installed: the S3 tests need pip moto[server] (tests/run.sh installs it)"
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    loop {
        if http(&endpoint, "GET", "/").is_some_and(|s| s.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "moto_server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Moto {
        endpoint,
        _child: child,
    }
}

/// One plain HTTP/1.1 request; returns the response head.
fn http(endpoint: &str, method: &str, path: &str) -> Option<String> {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl Moto {
    /// Creates a fresh bucket and returns its name.
    pub fn bucket(&self, hint: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        self.bucket_named(&format!("{hint}-{}", N.fetch_add(1, Ordering::SeqCst)))
    }

    /// Creates a bucket with this exact name.
    pub fn bucket_named(&self, name: &str) -> String {
        let name = name.to_string();
        let r = http(&self.endpoint, "PUT", &format!("/{name}")).unwrap_or_default();
        assert!(r.starts_with("HTTP/1.1 200"), "create bucket {name}: {r}");
        name
    }

    /// The settings a client needs, as environment variables / storage options.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// A place for a store and its inboxes.
#[derive(Debug)]
pub enum Place {
    Local(tempfile::TempDir),
    S3(String),
}

impl Place {
    pub fn local() -> Place {
        Place::Local(tempfile::tempdir().unwrap())
    }

    pub fn s3(hint: &str) -> Place {
        Place::S3(moto().bucket(hint))
    }

    pub fn label(&self) -> &'static str {
        match self {
            Place::Local(_) => "local",
            Place::S3(_) => "s3",
        }
    }

    /// A URL below this place.
    pub fn url(&self, rel: &str) -> String {
        match self {
            Place::Local(d) => d.path().join(rel).to_str().unwrap().to_string(),
            Place::S3(b) => format!("s3://{b}/{rel}"),
        }
    }

    /// Environment for the drdsurv binary.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            Place::Local(_) => Vec::new(),
            Place::S3(_) => moto().settings(),
        }
    }

    /// The store (or inbox) at `rel`, opened in this process.
    pub fn open(&self, rel: &str) -> Store {
        let opts: HashMap<String, String> = self.env().into_iter().collect();
        Store::open_with(&self.url(rel), opts).unwrap()
    }
}
