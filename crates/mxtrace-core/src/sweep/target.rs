//! One line of a target list: a target as `job::Target` reads it (`host[:port]` probed,
//! `domain` traced, either with `probe ` / `trace ` in front). Blank lines and `#` comments
//! are skipped.

use crate::job::Target;
use mxtrace_proto::spec::TargetError;

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

/// Parses one line; None for a blank line or a comment. `default_port` is the session's
/// (25, or 465 with implicit TLS).
pub fn parse_line(line: &str, default_port: u16) -> Option<Result<Target, LineError>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(
        Target::parse(line, default_port)
            .map(Target::normalized)
            .map_err(LineError::from),
    )
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

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        assert!(parse_line("# comment", 25).is_none());
        assert!(parse_line("   ", 25).is_none());
        assert!(parse_line("not a host!", 25).unwrap().is_err());
        let t = parse_line(" mx.contoso.test:25\r", 25).unwrap().unwrap();
        assert_eq!(t.key(), "probe mx.contoso.test:25");
    }

    #[test]
    fn the_hash_is_fnv1a() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
