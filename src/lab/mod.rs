//! The lab: the four delivery scenarios of reference/002 played on loopback, in-process, for
//! `mxtrace demo`, `mxtrace lab serve` and the integration tests (one simulator, not two).
//!
//! - `pki`: a private CA issuing the lab's server (and hybrid-connector client) certificates,
//!   valid, expired or for the wrong name.
//! - `smtp`: policy-driven SMTP servers playing the roles of the scenarios (EOP front end,
//!   on-premises Exchange, third-party Postfix) with the replies those systems really give, the
//!   SMTP-level faults of the runbooks' root-cause table, and the network-level ones
//!   (refused, dropped).
//!
//! Everything binds to 127.0.0.0/8 only.

pub mod pki;
pub mod smtp;
