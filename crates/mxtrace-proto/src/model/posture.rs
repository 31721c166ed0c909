//! The `dns` result: a domain's mail posture, one section per check. Serialized with the same
//! envelope as the other results (`schema_version`, `command`, `version` first, report/json.rs)
//! and read back with serde.

use crate::model::{AddressInfo, Category, Confidence, Diagnosis, Layer};
use serde::{Deserialize, Serialize};

/// How bad a finding is. Errors fail the posture (exit 1); warnings are shown with their next
/// steps but pass; info is context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// A section's verdict: the worst of its findings (`missing` when the record is absent and
/// that is only informational, as for an optional record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Missing,
}

/// One thing a check found, explained in the diagnosis vocabulary (category, layer, cause,
/// next steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Finding {
    pub severity: Severity,
    pub diagnosis: Diagnosis,
}

impl Finding {
    pub fn new(
        severity: Severity,
        category: Category,
        layer: Layer,
        cause: impl Into<String>,
        next_steps: Vec<String>,
    ) -> Finding {
        Finding {
            severity,
            diagnosis: Diagnosis {
                category,
                confidence: Confidence::High,
                runner_up: None,
                layer,
                scenario: None,
                hop: None,
                cause: cause.into(),
                next_steps,
            },
        }
    }
}

/// The fixed part of one check's findings: category, layer and the next step.
#[derive(Debug, Clone, Copy)]
pub struct Advice {
    pub category: Category,
    pub layer: Layer,
    pub step: &'static str,
}

impl Advice {
    pub fn finding(&self, severity: Severity, cause: impl Into<String>) -> Finding {
        Finding::new(
            severity,
            self.category,
            self.layer,
            cause,
            vec![self.step.to_string()],
        )
    }
}

/// What every section has: its verdict, the records it read, and its findings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Section {
    pub status: Option<Status>,
    /// The records as published (TXT strings joined).
    pub records: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Section {
    pub fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    /// Sets the status from the findings: the worst severity; `missing` when `absent` and no
    /// finding is worse than info.
    pub fn close(&mut self, absent: bool) {
        let worst = self.findings.iter().map(|f| f.severity).max();
        self.status = Some(match worst {
            Some(Severity::Error) => Status::Fail,
            Some(Severity::Warning) => Status::Warn,
            _ if absent => Status::Missing,
            _ => Status::Pass,
        });
    }
}

/// SPF (RFC 7208): the include tree, the lookup counts, and the result for `--sending-ip`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpfSection {
    #[serde(flatten)]
    pub section: Section,
    pub tree: Option<SpfNode>,
    /// Terms that cost a DNS lookup over the whole evaluation (limit 10, RFC 7208 4.6.4).
    pub dns_lookups: usize,
    /// Lookups that returned no answer (NXDOMAIN or no data; limit 2, RFC 7208 4.6.4).
    pub void_lookups: usize,
    /// The `all` of the top record with its qualifier (`-all`, `~all`, `?all`, `+all`).
    pub all: Option<String>,
    pub sending_ip: Option<SpfIpResult>,
}

/// One record of the include tree.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpfNode {
    pub domain: String,
    /// How it was reached: `top`, `include` or `redirect`.
    pub via: String,
    pub record: Option<String>,
    /// Lookups counted for this record's own terms.
    pub lookups: usize,
    pub error: Option<String>,
    pub children: Vec<SpfNode>,
}

/// `check_host()` for one address (RFC 7208 2.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpfIpResult {
    pub ip: String,
    /// pass, fail, softfail, neutral, none, temperror, permerror.
    pub result: String,
}

/// DMARC (RFC 7489): where the record was found and its tags.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DmarcSection {
    #[serde(flatten)]
    pub section: Section,
    /// The name the record was found at (`_dmarc.DOMAIN` or the organisational domain's).
    pub found_at: Option<String>,
    /// `domain` or `organizational_domain`.
    pub source: Option<String>,
    pub p: Option<String>,
    pub sp: Option<String>,
    pub pct: Option<u8>,
    pub rua: Vec<String>,
    pub ruf: Vec<String>,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
}

/// DKIM (RFC 6376): each selector tried.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DkimSection {
    #[serde(flatten)]
    pub section: Section,
    pub selectors: Vec<DkimSelector>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DkimSelector {
    pub selector: String,
    /// `SELECTOR._domainkey.DOMAIN`.
    pub name: String,
    /// The CNAME target, as Microsoft 365 publishes the selectors.
    pub cname: Option<String>,
    /// Every alias followed from `name`, in order (the first is `cname`); empty without one.
    #[serde(default)]
    pub chain: Vec<String>,
    pub record: Option<String>,
    /// `rsa` or `ed25519`.
    pub key_type: Option<String>,
    pub key_bits: Option<usize>,
    /// found, missing, dangling (a CNAME to nothing), cname_loop, cname_too_deep, revoked
    /// (empty p=), invalid, error.
    pub state: String,
}

/// MTA-STS (RFC 8461): the TXT record, the policy fetched over HTTPS, and the MX match.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MtaStsSection {
    #[serde(flatten)]
    pub section: Section,
    pub id: Option<String>,
    /// `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`.
    pub policy_url: Option<String>,
    pub policy: Option<MtaStsPolicy>,
    /// Where `policy` came from: fetched now, or `--mta-sts-cache` after a failed fetch.
    #[serde(default)]
    pub policy_source: Option<PolicySource>,
    /// MX hosts the policy's `mx:` patterns do not match (RFC 8461 4.1).
    pub unmatched_mx: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PolicySource {
    Fetched,
    Cache,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MtaStsPolicy {
    /// enforce, testing, none.
    pub mode: String,
    pub max_age: u64,
    pub mx: Vec<String>,
}

/// TLS-RPT (RFC 8460).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TlsRptSection {
    #[serde(flatten)]
    pub section: Section,
    pub rua: Vec<String>,
}

/// DANE (RFC 7672): the DNSSEC status of the MX answer and each MX host's TLSA records.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DaneSection {
    #[serde(flatten)]
    pub section: Section,
    /// The DNSSEC status of the MX answer (null without MX).
    pub mx_dnssec: Option<DnssecStatus>,
    pub hosts: Vec<DaneHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DaneHost {
    pub mx: String,
    /// `_25._tcp.MX`.
    pub name: String,
    /// The DNSSEC status of the TLSA answer (null: no TLSA published).
    pub dnssec: Option<DnssecStatus>,
    pub tlsa: Vec<TlsaRecord>,
    /// dane (secure, usable records: STARTTLS and a match required), unusable (secure, no
    /// usable record), insecure (not trusted: DANE does not apply), bogus (the MX must not be
    /// used), none (no TLSA).
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TlsaRecord {
    /// Presentation form: `3 1 1 <hex>`.
    pub record: String,
    /// Mnemonics (RFC 7218): `DANE-EE SPKI SHA2-256`.
    pub meaning: String,
    pub usable: bool,
    /// Why an SMTP client cannot use it.
    pub problem: Option<String>,
}

/// Reverse DNS of every MX address and of `--sending-ip`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RdnsSection {
    #[serde(flatten)]
    pub section: Section,
    pub addresses: Vec<RdnsEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RdnsEntry {
    /// The MX host, or `sending-ip`.
    pub of: String,
    #[serde(flatten)]
    pub address: AddressInfo,
}

/// Blocklists: each address against each zone.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DnsblSection {
    #[serde(flatten)]
    pub section: Section,
    pub zones: Vec<String>,
    pub results: Vec<DnsblResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DnsblResult {
    pub ip: String,
    pub zone: String,
    /// listed, not_listed, refused (the list refuses this resolver), error.
    pub state: String,
    /// The answers (127.0.0.x return codes) when listed or refused.
    pub codes: Vec<String>,
}

/// The verdict: passed when no section failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PostureVerdict {
    pub passed: bool,
    pub errors: usize,
    pub warnings: usize,
    pub summary: String,
}

/// `mxtrace dns DOMAIN`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PostureReport {
    pub domain: String,
    /// The DNS server asked.
    pub resolver: String,
    /// MX hosts by preference (empty: none, or the lookup failed; see `mx_error`).
    pub mx: Vec<String>,
    pub mx_error: Option<String>,
    pub spf: SpfSection,
    pub dmarc: DmarcSection,
    pub dkim: DkimSection,
    pub mta_sts: MtaStsSection,
    pub tls_rpt: TlsRptSection,
    pub dane: DaneSection,
    pub rdns: RdnsSection,
    /// Present with `--dnsbl` or `--sending-ip`.
    pub dnsbl: Option<DnsblSection>,
    pub verdict: PostureVerdict,
}

/// The DNSSEC status of an answer, in RFC 4033 section 5's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DnssecStatus {
    /// Validated from a trust anchor.
    Secure,
    /// From an unsigned zone: DNSSEC says nothing about it.
    Insecure,
    /// Signed, but the signatures do not validate (or cannot be checked).
    Bogus,
}

impl std::fmt::Display for DnssecStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DnssecStatus::Secure => "secure",
            DnssecStatus::Insecure => "insecure",
            DnssecStatus::Bogus => "bogus",
        })
    }
}
