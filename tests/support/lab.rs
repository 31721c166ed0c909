//! A hermetic lab for the scenario files: the loopback DNS server (`dns.rs`) answering for
//! contoso.com, fabrikam.com, the tenant domain and EOP names, and small SMTP peers on
//! 127.0.N.x that speak STARTTLS with certificates from the test PKI, accept mail for the
//! lab's domains and refuse relay. Everything on 127.0.0.0/8; no name is ever asked of the
//! system resolver (the binary gets `--resolver`). Include with
//! `#[path = "support/dns.rs"] mod dns_support; #[path = "support/lab.rs"] mod lab; mod support;`
#![allow(dead_code)]

use crate::dns_support::TestDns;
use crate::support::bin::{mxtrace, Run};
use crate::support::certs::{CertKind, TestPki};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

/// Host octets of the peers in 127.0.N.0/24.
pub const MAIL: u8 = 2; // mail.contoso.com (on-premises MX, smart host)
pub const FABRIKAM: u8 = 3; // mx.fabrikam.com
pub const EOP_CONTOSO: u8 = 4; // contoso-com.mail.protection.outlook.com
pub const EOP_TENANT: u8 = 5; // contoso-mail-onmicrosoft-com.mail.protection.outlook.com
pub const MAIL2: u8 = 6; // mail2.contoso.com (second MX in some tests)
pub const RELAY: u8 = 9; // relay.contoso.com: no listener (refused)

/// Domains the peers accept mail for; anything else is relay and refused.
const LOCAL: [&str; 3] = [
    "contoso.com",
    "contoso.mail.onmicrosoft.com",
    "fabrikam.com",
];

#[derive(Clone)]
pub struct Peer {
    pub name: String,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse MAIL before STARTTLS (530 5.7.0), as a TLS-only receive connector does.
    pub require_tls: bool,
    /// Accept RCPT for any domain.
    pub open_relay: bool,
    /// Answer every RCPT with this instead.
    pub rcpt_reply: Option<String>,
}

impl Peer {
    /// STARTTLS with a valid certificate for `name`.
    pub fn tls(pki: &TestPki, name: &str) -> Peer {
        Peer {
            name: name.to_string(),
            tls: Some(pki.server_config(&CertKind::Valid(name.to_string()))),
            require_tls: false,
            open_relay: false,
            rcpt_reply: None,
        }
    }
}

pub struct Lab {
    pub net: u8,
    pub port: u16,
    pub dns: TestDns,
    pub pki: TestPki,
    /// DATA commands received by any peer: `run` must never send one.
    pub data_seen: Arc<AtomicUsize>,
    /// Connections accepted, per peer octet order given.
    pub connections: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, net, host))
}

/// The zones: contoso.com's MX is `contoso_mx` (relative names in contoso.com, or absolute
/// with a trailing dot), plus `extra` lines for contoso.com.
pub fn zones(net: u8, contoso_mx: &[&str], extra: &str) -> Vec<String> {
    let zone = |origin: &str, body: String| {
        format!(
            "$ORIGIN {origin}.\n$TTL 60\n\
             @ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n\
             @ IN NS ns.{origin}.\n{body}\n"
        )
    };
    let mx: String = contoso_mx
        .iter()
        .enumerate()
        .map(|(i, m)| format!("@ MX {} {m}\n", (i + 1) * 10))
        .collect();
    vec![
        zone(
            "contoso.com",
            format!(
                "{mx}mail A 127.0.{net}.{MAIL}\nmail2 A 127.0.{net}.{MAIL2}\n\
                 relay A 127.0.{net}.{RELAY}\n{extra}"
            ),
        ),
        zone(
            "fabrikam.com",
            format!("@ MX 10 mx\nmx A 127.0.{net}.{FABRIKAM}"),
        ),
        zone(
            "mail.protection.outlook.com",
            format!(
                "contoso-com A 127.0.{net}.{EOP_CONTOSO}\n\
                 contoso-mail-onmicrosoft-com A 127.0.{net}.{EOP_TENANT}"
            ),
        ),
        zone(
            "contoso.mail.onmicrosoft.com",
            "@ MX 0 contoso-mail-onmicrosoft-com.mail.protection.outlook.com.".to_string(),
        ),
    ]
}

impl Lab {
    /// Starts the DNS server and one peer per (octet, behaviour), all on one port.
    pub async fn start(net: u8, zones: Vec<String>, pki: TestPki, peers: Vec<(u8, Peer)>) -> Lab {
        let refs: Vec<&str> = zones.iter().map(String::as_str).collect();
        let dns = TestDns::start(&refs, &[]).await;
        let data_seen = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        'attempt: for _ in 0..50 {
            let Some((h0, _)) = peers.first() else {
                panic!("a lab needs a peer")
            };
            let first = TcpListener::bind(SocketAddr::new(ip(net, *h0), 0))
                .await
                .unwrap();
            let port = first.local_addr().unwrap().port();
            let mut listeners = vec![first];
            for (h, _) in &peers[1..] {
                match TcpListener::bind(SocketAddr::new(ip(net, *h), port)).await {
                    Ok(l) => listeners.push(l),
                    Err(_) => continue 'attempt,
                }
            }
            let tasks = listeners
                .into_iter()
                .zip(peers.iter().cloned())
                .map(|(l, (_, p))| {
                    tokio::spawn(serve(l, p, data_seen.clone(), connections.clone()))
                })
                .collect();
            return Lab {
                net,
                port,
                dns,
                pki,
                data_seen,
                connections,
                tasks,
            };
        }
        panic!("no common free port");
    }

    /// The overrides that point a scenario file at this lab.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--resolver".into(),
            self.dns.resolver(),
            "--port".into(),
            self.port.to_string(),
            "--tls-ca-file".into(),
            self.pki.ca_file().display().to_string(),
            "--dns-timeout".into(),
            "2s".into(),
            "--connect-timeout".into(),
            "3s".into(),
            "--stage-timeout".into(),
            "5s".into(),
            "--ehlo".into(),
            "probe.fabrikam.test".into(),
        ]
    }

    /// `mxtrace run FILE <lab overrides> EXTRA`, off the runtime's threads.
    pub async fn run(&self, file: &Path, extra: &[&str]) -> Run {
        let mut args: Vec<String> = vec!["run".into(), file.display().to_string()];
        args.extend(self.args());
        args.extend(extra.iter().map(|s| s.to_string()));
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            mxtrace(&refs, &[])
        })
        .await
        .unwrap()
    }
}

async fn serve(
    listener: TcpListener,
    peer: Peer,
    data_seen: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        connections.fetch_add(1, Ordering::SeqCst);
        let (peer, data_seen) = (peer.clone(), data_seen.clone());
        tokio::spawn(async move {
            let _ = timeout(Duration::from_secs(20), session(stream, peer, data_seen)).await;
        });
    }
}

enum Next {
    Done,
    StartTls,
}

async fn session(
    stream: TcpStream,
    peer: Peer,
    data_seen: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut s = BufReader::new(stream);
    s.write_all(format!("220 {} ESMTP lab\r\n", peer.name).as_bytes())
        .await?;
    if let Next::Done = dialogue(&mut s, &peer, false, &data_seen).await? {
        return Ok(());
    }
    let Some(cfg) = peer.tls.clone() else {
        return Ok(());
    };
    let tls = TlsAcceptor::from(cfg).accept(s.into_inner()).await?;
    let mut t = BufReader::new(tls);
    dialogue(&mut t, &peer, true, &data_seen).await?;
    Ok(())
}

async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    peer: &Peer,
    in_tls: bool,
    data_seen: &AtomicUsize,
) -> std::io::Result<Next> {
    let mut line = String::new();
    loop {
        line.clear();
        if s.read_line(&mut line).await? == 0 {
            return Ok(Next::Done);
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        let reply = if cmd.starts_with("EHLO") {
            let tls = if peer.tls.is_some() && !in_tls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            format!(
                "250-{} Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n{tls}250 8BITMIME\r\n",
                peer.name
            )
        } else if cmd == "STARTTLS" && peer.tls.is_some() && !in_tls {
            s.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
            s.flush().await?;
            return Ok(Next::StartTls);
        } else if cmd.starts_with("MAIL") {
            if peer.require_tls && !in_tls {
                "530 5.7.0 Must issue a STARTTLS command first\r\n".into()
            } else {
                "250 2.1.0 Sender OK\r\n".into()
            }
        } else if cmd.starts_with("RCPT") {
            let domain = cmd
                .rsplit_once('@')
                .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
                .unwrap_or_default();
            if let Some(r) = &peer.rcpt_reply {
                format!("{r}\r\n")
            } else if peer.require_tls && !in_tls {
                "530 5.7.0 Must issue a STARTTLS command first\r\n".into()
            } else if peer.open_relay || LOCAL.contains(&domain.as_str()) {
                "250 2.1.5 Recipient OK\r\n".into()
            } else {
                "554 5.7.1 <relay test>: Relay access denied\r\n".into()
            }
        } else if cmd.starts_with("DATA") {
            data_seen.fetch_add(1, Ordering::SeqCst);
            "554 5.5.1 No DATA in this lab\r\n".into()
        } else if cmd.starts_with("RSET") {
            "250 2.0.0 OK\r\n".into()
        } else if cmd.starts_with("QUIT") {
            s.write_all(b"221 2.0.0 Bye\r\n").await?;
            s.flush().await?;
            return Ok(Next::Done);
        } else {
            "502 5.5.2 Command not implemented\r\n".into()
        };
        s.write_all(reply.as_bytes()).await?;
        s.flush().await?;
    }
}

/// Replaces what changes from run to run in human output: the lab's port, times in ms, the
/// days a certificate has left.
pub fn redact(text: &str, port: u16) -> String {
    let text = text.replace(&format!(":{port}"), ":PORT");
    let mut out = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let mut shown = Vec::new();
        for (i, w) in words.iter().enumerate() {
            let next = words.get(i + 1).copied().unwrap_or("");
            let is_num = !w.is_empty() && w.parse::<f64>().is_ok();
            if is_num && (next.starts_with("ms") || next == "days") {
                shown.push("#");
            } else {
                shown.push(w);
            }
        }
        out.push_str(&shown.join(" "));
        out.push('\n');
    }
    out
}
