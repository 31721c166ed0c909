//! What a scenario file or an exporter config can get wrong, and where: `FILE:LINE:COL: what`.
//! Settings are named by their keys, as the file writes them.

use mxtrace_knowledge::Category;
use mxtrace_net::tls::TlsConfigError;
use mxtrace_proto::model::Stage;
use mxtrace_proto::spec::{
    DurationError, Naming, SpecError, TargetError, UnknownScenario, ValueError,
};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A scenario file is small; a bigger one is a mistake (a log file named by accident).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A mistake in a file, with where. `P` says what is wrong: a scenario file's `FileProblem`,
/// or an exporter config's problem (which includes those).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub struct FileError<P: std::error::Error + 'static = FileProblem> {
    pub path: String,
    /// 1-based; 0 when the error is about the whole file (unreadable).
    pub line: usize,
    pub col: usize,
    /// Boxed: the problems carry whole errors, and a `Result` should stay small.
    #[source]
    pub problem: Box<P>,
}

impl<P: std::error::Error> std::fmt::Display for FileError<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.problem)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path, self.line, self.col, self.problem
            )
        }
    }
}

impl<P: std::error::Error> FileError<P> {
    /// The same place, the problem converted (a scenario file's into an exporter config's).
    pub fn widen<Q: std::error::Error + From<P>>(self) -> FileError<Q> {
        FileError {
            path: self.path,
            line: self.line,
            col: self.col,
            problem: Box::new((*self.problem).into()),
        }
    }
}

impl FileError {
    /// The setting the mistake is about, when it is a session setting.
    pub fn spec_error(&self) -> Option<&SpecError> {
        match &*self.problem {
            FileProblem::Setting(e) => Some(e),
            _ => None,
        }
    }
}

/// What is wrong (`Display`: the message after `FILE:LINE:COL: `).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    #[error("{bytes} bytes: {what} is at most {MAX_FILE_BYTES}")]
    TooLarge { bytes: u64, what: &'static str },
    /// TOML syntax, an unknown key, or a value refused as it was read: the parser's message.
    #[error("{}", .0.message().trim_end())]
    Toml(#[source] toml::de::Error),
    #[error("{}", .0.describe(Naming::Key))]
    Setting(#[source] SpecError),
    #[error("{}", .0.describe(Naming::Key))]
    TlsFile(#[source] TlsConfigError),
    #[error("{}: no such file", .0.display())]
    NoSuchFile(PathBuf),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("hop = {0}")]
    Hop(#[source] ValueError),
    #[error(
        "tenant {0:?}: expected the tenant name, e.g. contoso, contoso.onmicrosoft.com or \
         contoso.mail.onmicrosoft.com"
    )]
    Tenant(String),
    // Scenario files.
    #[error("no [[hop]]: a scenario file lists at least one hop")]
    NoHop,
    #[error("hop name is empty")]
    EmptyHopName,
    #[error("two hops are named {0:?}: names identify expectations, make them unique")]
    DuplicateHop(String),
    #[error("hop: 1 or 2")]
    HopNumber,
    #[error("a hop has domain (walk its MX) or hosts (probe them), not both")]
    DomainAndHosts,
    #[error("hosts is empty")]
    NoHosts,
    #[error(
        "hop {0:?} needs domain = \"contoso.com\" (walk its MX) or hosts = \
         [\"mail.contoso.com:25\"] (probe them)"
    )]
    NoTarget(String),
    #[error(
        "auth_user needs auth_password_env (the variable holding the password; passwords are \
         never written in scenario files) or an OAuth token source"
    )]
    NoPasswordVariable,
    #[error("mx_matches needs a domain hop (hosts are not looked up as MX)")]
    MxMatchesNeedsDomain,
    #[error(
        "open_relay = true is not something to expect: write open_relay = false (RCPT to an \
         outside domain without AUTH must be refused) or leave it out"
    )]
    OpenRelayExpected,
    #[error("latency.dns: only a domain hop looks up DNS")]
    LatencyDnsNeedsDomain,
    // Round trips (`[roundtrips.NAME]` of the exporter).
    #[error("rcpt {0:?}: expected user@domain")]
    RoundtripRcpt(String),
    #[error("roundtrip {0:?}: interval is at least 10s")]
    RoundtripInterval(String),
    #[error("{key} {value:?}: {source}")]
    MailboxUrl {
        key: &'static str,
        value: String,
        #[source]
        source: mxtrace_proto::mailbox::MailboxUrlError,
    },
    #[error(
        "{key} needs exactly one of {key}_password_env, {key}_password_file, {key}_oauth = \
         true, {key}_oauth_token_env, {key}_oauth_token_file (a password or token is never \
         written here)"
    )]
    MailboxLogin { key: &'static str },
    #[error("mailbox_auth_mech {0:?}: xoauth2 or oauthbearer (the mechanisms of a token)")]
    MailboxMech(String),
    #[error("mailbox_auth_mech needs a token for the {key}, not a password")]
    MechWithPassword { key: &'static str },
    #[error("via {value:?}: {source}")]
    RoundtripVia {
        value: String,
        #[source]
        source: TargetError,
    },
    // Round trips of a scenario file's hop (`[hop.roundtrip]`).
    #[error(
        "interval: a scenario file's round trip runs once per run (interval is for `serve`'s \
         [roundtrips.NAME])"
    )]
    RoundtripIntervalInFile,
    #[error("{key}: in a scenario file secrets come from variables ({key_env})")]
    SecretFile {
        key: &'static str,
        key_env: &'static str,
    },
    #[error(
        "roundtrip.* expectations need a [hop.roundtrip] table in the hop (serve runs round \
         trips as [roundtrips.NAME])"
    )]
    RoundtripExpectWithoutTable,
    #[error(
        "roundtrip.within {budget} is longer than the round trip waits ([hop.roundtrip] within \
         = {wait}): the message could not be seen in time"
    )]
    RoundtripWithinTooLong { budget: String, wait: String },
    #[error(transparent)]
    RoundtripSetup(#[from] crate::scenario_file::roundtrip::RunSetupError),
}

/// Turns a position in the text into `FILE:LINE:COL`.
pub(crate) struct Locator<'a> {
    pub(crate) text: &'a str,
    pub(crate) path: String,
}

impl Locator<'_> {
    pub(crate) fn error<P: std::error::Error>(
        &self,
        span: &Range<usize>,
        problem: impl Into<P>,
    ) -> FileError<P> {
        let (line, col) = line_col(self.text, span.start);
        FileError {
            path: self.path.clone(),
            line,
            col,
            problem: Box::new(problem.into()),
        }
    }

    /// A TOML error, at the position the parser gives.
    pub(crate) fn toml<P: std::error::Error + From<FileProblem>>(
        &self,
        e: toml::de::Error,
    ) -> FileError<P> {
        let span = e.span().unwrap_or(0..0);
        self.error(&span, FileProblem::Toml(e))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Reads a small TOML file (`what`, for the message): a bigger one is a mistake.
pub(crate) fn read_small(path: &Path, what: &'static str) -> Result<String, FileError> {
    let whole = |problem| FileError::<FileProblem> {
        path: path.display().to_string(),
        line: 0,
        col: 0,
        problem: Box::new(problem),
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(FileProblem::Read(e)))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(whole(FileProblem::TooLarge {
            bytes: meta.len(),
            what,
        }));
    }
    std::fs::read_to_string(path).map_err(|e| whole(FileProblem::Read(e)))
}

/// A value refused while TOML reads it (the parser adds its position).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ValueProblem {
    #[error("scenario {value:?}: {source}")]
    Scenario {
        value: String,
        #[source]
        source: UnknownScenario,
    },
    #[error("invalid duration {value:?}: {source}")]
    Duration {
        value: String,
        #[source]
        source: DurationError,
    },
    #[error(
        "mx_matches {0:?}: a host name pattern, * for any characters and ? for one (e.g. \
         \"*.mail.protection.outlook.com\")"
    )]
    Glob(String),
    #[error("certificate_name {0:?}: expected a host name such as mail.contoso.com")]
    CertName(String),
    #[error("unknown stage {0:?}: {names}", names = stage_names())]
    Stage(String),
    #[error("unknown latency key {0:?}: {names}, dns or total", names = stage_names())]
    LatencyKey(String),
    #[error("unknown category {0:?}: expected one of {names}", names = category_names())]
    Category(String),
    #[error("code {0}: an SMTP reply code is 200-599")]
    Code(i64),
    #[error("enhanced {0:?}: an enhanced status code such as \"2.1.5\" or \"5.7.1\"")]
    Enhanced(String),
    #[error("roundtrip.folder {0:?}: inbox or junk")]
    Folder(String),
}

fn stage_names() -> String {
    let names: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    format!("expected one of {} (or mail, rcpt, eod)", names.join(", "))
}

fn category_names() -> String {
    let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    names.join(", ")
}
