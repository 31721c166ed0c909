//! The diagnosis part of a result: what a reply or an error means. These are plain data, so the
//! result model does not depend on the diagnosis engine (src/diagnose), which fills them in.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The class of a reply, from its basic code and enhanced status code (RFC 5321 4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Success,
    Transient,
    Permanent,
}

/// Reply categories: a fixed vocabulary that scripts match on (docs/diagnosis.md "Reply categories"). Names
/// are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Accepted,
    RecipientUnknown,
    MailboxDisabledOrFull,
    SenderRejected,
    RelayDenied,
    AuthRequired,
    AuthFailed,
    TlsRequired,
    TlsFailed,
    IpBlocklisted,
    ReputationOrRateLimited,
    Greylisted,
    PolicyOrTransportRule,
    SpfDkimDmarcFailure,
    MessageTooLarge,
    ContentRejected,
    DnsFailure,
    ConnectorOrRouting,
    ServiceUnavailable,
    ProtocolError,
    Other,
}

impl Category {
    pub const ALL: [Category; 21] = [
        Category::Accepted,
        Category::RecipientUnknown,
        Category::MailboxDisabledOrFull,
        Category::SenderRejected,
        Category::RelayDenied,
        Category::AuthRequired,
        Category::AuthFailed,
        Category::TlsRequired,
        Category::TlsFailed,
        Category::IpBlocklisted,
        Category::ReputationOrRateLimited,
        Category::Greylisted,
        Category::PolicyOrTransportRule,
        Category::SpfDkimDmarcFailure,
        Category::MessageTooLarge,
        Category::ContentRejected,
        Category::DnsFailure,
        Category::ConnectorOrRouting,
        Category::ServiceUnavailable,
        Category::ProtocolError,
        Category::Other,
    ];

    /// The exact name of the vocabulary (the JSON value).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Accepted => "accepted",
            Category::RecipientUnknown => "recipient_unknown",
            Category::MailboxDisabledOrFull => "mailbox_disabled_or_full",
            Category::SenderRejected => "sender_rejected",
            Category::RelayDenied => "relay_denied",
            Category::AuthRequired => "auth_required",
            Category::AuthFailed => "auth_failed",
            Category::TlsRequired => "tls_required",
            Category::TlsFailed => "tls_failed",
            Category::IpBlocklisted => "ip_blocklisted",
            Category::ReputationOrRateLimited => "reputation_or_rate_limited",
            Category::Greylisted => "greylisted",
            Category::PolicyOrTransportRule => "policy_or_transport_rule",
            Category::SpfDkimDmarcFailure => "spf_dkim_dmarc_failure",
            Category::MessageTooLarge => "message_too_large",
            Category::ContentRejected => "content_rejected",
            Category::DnsFailure => "dns_failure",
            Category::ConnectorOrRouting => "connector_or_routing",
            Category::ServiceUnavailable => "service_unavailable",
            Category::ProtocolError => "protocol_error",
            Category::Other => "other",
        }
    }

    /// The category with this exact name (scenario files name categories as JSON does).
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a failure sits, from the network up to the recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Dns,
    Network,
    SmtpSession,
    Tls,
    Auth,
    Connector,
    Reputation,
    Policy,
    Recipient,
    Service,
}

/// The four Microsoft 365 delivery scenarios (README, "Scenarios"): A third party -> Office 365,
/// B third party -> hybrid on-premises MX, C Office 365 -> third party, D hybrid centralized
/// mail flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Scenario {
    A,
    B,
    C,
    D,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Scenario::A => "A",
            Scenario::B => "B",
            Scenario::C => "C",
            Scenario::D => "D",
        };
        f.write_str(s)
    }
}

/// Where in the delivery path a probe runs; filled by `trace`/`run`, empty for a bare probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathContext {
    pub scenario: Option<Scenario>,
    pub hop: Option<u8>,
}

/// How sure the classifier is of a category (docs/diagnosis.md "Confidence"): `high` when a
/// vendor row, a specific enhanced code or a phrase naming one cause decided and nothing
/// contradicted it; `medium` when the evidence disagreed or was general (the words say
/// "probably" and name the runner-up); `low` when nothing decisive was found (the category is
/// then `other`, the best guess is the runner-up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    #[default]
    High,
    Medium,
    Low,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `explain` prints, and the core of a stage's diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Explanation {
    pub class: Class,
    pub category: Category,
    /// Documents written before the field existed read as `high` (what they claimed).
    #[serde(default)]
    pub confidence: Confidence,
    /// The next most likely category when the evidence was not conclusive.
    #[serde(default)]
    pub runner_up: Option<Category>,
    pub layer: Layer,
    pub cause: String,
    pub next_steps: Vec<String>,
}

/// A stage's diagnosis: the explanation placed in the delivery path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Diagnosis {
    pub category: Category,
    #[serde(default)]
    pub confidence: Confidence,
    #[serde(default)]
    pub runner_up: Option<Category>,
    pub layer: Layer,
    pub scenario: Option<Scenario>,
    pub hop: Option<u8>,
    pub cause: String,
    pub next_steps: Vec<String>,
}

impl Diagnosis {
    pub fn new(e: Explanation, ctx: PathContext) -> Diagnosis {
        Diagnosis {
            category: e.category,
            confidence: e.confidence,
            runner_up: e.runner_up,
            layer: e.layer,
            scenario: ctx.scenario,
            hop: ctx.hop,
            cause: e.cause,
            next_steps: e.next_steps,
        }
    }
}

/// What a domain's SPF record (RFC 7208) hints about its outbound path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpfHints {
    /// The text starts with `v=spf1`.
    pub is_spf: bool,
    /// `include:spf.protection.outlook.com`: the tenant sends through EOP (scenario C or D).
    pub sends_via_eop: bool,
    /// ip4/ip6/a/mx terms: servers of the domain's own send too (on-premises, as in D).
    pub own_servers: bool,
    /// Includes other than EOP's (third-party senders), at most 32.
    pub other_includes: Vec<String>,
    /// Top-level terms that cost a DNS lookup (include, a, mx, ptr, exists, redirect); the
    /// limit is 10 for the whole evaluation, nested includes count too.
    pub dns_lookup_terms: usize,
    /// Scenarios the record is consistent with: C when EOP sends, D too when own servers also
    /// appear (centralized mail flow goes out through on-premises).
    pub candidates: Vec<Scenario>,
}

/// The path a scenario's hop tests, as a trace or a report names it.
pub fn path_label(scenario: Scenario, hop: u8) -> &'static str {
    match (scenario, hop) {
        (Scenario::A, _) => "internet -> EOP",
        (Scenario::B, 1) => "internet -> on-premises MX",
        (Scenario::B, _) => "on-premises -> EOP",
        (Scenario::C, _) => "EOP -> third-party MX",
        (Scenario::D, 1) => "EOP -> on-premises smart host",
        (Scenario::D, _) => "on-premises -> third-party MX",
    }
}
