//! `trace`: hermetic tests against the lab's in-process DNS server and SMTP role servers on
//! loopback. Each test uses its own 127.0.N.0/24 so that an address with no listener (a
//! "refused" host) is not taken by another test running in parallel.

#[path = "support/bin.rs"]
#[allow(dead_code)]
mod bin;
#[path = "support/certs.rs"]
#[allow(unused_imports)]
mod certs;
#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/policy.rs"]
mod policy;

use clap::Parser;
use dns_support::{SilentDns, TestDns};

use mxtrace::cli::{Cli, Command};
use mxtrace_lab::smtp::{Fault, Role, RoleConfig, RoleServer, RunningServer};
use mxtrace_proto::model::{DnsReason, ErrorKind, MxFlag, MxSource, Outcome, TraceReport};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How a peer behaves. The lab's role servers (`mxtrace_lab::smtp`, the one simulator the
/// demo and the lab tests use too) play every behaviour they have: accept, 550 at RCPT, 421 at
/// the greeting (Postfix's connection limit), an Exchange Online front end. A 554 greeting and a
/// 4xx at RCPT are not lab behaviours (no runbook root cause calls for them), so a few lines of
/// scripted dialogue below play those two.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Peer {
    Accept,
    Greet421,
    Greet554,
    Rcpt550,
    Rcpt451,
    /// Accepts, naming itself as an Exchange Online front end.
    Exo,
}

const EXO_NAME: &str = "BN8NAM12FT053.mail.protection.outlook.com";

struct Peers {
    port: u16,
    _servers: Vec<RunningServer>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Peers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, net, host))
}

/// A lab role server for `b` (None: not a lab behaviour).
fn role_config(addr: SocketAddr, host: u8, b: Peer) -> Option<RoleConfig> {
    let (role, name, fault) = match b {
        Peer::Accept => (Role::ThirdPartyPostfix, format!("peer{host}.test"), None),
        Peer::Rcpt550 => (
            Role::ThirdPartyPostfix,
            format!("peer{host}.test"),
            Some(Fault::RecipientNotProvisioned),
        ),
        Peer::Greet421 => (
            Role::ThirdPartyPostfix,
            format!("peer{host}.test"),
            Some(Fault::Throttling),
        ),
        Peer::Exo => (Role::EopFrontEnd, EXO_NAME.to_string(), None),
        Peer::Greet554 | Peer::Rcpt451 => return None,
    };
    let mut c = RoleConfig::new(role, addr, &name);
    c.accepted_domains = [
        "contoso.test",
        "fabrikam.test",
        "contoso.mail.onmicrosoft.com",
    ]
    .map(String::from)
    .to_vec();
    c.fault = fault;
    Some(c)
}

/// Starts one peer per (host, behaviour) on 127.0.`net`.host, all on the same port (the trace
/// takes one `--port`).
async fn peers(net: u8, hosts: &[(u8, Peer)]) -> Peers {
    'attempt: for _ in 0..50 {
        let Some(&(h0, _)) = hosts.first() else {
            return Peers {
                port: 2525,
                _servers: vec![],
                tasks: vec![],
            };
        };
        let port = std::net::TcpListener::bind(SocketAddr::new(ip(net, h0), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (mut servers, mut tasks) = (Vec::new(), Vec::new());
        for &(h, b) in hosts {
            let addr = SocketAddr::new(ip(net, h), port);
            match role_config(addr, h, b) {
                Some(cfg) => match RoleServer::start(cfg).await {
                    Ok(s) => servers.push(s),
                    Err(_) => continue 'attempt,
                },
                None => match TcpListener::bind(addr).await {
                    Ok(l) => tasks.push(tokio::spawn(serve(l, format!("peer{h}.test"), b))),
                    Err(_) => continue 'attempt,
                },
            }
        }
        return Peers {
            port,
            _servers: servers,
            tasks,
        };
    }
    panic!("no common free port");
}

async fn serve(listener: TcpListener, name: String, b: Peer) {
    while let Ok((stream, _)) = listener.accept().await {
        let name = name.clone();
        tokio::spawn(async move {
            let _ = timeout(Duration::from_secs(20), session(stream, name, b)).await;
        });
    }
}

/// The two scripted behaviours: a 554 greeting, and 451 at RCPT.
async fn session(stream: tokio::net::TcpStream, name: String, b: Peer) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let banner = match b {
        Peer::Greet554 => "554 5.7.1 No SMTP service here\r\n".to_string(),
        _ => format!("220 {name} ESMTP test\r\n"),
    };
    w.write_all(banner.as_bytes()).await?;
    while let Some(line) = lines.next_line().await? {
        let cmd = line.to_ascii_uppercase();
        let reply = if cmd.starts_with("EHLO") {
            format!("250-{name} Hello [127.0.0.1]\r\n250 8BITMIME\r\n")
        } else if cmd.starts_with("MAIL") {
            "250 2.1.0 Sender OK\r\n".into()
        } else if cmd.starts_with("RCPT") {
            "451 4.7.1 Try again later\r\n".into()
        } else if cmd.starts_with("RSET") {
            "250 2.0.0 OK\r\n".into()
        } else if cmd.starts_with("QUIT") {
            w.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not implemented\r\n".into()
        };
        w.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// A zone for `origin` with its SOA and NS, then `body` (relative names allowed).
fn zone(origin: &str, body: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 60\n\
         @ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n\
         @ IN NS ns.{origin}.\n{body}\n"
    )
}

async fn trace_args(args: &[&str]) -> TraceReport {
    let mut argv = vec!["mxtrace", "trace"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&[
        "--ehlo",
        "probe.fabrikam.test",
        "--connect-timeout",
        "3s",
        "--stage-timeout",
        "5s",
    ]);
    if !args.contains(&"--dns-timeout") {
        argv.extend_from_slice(&["--dns-timeout", "2s"]);
    }
    trace_with(argv, |_| {}).await
}

/// Runs `argv` (from `mxtrace trace`) with options the command line does not have set by `f`.
async fn trace_with(
    argv: Vec<&str>,
    f: impl FnOnce(&mut mxtrace_core::trace::TraceOptions),
) -> TraceReport {
    let cli = Cli::try_parse_from(argv).unwrap();
    let Command::Trace(t) = cli.command else {
        panic!("not trace")
    };
    let mxtrace_core::job::Job::Trace(mut opts) = t.to_job().unwrap() else {
        panic!("not a trace job")
    };
    f(&mut opts);
    timeout(Duration::from_secs(60), mxtrace_core::trace::trace(&opts))
        .await
        .expect("trace finished")
        .unwrap()
}

async fn trace(domain: &str, dns: &str, port: u16, extra: &[&str]) -> TraceReport {
    let port = port.to_string();
    let mut args = vec![domain, "--resolver", dns, "--port", port.as_str()];
    args.extend_from_slice(extra);
    trace_args(&args).await
}

fn hosts(r: &TraceReport) -> Vec<String> {
    r.hops[0].mx.iter().map(|m| m.host.clone()).collect()
}

fn probed(r: &TraceReport) -> Vec<String> {
    r.hops[0].probes.iter().map(|p| p.ip.clone()).collect()
}

#[tokio::test]
async fn mx_in_preference_order_falls_back_on_refused_and_421() {
    let p = peers(
        1,
        &[(3, Peer::Greet421), (4, Peer::Accept), (5, Peer::Accept)],
    )
    .await;
    // Published out of order; 127.0.1.2 has no listener (refused).
    let z = zone(
        "contoso.test",
        "@ MX 30 mx3\n@ MX 10 mx1\n@ MX 40 mx4\n@ MX 20 mx2\n\
         mx1 A 127.0.1.2\nmx2 A 127.0.1.3\nmx3 A 127.0.1.4\nmx4 A 127.0.1.5",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), p.port, &[]).await;
    let hop = &r.hops[0];
    assert_eq!(hop.mx_source, MxSource::Mx);
    assert_eq!(
        hosts(&r),
        [
            "mx1.contoso.test",
            "mx2.contoso.test",
            "mx3.contoso.test",
            "mx4.contoso.test"
        ]
    );
    let prefs: Vec<u16> = hop.mx.iter().map(|m| m.preference).collect();
    assert_eq!(prefs, [10, 20, 30, 40]);
    assert_eq!(probed(&r), ["127.0.1.2", "127.0.1.3", "127.0.1.4"]);
    let outcomes: Vec<Outcome> = hop
        .probes
        .iter()
        .map(|p| p.report.verdict.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [Outcome::Error, Outcome::Transient, Outcome::Ok],
        "refused, 421, accepted"
    );
    assert_eq!(hop.decided_by, Some(2));
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert_eq!(hop.probes[2].banner_name.as_deref(), Some("peer4.test"));
    assert_eq!(hop.probes[2].ehlo_name.as_deref(), Some("peer4.test"));
}

#[tokio::test]
async fn every_address_failing_is_a_failure_decided_by_none() {
    // 127.0.14.2 has no listener (refused); 127.0.14.4 accepts but is beyond --max-mx 2.
    let p = peers(14, &[(3, Peer::Greet421), (4, Peer::Accept)]).await;
    let z = zone(
        "contoso.test",
        "@ MX 10 mx1\n@ MX 20 mx2\n@ MX 30 mx3\nmx1 A 127.0.14.2\nmx2 A 127.0.14.3\nmx3 A 127.0.14.4",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), p.port, &["--max-mx", "2"]).await;
    let hop = &r.hops[0];
    assert_eq!(probed(&r), ["127.0.14.2", "127.0.14.3"]);
    assert!(hop.mx[2].flags.contains(&MxFlag::BeyondMaxMx));
    assert!(hop.mx[2].addresses.is_empty());
    assert_eq!(hop.decided_by, None);
    assert!(!r.verdict.passed);
    assert_eq!(r.verdict.outcome, Outcome::Transient);
    assert!(
        r.verdict.summary.contains("no MX host accepted"),
        "{}",
        r.verdict.summary
    );
}

#[tokio::test]
async fn stops_at_the_first_5xx_but_skips_a_5xx_greeting() {
    let p = peers(
        2,
        &[(2, Peer::Greet554), (3, Peer::Rcpt550), (4, Peer::Accept)],
    )
    .await;
    let z = zone(
        "contoso.test",
        "@ MX 5 mx0\n@ MX 10 mx1\n@ MX 20 mx2\nmx0 A 127.0.2.2\nmx1 A 127.0.2.3\nmx2 A 127.0.2.4",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace(
        "contoso.test",
        &dns.resolver(),
        p.port,
        &["--rcpt", "nobody@contoso.test"],
    )
    .await;
    let hop = &r.hops[0];
    // 554 greeting: next MX (Postfix smtp_skip_5xx_greeting); 550 at RCPT: definitive.
    assert_eq!(probed(&r), ["127.0.2.2", "127.0.2.3"]);
    assert_eq!(hop.decided_by, Some(1));
    assert!(!r.verdict.passed);
    assert_eq!(r.verdict.outcome, Outcome::Permanent);
    assert!(r.verdict.summary.contains("rejected by mx1.contoso.test"));
}

#[tokio::test]
async fn a_4xx_at_rcpt_moves_to_the_next_mx() {
    let p = peers(3, &[(2, Peer::Rcpt451), (3, Peer::Accept)]).await;
    let z = zone(
        "contoso.test",
        "@ MX 10 mx1\n@ MX 20 mx2\nmx1 A 127.0.3.2\nmx2 A 127.0.3.3",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace(
        "contoso.test",
        &dns.resolver(),
        p.port,
        &["--rcpt", "user@contoso.test"],
    )
    .await;
    assert_eq!(probed(&r), ["127.0.3.2", "127.0.3.3"]);
    assert_eq!(r.hops[0].decided_by, Some(1));
    assert!(r.verdict.passed, "{}", r.verdict.summary);
}

#[tokio::test]
async fn equal_preferences_are_both_listed_in_the_order_used() {
    let p = peers(4, &[(2, Peer::Accept), (3, Peer::Accept)]).await;
    let z = zone(
        "contoso.test",
        "@ MX 10 mxa\n@ MX 10 mxb\n@ MX 20 mxc\nmxa A 127.0.4.2\nmxb A 127.0.4.3\nmxc A 127.0.4.4",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    for _ in 0..4 {
        let r = trace("contoso.test", &dns.resolver(), p.port, &[]).await;
        let hop = &r.hops[0];
        let mut first_two = hosts(&r)[..2].to_vec();
        first_two.sort();
        assert_eq!(first_two, ["mxa.contoso.test", "mxb.contoso.test"]);
        assert_eq!(hosts(&r)[2], "mxc.contoso.test");
        assert!(hop.mx[0].flags.contains(&MxFlag::EqualPreference));
        assert!(hop.mx[1].flags.contains(&MxFlag::EqualPreference));
        assert!(hop.mx[2].flags.is_empty());
        // The first in the list is the one tried.
        assert_eq!(hop.probes.len(), 1);
        assert_eq!(hop.probes[0].mx, hop.mx[0].host);
        assert!(r.verdict.passed);
    }
}

#[tokio::test]
async fn implicit_mx_uses_the_domains_own_address() {
    let p = peers(5, &[(2, Peer::Accept)]).await;
    let z = zone("contoso.test", "@ A 127.0.5.2\n@ TXT \"v=spf1 -all\"");
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), p.port, &[]).await;
    let hop = &r.hops[0];
    assert_eq!(hop.mx_source, MxSource::Implicit);
    assert_eq!(hosts(&r), ["contoso.test"]);
    assert_eq!(hop.mx[0].flags, [MxFlag::Implicit]);
    assert_eq!(probed(&r), ["127.0.5.2"]);
    assert!(r.verdict.passed);
}

#[tokio::test]
async fn null_mx_accepts_no_mail() {
    let z = zone("contoso.test", "@ MX 0 .\n@ A 127.0.6.2");
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), 25, &[]).await;
    let hop = &r.hops[0];
    assert_eq!(hop.mx_source, MxSource::NullMx);
    assert!(hop.probes.is_empty(), "nothing is contacted");
    assert!(!r.verdict.passed);
    assert_eq!(r.verdict.outcome, Outcome::Permanent);
    assert!(
        r.verdict.summary.contains("null MX"),
        "{}",
        r.verdict.summary
    );
}

#[tokio::test]
async fn cname_mx_is_flagged_and_still_used() {
    let p = peers(7, &[(2, Peer::Accept)]).await;
    let z = zone(
        "contoso.test",
        "@ MX 10 alias\nalias CNAME real\nreal A 127.0.7.2",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), p.port, &[]).await;
    let m = &r.hops[0].mx[0];
    assert!(m.flags.contains(&MxFlag::Cname), "{:?}", m.flags);
    assert_eq!(m.cname_target.as_deref(), Some("real.contoso.test"));
    assert_eq!(probed(&r), ["127.0.7.2"]);
    assert!(r.verdict.passed);
    assert!(r.verdict.warnings.iter().any(|w| w.contains("CNAME")));
}

#[tokio::test]
async fn ip_literal_mx_is_flagged_and_not_used() {
    let p = peers(8, &[(3, Peer::Accept)]).await;
    // 127.0.8.2 has no listener: probing it would show as a refused probe.
    let z = zone(
        "contoso.test",
        "@ MX 10 127.0.8.2.\n@ MX 20 mx2\nmx2 A 127.0.8.3",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), p.port, &[]).await;
    let hop = &r.hops[0];
    assert_eq!(hosts(&r), ["127.0.8.2", "mx2.contoso.test"]);
    assert!(hop.mx[0].flags.contains(&MxFlag::IpLiteral));
    assert!(hop.mx[0].addresses.is_empty());
    assert_eq!(probed(&r), ["127.0.8.3"]);
    assert!(r.verdict.passed);
    assert!(r.verdict.warnings.iter().any(|w| w.contains("IP address")));
}

#[tokio::test]
async fn nxdomain_is_a_dns_failure() {
    let z = zone(
        "contoso.test",
        "@ MX 10 missing\nwww A 127.0.9.2\nbroken MX 10 gone.contoso.test.",
    );
    let dns = TestDns::start(&[&z], &[]).await;

    let r = trace("nope.contoso.test", &dns.resolver(), 25, &[]).await;
    let e = r.hops[0].error.as_ref().expect("dns error");
    assert_eq!(e.kind, ErrorKind::Dns);
    assert_eq!(e.reason, DnsReason::Nxdomain);
    assert!(e.diagnosis.is_some());
    assert!(r.hops[0].probes.is_empty());
    assert!(!r.verdict.passed);

    // The MX exists but points at a name that does not.
    let r = trace("contoso.test", &dns.resolver(), 25, &[]).await;
    let hop = &r.hops[0];
    assert!(hop.mx[0].flags.contains(&MxFlag::NoAddress));
    assert_eq!(
        hop.mx[0].error.as_ref().unwrap().reason,
        DnsReason::Nxdomain
    );
    assert_eq!(hop.error.as_ref().unwrap().reason, DnsReason::Nxdomain);
    assert!(!r.verdict.passed);
}

#[tokio::test]
async fn no_mx_and_no_address_is_a_dns_failure() {
    let z = zone("contoso.test", "@ TXT \"v=spf1 -all\"");
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), 25, &[]).await;
    let e = r.hops[0].error.as_ref().expect("dns error");
    assert_eq!(e.reason, DnsReason::NoRecords);
    assert!(r.verdict.summary.contains("neither MX nor A/AAAA"));
    assert!(!r.verdict.passed);
}

#[tokio::test]
async fn servfail_is_a_dns_failure() {
    let z = zone("contoso.test", "@ MX 10 mx1\nmx1 A 127.0.10.2");
    let dns = TestDns::start(&[&z], &["contoso.test.", "mx1.fabrikam.test."]).await;
    let r = trace("contoso.test", &dns.resolver(), 25, &[]).await;
    let e = r.hops[0].error.as_ref().expect("dns error");
    assert_eq!(e.kind, ErrorKind::Dns);
    assert_eq!(e.reason, DnsReason::Servfail);
    assert!(r.hops[0].probes.is_empty());
    assert!(!r.verdict.passed);

    // SERVFAIL for the MX host's address only.
    let f = zone("fabrikam.test", "@ MX 10 mx1");
    let dns = TestDns::start(&[&f], &["mx1.fabrikam.test."]).await;
    let r = trace("fabrikam.test", &dns.resolver(), 25, &[]).await;
    assert_eq!(
        r.hops[0].mx[0].error.as_ref().unwrap().reason,
        DnsReason::Servfail
    );
    assert_eq!(
        r.hops[0].error.as_ref().unwrap().reason,
        DnsReason::Servfail
    );
}

#[tokio::test]
async fn dns_timeout_is_bounded_and_reported() {
    let silent = SilentDns::start().await;
    let r = trace_args(&[
        "contoso.test",
        "--resolver",
        &silent.resolver(),
        "--dns-timeout",
        "200ms",
    ])
    .await;
    let e = r.hops[0].error.as_ref().expect("dns error");
    assert_eq!(e.reason, DnsReason::Timeout);
    assert!(!r.verdict.passed);
}

#[tokio::test]
async fn many_addresses_one_host_and_all_probes_every_one() {
    let behaviours = [
        (3, Peer::Greet421),
        (4, Peer::Accept),
        (5, Peer::Rcpt550),
        (6, Peer::Accept),
        (7, Peer::Exo),
    ];
    // 127.0.11.2 has no listener: refused.
    let p = peers(11, &behaviours).await;
    let z = zone(
        "contoso.test",
        "@ MX 10 mx\nmx A 127.0.11.2\nmx A 127.0.11.3\nmx A 127.0.11.4\nmx A 127.0.11.5\n\
         mx A 127.0.11.6\nmx A 127.0.11.7",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let behaviour = |ip: &str| {
        behaviours
            .iter()
            .find(|(h, _)| ip == format!("127.0.11.{h}"))
            .map(|(_, b)| *b)
    };

    // As an MTA: addresses in order until the first definitive answer.
    let r = trace("contoso.test", &dns.resolver(), p.port, &[]).await;
    let hop = &r.hops[0];
    let order: Vec<String> = hop.mx[0].addresses.iter().map(|a| a.ip.clone()).collect();
    assert_eq!(order.len(), 6);
    let first_ok = order
        .iter()
        .position(|ip| {
            matches!(
                behaviour(ip),
                Some(Peer::Accept | Peer::Exo | Peer::Rcpt550)
            )
        })
        .unwrap();
    assert_eq!(probed(&r), order[..=first_ok]);
    assert_eq!(hop.decided_by, Some(first_ok));
    assert!(r.verdict.passed, "{}", r.verdict.summary);

    // --all: every address, in the same order; the refused and the 421 make it fail.
    let r = trace(
        "contoso.test",
        &dns.resolver(),
        p.port,
        &["--all", "--rcpt", "user@contoso.test"],
    )
    .await;
    let hop = &r.hops[0];
    let order: Vec<String> = hop.mx[0].addresses.iter().map(|a| a.ip.clone()).collect();
    assert_eq!(probed(&r), order);
    assert!(!r.verdict.passed);
    assert_eq!(r.mode, "all");
    for pr in &hop.probes {
        let expect_pass = matches!(behaviour(&pr.ip), Some(Peer::Accept | Peer::Exo));
        assert_eq!(pr.report.verdict.passed, expect_pass, "{}", pr.ip);
    }
    let exo = hop.probes.iter().find(|p| p.ip == "127.0.11.7").unwrap();
    // The lab's EOP names itself in the banner and EHLO (bracketed names in rejections are
    // covered by the unit test of `front_end_names`).
    assert_eq!(exo.front_end, [EXO_NAME]);
    assert_eq!(exo.banner_name.as_deref(), Some(EXO_NAME));
    assert_eq!(exo.ehlo_name.as_deref(), Some(EXO_NAME));
}

#[tokio::test]
async fn family_flag_limits_the_lookups() {
    let p = peers(12, &[(2, Peer::Accept)]).await;
    let z = zone("contoso.test", "@ MX 10 mx\nmx A 127.0.12.2\nmx AAAA ::1");
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), p.port, &["-4"]).await;
    let addrs: Vec<&str> = r.hops[0].mx[0]
        .addresses
        .iter()
        .map(|a| a.ip.as_str())
        .collect();
    assert_eq!(addrs, ["127.0.12.2"]);
    assert!(r.verdict.passed);
}

#[tokio::test]
async fn reverse_dns_and_forward_confirmation() {
    // Data only: these addresses are never connected to.
    let fwd = zone(
        "contoso.test",
        "mx1 A 192.0.2.10\nother A 192.0.2.99\nmx6 AAAA 2001:db8::10",
    );
    let rev = zone(
        "2.0.192.in-addr.arpa",
        "10 PTR mx1.contoso.test.\n11 PTR other.contoso.test.",
    );
    let rev6 = zone(
        "8.b.d.0.1.0.0.2.ip6.arpa",
        "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR mx6.contoso.test.",
    );
    let dns = TestDns::start(&[&fwd, &rev, &rev6], &[]).await;
    let resolver = mxtrace_net::dns::Dns::new(
        mxtrace_net::dns::ResolverChoice::Server(dns.addr),
        Duration::from_secs(2),
    )
    .unwrap();
    let check = |s: &str| {
        let resolver = resolver.clone();
        let ip: IpAddr = s.parse().unwrap();
        async move { resolver.reverse_check(ip).await }
    };

    let ok = check("192.0.2.10").await;
    assert_eq!(ok.ptr, ["mx1.contoso.test"]);
    assert_eq!(ok.fcrdns, Some(true));

    let mismatch = check("192.0.2.11").await;
    assert_eq!(mismatch.ptr, ["other.contoso.test"]);
    assert_eq!(mismatch.fcrdns, Some(false));

    let none = check("192.0.2.12").await;
    assert!(none.ptr.is_empty());
    assert_eq!(none.fcrdns, Some(false));
    assert_eq!(none.ptr_error.unwrap().reason, DnsReason::Nxdomain);

    let v6 = check("2001:db8::10").await;
    assert_eq!(v6.ptr, ["mx6.contoso.test"]);
    assert_eq!(v6.fcrdns, Some(true));
}

/// The binary: exit codes and JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exit_codes_and_json() {
    let p = peers(13, &[(2, Peer::Accept)]).await;
    let z = zone("contoso.test", "@ MX 10 mx1\nmx1 A 127.0.13.2");
    let dns = TestDns::start(&[&z], &[]).await;
    let port = p.port.to_string();
    let run = |args: Vec<String>| async move {
        let out = timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                bin::mxtrace(&args, &[])
            }),
        )
        .await
        .expect("mxtrace finished")
        .unwrap();
        (Some(out.code), out.stdout)
    };
    let args = |domain: &str, extra: &[&str]| {
        let mut v: Vec<String> = [
            "trace",
            domain,
            "--resolver",
            &dns.resolver(),
            "--port",
            &port,
            "--ehlo",
            "probe.fabrikam.test",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    let (code, out) = run(args("contoso.test", &[])).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("mx1.contoso.test"), "{out}");
    assert!(out.contains("Verdict: PASS"), "{out}");
    assert!(out.contains("`-- 10 mx1.contoso.test"), "{out}");
    assert!(out.contains("`-- 127.0.13.2"), "{out}");
    assert!(out.contains("#1 passed"), "{out}");
    assert!(out.contains("Transcript of #1"), "{out}");

    let (code, out) = run(args("contoso.test", &["--json"])).await;
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["command"], "trace");
    assert_eq!(v["hops"][0]["mx"][0]["host"], "mx1.contoso.test");
    assert_eq!(v["hops"][0]["mx"][0]["preference"], 10);
    assert_eq!(v["hops"][0]["decided_by"], 0);
    assert_eq!(v["hops"][0]["probes"][0]["ip"], "127.0.13.2");
    assert!(v["hops"][0]["probes"][0]["report"]["stages"].is_array());
    assert_eq!(v["verdict"]["passed"], true);

    let (code, out) = run(args("nope.contoso.test", &["--json"])).await;
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["hops"][0]["error"]["kind"], "dns");
    assert_eq!(v["hops"][0]["error"]["reason"], "nxdomain");
    assert_eq!(v["verdict"]["passed"], false);

    let (code, out) = run(args("nope.contoso.test", &[])).await;
    assert_eq!(code, Some(1));
    assert!(out.contains("NXDOMAIN"), "{out}");

    let (code, _) = run(vec![
        "trace".into(),
        "contoso.test".into(),
        "--resolver".into(),
        "dns.contoso.test".into(),
    ])
    .await;
    assert_eq!(code, Some(2), "a bad --resolver is a usage error");
    let (code, _) = run(vec!["trace".into(), "not a domain".into()]).await;
    assert_eq!(code, Some(2));
}

/// Stage names and the RCPT lines a probe sent.
fn rcpts_sent(p: &mxtrace_proto::model::TraceProbe) -> Vec<String> {
    p.report
        .stages
        .iter()
        .filter(|s| s.stage == mxtrace_proto::model::Stage::RcptTo)
        .flat_map(|s| s.sent.clone())
        .collect()
}

#[tokio::test]
async fn eop_mx_is_scenario_a_and_a_fallback_mx_is_flagged() {
    use mxtrace_knowledge::Scenario;
    let p = peers(30, &[(2, Peer::Exo), (3, Peer::Accept)]).await;
    let contoso = zone(
        "contoso.test",
        "@ MX 0 contoso-test.mail.protection.outlook.com.\n@ MX 10 backup.contoso.test.\nbackup A 127.0.30.3",
    );
    let eop = zone("mail.protection.outlook.com", "contoso-test A 127.0.30.2");
    let dns = TestDns::start(&[&contoso, &eop], &[]).await;
    let r = trace(
        "contoso.test",
        &dns.resolver(),
        p.port,
        &["--rcpt", "user@contoso.test"],
    )
    .await;
    let hop = &r.hops[0];
    assert_eq!(hop.scenario, Some(Scenario::A));
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    let rcpt = hop.probes[0]
        .report
        .stages
        .iter()
        .find(|s| s.stage == mxtrace_proto::model::Stage::RcptTo)
        .unwrap();
    let d = rcpt.diagnosis.as_ref().unwrap();
    assert_eq!((d.scenario, d.hop), (Some(Scenario::A), Some(1)));
    assert!(
        r.verdict.warnings.iter().any(|w| w.contains("fallback MX")),
        "{:?}",
        r.verdict.warnings
    );
}

#[tokio::test]
async fn hybrid_with_tenant_walks_hop_2_to_the_remote_routing_address() {
    use mxtrace_knowledge::Scenario;
    let p = peers(31, &[(2, Peer::Accept), (3, Peer::Exo)]).await;
    let contoso = zone(
        "contoso.test",
        "@ MX 10 mail.contoso.test.\nmail A 127.0.31.2",
    );
    let tenant = zone(
        "mail.onmicrosoft.com",
        "contoso MX 0 contoso-mail-onmicrosoft-com.mail.protection.outlook.com.",
    );
    let eop = zone(
        "mail.protection.outlook.com",
        "contoso-mail-onmicrosoft-com A 127.0.31.3",
    );
    let dns = TestDns::start(&[&contoso, &tenant, &eop], &[]).await;
    let r = trace(
        "contoso.test",
        &dns.resolver(),
        p.port,
        &["--tenant", "contoso", "--rcpt", "user@contoso.test"],
    )
    .await;
    assert_eq!(r.hops.len(), 2, "{}", r.verdict.summary);
    let (h1, h2) = (&r.hops[0], &r.hops[1]);
    assert_eq!((h1.hop, h1.scenario), (1, Some(Scenario::B)));
    assert_eq!((h2.hop, h2.scenario), (2, Some(Scenario::B)));
    assert_eq!(h2.domain, "contoso.mail.onmicrosoft.com");
    assert_eq!(rcpts_sent(&h1.probes[0]), ["RCPT TO:<user@contoso.test>"]);
    assert_eq!(
        rcpts_sent(&h2.probes[0]),
        ["RCPT TO:<user@contoso.mail.onmicrosoft.com>"]
    );
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert!(r
        .verdict
        .summary
        .contains("hop 2 (contoso.mail.onmicrosoft.com)"));
    assert!(r
        .verdict
        .warnings
        .iter()
        .any(|w| w.contains("on-premises network")));
}

#[tokio::test]
async fn hybrid_hop_2_failure_fails_the_trace_with_a_scenario_b_hop_2_diagnosis() {
    use mxtrace_knowledge::Scenario;
    let p = peers(32, &[(2, Peer::Accept), (3, Peer::Rcpt550)]).await;
    let contoso = zone(
        "contoso.test",
        "@ MX 10 mail.contoso.test.\nmail A 127.0.32.2",
    );
    let tenant = zone(
        "mail.onmicrosoft.com",
        "contoso MX 0 eop.mail.protection.outlook.com.",
    );
    let eop = zone("mail.protection.outlook.com", "eop A 127.0.32.3");
    let dns = TestDns::start(&[&contoso, &tenant, &eop], &[]).await;
    let r = trace(
        "contoso.test",
        &dns.resolver(),
        p.port,
        &[
            "--scenario",
            "B",
            "--tenant",
            "contoso.onmicrosoft.com",
            "--rcpt",
            "user@contoso.test",
        ],
    )
    .await;
    assert!(!r.verdict.passed);
    assert!(r.hops[0].verdict.passed);
    let rcpt = r.hops[1].probes[0]
        .report
        .stages
        .iter()
        .find(|s| s.stage == mxtrace_proto::model::Stage::RcptTo)
        .unwrap();
    let d = rcpt.diagnosis.as_ref().unwrap();
    assert_eq!((d.scenario, d.hop), (Some(Scenario::B), Some(2)));
    assert!(d.cause.contains("scenario B hop 2"), "{}", d.cause);
}

#[tokio::test]
async fn named_outbound_scenarios_tag_their_hop() {
    use mxtrace_knowledge::Scenario;
    let p = peers(33, &[(2, Peer::Accept)]).await;
    let fabrikam = zone(
        "fabrikam.test",
        "@ MX 10 mx.fabrikam.test.\nmx A 127.0.33.2",
    );
    let dns = TestDns::start(&[&fabrikam], &[]).await;
    let r = trace(
        "fabrikam.test",
        &dns.resolver(),
        p.port,
        &["--scenario", "c"],
    )
    .await;
    assert_eq!((r.hops[0].hop, r.hops[0].scenario), (1, Some(Scenario::C)));
    let r = trace(
        "fabrikam.test",
        &dns.resolver(),
        p.port,
        &["--scenario", "D"],
    )
    .await;
    // D's MX walk is hop 2 (on-premises -> third party).
    assert_eq!((r.hops[0].hop, r.hops[0].scenario), (2, Some(Scenario::D)));
    let d = r.hops[0].probes[0].report.stages[1]
        .diagnosis
        .as_ref()
        .unwrap();
    assert_eq!((d.scenario, d.hop), (Some(Scenario::D), Some(2)));
}

#[test]
fn a_bad_tenant_is_a_usage_error() {
    let cli = Cli::try_parse_from([
        "mxtrace",
        "trace",
        "contoso.test",
        "--tenant",
        "bad tenant!",
    ])
    .unwrap();
    let Command::Trace(t) = cli.command else {
        panic!("not trace")
    };
    assert!(t.to_job().is_err());
}

#[tokio::test]
async fn spf_record_hints_at_the_outbound_scenarios() {
    use mxtrace_knowledge::Scenario;
    let p = peers(34, &[(2, Peer::Accept)]).await;
    let contoso = zone(
        "contoso.test",
        "@ MX 10 mx.contoso.test.\nmx A 127.0.34.2\n\
         @ TXT \"v=spf1 include:spf.protection.outlook.com\" \" ip4:192.0.2.10 -all\"\n\
         @ TXT \"google-site-verification=abc\"",
    );
    let dns = TestDns::start(&[&contoso], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), p.port, &[]).await;
    let spf = r.hops[0].spf.as_ref().expect("spf found");
    // The two strings of one TXT record are joined without a separator (RFC 7208 3.3).
    assert_eq!(
        spf.record,
        "v=spf1 include:spf.protection.outlook.com ip4:192.0.2.10 -all"
    );
    assert!(spf.hints.sends_via_eop && spf.hints.own_servers && !spf.multiple);
    assert_eq!(spf.hints.candidates, [Scenario::C, Scenario::D]);
    let human = human(&r);
    assert!(human.contains("scenario C, or D"), "{human}");

    let fabrikam = zone(
        "fabrikam.test",
        "@ MX 10 mx.fabrikam.test.\nmx A 127.0.34.2\n@ TXT \"v=spf1 -all\"\n@ TXT \"v=spf1 a -all\"",
    );
    let dns = TestDns::start(&[&fabrikam], &[]).await;
    let r = trace("fabrikam.test", &dns.resolver(), p.port, &[]).await;
    assert!(r.hops[0].spf.as_ref().unwrap().multiple);
}

fn human(r: &TraceReport) -> String {
    mxtrace_render::human::render_trace(
        r,
        mxtrace_render::style::Style::new(false),
        mxtrace_proto::spec::Naming::Flag,
    )
}

/// Whether ::1 can be bound here. Without it the IPv6 tests cannot run: they say so, and
/// fail under CI=true.
fn ipv6_loopback() -> bool {
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("::1 is not available ({e}): the IPv6 tests need it in CI")
        }
        Err(e) => {
            eprintln!("SKIPPED: ::1 is not available ({e}); the per-family tests need it");
            false
        }
    }
}

/// A lab peer on 127.0.`net`.2 and, on ::1 at the same port, a scripted one (the lab listens
/// on 127.0.0.0/8 only): 451 at RCPT.
async fn dual_stack(net: u8, v4: Peer) -> Peers {
    for _ in 0..50 {
        let v6 = TcpListener::bind("[::1]:0").await.unwrap();
        let port = v6.local_addr().unwrap().port();
        let c4 = role_config(SocketAddr::new(ip(net, 2), port), 2, v4).unwrap();
        let Ok(s4) = RoleServer::start(c4).await else {
            continue;
        };
        let task = tokio::spawn(serve(v6, "peer6.test".into(), Peer::Rcpt451));
        return Peers {
            port,
            _servers: vec![s4],
            tasks: vec![task],
        };
    }
    panic!("no common free port");
}

#[tokio::test]
async fn an_mx_with_a_and_aaaa_gets_a_verdict_per_family() {
    if !ipv6_loopback() {
        return;
    }
    // IPv4 accepts, IPv6 defers at RCPT: the walk (IPv4 first) passes, IPv6 is probed too.
    let p = dual_stack(79, Peer::Accept).await;
    let z = zone("contoso.test", "@ MX 10 mx\nmx A 127.0.79.2\nmx AAAA ::1");
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace(
        "contoso.test",
        &dns.resolver(),
        p.port,
        &["--rcpt", "user@contoso.test"],
    )
    .await;
    let hop = &r.hops[0];
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert_eq!(probed(&r), ["127.0.79.2"]);
    assert_eq!(hop.family_probes.len(), 1);
    assert_eq!(hop.family_probes[0].ip, "::1");
    let fam: Vec<(&str, bool)> = hop
        .families
        .iter()
        .map(|f| (f.family.as_str(), f.passed))
        .collect();
    assert_eq!(fam, [("ipv6", false), ("ipv4", true)]);
    let v6 = &hop.families[0];
    assert_eq!(v6.outcome, Outcome::Transient);
    assert_eq!(v6.addresses, ["::1"]);
    assert_eq!(v6.decided_by, None);
    assert!(
        v6.summary
            .starts_with("no address accepted (1 tried). Last: mx.contoso.test [::1]"),
        "{}",
        v6.summary
    );
    assert!(v6.notes.is_empty(), "not Exchange Online: {:?}", v6.notes);
    assert!(
        r.verdict
            .warnings
            .iter()
            .any(|w| w.starts_with("IPv6 fails while the other family passes")),
        "{:?}",
        r.verdict.warnings
    );
    let human = human(&r);
    assert!(
        human.contains("not tried by the walk; per-family probe: transient at rcpt_to 451"),
        "{human}"
    );
    assert!(
        human.contains("\nIPv6: FAIL no address accepted"),
        "{human}"
    );
    assert!(
        human.contains("\nIPv4: PASS accepted by mx.contoso.test [127.0.79.2]"),
        "{human}"
    );
    // JSON: the additive keys, and a round trip.
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["hops"][0]["families"][0]["family"], "ipv6");
    assert_eq!(j["hops"][0]["family_probes"][0]["ip"], "::1");
    let back: TraceReport = serde_json::from_value(j).unwrap();
    assert_eq!(back.hops[0].families.len(), 2);
}

#[tokio::test]
async fn exchange_online_ipv6_rules_are_noted_per_family() {
    if !ipv6_loopback() {
        return;
    }
    // The MX is Exchange Online's with AAAA (the domain opted in).
    let p = dual_stack(80, Peer::Exo).await;
    let z = zone(
        "contoso.test",
        "@ MX 10 contoso-test.mail.protection.outlook.com.",
    );
    let eop = zone(
        "outlook.com",
        "contoso-test.mail.protection A 127.0.80.2\ncontoso-test.mail.protection AAAA ::1",
    );
    let dns = TestDns::start(&[&z, &eop], &[]).await;
    let r = trace(
        "contoso.test",
        &dns.resolver(),
        p.port,
        &["--rcpt", "user@contoso.test"],
    )
    .await;
    let hop = &r.hops[0];
    assert!(hop.families[1].passed, "{:?}", hop.families);
    let notes = hop.families[0].notes.join("\n");
    assert!(
        notes.starts_with("contoso-test.mail.protection.outlook.com: Exchange Online accepts anonymous mail over IPv6"),
        "{notes}"
    );
    assert!(
        notes.contains("4.7.25") && notes.contains("4.7.26"),
        "{notes}"
    );
    assert!(hop.families[1].notes.is_empty());
}

#[tokio::test]
async fn an_ipv4_only_mx_has_no_family_verdicts() {
    let p = peers(81, &[(2, Peer::Accept)]).await;
    let z = zone("contoso.test", "@ MX 10 mx\nmx A 127.0.81.2");
    let dns = TestDns::start(&[&z], &[]).await;
    let r = trace("contoso.test", &dns.resolver(), p.port, &[]).await;
    assert!(r.hops[0].families.is_empty() && r.hops[0].family_probes.is_empty());
    let j = serde_json::to_value(&r).unwrap();
    assert!(j["hops"][0].get("families").is_none());
}

/// walk.test under MTA-STS: mx1 (127.0.82.2) and mx2 (127.0.82.3) offer STARTTLS with the
/// certificates given; the policy host serves `policy` under id 1.
async fn trace_sts(
    mx1: certs::CertKind,
    mx2: certs::CertKind,
    policy: &str,
    extra: &[&str],
) -> TraceReport {
    let pki = certs::TestPki::new();
    let mut servers = Vec::new();
    let mut port = 0;
    for _ in 0..50 {
        port = std::net::TcpListener::bind("127.0.82.2:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        servers.clear();
        for (h, kind) in [(2u8, &mx1), (3, &mx2)] {
            let mut c = role_config(SocketAddr::new(ip(82, h), port), h, Peer::Accept).unwrap();
            c.tls = Some(pki.server_config(kind));
            if let Ok(s) = RoleServer::start(c).await {
                servers.push(s);
            }
        }
        if servers.len() == 2 {
            break;
        }
    }
    let z = zone(
        "walk.test",
        "@ MX 10 mx1\n@ MX 20 mx2\nmx1 A 127.0.82.2\nmx2 A 127.0.82.3\n\
         _mta-sts TXT \"v=STSv1; id=1\"\nmta-sts A 127.0.0.1",
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let host = policy::policy_server(&pki, "mta-sts.walk.test", policy::ok_policy(policy)).await;
    let (resolver, port) = (dns.resolver(), port.to_string());
    let ca = pki.ca_file().to_str().unwrap().to_string();
    let mut argv = vec![
        "mxtrace",
        "trace",
        "walk.test",
        "--resolver",
        &resolver,
        "--port",
        &port,
        "--tls-ca-file",
        &ca,
        "--rcpt",
        "user@contoso.test",
        "--connect-timeout",
        "3s",
        "--stage-timeout",
        "5s",
        "--dns-timeout",
        "2s",
    ];
    argv.extend_from_slice(extra);
    trace_with(argv, |o| o.mta_sts.https_port = host.port).await
}

const STS_ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: *.walk.test\nmax_age: 86400\n";

#[tokio::test]
async fn mta_sts_enforce_makes_an_unverified_certificate_an_mta_sts_failure() {
    use certs::CertKind::{SelfSigned, Valid, WrongName};
    // mx1's certificate names another host: a compliant sender moves on to mx2.
    let r = trace_sts(
        WrongName("mx1.walk.test".into()),
        Valid("mx2.walk.test".into()),
        STS_ENFORCE,
        &[],
    )
    .await;
    let hop = &r.hops[0];
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert_eq!(probed(&r), ["127.0.82.2", "127.0.82.3"]);
    let first = &hop.probes[0].report;
    let s = &first.verdict.summary;
    assert!(s.starts_with("MTA-STS failure: mx1.walk.test [127.0.82.2] matched mx pattern *.walk.test of the policy id 1 (mode enforce, mx: *.walk.test)"), "{s}");
    let tls_stage = first
        .stages
        .iter()
        .find(|st| Some(st.stage) == first.verdict.failed_stage)
        .unwrap();
    let d = tls_stage.diagnosis.as_ref().unwrap();
    assert!(d.cause.starts_with("MTA-STS failure"), "{}", d.cause);
    let sts = hop.mta_sts.as_ref().unwrap();
    assert_eq!(sts.mode, "enforce");
    assert_eq!(
        sts.source,
        mxtrace_proto::model::posture::PolicySource::Fetched
    );
    // Both fail verification: the hop fails as an MTA-STS failure, not a generic TLS one.
    let r = trace_sts(
        SelfSigned("mx1.walk.test".into()),
        WrongName("mx2.walk.test".into()),
        STS_ENFORCE,
        &[],
    )
    .await;
    assert!(!r.verdict.passed);
    assert!(
        r.verdict
            .summary
            .starts_with("MTA-STS failure (policy id 1 (mode enforce, mx: *.walk.test))"),
        "{}",
        r.verdict.summary
    );
    let human = human(&r);
    assert!(
        human.contains("\nMTA-STS: policy id 1 (mode enforce, mx: *.walk.test)\n"),
        "{human}"
    );
}

#[tokio::test]
async fn mta_sts_testing_reports_what_enforce_would_refuse_and_delivers() {
    use certs::CertKind::{Valid, WrongName};
    let testing = STS_ENFORCE.replace("enforce", "testing");
    let r = trace_sts(
        WrongName("mx1.walk.test".into()),
        Valid("mx2.walk.test".into()),
        &testing,
        &[],
    )
    .await;
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert_eq!(probed(&r), ["127.0.82.2"]);
    let w = r.verdict.warnings.join("\n");
    assert!(
        w.contains("MTA-STS testing: mx1.walk.test [127.0.82.2]: certificate not verified"),
        "{w}"
    );
    assert!(
        w.contains("under enforce compliant senders would not deliver to it"),
        "{w}"
    );
}

#[tokio::test]
async fn mta_sts_cache_is_used_by_trace_and_shown() {
    use certs::CertKind::Valid;
    let dir = certs::TestPki::new();
    let cache = dir.dir().join("sts-cache.json");
    let cache_arg = cache.to_str().unwrap().to_string();
    let flags = ["--mta-sts-cache", cache_arg.as_str()];
    let r = trace_sts(
        Valid("mx1.walk.test".into()),
        Valid("mx2.walk.test".into()),
        STS_ENFORCE,
        &flags,
    )
    .await;
    assert_eq!(
        r.hops[0].mta_sts.as_ref().unwrap().source,
        mxtrace_proto::model::posture::PolicySource::Fetched
    );
    // Same id, the policy host now broken: the cached policy is enforced.
    let r = trace_sts(
        Valid("mx1.walk.test".into()),
        Valid("mx2.walk.test".into()),
        "garbage",
        &flags,
    )
    .await;
    let sts = r.hops[0].mta_sts.as_ref().unwrap();
    assert_eq!(
        sts.source,
        mxtrace_proto::model::posture::PolicySource::Cache
    );
    assert!(sts.fetched_at.is_some());
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    let human = human(&r);
    assert!(
        human.contains(
            "MTA-STS: policy id 1 (mode enforce, mx: *.walk.test, from the cache), fetched "
        ),
        "{human}"
    );
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["hops"][0]["mta_sts"]["source"], "cache");
}

#[tokio::test]
async fn mta_sts_enforce_walks_only_the_mx_hosts_it_matches() {
    use certs::CertKind::Valid;
    let (mx1, mx2) = (Valid("mx1.walk.test".into()), Valid("mx2.walk.test".into()));
    let only_mx2 = "version: STSv1\nmode: enforce\nmx: mx2.walk.test\nmax_age: 86400\n";
    let r = trace_sts(mx1.clone(), mx2.clone(), only_mx2, &[]).await;
    assert_eq!(probed(&r), ["127.0.82.3"]);
    assert!(r.verdict.passed, "{}", r.verdict.summary);
    assert_eq!(
        r.hops[0].mta_sts.as_ref().unwrap().unmatched_mx,
        ["mx1.walk.test"]
    );
    let w = r.verdict.warnings.join("\n");
    assert!(w.contains("MX mx1.walk.test not matched"), "{w}");
    assert!(w.contains("STARTTLS required"), "{w}");
    // No MX matches: nothing is contacted, the hop is an MTA-STS failure.
    let elsewhere = "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n";
    let r = trace_sts(mx1.clone(), mx2.clone(), elsewhere, &[]).await;
    assert!(probed(&r).is_empty());
    assert!(!r.verdict.passed);
    assert!(
        r.hops[0].verdict.summary.starts_with("MTA-STS failure: no MX host matches the policy id 1 (mode enforce, mx: *.elsewhere.test)"),
        "{}",
        r.hops[0].verdict.summary
    );
    // Testing: the walk is unchanged, the unmatched MX reported.
    let r = trace_sts(mx1, mx2, &only_mx2.replace("enforce", "testing"), &[]).await;
    assert_eq!(probed(&r), ["127.0.82.2"]);
    let w = r.verdict.warnings.join("\n");
    assert!(w.contains("in testing mode: not enforced"), "{w}");
    assert!(
        w.contains("MTA-STS testing: MX mx1.walk.test not matched"),
        "{w}"
    );
}
