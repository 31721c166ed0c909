//! mxtrace: an SMTP path tracer that explains every reply in terms of where the message is in
//! its path. The vocabulary is in docs/diagnosis.md, the layout in ARCHITECTURE.md.

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
pub mod oauth;
pub mod posture;
pub mod probe;
pub mod roundtrip;
pub mod run;
pub mod scenario_file;
pub mod sweep;
pub mod trace;
pub mod watch;
