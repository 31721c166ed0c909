//! The RFC 5322 date-time (message Date headers, Exchange-style banners), through the `time`
//! crate.

use std::time::SystemTime;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

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
}
