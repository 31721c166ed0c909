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
}
