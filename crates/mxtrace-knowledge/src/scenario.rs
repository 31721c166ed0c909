//! Scenario knowledge (Microsoft's "Basic mail flow troubleshooting in Office 365" (Exchange Online support blog, 2016); README "Scenarios"): detecting the scenario
//! from data the caller looked up (no DNS here), and refining a diagnosis with what a failure
//! means at a given scenario and hop.

use super::advice::{CONNECTORS, DELIST_MS, DIRSYNC, HCW, LICENSING, MX_CHECK, TELNET_EOP};
use super::classify::merge_steps;
use super::{
    explain_error, explain_reply_in, Category, Diagnosis, PathContext, Scenario, SessionFacts,
    SpfHints,
};
use mxtrace_proto::model::{path_label, ErrorKind, Stage};
use mxtrace_proto::smtp::reply::Reply;
use serde::Serialize;

/// At most this many MX hosts are considered (a real domain has a handful).
const MAX_MX: usize = 64;
/// At most this many SPF terms are read (a record is at most a few hundred bytes).
const MAX_SPF_TERMS: usize = 128;
const MAX_SPF_INCLUDES: usize = 32;

const EOP_SUFFIXES: [&str; 2] = [".mail.protection.outlook.com", ".mx.microsoft"];
const EOP_SPF_INCLUDE: &str = "spf.protection.outlook.com";

/// Something about an MX set that deserves a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MxSetWarning {
    /// No MX host given (the caller may fall back to the implicit MX).
    NoMx,
    /// More than one EOP MX for one domain.
    MultipleEopMx,
    /// A non-EOP MX next to an EOP MX (a fallback Microsoft does not support).
    NonEopFallbackMx,
    /// The tenant name given is not a usable DNS label.
    InvalidTenant,
}

impl MxSetWarning {
    pub fn message(self) -> &'static str {
        match self {
            MxSetWarning::NoMx => "The domain has no MX host; senders fall back to its A/AAAA record (implicit MX), if any.",
            MxSetWarning::MultipleEopMx => "The domain has more than one Exchange Online MX; a domain on Exchange Online should publish a single MX, <domain-com>.mail.protection.outlook.com.",
            MxSetWarning::NonEopFallbackMx => "A non-Microsoft MX sits beside the Exchange Online MX; Microsoft does not support a fallback MX next to EOP (mail that lands there bypasses EOP or bounces).",
            MxSetWarning::InvalidTenant => "The tenant name is not a valid DNS label (expected e.g. contoso, contoso.onmicrosoft.com or contoso.mail.onmicrosoft.com).",
        }
    }
}

/// What the MX set says about the scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioDetection {
    /// A when the MX is EOP; B when the MX is on-premises and a tenant is known; None when the
    /// scenario cannot be told from the MX (the user must name it).
    pub scenario: Option<Scenario>,
    /// The hop probing the MX tests (1), when the scenario is known.
    pub hop: Option<u8>,
    pub eop_hosts: Vec<String>,
    pub other_hosts: Vec<String>,
    /// Scenario B hop 2: the domain whose MX (EOP) the on-premises server delivers to,
    /// `<tenant>.mail.onmicrosoft.com`.
    pub hop2_target: Option<String>,
    pub flags: Vec<MxSetWarning>,
}

/// True for an Exchange Online Protection host name (case-insensitive, trailing dot allowed).
pub fn is_eop_host(host: &str) -> bool {
    let h = normalize_host(host);
    EOP_SUFFIXES
        .iter()
        .any(|s| h.len() > s.len() && h.ends_with(s))
}

/// Detects the scenario from a domain's MX hosts (in preference order) and, for hybrid, the
/// tenant name (`contoso`, `contoso.onmicrosoft.com` or `contoso.mail.onmicrosoft.com`).
pub fn scenario_for_mx(mx_hosts: &[String], tenant: Option<&str>) -> ScenarioDetection {
    let mut eop_hosts = Vec::new();
    let mut other_hosts = Vec::new();
    for h in mx_hosts.iter().take(MAX_MX) {
        let n = normalize_host(h);
        if n.is_empty() {
            continue;
        }
        if is_eop_host(&n) {
            eop_hosts.push(n);
        } else {
            other_hosts.push(n);
        }
    }
    let mut flags = Vec::new();
    if eop_hosts.is_empty() && other_hosts.is_empty() {
        flags.push(MxSetWarning::NoMx);
    }
    if eop_hosts.len() > 1 {
        flags.push(MxSetWarning::MultipleEopMx);
    }
    if !eop_hosts.is_empty() && !other_hosts.is_empty() {
        flags.push(MxSetWarning::NonEopFallbackMx);
    }
    let routing = tenant.map(tenant_routing_domain);
    if matches!(routing, Some(None)) {
        flags.push(MxSetWarning::InvalidTenant);
    }
    let (scenario, hop2_target) = if !eop_hosts.is_empty() {
        (Some(Scenario::A), None)
    } else if let (false, Some(Some(target))) = (other_hosts.is_empty(), routing) {
        (Some(Scenario::B), Some(target))
    } else {
        (None, None)
    };
    ScenarioDetection {
        scenario,
        hop: scenario.map(|_| 1),
        eop_hosts,
        other_hosts,
        hop2_target,
        flags,
    }
}

/// A bare probe of a host: an EOP host is scenario A hop 1 (internet -> EOP).
pub fn scenario_for_host(host: &str) -> Option<(Scenario, u8)> {
    is_eop_host(host).then_some((Scenario::A, 1))
}

/// `<tenant>.mail.onmicrosoft.com` from the forms admins type; None when not a DNS label.
pub fn tenant_routing_domain(tenant: &str) -> Option<String> {
    let t = normalize_host(tenant);
    let label = t
        .strip_suffix(".mail.onmicrosoft.com")
        .or_else(|| t.strip_suffix(".onmicrosoft.com"))
        .unwrap_or(&t);
    let valid = !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    valid.then(|| format!("{label}.mail.onmicrosoft.com"))
}

fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Reads an SPF TXT record for scenario hints (no lookups: nested includes are not followed).
pub fn hints_from_spf(spf: &str) -> SpfHints {
    let mut terms = spf.split_whitespace().take(MAX_SPF_TERMS);
    let is_spf = terms
        .next()
        .is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"));
    let mut hints = SpfHints {
        is_spf,
        sends_via_eop: false,
        own_servers: false,
        other_includes: Vec::new(),
        dns_lookup_terms: 0,
        candidates: Vec::new(),
    };
    if !is_spf {
        return hints;
    }
    for term in terms {
        let t = term.to_ascii_lowercase();
        let t = t.trim_start_matches(['+', '-', '~', '?']);
        let (name, value) = match t.split_once([':', '=']) {
            Some((n, v)) => (n, Some(v)),
            None => (t.split('/').next().unwrap_or(t), None),
        };
        match name {
            "include" => {
                hints.dns_lookup_terms += 1;
                let v = value.unwrap_or("").trim_end_matches('.');
                if v == EOP_SPF_INCLUDE {
                    hints.sends_via_eop = true;
                } else if !v.is_empty() && hints.other_includes.len() < MAX_SPF_INCLUDES {
                    hints.other_includes.push(v.to_string());
                }
            }
            "redirect" | "exists" | "ptr" => hints.dns_lookup_terms += 1,
            "a" | "mx" => {
                hints.dns_lookup_terms += 1;
                hints.own_servers = true;
            }
            "ip4" | "ip6" => hints.own_servers = true,
            _ => {}
        }
    }
    if hints.sends_via_eop {
        hints.candidates.push(Scenario::C);
        if hints.own_servers {
            hints.candidates.push(Scenario::D);
        }
    }
    hints
}

/// What a stage produced: a reply, or an error without a usable reply.
#[derive(Debug, Clone, Copy)]
pub enum Observed<'a> {
    Reply(&'a Reply),
    Error { kind: ErrorKind, detail: &'a str },
}

/// When a scenario-specific explanation applies.
#[derive(Debug, Clone, Copy)]
enum When {
    Category(Category),
    /// TLS required or failed.
    Tls,
    /// Could not connect at all (timeout, refused, unreachable, reset at connect).
    NoConnection,
}

struct ScenarioRule {
    scenario: Scenario,
    hop: u8,
    when: When,
    cause: &'static str,
    steps: &'static [&'static str],
}

const ONPREM_FW_OUT: &str = "Allow outbound TCP 25 from the on-premises Exchange server to Exchange Online (and ask the ISP whether it blocks port 25).";
const ONPREM_FW_IN: &str = "Check the on-premises firewall/NAT forwards inbound TCP 25 to the Exchange server and that the receive connector is running.";
const EOP_RANGES_IN: &str = "Allow inbound TCP 25 from the Exchange Online IP ranges (Microsoft 365 URLs and IP address ranges) to the on-premises smart host.";

// Source: Microsoft's "Basic mail flow troubleshooting in Office 365" (Exchange Online support blog, 2016),
// the troubleshooting steps of each scenario; Microsoft Learn "Mail flow intelligence" (connectors).
static SCENARIO_RULES: &[ScenarioRule] = &[
    ScenarioRule { scenario: Scenario::A, hop: 1, when: When::NoConnection,
        cause: "the sending side could not reach EOP on port 25; outbound port 25 blocked by the ISP or a firewall is common, and a message trace will show nothing",
        steps: &[TELNET_EOP, MX_CHECK] },
    ScenarioRule { scenario: Scenario::A, hop: 1, when: When::Category(Category::RecipientUnknown),
        cause: "EOP does not find the recipient in the tenant's directory (Directory-Based Edge Blocking): the mailbox or alias does not exist in Exchange Online or has not synchronized",
        steps: &[LICENSING, DIRSYNC] },
    ScenarioRule { scenario: Scenario::A, hop: 1, when: When::Category(Category::RelayDenied),
        cause: "EOP does not accept mail for this domain from this sender: the domain is not an accepted domain of the tenant the MX belongs to, or a partner connector expected for this sender does not match",
        steps: &[MX_CHECK, CONNECTORS] },
    ScenarioRule { scenario: Scenario::A, hop: 1, when: When::Category(Category::IpBlocklisted),
        cause: "EOP refuses the sending server's public IP (blocked senders list or a third-party list EOP uses)",
        steps: &[DELIST_MS, "If the sender is a known partner, an inbound partner connector with its IP can be created in EOP."] },
    ScenarioRule { scenario: Scenario::B, hop: 1, when: When::NoConnection,
        cause: "the internet cannot reach the on-premises MX on port 25",
        steps: &[ONPREM_FW_IN, MX_CHECK] },
    ScenarioRule { scenario: Scenario::B, hop: 1, when: When::Category(Category::RelayDenied),
        cause: "the on-premises server does not accept mail for this domain (accepted domain missing) or its internet receive connector does not allow anonymous senders",
        steps: &["Check the on-premises accepted domains and that the internet receive connector has the Anonymous Users permission group."] },
    ScenarioRule { scenario: Scenario::B, hop: 1, when: When::Category(Category::RecipientUnknown),
        cause: "on-premises has no recipient for this address: a migrated user needs a remote mailbox object whose remote routing address is user@tenant.mail.onmicrosoft.com",
        steps: &["Check the recipient on-premises (Get-RemoteMailbox / Get-Recipient) and its RemoteRoutingAddress.", DIRSYNC] },
    ScenarioRule { scenario: Scenario::B, hop: 2, when: When::NoConnection,
        cause: "the on-premises server cannot reach EOP on port 25: the on-premises outbound firewall (or the ISP) blocks TCP 25 to Exchange Online",
        steps: &[ONPREM_FW_OUT, TELNET_EOP] },
    ScenarioRule { scenario: Scenario::B, hop: 2, when: When::Category(Category::RelayDenied),
        cause: "the inbound connector from on-premises is missing or does not match the certificate (TlsSenderCertificateName) or IP the on-premises server presents",
        steps: &[HCW, CONNECTORS, "Check that the on-premises send connector to Office 365 uses the certificate the inbound connector names (Get-SendConnector | fl TlsCertificateName)."] },
    ScenarioRule { scenario: Scenario::B, hop: 2, when: When::Category(Category::RecipientUnknown),
        cause: "EOP does not know the remote routing address (user@tenant.mail.onmicrosoft.com): the cloud mailbox does not exist, the migration is incomplete, or the proxy address did not synchronize",
        steps: &[DIRSYNC, LICENSING] },
    ScenarioRule { scenario: Scenario::B, hop: 2, when: When::Tls,
        cause: "TLS between on-premises and EOP failed: a certificate-based inbound connector needs TLS with the on-premises certificate it names",
        steps: &[HCW, "Check the certificate on the on-premises send connector: valid, trusted, with its chain, and the name the inbound connector expects."] },
    ScenarioRule { scenario: Scenario::B, hop: 2, when: When::Category(Category::IpBlocklisted),
        cause: "EOP refuses the on-premises server's public IP",
        steps: &[DELIST_MS, CONNECTORS] },
    ScenarioRule { scenario: Scenario::C, hop: 1, when: When::NoConnection,
        cause: "the third party's MX is unreachable on port 25 from here; if it is also unreachable from EOP, their firewall or server is at fault (4.4.316 / 4.4.7 in the message trace)",
        steps: &["Give the third party's admin the failing address, port and time."] },
    ScenarioRule { scenario: Scenario::C, hop: 1, when: When::Category(Category::IpBlocklisted),
        cause: "the third party blocks the sending IP; for mail from Exchange Online this can be an EOP outbound IP (for example the high-risk delivery pool) on a list the third party uses",
        steps: &["Check the message trace for the sending IP and whether the message was sent through the high-risk delivery pool.", "Ask the third party to allow the Exchange Online ranges, or open a Microsoft support case if an EOP IP is listed."] },
    ScenarioRule { scenario: Scenario::C, hop: 1, when: When::Tls,
        cause: "TLS to the third party failed: an outbound connector that requires TLS (or certificate validation) cannot deliver to a server with this TLS setup",
        steps: &["Compare the outbound connector's TLS settings (TlsSettings, TlsDomain) with what the third party's server offers."] },
    ScenarioRule { scenario: Scenario::D, hop: 1, when: When::NoConnection,
        cause: "Exchange Online cannot reach the on-premises smart host: the on-premises firewall must allow inbound TCP 25 from the Exchange Online ranges",
        steps: &[EOP_RANGES_IN, CONNECTORS] },
    ScenarioRule { scenario: Scenario::D, hop: 1, when: When::Tls,
        cause: "the on-premises smart host's TLS certificate must be valid and carry the name the outbound connector expects (TlsDomain)",
        steps: &["Check the outbound connector (Get-OutboundConnector | fl TlsSettings,TlsDomain,SmartHosts) against the certificate the smart host presents.", HCW] },
    ScenarioRule { scenario: Scenario::D, hop: 1, when: When::Category(Category::RelayDenied),
        cause: "the on-premises receive connector does not accept relay from Exchange Online: it must recognize EOP by IP ranges or certificate (the hybrid receive connector)",
        steps: &["Check the on-premises receive connector for Exchange Online (RemoteIPRanges, TlsDomainCapabilities, permission groups).", HCW] },
    ScenarioRule { scenario: Scenario::D, hop: 2, when: When::NoConnection,
        cause: "the on-premises server cannot reach the third party's MX: the on-premises outbound firewall or the ISP blocks TCP 25",
        steps: &[ONPREM_FW_OUT] },
    ScenarioRule { scenario: Scenario::D, hop: 2, when: When::Category(Category::IpBlocklisted),
        cause: "the third party blocks the on-premises server's public IP",
        steps: &[] },
];

/// A stage's diagnosis in its scenario and hop: the explanation of the reply or error, with
/// a scenario-specific cause and steps where the scenario knowledge has them, and the cause
/// prefixed with where in the path it happened.
pub fn diagnose(stage: Stage, observed: Observed<'_>, ctx: PathContext) -> Diagnosis {
    diagnose_in(stage, observed, ctx, SessionFacts::default())
}

/// `diagnose` with what the session knows about the server (classify.rs `SessionFacts`).
pub fn diagnose_in(
    stage: Stage,
    observed: Observed<'_>,
    ctx: PathContext,
    facts: SessionFacts,
) -> Diagnosis {
    let e = match observed {
        Observed::Reply(r) => explain_reply_in(Some(stage), r, facts),
        Observed::Error { kind, detail } => explain_error(stage, kind, detail),
    };
    let (Some(scenario), Some(hop)) = (ctx.scenario, ctx.hop) else {
        return Diagnosis::new(e, ctx);
    };
    if e.category == Category::Accepted {
        let mut d = Diagnosis::new(e, ctx);
        d.cause = format!(
            "scenario {scenario} hop {hop} ({}): {}",
            path_label(scenario, hop),
            d.cause
        );
        return d;
    }
    let no_connection = matches!(
        observed,
        Observed::Error { kind: ErrorKind::Timeout | ErrorKind::Refused | ErrorKind::Unreachable | ErrorKind::Reset, .. }
            if stage == Stage::Connect
    );
    let rule = SCENARIO_RULES.iter().find(|r| {
        r.scenario == scenario
            && r.hop == hop
            && match r.when {
                When::Category(c) => c == e.category,
                When::Tls => matches!(e.category, Category::TlsFailed | Category::TlsRequired),
                When::NoConnection => no_connection,
            }
    });
    let what = match observed {
        Observed::Reply(r) => {
            let verb = if r.first_digit() == 4 {
                "deferred"
            } else {
                "refused"
            };
            format!("{verb} at {} with {}", stage_label(stage), code_label(r))
        }
        Observed::Error { kind, .. } => format!("{} at {}", error_label(kind), stage_label(stage)),
    };
    let prefix = format!(
        "scenario {scenario} hop {hop} ({}): {what}",
        path_label(scenario, hop)
    );
    let mut d = Diagnosis::new(e, ctx);
    match rule {
        Some(r) => {
            // The scenario's cause replaces the generic one: it says the same, placed in the path.
            d.cause = format!("{prefix}: {}.", r.cause);
            let permanent = matches!(observed, Observed::Reply(r) if r.first_digit() == 5);
            let mut merged = merge_steps(d.category, r.steps, permanent);
            // Keep the generic explanation's first step too when the scenario had few.
            if let Some(first) = d.next_steps.first() {
                if !merged.contains(first) && merged.len() < 6 {
                    let at = merged.len().saturating_sub(1);
                    merged.insert(at, first.clone());
                }
            }
            d.next_steps = merged;
        }
        None => d.cause = format!("{prefix}: {}", d.cause),
    }
    d
}

fn stage_label(stage: Stage) -> &'static str {
    match stage {
        Stage::Connect => "connect",
        Stage::Banner => "the greeting",
        Stage::Ehlo => "EHLO",
        Stage::Helo => "HELO",
        Stage::Starttls => "STARTTLS",
        Stage::TlsHandshake => "the TLS handshake",
        Stage::EhloTls => "EHLO after TLS",
        Stage::Auth => "AUTH",
        Stage::MailFrom => "MAIL FROM",
        Stage::RcptTo => "RCPT",
        Stage::Data => "DATA",
        Stage::EndOfData => "end of data",
        Stage::Rset => "RSET",
        Stage::Quit => "QUIT",
    }
}

fn error_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Timeout => "timed out",
        ErrorKind::Refused => "connection refused",
        ErrorKind::Reset => "connection reset",
        ErrorKind::Unreachable => "unreachable",
        ErrorKind::Tls => "TLS failed",
        ErrorKind::Protocol => "protocol error",
        ErrorKind::Dns => "DNS failed",
        ErrorKind::Auth => "AUTH not possible",
    }
}

/// `5.7.64 TenantAttribution` / `550`: the enhanced code (else the basic code) and, when the
/// text starts with an identifier followed by ';' (Exchange's diagnostic tags), that tag.
fn code_label(r: &Reply) -> String {
    let mut out = match r.enhanced {
        Some(e) => e.to_string(),
        None => r.code.to_string(),
    };
    let text = r.text();
    if let Some((tag, _)) = text.split_once(';') {
        let ok = !tag.is_empty()
            && tag.len() <= 64
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        if ok {
            out.push(' ');
            out.push_str(tag);
        }
    }
    out
}
