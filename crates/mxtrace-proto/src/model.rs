//! The result model: what every command produces. Every type here is serialized to JSON with
//! stable snake_case names that outside tools depend on, and read back by `diff` and `report`.
//! Renderers read these; the engine writes them. The model depends only on `smtp`'s wire types
//! (replies, EHLO capabilities, error kinds); the classifier depends on it.

pub mod demo;
mod diagnosis;
pub mod diff;
mod document;
pub mod fleet;
pub mod headers;
pub mod posture;
pub mod roundtrip;
mod run;
#[cfg(feature = "schema")]
pub mod schema;
mod summary;
pub mod sweep;
mod time;
pub mod watch;

pub use crate::smtp::ErrorKind;
pub use diagnosis::{
    path_label, Category, Class, Confidence, Diagnosis, Explanation, Layer, PathContext, Scenario,
    SpfHints,
};
pub use document::{Document, DocumentError, SCHEMA_VERSION};
pub use run::{
    CheckReport, ExpectationResult, HopData, HopResult, HopRoundtrip, RunReport, RunSummary,
    RunVerdict,
};
pub use time::{micros, micros_of, ms, ms_from_micros};

use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::Reply;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The stages of one SMTP transaction, in the order they can happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

    /// The short stage names admins use (`explain --stage`, see its help).
    pub const SHORT_NAMES: [&'static str; 10] = [
        "connect", "banner", "ehlo", "helo", "starttls", "auth", "mail", "rcpt", "data", "eod",
    ];

    /// Parses the JSON stage names and the short forms admins use (`explain --stage`):
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

impl Outcome {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Transient => "transient",
            Outcome::Permanent => "permanent",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StageError {
    pub kind: ErrorKind,
    pub message: String,
}

/// One stage of a probe: what was sent (redacted), what came back, how long it took.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CapabilitySet {
    pub before_tls: Option<Capabilities>,
    pub after_tls: Option<Capabilities>,
}

/// What the TLS handshake negotiated and what the server presented.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TlsReport {
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub key_exchange_group: Option<String>,
    pub alpn: Option<String>,
    /// True when the chain verified against the trust roots for `target.tls_name`.
    pub verified: bool,
    /// Why verification failed, when it did; "no certificate received" when the handshake
    /// ended before the server sent one (then `verified` is false and `chain` empty).
    pub verify_error: Option<String>,
    /// The store whose roots verified the chain: "mozilla" (webpki-roots), "system" (the
    /// operating system's store) or "ca-file" (--tls-ca-file); null when not verified.
    #[serde(default)]
    pub trust_store: Option<String>,
    pub client_certificate_sent: bool,
    pub chain: Vec<CertInfo>,
    /// Why the certificate did not verify, explained, when the handshake itself completed
    /// (`--tls-verify report`): kept apart from the handshake stage, whose outcome is `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Diagnosis>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// What happened to each `--rcpt`, in the order given (absent when there was none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientResult>,
}

/// One recipient of the probe's transaction: its RCPT answer and, with `--data`, whether the
/// message reached it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecipientResult {
    pub address: String,
    pub status: RecipientStatus,
    /// The RCPT reply's basic and enhanced codes, when there was a reply.
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    /// The diagnosis category of a refusal (`recipient_unknown`, `relay_denied`, ...).
    pub category: Option<Category>,
    /// With `--data`: true when the end of data was accepted for this (accepted) recipient;
    /// null without `--data`.
    pub delivered: Option<bool>,
}

/// `accepted`, `refused`, or `not_tried` when the session ended before its RCPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecipientStatus {
    Accepted,
    Refused,
    NotTried,
}

/// Which DNS failure it was (the `reason` of an error of kind `dns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DnsReason {
    /// NXDOMAIN: the name does not exist.
    Nxdomain,
    /// NOERROR without data: the name exists, the record type does not.
    NoRecords,
    Servfail,
    Refused,
    Timeout,
    /// The resolver could not be reached.
    Network,
    Other,
}

impl DnsReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsReason::Nxdomain => "nxdomain",
            DnsReason::NoRecords => "no_records",
            DnsReason::Servfail => "servfail",
            DnsReason::Refused => "refused",
            DnsReason::Timeout => "timeout",
            DnsReason::Network => "network",
            DnsReason::Other => "other",
        }
    }
}

/// A DNS lookup that failed: an error of kind `dns` with its reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DnsFailure {
    /// Always `dns`.
    pub kind: ErrorKind,
    pub reason: DnsReason,
    /// The query, e.g. `contoso.com. MX`.
    pub query: String,
    pub message: String,
    /// Present when the failure decided the verdict.
    pub diagnosis: Option<Diagnosis>,
}

impl DnsFailure {
    pub fn new(reason: DnsReason, query: String, message: String) -> DnsFailure {
        DnsFailure {
            kind: ErrorKind::Dns,
            reason,
            query,
            message,
            diagnosis: None,
        }
    }

    /// NXDOMAIN or no data: the record is not published (not a failure of the lookup).
    pub fn is_absent(&self) -> bool {
        matches!(self.reason, DnsReason::Nxdomain | DnsReason::NoRecords)
    }
}

/// `trace`: one domain's mail path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TraceReport {
    pub domain: String,
    /// The DNS server asked: `system (/etc/resolv.conf)` or `IP:PORT`.
    pub resolver: String,
    pub port: u16,
    /// `mta` (walk as a sending MTA, stop at the first definitive answer) or `all`.
    pub mode: String,
    /// One hop today (the domain's MX); scenario hops (on-premises -> EOP) add more.
    pub hops: Vec<TraceHop>,
    pub verdict: Verdict,
    pub started_at: String,
    pub elapsed_ms: f64,
}

/// Where the MX list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MxSource {
    /// MX records.
    Mx,
    /// No MX records: the domain's own A/AAAA (RFC 5321 5.1).
    Implicit,
    /// `0 .`: the domain accepts no mail (RFC 7505).
    NullMx,
    /// Nothing usable (a DNS failure).
    None,
}

/// One hop: a domain, its MX hosts and their addresses, and the probes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TraceHop {
    pub hop: u8,
    pub domain: String,
    pub scenario: Option<Scenario>,
    pub mx_source: MxSource,
    /// In the order used: preference, equal preferences shuffled (RFC 5321 5.1).
    pub mx: Vec<MxHost>,
    /// Set when DNS alone decided the hop (NXDOMAIN, no MX and no address, SERVFAIL, ...).
    pub error: Option<DnsFailure>,
    pub dns_elapsed_ms: f64,
    /// In the order tried (with `--all`: the order a sending MTA would have used).
    pub probes: Vec<TraceProbe>,
    /// Index in `probes` of the probe that decided the verdict; null when none did (every
    /// address failed, or DNS decided).
    pub decided_by: Option<usize>,
    /// The domain's SPF record and what it says about the outbound path (hop 1 only; null when
    /// the domain publishes none or the lookup failed).
    pub spf: Option<SpfRecord>,
    /// The MTA-STS policy the walk applied (RFC 8461); absent when the domain has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mta_sts: Option<TraceMtaSts>,
    /// The walk judged per address family (IPv6, then IPv4), when the hop has addresses in
    /// both; absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<FamilyVerdict>,
    /// Probes made only for `families`: addresses of a family the walk did not reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub family_probes: Vec<TraceProbe>,
    pub verdict: Verdict,
}

/// A sending MTA's result over one address family.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FamilyVerdict {
    /// `ipv6` or `ipv4`.
    pub family: String,
    /// The addresses of that family, in the order walked.
    pub addresses: Vec<String>,
    pub passed: bool,
    pub outcome: Outcome,
    /// `MX [IP]` of the probe that decided; null when every address failed.
    pub decided_by: Option<String>,
    pub summary: String,
    /// What the receiver's published rules say about this family (Exchange Online's IPv6).
    pub notes: Vec<String>,
}

/// An MTA-STS policy as the walk applied it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TraceMtaSts {
    /// enforce, testing, none.
    pub mode: String,
    /// The policy's `mx:` patterns.
    pub mx: Vec<String>,
    pub max_age: u64,
    /// The `_mta-sts` record's id.
    pub id: Option<String>,
    /// fetched now, or from `--mta-sts-cache`.
    pub source: posture::PolicySource,
    /// When the cached policy was fetched (RFC 3339), with source `cache`.
    pub fetched_at: Option<String>,
    /// MX hosts no pattern matches: left out under enforce.
    pub unmatched_mx: Vec<String>,
}

/// Findings about an MX record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MxFlag {
    /// No MX: the domain itself, preference 0 (RFC 5321 5.1).
    Implicit,
    /// Shares its preference with another MX: their order was chosen at random.
    EqualPreference,
    /// The MX host name is an alias (CNAME): RFC 2181 10.3 / RFC 5321 5.1 forbid it.
    Cname,
    /// The MX exchange is an IP address, not a host name (RFC 5321 5.1): not used.
    IpLiteral,
    /// No A/AAAA record (in the families asked for).
    NoAddress,
    /// Not tried: beyond `--max-mx`.
    BeyondMaxMx,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MxHost {
    pub preference: u16,
    pub host: String,
    pub flags: Vec<MxFlag>,
    /// Where the alias points, with the `cname` flag.
    pub cname_target: Option<String>,
    pub addresses: Vec<AddressInfo>,
    /// Why the addresses could not be looked up (kind `dns`).
    pub error: Option<DnsFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AddressInfo {
    pub ip: String,
    /// PTR names (reverse DNS).
    pub ptr: Vec<String>,
    /// Forward-confirmed reverse DNS: a PTR name resolves back to this address. False without
    /// a PTR; null when the lookups failed.
    pub fcrdns: Option<bool>,
    pub ptr_error: Option<DnsFailure>,
}

/// One probe of one address, with the names the server gave.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TraceProbe {
    pub mx: String,
    pub ip: String,
    /// The name in the 220 banner (its first word).
    pub banner_name: Option<String>,
    /// The name in the EHLO reply.
    pub ehlo_name: Option<String>,
    /// Exchange Online front-end server names seen in replies (`*.outlook.com`).
    pub front_end: Vec<String>,
    pub report: ProbeReport,
}

/// A domain's SPF record (RFC 7208) and its scenario hints: `include:spf.protection.outlook.com`
/// means the domain sends through Exchange Online (scenario C; D when its own servers send too).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpfRecord {
    pub record: String,
    pub hints: SpfHints,
    /// More than one `v=spf1` record: RFC 7208 3.2 makes that a permanent error for every
    /// receiver.
    pub multiple: bool,
}

/// The report of a job, serialized as the report itself (a trace has `domain` and `hops`,
/// which a probe has not, so reading one back tells them apart).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum JobReport {
    Trace(Box<TraceReport>),
    Probe(Box<ProbeReport>),
}

impl JobReport {
    pub fn passed(&self) -> bool {
        match self {
            JobReport::Trace(t) => t.verdict.passed,
            JobReport::Probe(p) => p.verdict.passed,
        }
    }

    /// The command name in the JSON envelope.
    pub fn command(&self) -> &'static str {
        match self {
            JobReport::Trace(_) => "trace",
            JobReport::Probe(_) => "probe",
        }
    }
}

impl TraceMtaSts {
    /// `policy id 20261129 (mode enforce, mx: *.a.test, from the cache)`.
    pub fn describe(&self) -> String {
        let p = self;
        let from = match p.source {
            posture::PolicySource::Cache => ", from the cache",
            posture::PolicySource::Fetched => "",
        };
        format!(
            "policy{} (mode {}, mx: {}{from})",
            p.id.as_deref()
                .map(|i| format!(" id {i}"))
                .unwrap_or_default(),
            p.mode,
            p.mx.join(", ")
        )
    }
}

/// `IPv6` / `IPv4` for `ipv6` / `ipv4`.
pub fn family_label(family: &str) -> &'static str {
    if family == "ipv6" {
        "IPv6"
    } else {
        "IPv4"
    }
}
