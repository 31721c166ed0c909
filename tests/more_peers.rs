//! More real MTAs as peers, of other lineages than Postfix, Exim and OpenSMTPD: Sendmail 8.17,
//! Courier 1.0 and qpsmtpd 0.94 from Debian 12's packages, unpacked by
//! tests/support/{sendmail,courier,qpsmtpd}/install.sh (Sendmail and Courier conflict with
//! Postfix as apt installs; qpsmtpd's postinst would set up a queue and a service). As in
//! tests/real_peers.rs, each test writes the daemon's own configuration into a temp directory,
//! starts it in the foreground on a free loopback port and stops it by its pid on drop; outside
//! CI a missing daemon skips the test (it says so), with CI=true it fails. Each runs in private
//! namespaces (unshare, root) where its compiled-in paths need the test's own files. The
//! replies asserted here were recorded by hand first: tests/support/more-peers.md has them. A
//! check whose category is wrong today is its own test, marked #[ignore = "classifier: ..."],
//! with the correct expectation.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::bin::stages;
use support::peers::{
    binary, can_unshare, cause, diagnosis, free_port, openssl_self_signed, peers_dir, probe,
    probe_env, reply, run, temp_dir, Daemon,
};

/// The user every MTA here accepts mail for, and its SMTP AUTH password.
const PASSWORD: &str = "S3cret-pw";

// ---------------------------------------------------------------------------------------------
// Sendmail 8.17

const SENDMAIL_NAME: &str = "mx.sendmail.test";

fn sendmail_dir() -> Option<PathBuf> {
    binary(
        "sendmail/usr/libexec/sendmail/sendmail",
        "tests/support/sendmail/install.sh",
    )?;
    can_unshare(&["--mount", "--uts"]).then(|| peers_dir().join("sendmail"))
}

/// The sendmail.mc: sendmail-cf's own m4 macros, every path in the test directory, one listener
/// (no_default_msa: no second one on port 587 of every address). contoso.test is local (class
/// w); `user` is an alias, `nosuchuser` nobody; AUTH PLAIN and LOGIN are offered only inside
/// TLS (AuthOptions p) and checked against a sasldb; an authenticated client may relay. With
/// `require_tls` an access map asks 128 bits of encryption from 127.0.0.1 (TLS_Clt), which
/// Sendmail enforces at MAIL.
fn sendmail_mc(sm: &Path, dir: &Path, port: u16, require_tls: bool) -> String {
    let d = dir.display();
    let cf = sm.join("usr/share/sendmail/cf");
    let access = if require_tls {
        format!("FEATURE(`access_db', `hash -T<TMPF> -o {d}/access')dnl\n")
    } else {
        String::new()
    };
    format!(
        "divert(-1)
divert(0)dnl
include(`{cf}/m4/cf.m4')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{SENDMAIL_NAME}')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`confSERVICE_SWITCH_FILE', `{d}/service.switch')dnl
define(`confCW_FILE', `{d}/local-host-names')dnl
define(`confCR_FILE', `{d}/relay-domains')dnl
define(`QUEUE_DIR', `{d}/mqueue')dnl
define(`STATUS_FILE', `{d}/statistics')dnl
define(`ALIAS_FILE', `{d}/aliases')dnl
define(`HELP_FILE', `{help}')dnl
define(`confPID_FILE', `{d}/sendmail.pid')dnl
define(`confSERVER_CERT', `{d}/cert.pem')dnl
define(`confSERVER_KEY', `{d}/key.pem')dnl
define(`confCACERT', `{d}/cert.pem')dnl
define(`confCACERT_PATH', `{d}')dnl
define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
define(`confAUTH_OPTIONS', `A p')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`use_cw_file')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
{access}DAEMON_OPTIONS(`Port={port}, Addr=127.0.0.1, Name=MTA')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
",
        cf = cf.display(),
        help = sm.join("etc/mail/helpfile").display(),
    )
}

/// Sendmail lets anything from 127.0.0.1 and ::1 relay (Relay_ok: "originated locally"). Every
/// client here is on loopback, so those rules are taken out of the built sendmail.cf: the
/// server then answers 127.0.0.1 as it answers any outside client.
fn without_loopback_relay(cf: &str) -> String {
    let (mut out, mut dropped) = (String::new(), 0);
    for line in cf.lines() {
        if (line.starts_with("R127.0.0.1\t") || line.starts_with("RIPv6:"))
            && line.ends_with("originated locally")
        {
            dropped += 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert_eq!(dropped, 3, "sendmail-cf's loopback relay rules changed");
    out
}

fn start_sendmail(sm: &Path, require_tls: bool) -> (Daemon, String, PathBuf) {
    let dir = temp_dir("sendmail");
    let (cert, _key) = openssl_self_signed(&dir, SENDMAIL_NAME);
    let queue = dir.join("mqueue");
    std::fs::create_dir_all(&queue).expect("mqueue");
    run(Command::new("chmod").arg("700").arg(&queue), "");
    let files = [
        ("service.switch", "hosts files\naliases files\n"),
        ("local-host-names", "contoso.test\n"),
        ("relay-domains", ""),
        ("aliases", "postmaster: root\nuser: root\n"),
        ("access", "TLS_Clt:127.0.0.1\tENCR:128\n"),
        // Its own name on another loopback address: Sendmail puts the addresses of its name in
        // class w, and [127.0.0.1] there would let the clients relay again.
        (
            "hosts",
            "127.0.0.1\tlocalhost\n127.0.0.2\tmx.sendmail.test\n",
        ),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("sendmail file");
    }
    // Cyrus SASL reads Sendmail.conf from its compiled-in paths only (Sendmail scrubs its
    // environment, so SASL_CONF_PATH never reaches it): this directory is bind-mounted on
    // /usr/lib/sasl2 in the daemon's mount namespace.
    let sasl = dir.join("sasl");
    std::fs::create_dir_all(&sasl).expect("sasl dir");
    let sasldb = dir.join("sasldb2");
    std::fs::write(
        sasl.join("Sendmail.conf"),
        format!(
            "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {}\nmech_list: PLAIN LOGIN\n",
            sasldb.display()
        ),
    )
    .expect("Sendmail.conf");
    run(
        Command::new(sm.join("usr/sbin/saslpasswd2"))
            .args(["-p", "-c", "-u", "contoso.test", "-f"])
            .arg(&sasldb)
            .arg("user"),
        PASSWORD,
    );
    let port = free_port();
    let mc = dir.join("sendmail.mc");
    std::fs::write(&mc, sendmail_mc(sm, &dir, port, require_tls)).expect("sendmail.mc");
    let cf = run(Command::new("m4").arg(&mc), "");
    let cf_path = dir.join("sendmail.cf");
    std::fs::write(&cf_path, without_loopback_relay(&cf)).expect("sendmail.cf");

    // Its own UTS namespace with a qualified host name (Sendmail sleeps a minute on one without
    // a dot) and mount namespace: the SASL configuration, an /etc/hosts with that name and an
    // nsswitch.conf that resolves from files only (Sendmail looks its own name up at start: no
    // DNS query leaves for it). The aliases and the access map are built there, then `sh` execs
    // the daemon, so the pid stopped on drop is Sendmail's.
    let bin = sm.join("usr/libexec/sendmail/sendmail");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--uts", "--propagation", "private", "--"])
        .args(["sh", "-ec"])
        .arg(
            r#"hostname "$1"; mount --bind "$2" /usr/lib/sasl2; mount --bind "$8" /etc/hosts
mount --bind "$9" /etc/nsswitch.conf
"$3" -C "$4" -bi
if [ "$6" = 1 ]; then "$5" -C "$4" hash "$7" <"$7"; fi
exec "$3" -bD -C "$4""#,
        )
        .arg("sh")
        .arg(SENDMAIL_NAME)
        .args([sasl.as_os_str(), bin.as_os_str(), cf_path.as_os_str()])
        .arg(sm.join("usr/libexec/sendmail/makemap"))
        .arg(if require_tls { "1" } else { "0" })
        .arg(dir.join("access"))
        .arg(dir.join("hosts"))
        .arg(dir.join("nsswitch.conf"));
    let daemon = Daemon::start(&mut cmd, dir, addr, "TERM");
    (daemon, addr.to_string(), cert)
}

/// STARTTLS with the self-signed CA:TRUE certificate given as the anchor: verified; without it,
/// reported unverified with how to trust it; the known user is accepted either way.
#[test]
fn sendmail_tls() {
    let Some(sm) = sendmail_dir() else {
        return;
    };
    let (_sendmail, target, cert) = start_sendmail(&sm, false);
    let ca = cert.to_string_lossy().into_owned();

    let (code, j, err) = probe(
        &target,
        &[
            "--tls-name",
            SENDMAIL_NAME,
            "--tls-ca-file",
            &ca,
            "--starttls",
            "require",
            "--rcpt",
            "user@contoso.test",
        ],
    );
    assert_eq!(code, 0, "{j}\n{err}");
    let (banner, _, lines) = reply(&j, "banner");
    assert_eq!(banner, 220);
    assert!(
        lines.contains("mx.sendmail.test ESMTP Sendmail 8.17"),
        "{lines}"
    );
    assert_eq!(j["capabilities"]["before_tls"]["starttls"], true);
    assert_eq!(stages(&j, "tls_handshake")[0]["outcome"], "ok");
    assert_eq!(j["tls"]["verified"], true, "{}", j["tls"]);
    assert_eq!(j["tls"]["trust_store"], "ca-file");
    assert_eq!(j["tls"]["chain"][0]["self_signed"], true);
    let (code, enhanced, lines) = reply(&j, "rcpt_to");
    assert_eq!((code, enhanced), (250.into(), "2.1.5".into()));
    assert!(lines.contains("Recipient ok"), "{lines}");

    let (code, j, _) = probe(
        &target,
        &["--tls-name", SENDMAIL_NAME, "--rcpt", "user@contoso.test"],
    );
    assert_eq!(code, 0, "{j}");
    assert_eq!(stages(&j, "tls_handshake")[0]["outcome"], "ok");
    assert_eq!(j["tls"]["verified"], false);
    let why = j["tls"]["verify_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("self-signed certificate marked as a CA"),
        "{why}"
    );
    let d = &j["tls"]["verification"];
    assert_eq!(d["category"], "tls_failed", "{d}");
    assert_eq!(d["layer"], "tls", "{d}");
}

/// "550 5.1.1 <nosuchuser@contoso.test>... User unknown": no such alias or account.
#[test]
fn sendmail_unknown_user() {
    let Some(sm) = sendmail_dir() else {
        return;
    };
    let (_sendmail, target, _) = start_sendmail(&sm, false);
    let (code, j, _) = probe(
        &target,
        &[
            "--tls-name",
            SENDMAIL_NAME,
            "--rcpt",
            "nosuchuser@contoso.test",
        ],
    );
    assert_eq!(code, 1, "{j}");
    let (code, enhanced, lines) = reply(&j, "rcpt_to");
    assert_eq!((code, enhanced), (550.into(), "5.1.1".into()));
    assert!(
        lines.contains("<nosuchuser@contoso.test>... User unknown"),
        "{lines}"
    );
    let d = diagnosis(&j, "rcpt_to", "recipient_unknown", "recipient");
    assert!(cause(d).contains("does not exist"), "{d}");
}

/// "550 5.7.1 <x@fabrikam.test>... Relaying denied. Proper authentication required." (the
/// wording of a sendmail.cf with AUTH); after AUTH the same recipient is accepted.
#[test]
fn sendmail_relay_denied() {
    let Some(sm) = sendmail_dir() else {
        return;
    };
    let (_sendmail, target, _) = start_sendmail(&sm, false);
    let (code, j, _) = probe(
        &target,
        &["--tls-name", SENDMAIL_NAME, "--rcpt", "x@fabrikam.test"],
    );
    assert_eq!(code, 1, "{j}");
    let (code, enhanced, lines) = reply(&j, "rcpt_to");
    assert_eq!((code, enhanced), (550.into(), "5.7.1".into()));
    assert!(
        lines.contains("Relaying denied. Proper authentication required."),
        "{lines}"
    );
    let d = diagnosis(&j, "rcpt_to", "relay_denied", "connector");
    assert!(cause(d).contains("refused to relay"), "{d}");
}

/// AUTH PLAIN and LOGIN inside TLS against the sasldb: 235 2.0.0 and then relaying is allowed;
/// a wrong password is "535 5.7.0 authentication failed". Before STARTTLS, AUTH is not offered
/// (AuthOptions p), and no credentials leave.
#[test]
fn sendmail_auth() {
    let Some(sm) = sendmail_dir() else {
        return;
    };
    let (_sendmail, target, cert) = start_sendmail(&sm, false);
    let ca = cert.to_string_lossy().into_owned();
    let auth = |mech: &str, password: &str| {
        probe_env(
            &target,
            &[
                "--tls-name",
                SENDMAIL_NAME,
                "--tls-ca-file",
                &ca,
                "--starttls",
                "require",
                "--auth-user",
                "user@contoso.test",
                "--auth-password-env",
                "PEER_PW",
                "--auth-mech",
                mech,
                "--rcpt",
                "x@fabrikam.test",
            ],
            &[("PEER_PW", password)],
        )
    };
    for mech in ["plain", "login"] {
        let (code, j, err) = auth(mech, PASSWORD);
        assert_eq!(code, 0, "{mech}: {j}\n{err}");
        let (code, enhanced, lines) = reply(&j, "auth");
        assert_eq!((code, enhanced), (235.into(), "2.0.0".into()), "{mech}");
        assert!(lines.contains("OK Authenticated"), "{lines}");
        diagnosis(&j, "auth", "accepted", "auth");
        assert_eq!(reply(&j, "rcpt_to").0, 250, "{mech}: authenticated relay");
        assert!(!j.to_string().contains(PASSWORD), "password in the JSON");

        let (code, j, _) = auth(mech, "wrong-password");
        assert_eq!(code, 1, "{mech}: {j}");
        let (code, enhanced, lines) = reply(&j, "auth");
        assert_eq!((code, enhanced), (535.into(), "5.7.0".into()), "{mech}");
        assert!(lines.contains("authentication failed"), "{lines}");
        let d = diagnosis(&j, "auth", "auth_failed", "auth");
        assert!(cause(d).contains("rejected"), "{d}");
    }

    let (code, j, _) = probe_env(
        &target,
        &[
            "--starttls",
            "never",
            "--auth-plaintext",
            "--auth-user",
            "user@contoso.test",
            "--auth-password-env",
            "PEER_PW",
        ],
        &[("PEER_PW", PASSWORD)],
    );
    assert_eq!(code, 1, "{j}");
    let a = stages(&j, "auth");
    assert_eq!(a[0]["error"]["kind"], "auth", "{j}");
    assert!(a[0]["sent"].as_array().is_some_and(|s| s.is_empty()), "{j}");
    let d = diagnosis(&j, "auth", "auth_failed", "auth");
    assert!(cause(d).contains("before STARTTLS"), "{d}");
}

/// With TLS_Clt:127.0.0.1 ENCR:128 in the access map, MAIL before STARTTLS gets "454 4.7.0
/// encryption too weak 0 less than 128": the server requires TLS first.
#[test]
fn sendmail_requires_tls_before_mail() {
    let Some(sm) = sendmail_dir() else {
        return;
    };
    let (_sendmail, target, _) = start_sendmail(&sm, true);
    let (code, j, _) = probe(
        &target,
        &["--starttls", "never", "--rcpt", "user@contoso.test"],
    );
    assert_eq!(code, 1, "{j}");
    let (code, enhanced, lines) = reply(&j, "mail_from");
    assert_eq!((code, enhanced), (454.into(), "4.7.0".into()));
    assert!(
        lines.contains("encryption too weak 0 less than 128"),
        "{lines}"
    );
    diagnosis(&j, "mail_from", "tls_required", "tls");
}

/// The same server with TLS: the access map's requirement is met, the envelope is accepted.
#[test]
fn sendmail_tls_requirement_met() {
    let Some(sm) = sendmail_dir() else {
        return;
    };
    let (_sendmail, target, _) = start_sendmail(&sm, true);
    let (code, j, err) = probe(
        &target,
        &["--tls-name", SENDMAIL_NAME, "--rcpt", "user@contoso.test"],
    );
    assert_eq!(code, 0, "{j}\n{err}");
    assert_eq!(reply(&j, "mail_from").0, 250);
    assert_eq!(reply(&j, "rcpt_to").0, 250);
}

// ---------------------------------------------------------------------------------------------
// Courier 1.0

const COURIER_NAME: &str = "mx.courier.test";

fn courier_dir() -> Option<PathBuf> {
    binary(
        "courier/usr/lib/courier/courier/modules/esmtp/courieresmtpd",
        "tests/support/courier/install.sh",
    )?;
    can_unshare(&["--mount", "--pid", "--fork"]).then(|| peers_dir().join("courier"))
}

fn courier_ids() -> (String, String) {
    let id = |flag: &str| {
        run(Command::new("id").args([flag, "courier"]), "")
            .trim()
            .to_string()
    };
    (id("-u"), id("-g"))
}

/// Courier's configuration, as /etc/courier would hold it: contoso.test is local (locals) and
/// accepted over ESMTP (esmtpacceptmailfor); the account `user` is in a userdb, read by
/// authdaemond (authuserdb), with a crypt password for AUTH. No smtpaccess file: nobody gets
/// RELAYCLIENT. courieresmtpd's variables (what /etc/courier/esmtpd sets): STARTTLS with the
/// test's certificate, AUTH PLAIN LOGIN only inside TLS, no DNS checks of the sender domain,
/// no tarpit; `tls_required` adds ESMTP_TLS_REQUIRED=1.
fn write_courier_config(dir: &Path, cert: &Path, key: &Path, tls_required: bool) {
    let dest = peers_dir().join("courier");
    let etc = dir.join("etc");
    std::fs::create_dir_all(etc.join("esmtpacceptmailfor.dir")).expect("etc");
    let hash = run(
        Command::new("openssl").args(["passwd", "-6", "-stdin"]),
        PASSWORD,
    );
    let (uid, gid) = courier_ids();
    let home = dir.join("mail");
    let pem = format!(
        "{}{}",
        std::fs::read_to_string(key).expect("key"),
        std::fs::read_to_string(cert).expect("cert")
    );
    let mut esmtpd = format!(
        "BOFHCHECKDNS=0
BOFHNOEXPN=1
BOFHNOVRFY=1
TARPIT=0
NOADDMSGID=1
NOADDDATE=1
AUTH_REQUIRED=0
COURIERTLS={}
TLS_CERTFILE=/etc/courier/esmtpd.pem
TLS_VERIFYPEER=NONE
ESMTPAUTH=\"\"
ESMTPAUTH_TLS=\"PLAIN LOGIN\"
",
        dest.join("usr/bin/couriertls").display()
    );
    if tls_required {
        esmtpd.push_str("ESMTP_TLS_REQUIRED=1\n");
    }
    let files = [
        ("me", format!("{COURIER_NAME}\n")),
        ("locals", "contoso.test\n".to_string()),
        ("defaultdomain", "contoso.test\n".to_string()),
        (
            "esmtpacceptmailfor.dir/domains",
            "contoso.test\n".to_string(),
        ),
        (
            "authdaemonrc",
            "authmodulelist=\"authuserdb\"\ndaemons=1\nauthdaemonvar=/run/courier/authdaemon\n"
                .to_string(),
        ),
        (
            "userdb",
            format!(
                "user\tuid={uid}|gid={gid}|home={h}|mail={h}|systempw={}\n",
                hash.trim(),
                h = home.display()
            ),
        ),
        ("esmtpd.pem", pem),
        ("esmtpd", esmtpd),
    ];
    for (name, text) in files {
        std::fs::write(etc.join(name), text).expect("courier file");
    }
    let var = dir.join("var");
    for sub in ["tmp", "msgs", "msgq", "track", "filters", "allfilters"] {
        std::fs::create_dir_all(var.join(sub)).expect("courier queue");
    }
    std::fs::create_dir_all(dir.join("run")).expect("run");
    std::fs::create_dir_all(&home).expect("home");
    run(Command::new("chmod").arg("600").arg(etc.join("userdb")), "");
    run(
        Command::new("chmod").arg("600").arg(etc.join("esmtpd.pem")),
        "",
    );
    run(Command::new("chmod").arg("770").arg(var.join("tmp")), "");
    // courieresmtpd and submit run as courier: they read the key, write the queue.
    run(
        Command::new("chown").args(["-R", "courier:courier"]).args([
            var,
            home,
            etc.join("esmtpd.pem"),
        ]),
        "",
    );
}

/// tests/support/courier/run.sh in its own mount and PID namespaces: stopping `unshare` (KILL:
/// with --fork it ignores TERM) ends the namespace's PID 1 and with it authdaemond,
/// couriertcpd and every courieresmtpd.
fn start_courier(tls_required: bool) -> (Daemon, String, PathBuf) {
    let dir = temp_dir("courier");
    let (cert, key) = openssl_self_signed(&dir, COURIER_NAME);
    write_courier_config(&dir, &cert, &key, tls_required);
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/courier/run.sh");
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--pid", "--fork"])
        .args(["--kill-child", "--", "bash"])
        .arg(script)
        .arg(&dir)
        .arg(port.to_string());
    let daemon = Daemon::start(&mut cmd, dir, addr, "KILL");
    (daemon, addr.to_string(), cert)
}

/// STARTTLS (couriertls, GnuTLS) with the certificate as its own anchor: verified; without it:
/// reported unverified. AUTH is offered only inside TLS.
#[test]
fn courier_tls() {
    if courier_dir().is_none() {
        return;
    }
    let (_courier, target, cert) = start_courier(false);
    let ca = cert.to_string_lossy().into_owned();

    let (code, j, err) = probe(
        &target,
        &[
            "--tls-name",
            COURIER_NAME,
            "--tls-ca-file",
            &ca,
            "--starttls",
            "require",
            "--rcpt",
            "user@contoso.test",
        ],
    );
    assert_eq!(code, 0, "{j}\n{err}");
    let (banner, _, lines) = reply(&j, "banner");
    assert_eq!(banner, 220);
    assert!(lines.contains("220 mx.courier.test ESMTP"), "{lines}");
    assert_eq!(reply(&j, "starttls").2, r#"["220 Ok"]"#);
    assert_eq!(stages(&j, "tls_handshake")[0]["outcome"], "ok");
    assert_eq!(j["tls"]["verified"], true, "{}", j["tls"]);
    assert_eq!(j["tls"]["trust_store"], "ca-file");
    let caps = &j["capabilities"];
    assert_eq!(caps["before_tls"]["auth"], serde_json::json!([]), "{caps}");
    assert_eq!(
        caps["after_tls"]["auth"],
        serde_json::json!(["PLAIN", "LOGIN"]),
        "{caps}"
    );
    assert_eq!(reply(&j, "rcpt_to").0, 250);

    let (code, j, _) = probe(&target, &["--tls-name", COURIER_NAME]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(stages(&j, "tls_handshake")[0]["outcome"], "ok");
    assert_eq!(j["tls"]["verified"], false);
    let why = j["tls"]["verify_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("self-signed certificate marked as a CA"),
        "{why}"
    );
    assert_eq!(j["tls"]["verification"]["category"], "tls_failed");
}

/// "550 User <nosuchuser> unknown" (no enhanced code): authdaemond has no such account.
#[test]
fn courier_unknown_user() {
    if courier_dir().is_none() {
        return;
    }
    let (_courier, target, _) = start_courier(false);
    let (code, j, _) = probe(
        &target,
        &[
            "--tls-name",
            COURIER_NAME,
            "--rcpt",
            "nosuchuser@contoso.test",
        ],
    );
    assert_eq!(code, 1, "{j}");
    let (code, enhanced, lines) = reply(&j, "rcpt_to");
    assert_eq!((code, enhanced), (550.into(), Value::Null));
    assert_eq!(lines, r#"["550 User <nosuchuser> unknown"]"#);
    diagnosis(&j, "rcpt_to", "recipient_unknown", "recipient");
}

/// "513 Relaying denied." — Courier's own code (513 is not in RFC 5321) for a domain outside
/// esmtpacceptmailfor from a client without RELAYCLIENT; after AUTH it is accepted.
#[test]
fn courier_relay_denied() {
    if courier_dir().is_none() {
        return;
    }
    let (_courier, target, _) = start_courier(false);
    let (code, j, _) = probe(
        &target,
        &["--tls-name", COURIER_NAME, "--rcpt", "x@fabrikam.test"],
    );
    assert_eq!(code, 1, "{j}");
    let (code, enhanced, lines) = reply(&j, "rcpt_to");
    assert_eq!((code, enhanced), (513.into(), Value::Null));
    assert_eq!(lines, r#"["513 Relaying denied."]"#);
    let d = diagnosis(&j, "rcpt_to", "relay_denied", "connector");
    assert!(cause(d).contains("Courier refused to relay"), "{d}");
}

/// AUTH PLAIN and LOGIN inside TLS against the userdb: "235 Ok", then relaying is allowed; a
/// wrong password is "535 Authentication failed."; before STARTTLS AUTH is not offered.
#[test]
fn courier_auth() {
    if courier_dir().is_none() {
        return;
    }
    let (_courier, target, cert) = start_courier(false);
    let ca = cert.to_string_lossy().into_owned();
    let auth = |mech: &str, password: &str| {
        probe_env(
            &target,
            &[
                "--tls-name",
                COURIER_NAME,
                "--tls-ca-file",
                &ca,
                "--starttls",
                "require",
                "--auth-user",
                "user",
                "--auth-password-env",
                "PEER_PW",
                "--auth-mech",
                mech,
                "--rcpt",
                "x@fabrikam.test",
            ],
            &[("PEER_PW", password)],
        )
    };
    for mech in ["plain", "login"] {
        let (code, j, err) = auth(mech, PASSWORD);
        assert_eq!(code, 0, "{mech}: {j}\n{err}");
        let (code, _, lines) = reply(&j, "auth");
        assert_eq!(code, 235, "{mech}");
        assert_eq!(lines, r#"["235 Ok"]"#);
        diagnosis(&j, "auth", "accepted", "auth");
        assert_eq!(reply(&j, "rcpt_to").0, 250, "{mech}: authenticated relay");

        let (code, j, _) = auth(mech, "wrong-password");
        assert_eq!(code, 1, "{mech}: {j}");
        let (code, _, lines) = reply(&j, "auth");
        assert_eq!(code, 535, "{mech}");
        assert_eq!(lines, r#"["535 Authentication failed."]"#);
        let d = diagnosis(&j, "auth", "auth_failed", "auth");
        assert!(cause(d).contains("rejected"), "{d}");
    }

    let (code, j, _) = probe_env(
        &target,
        &[
            "--starttls",
            "never",
            "--auth-plaintext",
            "--auth-user",
            "user",
            "--auth-password-env",
            "PEER_PW",
        ],
        &[("PEER_PW", PASSWORD)],
    );
    assert_eq!(code, 1, "{j}");
    let a = stages(&j, "auth");
    assert!(a[0]["sent"].as_array().is_some_and(|s| s.is_empty()), "{j}");
    let d = diagnosis(&j, "auth", "auth_failed", "auth");
    assert!(cause(d).contains("before STARTTLS"), "{d}");
}

/// ESMTP_TLS_REQUIRED=1: MAIL before STARTTLS is "400 STARTTLS is required first.".
#[test]
fn courier_requires_tls_before_mail() {
    if courier_dir().is_none() {
        return;
    }
    let (_courier, target, _) = start_courier(true);
    let (code, j, _) = probe(
        &target,
        &["--starttls", "never", "--rcpt", "user@contoso.test"],
    );
    assert_eq!(code, 1, "{j}");
    let (code, _, lines) = reply(&j, "mail_from");
    assert_eq!(code, 400);
    assert_eq!(lines, r#"["400 STARTTLS is required first."]"#);
    let d = diagnosis(&j, "mail_from", "tls_required", "tls");
    assert!(cause(d).contains("STARTTLS first"), "{d}");

    // With STARTTLS the same server takes the envelope.
    let (code, j, err) = probe(
        &target,
        &["--tls-name", COURIER_NAME, "--rcpt", "user@contoso.test"],
    );
    assert_eq!(code, 0, "{j}\n{err}");
    assert_eq!(reply(&j, "rcpt_to").0, 250);
}

// ---------------------------------------------------------------------------------------------
// qpsmtpd 0.94

const QPSMTPD_NAME: &str = "mx.qpsmtpd.test";

/// qpsmtpd's configuration directory (QPSMTPD_CONFIG): its plugins decide everything. tls
/// (the test's certificate), auth/auth_flat_file (one user, PLAIN LOGIN CRAM-MD5) offered only
/// after STARTTLS (tls_before_auth), rcpt_map for contoso.test (user@ valid, anyone else its
/// default "No such user."), and rcpt_ok last (rcpthosts: contoso.test; any other domain is
/// "Relaying denied" unless the client authenticated). rcpt_map's file needs a message after
/// OK: the plugin does not strip the line's newline from a bare code.
fn start_qpsmtpd(bin: &Path) -> (Daemon, String, PathBuf) {
    let dir = temp_dir("qpsmtpd");
    let (cert, key) = openssl_self_signed(&dir, QPSMTPD_NAME);
    let (config, spool) = (dir.join("config"), dir.join("spool"));
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::create_dir_all(&spool).expect("spool dir");
    let plugins_dir = peers_dir().join("qpsmtpd/usr/share/qpsmtpd/plugins");
    let map = config.join("contoso_map");
    let files = [
        ("plugin_dirs", format!("{}\n", plugins_dir.display())),
        ("me", format!("{QPSMTPD_NAME}\n")),
        ("rcpthosts", "contoso.test\n".to_string()),
        ("spool_dir", format!("{}\n", spool.display())),
        ("tls_before_auth", "1\n".to_string()),
        ("flat_auth_pw", format!("user@contoso.test:{PASSWORD}\n")),
        ("contoso_map", "user@contoso.test OK valid recipient\n".to_string()),
        (
            "plugins",
            format!(
                "tls {c} {k} {c}\nauth/auth_flat_file\nrcpt_map domain contoso.test file {m}\nrcpt_ok\n",
                c = cert.display(),
                k = key.display(),
                m = map.display()
            ),
        ),
    ];
    for (name, text) in files {
        std::fs::write(config.join(name), text).expect("qpsmtpd config");
    }
    // It drops to the user qpsmtpd after binding: that user reads the key and owns the spool
    // (qpsmtpd insists on mode 0700).
    run(
        Command::new("chown")
            .args(["qpsmtpd:qpsmtpd"])
            .args([&spool, &key]),
        "",
    );
    run(Command::new("chmod").arg("700").arg(&spool), "");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let lib = peers_dir().join("qpsmtpd/usr/share/perl5");
    // Debian's 0.94 parses --no-rdns but never passes it on: every connection asks Net::DNS for
    // the client's PTR. In its own mount namespace an /etc/resolv.conf keeps that query on
    // loopback, over TCP (Net::DNS's usevc), so nothing listening on 127.0.0.1:53 refuses it at
    // once where UDP would wait out its timeouts: "Hi Unknown [127.0.0.1]". `sh` execs perl, so
    // the pid stopped on drop is the forkserver's. -T as its #! line asks (Perl insists); -I
    // since taint mode ignores PERL5LIB.
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\noptions usevc attempts:1\n")
        .expect("resolv.conf");
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-ec"])
        .arg(r#"mount --bind "$1" /etc/resolv.conf; shift; exec perl "$@""#)
        .arg("sh")
        .arg(&resolv)
        .arg("-Tw")
        .arg(format!("-I{}", lib.display()))
        .arg(bin)
        .args(["--listen-address", "127.0.0.1", "--port", &port.to_string()])
        .args(["--user", "qpsmtpd", "--no-rdns"])
        .env("QPSMTPD_CONFIG", &config)
        .current_dir(&dir);
    let daemon = Daemon::start(&mut cmd, dir, addr, "TERM");
    (daemon, addr.to_string(), cert)
}

fn qpsmtpd_binary() -> Option<PathBuf> {
    let bin = binary(
        "qpsmtpd/usr/bin/qpsmtpd-forkserver",
        "tests/support/qpsmtpd/install.sh",
    )?;
    can_unshare(&["--mount"]).then_some(bin)
}

/// STARTTLS (IO::Socket::SSL) with the certificate as its own anchor: verified; without it:
/// reported unverified. AUTH is offered only inside TLS.
#[test]
fn qpsmtpd_tls() {
    let Some(bin) = qpsmtpd_binary() else {
        return;
    };
    let (_qpsmtpd, target, cert) = start_qpsmtpd(&bin);
    let ca = cert.to_string_lossy().into_owned();

    let (code, j, err) = probe(
        &target,
        &[
            "--tls-name",
            QPSMTPD_NAME,
            "--tls-ca-file",
            &ca,
            "--starttls",
            "require",
            "--rcpt",
            "user@contoso.test",
        ],
    );
    assert_eq!(code, 0, "{j}\n{err}");
    let (banner, _, lines) = reply(&j, "banner");
    assert_eq!(banner, 220);
    assert!(
        lines.contains("mx.qpsmtpd.test ESMTP qpsmtpd 0.94 ready"),
        "{lines}"
    );
    assert_eq!(reply(&j, "starttls").2, r#"["220 Go ahead with TLS"]"#);
    assert_eq!(stages(&j, "tls_handshake")[0]["outcome"], "ok");
    assert_eq!(j["tls"]["verified"], true, "{}", j["tls"]);
    assert_eq!(j["tls"]["trust_store"], "ca-file");
    let caps = &j["capabilities"];
    assert_eq!(caps["before_tls"]["auth"], serde_json::json!([]), "{caps}");
    assert!(
        caps["after_tls"]["auth"].to_string().contains("PLAIN"),
        "{caps}"
    );
    let (code, _, lines) = reply(&j, "rcpt_to");
    assert_eq!(code, 250);
    assert_eq!(lines, r#"["250 <user@contoso.test>, recipient ok"]"#);

    let (code, j, _) = probe(&target, &["--tls-name", QPSMTPD_NAME]);
    assert_eq!(code, 0, "{j}");
    assert_eq!(stages(&j, "tls_handshake")[0]["outcome"], "ok");
    assert_eq!(j["tls"]["verified"], false);
    let why = j["tls"]["verify_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("self-signed certificate marked as a CA"),
        "{why}"
    );
    assert_eq!(j["tls"]["verification"]["category"], "tls_failed");
}

/// rcpt_map's default answer for an address not in the map: "550 No such user.".
#[test]
fn qpsmtpd_unknown_user() {
    let Some(bin) = qpsmtpd_binary() else {
        return;
    };
    let (_qpsmtpd, target, _) = start_qpsmtpd(&bin);
    let (code, j, _) = probe(
        &target,
        &[
            "--tls-name",
            QPSMTPD_NAME,
            "--rcpt",
            "nosuchuser@contoso.test",
        ],
    );
    assert_eq!(code, 1, "{j}");
    let (code, _, lines) = reply(&j, "rcpt_to");
    assert_eq!(code, 550);
    assert_eq!(lines, r#"["550 No such user."]"#);
    diagnosis(&j, "rcpt_to", "recipient_unknown", "recipient");
}

/// rcpt_ok (Qpsmtpd::DSN->relaying_denied): "550 Relaying denied (#5.7.1)", the enhanced code
/// in qmail's (#x.y.z) style at the end of the text.
#[test]
fn qpsmtpd_relay_denied() {
    let Some(bin) = qpsmtpd_binary() else {
        return;
    };
    let (_qpsmtpd, target, _) = start_qpsmtpd(&bin);
    let (code, j, _) = probe(
        &target,
        &["--tls-name", QPSMTPD_NAME, "--rcpt", "x@fabrikam.test"],
    );
    assert_eq!(code, 1, "{j}");
    let (code, _, lines) = reply(&j, "rcpt_to");
    assert_eq!(code, 550);
    assert_eq!(lines, r#"["550 Relaying denied (#5.7.1)"]"#);
    let d = diagnosis(&j, "rcpt_to", "relay_denied", "connector");
    assert!(cause(d).contains("refused to relay"), "{d}");
}

/// auth_flat_file inside TLS: "235 PLAIN authentication successful for user@contoso.test -
/// auth_flat_file", then relaying is allowed; a wrong password is "535 ... authentication failed
/// for user@contoso.test - auth_flat_file - wrong password". Before STARTTLS AUTH is not
/// offered (tls_before_auth), and no credentials leave.
#[test]
fn qpsmtpd_auth() {
    let Some(bin) = qpsmtpd_binary() else {
        return;
    };
    let (_qpsmtpd, target, cert) = start_qpsmtpd(&bin);
    let ca = cert.to_string_lossy().into_owned();
    let auth = |mech: &str, password: &str| {
        probe_env(
            &target,
            &[
                "--tls-name",
                QPSMTPD_NAME,
                "--tls-ca-file",
                &ca,
                "--starttls",
                "require",
                "--auth-user",
                "user@contoso.test",
                "--auth-password-env",
                "PEER_PW",
                "--auth-mech",
                mech,
                "--rcpt",
                "x@fabrikam.test",
            ],
            &[("PEER_PW", password)],
        )
    };
    for mech in ["plain", "login"] {
        let upper = mech.to_uppercase();
        let (code, j, err) = auth(mech, PASSWORD);
        assert_eq!(code, 0, "{mech}: {j}\n{err}");
        let (code, _, lines) = reply(&j, "auth");
        assert_eq!(code, 235, "{mech}");
        assert_eq!(
            lines,
            format!(
                r#"["235 {upper} authentication successful for user@contoso.test - auth_flat_file"]"#
            )
        );
        diagnosis(&j, "auth", "accepted", "auth");
        assert_eq!(reply(&j, "rcpt_to").0, 250, "{mech}: authenticated relay");

        let (code, j, _) = auth(mech, "wrong-password");
        assert_eq!(code, 1, "{mech}: {j}");
        let (code, _, lines) = reply(&j, "auth");
        assert_eq!(code, 535, "{mech}");
        assert_eq!(
            lines,
            format!(
                r#"["535 {upper} authentication failed for user@contoso.test - auth_flat_file - wrong password"]"#
            )
        );
        let d = diagnosis(&j, "auth", "auth_failed", "auth");
        assert!(cause(d).contains("rejected"), "{d}");
    }

    let (code, j, _) = probe_env(
        &target,
        &[
            "--starttls",
            "never",
            "--auth-plaintext",
            "--auth-user",
            "user@contoso.test",
            "--auth-password-env",
            "PEER_PW",
        ],
        &[("PEER_PW", PASSWORD)],
    );
    assert_eq!(code, 1, "{j}");
    let a = stages(&j, "auth");
    assert!(a[0]["sent"].as_array().is_some_and(|s| s.is_empty()), "{j}");
    let d = diagnosis(&j, "auth", "auth_failed", "auth");
    assert!(cause(d).contains("before STARTTLS"), "{d}");
}
