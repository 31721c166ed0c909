//! A hermetic lab for the scenario files, built from the product lab (`mxtrace_lab`, one
//! simulator for the product and the tests): its DNS server (through `dns.rs`) answering for
//! contoso.com, fabrikam.com, the tenant domain and EOP names, and its SMTP role servers
//! (`mxtrace_lab::smtp::RoleServer`: EOP front end, on-premises Exchange, third-party Postfix,
//! with the replies those systems give) on 127.0.N.x, with certificates from the lab CA
//! (`mxtrace_lab::pki::LabPki`, its PEM written to a temp file for `--tls-ca-file`).
//! Everything on 127.0.0.0/8; no name is ever asked of the system resolver (the binary gets
//! `--resolver`). Include with
//! `#[path = "support/dns.rs"] mod dns_support; #[path = "support/lab.rs"] mod lab; mod support;`
#![allow(dead_code)]

use crate::dns_support::TestDns;
use crate::support::bin::{mxtrace, Run};
use mxtrace_lab::pki::{CertValidity, LabPki};
use mxtrace_lab::smtp::{Role, RoleConfig, RoleServer, RunningServer, SessionRecord};
use mxtrace_lab::topology::EOP_FRONT_END;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Host octets of the peers in 127.0.N.0/24.
pub const MAIL: u8 = 2; // mail.contoso.com (on-premises MX, smart host)
pub const FABRIKAM: u8 = 3; // mx.fabrikam.com
pub const EOP_CONTOSO: u8 = 4; // contoso-com.mail.protection.outlook.com
pub const EOP_TENANT: u8 = 5; // contoso-mail-onmicrosoft-com.mail.protection.outlook.com
pub const MAIL2: u8 = 6; // mail2.contoso.com (second MX in some tests)
pub const RELAY: u8 = 9; // relay.contoso.com: no listener (refused)

/// The tenant's routing domain (scenario B hop 2).
pub const TENANT_DOMAIN: &str = "contoso.mail.onmicrosoft.com";

/// A temp directory removed on drop: the CA file, scenario file copies, client identities,
/// JUnit reports.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mxtrace-run-lab-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `path()/name` and returns the path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A role server's config before it has an address (`Lab::start` gives it one).
fn config(role: Role, hostname: &str, domains: &[&str]) -> RoleConfig {
    let mut c = RoleConfig::new(role, SocketAddr::from(([127, 0, 0, 1], 0)), hostname);
    c.accepted_domains = domains.iter().map(|d| d.to_string()).collect();
    c
}

/// On-premises Exchange `name` (mail.contoso.com), accepting contoso.com, STARTTLS with a valid
/// certificate for `name` (optional client certificates, as a receive connector for Office 365
/// asks for). Anything else is relay, refused (550 5.7.54).
pub fn on_prem(pki: &LabPki, name: &str) -> RoleConfig {
    let mut c = config(Role::OnPremExchange, name, &["contoso.com"]);
    c.tls = Some(
        pki.server_config_with_client_auth(&[name], CertValidity::Valid)
            .unwrap(),
    );
    c
}

/// An EOP front end serving `mx` (an `*.mail.protection.outlook.com` name): the banner names
/// the front end, the certificate is EOP's wildcard; accepts contoso.com and the tenant's
/// routing domain; asks for an optional client certificate (an inbound connector attributing
/// by certificate).
pub fn eop(pki: &LabPki, mx: &str) -> RoleConfig {
    assert!(mx.ends_with(".mail.protection.outlook.com"), "{mx}");
    let mut c = config(
        Role::EopFrontEnd,
        EOP_FRONT_END,
        &["contoso.com", TENANT_DOMAIN],
    );
    c.tls = Some(
        pki.server_config_with_client_auth(
            &[
                "*.mail.protection.outlook.com",
                "mail.protection.outlook.com",
            ],
            CertValidity::Valid,
        )
        .unwrap(),
    );
    c
}

/// The third-party Postfix MX `name` (mx.fabrikam.com), accepting fabrikam.com, STARTTLS with a
/// valid certificate for `name`.
pub fn postfix(pki: &LabPki, name: &str) -> RoleConfig {
    let mut c = config(Role::ThirdPartyPostfix, name, &["fabrikam.com"]);
    c.tls = Some(pki.server_config(&[name], CertValidity::Valid).unwrap());
    c
}

pub struct Lab {
    pub net: u8,
    pub port: u16,
    pub dns: TestDns,
    pub pki: LabPki,
    dir: TempDir,
    ca_file: PathBuf,
    servers: Vec<(u8, RunningServer)>,
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
            TENANT_DOMAIN,
            "@ MX 0 contoso-mail-onmicrosoft-com.mail.protection.outlook.com.".to_string(),
        ),
    ]
}

impl Lab {
    /// Starts the DNS server and one role server per (octet, config), all on one port.
    pub async fn start(
        net: u8,
        zones: Vec<String>,
        pki: LabPki,
        peers: Vec<(u8, RoleConfig)>,
    ) -> Lab {
        let refs: Vec<&str> = zones.iter().map(String::as_str).collect();
        let dns = TestDns::start(&refs, &[]).await;
        let dir = TempDir::new();
        let ca_file = dir.write("ca.pem", &pki.ca_pem());
        'attempt: for _ in 0..50 {
            let Some((h0, _)) = peers.first() else {
                panic!("a lab needs a peer")
            };
            let port = std::net::TcpListener::bind(SocketAddr::new(ip(net, *h0), 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut servers = Vec::new();
            for (h, cfg) in &peers {
                let mut cfg = cfg.clone();
                cfg.addr = SocketAddr::new(ip(net, *h), port);
                match RoleServer::start(cfg).await {
                    Ok(s) => servers.push((*h, s)),
                    Err(_) => continue 'attempt,
                }
            }
            return Lab {
                net,
                port,
                dns,
                pki,
                dir,
                ca_file,
                servers,
            };
        }
        panic!("no common free port");
    }

    /// The lab's temp directory (removed when the lab is dropped).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `dir()/name` and returns the path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        self.dir.write(name, contents)
    }

    /// Writes a client identity (chain + key PEM) for `name` from the lab CA as
    /// `client-NAME.pem` / `client-NAME.key` in `dir()`; returns their paths.
    pub fn client_cert(&self, name: &str) -> (PathBuf, PathBuf) {
        let (chain, key) = self.pki.client_identity_pem(name).unwrap();
        (
            self.write(&format!("client-{name}.pem"), &chain),
            self.write(&format!("client-{name}.key"), &key),
        )
    }

    /// The overrides that point a scenario file at this lab.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--resolver".into(),
            self.dns.resolver(),
            "--port".into(),
            self.port.to_string(),
            "--tls-ca-file".into(),
            self.ca_file.display().to_string(),
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
        self.command("run", file, extra).await
    }

    /// `mxtrace COMMAND FILE <lab overrides> EXTRA` (`run`, `sweep`), off the runtime's threads.
    pub async fn command(&self, command: &str, file: &Path, extra: &[&str]) -> Run {
        let mut args: Vec<String> = vec![command.into(), file.display().to_string()];
        args.extend(self.args());
        args.extend(extra.iter().map(|s| s.to_string()));
        mxtrace_blocking(args).await
    }

    /// The session log of the peer at `host` once exactly `n` sessions (connections) have
    /// finished there; panics if another number did.
    pub async fn sessions(&self, host: u8, n: u64) -> Vec<SessionRecord> {
        let Some((_, s)) = self.servers.iter().find(|(h, _)| *h == host) else {
            panic!("no peer at 127.0.{}.{host}", self.net)
        };
        // The binary has exited: its sessions are over or ending; 10 s is only a bound.
        s.wait_for_sessions(n, Duration::from_secs(10)).await;
        assert_eq!(
            s.finished_sessions(),
            n,
            "sessions at 127.0.{}.{host}: {:#?}",
            self.net,
            s.sessions()
        );
        s.sessions()
    }

    /// Every peer saw exactly the given number of sessions (`(octet, n)`, each peer of the lab
    /// listed) and none of them received DATA: no message, no byte, no 354 go-ahead.
    pub async fn assert_no_data(&self, expected: &[(u8, u64)]) {
        let mut hosts: Vec<u8> = self.servers.iter().map(|(h, _)| *h).collect();
        let mut listed: Vec<u8> = expected.iter().map(|(h, _)| *h).collect();
        hosts.sort_unstable();
        listed.sort_unstable();
        assert_eq!(hosts, listed, "every peer is accounted for");
        for &(host, n) in expected {
            for s in self.sessions(host, n).await {
                assert_eq!((s.messages, s.data_bytes), (0, 0), "DATA at {host}: {s:?}");
                assert!(
                    !s.last_reply.as_deref().unwrap_or("").starts_with("354"),
                    "DATA at {host}: {s:?}"
                );
            }
        }
    }
}

/// `mxtrace ARGS` off the runtime's threads, so the lab's servers keep answering meanwhile.
pub async fn mxtrace_blocking(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        mxtrace(&refs, &[])
    })
    .await
    .unwrap()
}

/// Replaces what changes from run to run in human output: the lab's port, times in ms, the
/// days a certificate has left.
pub fn redact(text: &str, port: u16) -> String {
    let text = text.replace(&format!(":{port}"), ":PORT");
    let mut out = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let mut shown: Vec<String> = Vec::new();
        for (i, w) in words.iter().enumerate() {
            let next = words.get(i + 1).copied().unwrap_or("");
            let is_num = !w.is_empty() && w.parse::<f64>().is_ok();
            if is_num && (next.starts_with("ms") || next == "days") {
                shown.push("#".to_string());
            } else {
                shown.push(redact_timestamp(w));
            }
        }
        out.push_str(&shown.join(" "));
        out.push('\n');
    }
    out
}

/// An RFC 3339 UTC timestamp (`2027-11-23T00:00:00Z`, as in certificate dates, which follow
/// today's date) becomes `TIMESTAMP`; anything else is kept.
fn redact_timestamp(word: &str) -> String {
    let core = word.trim_end_matches([')', ',', ';']);
    let shape = core.len() == 20
        && core.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            19 => c == 'Z',
            _ => c.is_ascii_digit(),
        });
    if shape {
        word.replacen(core, "TIMESTAMP", 1)
    } else {
        word.to_string()
    }
}

/// The lab of scenario C: fabrikam.com's MX on a Postfix role server (used by run and diff).
pub async fn scenario_c(net: u8) -> Lab {
    let pki = LabPki::new().unwrap();
    let fab = postfix(&pki, "mx.fabrikam.com");
    Lab::start(net, zones(net, &["mail"], ""), pki, vec![(FABRIKAM, fab)]).await
}
