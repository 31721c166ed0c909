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
mod options;
mod quit;
mod session;
mod starttls;
mod transcript;
mod verdict;
pub mod warm;

use mxtrace_net::tls::{self, TlsConfigError};
use mxtrace_proto::model::{ErrorKind, ProbeReport, Stage};
use session::ProbeSession;

pub use data::new_probe_id;
pub use mxtrace_proto::spec::{AuthMech, Family, StartTls};
pub use options::{AuthOptions, Credential, ProbeOptions};

/// Runs one probe. Network failures are in the report; only a bad TLS configuration (files the
/// user named) is an error.
pub async fn probe(opts: &ProbeOptions) -> Result<ProbeReport, TlsConfigError> {
    let tls_config = if opts.implicit_tls || opts.starttls != StartTls::Never {
        Some(match &opts.tls_cache {
            Some(cache) => cache.get(&opts.tls)?,
            None => tls::client_config(&opts.tls)?,
        })
    } else {
        None
    };
    if tls_config.is_some() {
        // Before the session's clock starts: the first random number costs AWS-LC its seeding.
        warm::warm_up();
    }
    // Before the session: a token endpoint (or a person approving a device code) is not the
    // SMTP server's time, and the server would drop an idle session meanwhile.
    let token = match opts.auth.as_ref().map(|a| &a.credential) {
        Some(Credential::OAuth(o)) => Some(crate::oauth::token(o).await),
        _ => None,
    };
    let mut s = ProbeSession::new(opts, tls_config);
    s.token = token;
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
