//! Settings named in sentences. Errors and advice name a setting by its `Field` (or, for the
//! few settings outside `SessionSpec`, a `RunSetting`); this is the one place that words it
//! for the front end that shows the sentence: the command line as a flag (`--starttls
//! require`), a scenario file or an exporter module as its key (`starttls = "require"`).

use super::{Field, Naming};
use std::fmt;

impl Field {
    /// The setting in a sentence: its name, except that `-4/-6` reads "-4 or -6".
    pub fn mention(self, naming: Naming) -> &'static str {
        match (self, naming) {
            (Field::IpVersion, Naming::Flag) => "-4 or -6",
            _ => self.name(naming),
        }
    }

    /// A switch turned on, as advice suggests it: `--tls-implicit`, `tls_implicit = true`.
    pub const fn on(self) -> Suggestion {
        Suggestion {
            field: self,
            value: None,
        }
    }

    /// The setting with a value, as advice suggests it: `--starttls require`,
    /// `starttls = "require"`.
    pub const fn set_to(self, value: &'static str) -> Suggestion {
        Suggestion {
            field: self,
            value: Some(value),
        }
    }
}

/// A setting and the value advice suggests for it; `word` says it for a front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suggestion {
    field: Field,
    /// None: a switch, on.
    value: Option<&'static str>,
}

impl Suggestion {
    pub fn word(self, naming: Naming) -> Worded {
        Worded(self, naming)
    }
}

/// A suggestion worded for one front end (`Display`).
#[derive(Debug, Clone, Copy)]
pub struct Worded(Suggestion, Naming);

impl fmt::Display for Worded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Worded(s, naming) = *self;
        match (naming, s.value) {
            (Naming::Flag, None) => f.write_str(s.field.flag()),
            (Naming::Flag, Some(v)) => write!(f, "{} {v}", s.field.flag()),
            (Naming::Key, None) => write!(f, "{} = true", s.field.key()),
            (Naming::Key, Some(v)) => write!(f, "{} = {v:?}", s.field.key()),
        }
    }
}

/// Where a data table's sentence names a setting, it writes `{setting:KEY}` (the setting),
/// `{setting:KEY=on}` (a switch turned on) or `{setting:KEY=VALUE}` (a value to give it), KEY
/// being the setting's key; `reword` words each for the front end that shows the sentence.
/// A token naming no setting is left as written (a test of the tables keeps them valid).
pub fn reword(text: &str, naming: Naming) -> String {
    const OPEN: &str = "{setting:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        let (before, token) = rest.split_at(at);
        out.push_str(before);
        let Some(end) = token.find('}') else {
            out.push_str(token);
            return out;
        };
        let inner = token.get(OPEN.len()..end).unwrap_or("");
        match setting(inner) {
            Some(words) => out.push_str(&words.word(naming).to_string()),
            None => out.push_str(token.get(..=end).unwrap_or(token)),
        }
        rest = token.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// A token's inside (`KEY`, `KEY=on`, `KEY=VALUE`) as what it suggests.
fn setting(inner: &str) -> Option<Tokened<'_>> {
    let (key, value) = match inner.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (inner, None),
    };
    let field = Field::ALL.iter().copied().find(|f| f.key() == key)?;
    Some(Tokened { field, value })
}

/// A setting named by a table's token.
struct Tokened<'a> {
    field: Field,
    /// None: the setting itself; `on`: a switch turned on; else the value to give it.
    value: Option<&'a str>,
}

impl Tokened<'_> {
    fn word(&self, naming: Naming) -> String {
        match self.value {
            None => self.field.mention(naming).to_string(),
            Some("on") => self.field.on().word(naming).to_string(),
            Some(v) => match naming {
                Naming::Flag => format!("{} {v}", self.field.flag()),
                Naming::Key => format!("{} = {v:?}", self.field.key()),
            },
        }
    }

    /// Whether the token names a setting (for the tables' test).
    pub fn is_known(inner: &str) -> bool {
        setting(inner).is_some()
    }
}

/// Every `{setting:...}` token of `text` that names no setting (for the tables' tests).
pub fn unknown_settings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("{setting:") {
        let token = rest.get(at..).unwrap_or("");
        let end = token.find('}').unwrap_or(token.len());
        let inner = token.get("{setting:".len()..end).unwrap_or("");
        if !Tokened::is_known(inner) {
            out.push(inner.to_string());
        }
        rest = token.get(end..).unwrap_or("");
    }
    out
}

/// Settings outside `SessionSpec` that the engine names. They organise one run of a command
/// (its place in a delivery path, files it reads or keeps between runs) rather than say how
/// to talk to a server; a file writes the first three as keys of its own, and the others
/// (`--dnssec-trust-anchor`, `--resume`) only the command line has, so they are named by
/// their flag whatever the front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunSetting {
    /// The delivery scenario A-D and the hop in it (`probe`, `trace`; keys of scenario files
    /// and modules).
    Scenario,
    Hop,
    /// The Microsoft 365 tenant (`trace`, `sweep`; a key of scenario files and modules).
    Tenant,
    /// DNSKEY records DANE validates from (`trace`, `dns`).
    DnssecTrustAnchor,
    /// A previous `sweep`'s output, whose targets are skipped.
    Resume,
}

impl RunSetting {
    pub fn flag(self) -> &'static str {
        match self {
            RunSetting::Scenario => "--scenario",
            RunSetting::Hop => "--hop",
            RunSetting::Tenant => "--tenant",
            RunSetting::DnssecTrustAnchor => "--dnssec-trust-anchor",
            RunSetting::Resume => "--resume",
        }
    }

    /// The key in a scenario file or an exporter module, when one has it.
    pub fn key(self) -> Option<&'static str> {
        match self {
            RunSetting::Scenario => Some("scenario"),
            RunSetting::Hop => Some("hop"),
            RunSetting::Tenant => Some("tenant"),
            RunSetting::DnssecTrustAnchor | RunSetting::Resume => None,
        }
    }

    /// The key where files have one, else the flag (the only way to give it).
    pub fn name(self, naming: Naming) -> &'static str {
        match naming {
            Naming::Flag => self.flag(),
            Naming::Key => self.key().unwrap_or(self.flag()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_worded_as_each_front_end_writes_them() {
        let cases = [
            (
                Field::TlsImplicit.on(),
                "--tls-implicit",
                "tls_implicit = true",
            ),
            (
                Field::StartTls.set_to("require"),
                "--starttls require",
                "starttls = \"require\"",
            ),
            (
                Field::Resolver.set_to("IP"),
                "--resolver IP",
                "resolver = \"IP\"",
            ),
        ];
        for (s, flag, key) in cases {
            assert_eq!(s.word(Naming::Flag).to_string(), flag);
            assert_eq!(s.word(Naming::Key).to_string(), key);
        }
        assert_eq!(Field::IpVersion.mention(Naming::Flag), "-4 or -6");
        assert_eq!(Field::IpVersion.mention(Naming::Key), "ip_version");
        assert_eq!(RunSetting::Tenant.name(Naming::Key), "tenant");
        assert_eq!(RunSetting::Resume.name(Naming::Key), "--resume");
    }

    #[test]
    fn table_tokens_are_worded_for_the_front_end() {
        let text = "raise {setting:stage_timeout}; use {setting:tls_implicit=on} or {setting:starttls=require}; {setting:nope} stays";
        assert_eq!(
            reword(text, Naming::Flag),
            "raise --stage-timeout; use --tls-implicit or --starttls require; {setting:nope} stays"
        );
        assert_eq!(
            reword(text, Naming::Key),
            "raise stage_timeout; use tls_implicit = true or starttls = \"require\"; {setting:nope} stays"
        );
        assert_eq!(unknown_settings(text), ["nope"]);
        assert_eq!(
            reword("no token {setting:from", Naming::Flag),
            "no token {setting:from"
        );
    }
}
