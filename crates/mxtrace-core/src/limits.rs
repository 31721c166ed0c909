//! Politeness per destination: at most N sessions at once to one IP address and to one
//! network (/24 for IPv4, /48 for IPv6), across the whole sweep. Exchange Online answers a
//! burst from one client with 421 4.7.x throttling (Microsoft Learn, "Exchange Online
//! limits": connection limits), as do most large receivers.
//!
//! The sweep makes one `Limits` and hands it to every job in `ProbeOptions::limits`; the
//! probe's connect stage asks it for a permit once the address is known (a trace learns its
//! addresses from DNS, and passes its options on to each probe), and holds the permit until
//! the session ends. Without limits in the options, nothing waits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// The counters: only destinations with a session open have an entry, so memory follows the
/// concurrency, not the number of targets.
#[derive(Debug)]
pub struct Limits {
    per_ip: usize,
    per_net: usize,
    open: Mutex<HashMap<Dest, usize>>,
    freed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dest {
    Ip(IpAddr),
    Net(IpAddr),
}

fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 80) - 1)).into()),
    }
}

impl Limits {
    /// Limits of at least one session each.
    pub fn new(per_ip: usize, per_net: usize) -> Arc<Limits> {
        Arc::new(Limits {
            per_ip: per_ip.max(1),
            per_net: per_net.max(1),
            open: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        })
    }

    fn try_take(&self, ip: IpAddr) -> bool {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (a, b) = (Dest::Ip(ip), Dest::Net(network(ip)));
        let at = |d| open.get(&d).copied().unwrap_or(0);
        if at(a) >= self.per_ip || at(b) >= self.per_net {
            return false;
        }
        *open.entry(a).or_insert(0) += 1;
        *open.entry(b).or_insert(0) += 1;
        true
    }

    fn give_back(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        for d in [Dest::Ip(ip), Dest::Net(network(ip))] {
            if let Some(n) = open.get_mut(&d) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&d);
                }
            }
        }
        drop(open);
        self.freed.notify_waiters();
    }

    /// Waits for a session slot to `ip`. Bounded: every holder is a session with deadlines.
    pub async fn acquire(self: &Arc<Self>, ip: IpAddr) -> Permit {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release in between is not missed.
            freed.as_mut().enable();
            if self.try_take(ip) {
                return Permit {
                    limits: self.clone(),
                    ip,
                };
            }
            freed.await;
        }
    }
}

/// A session slot to one address; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits.give_back(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_session_to_the_same_network_waits_for_the_first() {
        let limits = Limits::new(2, 1);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let first = limits.acquire(a).await;
        // Another /24 is free; the same /24 is not.
        drop(limits.acquire(other).await);
        let waiting = tokio::time::timeout(Duration::from_millis(50), limits.acquire(b)).await;
        assert!(waiting.is_err(), "the /24 limit let a second session in");
        drop(first);
        let _second = limits.acquire(b).await;
        assert_eq!(network(b), network(a));
    }

    #[test]
    fn entries_go_when_sessions_end() {
        let limits = Limits::new(1, 1);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(limits.try_take(ip));
        assert!(!limits.try_take("2001:db8::2".parse().unwrap()), "same /48");
        limits.give_back(ip);
        assert!(limits.open.lock().unwrap().is_empty());
    }
}
