//! The `mxtrace headers` front end: its flags (clap) and the run that turns the engine's
//! report (src/headers) into output and an exit code. Kept apart from src/cli.rs so the
//! command is one variant and one dispatch arm there.

use crate::exit;
use crate::headers::{analyze, read_input, render::render_human, HeadersError};
use crate::report::human::Style;
use clap::Args;
use std::path::PathBuf;

pub const HEADERS_EXAMPLES: &str = "\
Examples:
  mxtrace headers message.eml       # hops, delays, TLS, authentication, anti-spam verdicts
  mxtrace headers ndr.eml --json    # an NDR: each failed recipient explained
  pbpaste | mxtrace headers -       # headers pasted from Outlook's message options

Reads a whole message (.eml) or just its header block, up to 16 MiB. Nothing is contacted:
the commands under \"Test the path now\" are for you to run.

Exit codes:
  0  the message was read (a delivered message, or a report without failed recipients)
  1  the message shows a failure: a non-delivery report with failed recipients
  2  input error: unreadable file, too large, empty, or not a message
  3  internal error";

#[derive(Debug, Args)]
pub struct HeadersArgs {
    /// The message or NDR: an .eml file, saved headers, or `-` for standard input.
    #[arg(value_name = "FILE.eml|-")]
    pub file: PathBuf,
}

/// Why `headers` stopped: bad input (exit 2) or a failure of ours (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum HeadersRunError {
    #[error(transparent)]
    Input(#[from] HeadersError),
    #[error("rendering JSON: {0}")]
    Internal(#[from] serde_json::Error),
}

/// Reads, analyzes and renders; returns the text to print and the exit code.
pub fn run(args: &HeadersArgs, json: bool, color: bool) -> Result<(String, u8), HeadersRunError> {
    let raw = read_input(&args.file)?;
    let report = analyze(&args.file.display().to_string(), &raw)?;
    let text = if json {
        crate::report::json::render("headers", &report)?
    } else {
        render_human(&report, Style::new(color))
    };
    let code = if report.verdict.passed {
        exit::PASS
    } else {
        exit::FAIL
    };
    Ok((text, code))
}
