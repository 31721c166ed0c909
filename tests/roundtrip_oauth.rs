//! `mxtrace roundtrip` logging in to the mailbox with an OAuth 2.0 token, against the real
//! lab: Postfix delivering into Dovecot, whose IMAP validates tokens by introspection at a real
//! Glewlwyd authorization server over HTTPS (tests/support/oauth/README.md,
//! tests/support/postfix/README.md). A user's token from the environment (XOAUTH2, and
//! OAUTHBEARER when asked), the client's own token by the client-credentials grant (the
//! lab's stand-in for an Exchange Online app with IMAP.AccessAsApp and FullAccess on one
//! mailbox), an expired token (the error challenge decoded and explained, exit 2, nothing
//! sent), a token endpoint that refuses the client (exit 2, nothing sent); no token or secret in
//! any output. One test owns the servers; they are stopped by their pids when it ends.

mod support;

use std::path::PathBuf;
use support::bin::{mxtrace, redact_ports, Run};
use support::oauth::OAuthServer;
use support::postfix::PostfixLab;

const SECRET: &str = "lab-client-secret-1";
/// Every Glewlwyd access token starts so (`{"typ":"at+jwt"`).
const JWT_START: &str = "eyJ0eXAi";
const FROM: &str = "probe@fabrikam.test";

struct Lab<'a> {
    lab: &'a PostfixLab,
    /// The lab CA and the OAuth server's CA: IMAP, SMTP and the token endpoint verify.
    both_ca: PathBuf,
    dir: PathBuf,
    /// Everything mxtrace printed or wrote, for the check that no secret is in it.
    outputs: Vec<String>,
}

impl Lab<'_> {
    fn mailbox(&self, user: &str) -> String {
        format!(
            "imaps://{user}@{}:{}",
            self.lab.get("ADDR"),
            self.lab.get("PORT_IMAPS")
        )
    }

    /// `roundtrip` through the lab's port 25 (no AUTH) into `user`'s login, with `extra`.
    fn roundtrip(&mut self, user: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let via = self.lab.target("PORT_SMTP");
        let ca = self.both_ca.to_string_lossy().into_owned();
        let mailbox = self.mailbox(user);
        let html = self.dir.join(format!("rt-{}.html", self.outputs.len()));
        let html_arg = html.to_string_lossy().into_owned();
        let mut args = vec![
            "roundtrip",
            "--via",
            &via,
            "--from",
            FROM,
            "--rcpt",
            self.lab.get("VALID_RCPT"),
            "--mailbox",
            &mailbox,
            "--mailbox-ca-file",
            &ca,
            "--mailbox-tls-name",
            "mx.contoso.test",
            "--tls-ca-file",
            &ca,
            "--tls-name",
            "mx.contoso.test",
            "--within",
            "20s",
            "--html",
            &html_arg,
        ];
        args.extend_from_slice(extra);
        let r = mxtrace(&args, env);
        self.outputs.push(r.stdout.clone());
        self.outputs.push(r.stderr.clone());
        self.outputs
            .push(std::fs::read_to_string(&html).unwrap_or_default());
        r
    }

    /// Postfix never saw the sender since `mark` bytes of its log, and queued nothing.
    fn nothing_sent(&self, mark: usize) {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let log = self.lab.maillog();
        let new = log.get(mark..).unwrap_or("");
        assert!(!new.contains(FROM), "{new}");
        let q = self.lab.queue();
        assert!(q.is_empty(), "{q}");
    }

    fn log_len(&self) -> usize {
        self.lab.maillog().len()
    }
}

/// The stages of the probe that sent the message.
fn stage_names(j: &serde_json::Value) -> Vec<String> {
    j["sent"]["report"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_mailbox_logged_in_to_with_oauth_tokens() {
    let Some(oauth) = OAuthServer::start(true) else {
        return;
    };
    let Some(lab) = PostfixLab::start_with_imap_oauth(&oauth.dir) else {
        return;
    };
    let mut t = Lab {
        lab: &lab,
        both_ca: oauth.ca_with(lab.get("CA_FILE")),
        dir: oauth.dir.clone(),
        outputs: Vec::new(),
    };
    user_tokens(&mut t, &oauth);
    client_credentials(&mut t, &oauth);
    refused(&mut t, &oauth);
    for (i, out) in t.outputs.iter().enumerate() {
        assert!(!out.contains(JWT_START), "output {i} has a token:\n{out}");
        assert!(
            !out.contains(SECRET),
            "output {i} has the client secret:\n{out}"
        );
    }
}

/// A user's token from the environment: XOAUTH2 by default, OAUTHBEARER when asked; the
/// message found and deleted as with a password.
fn user_tokens(t: &mut Lab<'_>, oauth: &OAuthServer) {
    let token = oauth.token("user");
    assert!(token.starts_with(JWT_START));
    let env = [("MBOX_TOKEN", token.as_str())];
    for (mech, login) in [
        (None, "AUTHENTICATE XOAUTH2"),
        (Some("oauthbearer"), "AUTHENTICATE OAUTHBEARER"),
    ] {
        let mut extra = vec!["--mailbox-oauth-token-env", "MBOX_TOKEN", "--json"];
        if let Some(m) = mech {
            extra.extend(["--mailbox-auth-mech", m]);
        }
        let r = t.roundtrip("user@contoso.test", &extra, &env);
        assert_eq!(r.code, 0, "{mech:?}: {}{}", r.stdout, r.stderr);
        let j = r.json();
        assert_eq!(j["delivery"]["status"], "delivered");
        assert_eq!(j["delivery"]["folder"], "inbox");
        assert_eq!(j["mailbox"]["login"], login);
        assert_eq!(j["cleanup"][0]["action"], "deleted");
        let sent: Vec<&str> = j["imap"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["command"].as_str())
            .filter(|c| c.starts_with("AUTHENTICATE"))
            .collect();
        assert_eq!(sent, [format!("{login} <redacted>")]);
        // The sending session authenticated nothing: port 25, no --auth-user.
        assert!(!stage_names(&j).contains(&"auth".to_string()));
    }
    // The human report says how the mailbox was logged in to.
    let r = t.roundtrip(
        "user@contoso.test",
        &["--mailbox-oauth-token-env", "MBOX_TOKEN"],
        &env,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("AUTHENTICATE XOAUTH2"), "{}", r.stdout);
}

/// `--mailbox-oauth` with the client-credentials grant at Glewlwyd's token endpoint (HTTPS,
/// verified against --tls-ca-file): the application's own token, as the app's service
/// principal logs in to the one mailbox it may open. No --auth-user: the grant is the
/// mailbox's only and the message goes without AUTH.
fn client_credentials(t: &mut Lab<'_>, oauth: &OAuthServer) {
    let url = oauth.get("OAUTH_TOKEN_URL").to_string();
    assert!(url.starts_with("https://"));
    let client = t.lab.get("IMAP_CLIENT_USER").to_string();
    assert_eq!(client, "mxtrace-test");
    let grant = [
        "--mailbox-oauth",
        "--oauth-token-url",
        &url,
        "--oauth-client-id",
        "mxtrace-test",
        "--oauth-client-secret-env",
        "CLIENT_SECRET",
        "--oauth-scope",
        "mail-client",
        "--json",
    ];
    let r = t.roundtrip(&client, &grant, &[("CLIENT_SECRET", SECRET)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["delivery"]["status"], "delivered");
    assert_eq!(j["mailbox"]["url"], t.mailbox("mxtrace-test"));
    assert_eq!(j["mailbox"]["login"], "AUTHENTICATE XOAUTH2");
    assert!(!stage_names(&j).contains(&"auth".to_string()));

    // The same settings without a mailbox to use them, and without --auth-user: refused.
    let r = t.roundtrip(
        "user@contoso.test",
        &[
            "--mailbox-password-env",
            "MBOX_PW",
            "--oauth-token-url",
            &url,
            "--oauth-client-id",
            "mxtrace-test",
        ],
        &[("MBOX_PW", t.lab.get("IMAP_PASSWORD"))],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "mxtrace: --oauth-token-url is for SMTP AUTH (with --auth-user) or a mailbox's login \
         (--mailbox-oauth, --ndr-mailbox-oauth): give one of them"
    );
}

/// An expired token (XOAUTH2 and OAUTHBEARER) and a client the token endpoint refuses: exit
/// 2 before anything is sent, the error challenge decoded and explained.
fn refused(t: &mut Lab<'_>, oauth: &OAuthServer) {
    let expired = oauth.token("user");
    oauth.run(&["expire", &expired]);
    let env = [("MBOX_TOKEN", expired.as_str())];
    let mark = t.log_len();
    let r = t.roundtrip(
        "user@contoso.test",
        &["--mailbox-oauth-token-env", "MBOX_TOKEN", "--json"],
        &env,
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "no result: {}", r.stdout);
    insta::assert_snapshot!(
        "roundtrip_oauth_expired_token",
        redact_ports(r.stderr.trim_end())
    );
    t.nothing_sent(mark);

    let r = t.roundtrip(
        "user@contoso.test",
        &[
            "--mailbox-oauth-token-env",
            "MBOX_TOKEN",
            "--mailbox-auth-mech",
            "oauthbearer",
        ],
        &env,
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(
            "login as user@contoso.test refused (AUTHENTICATE OAUTHBEARER): Authentication \
             failed.; its OAuth error challenge: {\"status\":\"invalid_token\"}"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("says invalid_token"), "{}", r.stderr);

    // The token endpoint refuses a wrong client secret: no token, no login, nothing sent.
    let mark = t.log_len();
    let url = oauth.get("OAUTH_TOKEN_URL").to_string();
    let r = t.roundtrip(
        "mxtrace-test",
        &[
            "--mailbox-oauth",
            "--oauth-token-url",
            &url,
            "--oauth-client-id",
            "mxtrace-test",
            "--oauth-client-secret-env",
            "CLIENT_SECRET",
            "--oauth-scope",
            "mail-client",
        ],
        &[("CLIENT_SECRET", "not-the-secret")],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let stderr = redact_ports(&r.stderr);
    assert!(
        stderr.contains(
            "no OAuth access token to log in with: token endpoint \
             https://127.0.0.1:PORT/api/oidc/token answered 403"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("(nothing was sent)"), "{stderr}");
    assert!(
        stderr.contains("refused the client without an OAuth error (HTTP 401/403)")
            && stderr.contains("No IMAP login was attempted.")
            && stderr.contains("  1. Check --oauth-client-id"),
        "{stderr}"
    );
    t.nothing_sent(mark);
}
