//! IMAP responses as the round trip needs them (RFC 3501 7, RFC 9051 7): a response is a line
//! whose `{n}` literals have been read in (`Response::literals`), split into tokens. Only the
//! shapes of the commands mxtrace sends are interpreted; anything else is kept as text.

/// One server response, literals read: `text` has each literal's place marked by its `{n}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub text: String,
    pub literals: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Atom(String),
    Quoted(String),
    /// The n-th literal of the response.
    Literal(usize),
    Open,
    Close,
}

impl Token {
    /// An atom, a quoted string or a literal as text (NIL is None).
    pub fn string(&self, r: &Response) -> Option<String> {
        match self {
            Token::Atom(a) if a.eq_ignore_ascii_case("NIL") => None,
            Token::Atom(a) | Token::Quoted(a) => Some(a.clone()),
            Token::Literal(i) => r
                .literals
                .get(*i)
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// What kind of response it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `* ...`: the rest.
    Untagged(&'a str),
    /// `+ ...`: a continuation request.
    Continuation(&'a str),
    /// `TAG rest`.
    Tagged(&'a str, &'a str),
}

impl Response {
    pub fn kind(&self) -> Kind<'_> {
        let t = self.text.as_str();
        if let Some(rest) = t.strip_prefix("* ") {
            Kind::Untagged(rest)
        } else if t == "+" || t.starts_with("+ ") {
            Kind::Continuation(t.get(2..).unwrap_or(""))
        } else {
            let (tag, rest) = t.split_once(' ').unwrap_or((t, ""));
            Kind::Tagged(tag, rest)
        }
    }

    /// The tokens of an untagged response (after `* `).
    pub fn tokens(&self) -> Vec<Token> {
        match self.kind() {
            Kind::Untagged(rest) => tokenize(rest),
            _ => Vec::new(),
        }
    }
}

/// `OK`, `NO`, `BAD` (or `PREAUTH`, `BYE`), the response code in brackets, and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub status: String,
    pub code: Option<String>,
    pub text: String,
}

impl Status {
    pub fn parse(rest: &str) -> Status {
        let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let (code, text) = match after.strip_prefix('[') {
            Some(inner) => match inner.split_once(']') {
                Some((c, t)) => (Some(c.to_string()), t.trim_start().to_string()),
                None => (None, after.to_string()),
            },
            None => (None, after.to_string()),
        };
        Status {
            status: word.to_ascii_uppercase(),
            code,
            text,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }

    /// The atoms of a `[CAPABILITY ...]` code, when it is one.
    pub fn capabilities(&self) -> Option<Vec<String>> {
        let code = self.code.as_deref()?;
        let (name, rest) = code.split_once(' ').unwrap_or((code, ""));
        name.eq_ignore_ascii_case("CAPABILITY")
            .then(|| capability_atoms(rest))
    }

    /// The number of a code such as `[UIDVALIDITY 3857529045]`.
    pub fn number(&self, name: &str) -> Option<u32> {
        let (n, v) = self.code.as_deref()?.split_once(' ')?;
        n.eq_ignore_ascii_case(name)
            .then(|| v.trim().parse().ok())
            .flatten()
    }
}

pub fn capability_atoms(s: &str) -> Vec<String> {
    s.split_ascii_whitespace()
        .take(256)
        .map(|a| a.to_ascii_uppercase())
        .collect()
}

/// Atoms, quoted strings (with `\"` and `\\`), `{n}` literal places and parentheses. An atom
/// keeps brackets (`BODY[HEADER]`), as the shapes read here need no more.
pub fn tokenize(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    let mut literal = 0;
    while let Some(&c) = chars.peek() {
        match c {
            ' ' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut q = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => q.extend(chars.next()),
                        '"' => break,
                        c => q.push(c),
                    }
                }
                out.push(Token::Quoted(q));
            }
            '{' => {
                // A literal's place: `{n}` at the end of a line part.
                while chars.next().is_some_and(|c| c != '}') {}
                out.push(Token::Literal(literal));
                literal += 1;
            }
            _ => {
                let mut a = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' || c == '(' || c == ')' {
                        break;
                    }
                    a.push(c);
                    chars.next();
                }
                out.push(Token::Atom(a));
            }
        }
    }
    out
}

/// `{n}` (or `{n+}`, `~{n}`) at the end of a line: the size of the literal that follows.
pub fn literal_size(line: &str) -> Option<u64> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    let n = inner.get(open + 1..)?.trim_end_matches('+');
    if n.is_empty() || n.len() > 12 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// `* n EXISTS` and the like: the number and the word.
pub fn numbered(tokens: &[Token]) -> Option<(u32, String)> {
    match tokens {
        [Token::Atom(n), Token::Atom(w), ..] => Some((n.parse().ok()?, w.to_ascii_uppercase())),
        _ => None,
    }
}

/// `* SEARCH 3 7` (and an ESEARCH-free server's empty `* SEARCH`): the UIDs.
pub fn search(tokens: &[Token]) -> Option<Vec<u32>> {
    match tokens.split_first() {
        Some((Token::Atom(w), rest)) if w.eq_ignore_ascii_case("SEARCH") => Some(
            rest.iter()
                .filter_map(|t| match t {
                    Token::Atom(n) => n.parse().ok(),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// A `LIST` line: its attributes (lower case, with the backslash) and the mailbox name.
pub fn list(tokens: &[Token], r: &Response) -> Option<(Vec<String>, String)> {
    let mut it = tokens.iter();
    match it.next()? {
        Token::Atom(w) if w.eq_ignore_ascii_case("LIST") => {}
        _ => return None,
    }
    if it.next()? != &Token::Open {
        return None;
    }
    let mut attrs = Vec::new();
    for t in it.by_ref() {
        match t {
            Token::Close => break,
            Token::Atom(a) => attrs.push(a.to_ascii_lowercase()),
            _ => {}
        }
    }
    let _delimiter = it.next()?;
    let name = it.next()?.string(r)?;
    Some((attrs, name))
}

/// A `FETCH` line's UID and the literal (or quoted string) after `key` (`BODY[HEADER]`).
pub fn fetch(tokens: &[Token], key: &str, r: &Response) -> Option<(Option<u32>, Option<Vec<u8>>)> {
    match tokens {
        [Token::Atom(_), Token::Atom(w), Token::Open, ..] if w.eq_ignore_ascii_case("FETCH") => {}
        _ => return None,
    }
    let mut uid = None;
    let mut body = None;
    let mut it = tokens.iter().skip(3).peekable();
    while let Some(t) = it.next() {
        let Token::Atom(name) = t else { continue };
        if name.eq_ignore_ascii_case("UID") {
            if let Some(Token::Atom(n)) = it.peek() {
                uid = n.parse().ok();
            }
        } else if name.eq_ignore_ascii_case(key) {
            body = match it.peek() {
                Some(Token::Literal(i)) => r.literals.get(*i).cloned(),
                Some(Token::Quoted(q)) => Some(q.clone().into_bytes()),
                _ => None,
            };
        }
    }
    Some((uid, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(text: &str, literals: &[&[u8]]) -> Response {
        Response {
            text: text.into(),
            literals: literals.iter().map(|l| l.to_vec()).collect(),
        }
    }

    #[test]
    fn statuses_and_codes() {
        let s = Status::parse("OK [CAPABILITY IMAP4rev1 IDLE uidplus] Logged in");
        assert!(s.is_ok());
        assert_eq!(
            s.capabilities().unwrap(),
            vec!["IMAP4REV1", "IDLE", "UIDPLUS"]
        );
        assert_eq!(s.text, "Logged in");
        let s = Status::parse("OK [UIDVALIDITY 1796663073] UIDs valid");
        assert_eq!(s.number("UIDVALIDITY"), Some(1796663073));
        assert_eq!(Status::parse("no bad password").status, "NO");
    }

    #[test]
    fn lists_searches_and_fetches() {
        let r = resp("* LIST (\\HasNoChildren \\Junk) \"/\" Junk", &[]);
        assert_eq!(
            list(&r.tokens(), &r),
            Some((
                vec!["\\hasnochildren".into(), "\\junk".into()],
                "Junk".into()
            ))
        );
        let r = resp("* LIST (\\Junk) \"/\" {10}", &[b"Junk Email"]);
        assert_eq!(list(&r.tokens(), &r).unwrap().1, "Junk Email");
        let r = resp("* LIST (\\Junk) \"/\" \"Junk \\\"E\\\"\"", &[]);
        assert_eq!(list(&r.tokens(), &r).unwrap().1, "Junk \"E\"");
        let r = resp("* SEARCH 6 9", &[]);
        assert_eq!(search(&r.tokens()), Some(vec![6, 9]));
        assert_eq!(search(&resp("* SEARCH", &[]).tokens()), Some(vec![]));
        let r = resp(
            "* 6 FETCH (UID 7 FLAGS (\\Seen) BODY[HEADER] {5})",
            &[b"X: y\r"],
        );
        assert_eq!(
            fetch(&r.tokens(), "BODY[HEADER]", &r),
            Some((Some(7), Some(b"X: y\r".to_vec())))
        );
        let r = resp("* 3 EXISTS", &[]);
        assert_eq!(numbered(&r.tokens()), Some((3, "EXISTS".into())));
    }

    #[test]
    fn literal_sizes() {
        assert_eq!(literal_size("* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(literal_size("a {3+}"), Some(3));
        assert_eq!(literal_size("* OK {x}"), None);
        assert_eq!(literal_size("* OK {99999999999999999999}"), None);
        assert_eq!(literal_size("* OK done"), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(resp("+ idling", &[]).kind(), Kind::Continuation("idling"));
        assert_eq!(resp("+", &[]).kind(), Kind::Continuation(""));
        assert_eq!(
            resp("a1 OK done", &[]).kind(),
            Kind::Tagged("a1", "OK done")
        );
    }
}
