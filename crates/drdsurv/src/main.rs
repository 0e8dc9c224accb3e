//! The `drdsurv` command. Parsing, telemetry and error reporting only; the work lives in the
//! library crates (see `cli.rs` for the commands).

mod cli;
mod config;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: the query engine allocates and frees large
/// buffers from many threads, and glibc's per-thread arenas kept that memory (the national
/// pipeline run peaked at 3.4 GB resident with glibc, 2.8 GB with two arenas). It is built
/// with `no_thp` (root Cargo.toml): asking for transparent huge pages made the kernel zero
/// 2 MB pages on every fresh arena page, 7-30% of ingest CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::main()
}
