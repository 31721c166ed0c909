//! The grants: client credentials (RFC 6749 4.4), the device authorization grant (RFC 8628)
//! and refreshing (RFC 6749 6), each a form POST to the token endpoint whose JSON answer is
//! read here (RFC 6749 5.1 success, 5.2 error; Entra ID adds `error_codes`, its AADSTS
//! numbers, which the diagnosis explains).

use super::{assertion, ClientCredential, Grant, OAuthOptions};
use mxtrace_net::http::{self, HttpError, HttpOptions, Request};
use mxtrace_proto::secret::{Secret, SecretError};
use mxtrace_proto::spec::OAuthGrant;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// A token endpoint's answer is small; Entra's error JSON is under 1 KiB.
const MAX_ANSWER: usize = 64 * 1024;
/// How much of an error description is kept (it is shown).
const MAX_DESCRIPTION: usize = 400;
/// RFC 8628 3.2: the default polling interval, and 3.5: slow_down adds 5 s.
const DEFAULT_INTERVAL: u64 = 5;
/// The longest a device code is waited for, whatever `expires_in` says.
const MAX_DEVICE_WAIT: u64 = 30 * 60;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Why no access token was had. Never carries a token or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    #[error(transparent)]
    Secret(SecretError),
    #[error("token endpoint {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: HttpError,
    },
    /// RFC 6749 5.2 (or an HTTP status without one): `error`, its description (Entra's
    /// starts with `AADSTS<number>:`) and Entra's `error_codes`.
    #[error("token endpoint {url} answered {status}{}", refusal(.error, .description))]
    Refused {
        url: String,
        status: u16,
        error: Option<String>,
        description: Option<String>,
        codes: Vec<u64>,
    },
    #[error("token endpoint {url}: {why}")]
    Answer { url: String, why: &'static str },
    #[error("the device code expired before the sign-in was completed at {url}")]
    DeviceExpired { url: String },
    #[error("the sign-in for the device code was declined (access_denied)")]
    DeviceDenied,
    #[error("client certificate {}: {why}", path.display())]
    Certificate { path: PathBuf, why: String },
}

fn refusal(error: &Option<String>, description: &Option<String>) -> String {
    match (error, description) {
        (Some(e), Some(d)) => format!(" {e}: {d}"),
        (Some(e), None) => format!(" {e}"),
        (None, _) => " (no OAuth error in the answer)".to_string(),
    }
}

/// A token as issued.
pub(super) struct Issued {
    pub token: Secret,
    pub lifetime: Option<Duration>,
    pub refresh_token: Option<Secret>,
}

#[derive(Deserialize, Default)]
struct TokenAnswer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// A fresh token for `g`: by its refresh token when there is one (falling back to the grant),
/// else by the grant.
pub(super) async fn obtain(
    g: &Grant,
    opts: &OAuthOptions,
    refresh: Option<Secret>,
) -> Result<Issued, OAuthError> {
    if let Some(rt) = refresh {
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt.expose().to_string()),
            ("scope", g.scope.clone()),
        ];
        if let Ok(issued) = post_token(g, opts, &mut form).await {
            return Ok(issued);
        }
    }
    match g.kind {
        OAuthGrant::ClientCredentials => {
            let mut form = vec![
                ("grant_type", "client_credentials".to_string()),
                ("scope", g.scope.clone()),
            ];
            post_token(g, opts, &mut form).await
        }
        OAuthGrant::Device => device(g, opts).await,
    }
}

fn http_options(opts: &OAuthOptions) -> HttpOptions {
    HttpOptions {
        timeout: opts.timeout,
        max_body: MAX_ANSWER,
        ca_file: opts.ca_file.clone(),
        connect_to: None,
    }
}

/// The client's identity and proof (RFC 6749 2.3.1, RFC 7523 2.2): in the form, or a secret in
/// an HTTP Basic header (`Grant::secret_in_header`).
fn authenticate<'a>(
    g: &Grant,
    url: &'a str,
    form: &mut Vec<(&'static str, String)>,
) -> Result<Request<'a>, OAuthError> {
    form.push(("client_id", g.client_id.clone()));
    let mut basic = None;
    match &g.credential {
        Some(ClientCredential::Secret(s)) if g.secret_in_header => basic = Some(s),
        Some(ClientCredential::Secret(s)) => form.push(("client_secret", s.expose().to_string())),
        Some(ClientCredential::Certificate { cert, key }) => {
            let jwt = assertion::client_assertion(cert, key, &g.client_id, url)?;
            form.push(("client_assertion_type", JWT_BEARER.to_string()));
            form.push(("client_assertion", jwt));
        }
        None => {}
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let req = Request::post_form(url, &pairs).header("accept", "application/json".to_string());
    Ok(match basic {
        Some(s) => req.basic_auth(&g.client_id, s.expose()),
        None => req,
    })
}

/// POSTs a form with the client's credentials to `url`.
async fn send(
    g: &Grant,
    opts: &OAuthOptions,
    url: &str,
    form: &mut Vec<(&'static str, String)>,
) -> Result<http::Response, OAuthError> {
    let req = authenticate(g, url, form)?;
    http::request(req, &http_options(opts))
        .await
        .map_err(|source| OAuthError::Http {
            url: url.to_string(),
            source,
        })
}

/// POSTs a form with the client's credentials to `url` and reads the JSON answer.
async fn post(
    g: &Grant,
    opts: &OAuthOptions,
    url: &str,
    form: &mut Vec<(&'static str, String)>,
) -> Result<(u16, TokenAnswer), OAuthError> {
    let resp = send(g, opts, url, form).await?;
    let answer = match serde_json::from_slice::<TokenAnswer>(&resp.body) {
        Ok(a) => a,
        Err(_) if resp.status != 200 => TokenAnswer::default(),
        Err(_) => {
            return Err(OAuthError::Answer {
                url: url.to_string(),
                why: "the answer is not the JSON object RFC 6749 5.1 describes",
            })
        }
    };
    Ok((resp.status, answer))
}

/// The token endpoint's answer to `form`: a token, or why not.
async fn post_token(
    g: &Grant,
    opts: &OAuthOptions,
    form: &mut Vec<(&'static str, String)>,
) -> Result<Issued, OAuthError> {
    let (status, answer) = post(g, opts, &g.token_url, form).await?;
    issued(&g.token_url, status, answer)
}

fn issued(url: &str, status: u16, a: TokenAnswer) -> Result<Issued, OAuthError> {
    let answer_err = |why| OAuthError::Answer {
        url: url.to_string(),
        why,
    };
    if status != 200 || a.error.is_some() {
        return Err(refused(url, status, a));
    }
    let token = a
        .access_token
        .filter(|t| !t.is_empty() && t.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| answer_err("no usable access_token in the answer"))?;
    if !a
        .token_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    {
        return Err(answer_err("the token_type is not Bearer (RFC 6750)"));
    }
    let lifetime = match a.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Ok(Issued {
        token: Secret::new(token),
        lifetime: lifetime.map(Duration::from_secs),
        refresh_token: a.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
    })
}

/// RFC 6749 5.2's error, its description's first line, and Entra's codes.
fn refused(url: &str, status: u16, a: TokenAnswer) -> OAuthError {
    OAuthError::Refused {
        url: url.to_string(),
        status,
        error: a.error.map(|e| printable(&e, 64)),
        description: a.error_description.map(|d| first_line(&d)),
        codes: a.error_codes,
    }
}

/// Entra's description's first line (its "Trace ID", "Correlation ID" and "Timestamp"
/// follow), printable and bounded: it is shown.
fn first_line(d: &str) -> String {
    printable(d.lines().next().unwrap_or(""), MAX_DESCRIPTION)
}

fn printable(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

#[derive(Deserialize)]
struct DeviceAnswer {
    device_code: Option<String>,
    user_code: Option<String>,
    verification_uri: Option<String>,
    /// Entra's older name for `verification_uri`.
    verification_url: Option<String>,
    verification_uri_complete: Option<String>,
    expires_in: Option<u64>,
    interval: Option<u64>,
}

/// RFC 8628: ask for a device code, tell the person where to enter it, then poll the token
/// endpoint at the server's interval until they have, or the code expires.
async fn device(g: &Grant, opts: &OAuthOptions) -> Result<Issued, OAuthError> {
    let url = g.device_url.clone().unwrap_or_default();
    let mut form = vec![("scope", g.scope.clone())];
    let resp = device_request(g, opts, &url, &mut form).await?;
    let (Some(code), Some(user_code), Some(verify)) = (
        resp.device_code,
        resp.user_code,
        resp.verification_uri.or(resp.verification_url),
    ) else {
        return Err(OAuthError::Answer {
            url,
            why: "no device_code, user_code or verification_uri in the answer (RFC 8628 3.2)",
        });
    };
    let expires = resp.expires_in.unwrap_or(600).min(MAX_DEVICE_WAIT);
    prompt(
        &verify,
        &user_code,
        resp.verification_uri_complete.as_deref(),
        expires,
    );
    let deadline = Instant::now() + Duration::from_secs(expires);
    let mut interval = resp.interval.unwrap_or(DEFAULT_INTERVAL).clamp(1, 60);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if Instant::now() >= deadline {
            return Err(OAuthError::DeviceExpired { url: verify });
        }
        let mut form = vec![
            ("grant_type", DEVICE_CODE.to_string()),
            ("device_code", code.clone()),
        ];
        let (status, answer) = post(g, opts, &g.token_url, &mut form).await?;
        match answer.error.as_deref() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            Some("access_denied") => return Err(OAuthError::DeviceDenied),
            Some("expired_token") => return Err(OAuthError::DeviceExpired { url: verify }),
            _ => return issued(&g.token_url, status, answer),
        }
    }
}

async fn device_request(
    g: &Grant,
    opts: &OAuthOptions,
    url: &str,
    form: &mut Vec<(&'static str, String)>,
) -> Result<DeviceAnswer, OAuthError> {
    let resp = send(g, opts, url, form).await?;
    if resp.status != 200 {
        let a = serde_json::from_slice(&resp.body).unwrap_or_default();
        return Err(refused(url, resp.status, a));
    }
    serde_json::from_slice(&resp.body).map_err(|_| OAuthError::Answer {
        url: url.to_string(),
        why: "the answer is not the JSON object RFC 8628 3.2 describes",
    })
}

/// The person's half of RFC 8628 3.3, on stderr (stdout stays the report).
fn prompt(verify: &str, user_code: &str, complete: Option<&str>, expires: u64) {
    let verify = printable(verify, 512);
    let user_code = printable(user_code, 64);
    let mut text = format!(
        "mxtrace: to sign in for the OAuth token, open {verify} and enter the code {user_code} (within {} min); waiting...",
        expires.div_ceil(60)
    );
    if let Some(c) = complete {
        text.push_str(&format!("\nmxtrace: or open {}", printable(c, 512)));
    }
    eprintln!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> TokenAnswer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn answers_and_refusals() {
        let ok = issued("u", 200, answer(r#"{"access_token":"eyJ.a.b","token_type":"bearer","expires_in":"3599","refresh_token":"r"}"#)).unwrap();
        assert_eq!(ok.token.expose(), "eyJ.a.b");
        assert_eq!(ok.lifetime, Some(Duration::from_secs(3599)));
        assert!(ok.refresh_token.is_some());
        // Entra ID's error JSON (Microsoft Learn: Microsoft identity platform error codes).
        let e = issued("https://login.microsoftonline.com/contoso/oauth2/v2.0/token", 401, answer(
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.\r\nTrace ID: 0\r\nCorrelation ID: 1\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[7000215]}"#,
        )).err().unwrap();
        assert_eq!(
            e.to_string(),
            "token endpoint https://login.microsoftonline.com/contoso/oauth2/v2.0/token answered 401 invalid_client: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."
        );
        assert!(matches!(e, OAuthError::Refused { ref codes, .. } if codes == &[7000215]));
        let e = issued(
            "u",
            200,
            answer(r#"{"access_token":"a","token_type":"mac"}"#),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("not Bearer"), "{e}");
        let e = issued("u", 403, answer("{}")).err().unwrap();
        assert_eq!(
            e.to_string(),
            "token endpoint u answered 403 (no OAuth error in the answer)"
        );
    }
}
