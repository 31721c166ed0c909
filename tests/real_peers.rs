//! Real MTAs besides Postfix as peers, on loopback: Exim 4 and OpenSMTPD 6.8 from Debian 12's
//! packages, unpacked by tests/support/{exim,opensmtpd}/install.sh. Each test writes the
//! daemon's own configuration into a temp directory, starts it in the foreground and stops it
//! by its pid on drop. Outside CI a missing daemon skips the test (it says so); with CI=true it
//! fails. Each check asserts the category, the layer and the key words of the diagnosis.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::bin::stages;
use support::peers::{
    binary, cause, diagnosis, free_port, openssl_self_signed, probe, probe_env, temp_dir, Daemon,
};

const EXIM_NAME: &str = "mx.exim.test";

/// Exim's own wording (its default configuration's ACL and router results): the relay ACL of
/// src/configure.default ("relay not permitted") and `verify = recipient` ("Unrouteable
/// address"). No authenticator is defined, so AUTH is never offered.
fn exim_config(dir: &Path, cert: &Path, key: &Path) -> String {
    let d = dir.display();
    format!(
        "primary_hostname = {EXIM_NAME}
spool_directory = {d}/spool
log_file_path = {d}/log/%slog
pid_file_path = {d}/exim.pid
local_interfaces = 127.0.0.1
domainlist local_domains = contoso.test
tls_advertise_hosts = *
tls_certificate = {cert}
tls_privatekey = {key}
host_lookup =
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  require message = relay not permitted
          domains = +local_domains
  require verify = recipient
  accept
begin routers
known_users:
  driver = accept
  domains = +local_domains
  local_parts = lsearch;{d}/users
  transport = devnull
begin transports
devnull:
  driver = appendfile
  file = /dev/null
  user = Debian-exim
",
        cert = cert.display(),
        key = key.display(),
    )
}

fn start_exim(bin: &Path) -> (Daemon, String, PathBuf) {
    let dir = temp_dir("exim");
    let (cert, key) = openssl_self_signed(&dir, EXIM_NAME);
    for sub in ["spool", "log"] {
        std::fs::create_dir_all(dir.join(sub)).expect("exim dirs");
    }
    std::fs::write(dir.join("users"), "user\n").expect("users");
    let conf = dir.join("exim.conf");
    std::fs::write(&conf, exim_config(&dir, &cert, &key)).expect("exim.conf");
    // Exim's daemon children run as Debian-exim: they read the key and write spool and log.
    // The configuration stays root's (Exim refuses one owned by anyone else).
    let st = Command::new("chown")
        .args(["-R", "Debian-exim"])
        .args([dir.join("spool"), dir.join("log"), cert.clone(), key])
        .status()
        .expect("chown");
    assert!(st.success());
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let daemon = Daemon::start(
        Command::new(bin)
            .args(["-bdf", "-oX", &port.to_string(), "-C"])
            .arg(&conf),
        dir,
        addr,
        "TERM",
    );
    (daemon, addr.to_string(), cert)
}

#[test]
fn exim_real_peer() {
    let Some(bin) = binary("exim/usr/sbin/exim4", "tests/support/exim/install.sh") else {
        return;
    };
    let (_exim, target, cert) = start_exim(&bin);
    let ca = cert.to_string_lossy().into_owned();
    let tls = ["--tls-name", EXIM_NAME, "--tls-ca-file", ca.as_str()];

    // STARTTLS with its self-signed CA:TRUE certificate given as the anchor: verified, as
    // openssl s_client does; a known user is accepted.
    let (code, j, err) = probe(
        &target,
        &[&tls[..], &["--rcpt", "user@contoso.test"]].concat(),
    );
    assert_eq!(code, 0, "{j}\n{err}");
    assert_eq!(j["tls"]["verified"], true, "{}", j["tls"]);
    assert_eq!(j["tls"]["trust_store"], "ca-file");
    assert_eq!(j["tls"]["chain"][0]["self_signed"], true);

    // Without the anchor: not verified, and the words say how to trust it.
    let (_, j, _) = probe(&target, &["--tls-name", EXIM_NAME]);
    let why = j["tls"]["verify_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("self-signed certificate marked as a CA"),
        "{why}"
    );
    assert!(why.contains("--tls-ca-file"), "{why}");
    // The handshake completed (report mode): the finding is tls.verification, the stage is ok.
    assert_eq!(stages(&j, "tls_handshake")[0]["outcome"], "ok");
    let d = &j["tls"]["verification"];
    assert_eq!(d["category"], "tls_failed", "{d}");
    assert_eq!(d["layer"], "tls", "{d}");
    assert!(cause(d).contains("self-signed"), "{d}");

    // --tls-implicit against this plaintext port: the server's greeting is quoted, no STARTTLS
    // is blamed.
    let (code, j, _) = probe(&target, &["--tls-name", EXIM_NAME, "--tls-implicit"]);
    assert_eq!(code, 1);
    let msg = stages(&j, "tls_handshake")[0]["error"]["message"].to_string();
    assert!(
        msg.contains(r#"answered in plaintext: it sent \"220 mx.exim.test ESMTP Exim 4"#),
        "{msg}"
    );
    let d = diagnosis(&j, "tls_handshake", "tls_failed", "tls");
    assert!(cause(d).contains("No STARTTLS was involved"), "{d}");

    // Unknown user: "550 Unrouteable address".
    let (code, j, _) = probe(
        &target,
        &[&tls[..], &["--rcpt", "nobody@contoso.test"]].concat(),
    );
    assert_eq!(code, 1);
    let rcpt = stages(&j, "rcpt_to");
    assert_eq!(rcpt[0]["reply"]["code"], 550);
    assert!(rcpt[0]["reply"]["lines"]
        .to_string()
        .contains("Unrouteable address"));
    let d = diagnosis(&j, "rcpt_to", "recipient_unknown", "recipient");
    assert!(cause(d).contains("recipient"), "{d}");

    // Relay denial: "550 relay not permitted".
    let (code, j, _) = probe(
        &target,
        &[&tls[..], &["--rcpt", "x@fabrikam.test"]].concat(),
    );
    assert_eq!(code, 1);
    let d = diagnosis(&j, "rcpt_to", "relay_denied", "connector");
    assert!(cause(d).contains("refused to relay"), "{d}");

    // AUTH is not offered (no authenticator): an auth finding, not a protocol error.
    let (code, j, _) = probe_env(
        &target,
        &[
            &tls[..],
            &["--starttls", "require", "--auth-user", "user@contoso.test"],
            &["--auth-password-env", "MXTRACE_PEER_PW"],
        ]
        .concat(),
        &[("MXTRACE_PEER_PW", "not-sent")],
    );
    assert_eq!(code, 1, "{j}");
    let auth = stages(&j, "auth");
    assert_eq!(auth[0]["error"]["kind"], "auth", "{j}");
    assert!(auth[0]["error"]["message"]
        .to_string()
        .contains("does not offer AUTH (on this port)"));
    let d = diagnosis(&j, "auth", "auth_failed", "auth");
    assert!(cause(d).contains("does not offer AUTH"), "{d}");
}

const OPENSMTPD_NAME: &str = "mx.opensmtpd.test";

/// OpenSMTPD's queue (/var/spool/smtpd) and control socket (/var/run/smtpd.sock) are compiled
/// in, so a second daemon on the machine would find them taken ("already running"). Each one
/// runs in its own mount namespace (`unshare -m`, private propagation) with the test
/// directory's own spool and run directories bind-mounted over /var/spool and /var/run; the
/// namespace, and its mounts, go away with the daemon. `sh` execs smtpd, so the pid stopped on
/// drop is smtpd's.
fn opensmtpd_command(bin: &Path, dir: &Path, conf: &Path) -> Command {
    let spool = dir.join("var-spool");
    let run = dir.join("var-run");
    for d in [&spool, &run] {
        std::fs::create_dir_all(d).expect("opensmtpd spool and run dirs");
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            r#"mount --bind "$1" /var/spool && mount --bind "$2" /var/run && exec "$3" -d -f "$4""#,
        )
        .arg("sh")
        .args([
            spool.as_os_str(),
            run.as_os_str(),
            bin.as_os_str(),
            conf.as_os_str(),
        ]);
    cmd
}

/// True when this process may make a mount namespace (root); otherwise says why, and fails
/// under CI=true like a missing daemon.
fn can_unshare_mounts() -> bool {
    let ok = Command::new("unshare")
        .args(["--mount", "--", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let why = "`unshare --mount` is not permitted here (needs root)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}: CI must run the OpenSMTPD tests");
        }
        eprintln!("SKIPPED real-peer test: {why}");
    }
    ok
}

fn start_opensmtpd(bin: &Path) -> (Daemon, String) {
    let dir = temp_dir("opensmtpd");
    let (cert, key) = openssl_self_signed(&dir, OPENSMTPD_NAME);
    std::fs::write(dir.join("vusers"), "user@contoso.test nobody\n").expect("vusers");
    let port = free_port();
    let conf = format!(
        "pki {n} cert \"{c}\"
pki {n} key \"{k}\"
table vusers file:{d}/vusers
listen on 127.0.0.1 port {port} tls pki {n} hostname {n}
action \"deliver\" mbox virtual <vusers>
match from any for domain \"contoso.test\" action \"deliver\"
",
        n = OPENSMTPD_NAME,
        c = cert.display(),
        k = key.display(),
        d = dir.display(),
    );
    let path = dir.join("smtpd.conf");
    std::fs::write(&path, conf).expect("smtpd.conf");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let daemon = Daemon::start(&mut opensmtpd_command(bin, &dir, &path), dir, addr, "TERM");
    (daemon, addr.to_string())
}

fn opensmtpd_binary() -> Option<PathBuf> {
    let bin = binary(
        "opensmtpd/usr/sbin/smtpd",
        "tests/support/opensmtpd/install.sh",
    )?;
    can_unshare_mounts().then_some(bin)
}

/// Two daemons at once, each with its own queue and control socket: both greet.
#[test]
fn opensmtpd_instances_run_side_by_side() {
    let Some(bin) = opensmtpd_binary() else {
        return;
    };
    let (_a, target_a) = start_opensmtpd(&bin);
    let (_b, target_b) = start_opensmtpd(&bin);
    for target in [&target_a, &target_b] {
        let (_, j, err) = probe(target, &["--starttls", "never"]);
        let banner = stages(&j, "banner");
        assert_eq!(banner[0]["reply"]["code"], 220, "{target}: {j}\n{err}");
        assert!(banner[0]["reply"]["lines"]
            .to_string()
            .contains(OPENSMTPD_NAME));
    }
}

#[test]
fn opensmtpd_real_peer() {
    let Some(bin) = opensmtpd_binary() else {
        return;
    };
    let (_smtpd, target) = start_opensmtpd(&bin);

    // STARTTLS offered, then the server aborts its own handshake (6.8 under OpenSSL 3).
    let (code, j, err) = probe(
        &target,
        &["--tls-name", OPENSMTPD_NAME, "--starttls", "require"],
    );
    assert_eq!(code, 1, "{j}\n{err}");
    assert_eq!(j["capabilities"]["before_tls"]["starttls"], true);
    let hs = stages(&j, "tls_handshake");
    let msg = hs[0]["error"]["message"].to_string();
    assert!(
        msg.contains("the server aborted the TLS handshake (alert "),
        "{msg}"
    );
    let d = diagnosis(&j, "tls_handshake", "tls_failed", "tls");
    assert!(
        cause(d).contains("TLS configuration or library is broken"),
        "{d}"
    );
    assert_eq!(j["tls"]["verify_error"], "no certificate received");
    assert_eq!(j["tls"]["verified"], false);

    // Unknown virtual user: "524 5.2.4 Mailing list expansion problem", OpenSMTPD's wording
    // (a row of the reply tables): the recipient is unknown there.
    let (code, j, _) = probe(
        &target,
        &["--starttls", "never", "--rcpt", "nobody@contoso.test"],
    );
    assert_eq!(code, 1);
    let rcpt = stages(&j, "rcpt_to");
    assert_eq!(rcpt[0]["reply"]["code"], 524);
    assert_eq!(rcpt[0]["reply"]["enhanced"], "5.2.4");
    let d = &rcpt[0]["diagnosis"];
    assert_eq!(d["category"], "recipient_unknown", "{d}");
    assert_eq!(d["layer"], "recipient", "{d}");
    assert!(cause(d).contains("OpenSMTPD"), "{d}");
    assert!(!cause(d).contains("RFC 5321"), "{d}");
}

/// Postfix's submission listener with Dovecot SASL (tests/support/postfix/lab.sh with
/// MXTRACE_LAB_SUBMISSION, tests/support/dovecot/sasl.sh): AUTH end to end.
#[test]
fn postfix_submission_with_dovecot_sasl() {
    let Some(lab) = support::postfix::PostfixLab::start_with_submission() else {
        return;
    };
    let target = lab.target("PORT_SUBMISSION");
    let ca = lab.get("CA_FILE").to_string();
    let user = lab.get("SASL_USER").to_string();
    let good = lab.get("SASL_PASSWORD").to_string();
    let auth = |mech: &str, password: &str, extra: &[&str]| {
        let mut args = vec![
            "--tls-name",
            "mx.contoso.test",
            "--tls-ca-file",
            ca.as_str(),
        ];
        args.extend([
            "--auth-user",
            user.as_str(),
            "--auth-password-env",
            "PEER_PW",
        ]);
        args.extend(["--auth-mech", mech, "--rcpt", "user@contoso.test"]);
        args.extend_from_slice(extra);
        probe_env(&target, &args, &[("PEER_PW", password)])
    };

    // PLAIN and LOGIN succeed inside TLS: 235 2.7.0, then the envelope is accepted.
    for mech in ["plain", "login"] {
        let (code, j, err) = auth(mech, &good, &["--starttls", "require"]);
        assert_eq!(code, 0, "{mech}: {j}\n{err}");
        let a = stages(&j, "auth");
        assert_eq!(a[0]["reply"]["code"], 235, "{mech}: {j}");
        assert_eq!(a[0]["reply"]["enhanced"], "2.7.0");
        assert_eq!(j["tls"]["verified"], true);
        assert!(
            !j.to_string().contains(good.as_str()),
            "password in the JSON"
        );
    }

    // A wrong password: 535 5.7.8, an auth failure about the credentials.
    let (code, j, _) = auth("plain", "wrong-password", &["--starttls", "require"]);
    assert_eq!(code, 1);
    let a = stages(&j, "auth");
    assert_eq!(a[0]["reply"]["code"], 535);
    assert_eq!(a[0]["reply"]["enhanced"], "5.7.8");
    let d = diagnosis(&j, "auth", "auth_failed", "auth");
    assert!(cause(d).contains("rejected the credentials"), "{d}");

    // Before STARTTLS, AUTH is not offered: the finding says so, and no credentials leave.
    let (code, j, _) = probe_env(
        &target,
        &[
            "--starttls",
            "never",
            "--auth-plaintext",
            "--auth-user",
            user.as_str(),
            "--auth-password-env",
            "PEER_PW",
        ],
        &[("PEER_PW", good.as_str())],
    );
    assert_eq!(code, 1);
    let a = stages(&j, "auth");
    assert_eq!(a[0]["error"]["kind"], "auth", "{j}");
    assert!(a[0]["sent"].as_array().is_some_and(|s| s.is_empty()), "{j}");
    let d = diagnosis(&j, "auth", "auth_failed", "auth");
    assert!(cause(d).contains("before STARTTLS"), "{d}");

    // Sent anyway (--auth-mech): Postfix refuses AUTH before STARTTLS with 530 5.7.0.
    let (code, j, _) = auth("plain", &good, &["--starttls", "never", "--auth-plaintext"]);
    assert_eq!(code, 1);
    let a = stages(&j, "auth");
    assert_eq!(a[0]["reply"]["code"], 530, "{j}");
    let d = diagnosis(&j, "auth", "tls_required", "tls");
    assert!(cause(d).contains("STARTTLS first"), "{d}");
}
