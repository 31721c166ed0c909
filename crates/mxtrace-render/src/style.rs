//! Terminal styling shared by every human renderer: colour (or none), the PASS/FAIL word, and
//! the escaping that keeps text from the network from driving the terminal.

use mxtrace_proto::model::Outcome;
use std::borrow::Cow;
use std::fmt::Write;

/// ANSI styling, or none.
#[derive(Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn new(color: bool) -> Style {
        Style { color }
    }

    pub fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub(crate) fn outcome(&self, o: Outcome, s: &str) -> String {
        match o {
            Outcome::Ok => self.paint("32", s),
            Outcome::Transient => self.paint("33", s),
            Outcome::Permanent | Outcome::Error => self.paint("31", s),
        }
    }
}

/// Text from the network made safe for a terminal: control characters (C0 including CR and LF,
/// DEL, C1) are shown as `\xNN`, the way swaks and `cat -v` make them visible, so a server
/// cannot clear the screen, retitle the terminal or forge transcript lines; bidirectional
/// overrides are shown as `\u{NNNN}`. Invalid UTF-8 was already replaced with U+FFFD when the
/// reply was read. JSON output keeps the exact text.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_visible(&mut out, c);
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_visible(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
    } else if (c as u32) < 0x100 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:04x}}}", c as u32);
    }
}

/// The verdict word, coloured: PASS in bold green, FAIL in bold red.
pub fn pass_fail(passed: bool, style: Style) -> String {
    if passed {
        style.paint("1;32", "PASS")
    } else {
        style.paint("1;31", "FAIL")
    }
}

/// The last line of defence on a whole rendering: only line breaks and this renderer's own
/// colour codes (`ESC [ digits ; m`, when colour is on) stay raw; any other control character
/// is made visible, whichever field it came in.
pub(crate) fn guard(out: String, style: Style) -> String {
    let mut safe = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(c) = rest.chars().next() {
        let own_colour = (style.color && c == '\x1b').then(|| sgr_len(rest));
        if let Some(Some(n)) = own_colour {
            safe.push_str(rest.get(..n).unwrap_or_default());
            rest = rest.get(n..).unwrap_or_default();
            continue;
        }
        if c == '\n' {
            safe.push(c);
        } else {
            push_visible(&mut safe, c);
        }
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
    }
    safe
}

/// Length of a colour code (`ESC [ 1;31 m`) at the start of `s`.
fn sgr_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("\x1b[")?;
    let digits = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(digits) == Some(&b'm')).then_some(2 + digits + 1)
}
