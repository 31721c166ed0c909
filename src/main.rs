//! Thin entry point: parse, dispatch, exit code.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use clap::Parser;
use mxtrace::cli;
use mxtrace_core::exit;
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error and 0 for --help/--version.
    let cli = cli::Cli::parse();
    // Boxed: CliError carries the typed errors of every layer and is large.
    match std::panic::catch_unwind(|| cli::dispatch::run(&cli).map_err(Box::new)) {
        Ok(Ok(code)) => exit::code(code),
        Ok(Err(e)) => {
            if e.is_internal() {
                eprintln!("mxtrace: internal error: {e}");
            } else {
                eprintln!("mxtrace: {e}");
            }
            exit::code(e.exit_code())
        }
        Err(_) => {
            eprintln!("mxtrace: internal error (panic); please report it");
            exit::code(exit::INTERNAL)
        }
    }
}
