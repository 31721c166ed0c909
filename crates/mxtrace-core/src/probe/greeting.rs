//! The greeting: the server speaks first (RFC 5321 3.1). A 220 lets the session go on; a
//! refusal is answered with QUIT; anything else ends the probe here.

use super::session::{Answer, ProbeSession};
use mxtrace_knowledge as knowledge;
use mxtrace_proto::model::{ErrorKind, Stage};
use mxtrace_proto::spec::Field;
use tokio::time::Instant;

impl ProbeSession<'_> {
    pub(super) async fn greeting(&mut self) -> bool {
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let result = conn.read_reply(deadline).await;
        let early = conn.buffered();
        let answer = self.settle(Stage::Banner, Vec::new(), started, result);
        let idx = self.log.last();
        let reply = match answer {
            Answer::Expected(r) | Answer::Other(r) => r,
            Answer::Closed => {
                if self.opts.port == 465 && !self.opts.implicit_tls {
                    let try_it = Field::TlsImplicit.on().word(self.opts.naming);
                    let note = format!("port 465 normally expects TLS at once: try {try_it}");
                    self.log.note(idx, note);
                }
                return false;
            }
        };
        if let Some(obs) = knowledge::observe_banner(&reply) {
            let note = "banner masked with asterisks: a firewall inspecting SMTP (e.g. Cisco \
                        ASA/PIX 'inspect esmtp') is rewriting the session";
            self.log.observe(idx, obs, note);
        }
        if early > 0 && reply.code == 220 {
            // RFC 5321 4.3.1: the client speaks first after the greeting; data already here
            // would be taken for the reply to EHLO.
            let msg = format!(
                "the server sent {early} byte(s) after its greeting before the client spoke"
            );
            self.log.mark_error(idx, ErrorKind::Protocol, msg);
            self.conn = None;
            return false;
        }
        if reply.code == 220 {
            return true;
        }
        // RFC 5321 3.1: after a 554 greeting the server waits for QUIT; a greeting out of step
        // gets one too.
        self.quit().await;
        false
    }
}
