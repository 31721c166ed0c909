//! SMTP on the wire, without sockets: line and reply framing and parsing, EHLO capabilities.
//! The client connection is `mxtrace_net::conn`.

pub mod ehlo;
pub mod line;
pub mod reply;

use serde::{Deserialize, Serialize};

/// The kind of a stage error (`error.kind` in the JSON): what went wrong reaching or talking to
/// the server. Defined here, below the model, because the connection classifies OS errors into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    Refused,
    Reset,
    Unreachable,
    Tls,
    Protocol,
    Dns,
    /// AUTH could not be attempted: the server offers no AUTH, or no mechanism mxtrace has.
    Auth,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Dns => "dns",
            ErrorKind::Auth => "auth",
        }
    }
}
