//! EHLO capabilities (RFC 5321 4.1.1.1 and the extensions' RFCs): parsed from the EHLO reply,
//! keeping every keyword, known or not, so the transcript and JSON show what the server offered.

use super::reply::Reply;
use serde::{Deserialize, Serialize};

/// At most this many capability lines are kept; the reply framing already caps a reply at 100
/// lines, so this only guards against a change of that limit.
const MAX_CAPABILITIES: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Capabilities {
    /// The domain the server named in the first line of its EHLO reply.
    pub server_name: Option<String>,
    /// Every keyword line after the first, upper-cased keyword then parameters as sent.
    pub keywords: Vec<String>,
    pub starttls: bool,
    pub pipelining: bool,
    pub enhanced_status_codes: bool,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub chunking: bool,
    /// SIZE limit in bytes, when advertised with a value (RFC 1870); 0 means no fixed limit.
    pub size: Option<u64>,
    /// AUTH mechanisms (RFC 4954), upper-cased.
    pub auth: Vec<String>,
}

impl Capabilities {
    pub fn parse(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        let mut lines = reply.lines.iter().map(|l| l.get(4..).unwrap_or("").trim());
        if let Some(first) = lines.next() {
            caps.server_name = first.split_whitespace().next().map(str::to_string);
        }
        for line in lines.take(MAX_CAPABILITIES) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            let params: Vec<&str> = words.collect();
            match keyword.as_str() {
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "CHUNKING" => caps.chunking = true,
                // A value that does not fit u64 is treated as "no usable limit", not an error.
                "SIZE" => caps.size = params.first().and_then(|v| v.parse().ok()),
                // "AUTH=LOGIN PLAIN" is the pre-RFC 4954 form some servers still send.
                "AUTH" | "AUTH=LOGIN" => {
                    if keyword == "AUTH=LOGIN" {
                        push_unique(&mut caps.auth, "LOGIN".to_string());
                    }
                    for p in &params {
                        push_unique(&mut caps.auth, p.to_ascii_uppercase());
                    }
                }
                _ if keyword.starts_with("AUTH=") => {
                    for p in keyword.trim_start_matches("AUTH=").split([' ', ',']) {
                        if !p.is_empty() {
                            push_unique(&mut caps.auth, p.to_string());
                        }
                    }
                    for p in &params {
                        push_unique(&mut caps.auth, p.to_ascii_uppercase());
                    }
                }
                _ => {}
            }
            let mut shown = keyword;
            for p in params {
                shown.push(' ');
                shown.push_str(p);
            }
            caps.keywords.push(shown);
        }
        caps
    }

    pub fn has(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.split(' ').next() == Some(keyword))
    }

    /// Signs that a middlebox rewrote the EHLO reply: Cisco ASA/PIX "ESMTP inspection" replaces
    /// keywords it does not allow with X's (e.g. `XXXXXXXA` for STARTTLS) or `0000000`.
    pub fn masked_keywords(&self) -> Vec<String> {
        self.keywords
            .iter()
            .filter(|k| {
                let w = k.split(' ').next().unwrap_or("");
                w.len() >= 4
                    && (w.bytes().filter(|&b| b == b'X').count() * 2 > w.len()
                        || w.bytes().all(|b| b == b'0'))
            })
            .cloned()
            .collect()
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::ReplyAccumulator;

    fn reply(lines: &[&str]) -> Reply {
        let mut acc = ReplyAccumulator::new();
        for l in lines {
            if let Some(r) = acc.push_line(l.as_bytes()).unwrap() {
                return r;
            }
        }
        panic!("incomplete reply");
    }

    #[test]
    fn parses_common_keywords() {
        let caps = Capabilities::parse(&reply(&[
            "250-mx.contoso.test Hello [127.0.0.1]",
            "250-SIZE 37748736",
            "250-PIPELINING",
            "250-STARTTLS",
            "250-AUTH LOGIN plain",
            "250-AUTH=LOGIN",
            "250-ENHANCEDSTATUSCODES",
            "250-X-ANONYMOUSTLS",
            "250 CHUNKING",
        ]));
        assert_eq!(caps.server_name.as_deref(), Some("mx.contoso.test"));
        assert!(caps.starttls && caps.pipelining && caps.enhanced_status_codes && caps.chunking);
        assert_eq!(caps.size, Some(37_748_736));
        assert_eq!(caps.auth, vec!["LOGIN", "PLAIN"]);
        assert!(caps.has("X-ANONYMOUSTLS"));
        assert!(caps.masked_keywords().is_empty());
    }

    #[test]
    fn huge_size_is_not_an_error() {
        let caps = Capabilities::parse(&reply(&["250-a", "250 SIZE 99999999999999999999999"]));
        assert_eq!(caps.size, None);
        assert!(caps.has("SIZE"));
    }

    #[test]
    fn detects_masked_starttls() {
        let caps = Capabilities::parse(&reply(&["250-a", "250-XXXXXXXA", "250 PIPELINING"]));
        assert!(!caps.starttls);
        assert_eq!(caps.masked_keywords(), vec!["XXXXXXXA"]);
    }
}
