//! The output shape of a run (DESIGN.md "Output shape"): every type here is serialized to JSON
//! with stable snake_case names that outside tools depend on. Renderers read these; the probe
//! engine writes them.

use crate::diagnose::Diagnosis;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::Reply;
use serde::Serialize;
use std::fmt;

/// The stages of one SMTP transaction, in the order they can happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Connect,
    Banner,
    Ehlo,
    Helo,
    Starttls,
    TlsHandshake,
    EhloTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    EndOfData,
    Rset,
    Quit,
}

impl Stage {
    pub const ALL: [Stage; 14] = [
        Stage::Connect,
        Stage::Banner,
        Stage::Ehlo,
        Stage::Helo,
        Stage::Starttls,
        Stage::TlsHandshake,
        Stage::EhloTls,
        Stage::Auth,
        Stage::MailFrom,
        Stage::RcptTo,
        Stage::Data,
        Stage::EndOfData,
        Stage::Rset,
        Stage::Quit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Banner => "banner",
            Stage::Ehlo => "ehlo",
            Stage::Helo => "helo",
            Stage::Starttls => "starttls",
            Stage::TlsHandshake => "tls_handshake",
            Stage::EhloTls => "ehlo_tls",
            Stage::Auth => "auth",
            Stage::MailFrom => "mail_from",
            Stage::RcptTo => "rcpt_to",
            Stage::Data => "data",
            Stage::EndOfData => "end_of_data",
            Stage::Rset => "rset",
            Stage::Quit => "quit",
        }
    }

    /// Parses the JSON stage names and the short forms admins use (DESIGN.md `explain --stage`):
    /// `connect` means the banner (the reply you get on connecting), `mail`, `rcpt`, `eod`.
    pub fn from_user(s: &str) -> Option<Stage> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Some(match s.as_str() {
            "connect" | "banner" | "greeting" => Stage::Banner,
            "ehlo" => Stage::Ehlo,
            "helo" => Stage::Helo,
            "starttls" => Stage::Starttls,
            "tls_handshake" | "tls" => Stage::TlsHandshake,
            "ehlo_tls" => Stage::EhloTls,
            "auth" => Stage::Auth,
            "mail" | "mail_from" => Stage::MailFrom,
            "rcpt" | "rcpt_to" => Stage::RcptTo,
            "data" => Stage::Data,
            "eod" | "end_of_data" | "dot" => Stage::EndOfData,
            "rset" => Stage::Rset,
            "quit" => Stage::Quit,
            _ => return None,
        })
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 2xx/3xx reply, or a non-reply stage (connect, handshake) that succeeded.
    Ok,
    /// 4xx reply.
    Transient,
    /// 5xx reply.
    Permanent,
    /// No usable reply: timeout, connection error, TLS failure, protocol violation.
    Error,
}

/// The kind of a stage error (DESIGN.md `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    Refused,
    Reset,
    Unreachable,
    Tls,
    Protocol,
    Dns,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageError {
    pub kind: ErrorKind,
    pub message: String,
}

/// One stage of a probe: what was sent (redacted), what came back, how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    pub stage: Stage,
    /// Command lines sent, secrets replaced by `<redacted>`.
    pub sent: Vec<String>,
    pub reply: Option<Reply>,
    pub elapsed_ms: f64,
    /// Time from the start of the probe to the start of this stage.
    pub started_ms: f64,
    /// True when the stage ran inside TLS.
    pub encrypted: bool,
    pub outcome: Outcome,
    pub error: Option<StageError>,
    /// Observations that are not failures by themselves (middlebox signs, a missing STARTTLS).
    pub notes: Vec<String>,
    pub diagnosis: Option<Diagnosis>,
}

/// The endpoint probed.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub host: String,
    pub ip: Option<String>,
    pub port: u16,
    /// `starttls-auto`, `starttls-require`, `none` or `implicit`.
    pub tls_mode: String,
    /// The name sent as SNI and checked against the certificate.
    pub tls_name: Option<String>,
}

/// EHLO capabilities before and after TLS.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CapabilitySet {
    pub before_tls: Option<Capabilities>,
    pub after_tls: Option<Capabilities>,
}

/// What the TLS handshake negotiated and what the server presented.
#[derive(Debug, Clone, Serialize)]
pub struct TlsReport {
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub key_exchange_group: Option<String>,
    pub alpn: Option<String>,
    /// True when the chain verified against the trust roots for `target.tls_name`.
    pub verified: bool,
    /// Why verification failed, when it did.
    pub verify_error: Option<String>,
    pub client_certificate_sent: bool,
    pub chain: Vec<CertInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub sans: Vec<String>,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub self_signed: bool,
    pub sha256: String,
}

/// The run's overall result.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// True when the check passed (exit 0).
    pub passed: bool,
    /// `ok`, `transient`, `permanent` or `error`: the worst outcome of a decisive stage.
    pub outcome: Outcome,
    /// The stage that decided the verdict, when it failed.
    pub failed_stage: Option<Stage>,
    pub summary: String,
    /// Findings that do not fail the check (certificate not verified in report mode, STARTTLS
    /// not offered in auto mode).
    pub warnings: Vec<String>,
}

/// One endpoint from connect to QUIT.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub target: Target,
    pub stages: Vec<StageRecord>,
    pub capabilities: CapabilitySet,
    pub tls: Option<TlsReport>,
    pub verdict: Verdict,
    pub started_at: String,
    pub elapsed_ms: f64,
    /// The probe id put in the X-Mxtrace-Probe header when `--data` was used.
    pub probe_id: Option<String>,
}
