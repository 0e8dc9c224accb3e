//! # drd-server: what drdsurv serves over the network, and who may read what
//!
//! - [`access`]: roles (`national`, `partnership:<code>`, `public`), the catalog a store
//!   exposes (schemas `sources`, `marts`, `published`, `reference`, `ops`) and each role's
//!   session, where restricted tables are filtered views and forbidden ones do not exist.
//! - [`auth`]: bearer tokens (configured as SHA-256 hashes), HS256 JWTs, Basic handshake.
//! - [`query`]: one user's SQL: read-only checks, per-query memory and time limits, audit.
//! - [`audit`]: the `audit/` Delta table.
//! - [`flight`]: the Arrow Flight SQL endpoint (`drdsurv serve --flight ADDR`), optional TLS.
//! - [`http`]: the read-only HTTP server for the rendered reports (`serve --http ADDR`).
//!
//! `drdsurv sql` uses [`query`] and [`access`] too, so the command line and the network see
//! the same catalog, functions and rules.
//!
//! ```no_run
//! # async fn f(store: drd_store::Store) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! drd_server::http::serve(listener, store, std::future::pending()).await
//! # }
//! ```

pub mod access;
pub mod audit;
pub mod auth;
pub mod flight;
pub mod http;
pub mod query;
