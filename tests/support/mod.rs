//! Hermetic test fixtures shared by the integration tests (`mod support;`): a scripted SMTP
//! server and a throw-away PKI. Everything listens on 127.0.0.1 only.
#![allow(dead_code, unused_imports)]

pub mod certs;
pub mod scripted;

pub use certs::{CertKind, TestPki, WRONG_NAME};
pub use scripted::{
    accept_envelope_then_quit, blackhole, ehlo_reply, esmtp_greeting, expect, line, multiline,
    quit, refused_addr, send, starttls_dialogue, Blackhole, ScriptedPeer, ScriptedServer,
    ServerLog, Step,
};
pub mod bin;
pub mod imap;
pub mod oauth;
pub mod peers;
pub mod postfix;
pub mod session;
