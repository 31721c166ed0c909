//! The binary as users and CI run it: help text, transcript, JSON, exit codes, secrets.

mod support;

use support::bin::{mxtrace, redact, stages};
use support::scripted::{ehlo_reply, line, ScriptedServer, Step};

#[test]
fn help_is_pinned() {
    let r = mxtrace(&["--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("help", r.stdout);
    let r = mxtrace(&["probe", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("probe_help", r.stdout);
    let r = mxtrace(&["trace", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("trace_help", r.stdout);
    let r = mxtrace(&["explain", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("explain_help", r.stdout);
    let r = mxtrace(&["watch", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("watch_help", r.stdout);
    let r = mxtrace(&["roundtrip", "--help"], &[]);
    assert_eq!(r.code, 0);
    insta::assert_snapshot!("roundtrip_help", r.stdout);
}

#[test]
fn completions_and_man_page_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = mxtrace(&["completions", shell], &[]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        // Every subcommand and a session flag are completed.
        for word in ["probe", "trace", "run", "diff", "demo", "stage-timeout"] {
            assert!(r.stdout.contains(word), "{shell} lacks {word}");
        }
        // Subcommands are built when completions need them (src/cli/deferred.rs), each with
        // its own description, not a flattened group's.
        if shell == "fish" {
            assert!(
                r.stdout.contains("the \"telnet host 25\" replacement"),
                "{}",
                r.stdout
            );
            assert!(!r.stdout.contains("-d '`--html FILE`"), "{}", r.stdout);
        }
    }
    let r = mxtrace(&["completions", "tcsh"], &[]);
    assert_eq!(r.code, 2, "an unknown shell is a usage error");
    let r = mxtrace(&["man"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with(".ie"), "roff: {}", &r.stdout[..40]);
    assert!(r.stdout.contains(".TH mxtrace 1"), "{}", r.stdout);
    assert!(r.stdout.contains("SMTP path tracer"), "{}", r.stdout);
    assert!(r.stdout.contains("mxtrace\\-probe"), "subcommands listed");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["probe"],
        vec!["probe", "mx.contoso.test:99999"],
        vec!["probe", "bad host"],
        vec!["probe", "127.0.0.1", "--rcpt", "a@b\r\nDATA"],
        vec!["probe", "127.0.0.1", "--connect-timeout", "soon"],
        vec!["probe", "127.0.0.1", "--data"],
        vec!["probe", "127.0.0.1", "--auth-password", "hunter2"],
        vec!["probe", "127.0.0.1", "--tls-ca-file", "/nonexistent/ca.pem"],
        vec!["probe", "127.0.0.1", "-6"],
        vec!["probe", "127.0.0.1", "--scenario", "E"],
        vec!["probe", "127.0.0.1", "--scenario", "A", "--hop", "2"],
        vec!["probe", "127.0.0.1", "--hop", "1"],
        vec!["probe", "127.0.0.1", "--source", "::1", "-4"],
        vec!["trace", "contoso.test", "--resolver", "not-an-ip"],
        vec!["trace", "contoso.test", "--tenant", "bad tenant!"],
        vec!["frobnicate"],
    ] {
        let r = mxtrace(&args, &[]);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.is_empty(),
            "{args:?} printed to stdout: {}",
            r.stdout
        );
        assert!(!r.stderr.is_empty(), "{args:?}: no message");
    }
}

#[test]
fn usage_errors_name_the_flag() {
    for (args, want) in [
        (
            vec!["probe", "127.0.0.1", "--rcpt", "nobody"],
            "mxtrace: --rcpt \"nobody\": not a valid mail address (expected local@domain)",
        ),
        (
            vec!["probe", "127.0.0.1", "--stage-timeout", "0s"],
            "'--stage-timeout <DURATION>': must be more than zero",
        ),
        (
            vec!["probe", "127.0.0.1", "--source", "::1", "-4"],
            "mxtrace: --source ::1 does not match -4/-6",
        ),
        (
            vec!["trace", "contoso.test", "--resolver", "x"],
            "mxtrace: --resolver \"x\": expected IP, IP:PORT or [IPv6]:PORT",
        ),
        (
            vec!["probe", "127.0.0.1", "--ehlo", "a b"],
            "mxtrace: --ehlo \"a b\": not a valid EHLO name",
        ),
    ] {
        let r = mxtrace(&args, &[]);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn auth_without_a_password_source_is_a_usage_error_not_a_hang() {
    // No terminal (stdin is null): mxtrace must not prompt.
    let r = mxtrace(
        &["probe", "127.0.0.1", "--auth-user", "me@contoso.test"],
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--auth-password-env"), "{}", r.stderr);
    let r = mxtrace(
        &[
            "probe",
            "127.0.0.1",
            "--auth-user",
            "me",
            "--auth-password-env",
            "MXTRACE_UNSET_VAR",
        ],
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("MXTRACE_UNSET_VAR is not set"),
        "{}",
        r.stderr
    );
}

fn plain_session() -> Vec<Step> {
    vec![
        line("220 mx.contoso.test ESMTP Postfix"),
        Step::Expect("EHLO probe.fabrikam.test".into()),
        ehlo_reply("mx.contoso.test", &["PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES"]),
        Step::Expect("MAIL FROM:<probe@fabrikam.test>".into()),
        Step::Expect("RCPT TO:<user@contoso.test>".into()),
        Step::Expect("RCPT TO:<nobody@contoso.test>".into()),
        line("250 2.1.0 Ok"),
        line("250 2.1.5 Ok"),
        line("550 5.1.1 <nobody@contoso.test>: Recipient address rejected: User unknown in virtual mailbox table"),
        Step::Expect("RSET".into()),
        line("250 2.0.0 Ok"),
        Step::Expect("QUIT".into()),
        line("221 2.0.0 Bye"),
        Step::Close,
    ]
}

const ENVELOPE: [&str; 8] = [
    "--ehlo",
    "probe.fabrikam.test",
    "--from",
    "probe@fabrikam.test",
    "--rcpt",
    "user@contoso.test",
    "--rcpt",
    "nobody@contoso.test",
];

#[test]
fn transcript_is_pinned() {
    let server = ScriptedServer::spawn_thread(plain_session());
    let target = server.addr.to_string();
    let mut args = vec!["probe", target.as_str()];
    args.extend(ENVELOPE);
    let r = mxtrace(&args, &[]);
    server.finish_blocking().assert_ok();
    assert_eq!(r.code, 1, "one recipient was rejected");
    insta::assert_snapshot!("transcript_rcpt_rejected", redact(&r.stdout));
}

#[test]
fn json_shape_and_exit_code() {
    let server = ScriptedServer::spawn_thread(plain_session());
    let target = server.addr.to_string();
    let mut args = vec!["probe", target.as_str(), "--json"];
    args.extend(ENVELOPE);
    let r = mxtrace(&args, &[]);
    server.finish_blocking().assert_ok();
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(j["command"], "probe");
    assert_eq!(j["target"]["ip"], "127.0.0.1");
    assert_eq!(j["target"]["tls_mode"], "starttls-auto");
    for key in [
        "target",
        "stages",
        "capabilities",
        "tls",
        "verdict",
        "elapsed_ms",
        "started_at",
    ] {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    let rcpts = stages(&j, "rcpt_to");
    assert_eq!(rcpts.len(), 2);
    let bad = rcpts[1];
    for key in [
        "stage",
        "sent",
        "reply",
        "elapsed_ms",
        "outcome",
        "error",
        "diagnosis",
    ] {
        assert!(bad.get(key).is_some(), "stage missing {key}");
    }
    assert_eq!(bad["sent"][0], "RCPT TO:<nobody@contoso.test>");
    assert_eq!(bad["reply"]["code"], 550);
    assert_eq!(bad["reply"]["enhanced"], "5.1.1");
    assert_eq!(bad["outcome"], "permanent");
    for key in [
        "category",
        "layer",
        "scenario",
        "hop",
        "cause",
        "next_steps",
    ] {
        assert!(
            bad["diagnosis"].get(key).is_some(),
            "diagnosis missing {key}"
        );
    }
    assert_eq!(j["verdict"]["passed"], false);
    assert_eq!(j["verdict"]["failed_stage"], "rcpt_to");
    assert_eq!(j["capabilities"]["before_tls"]["size"], 10240000);
}

#[test]
fn passing_probe_exits_0_and_refused_exits_1() {
    let server = ScriptedServer::spawn_thread(vec![
        line("220 mx.contoso.test ESMTP"),
        Step::Expect("EHLO".into()),
        ehlo_reply("mx.contoso.test", &[]),
        Step::Expect("QUIT".into()),
        line("221 Bye"),
        Step::Close,
    ]);
    let target = server.addr.to_string();
    let r = mxtrace(&["probe", &target], &[]);
    server.finish_blocking().assert_ok();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("Verdict: PASS"));

    let refused = support::scripted::refused_addr().to_string();
    let r = mxtrace(&["probe", &refused, "--json"], &[]);
    assert_eq!(r.code, 1);
    assert_eq!(stages(&r.json(), "connect")[0]["error"]["kind"], "refused");
}

#[test]
fn secrets_never_reach_output() {
    let pki = support::certs::TestPki::new();
    let session = || {
        let mut s = support::scripted::starttls_dialogue(
            "mx.contoso.test",
            &["STARTTLS"],
            pki.server_config(&support::certs::CertKind::Valid("mx.contoso.test".into())),
            &["AUTH PLAIN LOGIN"],
        );
        s.extend([
            Step::Expect("AUTH PLAIN".into()),
            line("535 5.7.8 Error: authentication failed: s3cr3t-P@ss is wrong"),
            Step::Expect("QUIT".into()),
            line("221 Bye"),
            Step::Close,
        ]);
        s
    };
    for format in ["human", "json"] {
        let server = ScriptedServer::spawn_thread(session());
        let target = server.addr.to_string();
        let ca = pki.ca_file().to_string_lossy().into_owned();
        let r = mxtrace(
            &[
                "probe",
                &target,
                "--format",
                format,
                "--tls-name",
                "mx.contoso.test",
                "--tls-ca-file",
                &ca,
                "--auth-user",
                "me@contoso.test",
                "--auth-password-env",
                "MXTRACE_TEST_PW",
            ],
            &[("MXTRACE_TEST_PW", "s3cr3t-P@ss")],
        );
        let log = server.finish_blocking();
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert!(log.received.iter().any(|l| l.starts_with("AUTH PLAIN ")));
        // The server's own echo of the password is the only place it may appear: the reply
        // is shown as received. Everything mxtrace wrote itself is redacted.
        let ours: String = r
            .stdout
            .lines()
            .chain(r.stderr.lines())
            .filter(|l| !l.contains("is wrong"))
            .collect();
        assert!(!ours.contains("s3cr3t"), "{format}: {ours}");
        assert!(
            !ours.contains("czNjcjN0"),
            "{format}: base64 of the password leaked"
        );
        assert!(ours.contains("<redacted>"), "{format}: {ours}");
    }
}

#[test]
fn key_and_password_files_never_leak_into_errors() {
    let dir = std::env::temp_dir().join(format!("mxtrace-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("client.key");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let cert = dir.join("client.pem");
    std::fs::write(&cert, "not a certificate TOPSECRETCERT").unwrap();
    let pw = dir.join("password");
    std::fs::write(&pw, "").unwrap();
    let refused = support::scripted::refused_addr().to_string();
    for format in ["human", "json"] {
        let r = mxtrace(
            &[
                "probe",
                &refused,
                "--format",
                format,
                "--tls-client-cert",
                cert.to_str().unwrap(),
                "--tls-client-key",
                key.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(!all.contains("TOPSECRET"), "{all}");
        assert!(
            all.contains("client.pem") || all.contains("client.key"),
            "{all}"
        );
    }
    // An empty password file is refused by name, and nothing of the file is shown.
    std::fs::write(&pw, "\n").unwrap();
    let r = mxtrace(
        &[
            "probe",
            &refused,
            "--auth-user",
            "me",
            "--auth-password-file",
            pw.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is empty"), "{}", r.stderr);
    // A real password from a file is used, and appears nowhere (the connection is refused
    // before AUTH, which is the point: no output path may carry it).
    std::fs::write(&pw, "hunter2-from-file\n").unwrap();
    for format in ["human", "json"] {
        let r = mxtrace(
            &[
                "probe",
                &refused,
                "--format",
                format,
                "--auth-user",
                "me",
                "--auth-password-file",
                pw.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(r.code, 1);
        assert!(!format!("{}{}", r.stdout, r.stderr).contains("hunter2"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// IPv6: `[::1]:PORT` with -6 reaches an IPv6 listener; -4 with an IPv6 target is a usage error.
#[test]
fn ipv6_literal_target() {
    use std::io::{BufRead, BufReader, Write};
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        w.write_all(b"220 v6.contoso.test ESMTP\r\n").unwrap();
        let mut seen = Vec::new();
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let cmd = line.trim_end().to_string();
            line.clear();
            let reply: &[u8] = if cmd.starts_with("EHLO") {
                b"250-v6.contoso.test\r\n250 PIPELINING\r\n"
            } else if cmd == "QUIT" {
                b"221 bye\r\n"
            } else {
                b"502 5.5.2 no\r\n"
            };
            w.write_all(reply).unwrap();
            seen.push(cmd.clone());
            if cmd == "QUIT" {
                break;
            }
        }
        seen
    });
    let target = format!("[::1]:{port}");
    let r = mxtrace(
        &[
            "probe",
            &target,
            "-6",
            "--json",
            "--ehlo",
            "probe.fabrikam.test",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["target"]["ip"], "::1");
    assert_eq!(server.join().unwrap(), ["EHLO probe.fabrikam.test", "QUIT"]);
    let r = mxtrace(&["probe", &target, "-4"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Nothing listens now: the header still writes the address with brackets.
    let r = mxtrace(&["probe", &target, "-6"], &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .starts_with(&format!("mxtrace probe [::1]:{port} (::1)")),
        "{}",
        r.stdout
    );
}

/// `explain --peer`: the next steps fit the kind of server named (there is no greeting to
/// recognise it by); `unknown`, the default, keeps every step.
#[test]
fn explain_peer_fits_the_advice() {
    let reply = "550 5.7.1 <x@fabrikam.test>: Relay access denied";
    let other = mxtrace(
        &["explain", reply, "--stage", "rcpt", "--peer", "other"],
        &[],
    );
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert!(other.stdout.contains("relay_denied"), "{}", other.stdout);
    for word in [
        "Exchange",
        "Hybrid Configuration Wizard",
        "Connectors",
        "Microsoft",
    ] {
        assert!(!other.stdout.contains(word), "{word}: {}", other.stdout);
    }
    assert!(other.stdout.contains("third-party MTA"), "{}", other.stdout);
    let default = mxtrace(&["explain", reply, "--stage", "rcpt"], &[]);
    let ms = mxtrace(
        &["explain", reply, "--stage", "rcpt", "--peer", "microsoft"],
        &[],
    );
    // An unknown peer keeps every step; only the escalation names Microsoft for a Microsoft
    // peer alone (issue 29).
    let (d_steps, d_last) = default.stdout.trim_end().rsplit_once('\n').unwrap();
    let (m_steps, m_last) = ms.stdout.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(d_steps, m_steps);
    assert!(m_last.contains("Microsoft support"), "{m_last}");
    assert!(!d_last.contains("Microsoft"), "{d_last}");
    assert!(
        ms.stdout.contains("Hybrid Configuration Wizard"),
        "{}",
        ms.stdout
    );
    let bad = mxtrace(&["explain", reply, "--peer", "postfix"], &[]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

/// The mailbox's login flags of `roundtrip`, refused before anything connects (exit 2), each
/// naming what to give instead; no secret on argv is ever possible.
#[test]
fn roundtrip_mailbox_login_usage_errors() {
    let base = [
        "roundtrip",
        "--via",
        "127.0.0.1:9",
        "--rcpt",
        "u@contoso.test",
        "--mailbox",
        "imaps://u@contoso.test@127.0.0.1:9",
    ];
    let cases: [(&[&str], &str); 5] = [
        (
            &["--mailbox-oauth"],
            "mxtrace: --mailbox-oauth needs the OAuth settings to take the token from: \
             --oauth-tenant or --oauth-token-url (a grant), or --oauth-token-env / \
             --oauth-token-file",
        ),
        (
            &[
                "--mailbox-password-env",
                "PW",
                "--mailbox-auth-mech",
                "xoauth2",
            ],
            "mxtrace: --mailbox-auth-mech needs a token for the mailbox (--mailbox-oauth, \
             --mailbox-oauth-token-env or --mailbox-oauth-token-file)",
        ),
        (
            &["--mailbox-oauth-token-env", "MXTRACE_TEST_UNSET_TOKEN"],
            "mxtrace: environment variable MXTRACE_TEST_UNSET_TOKEN is not set",
        ),
        (
            &[
                "--mailbox-oauth",
                "--oauth-tenant",
                "contoso.onmicrosoft.com",
            ],
            "mxtrace: --oauth-tenant needs --oauth-client-id",
        ),
        (
            &["--mailbox-password-env", "PW", "--oauth-token-env", "T"],
            "mxtrace: --oauth-token-env is for SMTP AUTH (with --auth-user) or a mailbox's \
             login (--mailbox-oauth, --ndr-mailbox-oauth): give one of them",
        ),
    ];
    for (extra, want) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let r = mxtrace(&args, &[("PW", "pw"), ("T", "t")]);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim_end(), want, "{extra:?}");
    }
    let r = mxtrace(
        &[
            &base[..],
            &["--mailbox-oauth", "--mailbox-password-env", "PW"],
        ]
        .concat(),
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("'--mailbox-oauth' cannot be used with"),
        "{}",
        r.stderr
    );
}
