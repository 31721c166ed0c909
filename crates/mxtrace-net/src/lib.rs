//! mxtrace's network floor: the TLS client (configuration, the recording verifier, trust
//! stores, DANE matching), DNS (the path resolver and the DNSSEC-validating one), and the SMTP
//! client connection with its bounded reads and deadlines, and the HTTPS client (`http`) for
//! token endpoints and MTA-STS policies. Over `mxtrace-proto` only.

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

pub mod conn;
pub mod dns;
pub mod http;
pub mod imap;
pub mod tls;
