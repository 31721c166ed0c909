//! The IMAP client and the round trip against scripted IMAP servers (tests/support/imap.rs):
//! a server that stalls hits the command deadline, a huge literal or an endless line is
//! refused before it is read, and a server without IDLE, UIDPLUS or SPECIAL-USE is polled, its
//! Junk found by name, and the probe left in place (and said so). A token goes after the
//! first `+` without SASL-IR, its error challenge is decoded and answered, and a token is never
//! sent to a server without an OAuth mechanism.

mod support;

use mxtrace_net::imap::{Credentials, ImapConn, ImapError, ImapOptions, Limits};
use mxtrace_net::tls::{TlsOptions, VerifyMode};
use mxtrace_proto::mailbox::MailboxSecurity;
use mxtrace_proto::secret::Secret;
use std::time::{Duration, Instant};
use support::bin::mxtrace;
use support::certs::TestPki;
use support::imap::{answer, imaps_greeting, login_ok, NAME};
use support::scripted::{expect, line, ScriptedServer, Step};

const CAPS: &str = "AUTH=PLAIN SASL-IR";

fn options(pki: &TestPki, port: u16) -> ImapOptions {
    ImapOptions {
        host: "127.0.0.1".into(),
        port,
        security: MailboxSecurity::Implicit,
        tls: TlsOptions {
            verify: VerifyMode::Strict,
            ca_file: Some(pki.ca_file().to_path_buf()),
            client_cert: None,
            client_key: None,
            classic_groups: false,
            dane: Vec::new(),
        },
        tls_name: Some(NAME.into()),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(20),
        limits: Limits::default(),
    }
}

fn creds() -> Credentials {
    Credentials::Password {
        user: "u@contoso.test".into(),
        password: Secret::new("pw".into()),
    }
}

async fn logged_in(pki: &TestPki, then: Vec<Step>) -> (ScriptedServer, ImapConn) {
    let mut steps = imaps_greeting(pki, CAPS);
    steps.extend(login_ok("a1", CAPS));
    steps.extend(then);
    let server = ScriptedServer::start(steps).await;
    let o = options(pki, server.addr.port());
    let mut c = ImapConn::connect(&o, "mailbox", tokio::time::Instant::now())
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    c.login(&creds()).await.unwrap();
    (server, c)
}

#[tokio::test]
async fn a_huge_literal_is_refused_before_it_is_read() {
    let pki = TestPki::new();
    let (server, mut c) = logged_in(
        &pki,
        vec![
            expect("a2 UID FETCH 7 (BODY.PEEK[HEADER])"),
            Step::Send("* 1 FETCH (UID 7 BODY[HEADER] {999999999}\r\n".into()),
            Step::SendEndless(vec![b'x'; 4096]),
        ],
    )
    .await;
    let e = c.uid_fetch(7, None).await.unwrap_err();
    assert!(
        matches!(e, ImapError::TooLarge { what: "literal", limit } if limit == Limits::default().literal),
        "{e}"
    );
    assert!(e.to_string().contains("larger than 2097152 bytes"), "{e}");
    drop(c);
    server.finish().await.assert_ok();
}

#[tokio::test]
async fn an_endless_line_is_refused() {
    let pki = TestPki::new();
    let (server, mut c) = logged_in(
        &pki,
        vec![
            expect("a2 NOOP"),
            Step::SendEndless(b"* OK aaaaaaaa".repeat(512)),
        ],
    )
    .await;
    let e = c.noop().await.unwrap_err();
    assert!(matches!(e, ImapError::TooLarge { what: "line", .. }), "{e}");
    drop(c);
    server.finish().await.assert_ok();
}

#[tokio::test]
async fn a_stalled_answer_hits_the_command_deadline() {
    let pki = TestPki::new();
    let mut steps = imaps_greeting(&pki, CAPS);
    steps.extend(login_ok("a1", CAPS));
    // Half a response, then nothing.
    steps.extend([
        expect("a2 NOOP"),
        Step::Send("* OK still".into()),
        Step::Hang,
    ]);
    let server = ScriptedServer::start(steps).await;
    let mut o = options(&pki, server.addr.port());
    o.command_timeout = Duration::from_millis(500);
    let mut c = ImapConn::connect(&o, "mailbox", tokio::time::Instant::now())
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    c.login(&creds()).await.unwrap();
    let e = c.noop().await.unwrap_err();
    assert!(matches!(e, ImapError::Timeout(_)), "{e}");
    assert!(e.to_string().contains("stalled"), "{e}");
    let last = c.log.last().unwrap();
    assert_eq!((last.command.as_str(), last.ok), ("NOOP", false));
    drop(c);
    server.finish().await.assert_ok();
}

#[test]
fn a_stalled_login_is_a_mailbox_error_and_nothing_is_sent() {
    let pki = TestPki::new();
    let mut steps = imaps_greeting(&pki, CAPS);
    steps.extend([expect("a1 AUTHENTICATE PLAIN "), Step::Hang]);
    let server = ScriptedServer::spawn_thread(steps);
    // Nothing listens at --via: had it been reached, the round trip would have gone on.
    let via = support::scripted::refused_addr().to_string();
    let mailbox = format!("imaps://u@contoso.test@127.0.0.1:{}", server.addr.port());
    let ca = pki.ca_file().display().to_string();
    let started = Instant::now();
    let r = mxtrace(
        &[
            "roundtrip",
            "--via",
            &via,
            "--rcpt",
            "u@contoso.test",
            "--mailbox",
            &mailbox,
            "--mailbox-password-env",
            "PW",
            "--mailbox-ca-file",
            &ca,
            "--mailbox-tls-name",
            NAME,
            "--mailbox-timeout",
            "1s",
        ],
        &[("PW", "secret-pw")],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was sent"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    let log = server.finish_blocking();
    assert!(log.received.iter().all(|l| !l.contains("secret-pw")));
}

/// The delivered copy: EOP's stamps say spam, DMARC failed.
const HEADER: &str =
    "Received: from AM0PR01MB0001.eurprd01.prod.outlook.com (2603:10a6::1) by\r\n \
AM0PR01MB0002.eurprd01.prod.outlook.com with HTTPS; Mon, 7 Dec 2026 17:00:03 +0000\r\n\
Received: from mail.fabrikam.test (192.0.2.10) by AM0PEPF0001.mail.protection.outlook.com\r\n \
(10.167.16.1) with Microsoft SMTP Server (version=TLS1_2,\r\n \
cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.1; Mon, 7 Dec 2026 17:00:01 +0000\r\n\
Authentication-Results: spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=fabrikam.test;\r\n \
dkim=none (message not signed) header.d=none;dmarc=fail action=quarantine\r\n \
header.from=fabrikam.test;compauth=fail reason=000\r\n\
X-Forefront-Antispam-Report: CIP:192.0.2.10;CTRY:US;LANG:en;SCL:6;SRV:;IPV:NLI;SFV:SPM;\r\n \
H:mail.fabrikam.test;CAT:SPOOF;DIR:INB;\r\n\
Subject: mxtrace probe\r\n\
X-Mxtrace-Probe: scripted\r\n\r\n";

fn smtp_steps() -> Vec<Step> {
    let mut s = support::session::greeting(&[]);
    s.extend([
        expect("MAIL FROM:<probe@fabrikam.test>"),
        line("250 2.1.0 Ok"),
        expect("RCPT TO:<u@contoso.test>"),
        line("250 2.1.5 Ok"),
        expect("DATA"),
        line("354 go ahead"),
        Step::ReadData,
        line("250 2.0.0 Ok: queued as 4XyZ"),
    ]);
    s.extend(support::session::quit());
    s
}

fn imap_steps(pki: &TestPki) -> Vec<Step> {
    let mut s = imaps_greeting(pki, CAPS);
    s.extend(login_ok("a1", CAPS));
    // No SPECIAL-USE: a plain LIST; Junk goes by the name Exchange Online gives it.
    s.extend(answer(
        "a2",
        "LIST \"\" \"*\"",
        &[
            "* LIST (\\HasNoChildren) \"/\" INBOX",
            "* LIST (\\HasNoChildren) \"/\" \"Junk Email\"",
        ],
    ));
    s.extend(answer("a3", "EXAMINE \"Junk Email\"", &["* 1 EXISTS"]));
    // Junk: the id header is not found; by the subject, a message that quotes the probe's
    // subject (a reply, a bounce) without carrying its id header: not the probe.
    s.extend(answer(
        "a4",
        "UID SEARCH HEADER X-Mxtrace-Probe \"mxt-",
        &["* SEARCH"],
    ));
    s.extend(answer("a5", "UID SEARCH SUBJECT \"mxt-", &["* SEARCH 4"]));
    s.extend(fetch_header("a6", 4, LOOKALIKE));
    s.extend(answer("a7", "EXAMINE \"INBOX\"", &["* 3 EXISTS"]));
    s.extend(answer(
        "a8",
        "UID SEARCH HEADER X-Mxtrace-Probe \"mxt-",
        &["* SEARCH 7"],
    ));
    s.extend(answer("a9", "EXAMINE \"INBOX\"", &[]));
    s.extend(fetch_header("a10", 7, HEADER));
    // No UIDPLUS: nothing is deleted; then LOGOUT.
    s.extend([
        expect("a11 LOGOUT"),
        line("* BYE bye"),
        line("a11 OK Logout completed"),
    ]);
    s
}

/// A reply that quotes the probe's subject: found by SUBJECT, refused by its header.
const LOOKALIKE: &str = "Subject: RE: mxtrace probe\r\nFrom: someone@contoso.test\r\n\r\n";

fn fetch_header(tag: &str, uid: u32, header: &str) -> Vec<Step> {
    vec![
        expect(&format!("{tag} UID FETCH {uid} (BODY.PEEK[HEADER])")),
        Step::Send(format!(
            "* 1 FETCH (UID {uid} BODY[HEADER] {{{}}}\r\n{header})\r\n",
            header.len()
        )),
        line(&format!("{tag} OK Fetch completed")),
    ]
}

#[test]
fn without_uidplus_the_probe_stays_and_the_receivers_verdicts_are_read() {
    let pki = TestPki::new();
    let imap = ScriptedServer::spawn_thread(imap_steps(&pki));
    let smtp = ScriptedServer::spawn_thread(smtp_steps());
    let via = smtp.addr.to_string();
    let mailbox = format!("imaps://u@contoso.test@127.0.0.1:{}", imap.addr.port());
    let ca = pki.ca_file().display().to_string();
    let r = mxtrace(
        &[
            "roundtrip",
            "--via",
            &via,
            "--from",
            "probe@fabrikam.test",
            "--rcpt",
            "u@contoso.test",
            "--mailbox",
            &mailbox,
            "--mailbox-password-env",
            "PW",
            "--mailbox-ca-file",
            &ca,
            "--mailbox-tls-name",
            NAME,
            "--starttls",
            "never",
            "--ehlo",
            "probe.fabrikam.test",
            "--scenario",
            "A",
            "--within",
            "10s",
            "--json",
        ],
        &[("PW", "pw")],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["delivery"]["status"], "delivered");
    assert_eq!(j["delivery"]["folder"], "inbox");
    assert_eq!(j["mailbox"]["idle"], false);
    assert_eq!(j["mailbox"]["junk_folder"], "Junk Email");
    assert_eq!(j["mailbox"]["junk_found_by"], "name");
    assert_eq!(j["cleanup"][0]["action"], "left_no_uidplus");
    assert_eq!(j["receiver"]["scl"], 6);
    assert_eq!(j["receiver"]["spam_verdict"], "SPM");
    assert_eq!(j["path"]["hops"][0]["zone"], "exchange_online");
    assert_eq!(j["path"]["hops"][0]["tls_version"], "TLSv1.2");
    let codes: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    for want in ["spam_verdict", "dmarc_fail", "compauth_fail"] {
        assert!(codes.contains(&want), "{want} not in {codes:?}");
    }
    assert!(!codes.contains(&"landed_in_junk"));
    smtp.finish_blocking().assert_completed();
    imap.finish_blocking().assert_completed();
    // The transcript says why the probe stays.
    assert!(!r.stdout.contains("\"pw\""));
}

fn token(mech: Option<mxtrace_proto::spec::AuthMech>) -> Credentials {
    Credentials::Token {
        user: "u@contoso.test".into(),
        token: Secret::new("tok-123".into()),
        mech,
    }
}

/// A server without SASL-IR: the token's initial response follows the first `+`; its error
/// challenge is decoded and answered with OAUTHBEARER's `^A` (RFC 7628 3.2.3), then NO.
#[tokio::test]
async fn a_refused_token_without_sasl_ir_is_answered_and_decoded() {
    let pki = TestPki::new();
    let caps = "AUTH=PLAIN AUTH=OAUTHBEARER";
    let mut steps = imaps_greeting(&pki, caps);
    steps.extend([
        expect("a1 AUTHENTICATE OAUTHBEARER"),
        line("+ "),
        Step::ReadLine,
        line("+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJtYWlsIn0="),
        expect("AQ=="),
        line("a1 NO [AUTHENTICATIONFAILED] Authentication failed."),
    ]);
    let server = ScriptedServer::start(steps).await;
    let o = options(&pki, server.addr.port());
    let mut c = ImapConn::connect(&o, "mailbox", tokio::time::Instant::now())
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let e = c.login(&token(None)).await.unwrap_err();
    let ImapError::Login { how, challenge, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(how, "AUTHENTICATE OAUTHBEARER");
    let ch = challenge.as_ref().unwrap();
    assert_eq!(
        (ch.status.as_str(), ch.scope.as_deref()),
        ("invalid_token", Some("mail"))
    );
    assert!(
        e.to_string().ends_with(
            "its OAuth error challenge: {\"status\":\"invalid_token\",\"scope\":\"mail\"}"
        ),
        "{e}"
    );
    // The log: the command and the challenge, never the token.
    let step = c
        .log
        .iter()
        .find(|s| s.command.starts_with("AUTHENTICATE"))
        .unwrap();
    assert_eq!(step.command, "AUTHENTICATE OAUTHBEARER <redacted>");
    assert!(step.reply.contains("(error challenge: {"), "{}", step.reply);
    drop(c);
    let log = server.finish().await;
    log.assert_ok();
    // The initial response came after the `+`, as RFC 9051 6.2.2 says without SASL-IR; its
    // host and port are those OAUTHBEARER names.
    let sent = log.received.get(1).unwrap();
    let port = o.port;
    let want = mxtrace_proto::sasl::oauthbearer(
        "u@contoso.test",
        NAME,
        port,
        &Secret::new("tok-123".into()),
    );
    assert_eq!(sent, want.expose());
}

/// A token and a server that offers no OAuth mechanism: no AUTHENTICATE, no LOGIN, and the
/// error says what was needed and what was offered.
#[tokio::test]
async fn a_token_is_never_sent_with_plain_or_login() {
    let pki = TestPki::new();
    let mut steps = imaps_greeting(&pki, CAPS);
    steps.push(Step::ReadUntilClose);
    let server = ScriptedServer::start(steps).await;
    let o = options(&pki, server.addr.port());
    let mut c = ImapConn::connect(&o, "mailbox", tokio::time::Instant::now())
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let e = c.login(&token(None)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "the server offers no login for these credentials: it needs AUTH=XOAUTH2 or \
         AUTH=OAUTHBEARER (it offers: AUTH=PLAIN)"
    );
    let e = c
        .login(&token(Some(mxtrace_proto::spec::AuthMech::Xoauth2)))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("it needs AUTH=XOAUTH2 (it offers"),
        "{e}"
    );
    drop(c);
    let log = server.finish().await;
    assert!(log.received.is_empty(), "{:?}", log.received);
}
