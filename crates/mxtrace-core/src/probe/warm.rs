//! One-time costs paid before any stage's clock starts.
//!
//! AWS-LC seeds its random generator at the first random number a process draws; rustls draws
//! it for the ClientHello, inside the first `tls_handshake`. The repository's build removes the
//! large part: `.cargo/config.toml` sets `AWS_LC_SYS_NO_JITTER_ENTROPY`, so the seed comes
//! from getrandom(2) alone, not from 35-50 ms of CPU-jitter collection (aws-lc-rs's "Entropy
//! Configuration"). This warm-up stays for what is left (microseconds), and for builds that
//! do not read that file (`cargo install mxtrace` from a registry): there it keeps the jitter
//! cost out of the stage timings, though not out of the process's run time.

use std::sync::OnceLock;
use std::time::SystemTime;

static WARMED_AT: OnceLock<SystemTime> = OnceLock::new();

/// Initialises AWS-LC's random generator (once per process) and returns when that finished.
/// A failure is left for the handshake to report: it draws from the same generator.
pub fn warm_up() -> SystemTime {
    *WARMED_AT.get_or_init(|| {
        use aws_lc_rs::rand::SecureRandom;
        let mut byte = [0u8; 1];
        let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut byte);
        SystemTime::now()
    })
}

/// When the warm-up finished, if it has run.
pub fn warmed_at() -> Option<SystemTime> {
    WARMED_AT.get().copied()
}
