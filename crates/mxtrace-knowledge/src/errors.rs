//! Stages that ended without a usable reply (network, TLS, protocol, DNS errors), TLS
//! certificate verification results, and observations that are not replies (middlebox signs,
//! a missing STARTTLS).
//!
//! Category rule for errors: a failure to reach the next hop at all (connect timeout, refused,
//! unreachable) is `connector_or_routing` with layer `network`: the path to the next hop is
//! broken (firewall, routing, a connector endpoint that is down), which is the mail-flow
//! runbooks' "telnet to EOP on 25 fails -> firewall/connectivity" branch. A connection that is dropped or
//! stalls after the server answered says less, so it is `service_unavailable` (stalls) or
//! `other` (resets) with the layer where it happened. TLS errors are `tls_failed`, protocol
//! violations `protocol_error`, DNS errors `dns_failure`. The class is `transient` for all of
//! them: a sending MTA would queue the message and retry.

use super::advice::{
    CONNECTORS, ENABLE_STARTTLS, EXCHANGE_CERT, SERVER_TLS_VERSIONS, SMTP_CERT_BOUND, TELNET_EOP,
};
use super::classify::merge_steps;
use super::{Category, Class, Confidence, Explanation, Layer};
use mxtrace_proto::model::{ErrorKind, Stage};
use mxtrace_proto::smtp::reply::Reply;

/// Only this much of an error detail is inspected (details can echo peer data).
const MAX_DETAIL: usize = 2048;

/// Explains a stage that ended without a usable reply. `detail` is the error's message
/// (I/O error text, rustls error, resolver error), used to refine the cause.
pub fn explain_error(stage: Stage, kind: ErrorKind, detail: &str) -> Explanation {
    let d = lowered(detail);
    let (category, layer, cause, steps): (Category, Layer, String, Vec<&'static str>) =
        match kind {
            ErrorKind::Timeout => timeout(stage),
            ErrorKind::Refused => (
                Category::ConnectorOrRouting,
                Layer::Network,
                "The connection was refused (TCP reset to the SYN): nothing is listening on that port, a firewall rejects the connection, or the SMTP service / receive connector is stopped.".to_string(),
                vec![
                    "Check that the SMTP service is running and bound to this address and port on the server (or that the connector endpoint is online).",
                    "Check firewall rules that REJECT port 25 on the path, including the server's host firewall.",
                    TELNET_EOP,
                ],
            ),
            ErrorKind::Reset if matches!(stage, Stage::Starttls | Stage::TlsHandshake) => (
                Category::TlsFailed,
                Layer::Tls,
                "The connection was reset during TLS negotiation: a middlebox (SMTP/ESMTP inspection, IPS) or the server dropped the handshake, often because the two ends share no TLS version or cipher.".to_string(),
                vec![
                    "Check whether a firewall with SMTP/ESMTP inspection sits on the path, and exempt port 25 from it.",
                    "Compare the TLS versions and ciphers the server supports (TLS 1.2 or later is required).",
                ],
            ),
            ErrorKind::Reset if stage == Stage::Connect => (
                Category::ConnectorOrRouting,
                Layer::Network,
                "The connection was reset while it was being set up: a firewall or load balancer in the path is rejecting it.".to_string(),
                vec![
                    "Check firewalls, NAT and load balancers between the two ends for port 25.",
                    TELNET_EOP,
                ],
            ),
            ErrorKind::Reset => (
                Category::Other,
                Layer::Network,
                format!(
                    "The connection was reset after {stage}: the server or a middlebox dropped the session without an SMTP reply (a silent IP block, a crash, or an inspecting firewall)."
                ),
                vec![
                    "Repeat the probe: a reset at the same stage every time is a deliberate drop (policy or middlebox), not a glitch.",
                    "Check whether a firewall with SMTP/ESMTP inspection or an IPS sits on the path.",
                ],
            ),
            ErrorKind::Unreachable => (
                Category::ConnectorOrRouting,
                Layer::Network,
                "The host or network is unreachable: no route to it from here (routing, a missing IPv6 route, or an ICMP unreachable from a firewall).".to_string(),
                vec![
                    "Check the route from the sending host (traceroute / tracert) and whether it has the address family (IPv4/IPv6) it is trying to use.",
                    "Check the MX and A/AAAA records point at the intended public address.",
                ],
            ),
            ErrorKind::Tls => tls_error(&d),
            ErrorKind::Protocol => protocol(stage, &d, detail),
            ErrorKind::Dns => dns(&d),
            ErrorKind::Auth => auth_unavailable(&d),
        };
    // A plaintext greeting on an implicit-TLS probe is a port mix-up: the port advice is the
    // whole answer (no cipher, certificate or middlebox to look at).
    let next_steps = if kind == ErrorKind::Tls && d.contains(PLAINTEXT_GREETING) {
        steps.iter().map(|s| (*s).to_string()).collect()
    } else {
        merge_steps(category, &steps, false)
    };
    Explanation {
        class: Class::Transient,
        category,
        confidence: Confidence::High,
        runner_up: None,
        layer,
        cause,
        next_steps,
    }
}

/// The TLS error text for a server that sent its plain SMTP greeting where a ServerHello was
/// expected (`--tls-implicit` on a STARTTLS or plain port).
const PLAINTEXT_GREETING: &str = "answered in plaintext";

fn timeout(stage: Stage) -> (Category, Layer, String, Vec<&'static str>) {
    match stage {
        Stage::Connect => (
            Category::ConnectorOrRouting,
            Layer::Network,
            "The TCP connection timed out: no answer to the SYN. A firewall silently dropping port 25 (outbound here or inbound there), a filtered port, or a host that is down. For Exchange Online, outbound port 25 blocked by the ISP or the local firewall is common.".to_string(),
            vec![
                TELNET_EOP,
                "If the connectors show healthy but this connection fails, the cause is the network or a firewall, not Exchange.",
                "Check the egress firewall and the ISP: many block outbound TCP 25 except from designated mail servers.",
            ],
        ),
        Stage::Banner => (
            Category::ServiceUnavailable,
            Layer::SmtpSession,
            "The server accepted the TCP connection but never sent its 220 greeting: it is tarpitting this client, overloaded, or a firewall doing SMTP/ESMTP inspection is holding the session.".to_string(),
            vec![
                "Probe again from another network: a greeting that comes elsewhere points at tarpitting or blocking of this IP.",
                "Check for a firewall with SMTP/ESMTP inspection in front of the server.",
            ],
        ),
        Stage::Starttls | Stage::TlsHandshake => (
            Category::TlsFailed,
            Layer::Tls,
            "The TLS negotiation stalled: a middlebox is holding the handshake, or the server did not start TLS after agreeing to.".to_string(),
            vec!["Check for a firewall with SMTP/ESMTP inspection that interferes with STARTTLS."],
        ),
        Stage::EndOfData => (
            Category::ServiceUnavailable,
            Layer::SmtpSession,
            "No reply after the end of the message: the server (or its content scanning) took longer than the stage deadline. A sending MTA would retry and may deliver a duplicate.".to_string(),
            vec!["Check the receiving server's load and content-filter latency; raise {setting:stage_timeout} to see whether a reply comes eventually."],
        ),
        _ => (
            Category::ServiceUnavailable,
            Layer::SmtpSession,
            format!("The server stopped answering at {stage}: overloaded, tarpitting this client, or a middlebox holding the session."),
            vec!["Repeat the probe and compare timings; raise {setting:stage_timeout} to see whether a reply comes eventually."],
        ),
    }
}

/// Handshake failures mxtrace words itself (`tls::describe_handshake_error`): the phrase it
/// writes, the cause, and the step to take.
const TLS_FAILURES: &[(&str, &str, &str)] = &[
    (
        "message too large",
        "A TLS handshake message from the server was larger than the TLS library accepts: almost always a certificate chain with too many or too large certificates.",
        "Configure the server to send only its certificate and the intermediates up to one trusted root (no cross-signed extras, no root).",
    ),
    (
        "did not answer with tls",
        "The server did not speak TLS after agreeing to STARTTLS: it sent something that is not a TLS record (a broken STARTTLS, or a middlebox inspecting SMTP).",
        "Check whether a firewall with SMTP/ESMTP inspection sits on the path, and the server's STARTTLS configuration.",
    ),
    (
        PLAINTEXT_GREETING,
        "The server answered in plaintext where a TLS ServerHello was expected (with {setting:tls_implicit=on}, TLS from the first byte): this port speaks plain SMTP and sent its greeting. No STARTTLS was involved.",
        "Check the port's mode: 465 is implicit TLS, 25 and 587 start plain and use STARTTLS (drop {setting:tls_implicit=on} there).",
    ),
    (
        "aborted the tls handshake",
        "The server aborted the TLS handshake with a fatal alert of its own (such as internal_error) right after the client's hello: its TLS configuration or library is broken (no usable certificate or key, or a TLS library the MTA does not work with). Every client fails the same way.",
        "Check the server's TLS log and settings (certificate and key files readable by the MTA, the TLS library version it was built for); this is not a cipher or version mismatch on the client's side.",
    ),
    (
        "rejected the client's certificate",
        "The server requires a client certificate and rejected the one offered, or none was offered (mutual TLS).",
        "Present a client certificate the server trusts ({setting:tls_client_cert} and {setting:tls_client_key}), or check the server's client-certificate settings.",
    ),
];

fn tls_error(d: &str) -> (Category, Layer, String, Vec<&'static str>) {
    if let Some((_, cause, step)) = TLS_FAILURES.iter().find(|(n, _, _)| d.contains(n)) {
        return (
            Category::TlsFailed,
            Layer::Tls,
            cause.to_string(),
            vec![step],
        );
    }
    if is_certificate_error(d) {
        let e = explain_tls_verification(d);
        return (
            Category::TlsFailed,
            Layer::Tls,
            e.cause,
            vec![
                "Check the certificate the server presents (mxtrace shows the chain) and its expiry.",
            ],
        );
    }
    let incompatible = [
        "protocol version",
        "protocolversion",
        "peerincompatible",
        "incompatible",
        "no shared",
        "handshake failure",
        "handshakefailure",
        "insufficient security",
        "unsupported",
        "no cipher",
    ];
    if incompatible.iter().any(|n| d.contains(n)) {
        return (
            Category::TlsFailed,
            Layer::Tls,
            "TLS incompatible: the server and this client share no TLS version or cipher suite. mxtrace (rustls) speaks TLS 1.2 and 1.3 only, so a server limited to TLS 1.0/1.1 or to old ciphers fails here; Exchange Online also requires TLS 1.2. The server is up, its TLS configuration is outdated.".to_string(),
            vec![
                SERVER_TLS_VERSIONS,
            ],
        );
    }
    if ["eof", "reset", "closed", "broken pipe"]
        .iter()
        .any(|n| d.contains(n))
    {
        return (
            Category::TlsFailed,
            Layer::Tls,
            "The TLS handshake was cut off: the server or a middlebox closed the connection during negotiation (often a TLS version mismatch, or SMTP/ESMTP inspection).".to_string(),
            vec!["Check for a firewall with SMTP/ESMTP inspection, and the TLS versions the server allows."],
        );
    }
    (
        Category::TlsFailed,
        Layer::Tls,
        "The TLS handshake failed.".to_string(),
        vec![],
    )
}

/// `d` is the lowered detail, `raw` the detail as written (quoted back in the cause).
fn protocol(stage: Stage, d: &str, raw: &str) -> (Category, Layer, String, Vec<&'static str>) {
    let cause = if d.contains("http/") || d.contains("<html") {
        "The server answered with HTTP, not SMTP: this port is a web service, not a mail server."
            .to_string()
    } else if d.contains("\\x16\\x03") || d.contains("\u{16}\u{3}") || d.contains("tls record") {
        "The server spoke TLS immediately: this port expects implicit TLS (465); use {setting:tls_implicit=on}.".to_string()
    } else if ["too long", "longer than", "more than", "larger than"]
        .iter()
        .any(|n| d.contains(n))
    {
        "The server's reply broke the size limits (line over 4 KiB, reply over 64 KiB or 100 lines): a misbehaving server or a middlebox injecting data.".to_string()
    } else if let Some((_, what)) = raw.split_once("unexpected reply to ") {
        format!(
            "Unexpected reply to {}: the server answered out of step. The command did not do what it was sent for, even though the reply looks positive (RFC 5321 4.3.2 lists the success reply of each command).",
            what.trim_end_matches('.')
        )
    } else if stage == Stage::Banner {
        "The greeting was not a valid SMTP reply: this port runs another service, or a middlebox altered the greeting.".to_string()
    } else {
        format!("The server broke SMTP framing at {stage}: the reply was not a valid SMTP reply.")
    };
    (
        Category::ProtocolError,
        Layer::SmtpSession,
        cause,
        vec!["Check that the host and port are the mail server's, and whether a firewall with SMTP/ESMTP inspection rewrites the dialogue."],
    )
}

/// AUTH that could not even be tried (probe/auth.rs words the detail). RFC 4954 3: a server
/// lists AUTH and its mechanisms in the EHLO reply; submission servers commonly list it only
/// on the submission port and only after STARTTLS (Postfix `smtpd_tls_auth_only`, Exim
/// `auth_advertise_hosts`).
fn auth_unavailable(d: &str) -> (Category, Layer, String, Vec<&'static str>) {
    if d.contains("no oauth access token") {
        return super::oauth::explain_token_error(d);
    }
    let cause = if d.contains("no mechanism") && d.contains("oauth token") {
        "The server offers AUTH, but neither XOAUTH2 nor OAUTHBEARER, so it cannot take an OAuth token (Exchange Online offers XOAUTH2 on smtp.office365.com:587)."
    } else if d.contains("no mechanism") {
        "The server offers AUTH, but none of the mechanisms mxtrace supports (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER)."
    } else if d.contains("before starttls") {
        "The server does not offer AUTH before STARTTLS: it advertises AUTH only on an encrypted session, so no credentials were sent."
    } else {
        "The server does not offer AUTH on this port: it does not accept authenticated submission here, so no credentials were sent."
    };
    (
        Category::AuthFailed,
        Layer::Auth,
        cause.to_string(),
        vec![
            "Submit on the submission port with TLS (587 with {setting:starttls=require}, or 465 with {setting:tls_implicit=on}), where servers offer AUTH.",
            "On the server, enable SASL authentication on that listener (Postfix: smtpd_sasl_auth_enable; Exim: an authenticator and auth_advertise_hosts).",
        ],
    )
}

fn dns(d: &str) -> (Category, Layer, String, Vec<&'static str>) {
    let cause = if d.contains("nxdomain") || d.contains("no such") || d.contains("does not exist") {
        "The name does not exist in DNS (NXDOMAIN): a typo, or a record that was removed."
    } else if d.contains("no record") || d.contains("no records") || d.contains("nodata") {
        "The name exists but has no record of the type needed (no MX, A or AAAA)."
    } else if d.contains("servfail") || d.contains("server failure") {
        "The DNS server failed to answer (SERVFAIL): a broken zone, DNSSEC failure, or an unreachable authoritative server."
    } else if d.contains("timed out") || d.contains("timeout") {
        "The DNS query timed out: the resolver is unreachable or the authoritative servers do not answer."
    } else {
        "The DNS lookup failed."
    };
    (
        Category::DnsFailure,
        Layer::Dns,
        cause.to_string(),
        vec!["Query the record with another resolver (nslookup / dig) to tell a local resolver problem from a zone problem."],
    )
}

fn is_certificate_error(d: &str) -> bool {
    [
        "certificate",
        "expired",
        "unknownissuer",
        "unknown issuer",
        "notvalidforname",
        "not valid for name",
        "self signed",
        "self-signed",
        "notvalidyet",
        "revoked",
        "badsignature",
    ]
    .iter()
    .any(|n| d.contains(n))
}

/// Explains why a server certificate failed verification. `error` is the verifier's message
/// (rustls `CertificateError` display, or a summary). The category is always `tls_failed`;
/// the class is `permanent` because retrying does not fix a certificate.
pub fn explain_tls_verification(error: &str) -> Explanation {
    let d = lowered(error);
    const HYBRID: &str = " A hybrid connector that validates the certificate name (TlsCertificateName on the inbound connector, TlsDomain on the outbound connector) will fail against this server.";
    let what = if d.contains("notvalidyet")
        || d.contains("not valid yet")
        || d.contains("not yet valid")
    {
        "The server certificate is not valid yet (its not-before date is in the future, or a clock is wrong)."
    } else if d.contains("expired") {
        "The server certificate has expired."
    } else if d.contains("self signed") || d.contains("self-signed") || d.contains("selfsigned") {
        "The server presents a self-signed certificate, which no public trust store trusts."
    } else if d.contains("notvalidforname")
        || d.contains("not valid for name")
        || d.contains("name mismatch")
        || d.contains("hostname")
        || d.contains("does not match")
    {
        "The server certificate does not cover the host name that was used (name mismatch: neither subject nor SANs match)."
    } else if d.contains("unknownissuer")
        || d.contains("unknown issuer")
        || d.contains("not trusted")
        || d.contains("untrusted")
    {
        "The certificate chain does not lead to a trusted root: an unknown or private CA, or the server does not send its intermediate certificates."
    } else if d.contains("path too deep")
        || d.contains("too tangled")
        || d.contains("too many signature checks")
    {
        "The certificate chain is longer or more tangled than a verifier follows: the server sends too many intermediate certificates."
    } else if d.contains("revoked") {
        "The server certificate has been revoked."
    } else {
        "The server certificate failed verification."
    };
    Explanation {
        class: Class::Permanent,
        category: Category::TlsFailed,
        confidence: Confidence::High,
        runner_up: None,
        layer: Layer::Tls,
        cause: format!("{what}{HYBRID}"),
        next_steps: merge_steps(
            Category::TlsFailed,
            &[
                "Renew or replace the certificate so that it is valid now, issued by a public CA, sent with its intermediates, and covers the host name (the MX or smart-host name).",
                EXCHANGE_CERT,
                CONNECTORS,
            ],
            true,
        ),
    }
}

/// Things mxtrace notices that are not replies or errors by themselves. The probe records them
/// as notes; `explain_observation` says what they mean. The class is `transient`: none is a
/// final verdict from the server, each is fixable and the mail would be retried or sent
/// without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observation {
    /// EHLO did not advertise STARTTLS where it was expected (EOP always offers it).
    StarttlsNotOffered,
    /// EHLO keywords masked with X characters (`250-XXXXXXXA`): an SMTP/ESMTP inspection
    /// firewall (Cisco PIX/ASA style) rewrote them.
    EhloMasked,
    /// A greeting made of asterisks (`220 *****`): the same kind of middlebox hid the banner.
    BannerMasked,
    /// 454 in reply to STARTTLS: the server cannot start TLS now.
    TlsNotAvailable,
    /// A password accepted by Exchange Online SMTP AUTH, whose basic authentication is
    /// being retired (MC786329).
    BasicAuthRetiring,
}

impl Observation {
    pub const ALL: [Observation; 5] = [
        Observation::StarttlsNotOffered,
        Observation::EhloMasked,
        Observation::BannerMasked,
        Observation::TlsNotAvailable,
        Observation::BasicAuthRetiring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Observation::StarttlsNotOffered => "starttls_not_offered",
            Observation::EhloMasked => "ehlo_masked",
            Observation::BannerMasked => "banner_masked",
            Observation::TlsNotAvailable => "tls_not_available",
            Observation::BasicAuthRetiring => "basic_auth_retiring",
        }
    }

    pub fn from_name(name: &str) -> Option<Observation> {
        Observation::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

const MIDDLEBOX_STEP: &str = "Disable SMTP/ESMTP inspection for port 25 on the firewall in front of the server (Cisco ASA: no inspect esmtp); it masks EHLO keywords and breaks STARTTLS.";

/// What an observation means and what to do about it.
pub fn explain_observation(obs: Observation) -> Explanation {
    let (category, layer, cause, steps): (Category, Layer, &str, &[&'static str]) = match obs {
        Observation::StarttlsNotOffered => (
            Category::TlsFailed,
            Layer::Tls,
            "The server did not advertise STARTTLS, so mail to it travels unencrypted or fails where TLS is required (Exchange Online connectors that require TLS, hybrid). Either TLS is not enabled (no certificate bound to SMTP) or a middlebox stripped the keyword.",
            &[
                ENABLE_STARTTLS,
                MIDDLEBOX_STEP,
            ],
        ),
        Observation::EhloMasked => (
            Category::ProtocolError,
            Layer::SmtpSession,
            "EHLO keywords are masked with X characters: a firewall doing SMTP/ESMTP inspection rewrote the server's capabilities, which hides STARTTLS, AUTH or CHUNKING from the client.",
            &[MIDDLEBOX_STEP],
        ),
        Observation::BannerMasked => (
            Category::ProtocolError,
            Layer::SmtpSession,
            "The greeting is made of asterisks: a firewall doing SMTP/ESMTP inspection is masking the server's banner; it usually also interferes with EHLO and STARTTLS.",
            &[MIDDLEBOX_STEP],
        ),
        Observation::TlsNotAvailable => (
            Category::TlsFailed,
            Layer::Tls,
            "The server answered STARTTLS with 454: it cannot start TLS now, typically a missing, expired or inaccessible certificate on the server.",
            &[
                SMTP_CERT_BOUND,
            ],
        ),
        // Accepted today: the finding is about what comes (MS_BASIC_AUTH).
        Observation::BasicAuthRetiring => (
            Category::Accepted,
            Layer::Auth,
            "Exchange Online accepted a password (basic authentication) for SMTP AUTH. Microsoft disables basic authentication for SMTP AUTH by default for existing tenants at the end of December 2026, and tenants created after that do not have it (Microsoft 365 message center MC786329): this sender will then get 535 5.7.139 unless it moves to OAuth 2.0.",
            &[
                super::oauth::MOVE_TO_OAUTH,
                super::oauth::APP_PERMISSION,
                super::oauth::SERVICE_PRINCIPAL,
            ],
        ),
    };
    Explanation {
        // An accepted stage with a finding: only the finding's own steps apply.
        class: match category {
            Category::Accepted => Class::Success,
            _ => Class::Transient,
        },
        category,
        confidence: Confidence::High,
        runner_up: None,
        layer,
        cause: cause.to_string(),
        next_steps: match category {
            Category::Accepted => steps.iter().map(|s| s.to_string()).collect(),
            _ => merge_steps(category, steps, false),
        },
    }
}

/// A banner whose text is mostly asterisks (`220 ****************2*0**0***`).
pub fn observe_banner(reply: &Reply) -> Option<Observation> {
    let mut stars = 0usize;
    let mut other = 0usize;
    for line in &reply.lines {
        for c in line.get(4..).unwrap_or("").chars().take(MAX_DETAIL) {
            match c {
                '*' => stars += 1,
                c if c.is_whitespace() => {}
                _ => other += 1,
            }
        }
    }
    (stars >= 5 && stars >= other * 2).then_some(Observation::BannerMasked)
}

/// An EHLO reply with keywords masked by a middlebox (`250-XXXXXXXA`); the rule lives with
/// the capability parser.
pub fn observe_ehlo(reply: &Reply) -> Option<Observation> {
    let masked = !mxtrace_proto::smtp::ehlo::Capabilities::parse(reply)
        .masked_keywords()
        .is_empty();
    masked.then_some(Observation::EhloMasked)
}

fn lowered(s: &str) -> String {
    let mut end = s.len().min(MAX_DETAIL);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("").to_lowercase()
}
