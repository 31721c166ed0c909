//! Thin entry point: parse, dispatch, exit code.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mxtrace::cli;
use mxtrace_proto::exit;
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error and 0 for --help/--version.
    // Under --format nagios a usage error is UNKNOWN (3) instead of clap's 2.
    let cli = cli::nagios::parse();
    let nagios = cli.format() == cli::Format::Nagios;
    // Boxed: CliError carries the typed errors of every layer and is large.
    match std::panic::catch_unwind(|| cli::dispatch::run(&cli).map_err(Box::new)) {
        Ok(Ok(code)) => exit::code(code),
        Ok(Err(e)) if nagios => exit::code(cli::nagios::unknown(&e.to_string())),
        Ok(Err(e)) => {
            if e.is_internal() {
                eprintln!("mxtrace: internal error: {e}");
            } else {
                eprintln!("mxtrace: {e}");
            }
            exit::code(e.exit_code())
        }
        Err(_) => {
            if nagios {
                cli::nagios::unknown("internal error (panic); please report it");
            }
            eprintln!("mxtrace: internal error (panic); please report it");
            exit::code(exit::INTERNAL)
        }
    }
}
