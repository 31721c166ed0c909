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

pub mod date;
pub mod demo;
pub mod diagnose;
pub mod diff;
pub mod dns;
pub mod exit;
pub mod explain;
pub mod exporter;
pub mod headers;
pub mod job;
pub mod lab;
pub mod model;
pub mod posture;
pub mod probe;
pub mod report;
pub mod run;
pub mod scenario_file;
pub mod secret;
pub mod smtp;
pub mod spec;
pub mod sweep;
pub mod tls;
pub mod trace;
