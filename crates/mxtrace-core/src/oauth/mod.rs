//! OAuth 2.0 access tokens for SMTP AUTH (XOAUTH2, OAUTHBEARER) and any other protocol that
//! presents a bearer token (IMAP AUTHENTICATE): `token(&OAuthOptions)` is the one entry, with
//! nothing of SMTP in it. Tokens come from an environment variable or a file (read each
//! time, so a file an agent rotates is picked up), or from a grant against a token endpoint:
//! client credentials (RFC 6749 4.4) with a client secret or a certificate-signed client
//! assertion (RFC 7523, `assertion`), or the device authorization grant (RFC 8628) for a
//! person at a terminal. Granted tokens are cached per process until shortly before they
//! expire (`cache`); a long-running process (`serve`) shares them between scrapes and renews
//! them ahead of expiry. Every request goes through `mxtrace_net::http` (strict certificate
//! checks against the probes' trust stores, no redirects, a size cap, a deadline).
//!
//! Tokens and secrets are `Secret`s: nothing here prints, logs or serializes one.

mod assertion;
mod cache;
mod grant;

pub use grant::OAuthError;

use mxtrace_proto::secret::Secret;
use mxtrace_proto::spec::{
    OAuthGrant, SessionSpec, SpecError, ENTRA_SCOPE, ENTRA_SMTP_DELEGATED_SCOPE,
};
use std::path::PathBuf;
use std::time::Duration;

/// Microsoft Entra ID's v2.0 endpoints for a tenant (Microsoft Learn: OAuth 2.0 client
/// credentials flow; device authorization grant flow).
pub const ENTRA_LOGIN: &str = "https://login.microsoftonline.com";

/// Where a token comes from, and how its requests are made.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    pub source: TokenSource,
    /// Each HTTP request's deadline (the probe's stage timeout).
    pub timeout: Duration,
    /// Extra trust anchors for the token endpoints (`--tls-ca-file`), beside Mozilla's roots
    /// and the system's store.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum TokenSource {
    /// An access token in this environment variable.
    Env(String),
    /// An access token on the first line of this file.
    File(PathBuf),
    /// A grant against a token endpoint.
    Grant(Grant),
}

/// A grant against a token endpoint.
#[derive(Debug, Clone)]
pub struct Grant {
    pub kind: OAuthGrant,
    pub token_url: String,
    /// The device authorization endpoint (RFC 8628 3.1); needed for `OAuthGrant::Device`.
    pub device_url: Option<String>,
    pub client_id: String,
    /// None: a public client (the device grant needs no client secret).
    pub credential: Option<ClientCredential>,
    /// Space-separated, as RFC 6749 3.3 writes it.
    pub scope: String,
    /// Send a client secret with HTTP Basic (RFC 6749 2.3.1: every server must take it; some,
    /// Glewlwyd 2.7 among them, issue tokens for a secret in the body that their own
    /// introspection then calls inactive), else in the body (`client_secret_post`, the form
    /// Entra ID documents).
    pub secret_in_header: bool,
}

/// How the client proves who it is to the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientCredential {
    /// `client_secret` in the form body (RFC 6749 2.3.1).
    Secret(Secret),
    /// A JWT client assertion signed with the certificate's key (RFC 7523 2.2).
    Certificate { cert: PathBuf, key: PathBuf },
}

impl OAuthOptions {
    /// The OAuth settings of `spec` resolved, None when AUTH uses a password. A token or
    /// client secret in a variable or file is read now, so a missing one is a usage error
    /// before anything connects; the token itself is read again when it is used.
    pub fn from_spec(spec: &SessionSpec) -> Result<Option<OAuthOptions>, SpecError> {
        let source = if let Some(var) = &spec.oauth_token_env {
            Secret::from_env(var)?;
            TokenSource::Env(var.clone())
        } else if let Some(path) = &spec.oauth_token_file {
            Secret::from_file_as(path, "token")?;
            TokenSource::File(path.clone())
        } else if spec.oauth_tenant.is_some() || spec.oauth_token_url.is_some() {
            TokenSource::Grant(grant_from_spec(spec)?)
        } else {
            return Ok(None);
        };
        Ok(Some(OAuthOptions {
            source,
            timeout: spec.stage_timeout(),
            ca_file: spec.tls_ca_file.clone(),
        }))
    }
}

fn grant_from_spec(spec: &SessionSpec) -> Result<Grant, SpecError> {
    let kind = spec.oauth_grant.unwrap_or(OAuthGrant::ClientCredentials);
    let (token_url, device_url, scope) = match &spec.oauth_tenant {
        Some(t) => (
            format!("{ENTRA_LOGIN}/{t}/oauth2/v2.0/token"),
            Some(format!("{ENTRA_LOGIN}/{t}/oauth2/v2.0/devicecode")),
            match kind {
                OAuthGrant::ClientCredentials => ENTRA_SCOPE,
                OAuthGrant::Device => ENTRA_SMTP_DELEGATED_SCOPE,
            },
        ),
        None => (
            spec.oauth_token_url.clone().unwrap_or_default(),
            spec.oauth_device_url.clone(),
            "",
        ),
    };
    let credential = match (
        &spec.oauth_client_secret_env,
        &spec.oauth_client_secret_file,
        (&spec.oauth_client_cert, &spec.oauth_client_key),
    ) {
        (Some(var), _, _) => Some(ClientCredential::Secret(Secret::from_env(var)?)),
        (None, Some(path), _) => Some(ClientCredential::Secret(Secret::from_file_as(
            path,
            "client secret",
        )?)),
        (None, None, (Some(cert), Some(key))) => Some(ClientCredential::Certificate {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    Ok(Grant {
        kind,
        token_url,
        device_url: spec.oauth_device_url.clone().or(device_url),
        client_id: spec.oauth_client_id.clone().unwrap_or_default(),
        credential,
        scope: spec
            .oauth_scope
            .clone()
            .unwrap_or_else(|| scope.to_string()),
        secret_in_header: spec.oauth_tenant.is_none(),
    })
}

/// An access token for `opts`: read from the variable or file, or the cached one while it is
/// fresh, else granted now (and cached). The device grant prints its prompt on stderr.
pub async fn token(opts: &OAuthOptions) -> Result<Secret, OAuthError> {
    match &opts.source {
        TokenSource::Env(var) => Secret::from_env(var).map_err(OAuthError::Secret),
        TokenSource::File(path) => Secret::from_file_as(path, "token").map_err(OAuthError::Secret),
        TokenSource::Grant(g) => {
            cache::cached(cache::key(g), |refresh| grant::obtain(g, opts, refresh)).await
        }
    }
}
