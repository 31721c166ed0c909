//! One line of a target list: `host[:port]` (probed), `domain` (traced), or either with an
//! explicit `probe ` / `trace ` in front. Blank lines and `#` comments are skipped.

use mxtrace_proto::spec::{self, TargetError};
use std::net::IpAddr;

/// What a line asks for, normalised (lower case, no trailing dot, the port filled in), so
/// that the same target written two ways is one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepTarget {
    Probe { host: String, port: u16 },
    Trace { domain: String },
}

/// Why a line is not a target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("a target line is at most {max} bytes")]
    TooLong { max: usize },
    #[error("a target line must be UTF-8 text")]
    NotText,
}

/// The longest line accepted: a host name is at most 253 bytes, the rest is slack.
pub const MAX_LINE: usize = 1024;

impl SweepTarget {
    /// Parses one line; None for a blank line or a comment. `default_port` is the session's
    /// (25, or 465 with implicit TLS).
    pub fn parse(line: &str, default_port: u16) -> Option<Result<SweepTarget, LineError>> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        Some(Self::parse_target(line, default_port))
    }

    fn parse_target(line: &str, default_port: u16) -> Result<SweepTarget, LineError> {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match word {
            "probe" if !rest.is_empty() => Self::probe(rest, default_port),
            "trace" if !rest.is_empty() => Ok(Self::trace(rest)?),
            _ => {
                // Port 0 is never a real port: it marks "no port written".
                let (host, port) = spec::parse_target(line, 0)?;
                if port != 0 || host.parse::<IpAddr>().is_ok() {
                    Self::probe(line, default_port)
                } else {
                    Ok(Self::trace(line)?)
                }
            }
        }
    }

    fn probe(s: &str, default_port: u16) -> Result<SweepTarget, LineError> {
        let (host, port) = spec::parse_target(s, default_port)?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        Ok(SweepTarget::Probe { host, port })
    }

    fn trace(s: &str) -> Result<SweepTarget, TargetError> {
        let domain = spec::check_domain(s)?.to_ascii_lowercase();
        Ok(SweepTarget::Trace { domain })
    }

    /// The target as `probe` or `trace` takes it: `host:port`, `[v6]:port` or `domain`.
    pub fn target_text(&self) -> String {
        match self {
            SweepTarget::Probe { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            SweepTarget::Probe { host, port } => format!("{host}:{port}"),
            SweepTarget::Trace { domain } => domain.clone(),
        }
    }

    /// The normalised form: the `input` of its JSONL line, the key of dedup, shards and
    /// `--resume`.
    pub fn key(&self) -> String {
        let verb = match self {
            SweepTarget::Probe { .. } => "probe",
            SweepTarget::Trace { .. } => "trace",
        };
        format!("{verb} {}", self.target_text())
    }
}

/// FNV-1a, 64 bits: stable across builds, machines and Rust versions (std's hasher is not
/// promised to be), which `--shard` needs so that n machines agree on the split.
pub fn stable_hash(s: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    s.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(line: &str) -> String {
        SweepTarget::parse(line, 25).unwrap().unwrap().key()
    }

    #[test]
    fn lines_become_probes_or_traces() {
        assert_eq!(key("MX1.Contoso.COM.:2525"), "probe mx1.contoso.com:2525");
        assert_eq!(key("192.0.2.1"), "probe 192.0.2.1:25");
        assert_eq!(key("[2001:db8::1]:587"), "probe [2001:db8::1]:587");
        assert_eq!(key("Contoso.com."), "trace contoso.com");
        assert_eq!(key("  probe mx.contoso.com "), "probe mx.contoso.com:25");
        assert_eq!(key("trace contoso.com"), "trace contoso.com");
        assert!(SweepTarget::parse("# comment", 25).is_none());
        assert!(SweepTarget::parse("   ", 25).is_none());
        assert!(SweepTarget::parse("not a host!", 25).unwrap().is_err());
        assert!(SweepTarget::parse("mx:0", 25).unwrap().is_err());
    }

    #[test]
    fn the_hash_is_fnv1a() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
