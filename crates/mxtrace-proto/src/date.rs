//! The RFC 5322 date-time (message Date headers, Exchange-style banners) and RFC 3339 UTC
//! times (`headers` output), through the `time` crate.

use std::time::SystemTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

/// RFC 3339 in UTC, e.g. `2026-11-23T08:54:49Z`, from seconds since the epoch; a time the
/// format cannot hold (before year 0, after 9999) is shown as the epoch.
pub fn rfc3339(unix_secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-23T08:54:49.250Z` (`watch` times its
/// probes to the millisecond); a time before the epoch is shown as the epoch.
pub fn rfc3339_ms(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let whole = rfc3339(secs);
    let stem = whole.strip_suffix('Z').unwrap_or(&whole);
    format!("{stem}.{:03}Z", d.subsec_millis())
}

/// Seconds since the epoch of an RFC 3339 time (certificate dates in the reports).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// RFC 5322 3.3 date-time in UTC, e.g. `Mon, 23 Nov 2026 08:54:49 +0000`.
pub fn rfc5322(t: SystemTime) -> String {
    // Callers pass the clock's now; Rfc2822 refuses only years before 1900 (a broken clock).
    OffsetDateTime::from(t)
        .format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_424_089_250);
        assert_eq!(rfc3339_ms(t), "2026-11-23T08:54:49.250Z");
    }

    #[test]
    fn rfc5322_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_424_089);
        assert_eq!(rfc5322(t), "Mon, 23 Nov 2026 08:54:49 +0000");
        assert_eq!(
            rfc5322(SystemTime::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(1_795_424_089), "2026-11-23T08:54:49Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("2026-11-23T08:54:49Z"), Some(1_795_424_089));
        assert_eq!(parse_rfc3339("not a date"), None);
    }
}
