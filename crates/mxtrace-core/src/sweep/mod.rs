//! `sweep`: many probes and traces at once, for fleets. The engine part: target lines parsed
//! and normalised (`target`), collapsed when repeated, split into shards, skipped when a
//! previous partial run already has them, run with bounded concurrency under per-destination
//! limits (`limits`), and handed back one result at a time as each completes (`runner`).
//! No clap here: the command line (src/cli/sweep.rs) fills `SweepOptions` and writes JSONL.
//!
//! Memory does not grow with the number of targets: the input is read as it goes (a bounded
//! channel of lines), results are written as they complete, and the only per-target state is
//! one 64-bit hash per distinct target seen (dedup) and per target in the `--resume` file.

mod runner;
pub mod target;

pub use mxtrace_proto::model::sweep::{Record, RecordBody, RecordError, RecordErrorKind};
pub use runner::{resume_keys, sweep, Summary, SweepError};
pub use target::{parse_line, stable_hash, LineError};

use mxtrace_knowledge::Scenario;
use mxtrace_proto::spec::SessionSpec;
use std::collections::HashSet;

/// Everything a sweep runs with.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The session settings of every target (the command line's, or a module's).
    pub spec: SessionSpec,
    /// For the explanations of traced domains, as `trace --scenario/--tenant`.
    pub scenario: Option<Scenario>,
    pub tenant: Option<String>,
    /// An exporter module instead (`--module`): its settings, path context and
    /// `allowed_targets` (a target outside it is an input error). `spec` is then its spec.
    pub module: Option<std::sync::Arc<crate::exporter::config::Module>>,
    /// Targets in flight at once.
    pub concurrency: usize,
    /// Sessions at once to one IP address, and to one /24 (IPv4) or /48 (IPv6).
    pub per_ip: usize,
    pub per_subnet: usize,
    pub shard: Option<Shard>,
    /// `stable_hash` of the keys already done (`--resume`).
    pub done: HashSet<u64>,
}

/// Targets in flight by default: enough to hide network latency, few enough for a laptop's
/// file descriptors and a home router's connection table.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// Sessions at once to one IP, and to one network, by default: below the connection limits
/// of large receivers (Exchange Online throttles bursts from one client with 421 4.7.x).
pub const DEFAULT_PER_IP: usize = 2;
pub const DEFAULT_PER_SUBNET: usize = 8;

/// `--shard I/N`: this job runs the targets whose key hashes to I (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

/// A `--shard` value that is not `I/N` with 1 <= I <= N.
#[derive(Debug, thiserror::Error)]
#[error("expected I/N with 1 <= I <= N (e.g. 2/8), got {0:?}")]
pub struct ShardError(String);

impl std::str::FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count).ok_or_else(bad)
    }
}

impl Shard {
    /// Shard `index` (1-based) of `count`; None unless 1 <= index <= count.
    pub fn new(index: u64, count: u64) -> Option<Shard> {
        (index >= 1 && index <= count).then_some(Shard { index, count })
    }

    /// This shard's number, 1-based, and the number of shards.
    pub fn index_of(&self) -> (u64, u64) {
        (self.index, self.count)
    }

    /// Whether this shard runs the target with this key.
    pub fn owns(&self, key: &str) -> bool {
        stable_hash(key) % self.count == self.index - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_every_key_exactly_once() {
        let shards: Vec<Shard> = (1..=3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for n in 0..300 {
            let key = format!("probe 127.0.0.{n}:25");
            assert_eq!(shards.iter().filter(|s| s.owns(&key)).count(), 1, "{key}");
        }
        for bad in ["0/3", "4/3", "1/0", "x/2", "2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
