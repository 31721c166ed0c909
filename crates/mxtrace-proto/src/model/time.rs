//! Times in the model: every `*_ms` field holds whole microseconds, written as milliseconds.
//! A clock's reading is cut to the microsecond once, as an integer, and divided by 1000 once:
//! the closest double to a three-decimal number prints back as that number (JSON `6.1`,
//! `0.123`), and `micros` recovers the integer exactly, so renderers print seconds from it
//! without floating-point noise (metrics `0.0061`, not `0.0060999999999999995`).

use std::time::Duration;

/// Whole microseconds as the model's milliseconds.
pub fn ms_from_micros(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A duration cut to the microsecond, as the model's milliseconds.
pub fn ms(d: Duration) -> f64 {
    ms_from_micros(micros_of(d))
}

/// A duration in whole microseconds (saturating: 584,000 years is plenty).
pub fn micros_of(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The whole microseconds a model time holds (negative or NaN read as 0).
pub fn micros(ms: f64) -> u64 {
    let us = (ms * 1000.0).round();
    if us.is_finite() && us > 0.0 {
        us as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_print_exactly_and_come_back() {
        for us in [0u64, 1, 999, 6100, 6123, 61_000, 123_456_789, 3_600_000_000] {
            let m = ms_from_micros(us);
            assert_eq!(micros(m), us);
            let json = serde_json::to_string(&m).unwrap();
            let want = format!("{}.{:03}", us / 1000, us % 1000);
            let want = want.trim_end_matches('0').trim_end_matches('.');
            assert_eq!(json.trim_end_matches(".0"), want, "{us}");
        }
        assert_eq!(ms(Duration::from_nanos(6_100_999)), 6.1);
        assert_eq!(micros(-1.0), 0);
        assert_eq!(micros(f64::NAN), 0);
    }
}
