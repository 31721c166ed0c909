//! mxtrace's ground floor: what every other crate speaks. SMTP on the wire without sockets
//! (line and reply framing with their limits, EHLO capabilities), the session settings
//! (`spec::SessionSpec`, each setting a `Field`), and the result model of every command,
//! serialized to the JSON outside tools read. See ARCHITECTURE.md for the floors above.

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
pub mod exit;
pub mod mailbox;
pub mod model;
pub mod record;
pub mod sasl;
pub mod secret;
pub mod smtp;
pub mod spec;
pub mod text;
