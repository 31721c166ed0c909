//! A round trip written in TOML (here, beside the scenario files' other tables, so the
//! engine's `roundtrip` module needs nothing of this one): an exporter's `[roundtrips.NAME]` and a scenario file hop's
//! `[hop.roundtrip]` read the same keys. The session settings (TLS, AUTH, EHLO...) are the
//! table's own setting keys, taken out first as for a module; the rest is here. Passwords
//! come from a variable or a file, never the file itself, and are read at each run.

use super::problem::FileProblem;
use super::{Dur, FileError, Locator, ScenarioLetter};
use crate::job::{Job, Target};
use crate::roundtrip::{
    prepare, MailboxOptions, RoundtripOptions, DEFAULT_IMAP_TIMEOUT, DEFAULT_SLOW_HOP,
    DEFAULT_WITHIN,
};
use mxtrace_proto::mailbox::MailboxUrl;
use mxtrace_proto::model::{PathContext, Scenario};
use mxtrace_proto::secret::{Secret, SecretError};
use mxtrace_proto::spec::Naming;
use mxtrace_proto::spec::{Field, SessionSpec, SpecError, TargetError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The session settings a round trip table may write: all but the recipients (it has one,
/// `rcpt`), DATA (always) and the open-relay address.
pub fn session_keys(f: Field) -> bool {
    !matches!(f, Field::Rcpt | Field::Data | Field::RelayTestRcpt)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoundtrip {
    rcpt: Spanned<String>,
    via: Option<Spanned<String>>,
    mailbox: Spanned<String>,
    mailbox_password_env: Option<String>,
    mailbox_password_file: Option<PathBuf>,
    mailbox_ca_file: Option<PathBuf>,
    mailbox_tls_name: Option<String>,
    mailbox_timeout: Option<Dur>,
    ndr_mailbox: Option<Spanned<String>>,
    ndr_mailbox_password_env: Option<String>,
    ndr_mailbox_password_file: Option<PathBuf>,
    within: Option<Dur>,
    keep: Option<bool>,
    slow_hop: Option<Dur>,
    scenario: Option<ScenarioLetter>,
    /// The exporter's schedule; a scenario file refuses it.
    pub(crate) interval: Option<Spanned<Dur>>,
}

/// Where a password comes from.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    Env(String),
    File(PathBuf),
}

impl PasswordSource {
    pub fn read(&self) -> Result<Secret, SecretError> {
        match self {
            PasswordSource::Env(v) => Secret::from_env(v),
            PasswordSource::File(f) => Secret::from_file(f),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MailboxSpec {
    pub url: MailboxUrl,
    pub password: PasswordSource,
}

/// A checked round trip: everything but the passwords and the probe id, which each run reads
/// and draws anew.
#[derive(Debug, Clone)]
pub struct RoundtripSpec {
    pub rcpt: String,
    pub via: Option<String>,
    pub mailbox: MailboxSpec,
    pub ndr_mailbox: Option<MailboxSpec>,
    pub ca_file: Option<PathBuf>,
    pub tls_name: Option<String>,
    pub imap_timeout: Duration,
    pub within: Duration,
    pub keep: bool,
    pub slow_hop: Duration,
    pub scenario: Option<Scenario>,
    /// The sending session's settings (the table's setting keys).
    pub session: SessionSpec,
}

/// Why a run could not start: a password that cannot be read, a setting out of place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunSetupError {
    #[error("mailbox password: {0}")]
    Password(#[from] SecretError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Target(#[from] TargetError),
}

impl RoundtripSpec {
    /// The options of one run: a fresh id, the passwords read now.
    pub fn options(&self) -> Result<RoundtripOptions, RunSetupError> {
        let probe_id = crate::probe::new_probe_id();
        let mut session = self.session.clone();
        session.rcpt = Some(vec![self.rcpt.clone()]);
        session.data = Some(true);
        let target = match &self.via {
            Some(v) => Target::probe(v, session.default_port())?,
            None => Target::trace(self.rcpt.rsplit_once('@').map_or("", |(_, d)| d))?,
        };
        // A round trip's settings come from a file (an exporter's, a scenario's): keys.
        let mut send = Job::new(&target, &session, PathContext::default(), None, Naming::Key)?;
        prepare(&mut send, &probe_id);
        let mailbox = |m: &MailboxSpec| -> Result<MailboxOptions, RunSetupError> {
            Ok(MailboxOptions::with_password(
                m.url.clone(),
                m.password.read()?,
                self.ca_file.clone(),
                self.tls_name.clone(),
                self.imap_timeout,
            ))
        };
        Ok(RoundtripOptions {
            send,
            rcpt: self.rcpt.clone(),
            from: session.from.clone(),
            probe_id,
            mailbox: mailbox(&self.mailbox)?,
            ndr_mailbox: self.ndr_mailbox.as_ref().map(mailbox).transpose()?,
            within: self.within,
            keep: self.keep,
            expected_scenario: self.scenario,
            slow_hop: self.slow_hop,
        })
    }
}

/// Checks a round trip table; `base` resolves relative file names; `session` is its layer.
pub(crate) fn read(
    at: &Locator<'_>,
    base: &Path,
    raw: &RawRoundtrip,
    session: SessionSpec,
) -> Result<RoundtripSpec, FileError> {
    let rcpt = raw.rcpt.get_ref().trim().to_string();
    if !rcpt.contains('@') {
        return Err(at.error(&raw.rcpt.span(), FileProblem::RoundtripRcpt(rcpt)));
    }
    let mailbox = mailbox_spec(
        at,
        base,
        &raw.mailbox,
        "mailbox",
        raw.mailbox_password_env.as_ref(),
        raw.mailbox_password_file.as_ref(),
    )?;
    let ndr_mailbox = raw
        .ndr_mailbox
        .as_ref()
        .map(|m| {
            let env = raw.ndr_mailbox_password_env.as_ref();
            let file = raw.ndr_mailbox_password_file.as_ref();
            mailbox_spec(at, base, m, "ndr_mailbox", env, file)
        })
        .transpose()?;
    let spec = RoundtripSpec {
        rcpt,
        via: raw.via.as_ref().map(|v| v.get_ref().clone()),
        mailbox,
        ndr_mailbox,
        ca_file: raw.mailbox_ca_file.as_ref().map(|p| base.join(p)),
        tls_name: raw.mailbox_tls_name.clone(),
        imap_timeout: raw.mailbox_timeout.map_or(DEFAULT_IMAP_TIMEOUT, |d| d.0),
        within: raw.within.map_or(DEFAULT_WITHIN, |d| d.0),
        keep: raw.keep.unwrap_or(false),
        slow_hop: raw.slow_hop.map_or(DEFAULT_SLOW_HOP, |d| d.0),
        scenario: raw.scenario.map(|s| s.0),
        session,
    };
    // Everything a run checks, once now (the passwords read and dropped).
    spec.options()
        .map_err(|e| at.error(&raw.rcpt.span(), FileProblem::RoundtripSetup(e)))?;
    Ok(spec)
}

fn mailbox_spec(
    at: &Locator<'_>,
    base: &Path,
    url: &Spanned<String>,
    key: &'static str,
    env: Option<&String>,
    file: Option<&PathBuf>,
) -> Result<MailboxSpec, FileError> {
    let parsed = MailboxUrl::parse(url.get_ref()).map_err(|source| {
        let value = url.get_ref().clone();
        at.error(&url.span(), FileProblem::MailboxUrl { key, value, source })
    })?;
    let password = match (env, file) {
        (Some(v), None) => PasswordSource::Env(v.clone()),
        (None, Some(f)) => PasswordSource::File(base.join(f)),
        _ => return Err(at.error(&url.span(), FileProblem::MailboxPassword { key })),
    };
    Ok(MailboxSpec {
        url: parsed,
        password,
    })
}
