//! `mxtrace explain "REPLY" [--stage STAGE] [--peer PEER]`: classify a pasted reply offline. The CLI layer
//! parses flags and calls these; nothing here touches the network or the terminal.

use mxtrace_knowledge::{explain_reply, fit_next_steps, Explanation, Peer};
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::{Reply, ReplyError};
use mxtrace_proto::spec::Naming;
use std::fmt;

/// Why the input to `explain` is unusable (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExplainInputError {
    /// The stage name is not one of the accepted names.
    BadStage(String),
    /// The text is not an SMTP reply.
    BadReply(ReplyError),
    /// The peer name is not one of `Peer::NAMES`.
    BadPeer(String),
}

impl fmt::Display for ExplainInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExplainInputError::BadStage(s) => {
                let json: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
                write!(
                    f,
                    "unknown stage {:?}: use one of {} (or the JSON names {})",
                    truncate(s),
                    Stage::SHORT_NAMES.join(", "),
                    json.join(", ")
                )
            }
            ExplainInputError::BadPeer(p) => write!(
                f,
                "unknown peer {:?}: use one of {}",
                truncate(p),
                Peer::NAMES.join(", ")
            ),
            ExplainInputError::BadReply(e) => write!(
                f,
                "not an SMTP reply ({e}): the reply must start with its 3-digit code (e.g. \"550 5.1.1 User unknown\"); for a multi-line reply, separate the lines with newlines, each with its code"
            ),
        }
    }
}

impl std::error::Error for ExplainInputError {}

/// Parses the pasted reply, the optional stage name and the kind of server that sent it
/// (`microsoft`, `other` or `unknown`, the default: there is no greeting to recognise it by),
/// and explains the reply with next steps fitted to that server.
pub fn explain_text(
    reply: &str,
    stage: Option<&str>,
    peer: Option<&str>,
) -> Result<(Reply, Option<Stage>, Explanation), ExplainInputError> {
    let peer = match peer {
        Some(p) => Peer::from_name(p).ok_or_else(|| ExplainInputError::BadPeer(p.to_string()))?,
        None => Peer::Unknown,
    };
    let stage = match stage {
        Some(s) => {
            Some(Stage::from_user(s).ok_or_else(|| ExplainInputError::BadStage(s.to_string()))?)
        }
        None => None,
    };
    let parsed = Reply::parse_text(reply).map_err(ExplainInputError::BadReply)?;
    let mut explanation = explain_reply(stage, &parsed);
    fit_next_steps(
        &mut explanation.next_steps,
        None,
        explanation.category,
        peer,
    );
    // `explain` is a command-line command: settings are named as flags.
    mxtrace_knowledge::word_explanation(&mut explanation, Naming::Flag);
    Ok((parsed, stage, explanation))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxtrace_knowledge::{Category, Layer};
    use mxtrace_render::explain::{render_human, render_json};

    #[test]
    fn explains_with_and_without_stage() {
        let (r, s, e) = explain_text("550 5.1.1 User unknown", Some("rcpt"), None).unwrap();
        assert_eq!(r.code, 550);
        assert_eq!(s, Some(Stage::RcptTo));
        assert_eq!(e.category, Category::RecipientUnknown);
        let (_, s, e) = explain_text(
            "530-5.7.0 Must issue a STARTTLS\n530 5.7.0 command first",
            None,
            None,
        )
        .unwrap();
        assert_eq!(s, None);
        assert_eq!(e.category, Category::TlsRequired);
        for name in Stage::SHORT_NAMES {
            assert!(explain_text("250 ok", Some(name), None).is_ok(), "{name}");
        }
        for st in Stage::ALL {
            assert!(
                explain_text("250 ok", Some(st.as_str()), None).is_ok(),
                "{st}"
            );
        }
    }

    #[test]
    fn input_errors_say_what_is_accepted() {
        let err = explain_text("250 ok", Some("bogus"), None).unwrap_err();
        let msg = err.to_string();
        for name in Stage::SHORT_NAMES
            .iter()
            .chain(["rcpt_to", "end_of_data"].iter())
        {
            assert!(msg.contains(name), "{msg}");
        }
        let err = explain_text("Relay access denied", None, None).unwrap_err();
        assert!(matches!(err, ExplainInputError::BadReply(_)));
        assert!(err.to_string().contains("3-digit code"));
        assert!(explain_text("   ", None, None).is_err());
    }

    #[test]
    fn json_has_the_schema_version_and_exactly_the_seven_fields() {
        let (_, _, e) = explain_text("554 5.7.1 Relay access denied", Some("rcpt"), None).unwrap();
        let text = render_json(&e).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 8);
        assert_eq!(v["schema_version"], mxtrace_proto::model::SCHEMA_VERSION);
        // The documented order, as printed.
        let at = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
        assert!(at("schema_version") < at("class"));
        assert!(at("class") < at("category") && at("category") < at("confidence"));
        assert!(at("confidence") < at("runner_up") && at("runner_up") < at("layer"));
        assert_eq!(v["confidence"], "high");
        assert!(v["runner_up"].is_null());
        assert!(at("layer") < at("cause") && at("cause") < at("next_steps"));
        assert_eq!(v["category"], "relay_denied");
        assert_eq!(v["layer"], "connector");
        assert_eq!(v["class"], "permanent");
        assert!(v["next_steps"].as_array().unwrap().len() >= 2);
        assert_eq!(e.layer, Layer::Connector);
    }

    #[test]
    fn human_output() {
        let (r, s, e) =
            explain_text("451 4.7.1 Greylisted, try again later", Some("rcpt"), None).unwrap();
        let plain = render_human(&r, s, &e, false);
        assert!(
            plain.starts_with("451 4.7.1  transient  greylisted  layer reputation  (at rcpt_to)\n")
        );
        assert!(plain.contains("cause: "));
        assert!(plain.contains("  1. "));
        assert!(!plain.contains('\x1b'));
        let colored = render_human(&r, s, &e, true);
        assert!(colored.contains("\x1b[33mtransient\x1b[0m"));
        // The words alone name greylisting, no code says it too: "probably".
        assert!(plain.contains("\nconfidence: medium"), "{plain}");
        let (r, s, e) = explain_text("550 5.1.1 User unknown", Some("rcpt"), None).unwrap();
        let plain = render_human(&r, s, &e, false);
        assert!(
            !plain.contains("confidence:"),
            "high confidence goes unsaid"
        );
        // Unsure: the confidence and the runner-up are said, and the cause says "probably".
        let (r, s, e) = explain_text("550 5.1.1 Mailbox is full", Some("rcpt"), None).unwrap();
        let plain = render_human(&r, s, &e, false);
        assert!(
            plain.contains("\nconfidence: medium (runner-up: recipient_unknown)\n"),
            "{plain}"
        );
        assert!(
            plain.contains("cause: Probably mailbox_disabled_or_full"),
            "{plain}"
        );
    }

    #[test]
    fn peer_fits_the_next_steps() {
        let reply = "550 5.1.1 <nobody@fabrikam.test>: Recipient address rejected: User unknown in virtual mailbox table";
        let (_, _, unknown) = explain_text(reply, Some("rcpt"), None).unwrap();
        let (_, _, ms) = explain_text(reply, Some("rcpt"), Some("microsoft")).unwrap();
        let (_, _, other) = explain_text(reply, Some("rcpt"), Some("Other")).unwrap();
        // An unknown peer keeps every step; only the escalation names Microsoft for a
        // Microsoft peer alone.
        let n = ms.next_steps.len();
        assert_eq!(unknown.next_steps[..n - 1], ms.next_steps[..n - 1]);
        assert!(ms.next_steps[n - 1].contains("Microsoft support"));
        assert!(!unknown.next_steps[n - 1].contains("Microsoft"));
        assert!(ms.next_steps.iter().any(|s| s.contains("Get-Mailbox")));
        assert!(other
            .next_steps
            .iter()
            .all(|s| !s.contains("Get-") && !s.contains("Microsoft")));
        assert!(other
            .next_steps
            .iter()
            .any(|s| s.contains("its administrator decides")));
        assert_eq!(other.category, ms.category);
        let err = explain_text(reply, None, Some("postfix")).unwrap_err();
        assert!(matches!(err, ExplainInputError::BadPeer(_)));
        assert!(err.to_string().contains("microsoft, other, unknown"));
    }
}
