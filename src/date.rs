//! Calendar dates in UTC without a date crate: the civil date of a time (for certificates the
//! lab issues) and the RFC 5322 date-time (message Date headers, Exchange-style banners).

use std::time::SystemTime;

/// Year, month (1-12) and day (1-31) in UTC, and the seconds into that day.
pub fn civil(t: SystemTime) -> (i64, u8, u8, i64) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8, day as u8, secs.rem_euclid(86_400))
}

/// RFC 5322 3.3 date-time in UTC, e.g. `Mon, 23 Nov 2026 08:54:49 +0000`.
pub fn rfc5322(t: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, rem) = civil(t);
    let days = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 / 86_400)
        .unwrap_or(0);
    let wd = WEEKDAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Thu");
    let mon = MONTHS
        .get(usize::from(month.saturating_sub(1)))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{wd}, {day:02} {mon} {year} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
        assert_eq!(civil(leap), (2000, 2, 29, 0));
    }
}
