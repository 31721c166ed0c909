//! A scripted IMAP server: the scripted SMTP server (`scripted.rs`) plays IMAP's lines just as
//! well, since the client's tags are predictable (a1, a2, ...). These helpers write the usual
//! openings; hostile steps (stalls, huge literals, endless lines) are `Step`s as for SMTP.
#![allow(dead_code)]

use super::certs::{CertKind, TestPki};
use super::scripted::{expect, line, Step};

/// The certificate name the scripted server presents.
pub const NAME: &str = "imap.contoso.test";

/// IMAPS: the TLS handshake, then a greeting with these capabilities.
pub fn imaps_greeting(pki: &TestPki, caps: &str) -> Vec<Step> {
    vec![
        Step::StartTls(pki.server_config(&CertKind::Valid(NAME.into()))),
        line(&format!(
            "* OK [CAPABILITY IMAP4rev1 {caps}] scripted IMAP ready"
        )),
    ]
}

/// A successful AUTHENTICATE PLAIN with SASL-IR as tag `tag`, new capabilities in the OK.
pub fn login_ok(tag: &str, caps: &str) -> Vec<Step> {
    vec![
        expect(&format!("{tag} AUTHENTICATE PLAIN ")),
        line(&format!("{tag} OK [CAPABILITY IMAP4rev1 {caps}] Logged in")),
    ]
}

/// A command answered with untagged lines and OK.
pub fn answer(tag: &str, command: &str, untagged: &[&str]) -> Vec<Step> {
    let mut steps = vec![expect(&format!("{tag} {command}"))];
    steps.extend(untagged.iter().map(|u| line(u)));
    steps.push(line(&format!("{tag} OK done")));
    steps
}
