//! Exit codes: CI and monitoring depend on them (README "Exit codes").

use std::process::ExitCode;

/// The check passed.
pub const PASS: u8 = 0;
/// The check ran and the target failed it.
pub const FAIL: u8 = 1;
/// Usage or input error.
pub const USAGE: u8 = 2;
/// Internal error.
pub const INTERNAL: u8 = 3;

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
