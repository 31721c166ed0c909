//! A round trip written in TOML (here, beside the scenario files' other tables, so the
//! engine's `roundtrip` module needs nothing of this one): an exporter's `[roundtrips.NAME]` and a scenario file hop's
//! `[hop.roundtrip]` read the same keys. The session settings (TLS, AUTH, EHLO...) are the
//! table's own setting keys, taken out first as for a module; the rest is here. Passwords and
//! tokens come from a variable or a file, never the file itself, and are read at each run.

use super::problem::FileProblem;
use super::{Dur, FileError, Locator, ScenarioLetter};
use crate::job::{Job, Target};
use crate::oauth::TokenSource;
use crate::roundtrip::{
    prepare, sending_session, MailboxLogin, MailboxOptions, RoundtripOptions, DEFAULT_IMAP_TIMEOUT,
    DEFAULT_SLOW_HOP, DEFAULT_WITHIN,
};
use mxtrace_proto::mailbox::MailboxUrl;
use mxtrace_proto::model::{PathContext, Scenario};
use mxtrace_proto::secret::{Secret, SecretError};
use mxtrace_proto::spec::{AuthMech, Field, Naming, SessionSpec, SpecError, TargetError};
use serde::Deserialize;
use std::ops::Range;
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
    pub(crate) mailbox_password_file: Option<Spanned<PathBuf>>,
    mailbox_oauth: Option<bool>,
    mailbox_oauth_token_env: Option<String>,
    pub(crate) mailbox_oauth_token_file: Option<Spanned<PathBuf>>,
    mailbox_auth_mech: Option<Spanned<String>>,
    mailbox_ca_file: Option<PathBuf>,
    mailbox_tls_name: Option<String>,
    mailbox_timeout: Option<Dur>,
    ndr_mailbox: Option<Spanned<String>>,
    ndr_mailbox_password_env: Option<String>,
    pub(crate) ndr_mailbox_password_file: Option<Spanned<PathBuf>>,
    ndr_mailbox_oauth: Option<bool>,
    ndr_mailbox_oauth_token_env: Option<String>,
    pub(crate) ndr_mailbox_oauth_token_file: Option<Spanned<PathBuf>>,
    pub(crate) within: Option<Spanned<Dur>>,
    keep: Option<bool>,
    slow_hop: Option<Dur>,
    scenario: Option<ScenarioLetter>,
    /// The exporter's schedule; a scenario file refuses it.
    pub(crate) interval: Option<Spanned<Dur>>,
}

impl RawRoundtrip {
    /// A mailbox takes its token from the table's OAuth settings.
    pub(crate) fn shares_oauth(&self) -> bool {
        self.mailbox_oauth == Some(true) || self.ndr_mailbox_oauth == Some(true)
    }
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

/// How a mailbox logs in, as written.
#[derive(Debug, Clone)]
pub enum LoginSpec {
    Password(PasswordSource),
    /// A token from a variable or a file.
    Token(TokenSource),
    /// A token from the table's OAuth settings (`mailbox_oauth = true`).
    Shared,
}

#[derive(Debug, Clone)]
pub struct MailboxSpec {
    pub url: MailboxUrl,
    pub login: LoginSpec,
    /// The SASL mechanism of a token.
    pub mech: Option<AuthMech>,
}

/// A checked round trip: everything but the passwords and the probe id, which each run reads
/// and draws anew.
#[derive(Debug, Clone)]
pub struct RoundtripSpec {
    pub rcpt: String,
    /// Where to send: `host[:port]`, or a domain whose MX is walked (a scenario file's domain
    /// hop); None: the recipient domain's MX.
    pub via: Option<Target>,
    pub mailbox: MailboxSpec,
    pub ndr_mailbox: Option<MailboxSpec>,
    pub ca_file: Option<PathBuf>,
    pub tls_name: Option<String>,
    pub imap_timeout: Duration,
    pub within: Duration,
    pub keep: bool,
    pub slow_hop: Duration,
    pub scenario: Option<Scenario>,
    /// The sending session's settings (the table's setting keys, over a hop's).
    pub session: SessionSpec,
}

/// Why a run could not start: a password or token that cannot be read, a setting out of place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunSetupError {
    #[error("mailbox password: {0}")]
    Password(#[from] SecretError),
    /// Named by its key: a round trip's settings come from a file.
    #[error("{}", .0.describe(Naming::Key))]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Target(#[from] TargetError),
    /// `mailbox_oauth = true` in a table without OAuth settings.
    #[error("{key}_oauth needs oauth_tenant or oauth_token_url (a grant), or oauth_token_env")]
    NoTokenSource { key: &'static str },
}

impl RoundtripSpec {
    /// True when a mailbox takes its token from the table's OAuth settings.
    fn shares_oauth(&self) -> bool {
        let shared = |m: &MailboxSpec| matches!(m.login, LoginSpec::Shared);
        shared(&self.mailbox) || self.ndr_mailbox.as_ref().is_some_and(shared)
    }

    /// The options of one run: a fresh id, the passwords read now (tokens when the mailbox is
    /// opened).
    pub fn options(&self) -> Result<RoundtripOptions, RunSetupError> {
        let probe_id = crate::probe::new_probe_id();
        let mut session = sending_session(self.session.clone(), self.shares_oauth());
        session.rcpt = Some(vec![self.rcpt.clone()]);
        session.data = Some(true);
        let target = match &self.via {
            Some(t) => t.clone(),
            None => Target::trace(self.rcpt.rsplit_once('@').map_or("", |(_, d)| d))?,
        };
        // A round trip's settings come from a file (an exporter's, a scenario's): keys.
        let mut send = Job::new(&target, &session, PathContext::default(), None, Naming::Key)?;
        prepare(&mut send, &probe_id);
        let mailbox = |m: &MailboxSpec, key| -> Result<MailboxOptions, RunSetupError> {
            Ok(MailboxOptions::new(
                m.url.clone(),
                self.login(m, key)?,
                self.ca_file.clone(),
                self.tls_name.clone(),
                self.imap_timeout,
            ))
        };
        let ndr = self.ndr_mailbox.as_ref();
        Ok(RoundtripOptions {
            send,
            rcpt: self.rcpt.clone(),
            from: session.from.clone(),
            probe_id,
            mailbox: mailbox(&self.mailbox, "mailbox")?,
            ndr_mailbox: ndr.map(|m| mailbox(m, "ndr_mailbox")).transpose()?,
            within: self.within,
            keep: self.keep,
            expected_scenario: self.scenario,
            slow_hop: self.slow_hop,
        })
    }

    /// What `options` checks, without reading a password or secret (a scenario file's are
    /// read when the run is prepared).
    fn check(&self) -> Result<(), RunSetupError> {
        let mailboxes = [
            Some((&self.mailbox, "mailbox")),
            self.ndr_mailbox.as_ref().map(|m| (m, "ndr_mailbox")),
        ];
        for (m, key) in mailboxes.into_iter().flatten() {
            if let LoginSpec::Shared = m.login {
                if !MailboxLogin::check_shared(&self.session, &m.url.user)? {
                    return Err(RunSetupError::NoTokenSource { key });
                }
            }
        }
        Ok(())
    }

    fn login(&self, m: &MailboxSpec, key: &'static str) -> Result<MailboxLogin, RunSetupError> {
        Ok(match &m.login {
            LoginSpec::Password(p) => MailboxLogin::Password(p.read()?),
            LoginSpec::Token(source) => MailboxLogin::token(source.clone(), m.mech, &self.session)?,
            LoginSpec::Shared => MailboxLogin::shared(&self.session, &m.url.user, m.mech)?
                .ok_or(RunSetupError::NoTokenSource { key })?,
        })
    }
}

/// What a table's keys are checked against: where relative files are, where each session
/// setting was written (for errors), and the target a scenario file's hop sends to.
pub(crate) struct TableContext<'a> {
    pub(crate) at: &'a Locator<'a>,
    pub(crate) base: &'a Path,
    pub(crate) span_of: &'a dyn Fn(Field) -> Option<Range<usize>>,
    /// Without `via`: the hop's domain or first host (None: the recipient domain's MX).
    pub(crate) default_via: Option<Target>,
    /// Read the passwords and secrets now, to check them (the exporter); a scenario file
    /// reads them when the run is prepared, as its hops' own.
    pub(crate) read_secrets: bool,
}

/// Checks a round trip table; `session` is its layer (merged with a hop's).
pub(crate) fn read(
    cx: &TableContext<'_>,
    raw: &RawRoundtrip,
    session: SessionSpec,
) -> Result<RoundtripSpec, FileError> {
    let at = cx.at;
    let rcpt = raw.rcpt.get_ref().trim().to_string();
    if !rcpt.contains('@') {
        return Err(at.error(&raw.rcpt.span(), FileProblem::RoundtripRcpt(rcpt)));
    }
    let (mailbox, ndr_mailbox) = mailboxes(cx, raw)?;
    let via = match &raw.via {
        Some(v) => Some(
            Target::probe(v.get_ref(), session.default_port()).map_err(|source| {
                let value = v.get_ref().clone();
                at.error(&v.span(), FileProblem::RoundtripVia { value, source })
            })?,
        ),
        None => cx.default_via.clone(),
    };
    let spec = RoundtripSpec {
        rcpt,
        via,
        mailbox,
        ndr_mailbox,
        ca_file: raw.mailbox_ca_file.as_ref().map(|p| cx.base.join(p)),
        tls_name: raw.mailbox_tls_name.clone(),
        imap_timeout: raw.mailbox_timeout.map_or(DEFAULT_IMAP_TIMEOUT, |d| d.0),
        within: raw
            .within
            .as_ref()
            .map_or(DEFAULT_WITHIN, |d| d.get_ref().0),
        keep: raw.keep.unwrap_or(false),
        slow_hop: raw.slow_hop.map_or(DEFAULT_SLOW_HOP, |d| d.0),
        scenario: raw.scenario.map(|s| s.0),
        session,
    };
    // Everything a run checks, once now (with `read_secrets`, the passwords read and dropped);
    // a setting's error points at the setting.
    let checked = match cx.read_secrets {
        true => spec.options().map(|_| ()),
        false => spec.check(),
    };
    checked.map_err(|e| match e {
        RunSetupError::Spec(s) => match s.field().and_then(cx.span_of) {
            Some(span) => at.error(&span, FileProblem::Setting(s)),
            None => at.error(&raw.rcpt.span(), FileProblem::RoundtripSetup(s.into())),
        },
        e => at.error(&raw.rcpt.span(), FileProblem::RoundtripSetup(e)),
    })?;
    Ok(spec)
}

/// The mailbox and the NDR mailbox, each with its login.
fn mailboxes(
    cx: &TableContext<'_>,
    raw: &RawRoundtrip,
) -> Result<(MailboxSpec, Option<MailboxSpec>), FileError> {
    let mech = match &raw.mailbox_auth_mech {
        None => None,
        Some(m) => Some(token_mech(cx.at, m)?),
    };
    let main = Logins {
        key: "mailbox",
        password_env: raw.mailbox_password_env.as_ref(),
        password_file: raw.mailbox_password_file.as_ref(),
        oauth: raw.mailbox_oauth.unwrap_or(false),
        token_env: raw.mailbox_oauth_token_env.as_ref(),
        token_file: raw.mailbox_oauth_token_file.as_ref(),
    };
    let ndr = Logins {
        key: "ndr_mailbox",
        password_env: raw.ndr_mailbox_password_env.as_ref(),
        password_file: raw.ndr_mailbox_password_file.as_ref(),
        oauth: raw.ndr_mailbox_oauth.unwrap_or(false),
        token_env: raw.ndr_mailbox_oauth_token_env.as_ref(),
        token_file: raw.ndr_mailbox_oauth_token_file.as_ref(),
    };
    Ok((
        mailbox_spec(cx, &raw.mailbox, &main, mech)?,
        raw.ndr_mailbox
            .as_ref()
            .map(|m| mailbox_spec(cx, m, &ndr, None))
            .transpose()?,
    ))
}

/// One mailbox's login keys.
struct Logins<'a> {
    key: &'static str,
    password_env: Option<&'a String>,
    password_file: Option<&'a Spanned<PathBuf>>,
    oauth: bool,
    token_env: Option<&'a String>,
    token_file: Option<&'a Spanned<PathBuf>>,
}

/// `xoauth2` or `oauthbearer`.
fn token_mech(at: &Locator<'_>, m: &Spanned<String>) -> Result<AuthMech, FileError> {
    match m.get_ref().parse::<AuthMech>() {
        Ok(mech) if mech.is_oauth() => Ok(mech),
        _ => Err(at.error(&m.span(), FileProblem::MailboxMech(m.get_ref().clone()))),
    }
}

fn mailbox_spec(
    cx: &TableContext<'_>,
    url: &Spanned<String>,
    l: &Logins<'_>,
    mech: Option<AuthMech>,
) -> Result<MailboxSpec, FileError> {
    let (at, key) = (cx.at, l.key);
    let parsed = MailboxUrl::parse(url.get_ref()).map_err(|source| {
        let value = url.get_ref().clone();
        at.error(&url.span(), FileProblem::MailboxUrl { key, value, source })
    })?;
    let file = |f: &Spanned<PathBuf>| cx.base.join(f.get_ref());
    let login = match (
        l.password_env,
        l.password_file,
        l.oauth,
        l.token_env,
        l.token_file,
    ) {
        (Some(v), None, false, None, None) => LoginSpec::Password(PasswordSource::Env(v.clone())),
        (None, Some(f), false, None, None) => LoginSpec::Password(PasswordSource::File(file(f))),
        (None, None, true, None, None) => LoginSpec::Shared,
        (None, None, false, Some(v), None) => LoginSpec::Token(TokenSource::Env(v.clone())),
        (None, None, false, None, Some(f)) => LoginSpec::Token(TokenSource::File(file(f))),
        _ => return Err(at.error(&url.span(), FileProblem::MailboxLogin { key })),
    };
    if mech.is_some() && matches!(login, LoginSpec::Password(_)) {
        return Err(at.error(&url.span(), FileProblem::MechWithPassword { key }));
    }
    Ok(MailboxSpec {
        url: parsed,
        login,
        mech,
    })
}
