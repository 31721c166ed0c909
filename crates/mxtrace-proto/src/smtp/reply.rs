//! SMTP replies: line framing with hard limits (ARCHITECTURE.md "Invariants"), basic and enhanced
//! status codes (RFC 5321 section 4.2, RFC 3463/2034), and the pasted-text form `explain` takes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A reply line longer than this is a protocol error (4 KiB; RFC 5321 4.5.3.1.5 allows 1000 octets, servers send more).
pub const MAX_LINE: usize = 4096;
/// A multi-line reply larger than this in total is a protocol error (64 KiB).
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// A multi-line reply with more lines than this is a protocol error (100 lines).
pub const MAX_REPLY_LINES: usize = 100;

/// An RFC 3463 enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedCode {
    /// Parses `2.1.5`-style text. Class must be 2, 4 or 5; subject and detail at most 3 digits
    /// (RFC 3463 section 2).
    pub fn parse(s: &str) -> Option<EnhancedCode> {
        let mut parts = s.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let digits = |p: &str, max: usize| {
            !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(class, 1) || !digits(subject, 3) || !digits(detail, 3) {
            return None;
        }
        let class: u8 = class.parse().ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(EnhancedCode {
            class,
            subject: subject.parse().ok()?,
            detail: detail.parse().ok()?,
        })
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl Serialize for EnhancedCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Serialized as its text (above), so its schema is a string of that form.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for EnhancedCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EnhancedCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An RFC 3463 enhanced status code, `class.subject.detail`: `5.1.1`.",
            "type": "string",
            "pattern": "^[245]\\.[0-9]{1,3}\\.[0-9]{1,3}$"
        })
    }
}

/// Read back from a stored result (`diff`): the text form, checked as on the wire.
impl<'de> Deserialize<'de> for EnhancedCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EnhancedCode::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an enhanced status code"))
        })
    }
}

/// One complete SMTP reply. `lines` are the raw lines as received (codes included, CRLF
/// stripped, non-UTF-8 bytes replaced), so the transcript shows exactly what the server said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<EnhancedCode>,
    pub lines: Vec<String>,
}

impl Reply {
    /// The text of every line without its code, separator and enhanced code, joined by spaces.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let rest = line.get(4..).unwrap_or("");
            let rest = match self.enhanced {
                Some(e) => {
                    let prefix = e.to_string();
                    rest.strip_prefix(prefix.as_str()).unwrap_or(rest)
                }
                None => rest,
            };
            let rest = rest.trim();
            if rest.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(rest);
        }
        out
    }

    /// First digit of the basic code (RFC 5321 section 4.2.1).
    pub fn first_digit(&self) -> u16 {
        self.code / 100
    }

    pub fn is_positive(&self) -> bool {
        matches!(self.first_digit(), 2 | 3)
    }

    /// Parses a reply pasted by a user (`explain`): lines separated by newlines, each with its
    /// code. A single line with only text after the code is fine; an empty paste is not.
    pub fn parse_text(text: &str) -> Result<Reply, ReplyError> {
        let mut acc = ReplyAccumulator::new();
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .collect();
        if lines.is_empty() {
            return Err(ReplyError::Empty);
        }
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim_start();
            // A pasted reply often has every line with '-' or every line with ' '; accept both
            // by treating the last line as the final one whatever its separator.
            match acc.push_line(line.as_bytes())? {
                Some(reply) => {
                    if i != last {
                        return Err(ReplyError::TrailingLines);
                    }
                    return Ok(reply);
                }
                None if i == last => return acc.finish_lenient(),
                None => {}
            }
        }
        Err(ReplyError::Empty)
    }
}

/// Why a reply could not be framed or parsed. Each is a protocol error at the stage it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    LineTooLong,
    TooManyLines,
    TooLarge,
    /// The line does not start with a three-digit code 2xx-5xx followed by ' ', '-' or the end.
    BadLine(String),
    /// A continuation line's code differs from the first line's (RFC 5321 4.2.1).
    MismatchedCode {
        first: u16,
        line: u16,
    },
    Empty,
    TrailingLines,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::LineTooLong => write!(f, "reply line longer than {MAX_LINE} bytes"),
            ReplyError::TooManyLines => write!(f, "reply has more than {MAX_REPLY_LINES} lines"),
            ReplyError::TooLarge => write!(f, "reply larger than {MAX_REPLY_BYTES} bytes"),
            ReplyError::BadLine(l) => write!(f, "not an SMTP reply line: {l:?}"),
            ReplyError::MismatchedCode { first, line } => write!(
                f,
                "reply code changed within one reply ({first} then {line})"
            ),
            ReplyError::Empty => write!(f, "empty reply"),
            ReplyError::TrailingLines => write!(f, "text after the last line of the reply"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Collects the lines of one reply, enforcing the limits; independent of any socket so that
/// framing is tested and fuzzed on its own.
#[derive(Debug, Default)]
pub struct ReplyAccumulator {
    code: Option<u16>,
    lines: Vec<String>,
    bytes: usize,
}

impl ReplyAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (without CRLF). Returns the reply when this was its last line.
    pub fn push_line(&mut self, raw: &[u8]) -> Result<Option<Reply>, ReplyError> {
        if raw.len() > MAX_LINE {
            return Err(ReplyError::LineTooLong);
        }
        self.bytes += raw.len() + 2;
        if self.bytes > MAX_REPLY_BYTES {
            return Err(ReplyError::TooLarge);
        }
        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        let line = String::from_utf8_lossy(raw).into_owned();
        let (code, last) = parse_code(raw).ok_or_else(|| ReplyError::BadLine(truncate(&line)))?;
        match self.code {
            None => self.code = Some(code),
            Some(first) if first != code => {
                return Err(ReplyError::MismatchedCode { first, line: code })
            }
            Some(_) => {}
        }
        self.lines.push(line);
        if last {
            Ok(Some(self.take(code)))
        } else {
            Ok(None)
        }
    }

    /// Ends a pasted reply whose last line still had the '-' separator.
    fn finish_lenient(&mut self) -> Result<Reply, ReplyError> {
        match self.code {
            Some(code) => Ok(self.take(code)),
            None => Err(ReplyError::Empty),
        }
    }

    /// True while part of a reply has been read.
    pub fn in_progress(&self) -> bool {
        !self.lines.is_empty()
    }

    fn take(&mut self, code: u16) -> Reply {
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        self.bytes = 0;
        let enhanced = if matches!(code / 100, 2 | 4 | 5) {
            lines.first().and_then(|l| enhanced_of(l, code))
        } else {
            None
        };
        Reply {
            code,
            enhanced,
            lines,
        }
    }
}

/// `(code, is_last_line)` of a reply line: three digits 2-5/0-5/0-9, then ' ', '-' or nothing.
fn parse_code(raw: &[u8]) -> Option<(u16, bool)> {
    let &[a, b, c] = raw.get(..3)? else {
        return None;
    };
    if ![a, b, c].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&a) {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    match raw.get(3) {
        None | Some(b' ') => Some((code, true)),
        Some(b'-') => Some((code, false)),
        _ => None,
    }
}

/// The enhanced code at the start of a line's text, when its class matches the basic code's
/// first digit (RFC 2034 section 4: they must agree).
fn enhanced_of(line: &str, code: u16) -> Option<EnhancedCode> {
    let text = line.get(4..)?.trim_start();
    let token = text.split_whitespace().next()?;
    let e = EnhancedCode::parse(token.trim_end_matches([',', ';', ':']))?;
    (u16::from(e.class) == code / 100).then_some(e)
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> Result<Option<Reply>, ReplyError> {
        let mut acc = ReplyAccumulator::new();
        let mut out = None;
        for l in lines {
            out = acc.push_line(l.as_bytes())?;
        }
        Ok(out)
    }

    #[test]
    fn single_line_with_enhanced_code() {
        let r = feed(&["550 5.1.1 <nobody@contoso.test>: Recipient address rejected"])
            .unwrap()
            .unwrap();
        assert_eq!(r.code, 550);
        assert_eq!(r.enhanced.unwrap().to_string(), "5.1.1");
        assert_eq!(
            r.text(),
            "<nobody@contoso.test>: Recipient address rejected"
        );
    }

    #[test]
    fn multi_line_ehlo() {
        let mut acc = ReplyAccumulator::new();
        assert_eq!(acc.push_line(b"250-mx.example Hello").unwrap(), None);
        assert!(acc.in_progress());
        let r = acc.push_line(b"250 STARTTLS").unwrap().unwrap();
        assert_eq!(r.lines.len(), 2);
        assert_eq!(r.enhanced, None);
        assert!(!acc.in_progress());
    }

    #[test]
    fn bare_code_is_a_reply() {
        let r = feed(&["250"]).unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.text(), "");
    }

    #[test]
    fn enhanced_class_must_match_basic_code() {
        let r = feed(&["250 5.1.1 odd"]).unwrap().unwrap();
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn no_enhanced_code_on_3xx() {
        let r = feed(&["354 2.0.0 go ahead"]).unwrap().unwrap();
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn rejects_garbage_and_mismatch() {
        assert!(matches!(feed(&["hello"]), Err(ReplyError::BadLine(_))));
        assert!(matches!(feed(&["650 x"]), Err(ReplyError::BadLine(_))));
        assert!(matches!(feed(&["250x"]), Err(ReplyError::BadLine(_))));
        assert_eq!(
            feed(&["250-a", "550 b"]),
            Err(ReplyError::MismatchedCode {
                first: 250,
                line: 550
            })
        );
    }

    #[test]
    fn limits() {
        let long = format!("250 {}", "a".repeat(MAX_LINE));
        assert_eq!(feed(&[&long]), Err(ReplyError::LineTooLong));
        let many: Vec<String> = (0..=MAX_REPLY_LINES).map(|_| "250-x".to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(feed(&many), Err(ReplyError::TooManyLines));
        let big = format!("250-{}", "a".repeat(MAX_LINE - 10));
        let lines: Vec<&str> = (0..20).map(|_| big.as_str()).collect();
        assert_eq!(feed(&lines), Err(ReplyError::TooLarge));
    }

    #[test]
    fn pasted_text() {
        let r = Reply::parse_text("550-5.7.26 Unauthenticated email\n550 5.7.26 is not accepted")
            .unwrap();
        assert_eq!(r.code, 550);
        assert_eq!(r.enhanced.unwrap().to_string(), "5.7.26");
        assert_eq!(r.text(), "Unauthenticated email is not accepted");
        let r = Reply::parse_text("  451 4.7.500 Server busy. (S77719)\r\n").unwrap();
        assert_eq!(r.enhanced.unwrap().to_string(), "4.7.500");
        let r = Reply::parse_text("250-a\n250-b").unwrap();
        assert_eq!(r.lines.len(), 2);
        assert_eq!(Reply::parse_text("  \n"), Err(ReplyError::Empty));
        assert_eq!(
            Reply::parse_text("250 a\n250 b"),
            Err(ReplyError::TrailingLines)
        );
        assert!(Reply::parse_text("Relay access denied").is_err());
    }

    #[test]
    fn enhanced_code_parse() {
        assert!(EnhancedCode::parse("5.7.1").is_some());
        assert!(EnhancedCode::parse("4.7.500").is_some());
        assert!(EnhancedCode::parse("3.1.1").is_none());
        assert!(EnhancedCode::parse("5.7").is_none());
        assert!(EnhancedCode::parse("5.7.1.1").is_none());
        assert!(EnhancedCode::parse("5.7.1000").is_none());
        assert!(EnhancedCode::parse("5..1").is_none());
    }
}
