//! The lab: the four delivery scenarios (README "Scenarios") played on loopback, in-process, for
//! `mxtrace demo`, `mxtrace lab serve` and the integration tests (one simulator, not two).
//!
//! - `pki`: a private CA issuing the lab's server (and hybrid-connector client) certificates,
//!   valid, expired or for the wrong name.
//! - `smtp`: policy-driven SMTP servers playing the roles of the scenarios (EOP front end,
//!   on-premises Exchange, third-party Postfix) with the replies those systems really give, the
//!   SMTP-level faults of the runbooks' root-cause table, and the network-level ones
//!   (refused, dropped).
//! - `dns`: the DNS server for the lab's zones (and the tests').
//! - `topology`: the lab itself: which endpoint plays which role at which address, the zones,
//!   and the faults of the runbooks with where they apply and what mxtrace should report.
//!
//! Everything binds to 127.0.0.0/8 only.

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

pub mod dns;
pub mod pki;
pub mod smtp;
pub mod topology;

pub use topology::{
    Endpoint, FaultCase, FaultSpec, Lab, LabFault, LabInfo, LabOptions, DEFAULT_BASE, FAULTS,
};

use std::io;
use std::net::IpAddr;

/// Errors unless `ip` is in 127.0.0.0/8: the lab never listens anywhere else.
pub fn check_loopback(ip: IpAddr) -> io::Result<()> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[0] == 127 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the lab only uses 127.0.0.0/8, not {ip}"),
        )),
    }
}
