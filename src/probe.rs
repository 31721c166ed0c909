//! One SMTP endpoint from connect to QUIT: every stage timed, bounded by its own deadline,
//! recorded with what was sent (redacted) and what came back, and explained.
//!
//! A failed stage is data: the probe always returns a report; only a configuration the user
//! got wrong (a CA file that does not parse) is an error.

use crate::diagnose::{self, Diagnosis, Observation, Observed, PathContext};
use crate::model::{
    CapabilitySet, ErrorKind, Outcome, ProbeReport, Stage, StageError, StageRecord, Target,
    TlsReport, Verdict,
};
use crate::secret::REDACTED;
use crate::smtp::conn::{ConnError, SmtpConn, Transport};
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::Reply;
use crate::tls::{self, SharedRecord, TlsConfigError, VerifyMode};
use base64::Engine;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;

/// How long QUIT waits for its 221: the transaction is over, so a slow server is not waited on.
const QUIT_WAIT: Duration = Duration::from_secs(2);

pub use crate::spec::{AuthMech, AuthOptions, Family, ProbeOptions, StartTls};

/// Runs one probe. Network failures are in the report; only a bad TLS configuration (files the
/// user named) is an error.
pub async fn probe(opts: &ProbeOptions) -> Result<ProbeReport, TlsConfigError> {
    let tls_config = if opts.implicit_tls || opts.starttls != StartTls::Never {
        Some(tls::client_config(&opts.tls)?)
    } else {
        None
    };
    let mut s = Session::new(opts, tls_config);
    s.run().await;
    Ok(s.finish())
}

/// The report of a probe that never connected because the caller could not look up the host's
/// addresses with its own resolver (`run` with a `resolver`): a connect stage of kind `dns`.
pub fn unresolved(opts: &ProbeOptions, message: String) -> ProbeReport {
    let mut s = Session::new(opts, None);
    s.record_error(Stage::Connect, Vec::new(), ErrorKind::Dns, message);
    s.finish()
}

/// Whether a stage's result counts against the verdict.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Weight {
    Decisive,
    /// Recorded and explained, but not a failure of the check (RSET, QUIT, STARTTLS refused in
    /// auto mode).
    Informational,
}

struct Session<'a> {
    opts: &'a ProbeOptions,
    /// Where in the delivery path this endpoint is: given by the caller, or detected from an
    /// Exchange Online host name (scenario A hop 1).
    ctx: PathContext,
    tls_config: Option<(Arc<rustls::ClientConfig>, SharedRecord)>,
    conn: Option<SmtpConn>,
    t0: Instant,
    started_at: SystemTime,
    stages: Vec<StageRecord>,
    failed: Option<usize>,
    warnings: Vec<String>,
    caps: CapabilitySet,
    tls: Option<TlsReport>,
    ip: Option<IpAddr>,
    local: Option<SocketAddr>,
    probe_id: Option<String>,
}

impl<'a> Session<'a> {
    fn new(
        opts: &'a ProbeOptions,
        tls_config: Option<(Arc<rustls::ClientConfig>, SharedRecord)>,
    ) -> Self {
        let ctx = match (opts.ctx.scenario, diagnose::scenario_for_host(&opts.host)) {
            (None, Some((scenario, hop))) => PathContext {
                scenario: Some(scenario),
                hop: Some(hop),
            },
            _ => opts.ctx,
        };
        Session {
            opts,
            ctx,
            tls_config,
            conn: None,
            t0: Instant::now(),
            started_at: SystemTime::now(),
            stages: Vec::new(),
            failed: None,
            warnings: Vec::new(),
            caps: CapabilitySet::default(),
            tls: None,
            ip: None,
            local: None,
            probe_id: None,
        }
    }

    fn ms(&self, t: Instant) -> f64 {
        ms(t.saturating_duration_since(self.t0))
    }

    fn stage_deadline(&self) -> Instant {
        Instant::now() + self.opts.stage_timeout
    }

    /// Appends a stage record, explains it, and notes a decisive failure. Returns its index.
    fn record(
        &mut self,
        stage: Stage,
        sent: Vec<String>,
        started: Instant,
        result: Result<Reply, ConnError>,
        weight: Weight,
    ) -> usize {
        let elapsed = ms(started.elapsed());
        let ctx = self.ctx;
        let (reply, error, outcome, diagnosis) = match result {
            Ok(reply) => {
                let outcome = match reply.first_digit() {
                    2 | 3 => Outcome::Ok,
                    4 => Outcome::Transient,
                    _ => Outcome::Permanent,
                };
                let d = diagnose::diagnose(stage, Observed::Reply(&reply), ctx);
                (Some(reply), None, outcome, d)
            }
            Err(err) => {
                let observed = Observed::Error {
                    kind: err.kind,
                    detail: &err.message,
                };
                let d = diagnose::diagnose(stage, observed, ctx);
                let error = StageError {
                    kind: err.kind,
                    message: err.message,
                };
                (None, Some(error), Outcome::Error, d)
            }
        };
        let idx = self.stages.len();
        self.stages.push(StageRecord {
            stage,
            sent,
            reply,
            elapsed_ms: elapsed,
            started_ms: self.ms(started),
            encrypted: self.conn.as_ref().is_some_and(SmtpConn::is_tls),
            outcome,
            error,
            notes: Vec::new(),
            diagnosis: Some(diagnosis),
        });
        if outcome != Outcome::Ok && weight == Weight::Decisive && self.failed.is_none() {
            self.failed = Some(idx);
        }
        idx
    }

    /// Records a stage that never produced a reply because of an error mxtrace detected itself
    /// (a required feature missing, an injection attempt).
    fn record_error(&mut self, stage: Stage, sent: Vec<String>, kind: ErrorKind, message: String) {
        let now = Instant::now();
        self.record(
            stage,
            sent,
            now,
            Err(ConnError::new(kind, message)),
            Weight::Decisive,
        );
    }

    fn note(&mut self, idx: usize, note: impl Into<String>) {
        if let Some(s) = self.stages.get_mut(idx) {
            s.notes.push(note.into());
        }
    }

    /// Records something noticed at a stage that is not a failure by itself; its explanation
    /// replaces a plain "accepted" diagnosis, which would say less.
    fn observe(&mut self, idx: usize, obs: Observation, note: String) {
        let d = Diagnosis::new(diagnose::explain_observation(obs), self.ctx);
        if let Some(s) = self.stages.get_mut(idx) {
            s.notes.push(note);
            let plain = s
                .diagnosis
                .as_ref()
                .is_none_or(|d| d.category == diagnose::Category::Accepted);
            if plain {
                s.diagnosis = Some(d);
            }
        }
    }

    /// Sends one command and reads its reply; records the stage. Returns the reply when one
    /// came; on an error the connection is dropped (its state is unknown).
    async fn command(
        &mut self,
        stage: Stage,
        wire: &str,
        shown: &str,
        weight: Weight,
    ) -> Option<Reply> {
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let result = match self.conn.as_mut() {
            Some(conn) => match conn.send_lines(&[wire], deadline).await {
                Ok(()) => conn.read_reply(deadline).await,
                Err(e) => Err(e),
            },
            None => return None,
        };
        self.finish_command(stage, vec![shown.to_string()], started, result, weight)
    }

    fn finish_command(
        &mut self,
        stage: Stage,
        sent: Vec<String>,
        started: Instant,
        result: Result<Reply, ConnError>,
        weight: Weight,
    ) -> Option<Reply> {
        let reply = result.as_ref().ok().cloned();
        let idx = self.record(stage, sent, started, result, weight);
        match &reply {
            None => self.conn = None,
            // RFC 5321 3.8: 421 means the server is closing the channel. That ends the check
            // even at a stage that is otherwise informational (STARTTLS in auto mode); only
            // RSET and QUIT come after everything was already checked.
            Some(r) if r.code == 421 => {
                self.note(idx, "421: the server is closing the connection");
                self.conn = None;
                if !matches!(stage, Stage::Rset | Stage::Quit) && self.failed.is_none() {
                    self.failed = Some(idx);
                }
            }
            Some(_) => {}
        }
        reply
    }

    async fn run(&mut self) {
        if !self.connect().await {
            return;
        }
        if self.opts.implicit_tls && !self.handshake().await {
            return;
        }
        if !self.banner().await {
            return;
        }
        let Some(caps) = self.greet(Stage::Ehlo).await else {
            return;
        };
        let caps = if self.opts.implicit_tls {
            caps
        } else {
            match self.starttls(caps).await {
                Some(c) => c,
                None => return,
            }
        };
        if self.opts.auth.is_some() && !self.auth(&caps).await {
            self.quit().await;
            return;
        }
        let open = self.transaction(&caps).await;
        if open {
            self.rset().await;
        }
        self.quit().await;
    }

    async fn resolve(&mut self) -> Result<Vec<IpAddr>, ConnError> {
        if let Some(addrs) = &self.opts.addrs {
            return Ok(addrs.clone());
        }
        if let Ok(ip) = self.opts.host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let host = self.opts.host.trim_end_matches('.').to_string();
        let lookup = tokio::net::lookup_host((host.clone(), self.opts.port));
        let deadline = Instant::now() + self.opts.connect_timeout;
        match timeout_at(deadline, lookup).await {
            Ok(Ok(addrs)) => Ok(addrs.map(|a| a.ip()).collect()),
            Ok(Err(e)) => Err(ConnError::new(
                ErrorKind::Dns,
                format!("cannot resolve {host}: {e}"),
            )),
            Err(_) => Err(ConnError::new(
                ErrorKind::Dns,
                format!("resolving {host} timed out"),
            )),
        }
    }

    fn family_ok(&self, ip: &IpAddr) -> bool {
        match self.opts.family {
            Some(Family::V4) => ip.is_ipv4(),
            Some(Family::V6) => ip.is_ipv6(),
            None => self.opts.source.is_none_or(|s| s.is_ipv4() == ip.is_ipv4()),
        }
    }

    async fn connect(&mut self) -> bool {
        let started = Instant::now();
        let addrs = match self.resolve().await {
            Ok(a) => a,
            Err(e) => {
                self.record(
                    Stage::Connect,
                    Vec::new(),
                    started,
                    Err(e),
                    Weight::Decisive,
                );
                return false;
            }
        };
        let candidates: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|ip| self.family_ok(ip))
            .collect();
        if candidates.is_empty() {
            let fam = match self.opts.family {
                Some(Family::V4) => "IPv4",
                Some(Family::V6) => "IPv6",
                None => "the source address's family",
            };
            let msg = format!("{} has no {fam} address", self.opts.host);
            self.record_error(Stage::Connect, Vec::new(), ErrorKind::Dns, msg);
            return false;
        }
        let mut notes = Vec::new();
        let mut last_err = None;
        let several = candidates.len() > 1;
        for ip in candidates {
            let addr = SocketAddr::new(ip, self.opts.port);
            self.ip = Some(ip);
            match self.connect_one(addr).await {
                Ok(tcp) => {
                    self.local = tcp.local_addr().ok();
                    let local = self.local.map(|l| format!(" from {l}")).unwrap_or_default();
                    notes.push(format!("connected to {addr}{local}"));
                    self.conn = Some(SmtpConn::new(Transport::Plain(tcp)));
                    let idx = self.record(
                        Stage::Connect,
                        Vec::new(),
                        started,
                        Ok(connected_reply()),
                        Weight::Decisive,
                    );
                    if let Some(s) = self.stages.get_mut(idx) {
                        // A connect has no SMTP reply: keep the outcome, drop the placeholder.
                        s.reply = None;
                        s.diagnosis = None;
                        s.notes = notes;
                    }
                    return true;
                }
                Err(e) => {
                    if several {
                        notes.push(format!("{addr}: {}", e.message));
                    }
                    last_err = Some(e);
                }
            }
        }
        let err = last_err.unwrap_or_else(|| ConnError::new(ErrorKind::Unreachable, "no address"));
        let idx = self.record(
            Stage::Connect,
            Vec::new(),
            started,
            Err(err),
            Weight::Decisive,
        );
        if let Some(s) = self.stages.get_mut(idx) {
            s.notes = notes;
        }
        false
    }

    async fn connect_one(&self, addr: SocketAddr) -> Result<TcpStream, ConnError> {
        let sock = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| ConnError::from_io(&e, "creating the socket"))?;
        if let Some(src) = self.opts.source {
            sock.bind(SocketAddr::new(src, 0)).map_err(|e| {
                ConnError::from_io(&e, &format!("binding the source address {src}"))
            })?;
        }
        let deadline = Instant::now() + self.opts.connect_timeout;
        match timeout_at(deadline, sock.connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                Ok(tcp)
            }
            Ok(Err(e)) => Err(ConnError::from_io(&e, "connecting")),
            Err(_) => Err(ConnError::new(
                ErrorKind::Timeout,
                format!(
                    "no answer to the connection attempt within {} (filtered: a firewall dropping \
                     packets, or the host is down)",
                    humantime::format_duration(self.opts.connect_timeout)
                ),
            )),
        }
    }

    async fn banner(&mut self) -> bool {
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let result = conn.read_reply(deadline).await;
        let early = conn.buffered();
        let reply =
            self.finish_command(Stage::Banner, Vec::new(), started, result, Weight::Decisive);
        let idx = self.stages.len() - 1;
        let Some(reply) = reply else {
            if self.opts.port == 465 && !self.opts.implicit_tls {
                self.note(
                    idx,
                    "port 465 normally expects TLS at once: try --tls-implicit",
                );
            }
            return false;
        };
        if let Some(obs) = diagnose::observe_banner(&reply) {
            let note = "banner masked with asterisks: a firewall inspecting SMTP (e.g. Cisco \
                        ASA/PIX 'inspect esmtp') is rewriting the session";
            self.observe(idx, obs, note.to_string());
        }
        if early > 0 && reply.code == 220 {
            // RFC 5321 4.3.1: the client speaks first after the greeting; data already here
            // would be taken for the reply to EHLO.
            self.mark_error(
                idx,
                ErrorKind::Protocol,
                format!(
                    "the server sent {early} byte(s) after its greeting before the client spoke"
                ),
            );
            self.conn = None;
            return false;
        }
        match reply.first_digit() {
            2 => true,
            _ => {
                if reply.code != 421 {
                    // RFC 5321 3.1: after a 554 greeting the server waits for QUIT.
                    self.quit().await;
                }
                false
            }
        }
    }

    /// Turns an already-recorded stage into an error (a reply came, but the session is broken).
    fn mark_error(&mut self, idx: usize, kind: ErrorKind, message: String) {
        let stage = match self.stages.get(idx) {
            Some(s) => s.stage,
            None => return,
        };
        let observed = Observed::Error {
            kind,
            detail: &message,
        };
        let d = diagnose::diagnose(stage, observed, self.ctx);
        if let Some(s) = self.stages.get_mut(idx) {
            s.outcome = Outcome::Error;
            s.error = Some(StageError { kind, message });
            s.diagnosis = Some(d);
        }
        if self.failed.is_none() {
            self.failed = Some(idx);
        }
    }

    fn ehlo_name(&self) -> String {
        if let Some(n) = &self.opts.ehlo {
            return n.clone();
        }
        if let Some(h) = local_fqdn() {
            return h;
        }
        // RFC 5321 4.1.4: without a domain name, the client sends its address literal.
        match self.local.map(|l| l.ip()) {
            Some(IpAddr::V4(ip)) => format!("[{ip}]"),
            Some(IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
            None => "[127.0.0.1]".to_string(),
        }
    }

    /// EHLO (falling back to HELO when the server does not know EHLO). `stage` is Ehlo or
    /// EhloTls.
    async fn greet(&mut self, stage: Stage) -> Option<Capabilities> {
        let name = self.ehlo_name();
        let cmd = format!("EHLO {name}");
        let reply = self.command(stage, &cmd, &cmd, Weight::Decisive).await?;
        let idx = self.stages.len() - 1;
        if reply.code == 250 {
            let caps = Capabilities::parse(&reply);
            if let Some(obs) = diagnose::observe_ehlo(&reply) {
                let note = format!(
                    "EHLO keywords masked ({}): a firewall inspecting SMTP (e.g. Cisco ASA/PIX \
                     'inspect esmtp') is removing extensions such as STARTTLS",
                    caps.masked_keywords().join(", ")
                );
                self.observe(idx, obs, note);
            }
            if stage == Stage::Ehlo {
                self.caps.before_tls = Some(caps.clone());
            } else {
                self.caps.after_tls = Some(caps.clone());
            }
            return Some(caps);
        }
        // 500/502 (unknown command) or 5xx to EHLO: an old server; RFC 5321 4.1.4 fallback.
        if reply.first_digit() == 5 && stage == Stage::Ehlo && self.conn.is_some() {
            if let Some(s) = self.stages.get_mut(idx) {
                // Superseded by HELO: not the verdict.
                s.notes
                    .push("EHLO refused: falling back to HELO".to_string());
            }
            if self.failed == Some(idx) {
                self.failed = None;
            }
            let cmd = format!("HELO {name}");
            let helo = self
                .command(Stage::Helo, &cmd, &cmd, Weight::Decisive)
                .await?;
            if helo.code == 250 {
                let caps = Capabilities::default();
                self.caps.before_tls = Some(caps.clone());
                return Some(caps);
            }
        }
        self.quit().await;
        None
    }

    /// STARTTLS as the mode asks. Returns the capabilities to go on with (after TLS when it
    /// happened), or None when the probe ends here.
    async fn starttls(&mut self, caps: Capabilities) -> Option<Capabilities> {
        let mode = self.opts.starttls;
        if mode == StartTls::Never {
            return Some(caps);
        }
        let ehlo_idx = self.stages.len() - 1;
        if !caps.starttls {
            let masked = !caps.masked_keywords().is_empty();
            if mode == StartTls::Require {
                let mut msg = "the server did not offer STARTTLS (required by --starttls require)"
                    .to_string();
                if masked {
                    msg.push_str("; its EHLO keywords were masked by a middlebox");
                }
                self.record_error(Stage::Starttls, Vec::new(), ErrorKind::Tls, msg);
                let idx = self.stages.len() - 1;
                let d = Diagnosis::new(
                    diagnose::explain_observation(Observation::StarttlsNotOffered),
                    self.ctx,
                );
                if let Some(s) = self.stages.get_mut(idx) {
                    s.diagnosis = Some(d);
                }
                self.quit().await;
                return None;
            }
            let note = "STARTTLS not offered: this session stays unencrypted".to_string();
            self.observe(ehlo_idx, Observation::StarttlsNotOffered, note);
            self.warnings
                .push("STARTTLS not offered: the session was not encrypted".into());
            return Some(caps);
        }
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let conn = self.conn.as_mut()?;
        let result = match conn.send_lines(&["STARTTLS"], deadline).await {
            Ok(()) => conn.read_reply(deadline).await,
            Err(e) => Err(e),
        };
        let weight = if mode == StartTls::Require {
            Weight::Decisive
        } else {
            Weight::Informational
        };
        let reply = self.finish_command(
            Stage::Starttls,
            vec!["STARTTLS".into()],
            started,
            result,
            weight,
        )?;
        let idx = self.stages.len() - 1;
        if reply.code != 220 {
            // A 421 closed the connection; nothing more to do on it.
            self.conn.as_ref()?;
            if mode == StartTls::Require {
                self.quit().await;
                return None;
            }
            self.note(
                idx,
                "STARTTLS refused: going on unencrypted, as a sending MTA would",
            );
            self.warnings.push(format!(
                "STARTTLS refused with {}: the session was not encrypted",
                reply.code
            ));
            return Some(caps);
        }
        let conn = self.conn.take()?;
        let tcp = match conn.into_tcp_for_starttls() {
            Ok(tcp) => tcp,
            Err((e, _conn)) => {
                self.mark_error(idx, e.kind, e.message);
                return None;
            }
        };
        self.conn = Some(SmtpConn::new(Transport::Plain(tcp)));
        if !self.handshake().await {
            return None;
        }
        self.greet(Stage::EhloTls).await
    }

    /// The TLS handshake on the current connection (after STARTTLS or right after connect).
    async fn handshake(&mut self) -> bool {
        let started = Instant::now();
        let Some((config, record)) = self.tls_config.clone() else {
            return false;
        };
        let Some(conn) = self.conn.take() else {
            return false;
        };
        let tcp = match conn.into_tcp_for_starttls() {
            Ok(tcp) => tcp,
            Err((e, _)) => {
                self.record(
                    Stage::TlsHandshake,
                    Vec::new(),
                    started,
                    Err(e),
                    Weight::Decisive,
                );
                return false;
            }
        };
        let sni = self.opts.sni_name();
        let server_name = match (&sni, self.ip) {
            (Some(name), _) => rustls_pki_types::ServerName::try_from(name.clone()).ok(),
            (None, Some(ip)) => Some(rustls_pki_types::ServerName::IpAddress(ip.into())),
            (None, None) => None,
        };
        let Some(server_name) = server_name else {
            let msg = format!(
                "{:?} is not a valid TLS server name",
                sni.unwrap_or_default()
            );
            self.record_error(Stage::TlsHandshake, Vec::new(), ErrorKind::Tls, msg);
            return false;
        };
        let client_cert = self.opts.tls.client_cert.is_some();
        let connector = TlsConnector::from(config);
        let deadline = self.stage_deadline();
        let result = timeout_at(deadline, connector.connect(server_name, tcp)).await;
        match result {
            Ok(Ok(stream)) => {
                let report = tls::report(stream.get_ref().1, &record, client_cert);
                self.conn = Some(SmtpConn::new(Transport::Tls(Box::new(stream))));
                let idx = self.record(
                    Stage::TlsHandshake,
                    Vec::new(),
                    started,
                    Ok(connected_reply()),
                    Weight::Decisive,
                );
                let summary = format!(
                    "{} {} {}",
                    report.version.as_deref().unwrap_or("?"),
                    report.cipher.as_deref().unwrap_or("?"),
                    report.key_exchange_group.as_deref().unwrap_or("")
                );
                let verify = report.verify_error.clone();
                let ctx = self.ctx;
                if let Some(s) = self.stages.get_mut(idx) {
                    s.reply = None;
                    s.diagnosis = None;
                    s.notes.push(summary.trim_end().to_string());
                    if let Some(why) = &verify {
                        s.notes.push(format!("certificate not verified: {why}"));
                        let e = diagnose::explain_tls_verification(why);
                        s.diagnosis = Some(Diagnosis::new(e, ctx));
                    }
                }
                if let Some(why) = verify {
                    self.warnings
                        .push(format!("certificate not verified: {why}"));
                }
                self.tls = Some(report);
                true
            }
            Ok(Err(e)) => {
                let mut report = tls::report_from_record(&record, client_cert);
                let msg = match (&report.verify_error, self.opts.tls.verify) {
                    (Some(why), VerifyMode::Strict) if !report.chain.is_empty() => {
                        format!("certificate verification failed (--tls-verify strict): {why}")
                    }
                    _ => describe_handshake_error(&e),
                };
                if report.chain.is_empty() {
                    report.verify_error = None;
                }
                self.tls = Some(report);
                self.record_error(Stage::TlsHandshake, Vec::new(), ErrorKind::Tls, msg);
                false
            }
            Err(_) => {
                let msg = "timed out during the TLS handshake".to_string();
                self.record_error(Stage::TlsHandshake, Vec::new(), ErrorKind::Timeout, msg);
                false
            }
        }
    }

    async fn auth(&mut self, caps: &Capabilities) -> bool {
        let Some(auth) = self.opts.auth.clone() else {
            return true;
        };
        let tls = self.conn.as_ref().is_some_and(SmtpConn::is_tls);
        if !tls && !auth.allow_plaintext {
            let msg = "refusing to send credentials over an unencrypted connection (use \
                       --starttls require or --tls-implicit; --auth-plaintext overrides)"
                .to_string();
            self.record_error(Stage::Auth, Vec::new(), ErrorKind::Tls, msg);
            return false;
        }
        let offered = &caps.auth;
        let mech = match auth.mech {
            Some(m) => m,
            None if offered.iter().any(|m| m == "PLAIN") => AuthMech::Plain,
            None if offered.iter().any(|m| m == "LOGIN") => AuthMech::Login,
            None => {
                let msg = if offered.is_empty() {
                    "the server did not offer AUTH on this connection".to_string()
                } else {
                    format!(
                        "the server offers no mechanism mxtrace supports (offered: {}; \
                         supported: PLAIN, LOGIN)",
                        offered.join(" ")
                    )
                };
                self.record_error(Stage::Auth, Vec::new(), ErrorKind::Protocol, msg);
                return false;
            }
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let mut sent = Vec::new();
        let mut challenges = Vec::new();
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let result = match mech {
            AuthMech::Plain => {
                let blob = b64(&format!("\0{}\0{}", auth.user, auth.password.expose()));
                sent.push(format!("AUTH PLAIN {REDACTED}"));
                match conn
                    .send_lines(&[&format!("AUTH PLAIN {blob}")], deadline)
                    .await
                {
                    Ok(()) => conn.read_reply(deadline).await,
                    Err(e) => Err(e),
                }
            }
            AuthMech::Login => {
                // RFC 4954 via the LOGIN draft: 334 for the user name, 334 for the password.
                let steps = [
                    ("AUTH LOGIN".to_string(), "AUTH LOGIN".to_string()),
                    (b64(&auth.user), b64(&auth.user)),
                    (b64(auth.password.expose()), REDACTED.to_string()),
                ];
                let mut result = Err(ConnError::new(ErrorKind::Protocol, "no reply"));
                for (wire, shown) in steps {
                    sent.push(shown);
                    result = match conn.send_lines(&[&wire], deadline).await {
                        Ok(()) => conn.read_reply(deadline).await,
                        Err(e) => Err(e),
                    };
                    match &result {
                        Ok(r) if r.code == 334 => challenges.push(r.lines.join(" ")),
                        _ => break,
                    }
                }
                result
            }
        };
        let reply = self.finish_command(Stage::Auth, sent, started, result, Weight::Decisive);
        let idx = self.stages.len() - 1;
        for c in challenges {
            self.note(idx, format!("challenge: {c}"));
        }
        match reply {
            Some(r) if r.code == 235 => true,
            Some(r) if r.code == 334 => {
                self.mark_error(
                    idx,
                    ErrorKind::Protocol,
                    "the server asked for more than user name and password".to_string(),
                );
                false
            }
            _ => false,
        }
    }

    /// MAIL, RCPT (pipelined when offered) and DATA when asked. Returns true when a transaction
    /// is left open (MAIL accepted and not completed by DATA), so RSET is due.
    async fn transaction(&mut self, caps: &Capabilities) -> bool {
        if self.opts.from.is_none() && self.opts.rcpts.is_empty() {
            return false;
        }
        let from = self.opts.from.clone().unwrap_or_default();
        let mail = format!("MAIL FROM:{}", angle(&from));
        let rcpts: Vec<String> = self
            .opts
            .rcpts
            .iter()
            .map(|r| format!("RCPT TO:{}", angle(r)))
            .collect();
        let mut accepted = 0;
        let mail_ok;
        if caps.pipelining && self.opts.pipelining && !rcpts.is_empty() {
            // RFC 2920: MAIL and every RCPT in one write; replies come back in order.
            let started = Instant::now();
            let deadline = self.stage_deadline();
            let Some(conn) = self.conn.as_mut() else {
                return false;
            };
            let mut group: Vec<&str> = vec![mail.as_str()];
            group.extend(rcpts.iter().map(String::as_str));
            if let Err(e) = conn.send_lines(&group, deadline).await {
                self.finish_command(
                    Stage::MailFrom,
                    vec![mail.clone()],
                    started,
                    Err(e),
                    Weight::Decisive,
                );
                return false;
            }
            let result = self.read_next(deadline).await;
            mail_ok = self
                .finish_command(
                    Stage::MailFrom,
                    vec![mail.clone()],
                    started,
                    result,
                    Weight::Decisive,
                )
                .is_some_and(|r| r.is_positive());
            let mail_idx = self.stages.len() - 1;
            self.note(mail_idx, format!("pipelined with {} RCPT", rcpts.len()));
            for rcpt in &rcpts {
                if self.conn.is_none() {
                    return false;
                }
                let result = self.read_next(deadline).await;
                if self
                    .finish_command(
                        Stage::RcptTo,
                        vec![rcpt.clone()],
                        started,
                        result,
                        Weight::Decisive,
                    )
                    .is_some_and(|r| r.is_positive())
                {
                    accepted += 1;
                }
            }
        } else {
            mail_ok = self
                .command(Stage::MailFrom, &mail, &mail, Weight::Decisive)
                .await
                .is_some_and(|r| r.is_positive());
            if !mail_ok {
                return false;
            }
            for rcpt in &rcpts {
                if self.conn.is_none() {
                    return false;
                }
                if self
                    .command(Stage::RcptTo, rcpt, rcpt, Weight::Decisive)
                    .await
                    .is_some_and(|r| r.is_positive())
                {
                    accepted += 1;
                }
            }
        }
        if self.conn.is_none() {
            return false;
        }
        if !mail_ok {
            return false;
        }
        if self.opts.data && accepted > 0 {
            return !self.data().await;
        }
        if self.opts.data && !rcpts.is_empty() {
            let idx = self.stages.len() - 1;
            self.note(idx, "no recipient accepted: DATA not sent");
        }
        true
    }

    async fn read_next(&mut self, deadline: Instant) -> Result<Reply, ConnError> {
        match self.conn.as_mut() {
            Some(conn) => conn.read_reply(deadline).await,
            None => Err(ConnError::new(ErrorKind::Reset, "connection closed")),
        }
    }

    /// DATA, the test message, end of data. Returns true when the message was accepted.
    async fn data(&mut self) -> bool {
        let Some(r) = self
            .command(Stage::Data, "DATA", "DATA", Weight::Decisive)
            .await
        else {
            return false;
        };
        if r.code != 354 {
            return false;
        }
        let id = probe_id();
        let message = self.test_message(&id);
        self.probe_id = Some(id);
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let result = match conn.send_raw(message.as_bytes(), deadline).await {
            Ok(()) => conn.read_reply(deadline).await,
            Err(e) => Err(e),
        };
        let lines = message.lines().count();
        let shown = vec![
            format!("<message: {lines} lines, {} bytes>", message.len()),
            ".".into(),
        ];
        self.finish_command(Stage::EndOfData, shown, started, result, Weight::Decisive)
            .is_some_and(|r| r.first_digit() == 2)
    }

    /// A small RFC 5322 message that says what it is, dot-stuffed, ending with CRLF.CRLF.
    fn test_message(&self, id: &str) -> String {
        let from = self.opts.from.clone().unwrap_or_default();
        let domain = self.ehlo_name().trim_matches(['[', ']']).to_string();
        let mut m = String::new();
        let mut header = |h: String| {
            m.push_str(&h);
            m.push_str("\r\n");
        };
        header(format!("Date: {}", crate::date::rfc5322(SystemTime::now())));
        header(format!(
            "From: {}",
            if from.is_empty() {
                "<>".to_string()
            } else {
                angle(&from)
            }
        ));
        header(format!(
            "To: {}",
            self.opts
                .rcpts
                .iter()
                .map(|r| angle(r))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        header(format!("Subject: mxtrace probe {id}"));
        header(format!("Message-ID: <{id}@{domain}>"));
        header(format!("X-Mxtrace-Probe: {id}"));
        header("MIME-Version: 1.0".to_string());
        header("Content-Type: text/plain; charset=us-ascii".to_string());
        for h in &self.opts.headers {
            header(h.clone());
        }
        m.push_str("\r\n");
        for line in [
            "This is a test message sent by mxtrace to check the mail path.".to_string(),
            format!("Probe id: {id}"),
            "It can be deleted.".to_string(),
        ] {
            if line.starts_with('.') {
                m.push('.');
            }
            m.push_str(&line);
            m.push_str("\r\n");
        }
        m.push_str(".\r\n");
        m
    }

    async fn rset(&mut self) {
        if self.conn.is_some() {
            self.command(Stage::Rset, "RSET", "RSET", Weight::Informational)
                .await;
        }
    }

    async fn quit(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let started = Instant::now();
        let deadline = Instant::now() + self.opts.stage_timeout.min(QUIT_WAIT);
        let result = match conn.send_lines(&["QUIT"], deadline).await {
            Ok(()) => conn.read_reply(deadline).await,
            Err(e) => Err(e),
        };
        if let Some(conn) = self.conn.as_mut() {
            conn.shutdown(Instant::now() + Duration::from_millis(200))
                .await;
        }
        self.finish_command(
            Stage::Quit,
            vec!["QUIT".into()],
            started,
            result,
            Weight::Informational,
        );
        self.conn = None;
    }

    fn finish(mut self) -> ProbeReport {
        // Steps for the server that answered: a known non-Microsoft server gets no Exchange
        // Online receiving-side steps.
        let banner = self
            .stages
            .iter()
            .find(|s| s.stage == Stage::Banner)
            .and_then(|s| s.reply.as_ref());
        let caps = self
            .caps
            .after_tls
            .as_ref()
            .or(self.caps.before_tls.as_ref());
        let peer = diagnose::identify_peer(&self.opts.host, banner, caps);
        for s in &mut self.stages {
            if let Some(d) = s.diagnosis.as_mut() {
                diagnose::fit_steps(d, peer);
            }
        }
        let verdict = self.verdict();
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
            stages: self.stages,
        }
    }

    fn verdict(&self) -> Verdict {
        match self.failed.and_then(|i| self.stages.get(i)) {
            None => {
                let last = self
                    .stages
                    .iter()
                    .rev()
                    .find(|s| !matches!(s.stage, Stage::Quit | Stage::Rset));
                let mut summary = match last {
                    Some(s) => format!(
                        "passed: every stage answered, last {} {}",
                        s.stage,
                        describe(s)
                    ),
                    None => "passed".to_string(),
                };
                for w in &self.warnings {
                    summary.push_str("; warning: ");
                    summary.push_str(w);
                }
                Verdict {
                    passed: true,
                    outcome: Outcome::Ok,
                    failed_stage: None,
                    summary,
                    warnings: self.warnings.clone(),
                }
            }
            Some(s) => {
                let mut summary = format!("failed at {}: {}", s.stage, describe(s));
                if let Some(d) = &s.diagnosis {
                    summary.push_str(&format!(" ({})", category_name(d)));
                }
                Verdict {
                    passed: false,
                    outcome: s.outcome,
                    failed_stage: Some(s.stage),
                    summary,
                    warnings: self.warnings.clone(),
                }
            }
        }
    }
}

fn category_name(d: &Diagnosis) -> String {
    serde_json::to_value(d.category)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `250 2.1.5` or `refused (why)`, for summaries.
fn describe(s: &StageRecord) -> String {
    match (&s.reply, &s.error) {
        (_, Some(e)) => format!("{} ({})", e.kind.as_str(), e.message),
        (Some(r), None) => {
            let mut d = r.code.to_string();
            if let Some(e) = r.enhanced {
                d.push_str(&format!(" {e}"));
            }
            d
        }
        (None, None) => "ok".to_string(),
    }
}

/// A placeholder "reply" for stages that have none (connect, handshake), so one code path
/// records every stage; the caller removes it.
fn connected_reply() -> Reply {
    Reply {
        code: 250,
        enhanced: None,
        lines: Vec::new(),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// `<addr>`, leaving an address the user already bracketed alone.
fn angle(addr: &str) -> String {
    let a = addr.trim();
    if a.starts_with('<') && a.ends_with('>') {
        a.to_string()
    } else {
        format!("<{a}>")
    }
}

/// This machine's name when it is a fully qualified domain name.
fn local_fqdn() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (name.contains('.') && !name.ends_with('.') && name.len() <= 253).then(|| name.to_string())
}

/// A probe id unique enough to find the message again: time, process and a random hash key.
fn probe_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("mxt-{:016x}", h.finish())
}

/// rustls errors in words an admin can act on.
fn describe_handshake_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("protocolversion") || lower.contains("peer is incompatible") {
        format!(
            "TLS incompatible: the server offers no protocol version or cipher mxtrace supports \
             (TLS 1.2 and 1.3 only; the server may be limited to TLS 1.0/1.1): {text}"
        )
    } else if lower.contains("handshakefailure") {
        format!("the server refused the handshake (no shared cipher or group?): {text}")
    } else if e.kind() == std::io::ErrorKind::UnexpectedEof
        || lower.contains("connection reset")
        || lower.contains("tls handshake eof")
    {
        format!("the server closed the connection during the TLS handshake: {text}")
    } else if lower.contains("corrupt message") || lower.contains("invalid message") {
        format!("the server did not answer with TLS after agreeing to STARTTLS: {text}")
    } else {
        format!("TLS handshake failed: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_brackets() {
        assert_eq!(angle("a@b"), "<a@b>");
        assert_eq!(angle("<a@b>"), "<a@b>");
        assert_eq!(angle(""), "<>");
    }
}
