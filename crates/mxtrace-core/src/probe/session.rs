//! The state of one probe and the I/O every stage shares: send a command, read its reply within
//! the stage's deadline, and hand both to the transcript.

use super::transcript::Transcript;
use super::{expect, verdict, ProbeOptions};
use crate::oauth::OAuthError;
use mxtrace_knowledge::PathContext;
use mxtrace_net::conn::{ConnError, SmtpConn};
use mxtrace_net::tls::SharedRecord;
use mxtrace_proto::model::ms;
use mxtrace_proto::model::{CapabilitySet, ErrorKind, ProbeReport, Stage, Target, TlsReport};
use mxtrace_proto::secret::Secret;
use mxtrace_proto::smtp::reply::Reply;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::time::Instant;

/// How a command ended, for the stage that sent it.
pub(super) enum Answer {
    /// The reply the stage asked for.
    Expected(Reply),
    /// Any other reply (refused, or out of step); the connection is still open.
    Other(Reply),
    /// No reply, or 421: the connection is gone.
    Closed,
}

/// One probe in progress. Named apart from the lab server's session.
pub(super) struct ProbeSession<'a> {
    pub(super) opts: &'a ProbeOptions,
    /// Where in the delivery path this endpoint is: given by the caller, or detected from an
    /// Exchange Online host name (scenario A hop 1).
    pub(super) ctx: PathContext,
    pub(super) tls_config: Option<(Arc<rustls::ClientConfig>, SharedRecord)>,
    pub(super) conn: Option<SmtpConn>,
    t0: Instant,
    started_at: SystemTime,
    pub(super) log: Transcript,
    pub(super) warnings: Vec<String>,
    pub(super) caps: CapabilitySet,
    pub(super) tls: Option<TlsReport>,
    pub(super) ip: Option<IpAddr>,
    pub(super) local: Option<SocketAddr>,
    pub(super) probe_id: Option<String>,
    /// The sweep's slot to this destination, held until the session ends.
    pub(super) permit: Option<crate::limits::Permit>,
    /// The OAuth access token AUTH presents, or why there is none (had before connecting).
    pub(super) token: Option<Result<Secret, OAuthError>>,
}

impl<'a> ProbeSession<'a> {
    pub(super) fn new(
        opts: &'a ProbeOptions,
        tls_config: Option<(Arc<rustls::ClientConfig>, SharedRecord)>,
    ) -> Self {
        let ctx = match (
            opts.ctx.scenario,
            mxtrace_knowledge::scenario_for_host(&opts.host),
        ) {
            (None, Some((scenario, hop))) => PathContext {
                scenario: Some(scenario),
                hop: Some(hop),
            },
            _ => opts.ctx,
        };
        let t0 = Instant::now();
        ProbeSession {
            opts,
            ctx,
            tls_config,
            conn: None,
            t0,
            started_at: SystemTime::now(),
            log: Transcript::new(t0),
            warnings: Vec::new(),
            caps: CapabilitySet::default(),
            tls: None,
            ip: None,
            local: None,
            probe_id: None,
            permit: None,
            token: None,
        }
    }

    /// The stages in order; each returns false when the session cannot go on.
    pub(super) async fn run(&mut self) {
        if !self.connect().await {
            return;
        }
        if self.opts.implicit_tls && !self.handshake().await {
            return;
        }
        if !self.greeting().await {
            return;
        }
        let Some(caps) = self.ehlo(Stage::Ehlo).await else {
            return;
        };
        let Some(caps) = self.starttls(caps).await else {
            return;
        };
        if self.opts.auth.is_some() && !self.auth(&caps).await {
            self.quit().await;
            return;
        }
        if self.transaction(&caps).await {
            if caps.pipelining && self.opts.pipelining {
                return self.rset_and_quit().await;
            }
            self.rset().await;
        }
        self.quit().await;
    }

    pub(super) fn stage_deadline(&self) -> Instant {
        Instant::now() + self.opts.stage_timeout
    }

    pub(super) fn encrypted(&self) -> bool {
        self.conn.as_ref().is_some_and(SmtpConn::is_tls)
    }

    /// Sends `lines` in one write and reads one reply, both by `deadline`.
    pub(super) async fn exchange(
        &mut self,
        lines: &[&str],
        deadline: Instant,
    ) -> Result<Reply, ConnError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(ConnError::new(ErrorKind::Reset, "connection closed"));
        };
        conn.send_lines(lines, deadline).await?;
        conn.read_reply(deadline).await
    }

    /// Reads one more reply (pipelined commands, already sent).
    pub(super) async fn read_next(&mut self, deadline: Instant) -> Result<Reply, ConnError> {
        match self.conn.as_mut() {
            Some(conn) => conn.read_reply(deadline).await,
            None => Err(ConnError::new(ErrorKind::Reset, "connection closed")),
        }
    }

    /// Sends one command, reads its reply and records the stage.
    pub(super) async fn command(&mut self, stage: Stage, wire: &str, shown: &str) -> Answer {
        if self.conn.is_none() {
            return Answer::Closed;
        }
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let result = self.exchange(&[wire], deadline).await;
        self.settle(stage, vec![shown.to_string()], started, result)
    }

    /// Records a stage's result. On an error the connection is dropped (its state is unknown).
    pub(super) fn settle(
        &mut self,
        stage: Stage,
        sent: Vec<String>,
        started: Instant,
        result: Result<Reply, ConnError>,
    ) -> Answer {
        let encrypted = self.encrypted();
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                self.log.error(stage, sent, started, encrypted, e);
                self.conn = None;
                return Answer::Closed;
            }
        };
        let fit = expect::fit(stage, &reply);
        let closing = reply.code == 421;
        let idx = self
            .log
            .reply(stage, sent, started, encrypted, reply.clone());
        if closing {
            // RFC 5321 3.8: 421 means the server is closing the channel.
            self.log
                .note(idx, "421: the server is closing the connection");
            self.conn = None;
            return Answer::Closed;
        }
        match fit {
            expect::Fit::Expected => Answer::Expected(reply),
            _ => Answer::Other(reply),
        }
    }

    /// Records a stage that never produced a reply because of something mxtrace found itself
    /// (a required feature missing, a refusal to send credentials in clear).
    pub(super) fn fail_without_reply(
        &mut self,
        stage: Stage,
        sent: Vec<String>,
        kind: ErrorKind,
        message: String,
    ) -> usize {
        let encrypted = self.encrypted();
        let err = ConnError::new(kind, message);
        self.log.error(stage, sent, Instant::now(), encrypted, err)
    }

    /// Explains every stage and decides the verdict, over the finished transcript.
    pub(super) fn finish(mut self) -> ProbeReport {
        let mut stages = self.log.stages;
        verdict::explain(
            &mut stages,
            &self.log.observations,
            &self.log.challenges,
            self.tls.as_mut(),
            &self.caps,
            self.opts,
            self.ctx,
        );
        let recipients = verdict::recipients(self.opts, &stages);
        let verdict = verdict::verdict(self.opts, &stages, &recipients, &self.warnings);
        ProbeReport {
            target: Target {
                host: self.opts.host.clone(),
                ip: self.ip.map(|i| i.to_string()),
                port: self.opts.port,
                tls_mode: self.opts.tls_mode().to_string(),
                tls_name: self.opts.sni_name(),
            },
            capabilities: self.caps,
            tls: self.tls,
            verdict,
            started_at: humantime::format_rfc3339_millis(self.started_at).to_string(),
            elapsed_ms: ms(self.t0.elapsed()),
            probe_id: self.probe_id,
            recipients,
            stages,
        }
    }
}
