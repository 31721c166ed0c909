//! The Postfix lab (tests/support/postfix/lab.sh) from Rust: started on free loopback ports in
//! a fresh directory, stopped by its own pid when the guard drops.

use super::peers::free_port;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PostfixLab {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/postfix/lab.sh")
}

/// The name Postfix's certificate is issued for (`TLS_NAME` in lab.sh).
const TLS_NAME: &str = "mx.contoso.test";

/// Postfix's certificates from the product's lab CA (one PKI for the product and the tests):
/// `ca.pem`, `server.pem` (leaf + CA) and `server.key` in a directory beside the lab's (which
/// lab.sh wants empty), for lab.sh to copy.
fn write_certs(dir: &Path) -> (PathBuf, String) {
    let pki = mxtrace_lab::pki::LabPki::new().expect("lab CA");
    let (chain, key) = pki
        .server_identity_pem(&[TLS_NAME], mxtrace_lab::pki::CertValidity::Valid)
        .expect("Postfix certificate");
    let certs = dir.with_extension("certs");
    std::fs::create_dir_all(&certs).expect("certificate dir");
    for (name, text) in [
        ("ca.pem", pki.ca_pem()),
        ("server.pem", chain),
        ("server.key", key),
    ] {
        std::fs::write(certs.join(name), text).expect("write certificate");
    }
    (certs, pki.ca_pem())
}

impl PostfixLab {
    /// Starts the lab, or returns None (with the reason printed) when Postfix is not installed
    /// and this is not CI. In CI (CI=true) a missing Postfix is a failure, never a skip.
    pub fn start() -> Option<PostfixLab> {
        PostfixLab::start_with(false, None)
    }

    /// Also a submission listener (`PORT_SUBMISSION`: TLS required, AUTH inside TLS only)
    /// with Dovecot as its SASL server (`SASL_USER`, `SASL_PASSWORD` in lab.env).
    pub fn start_with_submission() -> Option<PostfixLab> {
        PostfixLab::start_with(true, None)
    }

    /// The submission listener offering XOAUTH2 and OAUTHBEARER too, validated by the OAuth
    /// server in `oauth_dir` (tests/support/oauth/README.md).
    pub fn start_with_oauth(oauth_dir: &Path) -> Option<PostfixLab> {
        PostfixLab::start_opts(true, Some(oauth_dir), false)
    }

    /// Also Dovecot serving the lab's mailboxes over IMAP (STARTTLS, `PORT_IMAP`) and IMAPS
    /// (`PORT_IMAPS`), Postfix delivering to it by LMTP with Sieve filing junk
    /// (tests/support/postfix/README.md, "Mailboxes over IMAP").
    pub fn start_with_imap() -> Option<PostfixLab> {
        PostfixLab::start_opts(false, None, true)
    }

    /// IMAP and IMAPS taking XOAUTH2 and OAUTHBEARER too, validated by the OAuth server in
    /// `oauth_dir`: a user's token as `IMAP_USER`, the client's own as `IMAP_CLIENT_USER`
    /// (opening `IMAP_USER`'s mailbox).
    pub fn start_with_imap_oauth(oauth_dir: &Path) -> Option<PostfixLab> {
        PostfixLab::start_opts(false, Some(oauth_dir), true)
    }

    fn start_with(submission: bool, oauth: Option<&Path>) -> Option<PostfixLab> {
        PostfixLab::start_opts(submission, oauth, false)
    }

    fn start_opts(submission: bool, oauth: Option<&Path>, imap: bool) -> Option<PostfixLab> {
        let missing = if !Path::new("/usr/sbin/postfix").exists() {
            Some("Postfix is not installed (run tests/support/postfix/install.sh as root)")
        } else if (submission || imap) && !Path::new("/usr/sbin/dovecot").exists() {
            Some("Dovecot is not installed (run tests/support/dovecot/install.sh as root)")
        } else {
            None
        };
        if let Some(why) = missing {
            skip(why);
            return None;
        }
        let dir = fresh_dir("postfix");
        std::fs::create_dir_all(&dir).expect("lab dir");
        let ports = [free_port(), free_port(), free_port()].map(|p| p.to_string());
        let (certs, ca_pem) = write_certs(&dir);
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .arg("start")
            .arg(&dir)
            .arg("127.0.0.1")
            .args(&ports)
            .env("MXTRACE_LAB_CERTS", &certs);
        if submission {
            cmd.env("MXTRACE_LAB_SUBMISSION", free_port().to_string());
        }
        if let Some(dir) = oauth {
            cmd.env("MXTRACE_LAB_OAUTH", dir);
        }
        if imap {
            cmd.env("MXTRACE_LAB_IMAP", free_port().to_string())
                .env("MXTRACE_LAB_IMAPS", free_port().to_string());
        }
        let out = cmd.output().expect("run lab.sh");
        // lab.sh copied them into its directory.
        let _ = std::fs::remove_dir_all(&certs);
        // Constructed before checking, so a half-started lab is still stopped on drop.
        let mut lab = PostfixLab {
            dir,
            env: HashMap::new(),
        };
        assert!(
            out.status.success(),
            "lab.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(lab.dir.join("ca.pem")).ok(),
            Some(ca_pem),
            "Postfix serves a certificate of the lab CA"
        );
        let env = std::fs::read_to_string(lab.dir.join("lab.env")).expect("lab.env");
        lab.env = parse_env(&env);
        Some(lab)
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("lab.env has no {key}"))
    }

    pub fn target(&self, port_key: &str) -> String {
        format!("{}:{}", self.get("ADDR"), self.get(port_key))
    }

    /// Postfix's queue (`postqueue -j`: one JSON object a line), empty when nothing waits.
    pub fn queue(&self) -> String {
        let q = Command::new("postqueue")
            .args(["-c", &self.dir.join("etc").display().to_string(), "-j"])
            .output()
            .expect("run postqueue");
        String::from_utf8_lossy(&q.stdout).into_owned()
    }

    /// Postfix's log (`maillog`) so far.
    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Makes exactly these addresses the lab's recipients (`lab.sh recipients`: the vmailbox
    /// table rewritten, `postfix reload`); the next session sees the new table.
    pub fn set_recipients(&self, addresses: &[&str]) {
        let out = Command::new("bash")
            .arg(script())
            .arg("recipients")
            .arg(&self.dir)
            .args(addresses)
            .output()
            .expect("run lab.sh recipients");
        assert!(
            out.status.success(),
            "lab.sh recipients failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A real peer that is not installed: "SKIPPED" on stderr, or a failure under CI=true.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}: CI must run the real-peer tests");
    }
    eprintln!("SKIPPED real-peer test: {why}");
}

/// A directory name in the temp dir, unique to this process and moment (not created).
pub fn fresh_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("mxtrace-{what}-{}-{nanos}", std::process::id()))
}

/// A shell-sourceable `KEY=value` file (lab.env, oauth.env) as a map.
pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.trim_matches('"').trim_matches('\'').to_string(),
            )
        })
        .collect()
}

impl Drop for PostfixLab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
