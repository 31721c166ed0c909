//! Authentication evidence: Authentication-Results and ARC-Authentication-Results (RFC 8601,
//! RFC 8617), Received-SPF (RFC 7208 section 9.1) and the domains and selectors of
//! DKIM-Signature (RFC 6376 section 3.5). Read tolerantly: Microsoft 365 omits the authserv-id
//! and stamps stray tokens between results; every part is optional.

use mxtrace_proto::model::headers::{AuthResult, Authentication, DkimSignature, ReceivedSpf};
use std::collections::BTreeMap;

/// At most this many results per header and headers per kind are read.
const MAX_RESULTS: usize = 32;
const MAX_HEADERS: usize = 16;
const MAX_TEXT: usize = 300;

/// Composite authentication reason codes, by their first digit or in full (Microsoft Learn,
/// "Anti-spam message headers in cloud organizations", `reason` field).
const COMPAUTH_REASONS: &[(&str, &str)] = &[
    ("000", "failed explicit authentication (e.g. DMARC fail with p=quarantine or p=reject)"),
    ("001", "failed implicit authentication: no authentication records, or weak ones (SPF ~all/?all, DMARC p=none)"),
    ("002", "the organization's policy explicitly prohibits this sender/domain pair from sending spoofed email"),
    ("010", "failed DMARC with p=reject or p=quarantine, and the sending domain is one of the organization's accepted domains (intra-org spoofing)"),
    ("130", "passed authentication: the ARC result overrode a DMARC failure"),
    ("1", "passed authentication (the last two digits are internal to Microsoft 365)"),
    ("7", "passed authentication (the last two digits are internal to Microsoft 365)"),
    ("2", "soft-passed implicit authentication (compauth=softpass)"),
    ("3", "not checked for composite authentication (compauth=none)"),
    ("4", "bypassed composite authentication (compauth=none)"),
    ("9", "bypassed composite authentication (compauth=none)"),
    ("6", "failed implicit authentication, and the sending domain is one of the organization's accepted domains (intra-org spoofing)"),
];

/// Reads the authentication headers among `headers` (name, unfolded value), in order.
pub fn read(headers: &[(String, String)]) -> Authentication {
    let mut out = Authentication::default();
    let (mut ar, mut arc, mut spf, mut dkim) = (0, 0, 0, 0);
    for (name, value) in headers {
        match name.to_ascii_lowercase().as_str() {
            "authentication-results" if ar < MAX_HEADERS => {
                ar += 1;
                out.results.extend(results("Authentication-Results", value));
            }
            "arc-authentication-results" if arc < MAX_HEADERS => {
                arc += 1;
                out.results
                    .extend(results("ARC-Authentication-Results", value));
            }
            "received-spf" if spf < MAX_HEADERS => {
                spf += 1;
                out.received_spf.push(received_spf(value));
            }
            "dkim-signature" if dkim < MAX_HEADERS => {
                dkim += 1;
                let tags = tag_list(value);
                out.dkim_signatures.push(DkimSignature {
                    domain: tags.get("d").cloned(),
                    selector: tags.get("s").cloned(),
                });
            }
            _ => {}
        }
    }
    out
}

/// The results of one header: `[i=N;] [authserv-id;] method=result (comment) prop=value; ...`.
fn results(header: &'static str, value: &str) -> Vec<AuthResult> {
    let mut out = Vec::new();
    let mut authserv_id = None;
    let mut instance = None;
    for (n, segment) in split_outside_comments(value, ';').into_iter().enumerate() {
        let tokens = tokenize(&segment);
        let Some(Token::Word(first)) = tokens.first() else {
            continue;
        };
        let Some((key, val)) = first.split_once('=') else {
            // No `=`: the authserv-id when first; Microsoft's stray domain tokens otherwise.
            if n == 0 || (n == 1 && instance.is_some()) {
                authserv_id = Some(clip(first));
            }
            continue;
        };
        if key.eq_ignore_ascii_case("i") && header.starts_with("ARC") {
            instance = Some(clip(val));
            continue;
        }
        if out.len() >= MAX_RESULTS {
            break;
        }
        out.push(result(header, &authserv_id, &instance, key, val, &tokens));
    }
    out
}

fn result(
    header: &'static str,
    authserv_id: &Option<String>,
    instance: &Option<String>,
    method: &str,
    value: &str,
    tokens: &[Token],
) -> AuthResult {
    let mut comment = None;
    let mut properties = BTreeMap::new();
    for t in tokens.iter().skip(1) {
        match t {
            Token::Comment(c) if comment.is_none() => comment = Some(clip(c)),
            Token::Word(w) => {
                if let Some((k, v)) = w.split_once('=') {
                    if properties.len() < MAX_RESULTS {
                        properties.insert(k.to_ascii_lowercase(), clip(v.trim_matches('"')));
                    }
                }
            }
            Token::Comment(_) => {}
        }
    }
    let method = method.trim().to_ascii_lowercase();
    let meaning = if method == "compauth" {
        properties.get("reason").and_then(|r| compauth_reason(r))
    } else {
        None
    };
    AuthResult {
        header,
        authserv_id: authserv_id.clone(),
        instance: instance.clone(),
        method,
        result: value.trim().to_ascii_lowercase(),
        comment,
        properties,
        meaning,
    }
}

/// What a compauth reason code means; None for a code the documentation does not cover.
pub fn compauth_reason(code: &str) -> Option<String> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    COMPAUTH_REASONS
        .iter()
        .find(|(k, _)| *k == code)
        .or_else(|| {
            COMPAUTH_REASONS
                .iter()
                .find(|(k, _)| k.len() == 1 && code.starts_with(k))
        })
        .map(|(_, m)| (*m).to_string())
}

/// `Pass (comment) client-ip=...; helo=...;`
fn received_spf(value: &str) -> ReceivedSpf {
    let tokens = tokenize(value);
    let result = match tokens.first() {
        Some(Token::Word(w)) => w.trim_end_matches(';').to_ascii_lowercase(),
        _ => String::new(),
    };
    let comment = tokens.iter().find_map(|t| match t {
        Token::Comment(c) => Some(clip(c)),
        Token::Word(_) => None,
    });
    let prop = |name: &str| {
        tokens.iter().find_map(|t| match t {
            Token::Word(w) => w
                .trim_end_matches(';')
                .split_once('=')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| clip(v.trim_matches('"'))),
            Token::Comment(_) => None,
        })
    };
    ReceivedSpf {
        result: clip(&result),
        comment,
        client_ip: prop("client-ip"),
        helo: prop("helo"),
    }
}

/// DKIM `tag=value; tag=value` (RFC 6376 3.2), folding whitespace removed from values.
fn tag_list(value: &str) -> BTreeMap<String, String> {
    value
        .split(';')
        .take(MAX_RESULTS)
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            (k.trim().to_ascii_lowercase(), clip(&v))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Comment(String),
}

/// Words and (possibly nested) comments; quoted strings stay inside their word.
fn tokenize(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut comment = String::new();
    let mut depth = 0usize;
    let mut quoted = false;
    for c in s.chars() {
        if depth > 0 {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                out.push(Token::Comment(comment.trim().to_string()));
                comment.clear();
            } else {
                comment.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            '(' if !quoted => {
                flush(&mut word, &mut out);
                depth = 1;
            }
            c if c.is_whitespace() && !quoted => flush(&mut word, &mut out),
            c => word.push(c),
        }
        if out.len() > 4 * MAX_RESULTS {
            break;
        }
    }
    flush(&mut word, &mut out);
    if depth > 0 && !comment.trim().is_empty() {
        out.push(Token::Comment(comment.trim().to_string()));
    }
    out
}

fn flush(word: &mut String, out: &mut Vec<Token>) {
    if !word.is_empty() {
        out.push(Token::Word(std::mem::take(word)));
    }
}

/// Splits on `sep` outside comments and quoted strings.
fn split_outside_comments(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 && !quoted => {
                out.push(std::mem::take(&mut cur));
                if out.len() > 4 * MAX_RESULTS {
                    return out;
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn clip(s: &str) -> String {
    super::clip_to(s, MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn microsoft_authentication_results() {
        // Microsoft 365 stamps no authserv-id and stray domain tokens (Microsoft Learn sample
        // syntax; the stray tokens as in tests/data/headers/sisimai-lhost-office365-01.eml).
        let a = read(&[h(
            "Authentication-Results",
            "spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=fabrikam.test; dkim=pass (signature was verified) header.d=fabrikam.test;contoso.test; dmarc=pass action=none header.from=fabrikam.test;compauth=pass reason=100",
        )]);
        let spf = a.verdict("spf").unwrap();
        assert_eq!(spf.result, "pass");
        assert_eq!(spf.comment.as_deref(), Some("sender IP is 192.0.2.10"));
        assert_eq!(spf.properties["smtp.mailfrom"], "fabrikam.test");
        assert_eq!(spf.authserv_id, None);
        assert_eq!(
            a.verdict("dkim").unwrap().properties["header.d"],
            "fabrikam.test"
        );
        assert_eq!(a.verdict("dmarc").unwrap().properties["action"], "none");
        let ca = a.verdict("compauth").unwrap();
        assert_eq!(ca.properties["reason"], "100");
        assert!(ca.meaning.as_deref().unwrap().starts_with("passed"));
        assert_eq!(a.results.len(), 4);
    }

    #[test]
    fn gmail_arc_spf_and_dkim() {
        let a = read(&[
            h("ARC-Authentication-Results", "i=1; mx.google.com; dkim=pass header.i=@googlemail.com header.s=20210112; spf=none (google.com: x) smtp.helo=mail-sor-f69.google.com; dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=googlemail.com"),
            h("Received-SPF", "none (google.com: mail-sor-f69.google.com does not designate permitted sender hosts) client-ip=209.85.220.69;"),
            h("DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n        d=googlemail.com; s=20210112;\r\n h=in-reply-to; bh=abc; b=def"),
        ]);
        let r = &a.results[0];
        assert_eq!(r.header, "ARC-Authentication-Results");
        assert_eq!(r.instance.as_deref(), Some("1"));
        assert_eq!(r.authserv_id.as_deref(), Some("mx.google.com"));
        assert_eq!(
            a.results[2].comment.as_deref(),
            Some("p=QUARANTINE sp=QUARANTINE dis=NONE")
        );
        assert!(
            a.verdict("dmarc").is_none(),
            "ARC results are not the verdict"
        );
        assert_eq!(a.received_spf[0].result, "none");
        assert_eq!(
            a.received_spf[0].client_ip.as_deref(),
            Some("209.85.220.69")
        );
        assert_eq!(
            a.dkim_signatures[0].domain.as_deref(),
            Some("googlemail.com")
        );
        assert_eq!(a.dkim_signatures[0].selector.as_deref(), Some("20210112"));
    }

    #[test]
    fn compauth_reasons_from_the_table_only() {
        assert!(compauth_reason("000").unwrap().contains("explicit"));
        assert!(compauth_reason("010").unwrap().contains("accepted domains"));
        assert!(compauth_reason("130").unwrap().contains("ARC"));
        assert!(compauth_reason("201").unwrap().contains("soft-passed"));
        assert_eq!(compauth_reason("501"), None);
        assert_eq!(compauth_reason("1000"), None);
        assert_eq!(compauth_reason("ab1"), None);
    }

    #[test]
    fn hostile_input_is_bounded() {
        let v = "a=b; ".repeat(10_000) + &"(".repeat(1000);
        let a = read(&[h("Authentication-Results", &v)]);
        assert!(a.results.len() <= MAX_RESULTS);
        assert!(
            read(&[h("Authentication-Results", ")))=;;((")])
                .results
                .len()
                <= 1
        );
    }
}
