//! `mxtrace roundtrip`'s result: a probe message sent, looked for in a mailbox over IMAP, and
//! what its delivered copy says about the path it took and what the receiving side made of
//! it. Serialized both ways (`report` renders a saved one).

use super::headers::Zone;
use super::posture::Severity;
use super::{Category, JobReport, Scenario};
use serde::{Deserialize, Serialize};

/// The whole round trip (`roundtrip --json`, after `command` and `version`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RoundtripReport {
    /// The id in the message's `X-Mxtrace-Probe` header, Message-ID and Subject.
    pub probe_id: String,
    pub from: Option<String>,
    pub rcpt: String,
    /// The mailbox looked in.
    pub mailbox: MailboxSummary,
    /// The mailbox the bounces of the sender arrive in (`--ndr-mailbox`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndr_mailbox: Option<MailboxSummary>,
    /// How long mxtrace waited for the message (`--within`).
    pub within_s: f64,
    pub sent: Sent,
    pub delivery: Delivery,
    /// The delivered copy's Received chain, read by the headers engine.
    pub path: Option<RoundtripPath>,
    /// What the receiving side concluded (Authentication-Results, Exchange's stamps).
    pub receiver: Option<ReceiverVerdicts>,
    /// The bounce found in the NDR mailbox, read as `mxtrace headers` reads one.
    pub bounce: Option<Bounce>,
    /// What would hurt real mail, each with its severity: an error fails the round trip.
    pub findings: Vec<RoundtripFinding>,
    /// What was deleted (only mxtrace's own messages, by UID) or left, and why.
    pub cleanup: Vec<Cleanup>,
    /// The IMAP commands, credentials redacted.
    pub imap: Vec<ImapStep>,
    pub verdict: RoundtripVerdict,
    pub started_at: String,
    pub elapsed_ms: f64,
}

/// A mailbox as used: its address (never a password) and what the server offered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MailboxSummary {
    /// `imaps://USER@HOST:PORT`.
    pub url: String,
    /// TLS version and cipher of the IMAP connection.
    pub tls: Option<String>,
    /// IDLE (RFC 2177): waited for with it; without, polled.
    pub idle: bool,
    /// UIDPLUS (RFC 4315): UID EXPUNGE deletes only mxtrace's message.
    pub uidplus: bool,
    /// The Junk folder (SPECIAL-USE `\Junk`, RFC 6154; or a usual name); null when none.
    pub junk_folder: Option<String>,
    /// How it was found: `special-use` or `name`.
    pub junk_found_by: Option<String>,
    /// The SASL mechanism or `LOGIN`.
    pub login: String,
}

/// The probe message as it was handed over.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Sent {
    /// True when a server accepted the end of DATA.
    pub accepted: bool,
    /// The host and address that accepted it.
    pub host: Option<String>,
    pub ip: Option<String>,
    /// When the end of DATA was accepted (RFC 3339, ms).
    pub at: Option<String>,
    /// The reply to the end of DATA (`250 2.0.0 Ok: queued as ...`).
    pub reply: Option<String>,
    /// The `probe` (with `--via`) or `trace` (the recipient domain's MX) that sent it.
    pub report: JobReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Found in the mailbox.
    Delivered,
    /// Accepted, not found within the time allowed, no bounce seen.
    NotDelivered,
    /// A non-delivery report came back to the sender.
    Bounced,
    /// No server accepted the message.
    NotSent,
    /// The mailbox failed while waiting: whether it arrived is not known.
    Unknown,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::NotDelivered => "not_delivered",
            DeliveryStatus::Bounced => "bounced",
            DeliveryStatus::NotSent => "not_sent",
            DeliveryStatus::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FolderKind {
    Inbox,
    Junk,
}

impl FolderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FolderKind::Inbox => "inbox",
            FolderKind::Junk => "junk",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Delivery {
    pub status: DeliveryStatus,
    pub folder: Option<FolderKind>,
    /// The folder's name on the server (`INBOX`, `Junk`, `Junk Email`).
    pub folder_name: Option<String>,
    pub uid: Option<u32>,
    /// From the end of DATA to the message showing in the mailbox, by mxtrace's clock.
    pub seconds: Option<f64>,
    /// The same delay as the message's Received chain tells it: from the first stamp to the
    /// last (whole seconds, the servers' clocks).
    pub header_seconds: Option<i64>,
    /// When not delivered: where the message was last seen.
    pub last_seen: Option<LastSeen>,
    /// Why the mailbox could not say (status `unknown`).
    pub error: Option<String>,
}

/// The last place the message is known to have been.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LastSeen {
    pub host: String,
    pub ip: Option<String>,
    pub at: Option<String>,
    pub reply: Option<String>,
}

/// One Received hop of the delivered copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PathHop {
    /// 1 for the oldest stamp (nearest the sender).
    pub index: usize,
    pub from: Option<String>,
    pub from_ip: Option<String>,
    pub by: Option<String>,
    pub with: Option<String>,
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    /// The stamp's time (RFC 3339, UTC).
    pub time: Option<String>,
    /// Seconds since the previous stamp.
    pub delay_s: Option<i64>,
    pub clock_skew: bool,
    pub zone: Zone,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RoundtripPath {
    pub hops: Vec<PathHop>,
    /// The zones passed through, sender first.
    pub zones: Vec<Zone>,
    /// The delivery scenario the path shows (A-D), when it shows one.
    pub scenario: Option<Scenario>,
    /// The scenario expected (`--scenario`).
    pub expected_scenario: Option<Scenario>,
    pub total_delay_s: Option<i64>,
    pub slowest_hop: Option<usize>,
}

/// One authentication verdict of the receiving side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuthVerdict {
    /// `spf`, `dkim`, `dmarc`, `compauth`, ...
    pub method: String,
    pub result: String,
    /// `reason=`, `action=` or the comment, when there is one.
    pub detail: Option<String>,
    /// The server that wrote it (authserv-id).
    pub by: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReceiverVerdicts {
    /// The topmost Authentication-Results (the last receiving server's).
    pub auth: Vec<AuthVerdict>,
    /// Exchange Online Protection's spam confidence level (-1 to 9).
    pub scl: Option<i32>,
    /// The Forefront spam filtering verdict (`SFV`: NSPM, SPM, SKS, ...) and its meaning.
    pub spam_verdict: Option<String>,
    pub spam_verdict_meaning: Option<String>,
    /// `X-Spam-Flag` / `X-Spam-Status` of other filters (SpamAssassin, rspamd).
    pub spam_flag: Option<String>,
}

/// A bounce that came back for the probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Bounce {
    pub folder_name: String,
    pub uid: u32,
    /// From the end of DATA to the bounce showing in the NDR mailbox.
    pub seconds: Option<f64>,
    pub reporting_mta: Option<String>,
    pub recipients: Vec<BounceRecipient>,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BounceRecipient {
    pub recipient: String,
    pub action: Option<String>,
    pub status: Option<String>,
    pub remote_mta: Option<String>,
    pub diagnostic_code: Option<String>,
    /// The classifier's reading of the diagnostic reply.
    pub category: Option<Category>,
    pub cause: Option<String>,
}

/// Something about the delivered copy (or its absence) that would hurt real mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RoundtripFinding {
    /// Stable: `not_delivered`, `bounced`, `landed_in_junk`, `spam_verdict`, `dmarc_fail`,
    /// `compauth_fail`, `spf_fail`, `dkim_fail`, `hop_without_tls`, `slow_hop`,
    /// `scenario_mismatch`, `scenario_unknown`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    /// The public source of the rule.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CleanupAction {
    /// Flagged \Deleted and removed by UID EXPUNGE (RFC 4315).
    Deleted,
    /// `--keep`.
    Kept,
    /// The server has no UIDPLUS: an EXPUNGE could remove other messages marked deleted.
    LeftNoUidplus,
    /// The server refused or the connection failed.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Cleanup {
    /// `probe` or `bounce`.
    pub message: String,
    pub folder: String,
    pub uid: u32,
    pub action: CleanupAction,
    pub detail: Option<String>,
}

/// One IMAP command and its tagged answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ImapStep {
    /// `mailbox` or `ndr_mailbox`.
    pub mailbox: String,
    /// As sent, credentials replaced by `<redacted>`; `(connect)` and `(greeting)` too.
    pub command: String,
    /// The tagged status line (or the error).
    pub reply: String,
    pub ok: bool,
    /// Since the start of the round trip.
    pub started_ms: f64,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RoundtripVerdict {
    /// Delivered to the inbox with no error finding (exit 0).
    pub passed: bool,
    pub summary: String,
}
