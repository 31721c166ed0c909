//! OAuth 2.0 SMTP AUTH (XOAUTH2, OAUTHBEARER) against real servers: the Postfix lab's
//! submission listener with Dovecot validating tokens by introspection at a real Glewlwyd
//! authorization server over HTTPS (tests/support/oauth/README.md). A token from each source
//! (environment, file, client credentials, device code approved in the background) gets 235;
//! an expired or wrong one the error challenge, decoded, then 535; token endpoints that hang,
//! fail, present an untrusted certificate, or answer as Entra ID does (AADSTS, from a canned
//! responder: no real server here speaks it) are explained. No token or secret is in any
//! output. One test owns the servers; they are stopped by their pids when it ends.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use support::bin::{mxtrace, redact, stages, Run};
use support::oauth::{Answer, OAuthServer, Responder};
use support::postfix::PostfixLab;

const SECRET: &str = "lab-client-secret-1";
/// Every Glewlwyd access token starts so (`{"typ":"at+jwt"`).
const JWT_START: &str = "eyJ0eXAi";

struct Lab {
    target: String,
    /// The lab CA and the OAuth server's CA in one file: SMTP and the token endpoint verify.
    both_ca: PathBuf,
    lab_ca: String,
    dir: PathBuf,
    /// Everything mxtrace printed or wrote, for the check that no secret is in it.
    outputs: Vec<String>,
}

impl Lab {
    fn probe(&mut self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let ca = self.both_ca.to_string_lossy().into_owned();
        let mut args = vec!["probe", self.target.as_str(), "--starttls", "require"];
        args.extend([
            "--tls-name",
            "mx.contoso.test",
            "--ehlo",
            "probe.fabrikam.test",
        ]);
        // Defaults unless `extra` sets them.
        for (flag, value) in [("--tls-ca-file", ca.as_str()), ("--stage-timeout", "10s")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let r = mxtrace(&args, env);
        self.outputs.push(r.stdout.clone());
        self.outputs.push(r.stderr.clone());
        r
    }

    /// A probe with `--json` and `--html`, both kept for the secrets check.
    fn probe_json(&mut self, extra: &[&str], env: &[(&str, &str)]) -> (Run, serde_json::Value) {
        let html = self.dir.join(format!("page-{}.html", self.outputs.len()));
        let html_arg = html.to_string_lossy().into_owned();
        let mut args = vec!["--json", "--html", html_arg.as_str()];
        args.extend_from_slice(extra);
        let r = self.probe(&args, env);
        let page = std::fs::read_to_string(&html).unwrap_or_default();
        assert!(page.contains("<html"), "no HTML page written: {}", r.stderr);
        self.outputs.push(page);
        let j = r.json();
        (r, j)
    }
}

fn auth(j: &serde_json::Value) -> &serde_json::Value {
    stages(j, "auth").first().copied().expect("an auth stage")
}

fn notes(s: &serde_json::Value) -> String {
    s["notes"].to_string()
}

#[test]
fn oauth_smtp_auth_against_glewlwyd_postfix_and_dovecot() {
    let Some(oauth) = OAuthServer::start(true) else {
        return;
    };
    let Some(lab) = PostfixLab::start_with_oauth(&oauth.dir) else {
        return;
    };
    let mut t = Lab {
        target: lab.target("PORT_SUBMISSION"),
        both_ca: oauth.ca_with(lab.get("CA_FILE")),
        lab_ca: lab.get("CA_FILE").to_string(),
        dir: oauth.dir.clone(),
        outputs: Vec::new(),
    };
    good_tokens(&mut t, &oauth);
    proxied_tokens(&mut t, &oauth);
    device_grant(&mut t, &oauth);
    refused_tokens(&mut t, &oauth);
    token_endpoint_failures(&mut t, &oauth);
    for (i, out) in t.outputs.iter().enumerate() {
        assert!(!out.contains(JWT_START), "output {i} has a token:\n{out}");
        assert!(
            !out.contains(SECRET),
            "output {i} has the client secret:\n{out}"
        );
    }
}

/// 235 with a token from the environment, a file (either mechanism), and the
/// client-credentials grant at Glewlwyd's token endpoint.
fn good_tokens(t: &mut Lab, oauth: &OAuthServer) {
    let user = ["--auth-user", "user@contoso.test"];
    let token = oauth.token("user");
    assert!(token.starts_with(JWT_START));
    let env = [("MXTRACE_TOKEN", token.as_str())];
    let (r, j) = t.probe_json(
        &[
            &user[..],
            &[
                "--auth-mech",
                "xoauth2",
                "--oauth-token-env",
                "MXTRACE_TOKEN",
            ],
        ]
        .concat(),
        &env,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let a = auth(&j);
    assert_eq!(a["sent"], serde_json::json!(["AUTH XOAUTH2 <redacted>"]));
    assert_eq!(a["reply"]["code"], 235);

    let file = t.dir.join("token.txt");
    std::fs::write(&file, format!("{}\n", oauth.token("user"))).unwrap();
    let file_arg = file.to_string_lossy().into_owned();
    for (mech, sent) in [
        (None, "AUTH XOAUTH2 <redacted>"),
        (Some("oauthbearer"), "AUTH OAUTHBEARER <redacted>"),
    ] {
        let mut args = vec![user[0], user[1], "--oauth-token-file", file_arg.as_str()];
        if let Some(m) = mech {
            args.extend(["--auth-mech", m]);
        }
        let (r, j) = t.probe_json(&args, &[]);
        assert_eq!(r.code, 0, "{mech:?}: {}\n{}", r.stdout, r.stderr);
        assert_eq!(auth(&j)["sent"][0], sent);
    }

    let url = oauth.get("OAUTH_TOKEN_URL").to_string();
    assert!(url.starts_with("https://"));
    let (r, j) = t.probe_json(&secret_grant(&url), &[("MXTRACE_SECRET", SECRET)]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(auth(&j)["reply"]["code"], 235);

    // The same client with its certificate instead of the secret: a client assertion (RFC
    // 7523, PS256) that Glewlwyd checks against the client's public key (private_key_jwt).
    let (cert, key) = (
        oauth.get("OAUTH_CLIENT_CERT"),
        oauth.get("OAUTH_CLIENT_KEY"),
    );
    let cert_args = [
        "--auth-user",
        "mxtrace-test",
        "--oauth-token-url",
        &url,
        "--oauth-client-id",
        "mxtrace-test",
        "--oauth-client-cert",
        cert,
        "--oauth-client-key",
        key,
        "--oauth-scope",
        "mail-client",
    ];
    // Glewlwyd 2.7 grants the token but records a client-credentials token's client from HTTP
    // Basic authentication only (`serialize_access_token(..., request->auth_basic_user, ...)`
    // in its protocol_oidc.c), so Dovecot's introspection, limited to the client's own tokens,
    // finds none and the AUTH is refused: what is pinned here is the token endpoint's answer.
    let (r, j) = t.probe_json(&cert_args, &[]);
    let a = auth(&j);
    assert_eq!(a["sent"][0], "AUTH XOAUTH2 <redacted>", "{}", r.stderr);
    let code = a["reply"]["code"].as_u64();
    assert!(matches!(code, Some(235 | 535)), "{code:?}: {}", r.stdout);
    // Another key than the registered one: the assertion is refused at the token endpoint.
    let other = t.dir.join("other-key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&other)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let other = other.to_string_lossy().into_owned();
    let mut wrong = cert_args.to_vec();
    wrong[9] = &other;
    let r = t.probe(&wrong, &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r
        .stdout
        .contains("no OAuth access token, so no AUTH was sent: token endpoint"));
}

/// The client-credentials grant with the lab client's secret (from MXTRACE_SECRET).
fn secret_grant(url: &str) -> [&str; 10] {
    [
        "--auth-user",
        "mxtrace-test",
        "--oauth-token-url",
        url,
        "--oauth-client-id",
        "mxtrace-test",
        "--oauth-client-secret-env",
        "MXTRACE_SECRET",
        "--oauth-scope",
        "mail-client",
    ]
}

/// The token fetched through HTTPS_PROXY (a real tinyproxy: CONNECT, TLS end to end); a proxy
/// that cannot be reached is named and explained; NO_PROXY goes around it.
fn proxied_tokens(t: &mut Lab, oauth: &OAuthServer) {
    let Some(proxy) = support::oauth::TinyProxy::start(&t.dir) else {
        return;
    };
    let url = oauth.get("OAUTH_TOKEN_URL").to_string();
    let args = secret_grant(&url);
    let via = proxy.url();
    // NO_PROXY set empty: .ci/run exempts loopback for every other test.
    let env = [
        ("MXTRACE_SECRET", SECRET),
        ("HTTPS_PROXY", via.as_str()),
        ("NO_PROXY", ""),
    ];
    let (r, j) = t.probe_json(&args, &env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(auth(&j)["reply"]["code"], 235);
    let port = oauth.get("OAUTH_PORT");
    let log = proxy.log_text();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{port}")),
        "{log}\n{}",
        r.stderr
    );
    // Nothing listens there: the proxy is named, with what to check.
    let dead = [
        ("MXTRACE_SECRET", SECRET),
        ("HTTPS_PROXY", "http://127.0.0.1:1"),
        ("NO_PROXY", ""),
    ];
    let r = t.probe(&args, &dead);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("proxy 127.0.0.1:1 (HTTPS_PROXY): cannot connect"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Check HTTPS_PROXY"), "{}", r.stdout);
    let around = [
        ("MXTRACE_SECRET", SECRET),
        ("HTTPS_PROXY", "http://127.0.0.1:1"),
        ("NO_PROXY", "localhost,127.0.0.1"),
    ];
    let (r, _) = t.probe_json(&args, &around);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

/// RFC 8628: the prompt on stderr, `server.sh approve` answering it in the background, then
/// 235 with the user's token.
fn device_grant(t: &mut Lab, oauth: &OAuthServer) {
    let ca = t.both_ca.to_string_lossy().into_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mxtrace"))
        .args([
            "probe",
            &t.target,
            "--starttls",
            "require",
            "--tls-name",
            "mx.contoso.test",
        ])
        .args([
            "--tls-ca-file",
            &ca,
            "--auth-user",
            "user@contoso.test",
            "--json",
        ])
        .args([
            "--oauth-grant",
            "device",
            "--oauth-token-url",
            oauth.get("OAUTH_TOKEN_URL"),
        ])
        .args([
            "--oauth-device-url",
            oauth.get("OAUTH_DEVICE_URL"),
            "--oauth-scope",
            "mail",
        ])
        .args([
            "--oauth-client-id",
            "mxtrace-test",
            "--oauth-client-secret-env",
            "MXTRACE_SECRET",
        ])
        .env("MXTRACE_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mxtrace");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut prompt = String::new();
    stderr.read_line(&mut prompt).unwrap();
    let code = prompt
        .split("enter the code ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no device code prompt: {prompt:?}"))
        .to_string();
    assert!(
        prompt.starts_with(&format!(
            "mxtrace: to sign in for the OAuth token, open {}/device and enter the code {code} (within 10 min)",
            oauth.get("OAUTH_ISSUER")
        )),
        "{prompt}"
    );
    oauth.run(&["approve", &code]);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{prompt}{rest}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(auth(&j)["reply"]["code"], 235);
    t.outputs.extend([stdout, prompt, rest]);
}

/// An expired token (XOAUTH2) and a wrong one (OAUTHBEARER): the error challenge decoded in
/// the JSON notes, the transcript and the diagnosis, answered as each mechanism requires,
/// then 535.
fn refused_tokens(t: &mut Lab, oauth: &OAuthServer) {
    let expired = oauth.token("user");
    oauth.run(&["expire", &expired]);
    let env = [("MXTRACE_TOKEN", expired.as_str())];
    let args = [
        "--auth-user",
        "user@contoso.test",
        "--auth-mech",
        "xoauth2",
        "--oauth-token-env",
        "MXTRACE_TOKEN",
    ];
    let (r, j) = t.probe_json(&args, &env);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let a = auth(&j);
    assert_eq!(
        a["sent"],
        serde_json::json!(["AUTH XOAUTH2 <redacted>", ""])
    );
    assert_eq!(a["reply"]["code"], 535);
    assert!(
        notes(a)
            .contains(r#"decoded: {\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"mail\"}"#),
        "{}",
        notes(a)
    );
    assert_eq!(a["diagnosis"]["category"], "auth_failed");
    let cause = a["diagnosis"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("OAuth error challenge says 401: the token is expired"),
        "{cause}"
    );
    assert!(cause.contains("It asks for scope \"mail\""), "{cause}");
    // The human transcript, from AUTH to QUIT and the verdict.
    let human = t.probe(&args, &env);
    assert_eq!(human.code, 1);
    insta::assert_snapshot!("oauth_expired_token_transcript", auth_lines(&human.stdout));

    let (r, j) = t.probe_json(
        &[
            "--auth-user",
            "user@contoso.test",
            "--auth-mech",
            "oauthbearer",
            "--oauth-token-env",
            "MXTRACE_TOKEN",
        ],
        &[("MXTRACE_TOKEN", "not-a-real-token")],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let a = auth(&j);
    assert_eq!(
        a["sent"],
        serde_json::json!(["AUTH OAUTHBEARER <redacted>", "AQ=="])
    );
    assert!(
        notes(a).contains(r#"decoded: {\"status\":\"invalid_token\"}"#),
        "{}",
        notes(a)
    );
    assert!(a["diagnosis"]["cause"]
        .as_str()
        .unwrap()
        .contains("says invalid_token"));
}

/// The transcript's AUTH lines and the verdict, times and certificate details left out.
fn auth_lines(human: &str) -> String {
    let lines: Vec<&str> = human.lines().collect();
    let from = lines
        .iter()
        .position(|l| l.contains("AUTH XOAUTH2"))
        .unwrap();
    let to = lines.iter().position(|l| l.starts_with("TLS:")).unwrap();
    let verdict = lines
        .iter()
        .position(|l| l.starts_with("Verdict:"))
        .unwrap();
    let kept: Vec<&str> = lines[from..to]
        .iter()
        .chain(&lines[verdict..])
        .copied()
        .collect();
    redact(&kept.join("\n"))
}

/// No token, so no AUTH: each failure of the token endpoint named and explained.
fn token_endpoint_failures(t: &mut Lab, oauth: &OAuthServer) {
    const AADSTS: &[u8] = b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '00000000-0000-0000-0000-000000000001'.\\r\\nTrace ID: x\",\"error_codes\":[7000215]}";
    const UNKNOWN_APP: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"error\":\"unauthorized_client\",\"error_description\":\"AADSTS700016: Application with identifier '00000000-0000-0000-0000-000000000001' was not found in the directory 'Contoso'.\\r\\nTrace ID: x\",\"error_codes\":[700016]}";
    const FAILING: &[u8] =
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let https = oauth.get("OAUTH_TOKEN_URL").to_string();
    let cases: Vec<(Option<Answer>, &str, &str, &str)> = vec![
        (
            Some(Answer::Hang),
            "2s",
            "no complete answer within 2s",
            "could not be reached or did not answer in time",
        ),
        (
            Some(Answer::Raw(FAILING)),
            "10s",
            "answered 503 (no OAuth error in the answer)",
            "failed on its side",
        ),
        (
            Some(Answer::Raw(AADSTS)),
            "10s",
            "answered 401 invalid_client: AADSTS7000215",
            "AADSTS7000215 (invalid client secret provided)",
        ),
        (
            Some(Answer::Raw(UNKNOWN_APP)),
            "10s",
            "AADSTS700016: Application with identifier",
            "AADSTS700016 (application not found in the directory)",
        ),
        (
            None,
            "10s",
            "TLS with 127.0.0.1 failed: issued by an untrusted CA",
            "certificate did not verify",
        ),
    ];
    for (answer, timeout, error, cause) in cases {
        let url = match answer {
            Some(a) => Responder::start(vec![a]).url,
            None => https.clone(),
        };
        let mut args = vec![
            "--auth-user",
            "mxtrace-test",
            "--oauth-token-url",
            url.as_str(),
            "--oauth-client-id",
            "mxtrace-test",
            "--oauth-client-secret-env",
            "MXTRACE_SECRET",
            "--oauth-scope",
            "mail-client",
            "--stage-timeout",
            timeout,
        ];
        // The untrusted case: only the lab's CA, not the OAuth server's.
        let lab_ca = t.lab_ca.clone();
        if url == https {
            args.extend(["--tls-ca-file", lab_ca.as_str()]);
        }
        let (r, j) = t.probe_json(&args, &[("MXTRACE_SECRET", SECRET)]);
        assert_eq!(r.code, 1, "{error}: {}", r.stdout);
        let a = auth(&j);
        assert_eq!(a["sent"], serde_json::json!([]), "no AUTH without a token");
        let message = a["error"]["message"].as_str().unwrap();
        assert!(message.contains(error), "{message}");
        assert_eq!(a["diagnosis"]["category"], "auth_failed");
        let c = a["diagnosis"]["cause"].as_str().unwrap();
        assert!(c.contains(cause), "{c}");
        assert_eq!(j["verdict"]["failed_stage"], "auth");
    }
}

#[test]
fn tokens_and_secrets_are_refused_on_the_command_line() {
    for args in [
        vec![
            "probe",
            "127.0.0.1",
            "--auth-user",
            "u",
            "--oauth-token",
            "eyJx",
        ],
        vec![
            "probe",
            "127.0.0.1",
            "--auth-user",
            "u",
            "--oauth-client-secret",
            "s",
        ],
    ] {
        let r = mxtrace(&args, &[]);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(!r.stderr.contains("eyJx") || r.stderr.contains("unexpected argument"));
    }
    for (args, want) in [
        (
            vec!["probe", "127.0.0.1", "--oauth-token-env", "T"],
            "--oauth-token-env needs --auth-user",
        ),
        (
            vec![
                "probe",
                "127.0.0.1",
                "--auth-user",
                "u",
                "--oauth-tenant",
                "contoso.onmicrosoft.com",
            ],
            "--oauth-tenant needs --oauth-client-id",
        ),
        (
            vec![
                "probe",
                "127.0.0.1",
                "--auth-user",
                "u",
                "--oauth-token-url",
                "http://auth.contoso.test/t",
                "--oauth-client-id",
                "c",
                "--oauth-client-secret-env",
                "S",
                "--oauth-scope",
                "x",
            ],
            "http:// is allowed only to this machine",
        ),
        (
            vec![
                "probe",
                "127.0.0.1",
                "--auth-user",
                "u",
                "--oauth-token-env",
                "MXTRACE_UNSET_TOKEN",
            ],
            "environment variable MXTRACE_UNSET_TOKEN is not set",
        ),
    ] {
        let r = mxtrace(&args, &[]);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
}
