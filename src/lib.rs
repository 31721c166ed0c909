//! The `mxtrace` command line: clap definitions, their conversion into the engine's
//! `SessionSpec` and jobs, and the output of each command. The engine is the `mxtrace-core`
//! crate (crates/mxtrace-core), which knows nothing of clap; see ARCHITECTURE.md.

// Input from the command line is hostile: outside tests, nothing may panic on it.
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

pub mod cli;
