//! What each stage expects back: one table for every command, so that a reply other than the
//! one a stage asks for (even a 2xx) fails the stage instead of passing for success.

use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::Reply;

/// The positive replies of one stage.
struct Expectation {
    stage: Stage,
    /// The command as a reader knows it, for "unexpected reply to X".
    command: &'static str,
    /// Replies that complete the stage.
    success: &'static [u16],
    /// Replies that ask the client to go on within the same stage (AUTH challenges).
    continuation: &'static [u16],
}

/// RFC 5321 4.3.2 (command-reply sequences: 220 greeting, 250 EHLO/HELO/MAIL/RSET, 250 or 251
/// RCPT, 354 DATA, 250 end of data, 221 QUIT), RFC 3207 section 4 (220 to STARTTLS) and
/// RFC 4954 section 4 (235 to AUTH, 334 for each challenge). Connect and the TLS handshake
/// have no SMTP reply and are not here.
const TABLE: &[Expectation] = &[
    Expectation::new(Stage::Banner, "the greeting", &[220], &[]),
    Expectation::new(Stage::Ehlo, "EHLO", &[250], &[]),
    Expectation::new(Stage::Helo, "HELO", &[250], &[]),
    Expectation::new(Stage::Starttls, "STARTTLS", &[220], &[]),
    Expectation::new(Stage::EhloTls, "EHLO", &[250], &[]),
    Expectation::new(Stage::Auth, "AUTH", &[235], &[334]),
    Expectation::new(Stage::MailFrom, "MAIL FROM", &[250], &[]),
    Expectation::new(Stage::RcptTo, "RCPT TO", &[250, 251], &[]),
    Expectation::new(Stage::Data, "DATA", &[354], &[]),
    Expectation::new(Stage::EndOfData, "the end of data", &[250], &[]),
    Expectation::new(Stage::Rset, "RSET", &[250], &[]),
    Expectation::new(Stage::Quit, "QUIT", &[221], &[]),
];

impl Expectation {
    const fn new(
        stage: Stage,
        command: &'static str,
        success: &'static [u16],
        continuation: &'static [u16],
    ) -> Expectation {
        Expectation {
            stage,
            command,
            success,
            continuation,
        }
    }
}

/// How a reply fits the stage it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fit {
    /// The stage's success reply.
    Expected,
    /// A continuation: the client goes on within the stage (334 to AUTH).
    Continue,
    /// A 4xx or 5xx: the server refused, and the reply says why.
    Refused,
    /// A positive reply that is not this stage's: the dialogue is out of step.
    Unexpected,
}

fn entry(stage: Stage) -> Option<&'static Expectation> {
    TABLE.iter().find(|e| e.stage == stage)
}

/// Judges `reply` as the answer to `stage`.
pub(super) fn fit(stage: Stage, reply: &Reply) -> Fit {
    let Some(e) = entry(stage) else {
        return Fit::Unexpected;
    };
    if e.success.contains(&reply.code) {
        Fit::Expected
    } else if e.continuation.contains(&reply.code) {
        Fit::Continue
    } else if matches!(reply.first_digit(), 4 | 5) {
        Fit::Refused
    } else {
        Fit::Unexpected
    }
}

/// "unexpected reply to STARTTLS: 250 2.0.0 (expected 220)": the error of a stage answered
/// out of step. Only the codes are quoted; the server's text is in the transcript.
pub(super) fn unexpected(stage: Stage, reply: &Reply) -> String {
    let (command, wanted) = match entry(stage) {
        Some(e) => (
            e.command,
            e.success
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        ),
        None => (stage.as_str(), "no reply".to_string()),
    };
    let got = match reply.enhanced {
        Some(e) => format!("{} {e}", reply.code),
        None => reply.code.to_string(),
    };
    format!("unexpected reply to {command}: {got} (expected {wanted})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines: vec![format!("{code} x")],
        }
    }

    #[test]
    fn every_stage_with_a_reply_has_an_entry() {
        for stage in Stage::ALL {
            let has = entry(stage).is_some();
            assert_eq!(has, !matches!(stage, Stage::Connect | Stage::TlsHandshake));
        }
    }

    #[test]
    fn a_2xx_other_than_the_expected_one_is_unexpected() {
        assert_eq!(fit(Stage::Starttls, &reply(250)), Fit::Unexpected);
        assert_eq!(fit(Stage::Ehlo, &reply(220)), Fit::Unexpected);
        assert_eq!(fit(Stage::Data, &reply(250)), Fit::Unexpected);
        assert_eq!(fit(Stage::RcptTo, &reply(354)), Fit::Unexpected);
        assert_eq!(fit(Stage::RcptTo, &reply(251)), Fit::Expected);
        assert_eq!(fit(Stage::Auth, &reply(334)), Fit::Continue);
        assert_eq!(fit(Stage::Starttls, &reply(454)), Fit::Refused);
        assert_eq!(
            unexpected(Stage::Starttls, &reply(250)),
            "unexpected reply to STARTTLS: 250 (expected 220)"
        );
        assert_eq!(
            unexpected(Stage::RcptTo, &reply(354)),
            "unexpected reply to RCPT TO: 354 (expected 250 or 251)"
        );
    }
}
