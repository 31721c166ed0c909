//! A result as stored on disk: the JSON `probe`, `trace` or `run` printed, or a `watch`
//! report, read back (by `diff` and `report`). The envelope (`schema_version`, `command`, `version`) says what the body is.

use super::roundtrip::RoundtripReport;
use super::watch::WatchReport;
use super::{ProbeReport, RunReport, TraceReport};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The version of the JSON shape, first in every result. It changes when a field is renamed or
/// removed or its meaning changes; new fields do not change it.
pub const SCHEMA_VERSION: u32 = 1;

/// A result read back, typed by its `command`.
#[derive(Debug, Clone)]
pub enum Document {
    Probe(Box<ProbeReport>),
    Trace(Box<TraceReport>),
    Run(Box<RunReport>),
    Watch(Box<WatchReport>),
    Roundtrip(Box<RoundtripReport>),
}

/// Why a file is not a result this version can read. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not JSON: {source}", file.display())]
    NotJson {
        file: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: not an mxtrace result (expected the JSON of run, probe, trace, roundtrip or a watch report)", file.display())]
    NotResult { file: PathBuf },
    #[error(
        "{}: no schema_version: written by an older mxtrace; produce it again with this one",
        file.display()
    )]
    NoSchema { file: PathBuf },
    #[error(
        "{}: schema_version {found} is not one this mxtrace reads (it reads {SCHEMA_VERSION})",
        file.display()
    )]
    UnknownSchema { file: PathBuf, found: String },
    #[error("{}: not a valid {command} result: {source}", file.display())]
    Invalid {
        file: PathBuf,
        command: &'static str,
        source: serde_json::Error,
    },
}

impl Document {
    /// `probe`, `trace`, `run` or `watch`.
    pub fn command(&self) -> &'static str {
        match self {
            Document::Probe(_) => "probe",
            Document::Trace(_) => "trace",
            Document::Run(_) => "run",
            Document::Watch(_) => "watch",
            Document::Roundtrip(_) => "roundtrip",
        }
    }

    /// When the result was produced.
    pub fn started_at(&self) -> &str {
        match self {
            Document::Probe(p) => &p.started_at,
            Document::Trace(t) => &t.started_at,
            Document::Run(r) => &r.started_at,
            Document::Watch(w) => &w.started_at,
            Document::Roundtrip(r) => &r.started_at,
        }
    }

    /// Reads and checks one result file.
    pub fn read(file: &Path) -> Result<Document, DocumentError> {
        let text = std::fs::read_to_string(file).map_err(|source| DocumentError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let value: Value =
            serde_json::from_str(&text).map_err(|source| DocumentError::NotJson {
                file: file.to_path_buf(),
                source,
            })?;
        Document::from_value(file, value)
    }

    /// Checks the envelope, then reads the body as the type its `command` names.
    pub fn from_value(file: &Path, value: Value) -> Result<Document, DocumentError> {
        let not_result = || DocumentError::NotResult {
            file: file.to_path_buf(),
        };
        let command: &'static str = match value.get("command").and_then(Value::as_str) {
            Some("probe") => "probe",
            Some("trace") => "trace",
            Some("run") => "run",
            Some("watch") => "watch",
            Some("roundtrip") => "roundtrip",
            _ => return Err(not_result()),
        };
        match value.get("schema_version") {
            Some(v) if v.as_u64() == Some(u64::from(SCHEMA_VERSION)) => {}
            Some(v) => {
                return Err(DocumentError::UnknownSchema {
                    file: file.to_path_buf(),
                    found: v.to_string(),
                })
            }
            None => {
                return Err(DocumentError::NoSchema {
                    file: file.to_path_buf(),
                })
            }
        }
        let invalid = |source| DocumentError::Invalid {
            file: file.to_path_buf(),
            command,
            source,
        };
        Ok(match command {
            "probe" => Document::Probe(serde_json::from_value(value).map_err(invalid)?),
            "trace" => Document::Trace(serde_json::from_value(value).map_err(invalid)?),
            "run" => Document::Run(serde_json::from_value(value).map_err(invalid)?),
            "roundtrip" => Document::Roundtrip(serde_json::from_value(value).map_err(invalid)?),
            _ => Document::Watch(serde_json::from_value(value).map_err(invalid)?),
        })
    }
}
