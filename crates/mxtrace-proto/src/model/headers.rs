//! The result of `mxtrace headers`: a delivered message's Received chain read as a path
//! through the delivery scenarios, its authentication results and Exchange stamps, or a
//! non-delivery report's recipients, each explained. The reading is the engine's
//! (`mxtrace_core::headers`).

use super::{Explanation, Scenario, Stage};
use serde::Serialize;
use std::collections::BTreeMap;

/// Whether the input is a delivered message or a non-delivery report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Message,
    Ndr,
}

/// One message's evidence: the outer message, or the original an NDR returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MessageFacts {
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
    pub hops: Vec<Hop>,
    pub path: PathSummary,
    pub authentication: Authentication,
    pub exchange: ExchangeStamps,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NdrReport {
    #[serde(flatten)]
    pub ndr: Ndr,
    /// The returned message (its headers), when the NDR carries it.
    pub original: Option<MessageFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HeadersVerdict {
    /// False when the message shows a failure (an NDR with failed recipients): exit 1.
    pub passed: bool,
    pub summary: String,
}

/// The `headers` result (`--json` prints it after `command` and `version`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HeadersReport {
    pub source: String,
    pub kind: MessageKind,
    pub message: MessageFacts,
    pub ndr: Option<NdrReport>,
    /// `mxtrace probe`/`trace` commands that test the same path now.
    pub next_steps: Vec<String>,
    pub verdict: HeadersVerdict,
}

/// Where a hop's receiving server sits in the delivery path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    ExchangeOnline,
    OnPremisesExchange,
    ThirdParty,
    Unknown,
}

impl Zone {
    pub fn label(self) -> &'static str {
        match self {
            Zone::ExchangeOnline => "Exchange Online",
            Zone::OnPremisesExchange => "on-premises Exchange",
            Zone::ThirdParty => "third party",
            Zone::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HopTls {
    pub version: Option<String>,
    pub cipher: Option<String>,
}

/// One Received field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Hop {
    /// 1 for the oldest stamp (nearest the sender).
    pub index: usize,
    pub from: Option<String>,
    pub from_ip: Option<String>,
    pub from_rdns: Option<String>,
    pub helo: Option<String>,
    pub by: Option<String>,
    /// The protocol (`ESMTPS`, `ESMTPSA`, ...) or the server's own words (`Microsoft SMTP
    /// Server`).
    pub with: Option<String>,
    pub tls: Option<HopTls>,
    pub id: Option<String>,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    pub via: Option<String>,
    /// The stamp's time in UTC (RFC 3339).
    pub time: Option<String>,
    #[serde(skip)]
    pub timestamp: Option<i64>,
    /// Seconds since the previous hop's stamp.
    pub delay_s: Option<i64>,
    /// This hop's time is earlier than the previous hop's: one of the two clocks is wrong.
    pub clock_skew: bool,
    pub zone: Zone,
    pub raw: String,
}

/// A leg of a delivery scenario, found where the zone changes along the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Leg {
    pub hop: u8,
    pub label: &'static str,
    /// The Received hop (index) where the message entered the leg's receiving side.
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PathSummary {
    /// The zones the message went through, sender first, repeats and unknowns dropped.
    pub zones: Vec<Zone>,
    pub scenario: Option<Scenario>,
    pub legs: Vec<Leg>,
    pub total_delay_s: Option<i64>,
    /// The hop (index) with the longest delay, when any delay is positive.
    pub slowest_hop: Option<usize>,
    pub clock_skew: bool,
}

/// One `method=result` of an Authentication-Results header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuthResult {
    /// `Authentication-Results` or `ARC-Authentication-Results`.
    pub header: &'static str,
    pub authserv_id: Option<String>,
    /// ARC instance (`i=`), for ARC-Authentication-Results.
    pub instance: Option<String>,
    pub method: String,
    pub result: String,
    pub comment: Option<String>,
    /// `reason=`, `action=`, `smtp.mailfrom=`, `header.d=` and the like.
    pub properties: BTreeMap<String, String>,
    /// For compauth: what its reason code means.
    pub meaning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReceivedSpf {
    pub result: String,
    pub comment: Option<String>,
    pub client_ip: Option<String>,
    pub helo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DkimSignature {
    pub domain: Option<String>,
    pub selector: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Authentication {
    /// Every result, topmost header first (the one the last receiving server wrote).
    pub results: Vec<AuthResult>,
    pub received_spf: Vec<ReceivedSpf>,
    pub dkim_signatures: Vec<DkimSignature>,
}

impl Authentication {
    pub fn is_empty(&self) -> bool {
        self.results.is_empty() && self.received_spf.is_empty() && self.dkim_signatures.is_empty()
    }

    /// The first result of this method in the topmost Authentication-Results.
    pub fn verdict(&self, method: &str) -> Option<&AuthResult> {
        self.results
            .iter()
            .find(|r| r.header == "Authentication-Results" && r.method.eq_ignore_ascii_case(method))
    }
}

/// Where the recipient's line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    DeliveryStatus,
    ExchangeText,
    EximText,
    FailedRecipientsHeader,
    /// Any other plain-text bounce: an address the failure prose names, with its paragraph.
    ProseText,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NdrRecipient {
    pub recipient: String,
    pub original_recipient: Option<String>,
    /// `failed`, `delayed`, `delivered`, `relayed` or `expanded` (RFC 3464 2.3.3).
    pub action: Option<String>,
    pub status: Option<String>,
    pub remote_mta: Option<String>,
    pub diagnostic_code: Option<String>,
    /// The SMTP stage the report says the reply answered.
    pub stage: Option<Stage>,
    /// The classifier's reading of the diagnostic reply, when it is an SMTP reply.
    pub explanation: Option<Explanation>,
    pub source: Source,
}

impl NdrRecipient {
    /// Failed: said so, or a permanent status without an action.
    pub fn failed(&self) -> bool {
        match self.action.as_deref() {
            Some(a) => a.eq_ignore_ascii_case("failed"),
            None => self.status.as_deref().is_some_and(|s| s.starts_with('5')),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Ndr {
    pub reporting_mta: Option<String>,
    /// Exchange's "Generating server" (or "DSN generated by").
    pub generating_server: Option<String>,
    pub arrival_date: Option<String>,
    pub recipients: Vec<NdrRecipient>,
}

impl Ndr {
    pub fn failed(&self) -> bool {
        self.recipients.iter().any(NdrRecipient::failed)
    }
}

/// One decoded `field:value` pair or header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StampField {
    pub field: String,
    pub value: String,
    /// Microsoft's meaning; null when the documentation does not describe it.
    pub meaning: Option<String>,
}

/// What the Exchange stamps of one message say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExchangeStamps {
    /// X-Forefront-Antispam-Report, field by field, in the order stamped.
    pub forefront: Vec<StampField>,
    /// X-Microsoft-Antispam's documented field (BCL), and the rest raw.
    pub microsoft_antispam: Vec<StampField>,
    /// X-MS-Exchange-Organization-* headers.
    pub organization: Vec<StampField>,
    /// X-MS-Exchange-Organization-Network-Message-Id (message trace key), when stamped.
    pub network_message_id: Option<String>,
    pub sources: Vec<&'static str>,
}

impl ExchangeStamps {
    pub fn is_empty(&self) -> bool {
        self.forefront.is_empty()
            && self.microsoft_antispam.is_empty()
            && self.organization.is_empty()
    }
}

/// Marks a value no table describes: fields Microsoft documents only as diagnostics for its
/// anti-spam team (SFS rule ids and the like) are shown raw, with that said, rather than
/// guessed at (Microsoft Learn, "Anti-spam message headers").
pub fn unknown_meaning() -> &'static str {
    "not documented: used by Microsoft's anti-spam team for diagnostics (shown raw)"
}
