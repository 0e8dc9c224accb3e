//! # drd-server: what drdsurv serves over the network
//!
//! Today: [`http`], the read-only HTTP server for the rendered reports (`drdsurv serve
//! --http ADDR`), with `/healthz`. Flight SQL joins it in a later issue.
//!
//! ```no_run
//! # async fn f(store: drd_store::Store) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! drd_server::http::serve(listener, store, std::future::pending()).await
//! # }
//! ```

pub mod http;
