//! mxtrace: an SMTP path tracer that explains every reply in terms of where the message is in
//! its path. See DESIGN.md for the vocabulary and README.md for the layout.

pub mod diagnose;
pub mod explain;
pub mod model;
pub mod smtp;
