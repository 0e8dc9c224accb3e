//! The ingest worker: polls inboxes (a folder or an object-store prefix per submitter and
//! source), claims each new file, ingests it, and moves it to `done/` or `rejected/`.
//!
//! **Claims.** A file `F` is claimed by creating `.claims/F/<generation>` with a
//! create-if-absent write (`PutMode::Create`; local files, S3 with conditional writes, GCS and
//! Azure all honour it), so of two workers only one wins a generation. The holder rewrites its
//! claim every third of the lease as a heartbeat. A claim not touched for a whole lease belongs
//! to a dead worker: the next worker takes the next generation over, and because ingest is
//! idempotent per file (receipts and Delta application transactions carry the file's
//! SHA-256) a takeover completes what is missing and duplicates nothing.
//!
//! **Inbox layout.** Files at the top of the inbox are candidates; names starting with `.`
//! or ending in `.tmp` or `.part` are skipped (write under such a name, then rename). Below it
//! the worker keeps `.claims/`, `done/` and `rejected/` (with a `<name>.receipt.json` next to
//! each rejected file saying why).
//!
//! **Failures.** Store errors are retried with doubling, capped backoff; a file that still
//! fails is released for a later poll. On shutdown (SIGTERM in the binary) the current file
//! gets a grace period to finish; after it the file is abandoned: its claim is released and
//! the next run completes it (commits are atomic, so readers never see half a file).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use drd_model::{Coded, Source};
use drd_store::{Backend, Store};
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::sync::watch;
use tracing::{info, info_span, warn};

use crate::receipt::{Receipt, Status};
use crate::{Error, Ingestor, Result, fault};

/// One inbox: where a submitter drops files of one source.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// The inbox folder or prefix, opened as a store.
    pub store: Store,
    /// What the files hold.
    pub source: Source,
    /// Who sends them.
    pub submitter: String,
    /// Partnership codes the submitter may send.
    pub areas: HashSet<String>,
    /// How often to look for new files.
    pub poll: Duration,
}

/// Capped exponential backoff: `first`, `2·first`, `4·first`, … never more than `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay.
    pub first: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Attempts per file before it is left for a later poll.
    pub attempts: u32,
}

impl Backoff {
    /// The delay after failed attempt `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.cap)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            attempts: 8,
        }
    }
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This worker's name in its claims (host and process id by default).
    pub worker_id: String,
    /// A claim not refreshed for this long is taken over.
    pub lease: Duration,
    /// Look at every inbox once, then stop.
    pub once: bool,
    /// Retries of store errors.
    pub backoff: Backoff,
    /// On shutdown, how long the current file may take to finish before it is abandoned.
    pub grace: Duration,
}

impl Settings {
    /// Defaults: a 10-minute lease, 20 s grace.
    pub fn new(once: bool) -> Settings {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into());
        Settings {
            worker_id: format!("{host}-{}", std::process::id()),
            lease: Duration::from_secs(600),
            once,
            backoff: Backoff::default(),
            grace: Duration::from_secs(20),
        }
    }
}

/// What a run of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Files ingested (rows accepted or quarantined).
    pub accepted: u64,
    /// Files rejected whole.
    pub rejected: u64,
    /// Files seen before (moved to `done/`, nothing written).
    pub duplicate: u64,
    /// Files that kept failing and were left for later.
    pub failed: u64,
    /// Files abandoned on shutdown.
    pub abandoned: u64,
}

const CLAIMS: &str = ".claims";

fn os_err(location: &str) -> impl Fn(object_store::Error) -> Error + '_ {
    move |e| {
        Error::Store(drd_store::Error::ObjectStore {
            location: location.to_string(),
            source: e,
        })
    }
}

/// Is this top-level name a file to ingest?
pub fn is_candidate(name: &str) -> bool {
    !(name.is_empty()
        || name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with(".receipt.json"))
}

/// Runs the worker until `shutdown` turns true (or once over every inbox with
/// [`Settings::once`]). Every receipt is passed to `on_receipt`.
pub async fn run(
    ingestor: &Ingestor<'_>,
    inboxes: &[Inbox],
    settings: &Settings,
    mut shutdown: watch::Receiver<bool>,
    on_receipt: &mut (dyn FnMut(&Receipt) + Send),
) -> Result<Summary> {
    let mut summary = Summary::default();
    let stores = inboxes
        .iter()
        .map(|i| i.store.object_store().map_err(Error::Store))
        .collect::<Result<Vec<_>>>()?;
    let mut due = vec![tokio::time::Instant::now(); inboxes.len()];
    info!(
        inboxes = inboxes.len(),
        worker = %settings.worker_id,
        once = settings.once,
        "worker started"
    );
    'outer: loop {
        for (i, inbox) in inboxes.iter().enumerate() {
            if *shutdown.borrow() {
                break 'outer;
            }
            if tokio::time::Instant::now() < due[i] {
                continue;
            }
            due[i] = tokio::time::Instant::now() + inbox.poll;
            let files = match candidates(stores[i].as_ref(), settings).await {
                Ok(f) => f,
                Err(e) => {
                    warn!(submitter = %inbox.submitter, error = %e, "cannot list inbox; will retry");
                    continue;
                }
            };
            for f in files {
                if *shutdown.borrow() {
                    break 'outer;
                }
                let outcome =
                    process(ingestor, inbox, &stores[i], &f, settings, &mut shutdown).await?;
                match outcome {
                    Outcome::Skipped => {}
                    Outcome::Done(r) => {
                        match r.status {
                            Status::Accepted => summary.accepted += 1,
                            Status::Rejected => summary.rejected += 1,
                            Status::Duplicate => summary.duplicate += 1,
                        }
                        on_receipt(&r);
                    }
                    Outcome::Failed => summary.failed += 1,
                    Outcome::Abandoned => {
                        summary.abandoned += 1;
                        break 'outer;
                    }
                }
            }
        }
        if settings.once {
            break;
        }
        let next = due
            .iter()
            .min()
            .copied()
            .unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = shutdown.wait_for(|v| *v) => break,
        }
    }
    info!(
        accepted = summary.accepted,
        rejected = summary.rejected,
        duplicate = summary.duplicate,
        failed = summary.failed,
        abandoned = summary.abandoned,
        "worker stopped"
    );
    Ok(summary)
}

enum Outcome {
    Skipped,
    Done(Box<Receipt>),
    Failed,
    Abandoned,
}

/// Top-level candidate files, oldest first. Also removes claims of files that have left the
/// inbox once those claims are stale (a worker died after moving its file).
async fn candidates(os: &dyn ObjectStore, settings: &Settings) -> Result<Vec<ObjectMeta>> {
    let listing = os
        .list_with_delimiter(None)
        .await
        .map_err(os_err("inbox"))?;
    let mut files: Vec<ObjectMeta> = listing
        .objects
        .into_iter()
        .filter(|m| m.location.filename().is_some_and(is_candidate))
        .collect();
    files.sort_by(|a, b| {
        a.last_modified
            .cmp(&b.last_modified)
            .then_with(|| a.location.cmp(&b.location))
    });
    let present: HashSet<&str> = files.iter().filter_map(|m| m.location.filename()).collect();
    let claims = os
        .list_with_delimiter(Some(&ObjPath::from(CLAIMS)))
        .await
        .map_err(os_err(CLAIMS))?;
    for p in claims.common_prefixes {
        let Some(name) = p.filename() else { continue };
        if present.contains(name) {
            continue;
        }
        let gens = claim_generations(os, name).await?;
        if gens.values().all(|m| stale(m, settings.lease)) {
            for m in gens.values() {
                let _ = os.delete(&m.location).await;
            }
        }
    }
    Ok(files)
}

fn claim_dir(name: &str) -> ObjPath {
    ObjPath::from(CLAIMS).join(name)
}

async fn claim_generations(os: &dyn ObjectStore, name: &str) -> Result<BTreeMap<u64, ObjectMeta>> {
    let dir = claim_dir(name);
    let mut out = BTreeMap::new();
    let mut list = os.list(Some(&dir));
    while let Some(m) = list.next().await {
        let m = m.map_err(os_err(CLAIMS))?;
        if let Some(g) = m.location.filename().and_then(|f| f.parse::<u64>().ok()) {
            out.insert(g, m);
        }
    }
    Ok(out)
}

fn stale(m: &ObjectMeta, lease: Duration) -> bool {
    let age = Utc::now().signed_duration_since(m.last_modified);
    age.to_std().is_ok_and(|a| a > lease)
}

/// Tries to claim a file; `None` when another worker holds it.
async fn claim(os: &dyn ObjectStore, name: &str, settings: &Settings) -> Result<Option<ObjPath>> {
    let gens = claim_generations(os, name).await?;
    let next = match gens.last_key_value() {
        Some((g, m)) if !stale(m, settings.lease) => {
            let _ = g;
            return Ok(None);
        }
        Some((g, _)) => {
            warn!(generation = g, "taking over a stale claim");
            g + 1
        }
        None => 1,
    };
    let path = claim_dir(name).join(format!("{next:010}"));
    let body = claim_body(settings);
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match os.put_opts(&path, body, opts).await {
        Ok(_) => Ok(Some(path)),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(None),
        Err(e) => Err(os_err(CLAIMS)(e)),
    }
}

fn claim_body(settings: &Settings) -> PutPayload {
    let body = serde_json::json!({
        "worker": settings.worker_id,
        "at": Utc::now().to_rfc3339(),
    });
    PutPayload::from(body.to_string().into_bytes())
}

async fn release(os: &dyn ObjectStore, name: &str) {
    if let Ok(gens) = claim_generations(os, name).await {
        for m in gens.values() {
            let _ = os.delete(&m.location).await;
        }
    }
}

/// Claims, ingests and moves one file.
async fn process(
    ingestor: &Ingestor<'_>,
    inbox: &Inbox,
    os: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
    settings: &Settings,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Outcome> {
    let Some(name) = meta.location.filename().map(str::to_string) else {
        return Ok(Outcome::Skipped);
    };
    let Some(my_claim) = claim(os.as_ref(), &name, settings).await? else {
        return Ok(Outcome::Skipped);
    };
    fault::point("claimed");
    // Another worker may have finished and moved the file between our listing and our claim.
    match os.head(&meta.location).await {
        Ok(_) => {}
        Err(object_store::Error::NotFound { .. }) => {
            let _ = os.delete(&my_claim).await;
            return Ok(Outcome::Skipped);
        }
        Err(e) => {
            let _ = os.delete(&my_claim).await;
            return Err(os_err("inbox")(e));
        }
    }
    let span = info_span!(
        "worker_file",
        source = inbox.source.code(),
        submitter = %inbox.submitter
    );
    let _g = span.enter();

    // Heartbeat: keep the claim fresh while we work.
    let beat = {
        let os = os.clone();
        let path = my_claim.clone();
        let every = settings.lease / 3;
        let body = claim_body(settings);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every.max(Duration::from_millis(100))).await;
                let _ = os.put(&path, body.clone()).await;
            }
        })
    };
    let result = ingest_with_retries(ingestor, inbox, os, meta, &name, settings, shutdown).await;
    beat.abort();
    let outcome = match result {
        Ok(Some(receipt)) => {
            let folder = if receipt.status == Status::Rejected {
                "rejected"
            } else {
                "done"
            };
            move_out(os.as_ref(), &meta.location, folder, &name, &receipt).await?;
            fault::point("moved");
            Outcome::Done(Box::new(receipt))
        }
        Ok(None) => Outcome::Abandoned,
        Err(e) => {
            warn!(error = %e, "file failed after retries; left in the inbox for a later poll");
            Outcome::Failed
        }
    };
    release(os.as_ref(), &name).await;
    Ok(outcome)
}

/// Ingests with retries of store errors. `Ok(None)`: abandoned on shutdown.
async fn ingest_with_retries(
    ingestor: &Ingestor<'_>,
    inbox: &Inbox,
    os: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
    name: &str,
    settings: &Settings,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Receipt>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let work = async {
            let spool = Spool::fetch(inbox, os.as_ref(), meta, name).await?;
            ingestor
                .ingest(inbox.source, &inbox.submitter, &inbox.areas, spool.path())
                .await
        };
        let grace = settings.grace;
        let mut sd = shutdown.clone();
        let deadline = async move {
            let _ = sd.wait_for(|v| *v).await;
            tokio::time::sleep(grace).await;
        };
        let r = tokio::select! {
            r = work => r,
            () = deadline => {
                warn!("shutdown: abandoning the current file; the next run completes it");
                return Ok(None);
            }
        };
        match r {
            Ok(receipt) => return Ok(Some(receipt)),
            Err(e @ Error::Usage(_)) => return Err(e),
            Err(e) if attempt >= settings.backoff.attempts => return Err(e),
            Err(e) => {
                let wait = settings.backoff.delay(attempt);
                warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "store error; retrying");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|v| *v) => return Ok(None),
                }
            }
        }
    }
}

/// The file as a local path: the file itself for a local inbox, else a downloaded copy that
/// is deleted when dropped.
struct Spool {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Spool {
    async fn fetch(
        inbox: &Inbox,
        os: &dyn ObjectStore,
        meta: &ObjectMeta,
        name: &str,
    ) -> Result<Spool> {
        if inbox.store.backend() == Backend::Local
            && let Ok(root) = inbox.store.url().to_file_path()
        {
            return Ok(Spool {
                path: root.join(name),
                _dir: None,
            });
        }
        let io = |e: std::io::Error| Error::Io {
            path: name.to_string(),
            source: e,
        };
        let dir = tempfile::Builder::new()
            .prefix("drdsurv-spool-")
            .tempdir()
            .map_err(io)?;
        let path = dir.path().join(name);
        let mut out = tokio::fs::File::create(&path).await.map_err(io)?;
        let mut stream = os
            .get(&meta.location)
            .await
            .map_err(os_err("inbox"))?
            .into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(os_err("inbox"))?;
            tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                .await
                .map_err(io)?;
        }
        tokio::io::AsyncWriteExt::flush(&mut out)
            .await
            .map_err(io)?;
        Ok(Spool {
            path,
            _dir: Some(dir),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Moves a processed file to `done/` or `rejected/` without overwriting an earlier file of
/// the same name; a rejected file gets its receipt beside it.
async fn move_out(
    os: &dyn ObjectStore,
    from: &ObjPath,
    folder: &str,
    name: &str,
    receipt: &Receipt,
) -> Result<()> {
    let mut to = ObjPath::from(folder).join(name);
    if os.head(&to).await.is_ok() {
        let short = receipt.file_sha256.get(..12).unwrap_or("");
        to = ObjPath::from(folder).join(format!("{short}-{name}"));
    }
    if folder == "rejected" {
        let json = serde_json::to_vec_pretty(receipt).unwrap_or_default();
        let r =
            ObjPath::from(folder).join(format!("{}.receipt.json", to.filename().unwrap_or(name)));
        os.put(&r, PutPayload::from(json))
            .await
            .map_err(os_err(folder))?;
    }
    os.rename(from, &to).await.map_err(os_err(folder))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            first: Duration::from_millis(500),
            cap: Duration::from_secs(5),
            attempts: 10,
        };
        let d: Vec<u64> = (1..=7).map(|n| b.delay(n).as_millis() as u64).collect();
        assert_eq!(d, vec![500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(b.delay(200), Duration::from_secs(5));
    }

    #[test]
    fn candidates_skip_partial_and_own_files() {
        for n in ["a.csv", "x.xlsx", "deaths 2025.csv.gz"] {
            assert!(is_candidate(n), "{n}");
        }
        for n in [
            ".a.csv",
            "a.csv.tmp",
            "a.csv.part",
            "a.csv.receipt.json",
            "",
        ] {
            assert!(!is_candidate(n), "{n}");
        }
    }

    #[tokio::test]
    async fn only_one_of_two_claims_wins_and_stale_claims_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let os = store.object_store().unwrap();
        let mut s = Settings::new(true);
        let a = claim(os.as_ref(), "f.csv", &s).await.unwrap();
        assert!(a.is_some());
        let b = claim(os.as_ref(), "f.csv", &s).await.unwrap();
        assert!(b.is_none(), "a live claim must not be taken");
        s.lease = Duration::from_millis(50);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let c = claim(os.as_ref(), "f.csv", &s).await.unwrap();
        assert_eq!(
            c.unwrap().filename(),
            Some("0000000002"),
            "a stale claim is taken over with the next generation"
        );
        release(os.as_ref(), "f.csv").await;
        assert!(
            claim_generations(os.as_ref(), "f.csv")
                .await
                .unwrap()
                .is_empty()
        );
    }
}
