//! The envelope: MAIL FROM and each RCPT TO, pipelined in one write when the server offers
//! PIPELINING (RFC 2920), one at a time otherwise; then DATA when asked.

use super::session::{Answer, ProbeSession};
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::ehlo::Capabilities;
use tokio::time::Instant;

/// How the envelope ended.
enum Envelope {
    /// MAIL accepted, and this many recipients.
    Open(usize),
    /// MAIL refused, or the dialogue broke: no transaction to reset.
    Closed,
}

impl ProbeSession<'_> {
    /// MAIL, RCPT and DATA when asked. Returns true when a transaction is left open (MAIL
    /// accepted and not completed by DATA), so RSET is due.
    pub(super) async fn transaction(&mut self, caps: &Capabilities) -> bool {
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
        let envelope = if caps.pipelining && self.opts.pipelining && !rcpts.is_empty() {
            self.pipelined(&mail, &rcpts).await
        } else {
            self.one_by_one(&mail, &rcpts).await
        };
        let Envelope::Open(accepted) = envelope else {
            return false;
        };
        if self.conn.is_none() {
            return false;
        }
        if self.opts.data && accepted > 0 {
            return !self.data().await;
        }
        if self.opts.data && !rcpts.is_empty() {
            let idx = self.log.last();
            self.log.note(idx, "no recipient accepted: DATA not sent");
        }
        true
    }

    /// RFC 2920: MAIL and every RCPT in one write; the replies come back in order.
    async fn pipelined(&mut self, mail: &str, rcpts: &[String]) -> Envelope {
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let mut group: Vec<&str> = vec![mail];
        group.extend(rcpts.iter().map(String::as_str));
        let sent = match self.conn.as_mut() {
            Some(conn) => conn.send_lines(&group, deadline).await,
            None => return Envelope::Closed,
        };
        let result = match sent {
            Ok(()) => self.read_next(deadline).await,
            Err(e) => Err(e),
        };
        let mail_answer = self.settle(Stage::MailFrom, vec![mail.to_string()], started, result);
        let idx = self.log.last();
        self.log
            .note(idx, format!("pipelined with {} RCPT", rcpts.len()));
        let mail_ok = matches!(mail_answer, Answer::Expected(_));
        let mut accepted = 0;
        for rcpt in rcpts {
            if self.conn.is_none() {
                return Envelope::Closed;
            }
            let result = self.read_next(deadline).await;
            match self.settle(Stage::RcptTo, vec![rcpt.clone()], started, result) {
                Answer::Expected(_) => accepted += 1,
                Answer::Other(r) if r.is_positive() => return Envelope::Closed,
                _ => {}
            }
        }
        if mail_ok {
            Envelope::Open(accepted)
        } else {
            Envelope::Closed
        }
    }

    async fn one_by_one(&mut self, mail: &str, rcpts: &[String]) -> Envelope {
        if !matches!(
            self.command(Stage::MailFrom, mail, mail).await,
            Answer::Expected(_)
        ) {
            return Envelope::Closed;
        }
        let mut accepted = 0;
        for rcpt in rcpts {
            match self.command(Stage::RcptTo, rcpt, rcpt).await {
                Answer::Expected(_) => accepted += 1,
                // Refused: the other recipients are still worth asking about.
                Answer::Other(r) if !r.is_positive() => {}
                // Out of step, or gone: the transaction is in an unknown state.
                _ => return Envelope::Closed,
            }
        }
        Envelope::Open(accepted)
    }
}

/// `<addr>`, leaving an address the user already bracketed alone.
pub(super) fn angle(addr: &str) -> String {
    let a = addr.trim();
    if a.starts_with('<') && a.ends_with('>') {
        a.to_string()
    } else {
        format!("<{a}>")
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
