//! The client side of one IMAP connection, for the round trip's few commands: CAPABILITY,
//! STARTTLS, LOGIN / AUTHENTICATE, LIST, EXAMINE / SELECT, UID SEARCH, UID FETCH, IDLE,
//! UID STORE, UID EXPUNGE, LOGOUT (RFC 3501, RFC 2177, RFC 4315, RFC 6154).
//!
//! Hand-written on purpose. async-imap reads whatever literal a server announces (no cap on a
//! literal or a line), and imap-next / imap-codec, which can cap a response, bring a parser and
//! type crate family of their own for a dozen commands. Here, as on the SMTP side (`conn.rs`),
//! every read is bounded: a line by `Limits::line`, a literal by `Limits::literal` (refused
//! from its `{n}` before a byte of it is read), a response and a command's responses by size,
//! and every wait by a deadline. The TLS is the probe's rustls configuration (`tls.rs`), in
//! strict mode: credentials are only ever sent inside verified TLS.

mod commands;
pub mod parse;

pub use commands::{IdleEnd, JunkFoundBy};

use crate::conn::{ConnError, Transport};
use crate::tls::{self, TlsOptions};
use base64::Engine as _;
use mxtrace_proto::mailbox::MailboxSecurity;
use mxtrace_proto::model::roundtrip::ImapStep;
use mxtrace_proto::sasl::{self, ErrorChallenge};
use mxtrace_proto::secret::{Secret, REDACTED};
use mxtrace_proto::spec::{AuthMech, Naming};
use parse::{Kind, Response, Status};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;

/// How much a server may send: a line, a literal, one response and all responses to one
/// command. A probe's header block is a few KiB, a bounce with the returned message tens.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub line: usize,
    pub literal: usize,
    pub response: usize,
    pub command: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // RFC 7162 3.2.2 recommends that clients accept lines of 8192 octets.
            line: 8192,
            literal: 2 * 1024 * 1024,
            response: 4 * 1024 * 1024,
            command: 8 * 1024 * 1024,
        }
    }
}

/// Where the mailbox server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct ImapOptions {
    pub host: String,
    pub port: u16,
    pub security: MailboxSecurity,
    /// Verification is forced to strict: a password is never sent to an unverified server.
    pub tls: TlsOptions,
    /// The name checked against the certificate (default: `host`).
    pub tls_name: Option<String>,
    pub connect_timeout: Duration,
    /// Time allowed for each command and its answer.
    pub command_timeout: Duration,
    pub limits: Limits,
}

/// The login: a password, or an OAuth 2.0 access token presented in a SASL mechanism of its
/// own (XOAUTH2 or OAUTHBEARER, RFC 7628), whose initial response `mxtrace_proto::sasl`
/// builds, the same bytes as SMTP AUTH sends. A token is never sent with LOGIN or PLAIN.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// AUTHENTICATE PLAIN (RFC 4616) when offered, else LOGIN.
    Password { user: String, password: Secret },
    /// AUTHENTICATE XOAUTH2 when offered, else OAUTHBEARER; `mech` chooses one of the two.
    Token {
        user: String,
        token: Secret,
        mech: Option<AuthMech>,
    },
}

/// The first message of an AUTHENTICATE exchange: the mechanism and its initial response,
/// already base64-encoded (RFC 4959 SASL-IR, or sent after the first `+`).
pub struct SaslStart {
    pub mechanism: AuthMech,
    pub initial_response: Secret,
}

/// The OAuth mechanisms in the order a token tries them.
const OAUTH_MECHS: [AuthMech; 2] = [AuthMech::Xoauth2, AuthMech::OAuthBearer];

impl Credentials {
    pub fn user(&self) -> &str {
        match self {
            Credentials::Password { user, .. } | Credentials::Token { user, .. } => user,
        }
    }

    /// The SASL exchange for a server offering `caps`, reached as `host` and `port` (which
    /// OAUTHBEARER names); None when none applies.
    pub fn sasl(&self, caps: &[String], host: &str, port: u16) -> Option<SaslStart> {
        match self {
            Credentials::Password { user, password } if offers(caps, "AUTH=PLAIN") => {
                let raw = format!("\0{user}\0{}", password.expose());
                Some(SaslStart {
                    mechanism: AuthMech::Plain,
                    initial_response: Secret::new(
                        base64::engine::general_purpose::STANDARD.encode(raw),
                    ),
                })
            }
            Credentials::Password { .. } => None,
            Credentials::Token { user, token, mech } => {
                let wanted: &[AuthMech] = match mech {
                    Some(m) => std::slice::from_ref(m),
                    None => &OAUTH_MECHS,
                };
                let m = wanted
                    .iter()
                    .copied()
                    .find(|m| offers(caps, &format!("AUTH={}", m.sasl_name())))?;
                let initial_response = sasl::initial_response(m, user, host, port, token)?;
                Some(SaslStart {
                    mechanism: m,
                    initial_response,
                })
            }
        }
    }

    /// User and password for LOGIN when no SASL mechanism applies; never for a token.
    fn login_fallback(&self) -> Option<(&str, &Secret)> {
        match self {
            Credentials::Password { user, password } => Some((user, password)),
            Credentials::Token { .. } => None,
        }
    }

    /// What a server must offer for these credentials, as `NoMechanism` says it.
    fn wanted(&self) -> String {
        match self {
            Credentials::Password { .. } => "AUTH=PLAIN or LOGIN".to_string(),
            Credentials::Token { mech: Some(m), .. } => format!("AUTH={}", m.sasl_name()),
            Credentials::Token { mech: None, .. } => "AUTH=XOAUTH2 or AUTH=OAUTHBEARER".to_string(),
        }
    }
}

fn offers(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    #[error("resolving {host}: {message}")]
    Resolve { host: String, message: String },
    #[error("connecting to {host}:{port}: {reason}")]
    Connect {
        host: String,
        port: u16,
        reason: ConnError,
    },
    #[error(transparent)]
    TlsConfig(#[from] tls::TlsConfigError),
    #[error("{0}")]
    Tls(String),
    #[error("timed out {0}")]
    Timeout(String),
    #[error("the server closed the connection {0}")]
    Closed(&'static str),
    #[error("the server sent a {what} larger than {limit} bytes: refused")]
    TooLarge { what: &'static str, limit: usize },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{command}: {status} {text}")]
    Refused {
        command: String,
        status: String,
        text: String,
    },
    /// The server refused the login; `challenge` is the OAuth error challenge it sent before
    /// (RFC 7628 3.2.2), decoded.
    #[error("login as {user} refused ({how}): {text}{}", challenge_text(.challenge))]
    Login {
        user: String,
        how: String,
        text: String,
        challenge: Option<Box<ErrorChallenge>>,
    },
    #[error("the server offers no login for these credentials: it needs {wanted} (it offers: {offered})")]
    NoMechanism { wanted: String, offered: String },
    #[error("the server does not offer STARTTLS (imap://); use imaps:// if it has IMAPS")]
    NoStartTls,
    #[error("the server said goodbye: {0}")]
    Bye(String),
    #[error("network error {doing}: {source}")]
    Io {
        doing: &'static str,
        source: std::io::Error,
    },
}

/// A command's tagged status and the untagged responses that came before it.
#[derive(Debug)]
pub struct Completed {
    pub status: Status,
    pub untagged: Vec<Response>,
}

/// One argument of a command: sent as it is, or as an IMAP string (quoted when it can be,
/// else a literal).
pub enum Arg<'a> {
    Raw(&'a str),
    Str(&'a [u8]),
}

/// EXAMINE / SELECT's answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selected {
    pub exists: u32,
    pub uidvalidity: Option<u32>,
    pub uidnext: Option<u32>,
}

/// Time and size bounds for one read.
const READ_CHUNK: usize = 8192;
/// Untagged responses to one command (a LIST of a huge mailbox tree is cut off here).
const MAX_UNTAGGED: usize = 20_000;

pub struct ImapConn {
    /// None after a failed TLS handshake took the socket.
    io: Option<Transport>,
    buf: Vec<u8>,
    next_tag: u32,
    opts: ImapOptions,
    /// Upper-case capability atoms, from the latest CAPABILITY.
    pub capabilities: Vec<String>,
    /// `TLSv1.3 TLS13_AES_256_GCM_SHA384`.
    pub tls: Option<String>,
    /// Every command, credentials redacted (`label` names the connection in it).
    pub log: Vec<ImapStep>,
    label: String,
    t0: Instant,
    /// After LOGOUT, `* BYE` is the expected goodbye, not an error.
    bye_expected: bool,
}

impl ImapConn {
    /// Connects, starts TLS (at once for imaps://, by STARTTLS for imap://), reads the
    /// capabilities. `label` names this connection in the log; `t0` is the log's origin. On
    /// failure the log so far comes back with the error.
    pub async fn connect(
        opts: &ImapOptions,
        label: &str,
        t0: Instant,
    ) -> Result<ImapConn, (ImapError, Vec<ImapStep>)> {
        let started = Instant::now();
        let mut conn = ImapConn {
            io: None,
            buf: Vec::new(),
            next_tag: 1,
            opts: opts.clone(),
            capabilities: Vec::new(),
            tls: None,
            log: Vec::new(),
            label: label.to_string(),
            t0,
            bye_expected: false,
        };
        match connect_tcp(opts).await {
            Ok(tcp) => conn.io = Some(Transport::Plain(tcp)),
            Err(e) => {
                conn.record("(connect)", &Err(&e), started);
                return Err((e, conn.log));
            }
        }
        match conn.open().await {
            Ok(()) => Ok(conn),
            Err(e) => Err((e, conn.log)),
        }
    }

    async fn open(&mut self) -> Result<(), ImapError> {
        if self.opts.security == MailboxSecurity::Implicit {
            self.handshake().await?;
        }
        self.greeting().await?;
        if self.opts.security == MailboxSecurity::StartTls {
            self.starttls().await?;
        }
        Ok(())
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.opts.command_timeout
    }

    fn record(&mut self, command: &str, result: &Result<&Status, &ImapError>, started: Instant) {
        let (reply, ok) = match result {
            Ok(s) => (status_line(s), s.is_ok()),
            Err(e) => (e.to_string(), false),
        };
        self.log.push(ImapStep {
            mailbox: self.label.clone(),
            command: command.to_string(),
            reply: clip(&reply),
            ok,
            started_ms: ms(started.saturating_duration_since(self.t0)),
            elapsed_ms: ms(started.elapsed()),
        });
    }

    async fn greeting(&mut self) -> Result<(), ImapError> {
        let started = Instant::now();
        let deadline = self.deadline();
        let result = match self.read_response(deadline).await {
            Ok(r) => match r.kind() {
                Kind::Untagged(rest) => Ok(Status::parse(rest)),
                _ => Err(ImapError::Protocol(format!(
                    "expected a greeting, got {:?}",
                    clip(&r.text)
                ))),
            },
            Err(e) => Err(e),
        };
        self.record("(greeting)", &result.as_ref(), started);
        let status = result?;
        match status.status.as_str() {
            "OK" | "PREAUTH" => {}
            "BYE" => return Err(ImapError::Bye(status.text)),
            _ => {
                return Err(ImapError::Protocol(format!(
                    "unexpected greeting {:?}",
                    clip(&status.text)
                )))
            }
        }
        match status.capabilities() {
            Some(c) => self.capabilities = c,
            None => self.capability().await?,
        }
        Ok(())
    }

    pub async fn capability(&mut self) -> Result<(), ImapError> {
        let done = self.run("CAPABILITY", &[Arg::Raw("CAPABILITY")]).await?;
        for r in &done.untagged {
            if let Kind::Untagged(rest) = r.kind() {
                if let Some(atoms) = strip_word(rest, "CAPABILITY") {
                    self.capabilities = parse::capability_atoms(atoms);
                }
            }
        }
        Ok(())
    }

    pub fn offers(&self, cap: &str) -> bool {
        offers(&self.capabilities, cap)
    }

    async fn starttls(&mut self) -> Result<(), ImapError> {
        if !self.offers("STARTTLS") {
            return Err(ImapError::NoStartTls);
        }
        self.run("STARTTLS", &[Arg::Raw("STARTTLS")]).await?;
        // Bytes sent before the handshake would be read as if they came over TLS (the
        // STARTTLS injection of CVE-2011-0411 and kin).
        if !self.buf.is_empty() {
            return Err(ImapError::Protocol(format!(
                "the server sent {} byte(s) after its OK to STARTTLS, before the TLS handshake",
                self.buf.len()
            )));
        }
        self.handshake().await?;
        // RFC 3501 6.2.1: capabilities are asked again once TLS is up.
        self.capability().await
    }

    async fn handshake(&mut self) -> Result<(), ImapError> {
        let started = Instant::now();
        let result = self.upgrade().await;
        let shown = format!("(TLS handshake) {}", self.tls.as_deref().unwrap_or(""));
        let ok = Status::parse("OK");
        let r = result.as_ref().map(|()| &ok);
        self.record(shown.trim_end(), &r, started);
        result
    }

    async fn upgrade(&mut self) -> Result<(), ImapError> {
        let mut topts = self.opts.tls.clone();
        topts.verify = tls::VerifyMode::Strict;
        let (config, record) = tls::client_config(&topts)?;
        let name = self.opts.tls_name.clone().unwrap_or(self.opts.host.clone());
        let server_name = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|_| ImapError::Tls(format!("{name:?} is not a valid TLS server name")))?;
        let tcp = match self.io.take() {
            Some(Transport::Plain(tcp)) => tcp,
            other => {
                self.io = other;
                return Err(ImapError::Protocol("TLS inside TLS".into()));
            }
        };
        let start = match self.opts.security {
            MailboxSecurity::Implicit => tls::TlsStart::Implicit,
            MailboxSecurity::StartTls => tls::TlsStart::Starttls,
        };
        let connector = TlsConnector::from(config);
        let connect = connector
            .connect(server_name, tls::Sniffed::new(tcp))
            .into_fallible();
        let stream = match timeout_at(self.deadline(), connect).await {
            Ok(Ok(s)) => s,
            Ok(Err((e, sniffed))) => {
                // The mailbox is named by `--mailbox` wherever it is set: flag wording.
                let how = tls::describe_handshake_error(
                    &e,
                    start,
                    sniffed.plaintext_start().as_deref(),
                    Naming::Flag,
                );
                let verify = tls::report_from_record(&record, false, Naming::Flag).verify_error;
                return Err(ImapError::Tls(match verify {
                    Some(v) if v != tls::NO_CERTIFICATE => format!("{how}; certificate: {v}"),
                    _ => how,
                }));
            }
            Err(_) => return Err(ImapError::Timeout(format!("during the {}", start.as_str()))),
        };
        let rep = tls::report(stream.get_ref().1, &record, false, Naming::Flag);
        self.tls = Some(format!(
            "{} {}",
            rep.version.as_deref().unwrap_or("?"),
            rep.cipher.as_deref().unwrap_or("?")
        ));
        self.io = Some(Transport::Tls(Box::new(stream)));
        Ok(())
    }

    /// Logs in: the credentials' SASL mechanism when the server offers it (initial response
    /// on the command line with SASL-IR), else LOGIN (a password only). The capabilities are
    /// read again after. Returns how it logged in (`AUTHENTICATE XOAUTH2`, `LOGIN`).
    pub async fn login(&mut self, creds: &Credentials) -> Result<String, ImapError> {
        let user = creds.user().to_string();
        let refused = |how: &str, e: ImapError, challenge: Option<ErrorChallenge>| match e {
            ImapError::Refused { text, .. } => ImapError::Login {
                user: user.clone(),
                how: how.to_string(),
                text,
                challenge: challenge.map(Box::new),
            },
            e => e,
        };
        let name = self.opts.tls_name.clone().unwrap_or(self.opts.host.clone());
        let (how, done) = match creds.sasl(&self.capabilities, &name, self.opts.port) {
            Some(sasl) => {
                let how = format!("AUTHENTICATE {}", sasl.mechanism.sasl_name());
                let (result, challenge) = self.authenticate(&sasl).await;
                let d = result.map_err(|e| refused(&how, e, challenge))?;
                (how, d)
            }
            None => {
                let no_mechanism = || ImapError::NoMechanism {
                    wanted: creds.wanted(),
                    offered: self.auth_offered(),
                };
                let Some((u, password)) = creds.login_fallback() else {
                    return Err(no_mechanism());
                };
                if self.offers("LOGINDISABLED") {
                    return Err(no_mechanism());
                }
                let shown = format!("LOGIN {} {REDACTED}", quoted_or_shown(u));
                let args = [
                    Arg::Raw("LOGIN"),
                    Arg::Str(u.as_bytes()),
                    Arg::Str(password.expose().as_bytes()),
                ];
                let d = self
                    .run(&shown, &args)
                    .await
                    .map_err(|e| refused("LOGIN", e, None))?;
                ("LOGIN".to_string(), d)
            }
        };
        match done.status.capabilities() {
            Some(c) => self.capabilities = c,
            None => self.capability().await?,
        }
        Ok(how)
    }

    /// The login capabilities offered (`AUTH=...`, `LOGINDISABLED`), for an error.
    fn auth_offered(&self) -> String {
        let list: Vec<&str> = self
            .capabilities
            .iter()
            .map(String::as_str)
            .filter(|c| c.starts_with("AUTH=") || *c == "LOGINDISABLED")
            .collect();
        if list.is_empty() {
            "no AUTH= capability".to_string()
        } else {
            list.join(" ")
        }
    }

    /// One AUTHENTICATE exchange; the OAuth error challenge it met, decoded, comes back beside
    /// the result and is added to the log.
    async fn authenticate(
        &mut self,
        sasl: &SaslStart,
    ) -> (Result<Completed, ImapError>, Option<ErrorChallenge>) {
        let started = Instant::now();
        let deadline = self.deadline();
        let tag = self.tag();
        let ir = self.offers("SASL-IR");
        let name = sasl.mechanism.sasl_name();
        let shown = format!("AUTHENTICATE {name} {REDACTED}");
        let first = if ir {
            format!(
                "{tag} AUTHENTICATE {name} {}\r\n",
                sasl.initial_response.expose()
            )
        } else {
            format!("{tag} AUTHENTICATE {name}\r\n")
        };
        let mut challenge = None;
        let result = self
            .sasl_exchange(&tag, first, sasl, !ir, &mut challenge, deadline)
            .await;
        let result = self.finish(&shown, result, started);
        if let (Some(c), Some(step)) = (&challenge, self.log.last_mut()) {
            step.reply = clip(&format!("{} (error challenge: {})", step.reply, c.json));
        }
        (result, challenge)
    }

    /// Sends the first line, and the initial response after the first `+` when it was not on
    /// it. A further challenge of an OAuth mechanism is its error (RFC 7628 3.2.2): decoded
    /// into `challenge` and answered as the mechanism says (an empty line for XOAUTH2, `^A`
    /// for OAUTHBEARER), after which the server sends its NO; anything else is cancelled
    /// with `*` (RFC 9051 6.2.2).
    async fn sasl_exchange(
        &mut self,
        tag: &str,
        first: String,
        sasl: &SaslStart,
        mut pending: bool,
        challenge: &mut Option<ErrorChallenge>,
        deadline: Instant,
    ) -> Result<Completed, ImapError> {
        self.send(first.as_bytes(), deadline).await?;
        let mut untagged = Vec::new();
        loop {
            let r = self.read_response(deadline).await?;
            match r.kind() {
                Kind::Continuation(text) => {
                    let error = sasl::decode_error_challenge(text)
                        .filter(|_| sasl.mechanism.is_oauth() && challenge.is_none());
                    let answer = if std::mem::take(&mut pending) {
                        sasl.initial_response.expose().to_string()
                    } else if let Some(e) = error {
                        *challenge = Some(e);
                        sasl::error_response(sasl.mechanism).to_string()
                    } else {
                        "*".to_string()
                    };
                    self.send(format!("{answer}\r\n").as_bytes(), deadline)
                        .await?;
                }
                Kind::Tagged(t, rest) if t == tag => {
                    return Ok(Completed {
                        status: Status::parse(rest),
                        untagged,
                    })
                }
                _ => self.keep_untagged(&mut untagged, r)?,
            }
        }
    }

    /// Runs one command: sends it (strings quoted or as literals), collects the untagged
    /// responses, and returns on its tagged status; NO and BAD are `Refused`. `shown` is what
    /// the log says was sent.
    pub async fn run(&mut self, shown: &str, args: &[Arg<'_>]) -> Result<Completed, ImapError> {
        let started = Instant::now();
        let deadline = self.deadline();
        let result = self.exchange(args, deadline).await;
        self.finish(shown, result, started)
    }

    /// Logs the command; a NO or BAD becomes `Refused`.
    fn finish(
        &mut self,
        shown: &str,
        result: Result<Completed, ImapError>,
        started: Instant,
    ) -> Result<Completed, ImapError> {
        match result {
            Ok(d) => {
                self.record(shown, &Ok(&d.status), started);
                if d.status.is_ok() {
                    Ok(d)
                } else {
                    Err(ImapError::Refused {
                        command: shown.to_string(),
                        status: d.status.status,
                        text: clip(&d.status.text),
                    })
                }
            }
            Err(e) => {
                self.record(shown, &Err(&e), started);
                Err(e)
            }
        }
    }

    fn tag(&mut self) -> String {
        let t = format!("a{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    async fn exchange(
        &mut self,
        args: &[Arg<'_>],
        deadline: Instant,
    ) -> Result<Completed, ImapError> {
        let tag = self.tag();
        let mut untagged = Vec::new();
        let mut line = tag.clone().into_bytes();
        let literal_plus = self.offers("LITERAL+");
        for arg in args {
            line.push(b' ');
            match arg {
                Arg::Raw(s) => line.extend_from_slice(s.as_bytes()),
                Arg::Str(s) if quotable(s) => line.extend_from_slice(&quote(s)),
                Arg::Str(s) if literal_plus => {
                    line.extend_from_slice(format!("{{{}+}}\r\n", s.len()).as_bytes());
                    line.extend_from_slice(s);
                }
                Arg::Str(s) => {
                    // A synchronizing literal: the server says `+` before its bytes.
                    line.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
                    self.send(&std::mem::take(&mut line), deadline).await?;
                    self.await_continuation(&tag, &mut untagged, deadline)
                        .await?;
                    line.extend_from_slice(s);
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        self.send(&line, deadline).await?;
        self.collect(&tag, untagged, deadline).await
    }

    async fn await_continuation(
        &mut self,
        tag: &str,
        untagged: &mut Vec<Response>,
        deadline: Instant,
    ) -> Result<(), ImapError> {
        loop {
            let r = self.read_response(deadline).await?;
            match r.kind() {
                Kind::Continuation(_) => return Ok(()),
                Kind::Tagged(t, rest) if t == tag => {
                    let s = Status::parse(rest);
                    return Err(ImapError::Refused {
                        command: "(literal)".into(),
                        status: s.status,
                        text: s.text,
                    });
                }
                _ => self.keep_untagged(untagged, r)?,
            }
        }
    }

    /// Reads untagged responses until the tagged one of `tag`.
    async fn collect(
        &mut self,
        tag: &str,
        mut untagged: Vec<Response>,
        deadline: Instant,
    ) -> Result<Completed, ImapError> {
        loop {
            let r = self.read_response(deadline).await?;
            match r.kind() {
                Kind::Tagged(t, rest) if t == tag => {
                    return Ok(Completed {
                        status: Status::parse(rest),
                        untagged,
                    })
                }
                Kind::Tagged(t, _) => {
                    return Err(ImapError::Protocol(format!(
                        "a reply for tag {t:?}, not {tag}"
                    )))
                }
                Kind::Continuation(_) => {
                    return Err(ImapError::Protocol(
                        "an unexpected continuation request".into(),
                    ))
                }
                Kind::Untagged(_) => self.keep_untagged(&mut untagged, r)?,
            }
        }
    }

    fn keep_untagged(&self, list: &mut Vec<Response>, r: Response) -> Result<(), ImapError> {
        if let Kind::Untagged(rest) = r.kind() {
            if strip_word(rest, "BYE").is_some() && !self.bye_expected {
                return Err(ImapError::Bye(clip(rest)));
            }
        }
        let size: usize = list.iter().map(response_size).sum::<usize>() + response_size(&r);
        if size > self.opts.limits.command || list.len() >= MAX_UNTAGGED {
            return Err(ImapError::TooLarge {
                what: "answer to one command",
                limit: self.opts.limits.command,
            });
        }
        list.push(r);
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), ImapError> {
        let io = self
            .io
            .as_mut()
            .ok_or(ImapError::Closed("after a failed TLS handshake"))?;
        let write = async {
            io.write_all(bytes).await?;
            io.flush().await
        };
        match timeout_at(deadline, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ImapError::Io {
                doing: "sending a command",
                source,
            }),
            Err(_) => Err(ImapError::Timeout("sending a command".into())),
        }
    }

    /// Reads more bytes into the buffer; 0 means the server closed the connection.
    async fn fill(&mut self, deadline: Instant, waiting: &'static str) -> Result<usize, ImapError> {
        let io = self
            .io
            .as_mut()
            .ok_or(ImapError::Closed("after a failed TLS handshake"))?;
        let mut chunk = [0u8; READ_CHUNK];
        match timeout_at(deadline, io.read(&mut chunk)).await {
            Ok(Ok(0)) => Err(ImapError::Closed(waiting)),
            Ok(Ok(n)) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(n)
            }
            Ok(Err(source)) => Err(ImapError::Io {
                doing: "reading a response",
                source,
            }),
            Err(_) => Err(ImapError::Timeout(format!(
                "{waiting} (the server stalled)"
            ))),
        }
    }

    /// One line without its CRLF, at most `Limits::line` bytes.
    async fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, ImapError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                if pos > self.opts.limits.line {
                    return Err(self.too_large("line", self.opts.limits.line));
                }
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > self.opts.limits.line {
                return Err(self.too_large("line", self.opts.limits.line));
            }
            self.fill(deadline, "waiting for a response").await?;
        }
    }

    fn too_large(&mut self, what: &'static str, limit: usize) -> ImapError {
        // The rest of what the server sends is not read: the connection is done.
        self.buf.clear();
        ImapError::TooLarge { what, limit }
    }

    /// Exactly `n` bytes of a literal.
    async fn read_exact(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, ImapError> {
        while self.buf.len() < n {
            self.fill(deadline, "in the middle of a literal").await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One response, its literals read in; the whole deadline covers it, so a server dripping
    /// bytes cannot stretch it.
    async fn read_response(&mut self, deadline: Instant) -> Result<Response, ImapError> {
        let limits = self.opts.limits;
        let mut r = Response::default();
        let mut total = 0usize;
        loop {
            let line = self.read_line(deadline).await?;
            total += line.len();
            let text = String::from_utf8_lossy(&line);
            r.text.push_str(&text);
            let Some(n) = parse::literal_size(&text) else {
                return Ok(r);
            };
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > limits.literal {
                return Err(self.too_large("literal", limits.literal));
            }
            total = total.saturating_add(n);
            if total > limits.response {
                return Err(self.too_large("response", limits.response));
            }
            let lit = self.read_exact(n, deadline).await?;
            r.literals.push(lit);
        }
    }
}

/// Resolves the host (an IP literal as is) and connects to the first address that answers.
async fn connect_tcp(opts: &ImapOptions) -> Result<TcpStream, ImapError> {
    let host = opts.host.trim_matches(['[', ']']);
    let deadline = Instant::now() + opts.connect_timeout;
    let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, opts.port)],
        Err(_) => match timeout_at(deadline, tokio::net::lookup_host((host, opts.port))).await {
            Ok(Ok(a)) => a.take(8).collect(),
            Ok(Err(e)) => {
                return Err(ImapError::Resolve {
                    host: host.to_string(),
                    message: e.to_string(),
                })
            }
            Err(_) => {
                return Err(ImapError::Resolve {
                    host: host.to_string(),
                    message: "timed out".into(),
                })
            }
        },
    };
    let mut last = ConnError::new(mxtrace_proto::smtp::ErrorKind::Dns, "no address");
    for addr in addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) => last = ConnError::from_io(&e, &format!("connecting to {addr}")),
            Err(_) => last = ConnError::timeout(&format!("connecting to {addr}")),
        }
    }
    Err(ImapError::Connect {
        host: opts.host.clone(),
        port: opts.port,
        reason: last,
    })
}

/// `; the server's error challenge: {...}` when there was one.
fn challenge_text(c: &Option<Box<ErrorChallenge>>) -> String {
    c.as_ref()
        .map(|c| {
            // Server text on a terminal: no control characters.
            let json: String = c.json.chars().filter(|c| !c.is_control()).collect();
            format!("; its OAuth error challenge: {json}")
        })
        .unwrap_or_default()
}

fn status_line(s: &Status) -> String {
    match &s.code {
        Some(c) => format!("{} [{}] {}", s.status, c, s.text),
        None => format!("{} {}", s.status, s.text),
    }
    .trim_end()
    .to_string()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// At most 300 characters of server text, for the log.
fn clip(s: &str) -> String {
    mxtrace_proto::text::clip_to(s, 300)
}

fn response_size(r: &Response) -> usize {
    r.text.len() + r.literals.iter().map(Vec::len).sum::<usize>()
}

/// `rest` after a leading word (ASCII case-insensitive), when it starts with it.
fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let (w, rest) = text.split_once(' ').unwrap_or((text, ""));
    w.eq_ignore_ascii_case(word).then_some(rest)
}

/// A quoted string can hold 7-bit text without CR, LF or NUL (RFC 3501 4.3).
fn quotable(s: &[u8]) -> bool {
    s.len() <= 1000
        && s.iter()
            .all(|&b| (0x01..0x80).contains(&b) && b != b'\r' && b != b'\n')
}

fn quote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// How a user name shows in the log.
fn quoted_or_shown(s: &str) -> String {
    String::from_utf8_lossy(&quote(s.as_bytes())).into_owned()
}
