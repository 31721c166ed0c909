//! The connect stage: resolve the host (unless the caller gave addresses), then try each
//! address of the wanted family until one accepts. It has no SMTP reply and records none.

use super::session::ProbeSession;
use super::Family;
use mxtrace_net::conn::{ConnError, SmtpConn, Transport};
use mxtrace_proto::model::{ErrorKind, Stage};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

impl ProbeSession<'_> {
    pub(super) async fn connect(&mut self) -> bool {
        let mut started = Instant::now();
        let Some(candidates) = self.candidates(started).await else {
            return false;
        };
        let mut notes = Vec::new();
        let mut last_err = None;
        let several = candidates.len() > 1;
        for ip in candidates {
            let addr = SocketAddr::new(ip, self.opts.port);
            self.ip = Some(ip);
            // In a sweep: wait for a slot to this destination, off the stage's clock.
            // The last address's slot goes first: it may be the one this address needs.
            self.permit = None;
            let waiting = Instant::now();
            self.permit = match &self.opts.limits {
                Some(l) => Some(l.acquire(ip).await),
                None => None,
            };
            started += waiting.elapsed();
            match connect_one(addr, self.opts.source, self.opts.connect_timeout).await {
                Ok(tcp) => {
                    self.local = tcp.local_addr().ok();
                    let local = self.local.map(|l| format!(" from {l}")).unwrap_or_default();
                    notes.push(format!("connected to {addr}{local}"));
                    self.conn = Some(SmtpConn::new(Transport::Plain(tcp)));
                    let idx = self.log.done(Stage::Connect, started, false);
                    for n in notes {
                        self.log.note(idx, n);
                    }
                    return true;
                }
                Err(e) => {
                    if several {
                        notes.push(format!("{addr}: {}", e.message));
                    }
                    last_err = Some(e);
                }
            }
        }
        let err = last_err.unwrap_or_else(|| ConnError::new(ErrorKind::Unreachable, "no address"));
        let idx = self
            .log
            .error(Stage::Connect, Vec::new(), started, false, err);
        for n in notes {
            self.log.note(idx, n);
        }
        false
    }

    /// The addresses to try, of the wanted family; None when the stage already failed.
    async fn candidates(&mut self, started: Instant) -> Option<Vec<IpAddr>> {
        let addrs = match self.resolve().await {
            Ok(a) => a,
            Err(e) => {
                self.log
                    .error(Stage::Connect, Vec::new(), started, false, e);
                return None;
            }
        };
        let candidates: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|ip| self.family_ok(ip))
            .collect();
        if candidates.is_empty() {
            let fam = match self.opts.family {
                Some(Family::V4) => "IPv4",
                Some(Family::V6) => "IPv6",
                None => "the source address's family",
            };
            let msg = format!("{} has no {fam} address", self.opts.host);
            self.fail_without_reply(Stage::Connect, Vec::new(), ErrorKind::Dns, msg);
            return None;
        }
        Some(candidates)
    }

    async fn resolve(&self) -> Result<Vec<IpAddr>, ConnError> {
        if let Some(addrs) = &self.opts.addrs {
            return Ok(addrs.clone());
        }
        if let Ok(ip) = self.opts.host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let host = self.opts.host.trim_end_matches('.').to_string();
        let lookup = tokio::net::lookup_host((host.clone(), self.opts.port));
        let deadline = Instant::now() + self.opts.connect_timeout;
        match timeout_at(deadline, lookup).await {
            Ok(Ok(addrs)) => Ok(addrs.map(|a| a.ip()).collect()),
            Ok(Err(e)) => Err(ConnError::new(
                ErrorKind::Dns,
                format!("cannot resolve {host}: {e}"),
            )),
            Err(_) => Err(ConnError::new(
                ErrorKind::Dns,
                format!("resolving {host} timed out"),
            )),
        }
    }

    fn family_ok(&self, ip: &IpAddr) -> bool {
        match self.opts.family {
            Some(Family::V4) => ip.is_ipv4(),
            Some(Family::V6) => ip.is_ipv6(),
            None => self.opts.source.is_none_or(|s| s.is_ipv4() == ip.is_ipv4()),
        }
    }
}

/// One TCP connection attempt, from `source` when given, within `timeout`.
async fn connect_one(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, ConnError> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| ConnError::from_io(&e, "creating the socket"))?;
    if let Some(src) = source {
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|e| ConnError::from_io(&e, &format!("binding the source address {src}")))?;
    }
    // Commands are small writes followed by a wait for the reply: Nagle's algorithm would
    // hold each one back for the previous segment's ACK.
    sock.set_nodelay(true)
        .map_err(|e| ConnError::from_io(&e, "setting TCP_NODELAY"))?;
    let deadline = Instant::now() + timeout;
    match timeout_at(deadline, sock.connect(addr)).await {
        Ok(Ok(tcp)) => Ok(tcp),
        Ok(Err(e)) => Err(ConnError::from_io(&e, "connecting")),
        Err(_) => Err(ConnError::new(
            ErrorKind::Timeout,
            format!(
                "no answer to the connection attempt within {} (filtered: a firewall dropping \
                 packets, or the host is down)",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small commands must not wait for Nagle's algorithm.
    #[tokio::test]
    async fn the_socket_has_tcp_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = connect_one(addr, None, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(tcp.nodelay().unwrap());
    }
}
