//! mxtrace: an SMTP path tracer that explains every reply in terms of where the message is in
//! its path. See README.md for the vocabulary and the layout.

// Input from the network, files and the command line is hostile: outside tests, nothing may
// panic on it. Enforced here rather than by grep.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::panic
    )
)]

pub mod diff;
pub mod explain;
pub mod exporter;
pub mod fleet;
pub mod headers;
pub mod job;
pub mod limits;
pub mod mta_sts;
pub mod posture;
pub mod probe;
pub mod run;
pub mod scenario_file;
pub mod sweep;
pub mod trace;
