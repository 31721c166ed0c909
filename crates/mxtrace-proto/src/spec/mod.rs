//! The session settings, written once: `SessionSpec` is the list of everything that says how
//! to talk to a server or walk a domain, each optional so that front ends can layer them (the
//! command line, a scenario file's `[defaults]` and `[[hop]]`, and any table of the same keys),
//! merged by `SessionSpec::or`; the engine resolves a spec, with the defaults below, into the
//! options of one probe.
//! Errors name the setting (`Field`); the front end says where it was written.

mod check;
mod de;
mod oauth;
mod options;
mod words;

pub use check::{
    check_address, check_domain, parse_duration, parse_resolver, parse_scenario, parse_target,
    parse_threshold, path_context, DurationError, TargetError, ThresholdError, UnknownScenario,
    ValueError,
};
pub use oauth::{check_url, ENTRA_IMAP_DELEGATED_SCOPE, ENTRA_SCOPE, ENTRA_SMTP_DELEGATED_SCOPE};
pub use options::{AuthMech, Family, OAuthGrant, StartTls, UnknownName, VerifyMode};
pub use words::{reword, unknown_settings, RunSetting, Suggestion, Worded};

use crate::secret::SecretError;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Time allowed for the TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for each stage after connect (a reply, the TLS handshake).
pub const DEFAULT_STAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for one DNS request.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// SMTP (RFC 5321 4.5.4.2 relay port) and SMTPS (RFC 8314 7.3 submissions port).
pub const SMTP_PORT: u16 = 25;
pub const SMTPS_PORT: u16 = 465;

/// Declares `SessionSpec` (one `Option` per setting), `Field` (their names) and the merge.
macro_rules! session_spec {
    ($($(#[$m:meta])* $key:ident: $t:ty => $field:ident, $flag:literal;)*) => {
        /// Session settings, each optional: one layer. Deserializes from a TOML table of the
        /// same keys (unknown keys are errors).
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct SessionSpec {
            $($(#[$m])* #[serde(default)] pub $key: Option<$t>,)*
        }

        /// A session setting, as errors name it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Field {
            $($field,)*
        }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$field,)*];

            /// The key in a scenario file (and the field of `SessionSpec`).
            pub fn key(self) -> &'static str {
                match self {
                    $(Field::$field => stringify!($key),)*
                }
            }

            /// The command-line flag.
            pub fn flag(self) -> &'static str {
                match self {
                    $(Field::$field => $flag,)*
                }
            }
        }

        impl SessionSpec {
            /// Self's values, else `under`'s: the one place layers merge.
            pub fn or(self, under: &SessionSpec) -> SessionSpec {
                let under = under.clone();
                let pair = (self.tls_client_cert.clone(), self.tls_client_key.clone());
                let from_self = pair.0.is_some() || pair.1.is_some();
                let merged = SessionSpec {
                    $($key: self.$key.or(under.$key),)*
                };
                // The client certificate and its key come as a pair from one layer.
                if from_self {
                    SessionSpec {
                        tls_client_cert: pair.0,
                        tls_client_key: pair.1,
                        ..merged
                    }
                } else {
                    merged
                }
            }

            /// The settings this layer sets.
            pub fn fields(&self) -> Vec<Field> {
                let mut out = Vec::new();
                $(if self.$key.is_some() { out.push(Field::$field); })*
                out
            }
        }
    };
}

session_spec! {
    /// SMTP port (default 25, 465 with implicit TLS).
    #[serde(deserialize_with = "de::port")]
    port: u16 => Port, "--port";
    #[serde(deserialize_with = "de::starttls")]
    starttls: StartTls => StartTls, "--starttls";
    tls_implicit: bool => TlsImplicit, "--tls-implicit";
    #[serde(deserialize_with = "de::tls_verify")]
    tls_verify: VerifyMode => TlsVerify, "--tls-verify";
    tls_name: String => TlsName, "--tls-name";
    tls_ca_file: PathBuf => TlsCaFile, "--tls-ca-file";
    tls_client_cert: PathBuf => TlsClientCert, "--tls-client-cert";
    tls_client_key: PathBuf => TlsClientKey, "--tls-client-key";
    tls_classic_groups: bool => TlsClassicGroups, "--tls-classic-groups";
    ehlo: String => Ehlo, "--ehlo";
    from: String => From, "--from";
    rcpt: Vec<String> => Rcpt, "--rcpt";
    /// Send a test message (DATA); command line only.
    data: bool => Data, "--data";
    header: Vec<String> => Header, "--header";
    pipelining: bool => Pipelining, "--no-pipelining";
    auth_user: String => AuthUser, "--auth-user";
    auth_password_env: String => AuthPasswordEnv, "--auth-password-env";
    auth_password_file: PathBuf => AuthPasswordFile, "--auth-password-file";
    #[serde(deserialize_with = "de::auth_mech")]
    auth_mech: AuthMech => AuthMech, "--auth-mech";
    auth_plaintext: bool => AuthPlaintext, "--auth-plaintext";
    /// An OAuth 2.0 access token from this environment variable.
    oauth_token_env: String => OAuthTokenEnv, "--oauth-token-env";
    /// An OAuth 2.0 access token from the first line of this file.
    oauth_token_file: PathBuf => OAuthTokenFile, "--oauth-token-file";
    #[serde(deserialize_with = "de::oauth_grant")]
    oauth_grant: OAuthGrant => OAuthGrant, "--oauth-grant";
    /// Microsoft Entra ID tenant (ID or domain): the token endpoints under login.microsoftonline.com.
    oauth_tenant: String => OAuthTenant, "--oauth-tenant";
    /// Any other authorization server's token endpoint.
    oauth_token_url: String => OAuthTokenUrl, "--oauth-token-url";
    /// Its device authorization endpoint (RFC 8628).
    oauth_device_url: String => OAuthDeviceUrl, "--oauth-device-url";
    oauth_client_id: String => OAuthClientId, "--oauth-client-id";
    oauth_client_secret_env: String => OAuthClientSecretEnv, "--oauth-client-secret-env";
    oauth_client_secret_file: PathBuf => OAuthClientSecretFile, "--oauth-client-secret-file";
    /// A certificate (PEM) whose key signs the client assertion (RFC 7523).
    oauth_client_cert: PathBuf => OAuthClientCert, "--oauth-client-cert";
    oauth_client_key: PathBuf => OAuthClientKey, "--oauth-client-key";
    oauth_scope: String => OAuthScope, "--oauth-scope";
    #[serde(deserialize_with = "de::duration")]
    connect_timeout: Duration => ConnectTimeout, "--connect-timeout";
    #[serde(deserialize_with = "de::duration")]
    stage_timeout: Duration => StageTimeout, "--stage-timeout";
    #[serde(deserialize_with = "de::duration")]
    dns_timeout: Duration => DnsTimeout, "--dns-timeout";
    resolver: String => Resolver, "--resolver";
    #[serde(deserialize_with = "de::source")]
    source: IpAddr => Source, "--source";
    #[serde(deserialize_with = "de::ip_version")]
    ip_version: Family => IpVersion, "-4/-6";
    all: bool => All, "--all";
    #[serde(deserialize_with = "de::max_mx")]
    max_mx: u16 => MaxMx, "--max-mx";
    /// The outside address of `run`'s open-relay check (scenario files only).
    relay_test_rcpt: String => RelayTestRcpt, "relay_test_rcpt";
}

/// Settings a scenario file may not set: `run` never sends DATA, and passwords come only from
/// an environment variable there.
pub const COMMAND_LINE_ONLY: &[Field] = &[
    Field::Data,
    Field::Header,
    Field::AuthPasswordFile,
    Field::OAuthTokenFile,
    Field::OAuthClientSecretFile,
    Field::AuthMech,
    Field::AuthPlaintext,
];

/// How an error names a setting: the flag (command line) or the key (files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    Flag,
    Key,
}

impl Field {
    pub fn name(self, naming: Naming) -> &'static str {
        match naming {
            Naming::Flag => self.flag(),
            Naming::Key => self.key(),
        }
    }
}

/// A session setting that cannot be used as written. `Display` words it for the command line;
/// `describe` for a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    Value {
        field: Field,
        #[source]
        source: ValueError,
    },
    DataWithoutRcpt,
    SourceFamily {
        addr: IpAddr,
    },
    TargetFamily {
        ip: IpAddr,
    },
    Exclusive {
        field: Field,
        other: Field,
    },
    Together {
        field: Field,
        other: Field,
    },
    Password(#[from] SecretError),
    Target(#[from] TargetError),
    Tenant(#[source] ValueError),
    Needs {
        field: Field,
        needs: &'static [Field],
    },
}

/// `--a`, `--a or --b`, `--a, --b or --c`.
fn any_of(fields: &[Field], naming: Naming) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.name(naming)).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(Naming::Flag))
    }
}

impl SpecError {
    /// The setting the error is about, for a front end that points at where it was written.
    pub fn field(&self) -> Option<Field> {
        match self {
            SpecError::Value { field, .. }
            | SpecError::Exclusive { field, .. }
            | SpecError::Together { field, .. }
            | SpecError::Needs { field, .. } => Some(*field),
            SpecError::DataWithoutRcpt => Some(Field::Data),
            SpecError::SourceFamily { .. } => Some(Field::Source),
            SpecError::TargetFamily { .. } => Some(Field::IpVersion),
            SpecError::Password(_) => Some(Field::AuthUser),
            SpecError::Target(_) | SpecError::Tenant(_) => None,
        }
    }

    /// The message, naming settings as the front end does.
    pub fn describe(&self, naming: Naming) -> String {
        let name = |f: Field| f.name(naming);
        match self {
            SpecError::Value { field, source } => {
                let name = name(*field);
                match source {
                    ValueError::ControlCharacters => format!("{name}: {source}"),
                    _ => format!("{name} {source}"),
                }
            }
            SpecError::DataWithoutRcpt => format!(
                "{} needs at least one {}",
                name(Field::Data),
                name(Field::Rcpt)
            ),
            SpecError::SourceFamily { addr } => format!(
                "{} {addr} does not match {}",
                name(Field::Source),
                name(Field::IpVersion)
            ),
            SpecError::TargetFamily { ip } => {
                format!("{ip} does not match {}", name(Field::IpVersion))
            }
            SpecError::Exclusive { field, other } => {
                format!("{} and {} exclude each other", name(*field), name(*other))
            }
            SpecError::Together { field, other } => {
                format!("{} and {} go together", name(*field), name(*other))
            }
            SpecError::Needs { field, needs } => {
                format!("{} needs {}", name(*field), any_of(needs, naming))
            }
            SpecError::Password(SecretError::NoTerminal) => format!(
                "no password given: use {} or {} (no terminal to prompt on)",
                Field::AuthPasswordEnv.set_to("VAR").word(naming),
                Field::AuthPasswordFile.set_to("FILE").word(naming)
            ),
            SpecError::Password(e) => e.to_string(),
            SpecError::Target(e) => e.to_string(),
            SpecError::Tenant(e) => format!("{} {e}", RunSetting::Tenant.name(naming)),
        }
    }
}

fn value(field: Field, r: Result<(), ValueError>) -> Result<(), SpecError> {
    r.map_err(|source| SpecError::Value { field, source })
}

impl SessionSpec {
    /// Every setting that names a file, with its field: the one list the front ends that read
    /// a configuration file resolve against the file's folder.
    pub fn files_mut(&mut self) -> [(Field, &mut Option<PathBuf>); 8] {
        [
            (Field::TlsCaFile, &mut self.tls_ca_file),
            (Field::TlsClientCert, &mut self.tls_client_cert),
            (Field::TlsClientKey, &mut self.tls_client_key),
            (Field::AuthPasswordFile, &mut self.auth_password_file),
            (Field::OAuthTokenFile, &mut self.oauth_token_file),
            (
                Field::OAuthClientSecretFile,
                &mut self.oauth_client_secret_file,
            ),
            (Field::OAuthClientCert, &mut self.oauth_client_cert),
            (Field::OAuthClientKey, &mut self.oauth_client_key),
        ]
    }

    /// The port when none is set: 25, or 465 with implicit TLS.
    pub fn default_port(&self) -> u16 {
        if self.tls_implicit == Some(true) {
            SMTPS_PORT
        } else {
            SMTP_PORT
        }
    }

    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or_else(|| self.default_port())
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    pub fn stage_timeout(&self) -> Duration {
        self.stage_timeout.unwrap_or(DEFAULT_STAGE_TIMEOUT)
    }

    pub fn dns_timeout(&self) -> Duration {
        self.dns_timeout.unwrap_or(DEFAULT_DNS_TIMEOUT)
    }

    /// Checks every setting without reading the password; `host` (when known) is checked
    /// against the address family.
    pub fn validate(&self, host: Option<&str>) -> Result<(), SpecError> {
        self.validate_smtp()?;
        self.validate_tls()?;
        self.validate_network(host)?;
        self.validate_oauth()?;
        if let Some(user) = &self.auth_user {
            if user.bytes().any(|b| b.is_ascii_control()) {
                value(Field::AuthUser, Err(ValueError::ControlCharacters))?;
            }
        }
        if let Some(r) = &self.resolver {
            value(Field::Resolver, parse_resolver(r).map(|_| ()))?;
        }
        if let Some(r) = &self.relay_test_rcpt {
            value(Field::RelayTestRcpt, check_address(r, false, false))?;
        }
        Ok(())
    }

    fn validate_smtp(&self) -> Result<(), SpecError> {
        if let Some(f) = &self.from {
            value(Field::From, check_address(f, true, false))?;
        }
        for r in self.rcpt.iter().flatten() {
            value(Field::Rcpt, check_address(r, false, true))?;
        }
        for h in self.header.iter().flatten() {
            value(Field::Header, check::check_header(h))?;
        }
        if let Some(e) = &self.ehlo {
            if e.is_empty() || e.len() > 255 || e.bytes().any(|b| b.is_ascii_control() || b == b' ')
            {
                value(Field::Ehlo, Err(ValueError::Ehlo { value: e.clone() }))?;
            }
        }
        if self.data == Some(true) && self.rcpt.as_ref().is_none_or(Vec::is_empty) {
            return Err(SpecError::DataWithoutRcpt);
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), SpecError> {
        if let Some(n) = &self.tls_name {
            if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
                value(
                    Field::TlsName,
                    Err(ValueError::TlsName { value: n.clone() }),
                )?;
            }
        }
        if self.tls_implicit == Some(true) && self.starttls.is_some() {
            return Err(SpecError::Exclusive {
                field: Field::StartTls,
                other: Field::TlsImplicit,
            });
        }
        if self.tls_client_cert.is_some() != self.tls_client_key.is_some() {
            let field = match self.tls_client_cert {
                Some(_) => Field::TlsClientCert,
                None => Field::TlsClientKey,
            };
            return Err(SpecError::Together {
                field,
                other: Field::TlsClientKey,
            });
        }
        Ok(())
    }

    fn validate_network(&self, host: Option<&str>) -> Result<(), SpecError> {
        let family = self.ip_version;
        if let (Some(src), Some(f)) = (self.source, family) {
            if src.is_ipv4() != (f == Family::V4) {
                return Err(SpecError::SourceFamily { addr: src });
            }
        }
        if let Some(ip) = host.and_then(|h| h.parse::<IpAddr>().ok()) {
            let mismatch = match family {
                Some(Family::V4) => !ip.is_ipv4(),
                Some(Family::V6) => !ip.is_ipv6(),
                None => false,
            };
            if mismatch {
                return Err(SpecError::TargetFamily { ip });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_merge_top_first_and_the_client_pair_stays_together() {
        let cli = SessionSpec {
            port: Some(2525),
            ..SessionSpec::default()
        };
        let hop = SessionSpec {
            port: Some(25),
            ehlo: Some("hop.example".into()),
            tls_client_key: Some("hop.key".into()),
            ..SessionSpec::default()
        };
        let defaults = SessionSpec {
            ehlo: Some("d.example".into()),
            from: Some("a@b.example".into()),
            tls_client_cert: Some("d.pem".into()),
            tls_client_key: Some("d.key".into()),
            ..SessionSpec::default()
        };
        let s = cli.or(&hop.or(&defaults));
        assert_eq!(s.port, Some(2525));
        assert_eq!(s.ehlo.as_deref(), Some("hop.example"));
        assert_eq!(s.from.as_deref(), Some("a@b.example"));
        assert_eq!(s.tls_client_cert, None, "the pair comes from the hop");
        assert!(matches!(s.validate(None), Err(SpecError::Together { .. })));
    }

    #[test]
    fn errors_name_the_flag_or_the_key() {
        let s = SessionSpec {
            rcpt: Some(vec!["nobody".into()]),
            ..SessionSpec::default()
        };
        let e = s.validate(None).unwrap_err();
        assert_eq!(e.field(), Some(Field::Rcpt));
        assert_eq!(
            e.to_string(),
            "--rcpt \"nobody\": not a valid mail address (expected local@domain)"
        );
        assert!(e.describe(Naming::Key).starts_with("rcpt \"nobody\""));
        let s = SessionSpec {
            auth_user: Some("a\u{7}".into()),
            ..SessionSpec::default()
        };
        assert_eq!(
            s.validate(None).unwrap_err().to_string(),
            "--auth-user: control characters"
        );
    }

    #[test]
    fn every_error_names_settings_as_the_front_end_writes_them() {
        let cases = [
            (
                SpecError::DataWithoutRcpt,
                "--data needs at least one --rcpt",
                "data needs at least one rcpt",
            ),
            (
                SpecError::SourceFamily {
                    addr: "192.0.2.1".parse().unwrap(),
                },
                "--source 192.0.2.1 does not match -4/-6",
                "source 192.0.2.1 does not match ip_version",
            ),
            (
                SpecError::Exclusive {
                    field: Field::StartTls,
                    other: Field::TlsImplicit,
                },
                "--starttls and --tls-implicit exclude each other",
                "starttls and tls_implicit exclude each other",
            ),
            (
                SpecError::Password(SecretError::NoTerminal),
                "no password given: use --auth-password-env VAR or --auth-password-file FILE (no \
                 terminal to prompt on)",
                "no password given: use auth_password_env = \"VAR\" or auth_password_file = \
                 \"FILE\" (no terminal to prompt on)",
            ),
            (
                SpecError::Tenant(ValueError::Tenant { value: "x y".into() }),
                "--tenant \"x y\": expected a tenant name such as contoso, contoso.onmicrosoft.com \
                 or contoso.mail.onmicrosoft.com",
                "tenant \"x y\": expected a tenant name such as contoso, contoso.onmicrosoft.com \
                 or contoso.mail.onmicrosoft.com",
            ),
        ];
        for (e, flag, key) in cases {
            assert_eq!(e.to_string(), flag);
            assert_eq!(e.describe(Naming::Flag), flag);
            assert_eq!(e.describe(Naming::Key), key);
        }
    }

    #[test]
    fn a_toml_table_deserializes_into_a_layer() {
        let s: SessionSpec = toml::from_str(
            "port = 2525\nstarttls = \"require\"\nconnect_timeout = \"2s\"\nip_version = 6\n",
        )
        .unwrap();
        assert_eq!(s.port, Some(2525));
        assert_eq!(s.starttls, Some(StartTls::Require));
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(s.ip_version, Some(Family::V6));
        let e = toml::from_str::<SessionSpec>("port = 0\n").unwrap_err();
        assert!(e.to_string().contains("port 0: must be 1-65535"), "{e}");
        assert!(toml::from_str::<SessionSpec>("bogus = 1\n").is_err());
        for f in Field::ALL {
            assert!(!f.key().is_empty() && !f.flag().is_empty());
        }
    }
}
