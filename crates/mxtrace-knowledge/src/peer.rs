//! Who answered: Microsoft (Exchange Online, Exchange Server) or a server positively known to
//! be something else, from its greeting and EHLO reply. The next steps of a diagnosis are
//! written for the Microsoft 365 delivery paths; steps that act on the receiving Microsoft
//! side (licences, directory sync, EOP connectors) are dropped when the receiver is known not
//! to be Microsoft. An unrecognised server keeps every step: unsure means no change.

use super::advice::*;
use super::{is_eop_host, Category, Diagnosis, Scenario};
use mxtrace_proto::smtp::ehlo::Capabilities;
use mxtrace_proto::smtp::reply::Reply;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Peer {
    Microsoft,
    Other,
    #[default]
    Unknown,
}

impl Peer {
    /// The names `explain --peer` takes.
    pub const NAMES: [&'static str; 3] = ["microsoft", "other", "unknown"];

    pub fn from_name(name: &str) -> Option<Peer> {
        match name.to_ascii_lowercase().as_str() {
            "microsoft" => Some(Peer::Microsoft),
            "other" => Some(Peer::Other),
            "unknown" => Some(Peer::Unknown),
            _ => None,
        }
    }
}

/// Greeting and EHLO markers, matched case-insensitively in the banner text and EHLO keywords.
/// Sources: Exchange Server receive connector banner ("Microsoft ESMTP MAIL Service ready at")
/// and its EHLO extensions X-ANONYMOUSTLS, XEXCH50, X-EXPS, XRDST (Microsoft Learn: Receive
/// connectors); Exchange Online front ends named `*.outlook.com` / `*.protection.outlook.com`;
/// Postfix `smtpd_banner` default `$myhostname ESMTP $mail_name` (postconf(5)); Exim
/// `smtp_banner` default `... ESMTP Exim ...` (Exim specification); Sendmail
/// `SmtpGreetingMessage` default `... ESMTP Sendmail ...`; Gmail's `... ESMTP ... - gsmtp`;
/// qmail, OpenSMTPD, Haraka and Zimbra/Postfix default banners.
const MICROSOFT_MARKERS: &[&str] = &[
    "microsoft esmtp mail service",
    "outlook.com",
    "x-anonymoustls",
    "xexch50",
    "x-exps",
    "xrdst",
];
const OTHER_MARKERS: &[&str] = &[
    "esmtp postfix",
    "esmtp exim",
    "esmtp sendmail",
    "gsmtp",
    "qmail",
    "opensmtpd",
    "haraka",
    "zimbra",
];

/// Steps that only make sense on Microsoft's side (Exchange admin center, Exchange Online
/// or Exchange Server cmdlets, connectors, licences, directory sync, the delist portal):
/// dropped for a server known not to be Microsoft.
const MICROSOFT_ONLY_STEPS: &[&str] = &[
    LICENSING,
    DIRSYNC,
    DBEB,
    CONNECTORS,
    HCW,
    MX_CHECK,
    TELNET_EOP,
    RULES,
    DELIST_MS,
    EXO_SMTP_AUTH,
    EXCHANGE_CERT,
    QUARANTINE,
    DELIVERY_RESTRICTIONS,
    super::oauth::APP_PERMISSION,
    super::oauth::SERVICE_PRINCIPAL,
    super::oauth::SMTP_AUTH_ENABLED,
    super::oauth::SEND_AS,
    super::oauth::MOVE_TO_OAUTH,
];

/// Steps worded for Microsoft that have a plain equivalent for any other server.
const GENERIC_WORDING: &[(&str, &str)] = &[
    (super::oauth::NEW_TOKEN, "Get a new access token (a cached or pasted one may have expired) and check it was issued for this server (its audience) and for this account."),
    (SERVICE_HEALTH, "Check the receiving provider's status page (or ask its admin) for an incident before changing configuration."),
    (ESCALATE, "If every check above is clean, escalate to the receiving domain's admin (postmaster) with evidence: the full reply text, the time in UTC, the sending IP and the mxtrace transcript (--json)."),
    (CIPHERS, "Compare the TLS versions and ciphers both ends offer: mxtrace speaks TLS 1.2 and 1.3 only."),
    (SERVER_CERT, "Check the server certificate: chain complete, not expired, name matching the host."),
    (SENDER_TLS, "Enable STARTTLS on the sending side (the sending MTA's TLS policy) with TLS 1.2 or later."),
    (RELAY_WHICH_SIDE, "Decide which side is wrong: is the recipient domain one this server accepts mail for (its MX, local or relay domains), and is this connection entitled to relay (client IP allowed, or SMTP AUTH)?"),
    (MAILBOX_STATE, "Ask the receiving admin about the mailbox state: quota used, or a disabled or deleted account."),
    (SIZE_LIMITS, "Compare the message size with the limits on the path: the SIZE the server advertises in its EHLO reply and the sending side's own limit."),
    (ROUTING, "Check the sending side's routing for this domain (smart host, transport maps), and for a mail loop, which servers treat the domain as local."),
    (REPUTATION_WATCH, "Watch the sending IP's reputation (public blocklists, the receiving provider's sender pages, Google Postmaster Tools)."),
    (SENDER_CHECK, "Check the sender address: its domain must exist and resolve (MX or A) and the address must be allowed to send from this server."),
    (COMPROMISE, "Check for a compromised account or host sending spam through this IP (queue contents, outbound logs)."),
    (AUTH_OR_CONNECTOR, "Authenticate before MAIL FROM (SMTP AUTH over STARTTLS on port 587), or ask the server's admin to allow your IP to relay."),
    (AUTH_POSTURE, "Check the sending domain's SPF (every sending source listed, under 10 DNS lookups), DKIM (signing enabled, selectors published) and DMARC (policy and alignment)."),
    (SERVER_TLS_VERSIONS, "Enable TLS 1.2 (and 1.3) with modern cipher suites on the server."),
    (ENABLE_STARTTLS, "Enable STARTTLS on the server, with a valid certificate."),
    (SMTP_CERT_BOUND, "Check the certificate and private key the SMTP server is configured with (present, readable, not expired)."),
];

/// Advice about TLS versions and ciphers: meaningless once a handshake has succeeded.
const CIPHER_ADVICE: &[&str] = &["cipher"];

/// Identifies the peer from the host name, greeting and EHLO capabilities.
pub fn identify(host: &str, banner: Option<&Reply>, ehlo: Option<&Capabilities>) -> Peer {
    if is_eop_host(host) {
        return Peer::Microsoft;
    }
    let mut text = String::new();
    for line in banner.into_iter().flat_map(|r| r.lines.iter()) {
        text.push_str(&line.to_ascii_lowercase());
        text.push('\n');
    }
    for k in ehlo.into_iter().flat_map(|c| c.keywords.iter()) {
        text.push_str(&k.to_ascii_lowercase());
        text.push('\n');
    }
    if MICROSOFT_MARKERS.iter().any(|m| text.contains(m)) {
        Peer::Microsoft
    } else if OTHER_MARKERS.iter().any(|m| text.contains(m)) {
        Peer::Other
    } else {
        Peer::Unknown
    }
}

/// Fits a diagnosis's next steps to the server that answered (see `fit_next_steps`).
pub fn fit_steps(d: &mut Diagnosis, peer: Peer) {
    fit_next_steps(&mut d.next_steps, d.scenario, d.category, peer);
}

/// For a server known not to be Microsoft: drops the Microsoft-only steps, words the others
/// for any server, and says who can act instead (for this category: a TLS finding is about
/// the server's TLS setup, not its recipient tables). A message trace stays where the sender
/// is Microsoft 365 (scenarios C and D). Microsoft keeps every step; an unknown server keeps
/// every step but the escalation, which names Microsoft only for a Microsoft peer.
pub fn fit_next_steps(
    steps: &mut Vec<String>,
    scenario: Option<Scenario>,
    category: Category,
    peer: Peer,
) {
    if peer == Peer::Microsoft {
        return;
    }
    if peer == Peer::Unknown {
        reword(steps, &[ESCALATE]);
        return;
    }
    let keep_trace = matches!(scenario, Some(Scenario::C | Scenario::D));
    let before = steps.len();
    steps.retain(|s| !MICROSOFT_ONLY_STEPS.contains(&s.as_str()) && (keep_trace || s != TRACE));
    let dropped = steps.len() < before;
    reword(steps, &[]);
    let who = if matches!(category, Category::TlsFailed | Category::TlsRequired) {
        THIRD_PARTY_TLS
    } else {
        THIRD_PARTY
    };
    if dropped && !steps.iter().any(|s| s == who) {
        // In place of the Microsoft-side checks: who can act on this receiver.
        let at = steps.len().saturating_sub(1);
        steps.insert(at, who.to_string());
    }
}

/// Replaces Microsoft-worded steps by their plain wording (only those in `only` when it is
/// not empty).
fn reword(steps: &mut [String], only: &[&str]) {
    for s in steps.iter_mut() {
        let generic = GENERIC_WORDING
            .iter()
            .filter(|(ms, _)| only.is_empty() || only.contains(ms))
            .find(|(ms, _)| s == ms);
        if let Some((_, plain)) = generic {
            *s = (*plain).to_string();
        }
    }
}

/// Drops advice about TLS versions and ciphers from a diagnosis made after a TLS handshake
/// succeeded: both ends evidently share a version and a cipher.
pub fn drop_cipher_advice(d: &mut Diagnosis) {
    d.next_steps.retain(|s| {
        !CIPHER_ADVICE
            .iter()
            .any(|n| s.to_ascii_lowercase().contains(n))
    });
}

const THIRD_PARTY: &str = "The receiving server is a third-party MTA: its administrator decides this (recipient tables, relay and access rules); give them the full reply text, the time in UTC and the sending IP.";
const THIRD_PARTY_TLS: &str = "The receiving server is a third-party MTA: its administrator decides its TLS setup (certificate, TLS versions, STARTTLS); give them the mxtrace transcript with the TLS details and the time in UTC.";

#[cfg(test)]
mod tests {
    use super::*;
    use mxtrace_proto::smtp::reply::Reply;

    fn banner(text: &str) -> Reply {
        Reply::parse_text(text).unwrap()
    }

    #[test]
    fn identifies_peers() {
        let b = banner("220 mx.fabrikam.test ESMTP Postfix (Debian/GNU)");
        assert_eq!(identify("mx.fabrikam.test", Some(&b), None), Peer::Other);
        let b = banner("220 mail.contoso.com Microsoft ESMTP MAIL Service ready at Mon");
        assert_eq!(
            identify("mail.contoso.com", Some(&b), None),
            Peer::Microsoft
        );
        assert_eq!(
            identify("contoso-com.mail.protection.outlook.com", None, None),
            Peer::Microsoft
        );
        let b = banner("220 mx.example ESMTP ready");
        assert_eq!(identify("mx.example", Some(&b), None), Peer::Unknown);
    }

    #[test]
    fn drops_only_microsoft_receiver_steps_for_other_peers() {
        let e = super::super::explain_reply(
            Some(mxtrace_proto::model::Stage::RcptTo),
            &banner("550 5.1.1 <x@fabrikam.test>: Recipient address rejected: User unknown"),
        );
        let mut d = Diagnosis::new(e, Default::default());
        assert!(d.next_steps.iter().any(|s| s == LICENSING));
        let before = d.next_steps.len();
        fit_steps(&mut d, Peer::Unknown);
        assert_eq!(d.next_steps.len(), before);
        fit_steps(&mut d, Peer::Other);
        assert!(!d
            .next_steps
            .iter()
            .any(|s| s == LICENSING || s == DIRSYNC || s == TRACE));
        assert!(d.next_steps.iter().any(|s| s == THIRD_PARTY));
        assert!(d
            .next_steps
            .last()
            .is_some_and(|s| s.starts_with("If every check")));
    }
}
