//! A mailbox as the round trip names it: `imaps://USER@HOST[:PORT]` (TLS from the first byte,
//! port 993) or `imap://USER@HOST[:PORT]` (STARTTLS, port 143; RFC 5092's scheme, the
//! user part percent-encoded or, as people type it, with its own `@`). A password is never
//! part of the address: it comes from a variable, a file or the terminal, as SMTP AUTH's.

use std::fmt;

pub const IMAP_PORT: u16 = 143;
pub const IMAPS_PORT: u16 = 993;

/// How TLS starts on the mailbox connection. There is no plaintext mode: a password or a
/// token is always sent inside TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxSecurity {
    /// `imaps://`: TLS from the first byte (RFC 8314).
    Implicit,
    /// `imap://`: STARTTLS (RFC 3501 6.2.1) before any credential.
    StartTls,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxUrl {
    pub security: MailboxSecurity,
    pub user: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailboxUrlError {
    #[error("expected imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT]")]
    Scheme,
    #[error("no user: write imaps://USER@HOST")]
    NoUser,
    #[error("a password is never part of the address: give it with the password variable, file or prompt")]
    Password,
    #[error("no host")]
    NoHost,
    #[error("port {0:?}: a number 1-65535")]
    Port(String),
    #[error("a path or query is not supported: the round trip looks in INBOX and Junk")]
    Path,
    #[error("the user is not valid percent-encoded UTF-8")]
    Encoding,
}

impl MailboxUrl {
    pub fn parse(text: &str) -> Result<MailboxUrl, MailboxUrlError> {
        let text = text.trim();
        let (security, rest) = if let Some(r) = strip_prefix_ci(text, "imaps://") {
            (MailboxSecurity::Implicit, r)
        } else if let Some(r) = strip_prefix_ci(text, "imap://") {
            (MailboxSecurity::StartTls, r)
        } else {
            return Err(MailboxUrlError::Scheme);
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(MailboxUrlError::Path);
        }
        // The host is after the last '@': `user@contoso.com@outlook.office365.com` works.
        let (user, hostport) = rest.rsplit_once('@').ok_or(MailboxUrlError::NoUser)?;
        if user.contains(':') {
            return Err(MailboxUrlError::Password);
        }
        let user = percent_decode(user)?;
        if user.is_empty() {
            return Err(MailboxUrlError::NoUser);
        }
        let default_port = match security {
            MailboxSecurity::Implicit => IMAPS_PORT,
            MailboxSecurity::StartTls => IMAP_PORT,
        };
        let (host, port) = split_host_port(hostport, default_port)?;
        Ok(MailboxUrl {
            security,
            user,
            host,
            port,
        })
    }
}

impl fmt::Display for MailboxUrl {
    /// The address as written back: no password ever, the user's `@` kept readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            MailboxSecurity::Implicit => "imaps",
            MailboxSecurity::StartTls => "imap",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{scheme}://{}@{host}:{}", self.user, self.port)
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), MailboxUrlError> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or(MailboxUrlError::NoHost)?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(MailboxUrlError::NoHost);
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| MailboxUrlError::Port(p.to_string()))?,
    };
    Ok((host.to_string(), port))
}

fn percent_decode(s: &str) -> Result<String, MailboxUrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(MailboxUrlError::Encoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| MailboxUrlError::Encoding)?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| MailboxUrlError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_people_write_them() {
        let u = MailboxUrl::parse("imaps://user@contoso.test@127.0.0.1:12993").unwrap();
        assert_eq!(u.security, MailboxSecurity::Implicit);
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port),
            ("user@contoso.test", "127.0.0.1", 12993)
        );
        assert_eq!(u.to_string(), "imaps://user@contoso.test@127.0.0.1:12993");
        let u = MailboxUrl::parse("IMAP://probe%40contoso.com@outlook.office365.com").unwrap();
        assert_eq!(u.security, MailboxSecurity::StartTls);
        assert_eq!((u.user.as_str(), u.port), ("probe@contoso.com", 143));
        let u = MailboxUrl::parse("imaps://u@[::1]:993/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.to_string().as_str()),
            ("::1", "imaps://u@[::1]:993")
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, want) in [
            ("https://u@h", MailboxUrlError::Scheme),
            ("imaps://h", MailboxUrlError::NoUser),
            ("imaps://u:secret@h", MailboxUrlError::Password),
            ("imaps://u@", MailboxUrlError::NoHost),
            ("imaps://u@h:0", MailboxUrlError::Port("0".into())),
            ("imaps://u@h/INBOX", MailboxUrlError::Path),
            ("imaps://%zz@h", MailboxUrlError::Encoding),
        ] {
            assert_eq!(MailboxUrl::parse(bad), Err(want), "{bad}");
        }
    }
}
