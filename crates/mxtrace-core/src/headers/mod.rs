//! `mxtrace headers`: read a delivered message or an NDR. The Received chain (hops, delays,
//! TLS, placement in the delivery scenarios), authentication results, Exchange Online's
//! anti-spam stamps, and for an NDR each failed recipient explained by the same classifier as
//! a probe's reply; then ready-to-run `mxtrace` commands to test the path as it is now.
//!
//! MIME, RFC 2047 and the Received grammar are mail-parser's; this module interprets. The
//! input is hostile: its size is capped before parsing, every list and text is bounded, and
//! nothing here indexes or unwraps what the message says.

pub mod auth;
pub mod ndr;
pub mod received;
pub mod stamps;

use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use mxtrace_proto::model::headers::{
    HeadersReport, HeadersVerdict, MessageFacts, MessageKind, NdrReport,
};
use mxtrace_proto::spec::Field;
use mxtrace_proto::text::{clip_to, ellipsis};
use ndr::NdrInput;
use std::io::Read;
use std::path::Path;

/// Largest input read: a message with its attachments, or an NDR returning one.
pub const MAX_INPUT: usize = 16 * 1024 * 1024;
/// At most this many header fields of one message are interpreted.
const MAX_FIELDS: usize = 2000;
/// At most this many parts are searched for NDR material.
const MAX_PARTS: usize = 500;
/// How deep returned or forwarded messages are searched for delivery-status parts.
const MAX_NESTED: usize = 3;
const MAX_STEPS: usize = 8;
const MAX_TEXT: usize = 300;

/// Why the input cannot be read as a message (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeadersError {
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: larger than {max} MiB; pass the headers only (or the NDR without attachments)", max = MAX_INPUT / (1024 * 1024))]
    TooLarge(String),
    #[error("{0}: empty")]
    Empty(String),
    #[error(
        "{0}: no message header fields found (expected a message, an .eml file or pasted headers)"
    )]
    NotAMessage(String),
}

/// Reads a file, or standard input for `-`, up to `MAX_INPUT` bytes.
pub fn read_input(path: &Path) -> Result<Vec<u8>, HeadersError> {
    let name = path.display().to_string();
    let mut buf = Vec::new();
    let limit = MAX_INPUT as u64 + 1;
    let result = if name == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut buf))
    };
    result.map_err(|e| HeadersError::Read(name.clone(), e))?;
    if buf.len() > MAX_INPUT {
        return Err(HeadersError::TooLarge(name));
    }
    Ok(buf)
}

/// Reads a message (or its pasted headers) and says what it shows.
pub fn analyze(source: &str, raw: &[u8]) -> Result<HeadersReport, HeadersError> {
    if raw.len() > MAX_INPUT {
        return Err(HeadersError::TooLarge(source.to_string()));
    }
    // Headers pasted from a mail client often come after a blank line or two.
    let Some(start) = raw.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(HeadersError::Empty(source.to_string()));
    };
    let msg = MessageParser::default()
        .parse(raw.get(start..).unwrap_or_default())
        .filter(|m| !m.parts.is_empty() && has_real_fields(m))
        .ok_or_else(|| HeadersError::NotAMessage(source.to_string()))?;
    let message = facts(&msg);
    let ndr = ndr::read(&ndr_input(&msg)).map(|ndr| NdrReport {
        ndr,
        original: original(&msg),
    });
    let kind = if ndr.is_some() {
        MessageKind::Ndr
    } else {
        MessageKind::Message
    };
    let next_steps = next_steps(&message, ndr.as_ref());
    let verdict = verdict(&message, ndr.as_ref());
    Ok(HeadersReport {
        source: source.to_string(),
        kind,
        message,
        ndr,
        next_steps,
        verdict,
    })
}

/// A text without `Name: value` lines is not a message, whatever mail-parser made of it.
fn has_real_fields(m: &Message<'_>) -> bool {
    m.parts.first().is_some_and(|p| {
        p.headers
            .iter()
            .any(|h| !matches!(h.value, HeaderValue::Empty))
    })
}

/// The message's fields as (name, unfolded raw value), in order.
fn fields(m: &Message<'_>) -> Vec<(String, String)> {
    let Some(part) = m.parts.first() else {
        return Vec::new();
    };
    part.headers
        .iter()
        .take(MAX_FIELDS)
        .map(|h| {
            let raw = m
                .raw_message
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            (
                h.name.as_str().to_string(),
                received::unfold(&String::from_utf8_lossy(raw)),
            )
        })
        .collect()
}

fn facts(m: &Message<'_>) -> MessageFacts {
    let fields = fields(m);
    let stamps: Vec<_> = m
        .parts
        .first()
        .map(|p| p.headers.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|h| match &h.value {
            HeaderValue::Received(r) => {
                let raw = m
                    .raw_message
                    .get(h.offset_start as usize..h.offset_end as usize)
                    .unwrap_or_default();
                Some((r.as_ref(), String::from_utf8_lossy(raw).into_owned()))
            }
            _ => None,
        })
        .take(received::MAX_HOPS)
        .collect();
    let hops = received::hops(&stamps);
    let path = received::summarize(&hops);
    MessageFacts {
        subject: m.subject().map(clip),
        from: m
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(clip),
        to: m
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.address())
                    .take(20)
                    .map(clip)
                    .collect()
            })
            .unwrap_or_default(),
        date: m.date().map(|d| received::rfc3339_utc(d.to_timestamp())),
        message_id: m.message_id().map(clip),
        hops,
        path,
        authentication: auth::read(&fields),
        exchange: stamps::decode(&fields),
    }
}

/// What the NDR reader needs from the message's parts.
fn ndr_input(m: &Message<'_>) -> NdrInput {
    let mut input = NdrInput {
        is_report: m.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
                && ct
                    .attribute("report-type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
        }),
        ..Default::default()
    };
    collect_ndr_parts(m, &mut input, 0);
    for (name, value) in fields(m) {
        if name.eq_ignore_ascii_case("X-Failed-Recipients") {
            input.failed_recipients.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .take(ndr::MAX_RECIPIENTS)
                    .map(str::to_string),
            );
        }
    }
    input
}

/// The delivery-status parts and plain text of a message. A bounce that returns or forwards
/// another bounce (a list manager's notice, a forwarded NDR) carries that report in a
/// message/rfc822 part: its delivery-status parts are read too, a few levels deep.
fn collect_ndr_parts(m: &Message<'_>, input: &mut NdrInput, depth: usize) {
    for part in m.parts.iter().take(MAX_PARTS) {
        let is = |t: &str, s: &str| part.is_content_type(t, s);
        match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b)
                if is("message", "delivery-status") || is("message", "global-delivery-status") =>
            {
                push_bounded(
                    &mut input.delivery_status,
                    String::from_utf8_lossy(b).into_owned(),
                );
            }
            PartType::Text(t) if is("message", "delivery-status") => {
                push_bounded(&mut input.delivery_status, t.to_string());
            }
            PartType::Text(t)
                if depth == 0
                    && (part.content_type().is_none()
                        || is("text", "plain")
                        || is_unsplit_multipart(part))
                    && input.body_text.len() < MAX_INPUT / 4 =>
            {
                input.body_text.push_str(t);
                input.body_text.push('\n');
            }
            PartType::Message(inner) if depth < MAX_NESTED => {
                collect_ndr_parts(inner, input, depth + 1);
            }
            _ => {}
        }
    }
}

/// A part declared multipart whose boundary never occurs (an old Sendmail writing a
/// multipart/report header over a plain body): mail-parser keeps its body as text, and that
/// text is the whole report (RFC 2046 section 5.1.1 gives it no parts to read instead).
fn is_unsplit_multipart(part: &MessagePart<'_>) -> bool {
    part.content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
}

fn push_bounded(parts: &mut Vec<String>, text: String) {
    if parts.len() < MAX_PARTS {
        parts.push(text);
    }
}

/// The returned message of an NDR: a message/rfc822 part, text/rfc822-headers, or the
/// "Original message headers:" block of Exchange's text.
fn original(m: &Message<'_>) -> Option<MessageFacts> {
    for part in m.parts.iter().take(MAX_PARTS) {
        match &part.body {
            PartType::Message(inner) => return Some(facts(inner)),
            PartType::Text(t) if part.is_content_type("text", "rfc822-headers") => {
                return headers_block(t);
            }
            _ => {}
        }
    }
    let text = m.body_text(0)?;
    let marker = "Original message headers:";
    let at = text
        .to_ascii_lowercase()
        .find(&marker.to_ascii_lowercase())?;
    headers_block(text.get(at + marker.len()..)?.trim_start())
}

fn headers_block(text: &str) -> Option<MessageFacts> {
    let m = MessageParser::default().parse_headers(text.as_bytes())?;
    (!m.parts.is_empty() && has_real_fields(&m)).then(|| facts(&m))
}

fn verdict(message: &MessageFacts, ndr: Option<&NdrReport>) -> HeadersVerdict {
    match ndr {
        Some(r) if r.ndr.failed() => {
            let failed: Vec<&str> = r
                .ndr
                .recipients
                .iter()
                .filter(|x| x.failed())
                .map(|x| x.recipient.as_str())
                .collect();
            HeadersVerdict {
                passed: false,
                summary: format!(
                    "non-delivery report: {} recipient{} failed ({})",
                    failed.len(),
                    if failed.len() == 1 { "" } else { "s" },
                    failed.join(", ")
                ),
            }
        }
        Some(_) => HeadersVerdict {
            passed: true,
            summary: "delivery report without failed recipients".to_string(),
        },
        None => HeadersVerdict {
            passed: true,
            summary: format!(
                "message read: {} hop{}",
                message.hops.len(),
                if message.hops.len() == 1 { "" } else { "s" }
            ),
        },
    }
}

/// Reading the past should lead to testing the present: the recipient domains as `trace`
/// commands, the servers that answered (or would) as `probe` commands.
fn next_steps(message: &MessageFacts, ndr: Option<&NdrReport>) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !steps.contains(&s) && steps.len() < MAX_STEPS {
            steps.push(s);
        }
    };
    // Command lines to run next: settings named as flags.
    let rcpt_flag = Field::Rcpt.flag();
    if let Some(r) = ndr {
        for rcpt in r.ndr.recipients.iter().filter(|x| x.failed()) {
            if let Some(domain) = domain_of(&rcpt.recipient) {
                push(format!(
                    "mxtrace trace {domain} {rcpt_flag} {}",
                    rcpt.recipient
                ));
                if let Some(mta) = rcpt.remote_mta.as_deref().filter(|h| is_host(h)) {
                    push(format!(
                        "mxtrace probe {mta} {rcpt_flag} {}",
                        rcpt.recipient
                    ));
                }
            }
        }
        return steps;
    }
    let rcpt = message
        .hops
        .iter()
        .rev()
        .find_map(|h| h.for_.as_deref())
        .map(|f| f.trim_matches(['<', '>']).to_string())
        .or_else(|| message.to.first().cloned());
    if let Some(r) = rcpt.as_deref().filter(|r| domain_of(r).is_some()) {
        if let Some(domain) = domain_of(r) {
            push(format!("mxtrace trace {domain} {rcpt_flag} {r}"));
        }
    }
    // The servers that received each leg of the scenario, but Exchange Online's internal
    // front-end names: `trace` of the domain reaches EOP through its MX.
    let last = message.path.legs.len();
    for (n, leg) in message.path.legs.iter().enumerate() {
        let by = message
            .hops
            .iter()
            .find(|h| {
                h.index == leg.at && h.zone != mxtrace_proto::model::headers::Zone::ExchangeOnline
            })
            .and_then(|h| h.by.as_deref())
            .filter(|h| is_host(h));
        // Only the last receiver takes the recipient: to an earlier one it is a relay test.
        let to = rcpt
            .as_deref()
            .filter(|r| n + 1 == last && domain_of(r).is_some());
        match (by, to) {
            (Some(by), Some(r)) => push(format!("mxtrace probe {by} {rcpt_flag} {r}")),
            (Some(by), None) => push(format!("mxtrace probe {by}")),
            (None, _) => {}
        }
    }
    steps
}

/// The domain of an address safe to paste into a shell command line, else None.
fn domain_of(address: &str) -> Option<&str> {
    let (local, domain) = address.rsplit_once('@')?;
    let safe_local = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-=".contains(&b));
    (safe_local && is_host(domain)).then_some(domain)
}

/// A name safe to paste into a shell command line: letters, digits, dots and hyphens.
fn is_host(h: &str) -> bool {
    h.contains('.')
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn clip(s: &str) -> String {
    clip_to(s, MAX_TEXT)
}
