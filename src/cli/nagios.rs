//! `--format nagios` on the command line: the threshold flags of `probe`, `trace` and `run`,
//! and the plugin convention that anything that keeps the check from running (a bad flag, a
//! bad scenario file) is UNKNOWN (exit 3) with a status line on stdout, not exit 2.

use super::{Cli, CliError, Command, Format};
use clap::{Args, Parser};
use mxtrace_render::nagios::{self, parse_days, Limit, Thresholds};

const HEADING: &str = "Monitoring (--format nagios)";

/// Thresholds of the Nagios format; see docs/output-formats.md "Nagios and Icinga".
#[derive(Debug, Args, Clone, Default)]
pub struct NagiosArgs {
    /// WARNING when the check takes longer than DURATION, or STAGE=DURATION when that stage
    /// does (connect, banner, ehlo, starttls, tls_handshake, ehlo_tls, auth, mail_from,
    /// rcpt_to, data, end_of_data; or mail, rcpt, tls, eod); repeatable.
    #[arg(long, value_name = "[STAGE=]DURATION", help_heading = HEADING)]
    pub warning: Vec<Limit>,
    /// CRITICAL when the check, or a stage, takes longer (same syntax as --warning).
    #[arg(long, value_name = "[STAGE=]DURATION", help_heading = HEADING)]
    pub critical: Vec<Limit>,
    /// WARNING when the server certificate has fewer days left (30 or 30d).
    #[arg(long, value_name = "DAYS", value_parser = parse_days, help_heading = HEADING)]
    pub cert_warning: Option<u32>,
    /// CRITICAL when the server certificate has fewer days left.
    #[arg(long, value_name = "DAYS", value_parser = parse_days, help_heading = HEADING)]
    pub cert_critical: Option<u32>,
}

impl NagiosArgs {
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            warning: self.warning.clone(),
            critical: self.critical.clone(),
            cert_warning: self.cert_warning,
            cert_critical: self.cert_critical,
        }
    }
}

/// A flag of the Nagios format used where it means nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NagiosUsage {
    #[error("--format nagios applies to probe, trace and run")]
    NotACheck,
    #[error("--warning, --critical, --cert-warning and --cert-critical need --format nagios")]
    ThresholdsWithoutNagios,
}

/// The thresholds of the command, checked against the format.
pub fn thresholds(cli: &Cli) -> Result<Thresholds, CliError> {
    let args = match &cli.command {
        Command::Probe(a) => Some(&a.nagios),
        Command::Trace(a) => Some(&a.nagios),
        Command::Run(a) => Some(&a.nagios),
        _ => None,
    };
    let t = args.map(NagiosArgs::thresholds).unwrap_or_default();
    match (cli.format(), args) {
        (Format::Nagios, None) => Err(NagiosUsage::NotACheck.into()),
        (Format::Nagios, Some(_)) => Ok(t),
        _ if !t.is_empty() => Err(NagiosUsage::ThresholdsWithoutNagios.into()),
        _ => Ok(t),
    }
}

/// Parses the command line; under `--format nagios` a usage error is UNKNOWN (exit 3) with a
/// status line on stdout (clap's message still goes to stderr).
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && asked_for(std::env::args()) => {
            let _ = e.print();
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let why = first.strip_prefix("error: ").unwrap_or(first);
            std::process::exit(unknown(&format!("usage: {why}")).into())
        }
        Err(e) => e.exit(),
    }
}

/// Whether the raw arguments ask for the Nagios format (before clap has accepted them).
fn asked_for(args: impl Iterator<Item = String>) -> bool {
    let args: Vec<String> = args.collect();
    args.windows(2)
        .any(|w| matches!(w, [a, b] if a == "--format" && b == "nagios"))
        || args.iter().any(|a| a == "--format=nagios")
}

/// Prints the UNKNOWN status line for `message`; returns its exit code.
pub fn unknown(message: &str) -> u8 {
    let r = nagios::render_unknown(message);
    print!("{}", r.text);
    r.state.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_found_in_raw_arguments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(asked_for(
            args(&["mxtrace", "probe", "--format", "nagios"]).into_iter()
        ));
        assert!(asked_for(
            args(&["mxtrace", "--format=nagios", "x"]).into_iter()
        ));
        assert!(!asked_for(
            args(&["mxtrace", "probe", "nagios"]).into_iter()
        ));
    }
}
