//! Tag=value records (RFC 6376 3.2), the syntax of DMARC, DKIM keys, MTA-STS and TLS-RPT TXT
//! records.

/// The first malformed tag of a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    #[error("{0:?} is not a tag=value pair")]
    NotAPair(String),
    #[error("{0:?} is not a tag name")]
    BadName(String),
}

/// A tag=value list (RFC 6376 3.2, used by DMARC, DKIM keys, MTA-STS and TLS-RPT records):
/// names lower-cased, values trimmed; an error names the first malformed tag.
pub fn tag_list(record: &str) -> Result<Vec<(String, String)>, TagError> {
    const MAX_TAGS: usize = 64;
    let mut out = Vec::new();
    for part in record.split(';').take(MAX_TAGS) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(TagError::NotAPair(part.to_string()));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(TagError::BadName(name.to_string()));
        }
        out.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(out)
}

/// The value of tag `name` in a parsed list.
pub fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists_and_versions() {
        let t = tag_list("v=DMARC1; p=reject ; rua=mailto:a@b.c;").unwrap();
        assert_eq!(tag(&t, "p"), Some("reject"));
        assert_eq!(tag(&t, "rua"), Some("mailto:a@b.c"));
        assert!(tag_list("v=DMARC1; p reject").is_err());
    }
}
