//! The resolved options of one probe, and the setting values they are made of. Front ends
//! (command line, scenario files) write a `SessionSpec`; `SessionSpec::probe_options` turns it
//! into these.

use crate::diagnose::PathContext;
use crate::secret::Secret;
use crate::tls::{TlsOptions, VerifyMode};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    /// Use STARTTLS when the server offers it; go on unencrypted when it does not.
    Auto,
    /// Fail unless the session is encrypted before MAIL.
    Require,
    /// Never send STARTTLS.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMech {
    Plain,
    Login,
}

/// A name that is not one of a setting's values: the names it accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}")]
pub struct UnknownName {
    pub expected: &'static str,
}

/// Names as the command line and scenario files write them.
macro_rules! named {
    ($t:ty, $expected:literal, $($name:literal => $v:expr),+) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                $(if self == $v { return $name; })+
                ""
            }
        }
        impl FromStr for $t {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($name => Ok($v),)+
                    _ => Err(UnknownName { expected: $expected }),
                }
            }
        }
    };
}

named!(StartTls, "auto, require or never",
    "auto" => StartTls::Auto, "require" => StartTls::Require, "never" => StartTls::Never);
named!(VerifyMode, "report or strict",
    "report" => VerifyMode::Report, "strict" => VerifyMode::Strict);
named!(AuthMech, "plain or login", "plain" => AuthMech::Plain, "login" => AuthMech::Login);

#[derive(Debug, Clone)]
pub struct AuthOptions {
    pub user: String,
    pub password: Secret,
    /// None: PLAIN when offered, else LOGIN.
    pub mech: Option<AuthMech>,
    /// Send credentials without TLS (refused by default).
    pub allow_plaintext: bool,
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
}

impl ProbeOptions {
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
