//! One-time costs paid before any stage's clock starts.
//!
//! AWS-LC seeds its random generator at the first random number a process draws, and its
//! default build adds CPU-jitter entropy to the OS seed: 35-50 ms of CPU on a 2-core machine
//! (perf: `jent_*`, `tree_jitter_initialize_once`). rustls draws its first random number for
//! the ClientHello, so without this the first `tls_handshake` of a process measured mxtrace,
//! not the server. Of the two ways out that aws-lc-rs documents ("entropy configuration" in
//! its README: pay it early, or build with `AWS_LC_SYS_NO_JITTER_ENTROPY`), this pays it
//! early: the build keeps AWS-LC's default seeding (OS entropy plus jitter, no weaker), no
//! environment variable is needed at build time, and the cost is paid once per process,
//! before the first probe starts timing.

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
