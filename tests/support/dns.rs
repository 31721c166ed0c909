//! The tests' DNS server: a thin wrapper over the lab's (`mxtrace_lab::dns`, one simulator for
//! the product and the tests) on 127.0.0.1, keeping the API the test files use. Self-contained
//! so a test file can include it with `#[path]`.

#![allow(dead_code)]

use mxtrace_lab::dns::{DnsServer, SilentDns as LabSilentDns};
use std::net::SocketAddr;

const LOCAL: &str = "127.0.0.1:0";

/// A running test DNS server; stops when dropped.
pub struct TestDns {
    pub addr: SocketAddr,
    _server: DnsServer,
}

impl TestDns {
    /// Serves `zones` (zone-file text, each with `$ORIGIN` and an SOA); queries for a name in
    /// `servfail` (any type) get SERVFAIL.
    pub async fn start(zones: &[&str], servfail: &[&str]) -> TestDns {
        let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
        let servfail: Vec<String> = servfail.iter().map(|n| n.to_string()).collect();
        let server = DnsServer::start(LOCAL.parse().unwrap(), &zones, &servfail)
            .await
            .unwrap_or_else(|e| panic!("test DNS server: {e}"));
        TestDns {
            addr: server.addr(),
            _server: server,
        }
    }

    /// `--resolver` value for this server.
    pub fn resolver(&self) -> String {
        self.addr.to_string()
    }
}

/// A "DNS server" that never answers (for timeouts). Kept open until dropped.
pub struct SilentDns {
    pub addr: SocketAddr,
    _inner: LabSilentDns,
}

impl SilentDns {
    pub async fn start() -> SilentDns {
        let inner = LabSilentDns::start(LOCAL.parse().unwrap())
            .await
            .unwrap_or_else(|e| panic!("silent DNS server: {e}"));
        SilentDns {
            addr: inner.addr(),
            _inner: inner,
        }
    }

    pub fn resolver(&self) -> String {
        self.addr.to_string()
    }
}
