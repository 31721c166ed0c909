//! mxtrace: an SMTP path tracer that explains every reply in terms of where the message is in
//! its path. See DESIGN.md for the vocabulary and README.md for the layout.

pub mod cli;
pub mod diagnose;
pub mod dns;
pub mod exit;
pub mod explain;
pub mod model;
pub mod probe;
pub mod report;
pub mod secret;
pub mod smtp;
pub mod tls;
pub mod trace;
