//! Explaining replies and errors: a reply's class (RFC 5321/3463), its category from the fixed
//! vocabulary of DESIGN.md, the failure layer, the likely cause and next steps, tagged with the
//! delivery scenario and hop.

mod advice;
mod classify;
mod errors;
mod peer;
mod rules;
mod scenario;
mod tables;

pub use classify::{classify_reply, Finding, Tier};
pub use errors::{
    explain_observation, explain_tls_verification, observe_banner, observe_ehlo, Observation,
};
pub use peer::{fit_steps, identify as identify_peer, Peer};
pub use scenario::{
    diagnose, hints_from_spf, is_eop_host, path_label, scenario_for_host, scenario_for_mx,
    tenant_routing_domain, MxFlag, Observed, ScenarioDetection, SpfHints,
};

use crate::model::{ErrorKind, Stage};
use crate::smtp::reply::Reply;
use serde::Serialize;
use std::fmt;

/// The class of a reply, from its basic code and enhanced status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Success,
    Transient,
    Permanent,
}

/// Reply categories: an interface (DESIGN.md). Names are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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

    /// The exact name of DESIGN.md's vocabulary (the JSON value).
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

/// Failure layers of the runbooks (DESIGN.md "Layers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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

/// The four Microsoft 365 delivery scenarios (reference/002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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

/// What `explain` prints, and the core of a stage's diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub class: Class,
    pub category: Category,
    pub layer: Layer,
    pub cause: String,
    pub next_steps: Vec<String>,
}

/// A stage's diagnosis (DESIGN.md `diagnosis`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub category: Category,
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
            layer: e.layer,
            scenario: ctx.scenario,
            hop: ctx.hop,
            cause: e.cause,
            next_steps: e.next_steps,
        }
    }
}

/// Class from the basic code (RFC 5321 4.2.1): 2xx and 3xx are positive, 4xx transient,
/// 5xx permanent.
pub fn class_of(reply: &Reply) -> Class {
    match reply.first_digit() {
        2 | 3 => Class::Success,
        4 => Class::Transient,
        _ => Class::Permanent,
    }
}

/// Explains one reply received at `stage` (None when the stage is unknown, as with a pasted
/// reply without `--stage`).
pub fn explain_reply(stage: Option<Stage>, reply: &Reply) -> Explanation {
    let f = classify_reply(stage, reply);
    Explanation {
        class: f.class,
        category: f.category,
        layer: f.layer,
        cause: f.cause,
        next_steps: f.next_steps,
    }
}

/// Explains a stage that ended without a usable reply (see errors.rs for the category rule).
pub fn explain_error(stage: Stage, kind: ErrorKind, detail: &str) -> Explanation {
    errors::explain_error(stage, kind, detail)
}

#[cfg(test)]
mod tests;
