//! The `drdsurv` command. Parsing, telemetry and error reporting only; the work lives in the
//! library crates (see `cli.rs` for the commands).

mod cli;
mod config;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
