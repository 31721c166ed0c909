//! One line of `sweep`'s JSONL output: the normalised target and its `probe` or `trace` result,
//! or why the target did not run. The sweep itself is the engine's (`mxtrace_core::sweep`).

use super::JobReport;
use serde::Serialize;

/// One line of output: the normalised target and its report, or why it did not run.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Record {
    /// The normalised target: `probe HOST:PORT`, `probe [v6]:PORT` or `trace DOMAIN`, or the
    /// line as read when it is not a target.
    pub input: String,
    #[serde(flatten)]
    pub body: RecordBody,
}

/// A `probe` or `trace` result (its fields beside `input`), or an `error`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum RecordBody {
    Report(JobReport),
    Error { error: RecordError },
}

/// A target that could not run.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecordError {
    pub kind: RecordErrorKind,
    pub message: String,
}

/// Why a target could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordErrorKind {
    /// The line is not a target, or not one the settings allow.
    Input,
    /// The settings do not fit the target (a TLS file, the resolver).
    Config,
}

impl RecordErrorKind {
    /// Its JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordErrorKind::Input => "input",
            RecordErrorKind::Config => "config",
        }
    }
}

impl Record {
    /// The command name of its JSONL envelope: the report's, or `sweep` for an error.
    pub fn command(&self) -> &'static str {
        match &self.body {
            RecordBody::Report(r) => r.command(),
            RecordBody::Error { .. } => "sweep",
        }
    }
}
