//! Non-delivery reports: the machine-readable delivery-status part (RFC 3464) and, where a
//! server writes only prose or leaves the report thin, the human-readable text of Exchange,
//! Exim, Postfix and Gmail. Each recipient's diagnostic reply goes through the same classifier
//! as a probe's reply, at the SMTP stage the report names.
//!
//! The prose formats, as in the samples under tests/data/headers (see SOURCES there):
//! - Exchange / Exchange Online: "Diagnostic information for administrators:", "Generating
//!   server: HOST", then each recipient on its own line followed by
//!   "Remote Server returned '550 5.1.10 ...'", then "Original message headers:".
//! - Exim: "The following address(es) failed:", each address indented two spaces, the
//!   details indented further: "SMTP error from remote mail server after RCPT TO:<...>:
//!   host HOST [IP]: 550 ...".
//! - Postfix: "<address>: host HOST[IP] said: 550 ... (in reply to RCPT TO command)".
//! - Gmail: "The response from the remote server was:" / "The response was:" / "The error
//!   that the other server returned was:", and the X-Failed-Recipients header.
//! - Anything else (qmail, Sendmail transcripts, legacy Exchange, Domino, gateways): each
//!   address of the failure section with its own line or paragraph; qmail's `(#X.Y.Z)` as the
//!   status. A bounce that names nobody falls back to the returned message's `To:`, so every
//!   failed recipient gets an explanation (`other` with low confidence at worst).
//! - GMX and relays quoting only an enhanced code (`5.1.1 <a@b>... User Unknown`), Gmail's
//!   repeated code (`554 554 5.7.1`), and MailMarshal's reason written before its recipient
//!   list (sisimai set-of-emails samples under tests/data/bounces).
//! - Sendmail session transcripts: the remote `<<<` reply to the recipient's RCPT (or to a
//!   command all recipients share), not Sendmail's own summary after it; qmail-remote's
//!   sentences naming the command that failed.
//! - Amazon SES notifications sent by email: JSON whose `bouncedRecipients` carry the DSN's
//!   fields (ses.rs).

use mxtrace_knowledge::{explain_reply, explain_status, Category, Explanation};
use mxtrace_proto::model::headers::{Ndr, NdrRecipient, Source};
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::{EnhancedCode, Reply};

mod ses;

/// At most this many recipients are reported (a list explosion can bounce thousands).
pub const MAX_RECIPIENTS: usize = 200;
const MAX_GROUPS: usize = 2 * MAX_RECIPIENTS + 1;
const MAX_FIELDS_PER_GROUP: usize = 64;
const MAX_TEXT: usize = 1000;
/// A diagnostic reply longer than this many lines is not classified as one reply.
const MAX_REPLY_LINES: usize = 20;
/// The prose read around one recipient when the report gives no SMTP reply.
const MAX_CONTEXT: usize = 2000;
/// At most this many lines of a recipient's prose are searched for a status code.
const MAX_CONTEXT_LINES: usize = 40;

/// Where the returned copy of the original message starts in a plain-text bounce: nothing
/// after it is about the failure.
const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    // Exim writes six dashes, its older releases five.
    "----- this is a copy of the message",
    "original message follows",
    "----- original message",
    "-----original message",
    "original message headers",
    // 1&1 writes three dashes, others five.
    "--- the header of the original message",
    "------- returned message",
    "--- returned message",
    "unsent message below",
    "message that you sent:",
    "original message:",
    "header of the source mail",
];

/// Phrases of a bounce that says a message was not delivered without naming the recipient
/// (lower-case).
const UNDELIVERED_PHRASES: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "not be delivered",
    "undeliverable",
    "delivery failed",
    "delivery has failed",
    "unable to deliver",
    "failed to deliver",
    "transcript of session follows",
    "unsent message follows",
    "returned mail",
];

/// At most this many `To:` lines are read for the returned message's recipients.
const MAX_TO_LINES: usize = 8;

/// Header-like labels in a bounce's prose whose addresses are not failed recipients (the
/// bounced message's own sender and headers).
const NOT_RECIPIENT_LABELS: &[&str] = &[
    "from:",
    "sender:",
    "return-path:",
    "reply-to:",
    "errors-to:",
    "message-id:",
    "message-id:",
    "to:",
    "cc:",
    "subject:",
    "date:",
    "sent:",
    // A Sendmail transcript's `>>> MAIL From:<sender>`.
    ">>> mail from:",
];

/// Phrases MTAs put next to a rejection to say which command it answered, lower-case with
/// white space collapsed. Postfix: "(in reply to RCPT TO command)"; Exim: "SMTP error from
/// remote mail server after RCPT TO:<...>" (after pipelined commands too). Longer phrases
/// first: "end of data" must win over "data".
const STAGE_PHRASES: &[(&str, Stage)] = &[
    ("in reply to end of data command", Stage::EndOfData),
    ("after end of data", Stage::EndOfData),
    ("in reply to rcpt to command", Stage::RcptTo),
    ("after rcpt to", Stage::RcptTo),
    ("after pipelined rcpt to", Stage::RcptTo),
    ("in reply to mail from command", Stage::MailFrom),
    ("after mail from", Stage::MailFrom),
    ("after pipelined mail from", Stage::MailFrom),
    ("in reply to data command", Stage::Data),
    ("after pipelined data", Stage::Data),
    ("after data", Stage::Data),
    ("in reply to starttls command", Stage::Starttls),
    ("after starttls", Stage::Starttls),
    ("in reply to ehlo command", Stage::Ehlo),
    ("after ehlo", Stage::Ehlo),
    ("in reply to helo command", Stage::Helo),
    ("after helo", Stage::Helo),
    // 1&1: "SMTP error from remote server for TEXT command"; gateways: "(Error following
    // RCPT command)".
    ("for text command", Stage::EndOfData),
    ("for rcpt command", Stage::RcptTo),
    ("following rcpt command", Stage::RcptTo),
    ("for mail command", Stage::MailFrom),
    ("following mail command", Stage::MailFrom),
    ("for data command", Stage::Data),
    ("after initial connection", Stage::Banner),
    ("refused to talk to me", Stage::Banner),
    // qmail-remote (qmail-remote.c): "Connected to HOST but my name was rejected.", "HOST does
    // not like recipient.", "HOST failed on DATA command." ...
    ("but greeting failed", Stage::Banner),
    ("but my name was rejected", Stage::Helo),
    ("but sender was rejected", Stage::MailFrom),
    ("does not like recipient", Stage::RcptTo),
    ("failed on data command", Stage::Data),
    ("failed after i sent the message", Stage::EndOfData),
];

/// What the message offers an NDR reader.
#[derive(Debug, Default)]
pub struct NdrInput {
    /// Texts of the message/delivery-status parts.
    pub delivery_status: Vec<String>,
    /// The text/plain parts, decoded.
    pub body_text: String,
    /// Addresses of X-Failed-Recipients headers (Exim, Gmail).
    pub failed_recipients: Vec<String>,
    /// Content-Type multipart/report; report-type=delivery-status.
    pub is_report: bool,
}

/// Reads the NDR, or None when the message is not one.
pub fn read(input: &NdrInput) -> Option<Ndr> {
    let text = Prose::new(&input.body_text);
    let mut ndr = Ndr::default();
    for status in &input.delivery_status {
        delivery_status(status, &mut ndr);
    }
    if ndr.recipients.is_empty() {
        // Some gateways (Amazon WorkMail) print the RFC 3464 fields in the text part.
        if let Some(fields) = text.after_line_starting("Final-Recipient:") {
            delivery_status(fields, &mut ndr);
        }
    }
    if ndr.recipients.is_empty() {
        ndr.recipients = ses_recipients(&input.body_text);
    }
    if ndr.recipients.is_empty() {
        ndr.recipients = text.exchange_recipients();
    }
    if ndr.recipients.is_empty() {
        ndr.recipients = text.exim_recipients();
    }
    if ndr.recipients.is_empty() {
        ndr.recipients = input
            .failed_recipients
            .iter()
            .take(MAX_RECIPIENTS)
            .map(|r| text.recipient_from_header(r))
            .collect();
    }
    if ndr.recipients.is_empty() {
        ndr.recipients = text.prose_recipients();
    }
    if ndr.recipients.is_empty() {
        ndr.recipients = text.listed_local_parts();
    }
    if ndr.recipients.is_empty() && (input.is_report || text.says_undelivered()) {
        ndr.recipients = text.original_to();
    }
    // RFC 3464 makes Diagnostic-Code optional: a report's one recipient without it gets the
    // reply its human-readable part quotes (an old Sendmail's transcript line).
    if let [only] = ndr.recipients.as_mut_slice() {
        if only.source == Source::DeliveryStatus && only.diagnostic_code.is_none() {
            text.reply_of_the_section(only);
        }
    }
    ndr.generating_server = text.generating_server();
    for r in &mut ndr.recipients {
        if r.stage.is_none() {
            r.stage = text.stage_for(&r.recipient);
        }
        r.explanation = Some(explain(r, &text.context_for(r)));
    }
    let found = !ndr.recipients.is_empty() || ndr.reporting_mta.is_some();
    (found || input.is_report).then_some(ndr)
}

/// Every recipient gets an explanation: the SMTP reply the report quotes when there is one
/// and it says something; otherwise the status code with the report's prose about the
/// recipient (`other` with low confidence at worst).
fn explain(r: &NdrRecipient, context: &str) -> Explanation {
    let mut e = explain_unworded(r, context);
    // A bounce is read for a person at the command line (`headers`, `roundtrip`): flags.
    mxtrace_knowledge::word_explanation(&mut e, mxtrace_proto::spec::Naming::Flag);
    e
}

fn explain_unworded(r: &NdrRecipient, context: &str) -> Explanation {
    let reply = r.diagnostic_code.as_deref().and_then(smtp_reply);
    let status = r.status.as_deref().and_then(status_code);
    if let Some(reply) = &reply {
        let e = explain_reply(r.stage, reply);
        if e.category != Category::Other {
            return e;
        }
    }
    let mut text = r.diagnostic_code.clone().unwrap_or_default();
    text.push('\n');
    text.push_str(r.status.as_deref().unwrap_or_default());
    text.push('\n');
    text.push_str(context);
    let status = status.or_else(|| reply.and_then(|r| r.enhanced));
    explain_status(r.stage, status, &text)
}

/// The `X.Y.Z` code at the start of a Status field (`5.0.0 (recipient reached disk quota)`).
fn status_code(field: &str) -> Option<EnhancedCode> {
    let token = field.split_whitespace().next()?;
    EnhancedCode::parse(token.trim_end_matches([',', ';', ':', ')']))
}

/// The enhanced code a diagnostic or prose states: the SMTP reply's (`550 5.1.1 ...`), else
/// qmail's `(#5.1.1)` / `(#4.4.1 - chkusr)` suffix, else a failure code a label names
/// (Zoho's `ERROR_CODE :5.1.1`, `Status code: 5.2.2`).
fn stated_status(text: &str) -> Option<String> {
    if let Some(code) = smtp_reply(text).and_then(|r| r.enhanced) {
        return Some(code.to_string());
    }
    // The code after a marker; for ':' only when a label just before it names a code.
    let after = |marker: char| {
        text.match_indices(marker).take(32).find_map(|(at, _)| {
            if marker == ':' {
                let label = text.get(at.saturating_sub(16)..at)?.to_ascii_lowercase();
                if !label.contains("code") && !label.contains("status") {
                    return None;
                }
            }
            let token = text.get(at + 1..)?.split_whitespace().next()?;
            let code = EnhancedCode::parse(token.trim_end_matches([')', ',', ';', ':', ']']))?;
            matches!(code.class, 2 | 4 | 5).then_some(code)
        })
    };
    after('#')
        .or_else(|| after(':'))
        .or_else(|| line_opening_code(text))
        .map(|c| c.to_string())
}

/// An enhanced code that opens a line and is followed by words, with no reply code before it
/// (GMX, Exim relays: `5.1.1 <a@example.jp>... User Unknown` under "SMTP error from remote
/// server after RCPT command:").
fn line_opening_code(text: &str) -> Option<EnhancedCode> {
    text.lines().take(MAX_CONTEXT_LINES).find_map(|line| {
        let mut words = line.split_whitespace();
        let code = EnhancedCode::parse(words.next()?)?;
        (matches!(code.class, 4 | 5) && words.next().is_some()).then_some(code)
    })
}

/// The fields of a delivery-status part: per-message fields, then one group per recipient.
fn delivery_status(text: &str, ndr: &mut Ndr) {
    for group in field_groups(text).into_iter().take(MAX_GROUPS) {
        let get = |name: &str| {
            group
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| clip(v))
        };
        // A group without Final-Recipient but with Original-Recipient (McAfee) is a
        // recipient's group too.
        let original = get("Original-Recipient").map(|v| without_type(&v));
        if let Some(final_rcpt) = get("Final-Recipient")
            .map(|v| without_type(&v))
            .or_else(|| original.clone())
        {
            if ndr.recipients.len() >= MAX_RECIPIENTS {
                continue;
            }
            // A Status field with words after its code (or words only) keeps them as the
            // diagnostic when the report has no Diagnostic-Code.
            let raw_status = get("Status");
            let diagnostic = get("Diagnostic-Code").or_else(|| {
                raw_status
                    .clone()
                    .filter(|s| status_code(s).is_none_or(|c| c.to_string() != *s))
            });
            // No Status code (no field, or words in its place): the code the diagnostic
            // states.
            let status = raw_status
                .and_then(|s| status_code(&s))
                .map(|c| c.to_string())
                .or_else(|| diagnostic.as_deref().and_then(stated_status));
            ndr.recipients.push(NdrRecipient {
                recipient: final_rcpt,
                original_recipient: original,
                action: get("Action").map(|a| a.to_ascii_lowercase()),
                status,
                remote_mta: get("Remote-MTA").and_then(|v| mta_name(&without_type(&v))),
                diagnostic_code: diagnostic,
                stage: None,
                explanation: None,
                source: Source::DeliveryStatus,
            });
        } else {
            if ndr.reporting_mta.is_none() {
                ndr.reporting_mta = get("Reporting-MTA").map(|v| without_type(&v));
            }
            if ndr.arrival_date.is_none() {
                ndr.arrival_date = get("Arrival-Date");
            }
        }
    }
}

/// The recipients of an Amazon SES bounce notification, read as delivery-status fields (SES
/// copies them from the DSN it received).
fn ses_recipients(text: &str) -> Vec<NdrRecipient> {
    ses::bounced_recipients(text)
        .into_iter()
        .take(MAX_RECIPIENTS)
        .map(|b| {
            let diagnostic = b.diagnostic_code.map(|d| clip(&d));
            let status = b
                .status
                .as_deref()
                .and_then(status_code)
                .map(|c| c.to_string())
                .or_else(|| diagnostic.as_deref().and_then(stated_status));
            NdrRecipient {
                recipient: clip(&b.email_address),
                original_recipient: None,
                action: b.action.map(|a| clip(&a.to_ascii_lowercase())),
                status,
                remote_mta: None,
                diagnostic_code: diagnostic,
                stage: None,
                explanation: None,
                source: Source::DeliveryStatus,
            }
        })
        .collect()
}

/// Header-style field groups separated by blank lines, continuation lines unfolded.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        let Some(group) = groups.last_mut() else {
            break;
        };
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(Vec::new());
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = group.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            if group.len() < MAX_FIELDS_PER_GROUP {
                group.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        if groups.len() > MAX_GROUPS {
            break;
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// `rfc822; user@example.com` -> `user@example.com` (RFC 3464 address-type / MTA-name-type),
/// without the angle brackets some MTAs add.
fn without_type(v: &str) -> String {
    let value = match v.split_once(';') {
        Some((_, rest)) => rest,
        None => v,
    };
    value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

/// The host of an MTA-name, without the comment or trailing dot some MTAs add
/// (`mx.example.com. (192.0.2.1, the server for the domain example.com.)`).
fn mta_name(v: &str) -> Option<String> {
    let name = v.split_whitespace().next()?.trim_end_matches('.');
    (!name.is_empty()).then(|| clip(name))
}

/// The SMTP reply inside a diagnostic text (`smtp; 550-5.1.1 ... 550 5.1.1 ...`), as the
/// lines the classifier reads; None when the text holds no reply code.
pub fn smtp_reply(diagnostic: &str) -> Option<Reply> {
    let text = collapse(diagnostic);
    let (kind, rest) = match text.split_once(';') {
        Some((k, r)) if !k.contains(' ') => (Some(k.trim().to_ascii_lowercase()), r.trim()),
        _ => (None, text.as_str()),
    };
    if kind.as_deref().is_some_and(|k| k != "smtp") {
        return None;
    }
    let start = reply_start(rest)?;
    let reply = without_repeated_code(rest.get(start..)?);
    let code = reply.get(..3)?;
    // A multi-line reply reaches us unfolded: each line starts " CODE-", the last " CODE ".
    let continued = format!(" {code}-");
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut rest = reply;
    while let Some(i) = rest.find(&continued).filter(|i| *i > 0) {
        cur.push_str(rest.get(..i)?);
        lines.push(std::mem::take(&mut cur));
        rest = rest.get(i + 1..)?;
        if lines.len() >= MAX_REPLY_LINES {
            return None;
        }
    }
    if !lines.is_empty() {
        // The final line: the last " CODE " after the continuations.
        if let Some(i) = rest.rfind(&format!(" {code} ")).filter(|i| *i > 0) {
            lines.push(rest.get(..i)?.to_string());
            rest = rest.get(i + 1..)?;
        }
    }
    lines.push(rest.to_string());
    Reply::parse_text(&lines.join("\n")).ok()
}

/// A reply whose code is written twice (Gmail quotes `554 554 5.7.1 ...`, its own code
/// before the remote reply's) without the first copy, so the enhanced code is read.
fn without_repeated_code(reply: &str) -> &str {
    match (reply.get(..3), reply.get(3..4), reply.get(4..7)) {
        (Some(a), Some(" "), Some(b))
            if a == b && reply_start(reply.get(4..).unwrap_or("")) == Some(0) =>
        {
            reply.get(4..).unwrap_or(reply)
        }
        _ => reply,
    }
}

/// Where an SMTP reply (`550 ...`, `550-...`, `550`) starts: three digits, the first 2-5,
/// at the start or after white space, a colon or `[` (`It responded as follows: [550 ...]`).
fn reply_start(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    (0..b.len()).find(|&i| {
        let digits = b
            .get(i..i + 3)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let first = b.get(i).is_some_and(|c| (b'2'..=b'5').contains(c));
        let after = b.get(i + 3).is_none_or(|c| *c == b' ' || *c == b'-');
        let before = i == 0
            || b.get(i - 1)
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b':' || *c == b'[');
        digits && first && after && before
    })
}

/// The stage named in a text, if any.
pub fn stage_in(text: &str) -> Option<Stage> {
    let t = collapse(text).to_ascii_lowercase();
    STAGE_PHRASES
        .iter()
        .find(|(p, _)| t.contains(p))
        .map(|(_, s)| *s)
}

/// The human-readable text of an NDR, with the readers of each vendor's prose.
struct Prose<'a> {
    text: &'a str,
}

impl<'a> Prose<'a> {
    fn new(text: &'a str) -> Self {
        Prose { text }
    }

    /// The text after a marker line (case-insensitive), if the marker is there.
    fn after(&self, marker: &str) -> Option<&'a str> {
        let at = find_ci(self.text, marker)?;
        self.text.get(at + marker.len()..)
    }

    /// The text from the first line that starts with `label` (case-insensitive).
    fn after_line_starting(&self, label: &str) -> Option<&'a str> {
        let mut at = 0;
        for line in self.text.split_inclusive('\n') {
            if line
                .trim_start()
                .get(..label.len())
                .is_some_and(|l| l.eq_ignore_ascii_case(label))
            {
                return self.text.get(at..);
            }
            at += line.len();
        }
        None
    }

    /// Whether the prose says a message was not delivered (a bounce that names no
    /// recipient of its own).
    fn says_undelivered(&self) -> bool {
        let section = super::clip_to(self.failure_section(), MAX_CONTEXT).to_ascii_lowercase();
        UNDELIVERED_PHRASES.iter().any(|p| section.contains(p))
    }

    /// The last resort of a bounce that names nobody (Verizon MMS, old Sendmail): the
    /// addresses of the returned message's `To:` lines.
    fn original_to(&self) -> Vec<NdrRecipient> {
        let mut out: Vec<NdrRecipient> = Vec::new();
        // The first SMTP reply line of the failure section (a Sendmail transcript's).
        let section = self.failure_section();
        let reply = reply_start(section)
            .and_then(|at| section.get(at..))
            .and_then(|r| r.lines().next());
        let to_lines = self.text.lines().filter(|l| {
            l.trim_start()
                .get(..3)
                .is_some_and(|l| l.eq_ignore_ascii_case("to:"))
        });
        for line in to_lines.take(MAX_TO_LINES) {
            for address in line.split_whitespace().filter_map(address_token) {
                if out.len() < MAX_RECIPIENTS
                    && !out
                        .iter()
                        .any(|r| r.recipient.eq_ignore_ascii_case(&address))
                {
                    out.push(recipient(
                        &address,
                        Some("failed"),
                        reply,
                        Source::ProseText,
                    ));
                }
            }
        }
        out
    }

    fn generating_server(&self) -> Option<String> {
        ["Generating server:", "DSN generated by:"]
            .iter()
            .find_map(|m| {
                let line = self.after(m)?.lines().next()?.trim();
                (!line.is_empty()).then(|| clip(line))
            })
    }

    /// Exchange: an address line, then "Remote Server returned '...'".
    fn exchange_recipients(&self) -> Vec<NdrRecipient> {
        let Some(section) = self.after("Diagnostic information for administrators:") else {
            return Vec::new();
        };
        let section = match find_ci(section, "Original message headers:") {
            Some(end) => section.get(..end).unwrap_or(section),
            None => section,
        };
        let mut out = Vec::new();
        let mut address: Option<String> = None;
        for line in section.lines().map(str::trim) {
            if is_address(line) {
                address = Some(clip(line));
            } else if let (Some(a), Some(q)) = (&address, quoted_after(line, "returned '")) {
                out.push(recipient(a, Some("failed"), Some(q), Source::ExchangeText));
                address = None;
                if out.len() >= MAX_RECIPIENTS {
                    break;
                }
            }
        }
        out
    }

    /// Exim: the failed addresses and, indented under each, what happened. Exim wraps its
    /// prose, so the heading may break across lines ("... The\nfollowing address(es) failed:").
    fn exim_recipients(&self) -> Vec<NdrRecipient> {
        let heading = "The following address(es) failed:";
        let Some(section) = after_words(self.failure_section(), heading) else {
            return Vec::new();
        };
        let mut blocks: Vec<(String, String)> = Vec::new();
        for line in section.lines() {
            // A dashed separator ends the list (Exim: "------ This is a copy ...").
            if line.starts_with("---") {
                break;
            }
            let indent = line.len() - line.trim_start().len();
            let head = line.trim();
            if head.is_empty() {
                continue;
            }
            // An address opens a block (older Exim ends it with a colon); anything else is
            // the detail of the block above, indented (Exim) or not (1&1).
            let address = (indent <= 2 && !head.contains(char::is_whitespace))
                .then(|| address_token(head))
                .flatten();
            let full = blocks.len() >= MAX_RECIPIENTS;
            match (address, blocks.last_mut()) {
                (Some(_), _) if full => break,
                (Some(a), _) => blocks.push((a, String::new())),
                (None, Some((_, detail))) => {
                    detail.push(' ');
                    detail.push_str(head);
                }
                // Exim's non-address heads (`pipe to |/usr/bin/x`) name no recipient.
                (None, None) => {}
            }
        }
        blocks
            .into_iter()
            .map(|(addr, detail)| {
                let reply = reply_start(&detail).and_then(|i| detail.get(i..));
                let mut r = recipient(&addr, Some("failed"), reply, Source::EximText);
                r.remote_mta = remote_host(&detail);
                r.stage = stage_in(&detail);
                if r.diagnostic_code.is_none() && !detail.is_empty() {
                    r.diagnostic_code = Some(clip(&detail));
                }
                r
            })
            .collect()
    }

    /// A recipient known only from X-Failed-Recipients: the reply from Gmail's prose.
    fn recipient_from_header(&self, address: &str) -> NdrRecipient {
        let reply = [
            "The response from the remote server was:",
            "The error that the other server returned was:",
            "The response was:",
        ]
        .iter()
        .find_map(|m| {
            let rest = self.after(m)?.trim_start();
            let para = rest.split("\n\n").next().unwrap_or(rest).trim();
            (!para.is_empty()).then_some(para)
        });
        recipient(
            address,
            Some("failed"),
            reply,
            Source::FailedRecipientsHeader,
        )
    }

    /// The part of the prose about the failure: before the returned copy of the message.
    fn failure_section(&self) -> &'a str {
        let end = ORIGINAL_MARKERS
            .iter()
            .filter_map(|m| find_ci(self.text, m))
            .min()
            .unwrap_or(self.text.len());
        let head = self.text.get(..end).unwrap_or(self.text);
        // A marker drawn with more dashes than it lists ("------ This is a copy") ends the
        // section at the start of its line.
        let line_start = head.rfind('\n').map_or(0, |i| i + 1);
        match head.get(line_start..) {
            Some(lead) if lead.chars().all(|c| c == '-' || c == ' ') => {
                head.get(..line_start).unwrap_or(head)
            }
            _ => head,
        }
    }

    /// Any other bounce (qmail, Sendmail, legacy Exchange, Domino, gateways): every address
    /// the failure section names outside header-like lines, each with the paragraph that
    /// follows it as its diagnostic.
    fn prose_recipients(&self) -> Vec<NdrRecipient> {
        let section = self.failure_section();
        let mut out: Vec<NdrRecipient> = Vec::new();
        for (i, line) in section.lines().enumerate() {
            let label = line.trim_start().to_ascii_lowercase();
            if NOT_RECIPIENT_LABELS.iter().any(|l| label.starts_with(l)) || names_sender(&label) {
                continue;
            }
            for address in line.split_whitespace().filter_map(address_token) {
                if out.len() >= MAX_RECIPIENTS
                    || out
                        .iter()
                        .any(|r| r.recipient.eq_ignore_ascii_case(&address))
                {
                    continue;
                }
                let para = until_next_address(&paragraph_from(section, i), &address);
                let reply = reply_start(&para).and_then(|at| para.get(at..));
                let mut r = recipient(&address, Some("failed"), reply, Source::ProseText);
                r.stage = stage_in(&para);
                if r.diagnostic_code.is_none() {
                    r.diagnostic_code = Some(clip(&collapse(&para)));
                }
                if r.status.is_none() {
                    r.status = stated_status(&para);
                }
                out.push(r);
            }
        }
        for r in &mut out {
            if let Some((stage, reply)) = transcript_reply(section, &r.recipient) {
                r.status = stated_status(&reply).or_else(|| r.status.take());
                r.stage = Some(stage);
                r.diagnostic_code = Some(clip(&reply));
            }
        }
        if let [only] = out.as_mut_slice() {
            self.reply_of_the_section(only);
        }
        out
    }

    /// The one recipient of a bounce whose own lines quote no reply gets the reply the failure
    /// section quotes elsewhere: MailMarshal gives the reason before the recipients ("Could
    /// not be delivered because of / 550 5.1.1 User unknown / The following recipients were
    /// affected:"), Gmail's delay notice after a "retried for" paragraph.
    fn reply_of_the_section(&self, r: &mut NdrRecipient) {
        if r.diagnostic_code.as_deref().and_then(reply_start).is_some() {
            return;
        }
        let section = self.failure_section();
        let Some(reply) = reply_start(section).and_then(|at| section.get(at..)) else {
            return;
        };
        let reply = reply.split("\n\n").next().unwrap_or(reply);
        r.status = r.status.take().or_else(|| stated_status(reply));
        r.stage = r.stage.or_else(|| stage_in(reply));
        r.diagnostic_code = Some(clip(&collapse(reply)));
    }

    /// A bounce that lists bare local parts under "the following address(es):" (JetMail:
    /// `dylan "(0), ErrMsg=mail box space not enough, account=dylan "`): each line whose first
    /// word could be a local part and is followed by its reason, the line as the diagnostic.
    fn listed_local_parts(&self) -> Vec<NdrRecipient> {
        let section = self.failure_section();
        let heading = section.lines().position(|l| {
            let l = l.trim().to_ascii_lowercase();
            l.ends_with(':')
                && l.contains("following")
                && (l.contains("address") || l.contains("recipient"))
        });
        let Some(heading) = heading else {
            return Vec::new();
        };
        let mut out: Vec<NdrRecipient> = Vec::new();
        for line in section.lines().skip(heading + 1).map(str::trim) {
            if line.is_empty() && out.is_empty() {
                continue;
            }
            let Some(word) = listed_local_part(line) else {
                break;
            };
            if out.len() >= MAX_RECIPIENTS {
                break;
            }
            let reply = reply_start(line).and_then(|at| line.get(at..));
            let mut r = recipient(word, Some("failed"), reply, Source::ProseText);
            if r.diagnostic_code.is_none() {
                r.diagnostic_code = Some(clip(line));
            }
            out.push(r);
        }
        out
    }

    /// The prose about one recipient: its paragraph up to the next recipient's line when the
    /// prose names it, else the whole failure section (bounded).
    fn context_for(&self, r: &NdrRecipient) -> String {
        let section = self.failure_section();
        let found = [Some(&r.recipient), r.original_recipient.as_ref()]
            .into_iter()
            .flatten()
            .filter(|a| !a.is_empty())
            .find_map(|a| {
                let at = find_ci(section, a)?;
                let line = section.get(..at)?.lines().count().saturating_sub(1);
                // Not the next recipient's lines (GMX lists them without blank lines).
                Some(until_next_address(&paragraph_from(section, line), a))
            });
        let text = found.unwrap_or_else(|| section.to_string());
        super::clip_to(&text, MAX_CONTEXT)
    }

    /// The stage named in the paragraph that mentions the recipient (Postfix prose).
    fn stage_for(&self, recipient: &str) -> Option<Stage> {
        if recipient.is_empty() {
            return None;
        }
        let lower = self.text.to_ascii_lowercase();
        let needle = recipient.to_ascii_lowercase();
        let at = lower.find(&needle)?;
        let para = lower.get(at..)?.split("\n\n").next()?;
        stage_in(para)
    }
}

/// The remote server's reply that failed `address` in a Sendmail session transcript
/// ("While talking to HOST:", `>>> COMMAND` sent, `<<< REPLY` received; sendmail's
/// deliver.c), with the stage of the command it answered: the reply to that address's RCPT,
/// else a failure reply to a command every recipient shares (greeting, HELO, MAIL, DATA).
/// Sendmail's own summary after it (`554 <a@b>... Remote protocol error`) only wraps it.
fn transcript_reply(section: &str, address: &str) -> Option<(Stage, String)> {
    let mut stage = Stage::Banner;
    let mut rcpt: Option<String> = None;
    let mut shared: Option<(Stage, String)> = None;
    let mut lines = section.lines().map(str::trim).take(MAX_CONTEXT).peekable();
    while let Some(line) = lines.next() {
        if let Some(command) = line.strip_prefix(">>>") {
            (stage, rcpt) = transcript_command(command);
            continue;
        }
        let Some(first) = line.strip_prefix("<<<").map(str::trim) else {
            continue;
        };
        let mut reply = first.to_string();
        while let Some(more) = lines.peek().and_then(|l| l.strip_prefix("<<<")) {
            reply.push('\n');
            reply.push_str(more.trim());
            lines.next();
        }
        if reply_start(&reply) != Some(0) || !reply.starts_with(['4', '5']) {
            continue;
        }
        match &rcpt {
            Some(a) if a.eq_ignore_ascii_case(address) => return Some((stage, reply)),
            Some(_) => {}
            None => {
                shared = shared.or(Some((stage, reply)));
            }
        }
    }
    shared
}

/// The stage a transcript's `>>> COMMAND` line opens, and the address of a RCPT.
fn transcript_command(command: &str) -> (Stage, Option<String>) {
    let command = command.trim();
    let verb = command
        .split([' ', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let stage = match verb.as_str() {
        "EHLO" => Stage::Ehlo,
        "HELO" => Stage::Helo,
        "STARTTLS" => Stage::Starttls,
        "AUTH" => Stage::Auth,
        "MAIL" => Stage::MailFrom,
        "RCPT" => return (Stage::RcptTo, rcpt_address(command)),
        "DATA" => Stage::Data,
        "." => Stage::EndOfData,
        "QUIT" => Stage::Quit,
        _ => Stage::Rset,
    };
    (stage, None)
}

/// `RCPT To:<a@example.jp> NOTIFY=...` -> `a@example.jp`; a RCPT whose address cannot be
/// read names no recipient (empty, never matched).
fn rcpt_address(command: &str) -> Option<String> {
    let arg = command.split_once(':').map_or("", |(_, a)| a);
    Some(
        arg.split_whitespace()
            .find_map(address_token)
            .unwrap_or_default(),
    )
}

/// The lines from `start` to the end of its paragraph, at most 12 lines. A paragraph that is
/// the address alone or ends in a heading (Gmail, Exchange 5.5: the reason follows after a
/// blank line) runs on into the next one.
fn paragraph_from(text: &str, start: usize) -> String {
    let mut out = String::new();
    let mut lines = 0;
    for line in text.lines().skip(start).take(12) {
        if line.trim().is_empty() {
            // A heading ("Technical details:") belongs to what follows it; an address line
            // that already quotes the reply does not run on into the next paragraph.
            let complete = lines > 1 || reply_start(&out).is_some();
            if complete && !out.trim_end().ends_with(':') {
                break;
            }
            continue;
        }
        lines += 1;
        out.push_str(line.trim());
        out.push('\n');
    }
    out
}

/// A paragraph cut before the next line that starts with another address: one bounce line
/// per recipient (`a@x: 550 ...` then `b@x: 550 ...`) is one recipient's text each.
fn until_next_address(para: &str, address: &str) -> String {
    let mut out = String::new();
    for (i, line) in para.lines().enumerate() {
        let first = line.split_whitespace().next().and_then(address_token);
        if i > 0 && first.is_some_and(|a| !a.eq_ignore_ascii_case(address)) {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The local part a bounce line starts with, when a reason follows it in quotes, brackets or
/// after a colon (`dylan "(0), ErrMsg=..."`, `dylan: mailbox full`).
fn listed_local_part(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let next = words.next()?;
    let word = first.strip_suffix(':').unwrap_or(first);
    let reason = first.ends_with(':') || next.starts_with(['"', '(', '[']);
    let plausible = (1..=64).contains(&word.len())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
        && word.chars().any(|c| c.is_ascii_alphabetic());
    (reason && plausible).then_some(word)
}

/// Whether a line opens with a label naming the bounced message's sender (MailMarshal's
/// "Original Sender:", "Sender-MTA:"): its address is not a failed recipient.
fn names_sender(line: &str) -> bool {
    line.split_once(':').is_some_and(|(label, _)| {
        label.len() <= 24 && !label.contains('@') && label.contains("sender")
    })
}

/// `<user@example.com>:`, `user@example.com,` -> `user@example.com`; None for anything that
/// is not a plain address (a Message-ID, a URL, a host).
fn address_token(token: &str) -> Option<String> {
    let t = token.trim_matches(|c: char| "<>()[]\"',;:.".contains(c));
    let (local, domain) = t.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && t.len() < 320
        && !t.contains('/')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    ok.then(|| t.to_string())
}

fn recipient(
    address: &str,
    action: Option<&str>,
    diag: Option<&str>,
    source: Source,
) -> NdrRecipient {
    NdrRecipient {
        recipient: clip(address.trim_matches(['<', '>'])),
        original_recipient: None,
        action: action.map(str::to_string),
        status: diag.and_then(stated_status),
        remote_mta: None,
        diagnostic_code: diag.map(|d| clip(&collapse(d))),
        stage: None,
        explanation: None,
        source,
    }
}

/// `host mx.example.jp [192.0.2.153]: ...` -> `mx.example.jp` (Exim).
fn remote_host(detail: &str) -> Option<String> {
    let at = find_ci(detail, "host ")?;
    let name = detail.get(at + 5..)?.split([' ', '[', ':']).next()?;
    (name.contains('.')).then(|| clip(name))
}

/// The text between `marker` and the last `'` of the line.
fn quoted_after<'t>(line: &'t str, marker: &str) -> Option<&'t str> {
    let start = find_ci(line, marker)? + marker.len();
    let rest = line.get(start..)?;
    let end = rest.rfind('\'')?;
    rest.get(..end)
}

fn is_address(line: &str) -> bool {
    line.contains('@') && !line.contains(' ') && line.len() < 320
}

/// The text after `phrase`, matched case-insensitively with any run of white space (line
/// breaks too) where the phrase has a space: prose wrapped by the MTA still matches.
fn after_words<'t>(hay: &'t str, phrase: &str) -> Option<&'t str> {
    let mut words = phrase.split_whitespace();
    let first = words.next()?;
    let rest: Vec<&str> = words.collect();
    let mut from = 0;
    while let Some(at) = hay
        .get(from..)
        .and_then(|h| find_ci(h, first))
        .map(|i| i + from)
    {
        let mut end = at + first.len();
        let matched = rest.iter().all(|w| {
            let tail = hay.get(end..).unwrap_or_default();
            let gap = tail.len() - tail.trim_start().len();
            let ok = gap > 0
                && tail
                    .get(gap..gap + w.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(w));
            if ok {
                end += gap + w.len();
            }
            ok
        });
        if matched {
            return hay.get(end..);
        }
        from = at + first.len();
    }
    None
}

/// Case-insensitive find of an ASCII needle; the index is valid in `hay`.
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.len();
    if n == 0 {
        return Some(0);
    }
    hay.char_indices().map(|(i, _)| i).find(|&i| {
        hay.get(i..i + n)
            .is_some_and(|s| s.eq_ignore_ascii_case(needle))
    })
}

fn collapse(s: &str) -> String {
    super::received::unfold(s)
}

fn clip(s: &str) -> String {
    super::clip_to(s, MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxtrace_knowledge::Category;

    #[test]
    fn multi_line_diagnostics_become_one_reply() {
        let r = smtp_reply("smtp; 550-5.1.1 The email account that you tried to reach does\n    not exist. Please try 550-5.1.1 double-checking the recipient's email 550 5.1.1 https://support.google.com/mail/?p=NoSuchUser a1si - gsmtp").unwrap();
        assert_eq!(r.code, 550);
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.enhanced.unwrap().to_string(), "5.1.1");
        let r = smtp_reply("smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup").unwrap();
        assert_eq!(r.lines.len(), 1);
        assert!(smtp_reply("x-unix; procmail: Couldn't create").is_none());
        assert!(smtp_reply("smtp; no code here").is_none());
        assert!(smtp_reply("554 554 5.7.0 Header error (state 18).").is_some());
        assert!(smtp_reply("").is_none());
    }

    #[test]
    fn stages_from_vendor_phrases() {
        assert_eq!(
            stage_in("said: 550 5.1.1 User Unknown (in reply to RCPT TO\n    command)"),
            Some(Stage::RcptTo)
        );
        assert_eq!(
            stage_in("(in reply to end of DATA command)"),
            Some(Stage::EndOfData)
        );
        assert_eq!(
            stage_in("SMTP error from remote mail server after MAIL FROM:<a@b> SIZE=1"),
            Some(Stage::MailFrom)
        );
        assert_eq!(stage_in("nothing here"), None);
    }

    #[test]
    fn delivery_status_fields() {
        let input = NdrInput {
            delivery_status: vec!["Reporting-MTA: dns; smtp.example.com\nArrival-Date: Sat, 21 Jun 2014 18:34:34 +0000 (UTC)\n\nFinal-Recipient: rfc822; userunknown@example.co.jp\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.example.co.jp\nDiagnostic-Code: smtp; 550 5.1.1 <userunknown@example.co.jp>... User\n    Unknown\n".to_string()],
            body_text: "<userunknown@example.co.jp>: host mx.example.co.jp[192.0.2.153] said: 550\n    5.1.1 <userunknown@example.co.jp>... User Unknown (in reply to RCPT TO\n    command)\n".to_string(),
            ..Default::default()
        };
        let ndr = read(&input).unwrap();
        assert_eq!(ndr.reporting_mta.as_deref(), Some("smtp.example.com"));
        let r = &ndr.recipients[0];
        assert_eq!(r.recipient, "userunknown@example.co.jp");
        assert_eq!(r.remote_mta.as_deref(), Some("mx.example.co.jp"));
        assert_eq!(r.stage, Some(Stage::RcptTo));
        assert_eq!(
            r.explanation.as_ref().unwrap().category,
            Category::RecipientUnknown
        );
        assert!(ndr.failed());
    }

    #[test]
    fn prose_and_thin_reports() {
        // One line per recipient: each keeps its own reply; qmail's (#X.Y.Z) is the status.
        let ndr = read(&NdrInput {
            body_text: "a@example.jp: 550 5.2.2 <a@example.jp>... Mailbox Full\nb@example.jp: 550 5.1.1 <b@example.jp>... User Unknown\n\n<c@example.jp>:\nSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n".into(),
            ..Default::default()
        })
        .unwrap();
        let status: Vec<_> = ndr.recipients.iter().map(|r| r.status.clone()).collect();
        assert_eq!(
            status,
            [
                Some("5.2.2".into()),
                Some("5.1.1".into()),
                Some("4.4.1".into())
            ]
        );
        // Original-Recipient without Final-Recipient; the status the diagnostic states.
        let ndr = read(&NdrInput {
            delivery_status: vec!["Original-Recipient: <d@example.jp>\nAction: failed\nDiagnostic-Code: smtp; 550 5.1.1 <d@example.jp>... User unknown\n".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ndr.recipients[0].recipient, "d@example.jp");
        assert_eq!(ndr.recipients[0].status.as_deref(), Some("5.1.1"));
        // A bounce that names nobody: the returned message's To:, with an explanation.
        let ndr = read(&NdrInput {
            body_text: "Message could not be delivered to mobile.\nError: No valid recipients\n\nTo: 0000@example.com\n".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ndr.recipients[0].recipient, "0000@example.com");
        assert!(ndr.recipients[0].explanation.is_some());
    }

    /// Bare local parts under "the following address(es):" are recipients; a status is read
    /// where a label names it, and a Status field with words instead of a code gives none.
    #[test]
    fn local_parts_labelled_codes_and_worded_status() {
        let ndr = read(&NdrInput {
            body_text: "Your mail cannot be delivered to the following address(es):\n\n dylan \"(0), ErrMsg=mail box space not enough, account=dylan \"\n\nPlease check the above address(es).\n".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ndr.recipients.len(), 1);
        let r = &ndr.recipients[0];
        assert_eq!(r.recipient, "dylan");
        assert_eq!(
            r.explanation.as_ref().unwrap().category,
            Category::MailboxDisabledOrFull
        );
        assert_eq!(listed_local_part("Mailbox full for everyone"), None);
        assert_eq!(listed_local_part("jo.doe: over quota"), Some("jo.doe"));
        assert_eq!(
            stated_status(
                "a@b.jp Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 User Unknown"
            )
            .as_deref(),
            Some("5.1.1")
        );
        assert_eq!(stated_status("Exim 4.5.1 said: nothing"), None);
        let ndr = read(&NdrInput {
            delivery_status: vec!["Final-Recipient: rfc822; a@b.test\nAction: failed\nStatus: 553 Exceeded maximum inbound message size\n".into()],
            ..Default::default()
        })
        .unwrap();
        let r = &ndr.recipients[0];
        assert_eq!(r.status, None);
        assert_eq!(
            r.explanation.as_ref().unwrap().category,
            Category::MessageTooLarge
        );
    }

    /// A reply code written twice, a bare enhanced code opening a line, and a sole recipient
    /// whose reason is quoted away from its address.
    #[test]
    fn repeated_codes_bare_codes_and_reasons_apart() {
        let r = smtp_reply("554 554 5.7.1 Service unavailable; Client host blocked").unwrap();
        assert_eq!(r.code, 554);
        assert_eq!(r.enhanced.unwrap().to_string(), "5.7.1");
        assert_eq!(without_repeated_code("550 5.1.1 x"), "550 5.1.1 x");
        assert_eq!(
            stated_status("host: mx.example.jp\n5.1.1 <a@example.jp>... User Unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(stated_status("5.1.1\nversion 4.2.1 of the"), None);
        let ndr = read(&NdrInput {
            body_text: "Your message:\n   From:    s@example.com\n\nCould not be delivered because of\n\n550 5.1.1 User unknown\n\nThe following recipients were affected:\n    k@example.net\n\nOriginal Sender:    <s@example.com>\n".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ndr.recipients.len(), 1);
        let r = &ndr.recipients[0];
        assert_eq!(r.recipient, "k@example.net");
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            r.explanation.as_ref().unwrap().category,
            Category::RecipientUnknown
        );
        // Recipients listed without blank lines: each is explained by its own lines only.
        let ndr = read(&NdrInput {
            body_text: "The following address failed:\n\n\"m@example.jp\":\nSMTP error from remote server after RCPT command:\n5.2.1 <m@example.jp>... User Unknown\n\"s@example.jp\":\nSMTP error from remote server after RCPT command:\n5.2.2 <s@example.jp>... Mailbox Full\n".into(),
            ..Default::default()
        })
        .unwrap();
        let got: Vec<_> = ndr
            .recipients
            .iter()
            .map(|r| (r.status.clone(), r.explanation.as_ref().unwrap().category))
            .collect();
        assert_eq!(
            got,
            [
                (Some("5.2.1".into()), Category::RecipientUnknown),
                (Some("5.2.2".into()), Category::MailboxDisabledOrFull)
            ]
        );
        assert!(names_sender("original sender:    <s@example.com>"));
        assert!(!names_sender("k@example.net: sender unknown"));
    }

    #[test]
    fn not_an_ndr() {
        assert!(read(&NdrInput {
            body_text: "Hello".into(),
            ..Default::default()
        })
        .is_none());
        let delayed = NdrInput {
            delivery_status: vec![
                "Final-Recipient: rfc822; a@b.test\nAction: delayed\nStatus: 4.4.7\n".into(),
            ],
            ..Default::default()
        };
        assert!(!read(&delayed).unwrap().failed());
    }

    fn one(body: &str) -> NdrRecipient {
        let ndr = read(&NdrInput {
            body_text: body.into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ndr.recipients.len(), 1, "{:?}", ndr.recipients);
        ndr.recipients.into_iter().next().unwrap()
    }

    fn category(r: &NdrRecipient) -> Category {
        r.explanation.as_ref().unwrap().category
    }

    #[test]
    fn exim_heading_wrapped_across_lines() {
        let r = one("A message that you sent could not be delivered to all of its recipients. The\nfollowing address(es) failed:\n\n  kijitora@neko.example.jp:\n    SMTP error from remote mailer after RCPT TO:\n    <kijitora@neko.example.jp>:\n    host mx.neko.example.jp [192.0.2.82]:\n    553 5.1.1 unknown or illegal user:\n    kijitora@neko.example.jp\n\n------ This is a copy of the message, including all the headers. ------\n");
        assert_eq!(r.recipient, "kijitora@neko.example.jp");
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.stage, Some(Stage::RcptTo));
        assert_eq!(r.source, Source::EximText);
        assert!(r
            .diagnostic_code
            .unwrap()
            .ends_with("kijitora@neko.example.jp"));
        assert_eq!(
            after_words("a The\n  following  x", "the following"),
            Some("  x")
        );
        assert_eq!(after_words("the followingx", "the following x"), None);
    }

    #[test]
    fn qmail_remote_names_the_command() {
        let r = one("<kijitora@example.net>:\nConnected to 192.0.2.112 but my name was rejected.\nRemote host said: 501 5.0.0 Invalid domain name\n");
        assert_eq!(r.stage, Some(Stage::Helo));
        assert_eq!(r.status.as_deref(), Some("5.0.0"));
        assert_eq!(
            stage_in("192.0.2.1 does not like recipient."),
            Some(Stage::RcptTo)
        );
        assert_eq!(
            stage_in("192.0.2.1 failed on DATA command."),
            Some(Stage::Data)
        );
        assert_eq!(
            stage_in("192.0.2.1 failed after I sent the message."),
            Some(Stage::EndOfData)
        );
    }

    #[test]
    fn sendmail_transcript_gives_the_remote_reply() {
        // The remote reply to MAIL fails the recipient; Sendmail's own summary lines after it
        // and the sender's MAIL From line name no cause and no recipient.
        let ndr = read(&NdrInput {
            body_text: "   ----- Transcript of session follows -----\nWhile talking to mx.example.edu:\n>>> MAIL From:<s@example.jp>\n<<< 550 Insecure Mail Relay\n554 <k@example.edu>... Remote protocol error\n421 example.org (smtp)... Deferred: Connection timed out during user open with example.org\n".into(),
            ..Default::default()
        })
        .unwrap();
        let names: Vec<_> = ndr
            .recipients
            .iter()
            .map(|r| r.recipient.as_str())
            .collect();
        assert_eq!(names, ["k@example.edu"]);
        let r = &ndr.recipients[0];
        assert_eq!(r.stage, Some(Stage::MailFrom));
        assert_eq!(
            r.diagnostic_code.as_deref(),
            Some("550 Insecure Mail Relay")
        );
        assert_eq!(category(r), Category::RelayDenied);
        // Each recipient gets the reply to its own RCPT.
        let section = ">>> RCPT To:<a@example.org>\n<<< 550 5.1.1 <a@example.org>... User unknown\n>>> RCPT To:<b@example.org>\n<<< 452-4.2.2 Mailbox full\n<<< 452 4.2.2 try later\n";
        let (stage, reply) = transcript_reply(section, "b@example.org").unwrap();
        assert_eq!(stage, Stage::RcptTo);
        assert_eq!(reply, "452-4.2.2 Mailbox full\n452 4.2.2 try later");
        assert!(transcript_reply(section, "c@example.org").is_none());
    }

    #[test]
    fn broken_english_unknown_user() {
        let ndr = read(&NdrInput {
            delivery_status: vec!["Original-Recipient: <k@example.co.jp>\nAction: failed\nDiagnostic-Code: smtp; 550 <k@example.co.jp>... User not exist\n".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(category(&ndr.recipients[0]), Category::RecipientUnknown);
    }

    #[test]
    fn multipart_header_over_a_plain_body() {
        // No boundary line: the body is the report, its RFC 3464 fields read from the text.
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@example.edu>\r\nTo: <s@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n    boundary=\"XX/example.edu\"\r\nSubject: Returned mail: Service unavailable\r\n\r\n   ----- The following addresses had permanent fatal errors -----\r\n<k@example.edu>\r\n\r\nReporting-MTA: dns; example.edu\r\n\r\nFinal-Recipient: RFC822; k@example.edu\r\nAction: failed\r\nStatus: 5.1.1\r\n";
        let report = crate::headers::analyze("t", raw).unwrap();
        let ndr = report.ndr.unwrap().ndr;
        assert_eq!(ndr.recipients[0].recipient, "k@example.edu");
        assert_eq!(ndr.recipients[0].status.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn exim_style_details_without_indent() {
        // 1&1 writes Exim's heading but no indentation: the detail still belongs to the
        // address above it, and the returned header is not part of it.
        let r = one("The following address(es)\nfailed:\n\nx@example.fr:\nSMTP error from remote server for TEXT command, host: smtp-in.example.fr (192.0.2.65) reason: 550 5.2.0 Mail rejected.\n\n--- The header of the original message is following. ---\n\nTo: y@example.com\n");
        assert_eq!(r.recipient, "x@example.fr");
        assert_eq!(r.status.as_deref(), Some("5.2.0"));
        assert_eq!(r.stage, Some(Stage::EndOfData));
        assert!(!r.diagnostic_code.unwrap().contains("header"));
    }

    #[test]
    fn report_without_diagnostic_code_reads_its_prose() {
        let input = NdrInput {
            delivery_status: vec!["Final-Recipient: RFC822; k@example.edu\nAction: failed\nStatus: 5.5.0\n".into()],
            body_text: "   ----- Transcript of session follows -----\n554 \"|/usr/bin/procmail #k\"... Service unavailable\n".into(),
            ..Default::default()
        };
        let r = &read(&input).unwrap().recipients[0];
        assert_eq!(r.status.as_deref(), Some("5.5.0"));
        assert!(r.diagnostic_code.as_deref().unwrap().starts_with("554 "));
        assert_eq!(category(r), Category::ServiceUnavailable);
        // Two recipients: the one quoted reply is nobody's in particular.
        let two = NdrInput {
            delivery_status: vec![format!(
                "{}\nFinal-Recipient: rfc822; j@example.edu\nAction: failed\nStatus: 5.5.0\n",
                input.delivery_status[0]
            )],
            body_text: input.body_text.clone(),
            ..Default::default()
        };
        assert!(read(&two)
            .unwrap()
            .recipients
            .iter()
            .all(|r| r.diagnostic_code.is_none()));
    }

    #[test]
    fn amazon_ses_json_notification() {
        let body = "{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":[\
            {\"emailAddress\":\"a@example.com\",\"action\":\"failed\",\"status\":\"5.1.1\",\
            \"diagnosticCode\":\"smtp; 550 5.1.1 user unknown\"}]}}\n";
        let r = one(body);
        assert_eq!(r.recipient, "a@example.com");
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            r.diagnostic_code.as_deref(),
            Some("smtp; 550 5.1.1 user unknown")
        );
        assert_eq!(r.source, Source::DeliveryStatus);
        assert_eq!(category(&r), Category::RecipientUnknown);
    }

    #[test]
    fn gateway_and_relay_failure_prose() {
        // OpenSMTPD's delay notice: its relay failure string, not "temporary failure".
        let r = one("    A message is delayed for more than 10 minutes for the following\n    list of recipients:\n\nk@example.jp: Network error on destination MXs\n\n    Please note that this is only a temporary failure report.\n");
        assert_eq!(category(&r), Category::ConnectorOrRouting);
        // InterScan MSS and IMail name an unknown address in their own words.
        let r = one("Message from InterScan Messaging Security Suite\n\nUnable to deliver message to <k@example.jp> (and other recipients in the same domain). Please check if address is correct.\n");
        assert_eq!(category(&r), Category::RecipientUnknown);
        let r =
            one("Invalid final delivery userid: k@example.co.jp\n\nOriginal message follows.\n");
        assert_eq!(category(&r), Category::RecipientUnknown);
    }
}
