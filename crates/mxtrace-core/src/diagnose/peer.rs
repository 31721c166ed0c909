//! Who answered: Microsoft (Exchange Online, Exchange Server) or a server positively known to
//! be something else, from its greeting and EHLO reply. The next steps of a diagnosis are
//! written for the Microsoft 365 delivery paths; steps that act on the receiving Microsoft
//! side (licences, directory sync, EOP connectors) are dropped when the receiver is known not
//! to be Microsoft. An unrecognised server keeps every step: unsure means no change.

use super::advice::{
    CONNECTORS, DBEB, DELIST_MS, DIRSYNC, HCW, LICENSING, MX_CHECK, RULES, TELNET_EOP, TRACE,
};
use super::{is_eop_host, Diagnosis, Scenario};
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::Reply;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Microsoft,
    Other,
    Unknown,
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

/// Receiving-side Microsoft steps: meaningless for a server known not to be Microsoft.
const MICROSOFT_RECEIVER_STEPS: &[&str] = &[
    LICENSING, DIRSYNC, DBEB, CONNECTORS, HCW, MX_CHECK, TELNET_EOP, RULES, DELIST_MS,
];

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

/// Drops the Microsoft receiving-side steps from a diagnosis of a reply from a non-Microsoft
/// server. A message trace stays where the sender is Microsoft 365 (scenarios C and D).
pub fn fit_steps(d: &mut Diagnosis, peer: Peer) {
    if peer != Peer::Other {
        return;
    }
    let keep_trace = matches!(d.scenario, Some(Scenario::C | Scenario::D));
    let before = d.next_steps.len();
    d.next_steps
        .retain(|s| !MICROSOFT_RECEIVER_STEPS.contains(&s.as_str()) && (keep_trace || s != TRACE));
    if d.next_steps.len() < before {
        // In place of the Microsoft-side checks: who can act on this receiver.
        let at = d.next_steps.len().saturating_sub(1);
        d.next_steps.insert(at, THIRD_PARTY.to_string());
    }
}

const THIRD_PARTY: &str = "The receiving server is not Microsoft's: its administrator decides this (recipient tables, relay and access rules); give them the full reply text, the time in UTC and the sending IP.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::Reply;

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
            Some(crate::model::Stage::RcptTo),
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
