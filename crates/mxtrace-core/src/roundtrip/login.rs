//! How a mailbox of the round trip logs in: a password, or an OAuth 2.0 access token had when
//! the mailbox is opened (`oauth::token`: from a variable, a file, or a grant, cached per
//! process), presented with AUTHENTICATE XOAUTH2 or OAUTHBEARER; and what a refusal means.
//!
//! A mailbox's token comes from a source of its own (`--mailbox-oauth-token-env/-file`) or from
//! the OAuth settings the sending session has (`--oauth-tenant`, `--oauth-token-url`... with
//! `--mailbox-oauth`): one Entra ID app with SMTP.SendAsApp and IMAP.AccessAsApp gets one
//! token for both. Without `--auth-user` those settings are the mailbox's alone
//! (`sending_session` takes them out of the SMTP session).

use super::MailboxOptions;
use crate::oauth::{self, OAuthError, OAuthOptions, TokenSource};
use mxtrace_net::imap::{Credentials, ImapError};
use mxtrace_proto::secret::Secret;
use mxtrace_proto::spec::{
    reword, AuthMech, Naming, OAuthGrant, SessionSpec, SpecError, ENTRA_IMAP_DELEGATED_SCOPE,
};

/// What a mailbox logs in with.
#[derive(Debug, Clone)]
pub enum MailboxLogin {
    /// AUTHENTICATE PLAIN, else LOGIN.
    Password(Secret),
    /// An OAuth 2.0 access token, had when the mailbox is opened; XOAUTH2 when offered, else
    /// OAUTHBEARER, or `mech`.
    OAuth {
        token: OAuthOptions,
        mech: Option<AuthMech>,
    },
}

impl MailboxLogin {
    /// A token read from an environment variable or a file (read again at each use), checked
    /// to be there now.
    pub fn token(
        source: TokenSource,
        mech: Option<AuthMech>,
        session: &SessionSpec,
    ) -> Result<MailboxLogin, SpecError> {
        match &source {
            TokenSource::Env(var) => {
                Secret::from_env(var)?;
            }
            TokenSource::File(path) => {
                Secret::from_file_as(path, "token")?;
            }
            TokenSource::Grant(_) => {}
        }
        Ok(MailboxLogin::OAuth {
            token: OAuthOptions {
                source,
                timeout: session.stage_timeout(),
                ca_file: session.tls_ca_file.clone(),
            },
            mech,
        })
    }

    /// The token of the session's OAuth settings, for the mailbox `user`; None when the
    /// session has none. A device grant against Entra ID asks for IMAP's delegated scope
    /// unless a scope is given.
    pub fn shared(
        session: &SessionSpec,
        user: &str,
        mech: Option<AuthMech>,
    ) -> Result<Option<MailboxLogin>, SpecError> {
        let spec = shared_spec(session, user)?;
        Ok(OAuthOptions::from_spec(&spec)?.map(|token| MailboxLogin::OAuth { token, mech }))
    }

    /// `shared`'s checks without reading a secret: true when the session has a token source.
    pub fn check_shared(session: &SessionSpec, user: &str) -> Result<bool, SpecError> {
        Ok(shared_spec(session, user)?.oauth_source().is_some())
    }

    pub fn is_oauth(&self) -> bool {
        matches!(self, MailboxLogin::OAuth { .. })
    }
}

/// The OAuth settings of `session` as the mailbox `user`'s, checked.
fn shared_spec(session: &SessionSpec, user: &str) -> Result<SessionSpec, SpecError> {
    let mut spec = oauth_settings(session);
    spec.auth_user = Some(user.to_string());
    let device = spec.oauth_grant == Some(OAuthGrant::Device);
    if device && spec.oauth_tenant.is_some() && spec.oauth_scope.is_none() {
        spec.oauth_scope = Some(ENTRA_IMAP_DELEGATED_SCOPE.to_string());
    }
    spec.validate(None)?;
    Ok(spec)
}

/// The OAuth settings of a session (and what their requests use: the CA file, the timeout).
fn oauth_settings(s: &SessionSpec) -> SessionSpec {
    SessionSpec {
        oauth_token_env: s.oauth_token_env.clone(),
        oauth_token_file: s.oauth_token_file.clone(),
        oauth_grant: s.oauth_grant,
        oauth_tenant: s.oauth_tenant.clone(),
        oauth_token_url: s.oauth_token_url.clone(),
        oauth_device_url: s.oauth_device_url.clone(),
        oauth_client_id: s.oauth_client_id.clone(),
        oauth_client_secret_env: s.oauth_client_secret_env.clone(),
        oauth_client_secret_file: s.oauth_client_secret_file.clone(),
        oauth_client_cert: s.oauth_client_cert.clone(),
        oauth_client_key: s.oauth_client_key.clone(),
        oauth_scope: s.oauth_scope.clone(),
        tls_ca_file: s.tls_ca_file.clone(),
        stage_timeout: s.stage_timeout,
        ..SessionSpec::default()
    }
}

/// The session that sends the message: without a user for SMTP AUTH, OAuth settings that a
/// mailbox logs in with are the mailbox's only.
pub fn sending_session(session: SessionSpec, shared_by_mailbox: bool) -> SessionSpec {
    if session.auth_user.is_some() || !shared_by_mailbox {
        return session;
    }
    SessionSpec {
        oauth_token_env: None,
        oauth_token_file: None,
        oauth_grant: None,
        oauth_tenant: None,
        oauth_token_url: None,
        oauth_device_url: None,
        oauth_client_id: None,
        oauth_client_secret_env: None,
        oauth_client_secret_file: None,
        oauth_client_cert: None,
        oauth_client_key: None,
        oauth_scope: None,
        ..session
    }
}

impl MailboxOptions {
    /// The credentials to log in with now: the password, or a token had now.
    pub async fn credentials(&self) -> Result<Credentials, OAuthError> {
        let user = self.url.user.clone();
        Ok(match &self.login {
            MailboxLogin::Password(password) => Credentials::Password {
                user,
                password: password.clone(),
            },
            MailboxLogin::OAuth { token, mech } => Credentials::Token {
                user,
                token: oauth::token(token).await?,
                mech: *mech,
            },
        })
    }
}

/// What a refused login means, for a token (a password's refusal says enough): the decoded
/// error challenge's meaning, or every usual cause, then the steps.
pub(super) fn login_hint(e: &ImapError, login: &MailboxLogin, naming: Naming) -> Vec<String> {
    let ImapError::Login { challenge, .. } = e else {
        return Vec::new();
    };
    if !login.is_oauth() {
        return Vec::new();
    }
    let c = challenge
        .as_ref()
        .map(|c| (c.status.as_str(), c.scope.as_deref()));
    let (cause, steps) = mxtrace_knowledge::explain_imap_token_refusal(c);
    lines(cause, &steps, naming)
}

/// Why no token was had, and what to do.
pub(super) fn token_hint(e: &OAuthError, naming: Naming) -> Vec<String> {
    let (cause, steps) = mxtrace_knowledge::explain_mailbox_token_error(&e.to_string());
    lines(cause, &steps, naming)
}

/// The cause, then numbered steps, each setting worded as the user wrote them.
fn lines(cause: String, steps: &[&str], naming: Naming) -> Vec<String> {
    let mut out = vec![reword(&cause, naming)];
    out.extend(
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {}", i + 1, reword(s, naming))),
    );
    out
}
