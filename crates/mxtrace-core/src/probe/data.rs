//! DATA, only when asked: a small test message that says what it is, and the end of data.

use super::envelope::angle;
use super::session::{Answer, ProbeSession};
use mxtrace_proto::model::Stage;
use std::time::SystemTime;
use tokio::time::Instant;

impl ProbeSession<'_> {
    /// DATA, the test message, end of data. Returns true when the message was accepted.
    pub(super) async fn data(&mut self) -> bool {
        // Anything but 354 means the server is not reading a message: nothing is sent.
        if !matches!(
            self.command(Stage::Data, "DATA", "DATA").await,
            Answer::Expected(_)
        ) {
            return false;
        }
        let id = self.opts.probe_id.clone().unwrap_or_else(new_probe_id);
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
        matches!(
            self.settle(Stage::EndOfData, shown, started, result),
            Answer::Expected(_)
        )
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
        header(format!(
            "Date: {}",
            mxtrace_proto::date::rfc5322(SystemTime::now())
        ));
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
        // RFC 3834 5: sent by a program, so no auto-responder answers it.
        header("Auto-Submitted: auto-generated".to_string());
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
}

/// A probe id unique enough to find the message again: time, process and a random hash key.
pub fn new_probe_id() -> String {
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
