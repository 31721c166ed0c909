//! Everything about starting TLS, in one place: STARTTLS as `--starttls` asks (RFC 3207), the
//! handshake (after STARTTLS or, with `--tls-implicit`, right after connect), and the EHLO
//! that follows on the encrypted channel.

use super::session::{Answer, ProbeSession};
use super::StartTls;
use mxtrace_knowledge::Observation;
use mxtrace_net::conn::{SmtpConn, Transport};
use mxtrace_net::tls::{self, SharedRecord, TlsStart, VerifyMode};
use mxtrace_proto::model::{ErrorKind, Stage};
use mxtrace_proto::smtp::ehlo::Capabilities;
use mxtrace_proto::spec::Field;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A TLS session over the socket that keeps the server's first bytes.
type TlsTcp = TlsStream<tls::Sniffed>;

impl ProbeSession<'_> {
    /// Says that this handshake read the system trust store, and how long that took.
    fn note_store_read(&mut self, idx: usize, read: Option<tls::SystemStoreRead>) {
        if let Some(r) = read {
            let note = format!(
                "read the system trust store ({} roots) in {:.1} ms: neither Mozilla's roots \
                 nor --tls-ca-file verified the chain; that time is mxtrace's, left out of \
                 this stage",
                r.roots,
                r.took.as_secs_f64() * 1000.0
            );
            self.log.note(idx, note);
        }
    }

    /// STARTTLS as the mode asks. Returns the capabilities to go on with (after TLS when it
    /// happened), or None when the probe ends here.
    pub(super) async fn starttls(&mut self, caps: Capabilities) -> Option<Capabilities> {
        let mode = self.opts.starttls;
        if self.opts.implicit_tls || mode == StartTls::Never {
            return Some(caps);
        }
        if !caps.starttls {
            return self.starttls_not_offered(caps).await;
        }
        let reply = match self.command(Stage::Starttls, "STARTTLS", "STARTTLS").await {
            Answer::Expected(r) => r,
            // Timeout, reset or 421: the session is over, in every mode.
            Answer::Closed => return None,
            Answer::Other(r) => {
                // RFC 3207 4: 454 (or another 4xx) means TLS is not available now; a sending
                // MTA goes on in plaintext. A 5xx or an out-of-step reply ends the probe.
                if mode == StartTls::Auto && r.first_digit() == 4 {
                    let idx = self.log.last();
                    self.log.note(
                        idx,
                        "STARTTLS refused: going on unencrypted, as a sending MTA would",
                    );
                    self.warnings.push(format!(
                        "STARTTLS refused with {}: the session was not encrypted",
                        r.code
                    ));
                    return Some(caps);
                }
                self.quit().await;
                return None;
            }
        };
        debug_assert_eq!(reply.code, 220);
        let idx = self.log.last();
        let conn = self.conn.take()?;
        match conn.into_tcp_for_starttls() {
            Ok(tcp) => self.conn = Some(SmtpConn::new(Transport::Plain(tcp))),
            Err((e, _conn)) => {
                self.log.mark_error(idx, e.kind, e.message);
                return None;
            }
        }
        if !self.handshake().await {
            return None;
        }
        self.ehlo(Stage::EhloTls).await
    }

    async fn starttls_not_offered(&mut self, caps: Capabilities) -> Option<Capabilities> {
        let masked = !caps.masked_keywords().is_empty();
        if self.opts.starttls == StartTls::Require {
            let mut msg = format!(
                "the server did not offer STARTTLS (required by {})",
                Field::StartTls.set_to("require").word(self.opts.naming)
            );
            if masked {
                msg.push_str("; its EHLO keywords were masked by a middlebox");
            }
            let idx = self.fail_without_reply(Stage::Starttls, Vec::new(), ErrorKind::Tls, msg);
            self.log
                .observations
                .push((idx, Observation::StarttlsNotOffered));
            self.quit().await;
            return None;
        }
        let ehlo = self.log.last();
        let note = "STARTTLS not offered: this session stays unencrypted";
        self.log
            .observe(ehlo, Observation::StarttlsNotOffered, note);
        self.warnings
            .push("STARTTLS not offered: the session was not encrypted".into());
        Some(caps)
    }

    /// The TLS handshake on the current connection (after STARTTLS or right after connect).
    pub(super) async fn handshake(&mut self) -> bool {
        let started = Instant::now();
        let start = if self.opts.implicit_tls {
            TlsStart::Implicit
        } else {
            TlsStart::Starttls
        };
        let Some((config, record)) = self.tls_config.clone() else {
            self.conn = None;
            return false;
        };
        let Some((tcp, server_name)) = self.handshake_target(started) else {
            return false;
        };
        mxtrace_net::conn::quick_ack(&tcp);
        let connector = TlsConnector::from(config);
        let deadline = self.stage_deadline();
        let connect = connector
            .connect(server_name, tls::Sniffed::new(tcp))
            .into_fallible();
        let outcome = timeout_at(deadline, tls::recorded(record.clone(), connect)).await;
        // Reading the system store is mxtrace's time, not the peer's: left out of the stage
        // (its start moves by it) and said in a note.
        let store_read = record.lock().ok().and_then(|r| r.system_store_read);
        let started = started + store_read.map(|r| r.took).unwrap_or_default();
        match outcome {
            Ok(Ok(stream)) => {
                self.handshake_done(stream, &record, started, store_read);
                true
            }
            Ok(Err((e, io))) => {
                let msg = self.handshake_failure(&e, &io, &record, start);
                let err = mxtrace_net::conn::ConnError::new(ErrorKind::Tls, msg);
                let idx = self
                    .log
                    .error(Stage::TlsHandshake, Vec::new(), started, false, err);
                self.note_store_read(idx, store_read);
                false
            }
            Err(_) => {
                let msg = format!("timed out during the {}", start.as_str());
                let err = mxtrace_net::conn::ConnError::new(ErrorKind::Timeout, msg);
                self.log
                    .error(Stage::TlsHandshake, Vec::new(), started, false, err);
                false
            }
        }
    }

    /// The socket to start TLS on and the name to verify (SNI, else the address); None when
    /// the stage already failed.
    fn handshake_target(&mut self, started: Instant) -> Option<(TcpStream, ServerName<'static>)> {
        let conn = self.conn.take()?;
        let tcp = match conn.into_tcp_for_starttls() {
            Ok(tcp) => tcp,
            Err((e, _)) => {
                self.log
                    .error(Stage::TlsHandshake, Vec::new(), started, false, e);
                return None;
            }
        };
        let sni = self.opts.sni_name();
        let server_name = match (&sni, self.ip) {
            (Some(name), _) => ServerName::try_from(name.clone()).ok(),
            (None, Some(ip)) => Some(ServerName::IpAddress(ip.into())),
            (None, None) => None,
        };
        if server_name.is_none() {
            let msg = format!(
                "{:?} is not a valid TLS server name",
                sni.unwrap_or_default()
            );
            self.fail_without_reply(Stage::TlsHandshake, Vec::new(), ErrorKind::Tls, msg);
        }
        Some((tcp, server_name?))
    }

    /// The session goes on encrypted; the TLS report is kept, a certificate that did not
    /// verify noted.
    fn handshake_done(
        &mut self,
        stream: TlsTcp,
        record: &SharedRecord,
        started: Instant,
        store_read: Option<tls::SystemStoreRead>,
    ) {
        let client_cert = self.opts.tls.client_cert.is_some();
        let report = tls::report(stream.get_ref().1, record, client_cert, self.opts.naming);
        self.conn = Some(SmtpConn::new(Transport::Tls(Box::new(stream))));
        let idx = self.log.done(Stage::TlsHandshake, started, true);
        let summary = format!(
            "{} {} {}",
            report.version.as_deref().unwrap_or("?"),
            report.cipher.as_deref().unwrap_or("?"),
            report.key_exchange_group.as_deref().unwrap_or("")
        );
        self.log.note(idx, summary.trim_end());
        self.note_store_read(idx, store_read);
        if let Some(why) = &report.verify_error {
            self.log
                .note(idx, format!("certificate not verified: {why}"));
            self.warnings
                .push(format!("certificate not verified: {why}"));
        }
        self.tls = Some(report);
    }

    /// Why the handshake failed, in words: DANE, strict verification, or the handshake
    /// itself. The TLS report (the chain, when one came) is kept.
    fn handshake_failure(
        &mut self,
        e: &std::io::Error,
        io: &tls::Sniffed,
        record: &SharedRecord,
        start: TlsStart,
    ) -> String {
        // With no chain, verify_error says "no certificate received" (tls.rs).
        let naming = self.opts.naming;
        let client_cert = self.opts.tls.client_cert.is_some();
        let report = tls::report_from_record(record, client_cert, naming);
        let msg = match (&report.verify_error, self.opts.tls.verify) {
            (Some(why), _) if !self.opts.tls.dane.is_empty() => {
                format!("DANE authentication failed ({}): {why}", start.as_str())
            }
            (Some(why), VerifyMode::Strict) if !report.chain.is_empty() => format!(
                "certificate verification failed ({}, {}): {why}",
                Field::TlsVerify.set_to("strict").word(naming),
                start.as_str()
            ),
            _ => {
                let plaintext = io.plaintext_start();
                tls::describe_handshake_error(e, start, plaintext.as_deref(), naming)
            }
        };
        self.tls = Some(report);
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxtrace_proto::spec::Naming;
    use rustls::{AlertDescription as A, CertificateError as C};

    /// The classifier reads mxtrace's own words: a setting named by its key instead of its
    /// flag must not change what the failure is said to be.
    #[test]
    fn key_wording_classifies_as_flag_wording() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let not_tls = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let handshakes = [
            (
                io(rustls::Error::AlertReceived(A::HandshakeFailure)),
                TlsStart::Starttls,
                None,
            ),
            (
                io(rustls::Error::AlertReceived(A::CertificateRequired)),
                TlsStart::Starttls,
                None,
            ),
            (
                io(not_tls.clone()),
                TlsStart::Implicit,
                Some("220 mx.contoso.test ESMTP"),
            ),
            (io(not_tls), TlsStart::Implicit, None),
            (io(C::NotValidForName.into()), TlsStart::Starttls, None),
        ];
        for (e, start, plaintext) in &handshakes {
            let [flag, key] = [Naming::Flag, Naming::Key]
                .map(|n| tls::describe_handshake_error(e, *start, *plaintext, n));
            assert_ne!(flag, key, "a setting is named");
            assert!(!key.contains("--"), "{key}");
            let [a, b] = [&flag, &key]
                .map(|d| mxtrace_knowledge::explain_error(Stage::TlsHandshake, ErrorKind::Tls, d));
            assert_eq!(
                (a.category, a.layer),
                (b.category, b.layer),
                "{flag}\n{key}"
            );
            assert_eq!(a.cause, b.cause, "{flag}\n{key}");
        }
        for error in [C::UnknownIssuer, C::NotValidForName] {
            for self_signed in [true, false] {
                let v = tls::VerifyFailure::Stores {
                    error: error.clone().into(),
                    self_signed,
                    issuer: "issuer CN=Contoso CA".to_string(),
                };
                let [flag, key] = [Naming::Flag, Naming::Key].map(|n| v.describe(n));
                assert!(key.contains("tls_") && !key.contains("--"), "{key}");
                let [a, b] = [&flag, &key].map(|d| mxtrace_knowledge::explain_tls_verification(d));
                assert_eq!(a.cause, b.cause, "{flag}\n{key}");
            }
        }
    }
}
