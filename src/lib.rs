//! mxtrace: an SMTP path tracer that explains every reply in terms of where the message is in
//! its path. See README.md for the vocabulary and the layout.

pub mod cli;
pub mod diagnose;
pub mod exit;
pub mod explain;
pub mod lab;
pub mod model;
pub mod probe;
pub mod report;
pub mod secret;
pub mod smtp;
pub mod tls;
