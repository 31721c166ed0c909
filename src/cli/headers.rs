//! The `mxtrace headers` flags and help; the engine's `headers` module reads the message and
//! `dispatch` prints the report.

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
