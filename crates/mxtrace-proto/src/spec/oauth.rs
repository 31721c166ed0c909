//! The OAuth 2.0 settings of SMTP AUTH, checked together: where the access token comes from
//! (an environment variable, a file, or a grant against a token endpoint), and that nothing
//! contradicts it (a password as well, PLAIN with a token).

use super::check::ValueError;
use super::{value, AuthMech, Field, OAuthGrant, SessionSpec, SpecError};
use std::net::IpAddr;

/// Exchange Online's resource with the application permissions granted to the app
/// (SMTP.SendAsApp): the scope of the client-credentials grant against Entra ID (Microsoft
/// Learn: Authenticate an IMAP, POP or SMTP connection using OAuth).
pub const ENTRA_SCOPE: &str = "https://outlook.office365.com/.default";
/// The delegated permission a person grants in the device flow, and a refresh token.
pub const ENTRA_SMTP_DELEGATED_SCOPE: &str =
    "https://outlook.office365.com/SMTP.Send offline_access";
/// The same for reading a mailbox over IMAP (the round trip's mailbox).
pub const ENTRA_IMAP_DELEGATED_SCOPE: &str =
    "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access";

/// Settings that ask for a grant against a token endpoint.
const GRANT_FIELDS: &[Field] = &[
    Field::OAuthGrant,
    Field::OAuthDeviceUrl,
    Field::OAuthClientId,
    Field::OAuthClientSecretEnv,
    Field::OAuthClientSecretFile,
    Field::OAuthClientCert,
    Field::OAuthClientKey,
    Field::OAuthScope,
];
const ENDPOINTS: &[Field] = &[Field::OAuthTenant, Field::OAuthTokenUrl];
const CLIENT_CREDENTIALS: &[Field] = &[
    Field::OAuthClientSecretEnv,
    Field::OAuthClientSecretFile,
    Field::OAuthClientCert,
];
const TOKEN_SOURCES: &[Field] = &[
    Field::OAuthTokenEnv,
    Field::OAuthTokenFile,
    Field::OAuthTenant,
    Field::OAuthTokenUrl,
];

impl SessionSpec {
    /// The setting that makes AUTH use an OAuth token, when one does.
    pub fn oauth_source(&self) -> Option<Field> {
        let set = self.fields();
        TOKEN_SOURCES.iter().copied().find(|f| set.contains(f))
    }

    pub(super) fn validate_oauth(&self) -> Result<(), SpecError> {
        let set = self.fields();
        let has = |f: &Field| set.contains(f);
        let first = |list: &[Field]| list.iter().copied().find(|f| set.contains(f));
        let exclusive = |list: &[Field]| {
            let mut it = list.iter().copied().filter(|f| set.contains(f));
            match (it.next(), it.next()) {
                (Some(field), Some(other)) => Err(SpecError::Exclusive { field, other }),
                _ => Ok(()),
            }
        };
        exclusive(&[
            Field::OAuthTokenEnv,
            Field::OAuthTokenFile,
            Field::OAuthTenant,
        ])?;
        exclusive(&[
            Field::OAuthTokenEnv,
            Field::OAuthTokenFile,
            Field::OAuthTokenUrl,
        ])?;
        exclusive(&[Field::OAuthTenant, Field::OAuthTokenUrl])?;
        exclusive(CLIENT_CREDENTIALS)?;
        let source = first(TOKEN_SOURCES);
        if let (Some(field), Some(other)) = (
            source,
            first(&[Field::AuthPasswordEnv, Field::AuthPasswordFile]),
        ) {
            return Err(SpecError::Exclusive { field, other });
        }
        if let Some(field) = source.filter(|_| self.auth_user.is_none()) {
            return Err(needs(field, &[Field::AuthUser]));
        }
        if let Some(field) = first(GRANT_FIELDS).filter(|_| first(ENDPOINTS).is_none()) {
            return Err(needs(field, ENDPOINTS));
        }
        if let Some(field) = first(ENDPOINTS) {
            self.validate_grant(field)?;
        }
        match (self.auth_mech, source) {
            (Some(m), None) if m.is_oauth() => Err(needs(Field::AuthMech, TOKEN_SOURCES)),
            (Some(AuthMech::Plain | AuthMech::Login), Some(other)) => Err(SpecError::Exclusive {
                field: Field::AuthMech,
                other,
            }),
            _ if has(&Field::OAuthClientCert) != has(&Field::OAuthClientKey) => {
                Err(SpecError::Together {
                    field: Field::OAuthClientCert,
                    other: Field::OAuthClientKey,
                })
            }
            _ => Ok(()),
        }
    }

    /// A grant against `endpoint` (the tenant or a token URL): its client and credential.
    fn validate_grant(&self, endpoint: Field) -> Result<(), SpecError> {
        let set = self.fields();
        if let Some(t) = &self.oauth_tenant {
            value(Field::OAuthTenant, check_tenant(t))?;
        }
        for (field, url) in [
            (Field::OAuthTokenUrl, &self.oauth_token_url),
            (Field::OAuthDeviceUrl, &self.oauth_device_url),
        ] {
            if let Some(u) = url {
                value(field, check_url(u))?;
            }
        }
        for (field, v) in [
            (Field::OAuthClientId, &self.oauth_client_id),
            (Field::OAuthScope, &self.oauth_scope),
        ] {
            if let Some(v) = v {
                value(field, check_token_value(v))?;
            }
        }
        if self.oauth_client_id.is_none() {
            return Err(needs(endpoint, &[Field::OAuthClientId]));
        }
        let generic = self.oauth_token_url.is_some();
        if generic && self.oauth_scope.is_none() {
            return Err(needs(Field::OAuthTokenUrl, &[Field::OAuthScope]));
        }
        match self.oauth_grant.unwrap_or(OAuthGrant::ClientCredentials) {
            OAuthGrant::ClientCredentials
                if !CLIENT_CREDENTIALS.iter().any(|f| set.contains(f)) =>
            {
                Err(needs(endpoint, CLIENT_CREDENTIALS))
            }
            OAuthGrant::Device if generic && self.oauth_device_url.is_none() => {
                Err(needs(Field::OAuthGrant, &[Field::OAuthDeviceUrl]))
            }
            _ => Ok(()),
        }
    }
}

fn needs(field: Field, needs: &'static [Field]) -> SpecError {
    SpecError::Needs { field, needs }
}

/// A token or device endpoint: `https://`, or `http://` to this machine only (a local test
/// server or proxy): a client secret must not cross a network in clear (RFC 6749 2.3.1).
pub fn check_url(url: &str) -> Result<(), ValueError> {
    let err = |why| {
        Err(ValueError::Url {
            value: url.to_string(),
            why,
        })
    };
    if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return err("not a valid URL");
    }
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return err("expected an https:// URL"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return err("expected https://HOST[:PORT]/PATH (no user information)");
    }
    if !https && !is_loopback(authority) {
        return err(
            "http:// is allowed only to this machine (127.0.0.1, [::1], localhost); use https://",
        );
    }
    Ok(())
}

fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An Entra tenant: a GUID or a verified domain (both letters, digits, `-` and `.`).
fn check_tenant(t: &str) -> Result<(), ValueError> {
    let ok = !t.is_empty()
        && t.len() <= 253
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then_some(()).ok_or(ValueError::EntraTenant {
        value: t.to_string(),
    })
}

/// A client ID or scope: printable ASCII (RFC 6749 A.1, A.4), sent in a form body.
fn check_token_value(v: &str) -> Result<(), ValueError> {
    let ok = !v.is_empty() && v.len() <= 1024 && v.bytes().all(|b| (0x20..0x7f).contains(&b));
    ok.then_some(()).ok_or(ValueError::OAuthValue {
        value: v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Naming;

    fn spec(toml: &str) -> SessionSpec {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn sources_and_their_needs() {
        let ok = spec("auth_user = \"a@b.test\"\noauth_token_env = \"T\"\n");
        assert_eq!(ok.validate(None).ok(), Some(()));
        assert_eq!(ok.oauth_source(), Some(Field::OAuthTokenEnv));
        let e = spec("oauth_token_env = \"T\"\n")
            .validate(None)
            .unwrap_err();
        assert_eq!(e.to_string(), "--oauth-token-env needs --auth-user");
        assert_eq!(e.describe(Naming::Key), "oauth_token_env needs auth_user");
        let e = spec("auth_user = \"a\"\noauth_tenant = \"contoso.onmicrosoft.com\"\n")
            .validate(None)
            .unwrap_err();
        assert_eq!(e.to_string(), "--oauth-tenant needs --oauth-client-id");
        let e = spec(
            "auth_user = \"a\"\noauth_tenant = \"contoso.onmicrosoft.com\"\noauth_client_id = \"x\"\n",
        )
        .validate(None)
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--oauth-tenant needs --oauth-client-secret-env, --oauth-client-secret-file or --oauth-client-cert"
        );
        let e = spec("auth_user = \"a\"\noauth_token_url = \"https://a.test/t\"\noauth_client_id = \"x\"\noauth_client_secret_env = \"S\"\n")
            .validate(None)
            .unwrap_err();
        assert_eq!(e.to_string(), "--oauth-token-url needs --oauth-scope");
        let e = spec("auth_user = \"a\"\noauth_token_env = \"T\"\nauth_password_env = \"P\"\n")
            .validate(None)
            .unwrap_err();
        assert!(matches!(e, SpecError::Exclusive { .. }), "{e}");
        let e = spec("auth_user = \"a\"\nauth_mech = \"xoauth2\"\nauth_password_env = \"P\"\n")
            .validate(None)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--auth-mech needs --oauth-token-env"),
            "{e}"
        );
        let e = spec("auth_user = \"a\"\nauth_mech = \"plain\"\noauth_token_env = \"T\"\n")
            .validate(None)
            .unwrap_err();
        assert!(matches!(e, SpecError::Exclusive { .. }), "{e}");
        let e = spec("auth_user = \"a\"\noauth_client_id = \"x\"\n")
            .validate(None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--oauth-client-id needs --oauth-tenant or --oauth-token-url"
        );
    }

    #[test]
    fn endpoints_are_https_or_this_machine() {
        assert!(check_url("https://login.microsoftonline.com/contoso/oauth2/v2.0/token").is_ok());
        assert!(check_url("http://127.0.0.1:14610/api/oidc/token").is_ok());
        assert!(check_url("http://[::1]:80/t").is_ok());
        assert!(check_url("http://localhost/t").is_ok());
        assert!(check_url("http://auth.contoso.test/t").is_err());
        assert!(check_url("https://user:pw@a.test/t").is_err());
        assert!(check_url("ftp://a.test/").is_err());
        assert!(check_url("https://a.test/\r\nx").is_err());
        assert!(check_tenant("contoso.onmicrosoft.com").is_ok());
        assert!(check_tenant("contoso/../x").is_err());
    }
}
