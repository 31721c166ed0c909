//! One SMTP endpoint from connect to QUIT: every stage timed, bounded by its own deadline,
//! recorded with what was sent (redacted) and what came back, and explained.
//!
//! A failed stage is data: the probe always returns a report; only a configuration the user
//! got wrong (a CA file that does not parse) is an error.
//!
//! Layout: each stage lives in its own file (`connect`, `greeting`, `ehlo`, `starttls` with
//! the TLS handshake, `auth`, `envelope`, `data`, `quit`) and drives the socket through
//! `session::ProbeSession`. What happened is written down by `transcript::Transcript`, which
//! judges every reply against one table of expected codes (`expect`). When the session is
//! over, `verdict` explains every stage and decides whether the probe passed.

mod auth;
mod connect;
mod data;
mod ehlo;
mod envelope;
mod expect;
mod greeting;
mod quit;
mod session;
mod starttls;
mod transcript;
mod verdict;

use crate::diagnose::PathContext;
use crate::model::{ErrorKind, ProbeReport, Stage};
use crate::secret::Secret;
use crate::tls::{self, TlsConfigError, TlsOptions};
use session::ProbeSession;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMech {
    Plain,
    Login,
}

#[derive(Debug, Clone)]
pub struct AuthOptions {
    pub user: String,
    pub password: Secret,
    /// None: PLAIN when offered, else LOGIN.
    pub mech: Option<AuthMech>,
    /// Send credentials without TLS (refused by default).
    pub allow_plaintext: bool,
}

/// Everything one probe needs. Built by the CLI (`probe`) or by `trace` for each address.
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
    fn tls_mode(&self) -> &'static str {
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

    fn sni_name(&self) -> Option<String> {
        match &self.tls_name {
            Some(n) => Some(n.clone()),
            None if self.host.parse::<IpAddr>().is_err() => {
                Some(self.host.trim_end_matches('.').to_string())
            }
            None => None,
        }
    }
}

/// Runs one probe. Network failures are in the report; only a bad TLS configuration (files the
/// user named) is an error.
pub async fn probe(opts: &ProbeOptions) -> Result<ProbeReport, TlsConfigError> {
    let tls_config = if opts.implicit_tls || opts.starttls != StartTls::Never {
        Some(tls::client_config(&opts.tls)?)
    } else {
        None
    };
    let mut s = ProbeSession::new(opts, tls_config);
    s.run().await;
    Ok(s.finish())
}

/// The report of a probe that never connected because the caller could not look up the host's
/// addresses with its own resolver (`run` with a `resolver`): a connect stage of kind `dns`.
pub fn unresolved(opts: &ProbeOptions, message: String) -> ProbeReport {
    let mut s = ProbeSession::new(opts, None);
    s.fail_without_reply(Stage::Connect, Vec::new(), ErrorKind::Dns, message);
    s.finish()
}
