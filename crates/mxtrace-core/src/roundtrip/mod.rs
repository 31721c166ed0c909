//! `mxtrace roundtrip`: send one small probe message, confirm it in a mailbox over IMAP, and
//! read the path its delivered copy took.
//!
//! Order matters: the mailboxes are logged in to first, so a wrong password never leaves a
//! probe message behind; then the message is sent (a `probe` with `--data` to `--via`, or
//! the recipient domain's MX walked as `trace` walks it), looked for by its id in INBOX and
//! Junk (IDLE where offered, polling with backoff otherwise) until `within`, read by the
//! headers engine, judged (`findings`), and deleted by UID (UIDPLUS) unless kept.

mod assemble;
mod findings;
mod login;
pub mod mailbox;
mod reading;

use crate::job::Job;
use crate::oauth::OAuthError;
use crate::trace::TraceError;
use mailbox::{Location, Mailbox, ID_HEADER};
use mxtrace_net::imap::{ImapError, ImapOptions};
use mxtrace_net::tls::TlsOptions;
use mxtrace_proto::mailbox::MailboxUrl;
use mxtrace_proto::model::roundtrip::{RoundtripReport, Sent};
use mxtrace_proto::model::{JobReport, ProbeReport, Scenario, Stage};
use mxtrace_proto::secret::Secret;
use mxtrace_proto::spec::Naming;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

pub use findings::finding;
pub use login::{sending_session, MailboxLogin};

/// How long to wait for the message when nothing says: a few minutes, as mail usually takes.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(300);
/// A hop slower than this is a finding.
pub const DEFAULT_SLOW_HOP: Duration = Duration::from_secs(60);
/// Each IMAP command and its answer.
pub const DEFAULT_IMAP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct MailboxOptions {
    pub url: MailboxUrl,
    pub login: MailboxLogin,
    pub imap: ImapOptions,
}

impl MailboxOptions {
    /// A mailbox of `url` logged in to with `login`; TLS verified strictly, `ca_file` trusted
    /// besides the public roots.
    pub fn new(
        url: MailboxUrl,
        login: MailboxLogin,
        ca_file: Option<std::path::PathBuf>,
        tls_name: Option<String>,
        timeout: Duration,
    ) -> MailboxOptions {
        let imap = ImapOptions {
            host: url.host.clone(),
            port: url.port,
            security: url.security,
            tls: TlsOptions {
                verify: mxtrace_net::tls::VerifyMode::Strict,
                ca_file,
                client_cert: None,
                client_key: None,
                classic_groups: false,
                dane: Vec::new(),
            },
            tls_name,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            command_timeout: timeout,
            limits: mxtrace_net::imap::Limits::default(),
        };
        MailboxOptions { url, login, imap }
    }

    /// A mailbox logged in to with a password.
    pub fn with_password(
        url: MailboxUrl,
        password: Secret,
        ca_file: Option<std::path::PathBuf>,
        tls_name: Option<String>,
        timeout: Duration,
    ) -> MailboxOptions {
        let login = MailboxLogin::Password(password);
        MailboxOptions::new(url, login, ca_file, tls_name, timeout)
    }
}

#[derive(Debug, Clone)]
pub struct RoundtripOptions {
    /// The probe or trace that sends the message; `prepare` makes it send DATA with the id.
    pub send: Job,
    pub rcpt: String,
    pub from: Option<String>,
    pub probe_id: String,
    pub mailbox: MailboxOptions,
    pub ndr_mailbox: Option<MailboxOptions>,
    pub within: Duration,
    pub keep: bool,
    pub expected_scenario: Option<Scenario>,
    pub slow_hop: Duration,
}

/// A round trip that could not start (exit 2): nothing was sent. `hint` explains a refused
/// token or a token that could not be had: the cause, then numbered steps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoundtripError {
    #[error("mailbox {url}: {source} (nothing was sent){}", indented(.hint))]
    Mailbox {
        url: String,
        #[source]
        source: ImapError,
        hint: Vec<String>,
    },
    #[error("mailbox {url}: no OAuth access token to log in with: {source} (nothing was sent){}", indented(.hint))]
    MailboxToken {
        url: String,
        #[source]
        source: OAuthError,
        hint: Vec<String>,
    },
    #[error(transparent)]
    Send(#[from] TraceError),
}

/// Makes `job` send the probe message: DATA on, the id set, one MX walk (not every address).
pub fn prepare(job: &mut Job, probe_id: &str) {
    let probe = match job {
        Job::Probe(o) => o.as_mut(),
        Job::Trace(o) => {
            o.all = false;
            &mut o.probe
        }
    };
    probe.data = true;
    probe.probe_id = Some(probe_id.to_string());
}

pub async fn roundtrip(o: &RoundtripOptions) -> Result<RoundtripReport, RoundtripError> {
    let t0 = Instant::now();
    let started_at = SystemTime::now();
    let mut main = open(&o.mailbox, "mailbox", t0, o.send.naming()).await?;
    let mut ndr = match &o.ndr_mailbox {
        Some(m) => match open(m, "ndr_mailbox", t0, o.send.naming()).await {
            Ok(x) => Some(x),
            Err(e) => {
                main.conn.logout().await;
                return Err(e);
            }
        },
        None => None,
    };
    let sent_report = match crate::job::execute(&o.send).await {
        Ok(r) => r,
        Err(e) => {
            main.conn.logout().await;
            if let Some(n) = ndr.as_mut() {
                n.conn.logout().await;
            }
            return Err(e.into());
        }
    };
    let sent = sent(sent_report);
    let outcome = if sent.accepted {
        wait(o, &mut main, ndr.as_mut()).await
    } else {
        Outcome::NotSent
    };
    let parts = assemble::assemble(o, &sent, outcome, &mut main, ndr.as_mut()).await;
    main.conn.logout().await;
    let mut imap = std::mem::take(&mut main.conn.log);
    let mut ndr_mailbox = None;
    if let Some(mut n) = ndr {
        n.conn.logout().await;
        ndr_mailbox = Some(n.summary.clone());
        imap.append(&mut n.conn.log);
        imap.sort_by(|a, b| a.started_ms.total_cmp(&b.started_ms));
    }
    let verdict = assemble::verdict(&parts, &sent, o.within);
    Ok(RoundtripReport {
        probe_id: o.probe_id.clone(),
        from: o.from.clone(),
        rcpt: o.rcpt.clone(),
        mailbox: main.summary,
        ndr_mailbox,
        within_s: o.within.as_secs_f64(),
        sent,
        delivery: parts.delivery,
        path: parts.path,
        receiver: parts.receiver,
        bounce: parts.bounce,
        findings: parts.findings,
        cleanup: parts.cleanup,
        imap,
        verdict,
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        elapsed_ms: (t0.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
    })
}

/// Logs in to one mailbox: the token had first (a token that cannot be had is explained),
/// then the login (a refused token is explained).
async fn open(
    o: &MailboxOptions,
    label: &str,
    t0: Instant,
    naming: Naming,
) -> Result<Mailbox, RoundtripError> {
    let creds = o
        .credentials()
        .await
        .map_err(|source| RoundtripError::MailboxToken {
            url: o.url.to_string(),
            hint: login::token_hint(&source, naming),
            source,
        })?;
    Mailbox::open(o, &creds, label, t0)
        .await
        .map_err(|(source, _log)| RoundtripError::Mailbox {
            url: o.url.to_string(),
            hint: login::login_hint(&source, &o.login, naming),
            source,
        })
}

/// Lines under an error message, indented.
fn indented(lines: &[String]) -> String {
    lines.iter().map(|l| format!("\n  {l}")).collect()
}

/// What the wait ended with.
#[derive(Debug)]
enum Outcome {
    /// Nothing was sent.
    NotSent,
    Delivered(Location),
    Bounced(Location),
    Timeout,
    Failed(String),
}

/// Looks in the mailbox (and the NDR mailbox) until the message or its bounce shows, or
/// `within` passes.
async fn wait(o: &RoundtripOptions, main: &mut Mailbox, mut ndr: Option<&mut Mailbox>) -> Outcome {
    let deadline = Instant::now() + o.within;
    let not_probe = format!("NOT HEADER {ID_HEADER}");
    let mut step = mailbox::first_step();
    loop {
        match main.locate_probe(&o.probe_id).await {
            Ok(Some(l)) => return Outcome::Delivered(l),
            Ok(None) => {}
            Err(e) => return Outcome::Failed(format!("mailbox: {e}")),
        }
        if let Some(n) = ndr.as_deref_mut() {
            // The bounce quotes the id (its returned message); the probe itself, when both
            // mailboxes are one, carries the id header.
            match n
                .locate(&[("TEXT", &o.probe_id), (&not_probe, &o.probe_id)])
                .await
            {
                Ok(Some(l)) => return Outcome::Bounced(l),
                Ok(None) => {}
                Err(e) => return Outcome::Failed(format!("NDR mailbox: {e}")),
            }
        }
        if Instant::now() >= deadline {
            return Outcome::Timeout;
        }
        if let Err(e) = main.pause(mailbox::next_step(step, deadline)).await {
            return Outcome::Failed(format!("mailbox: {e}"));
        }
        step = mailbox::grow(step);
    }
}

/// The summary of the sending job: who accepted the end of DATA, when, with what reply.
fn sent(report: JobReport) -> Sent {
    let probes: Vec<(String, &ProbeReport)> = match &report {
        JobReport::Probe(p) => vec![(p.target.host.clone(), p.as_ref())],
        JobReport::Trace(t) => t
            .hops
            .iter()
            .flat_map(|h| h.probes.iter().map(|p| (p.mx.clone(), &p.report)))
            .collect(),
    };
    let accepted = probes.iter().find_map(|(host, p)| {
        let eod = p.stages.iter().find(|s| s.stage == Stage::EndOfData)?;
        let reply = eod.reply.as_ref().filter(|r| r.code == 250)?;
        let at = humantime::parse_rfc3339_weak(&p.started_at).ok().map(|t| {
            t + Duration::from_secs_f64((eod.started_ms + eod.elapsed_ms).max(0.0) / 1000.0)
        });
        Some((host.clone(), p.target.ip.clone(), at, reply.lines.join(" ")))
    });
    let (host, ip, at, reply) = match accepted {
        Some((h, ip, at, r)) => (Some(h), ip, at, Some(r)),
        None => (None, None, None, None),
    };
    Sent {
        accepted: host.is_some(),
        host,
        ip,
        at: at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
        reply,
        report,
    }
}

fn seconds_since(sent: &Sent, seen: SystemTime) -> Option<f64> {
    let at = humantime::parse_rfc3339_weak(sent.at.as_deref()?).ok()?;
    let d = seen.duration_since(at).unwrap_or_default();
    Some((d.as_secs_f64() * 1000.0).round() / 1000.0)
}
