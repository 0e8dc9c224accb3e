//! # drd-store: where drdsurv keeps its tables
//!
//! A [`Store`] is opened from a URL (a plain path, `file://`, `memory://`, `s3://`, `gs://`,
//! `az://` or `abfss://`) and hands out Delta Lake tables laid out as architecture.md says:
//! `sources/<source>/<submitter>/`, `quarantine/<source>/<submitter>/`,
//! `receipts/<source>/<submitter>/`, and later `marts/`, `runs/`, `published/`.
//!
//! Cloud settings come from the standard environment (`AWS_*` including `AWS_ENDPOINT_URL` and
//! `AWS_ALLOW_HTTP`, `GOOGLE_*`, `AZURE_*`). Tables are created with the schema from
//! `drd-model` and written as zstd Parquet; a later schema may only add nullable columns
//! ([`Store::ensure_table`] refuses anything else). Every append can carry a Delta application
//! transaction (`txn`), which is how ingest records, inside the same atomic commit as the data,
//! that a file has been written to a table.
//!
//! ```no_run
//! # async fn f() -> Result<(), drd_store::Error> {
//! let store = drd_store::Store::open("./drdsurv-data")?;
//! let t = store.table_location("sources/coroner/coroner-a");
//! # Ok(()) }
//! ```

mod layout;
mod maintain;
mod portable;
mod table;
mod view;

pub use layout::{TableKind, table_path};
pub use maintain::{
    Commit, DEFAULT_RETENTION_DAYS, MaintainOptions, TableUpkeep, retention_properties,
    set_default_retention_days,
};
pub use portable::{ListingScans, PortablePlans, delta_provider, plans_travel, union_provider};
pub use table::{AppendResult, Appender, TableInfo, writer_properties};
pub use view::{current_view_sql, key_hash_udf, register_view_functions, stored_key};

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::ObjectStore;
use url::Url;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store URL is not one drdsurv can open.
    #[error("cannot open store '{url}': {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// An object-store operation failed.
    #[error("store {location}: {source}")]
    ObjectStore {
        /// Where.
        location: String,
        /// Cause.
        #[source]
        source: object_store::Error,
    },
    /// A Delta Lake operation failed.
    #[error("Delta table {table}: {source}")]
    Delta {
        /// Table location.
        table: String,
        /// Cause.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// A table exists with a schema that the new one cannot extend.
    #[error(
        "Delta table {table} has an incompatible schema: {reason}. Schemas may only gain nullable columns."
    )]
    Schema {
        /// Table location.
        table: String,
        /// What differs.
        reason: String,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of storage behind a store URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Local files.
    Local,
    /// In-process memory (tests; lost when the process ends).
    Memory,
    /// Amazon S3 or an S3-compatible server.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage / ADLS Gen2.
    Azure,
}

/// An opened store.
#[derive(Debug, Clone)]
pub struct Store {
    root: Url,
    backend: Backend,
    /// For `memory://`: the one in-memory object store every table of this store shares.
    memory: Option<Arc<dyn ObjectStore>>,
    options: HashMap<String, String>,
    /// History kept by tables this store creates, in days (see [`MaintainOptions`]).
    retention_days: u64,
}

impl Store {
    /// Opens a store. A plain path is made absolute and created if missing. Cloud settings
    /// come from the environment.
    pub fn open(spec: &str) -> Result<Store> {
        Store::open_with(spec, HashMap::new())
    }

    /// Opens a store with explicit storage options (e.g. `AWS_ENDPOINT_URL`,
    /// `AWS_ALLOW_HTTP`, keys), which take precedence over the same settings in the
    /// environment. Used where the environment cannot be changed (tests, several stores in
    /// one process).
    pub fn open_with(spec: &str, options: HashMap<String, String>) -> Result<Store> {
        let err = |reason: &str| Error::Url {
            url: spec.to_string(),
            reason: reason.to_string(),
        };
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(err("the store URL is empty"));
        }
        let url = if spec.contains("://") {
            Url::parse(spec).map_err(|e| err(&e.to_string()))?
        } else {
            let p = std::path::Path::new(spec);
            std::fs::create_dir_all(p)
                .map_err(|e| err(&format!("cannot create the folder: {e}")))?;
            let abs = std::fs::canonicalize(p).map_err(|e| err(&e.to_string()))?;
            Url::from_directory_path(&abs).map_err(|()| err("not an absolute path"))?
        };
        let backend = match url.scheme() {
            "file" => {
                let p = url
                    .to_file_path()
                    .map_err(|()| err("a file:// URL must hold an absolute path"))?;
                std::fs::create_dir_all(&p)
                    .map_err(|e| err(&format!("cannot create the folder: {e}")))?;
                Backend::Local
            }
            "memory" => Backend::Memory,
            "s3" | "s3a" => Backend::S3,
            "gs" => Backend::Gcs,
            "az" | "abfs" | "abfss" | "azure" => Backend::Azure,
            other => {
                return Err(err(&format!(
                    "unsupported scheme '{other}': use a path, file://, memory://, s3://, gs:// or az://"
                )));
            }
        };
        if matches!(backend, Backend::S3 | Backend::Gcs | Backend::Azure)
            && url.host_str().is_none_or(str::is_empty)
        {
            return Err(err("the URL names no bucket or container"));
        }
        let mut root = url;
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        let memory = (backend == Backend::Memory)
            .then(|| Arc::new(object_store::memory::InMemory::new()) as Arc<dyn ObjectStore>);
        let mut all = cloud_options(backend);
        all.extend(options);
        Ok(Store {
            root,
            backend,
            memory,
            options: all,
            retention_days: maintain::default_retention_days(),
        })
    }

    /// The root URL (always ends with `/`).
    pub fn url(&self) -> &Url {
        &self.root
    }

    /// The backend kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Storage options passed to Delta and object_store (from the environment).
    pub fn options(&self) -> &HashMap<String, String> {
        &self.options
    }

    /// A plain object store rooted at this store's URL (paths are relative to the root), for
    /// files that are not Delta tables: inbox files, claims, `done/` and `rejected/`.
    pub fn object_store(&self) -> Result<Arc<dyn ObjectStore>> {
        let err = |e: object_store::Error| Error::ObjectStore {
            location: self.root.to_string(),
            source: e,
        };
        match self.backend {
            Backend::Memory => {
                let mem = self.memory.clone().ok_or_else(|| Error::Url {
                    url: self.root.to_string(),
                    reason: "memory store without its object store".into(),
                })?;
                let prefix = object_store::path::Path::from(self.root.path());
                Ok(Arc::new(object_store::prefix::PrefixStore::new(
                    mem, prefix,
                )))
            }
            Backend::Local => {
                let p = self.root.to_file_path().map_err(|()| Error::Url {
                    url: self.root.to_string(),
                    reason: "not a local path".into(),
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(p).map_err(err)?;
                Ok(Arc::new(fs))
            }
            Backend::S3 | Backend::Gcs | Backend::Azure => {
                let (store, prefix) =
                    object_store::parse_url_opts(&self.root, self.options.iter()).map_err(err)?;
                if prefix.as_ref().is_empty() {
                    Ok(Arc::from(store))
                } else {
                    Ok(Arc::new(object_store::prefix::PrefixStore::new(
                        store, prefix,
                    )))
                }
            }
        }
    }

    /// The object store behind this store's tables as a query engine must register it (keyed by
    /// scheme and bucket, rooted at the bucket), for engines whose executors do not open the
    /// tables through Delta (Ballista). `None` for a local store: every engine reads `file://`.
    pub fn engine_object_store(&self) -> Result<Option<(Url, Arc<dyn ObjectStore>)>> {
        let err = |e: object_store::Error| Error::ObjectStore {
            location: self.root.to_string(),
            source: e,
        };
        let mut base = self.root.clone();
        base.set_path("/");
        match self.backend {
            Backend::Local => Ok(None),
            Backend::Memory => {
                let mem = self.memory.clone().ok_or_else(|| Error::Url {
                    url: self.root.to_string(),
                    reason: "memory store without its object store".into(),
                })?;
                Ok(Some((base, mem)))
            }
            Backend::S3 | Backend::Gcs | Backend::Azure => {
                let (store, _) =
                    object_store::parse_url_opts(&base, self.options.iter()).map_err(err)?;
                Ok(Some((base, Arc::from(store))))
            }
        }
    }

    /// The URL of a table or folder below the root, e.g. `sources/coroner/coroner-a`.
    pub fn table_location(&self, rel: &str) -> Url {
        let rel = rel.trim_matches('/');
        self.root
            .join(&format!("{rel}/"))
            .unwrap_or_else(|_| self.root.clone())
    }
}

/// Reads cloud settings from the environment so Delta and object_store see the same ones.
/// `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` make S3-compatible servers (MinIO, moto) work.
fn cloud_options(backend: Backend) -> HashMap<String, String> {
    let prefixes: &[&str] = match backend {
        Backend::S3 => &["AWS_"],
        Backend::Gcs => &["GOOGLE_"],
        Backend::Azure => &["AZURE_"],
        _ => &[],
    };
    std::env::vars()
        .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("a/b").to_str().unwrap()).unwrap();
        assert_eq!(s.backend(), Backend::Local);
        assert!(s.url().as_str().starts_with("file:///") && s.url().as_str().ends_with("/a/b/"));
        assert!(
            s.table_location("sources/coroner/x")
                .as_str()
                .ends_with("/a/b/sources/coroner/x/")
        );
        assert_eq!(
            Store::open("memory:///").unwrap().backend(),
            Backend::Memory
        );
        assert_eq!(
            Store::open("s3://bucket/prefix").unwrap().url().as_str(),
            "s3://bucket/prefix/"
        );
        assert_eq!(Store::open("gs://b").unwrap().backend(), Backend::Gcs);
        assert_eq!(
            Store::open("abfss://c@acct.dfs.core.windows.net/x")
                .unwrap()
                .backend(),
            Backend::Azure
        );
        let e = Store::open("ftp://x/y").unwrap_err().to_string();
        assert!(e.contains("'ftp'") && e.contains("s3://"), "{e}");
        let e = Store::open("s3:///nobucket").unwrap_err().to_string();
        assert!(e.contains("no bucket"), "{e}");
        assert!(Store::open("").is_err());
    }
}
