//! `sweep --format human`: one readable line per target, written as each completes.
//!
//! `PASS  probe 127.0.0.1:25  6.1 ms  <the verdict's summary>`; a failure whose summary does
//! not name its category adds it in brackets; a line that could not run says why (`INVALID`).

use crate::style::{guard, pass_fail, Style};
use mxtrace_proto::model::JobReport;

/// A finished target's line (no line break).
pub fn render_line(input: &str, report: &JobReport, style: Style) -> String {
    let passed = report.passed();
    let mut line = format!(
        "{}  {input}  {}  {}",
        pass_fail(passed, style),
        duration(report.elapsed_ms()),
        report.summary()
    );
    let category = report.failure_category();
    if !passed && !report.summary().contains(category) {
        line.push_str(&format!(" [{category}]"));
    }
    guard(line, style)
}

/// A target that did not run: a line that is not a target, or settings that do not fit it.
pub fn render_error_line(input: &str, kind: &str, message: &str, style: Style) -> String {
    let word = style.paint("1;33", "INVALID");
    guard(format!("{word}  {input}  {kind}: {message}"), style)
}

/// Milliseconds under 10 s with one decimal, seconds with one above.
pub fn duration(ms: f64) -> String {
    if ms < 10_000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_in_milliseconds_then_seconds() {
        assert_eq!(super::duration(6.1), "6.1 ms");
        assert_eq!(super::duration(9_999.94), "9999.9 ms");
        assert_eq!(super::duration(12_345.0), "12.3 s");
    }
}
