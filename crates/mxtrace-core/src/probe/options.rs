//! The resolved options of one probe: a `SessionSpec` (the settings as written, layered)
//! turned into what the probe runs with, defaults filled in and the password read.

use crate::limits::Limits;
use crate::oauth::OAuthOptions;
use mxtrace_net::tls::{TlsOptions, VerifyMode};
use mxtrace_proto::model::PathContext;
use mxtrace_proto::secret::Secret;
use mxtrace_proto::spec::{AuthMech, Family, Naming, SessionSpec, SpecError, StartTls};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AuthOptions {
    pub user: String,
    pub credential: Credential,
    /// None: with a password PLAIN when offered, else LOGIN; with a token XOAUTH2 when
    /// offered, else OAUTHBEARER.
    pub mech: Option<AuthMech>,
    /// Send credentials without TLS (refused by default).
    pub allow_plaintext: bool,
}

/// What AUTH proves the user with.
#[derive(Debug, Clone)]
pub enum Credential {
    Password(Secret),
    /// An OAuth 2.0 access token, had before the session starts (`oauth::token`).
    OAuth(OAuthOptions),
}

/// Everything one probe needs: a `SessionSpec` resolved for one host (or built by `trace` for
/// each address).
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The host as given: a name or an IP literal.
    pub host: String,
    pub port: u16,
    /// Addresses to try in order; None resolves `host` with the system resolver.
    pub addrs: Option<Vec<IpAddr>>,
    pub starttls: StartTls,
    pub implicit_tls: bool,
    pub tls: TlsOptions,
    /// Name sent as SNI and verified against the certificate; defaults to `host` when that is
    /// a name.
    pub tls_name: Option<String>,
    /// EHLO argument; None: the FQDN of this machine, or the address literal of the local end.
    pub ehlo: Option<String>,
    /// Reverse-path; None with recipients: the null reverse-path `<>`.
    pub from: Option<String>,
    pub rcpts: Vec<String>,
    pub auth: Option<AuthOptions>,
    pub data: bool,
    /// Extra header lines for `--data`, already validated (`Name: value`, no CR/LF).
    pub headers: Vec<String>,
    pub pipelining: bool,
    pub connect_timeout: Duration,
    pub stage_timeout: Duration,
    pub source: Option<IpAddr>,
    pub family: Option<Family>,
    pub ctx: PathContext,
    /// A sweep's per-destination session limits: the connect stage waits for a slot to the
    /// address before connecting, and holds it until the session ends. None: no limit.
    pub limits: Option<Arc<Limits>>,
    /// The id the `--data` message carries (`roundtrip` chooses it, to find the message
    /// again); None: a fresh one.
    pub probe_id: Option<String>,
    /// How the report's advice names settings: as flags (the command line, by default) or as
    /// keys (a scenario file, an exporter module).
    pub naming: Naming,
    /// TLS configurations shared with other probes of the same settings (a sweep's). None:
    /// this probe builds its own.
    pub tls_cache: Option<Arc<mxtrace_net::tls::ConfigCache>>,
}

impl ProbeOptions {
    /// Validates the settings, reads the password, and resolves them, defaults filled in, into
    /// the options of one probe of `host:port`.
    pub fn from_spec(
        spec: &SessionSpec,
        host: String,
        port: u16,
    ) -> Result<ProbeOptions, SpecError> {
        spec.validate(Some(&host))?;
        let implicit = spec.tls_implicit.unwrap_or(false);
        Ok(ProbeOptions {
            host,
            port,
            addrs: None,
            starttls: match (implicit, spec.starttls) {
                (true, _) => StartTls::Never,
                (false, s) => s.unwrap_or(StartTls::Auto),
            },
            implicit_tls: implicit,
            tls: TlsOptions {
                verify: spec.tls_verify.unwrap_or(VerifyMode::Report),
                ca_file: spec.tls_ca_file.clone(),
                client_cert: spec.tls_client_cert.clone(),
                client_key: spec.tls_client_key.clone(),
                classic_groups: spec.tls_classic_groups.unwrap_or(false),
                dane: Vec::new(),
            },
            tls_name: spec.tls_name.clone(),
            ehlo: spec.ehlo.clone(),
            from: spec.from.clone(),
            rcpts: spec.rcpt.clone().unwrap_or_default(),
            auth: auth(spec)?,
            data: spec.data.unwrap_or(false),
            headers: spec.header.clone().unwrap_or_default(),
            pipelining: spec.pipelining.unwrap_or(true),
            connect_timeout: spec.connect_timeout(),
            stage_timeout: spec.stage_timeout(),
            source: spec.source,
            family: spec.ip_version,
            ctx: PathContext::default(),
            limits: None,
            probe_id: None,
            naming: Naming::Flag,
            tls_cache: None,
        })
    }

    pub(crate) fn tls_mode(&self) -> &'static str {
        if self.implicit_tls {
            "implicit"
        } else {
            match self.starttls {
                StartTls::Auto => "starttls-auto",
                StartTls::Require => "starttls-require",
                StartTls::Never => "none",
            }
        }
    }

    pub(crate) fn sni_name(&self) -> Option<String> {
        match &self.tls_name {
            Some(n) => Some(n.clone()),
            None if self.host.parse::<IpAddr>().is_err() => {
                Some(self.host.trim_end_matches('.').to_string())
            }
            None => None,
        }
    }
}

/// The credential for `auth_user`: an OAuth token source, else the password from the
/// variable, the file, or asked for on the terminal.
fn auth(spec: &SessionSpec) -> Result<Option<AuthOptions>, SpecError> {
    let Some(user) = &spec.auth_user else {
        return Ok(None);
    };
    let credential = match OAuthOptions::from_spec(spec)? {
        Some(o) => Credential::OAuth(o),
        None => Credential::Password(match (&spec.auth_password_env, &spec.auth_password_file) {
            (Some(var), _) => Secret::from_env(var),
            (None, Some(file)) => Secret::from_file(file),
            (None, None) => Secret::prompt(user),
        }?),
    };
    Ok(Some(AuthOptions {
        user: user.clone(),
        credential,
        mech: spec.auth_mech,
        allow_plaintext: spec.auth_plaintext.unwrap_or(false),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxtrace_proto::spec::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_STAGE_TIMEOUT};

    #[test]
    fn defaults_and_resolution() {
        let o = ProbeOptions::from_spec(&SessionSpec::default(), "mx.example".into(), 25).unwrap();
        assert_eq!(o.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(o.stage_timeout, DEFAULT_STAGE_TIMEOUT);
        assert_eq!(o.starttls, StartTls::Auto);
        assert!(o.pipelining);
        let implicit = SessionSpec {
            tls_implicit: Some(true),
            ..SessionSpec::default()
        };
        assert_eq!(implicit.port_or_default(), 465);
    }
}
