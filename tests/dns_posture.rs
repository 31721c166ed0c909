//! `mxtrace dns`: a domain's mail posture against the lab's DNS server on loopback (no other
//! server is ever asked: the resolver is always given). Edge cases run the engine directly;
//! the human output is pinned by a snapshot and the JSON shape and exit codes through the binary.

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

use dns_support::TestDns;
use mxtrace_core::mta_sts::cache::{self as mta_sts_cache, CachedPolicy};
use mxtrace_core::mta_sts::{sender_policy, FetchError, FetchOptions, SenderPolicy};
use mxtrace_core::posture::{posture, PostureOptions};
use mxtrace_lab::dns::zone_text as zone;
use mxtrace_net::dns::{Dns, ResolverChoice};
use mxtrace_proto::model::posture::PolicySource;
use mxtrace_proto::model::posture::{PostureReport, Severity, Status};
use policy::{not_found, ok_policy, policy_server, PolicyServer};

/// A 2048-bit RSA public key (SubjectPublicKeyInfo, base64), made with openssl for these tests.
const KEY_2048: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnAqDlqJ/jX+XSB+YB8RfnclH/YjkO5Vc91X86gH8OpQywoEzwfxRZEr5NdBJXzfEtjNl+LjRMQ4ElJR8Yzm8YU2rW/1U3jlR9Vk2xIUdupZuNcH2Gz/Ixk7Cp3MTCGt2Mczo9ls1janE/JWm/IIcznL3bYdBJCFgM8LjPOW39cZKM0Zgg6no6tfwssivsguGfDOhhP2UqacMUHbMzRekdxfpjEwKPU2hvkZXZOIpn0SRI0hCU9rCipHyoaqQs2IwaA++jbygkj3jn80EqJSwYtPEEQhIzHuMqZz6B4y/sF8i9muwrFjuUEWm1r9v9VRLoEU81JV4gI1C1e609RzZawIDAQAB";
/// A 512-bit one: too small for any receiver (RFC 8301 3.2).
const KEY_512: &str = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAOPHcKHApoAuEBwtnBAAKsdPsAoH4882CbNxYGKxc0JjkRilhSpTLrnYATu7ETJYTG4Tj7BzIGMXX3SU8IVvyNECAwEAAQ==";

/// contoso.test: Exchange Online MX, SPF through an include, DMARC p=none, selector1 good and
/// selector2 dangling, TLS-RPT, reverse DNS confirmed; 192.0.2.7 is its sending address.
fn contoso_zones() -> Vec<String> {
    vec![
        zone(
            "contoso.test",
            "@ MX 10 contoso-test.mail.protection.outlook.com.\n\
             @ TXT \"v=spf1 include:spf.protection.outlook.com include:_spf.contoso.test ~all\"\n\
             _spf TXT \"v=spf1 ip4:192.0.2.0/28 -all\"\n\
             _dmarc TXT \"v=DMARC1; p=none; rua=mailto:dmarc@contoso.test\"\n\
             selector1._domainkey CNAME selector1-contoso-test._domainkey.contoso.onmicrosoft.com.\n\
             selector2._domainkey CNAME selector2-contoso-test._domainkey.contoso.onmicrosoft.com.\n\
             _smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tls@contoso.test\"\n\
             out A 192.0.2.7",
        ),
        zone(
            "onmicrosoft.com",
            &format!("selector1-contoso-test._domainkey.contoso TXT \"v=DKIM1; k=rsa; \" {}", split_txt(KEY_2048)),
        ),
        zone(
            "outlook.com",
            "spf.protection TXT \"v=spf1 ip4:40.92.0.0/15 -all\"\n\
             contoso-test.mail.protection A 192.0.2.10",
        ),
        zone(
            "2.0.192.in-addr.arpa",
            "10 PTR contoso-test.mail.protection.outlook.com.\n7 PTR out.contoso.test.\n\
             9 PTR nowhere.contoso.test.",
        ),
        zone(
            "bl.test",
            "7.2.0.192 A 127.0.0.2\n7.2.0.192 TXT \"listed for testing\"",
        ),
        zone("zen.test", "*.2.0.192 A 127.255.255.254"),
        zone(
            "clean.test",
            "@ TXT \"v=spf1 -all\"\n_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@clean.test\"",
        ),
    ]
}

/// `p=` as quoted strings of at most 200 characters (a TXT string holds 255).
fn split_txt(s: &str) -> String {
    let pieces: Vec<String> = s
        .as_bytes()
        .chunks(200)
        .enumerate()
        .map(|(i, c)| {
            let c = std::str::from_utf8(c).unwrap();
            if i == 0 {
                format!("\"p={c}\"")
            } else {
                format!("\"{c}\"")
            }
        })
        .collect();
    pieces.join(" ")
}

async fn run(dns: &TestDns, domain: &str, f: impl FnOnce(&mut PostureOptions)) -> PostureReport {
    let mut o = PostureOptions::new(domain, ResolverChoice::Server(dns.addr));
    o.dns_timeout = std::time::Duration::from_secs(2);
    f(&mut o);
    posture(&o).await.unwrap()
}

fn causes(findings: &[mxtrace_proto::model::posture::Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{:?}: {}", f.severity, f.diagnosis.cause))
        .collect::<Vec<_>>()
        .join("\n")
}

fn has(findings: &[mxtrace_proto::model::posture::Finding], sev: Severity, text: &str) -> bool {
    findings
        .iter()
        .any(|f| f.severity == sev && f.diagnosis.cause.contains(text))
}

#[tokio::test]
async fn contoso_posture_section_by_section() {
    let zones = contoso_zones();
    let refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let dns = TestDns::start(&refs, &[]).await;
    let r = run(&dns, "contoso.test", |o| {
        o.sending_ip = Some("192.0.2.7".parse().unwrap());
        o.dnsbl_zones = vec!["bl.test".into(), "zen.test".into()];
    })
    .await;
    assert_eq!(r.mx, ["contoso-test.mail.protection.outlook.com"]);
    // SPF: two includes, both walked; the sending address passes through _spf.
    assert_eq!(
        r.spf.section.status,
        Some(Status::Pass),
        "{}",
        causes(&r.spf.section.findings)
    );
    assert_eq!(r.spf.dns_lookups, 2);
    assert_eq!(r.spf.void_lookups, 0);
    assert_eq!(r.spf.all.as_deref(), Some("~all"));
    let tree = r.spf.tree.as_ref().unwrap();
    let kids: Vec<&str> = tree.children.iter().map(|c| c.domain.as_str()).collect();
    assert_eq!(kids, ["spf.protection.outlook.com", "_spf.contoso.test"]);
    assert_eq!(r.spf.sending_ip.as_ref().unwrap().result, "pass");
    // DMARC p=none: flagged, not failed.
    assert_eq!(r.dmarc.section.status, Some(Status::Warn));
    assert_eq!(r.dmarc.source.as_deref(), Some("domain"));
    assert!(has(&r.dmarc.section.findings, Severity::Warning, "p=none"));
    // DKIM: selector1 resolves to a 2048-bit key, selector2 dangles.
    let states: Vec<(&str, &str)> = r
        .dkim
        .selectors
        .iter()
        .map(|d| (d.selector.as_str(), d.state.as_str()))
        .collect();
    assert_eq!(states, [("selector1", "found"), ("selector2", "dangling")]);
    assert_eq!(r.dkim.selectors[0].key_bits, Some(2048));
    assert_eq!(r.dkim.section.status, Some(Status::Fail));
    assert_eq!(r.tls_rpt.rua, ["mailto:tls@contoso.test"]);
    assert_eq!(r.mta_sts.section.status, Some(Status::Missing));
    // Reverse DNS: the MX address and the sending address are both forward-confirmed.
    let fc: Vec<Option<bool>> = r.rdns.addresses.iter().map(|a| a.address.fcrdns).collect();
    assert_eq!(fc, [Some(true), Some(true)]);
    // Blocklists: listed in one, refused (not listed) by the other.
    let b = r.dnsbl.as_ref().unwrap();
    let st: Vec<&str> = b.results.iter().map(|x| x.state.as_str()).collect();
    assert_eq!(st, ["listed", "refused"]);
    assert!(has(
        &b.section.findings,
        Severity::Warning,
        "refused the query"
    ));
    assert!(!r.verdict.passed);
    assert_eq!(r.verdict.errors, 2, "{}", r.verdict.summary);
}

/// The SPF and DMARC edge cases of issue 13, one zone each.
fn edge_zones() -> Vec<String> {
    let mut includes = String::from("@ TXT \"v=spf1");
    let mut leaves = String::new();
    for i in 1..=11 {
        includes.push_str(&format!(" include:i{i}.many.test"));
        leaves.push_str(&format!("i{i} TXT \"v=spf1 ip4:192.0.2.{i} -all\"\n"));
    }
    includes.push_str(" -all\"\n");
    vec![
        zone(
            "twice.test",
            "@ TXT \"v=spf1 -all\"\n@ TXT \"v=spf1 mx -all\"\n\
             _dmarc TXT \"v=DMARC1; p=reject\"",
        ),
        zone("many.test", &format!("{includes}{leaves}")),
        zone(
            "void.test",
            "@ TXT \"v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test ?all\"",
        ),
        zone(
            "loop.test",
            "@ TXT \"v=spf1 include:b.loop.test -all\"\nb TXT \"v=spf1 include:loop.test -all\"",
        ),
        zone(
            "open.test",
            "@ TXT \"v=spf1 +all\"\n\
             _dmarc TXT \"v=DMARC1; p=maybe; pct=150; rua=https://x.test\"",
        ),
        // The organisational domain's record covers its subdomains.
        zone(
            "fabrikam.test",
            "@ TXT \"v=spf1 -all\"\n_dmarc TXT \"v=DMARC1; p=reject; sp=quarantine\"\n\
             mail TXT \"v=spf1 ip4:192.0.2.0/24 -all\"",
        ),
        zone(
            "weak.test",
            &format!(
                "@ MX 0 weak-test.mail.protection.outlook.com.\n@ TXT \"v=spf1 -all\"\n\
                 s512._domainkey TXT \"v=DKIM1; p={KEY_512}\"\n\
                 gone._domainkey TXT \"v=DKIM1; p=\""
            ),
        ),
        // DKIM selector aliases: two hops to a key, a dangling chain, a loop, nine hops.
        zone(
            "chain.test",
            &format!(
                "two._domainkey CNAME a.keys.chain.test.\na.keys CNAME b.keys.chain.test.\n\
                 b.keys TXT \"v=DKIM1; k=rsa; \" {}\n\
                 dangle._domainkey CNAME x.keys.chain.test.\nx.keys CNAME y.keys.chain.test.\n\
                 loop._domainkey CNAME l1.keys.chain.test.\nl1.keys CNAME l2.keys.chain.test.\n\
                 l2.keys CNAME l1.keys.chain.test.\n\
                 deep._domainkey CNAME d1.keys.chain.test.\n{}",
                split_txt(KEY_2048),
                (1..=9)
                    .map(|i| format!("d{i}.keys CNAME d{}.keys.chain.test.\n", i + 1))
                    .collect::<String>()
            ),
        ),
    ]
}

async fn edge(domain: &str, f: impl FnOnce(&mut PostureOptions)) -> PostureReport {
    let zones = edge_zones();
    let refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let dns = TestDns::start(&refs, &[]).await;
    run(&dns, domain, f).await
}

#[tokio::test]
async fn more_than_one_spf_record_is_a_permerror() {
    let r = edge("twice.test", |_| {}).await;
    assert_eq!(r.spf.section.status, Some(Status::Fail));
    assert!(
        has(&r.spf.section.findings, Severity::Error, "2 SPF records"),
        "{}",
        causes(&r.spf.section.findings)
    );
    assert_eq!(r.dmarc.section.status, Some(Status::Pass));
}

#[tokio::test]
async fn over_ten_lookups_and_void_lookups_are_counted() {
    let r = edge("many.test", |_| {}).await;
    assert_eq!(r.spf.dns_lookups, 11);
    assert!(
        has(&r.spf.section.findings, Severity::Error, "11 DNS lookups"),
        "{}",
        causes(&r.spf.section.findings)
    );
    let r = edge("void.test", |_| {}).await;
    assert_eq!(r.spf.void_lookups, 3);
    assert!(has(
        &r.spf.section.findings,
        Severity::Error,
        "void lookups"
    ));
    assert!(has(&r.spf.section.findings, Severity::Warning, "?all"));
}

#[tokio::test]
async fn include_loops_end_with_a_finding() {
    let r = edge("loop.test", |_| {}).await;
    assert!(
        has(&r.spf.section.findings, Severity::Error, "include loop"),
        "{}",
        causes(&r.spf.section.findings)
    );
    let b = &r.spf.tree.as_ref().unwrap().children[0];
    assert_eq!(b.children[0].error.as_deref(), Some("loop"));
}

#[tokio::test]
async fn plus_all_dmarc_syntax_errors_and_sending_ip_results() {
    let r = edge("open.test", |o| {
        o.sending_ip = Some("198.51.100.1".parse().unwrap())
    })
    .await;
    assert!(has(&r.spf.section.findings, Severity::Error, "+all"));
    assert_eq!(r.spf.sending_ip.as_ref().unwrap().result, "pass");
    let d = causes(&r.dmarc.section.findings);
    assert!(
        d.contains("p=maybe") && d.contains("pct=150") && d.contains("mailto"),
        "{d}"
    );
    assert_eq!(r.dmarc.section.status, Some(Status::Fail));
    let r = edge("mail.fabrikam.test", |o| {
        o.sending_ip = Some("198.51.100.1".parse().unwrap())
    })
    .await;
    assert_eq!(r.spf.sending_ip.as_ref().unwrap().result, "fail");
    assert!(has(
        &r.spf.section.findings,
        Severity::Error,
        "198.51.100.1"
    ));
    assert_eq!(r.dmarc.source.as_deref(), Some("organizational_domain"));
    assert_eq!(r.dmarc.found_at.as_deref(), Some("_dmarc.fabrikam.test"));
    assert_eq!(r.dmarc.sp.as_deref(), Some("quarantine"));
}

#[tokio::test]
async fn eop_mx_without_eop_include_and_weak_dkim_keys() {
    let r = edge("weak.test", |o| {
        o.dkim_selectors = vec!["s512".into(), "gone".into()];
    })
    .await;
    assert!(has(
        &r.spf.section.findings,
        Severity::Warning,
        "spf.protection.outlook.com"
    ));
    let states: Vec<&str> = r.dkim.selectors.iter().map(|d| d.state.as_str()).collect();
    assert_eq!(states, ["missing", "missing", "found", "revoked"]);
    assert_eq!(r.dkim.selectors[2].key_bits, Some(512));
    assert!(
        has(&r.dkim.section.findings, Severity::Error, "512 bits"),
        "{}",
        causes(&r.dkim.section.findings)
    );
}

#[tokio::test]
async fn dkim_cname_chains_are_followed_with_loops_and_depth_bounded() {
    let r = edge("chain.test", |o| {
        o.dkim_selectors = ["two", "dangle", "loop", "deep"].map(String::from).to_vec();
    })
    .await;
    let f = causes(&r.dkim.section.findings);
    let got: Vec<(&str, &str, usize)> = r
        .dkim
        .selectors
        .iter()
        .map(|d| (d.selector.as_str(), d.state.as_str(), d.chain.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("selector1", "missing", 0),
            ("selector2", "missing", 0),
            ("two", "found", 2),
            ("dangle", "dangling", 2),
            ("loop", "cname_loop", 3),
            ("deep", "cname_too_deep", 9),
        ],
        "{f}"
    );
    let two = &r.dkim.selectors[2];
    assert_eq!(two.chain, ["a.keys.chain.test", "b.keys.chain.test"]);
    assert_eq!(two.cname.as_deref(), Some("a.keys.chain.test"));
    assert_eq!(two.key_bits, Some(2048));
    assert_eq!(
        r.dkim.selectors[4].chain.last().unwrap(),
        "l1.keys.chain.test"
    );
    let errors = |text: &str| has(&r.dkim.section.findings, Severity::Error, text);
    assert!(
        errors("(through x.keys.chain.test -> y.keys.chain.test)"),
        "{f}"
    );
    assert!(errors("loops back"), "{f}");
    assert!(errors("longer than 8 aliases"), "{f}");
    assert_eq!(r.dkim.section.status, Some(Status::Fail));
    // The human output shows the whole chain.
    let human = human(&r);
    assert!(
        human.contains("two._domainkey.chain.test -> a.keys.chain.test -> b.keys.chain.test: found, rsa 2048 bits"),
        "{human}"
    );
}

fn human(r: &PostureReport) -> String {
    mxtrace_render::posture::render_human(r, mxtrace_render::style::Style::new(false))
}

/// Runs the binary (blocking) while the test's DNS server keeps answering on this runtime.
async fn cli(args: Vec<String>) -> bin::Run {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        bin::mxtrace(&a, &[])
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_output_json_shape_and_exit_codes() {
    let zones = contoso_zones();
    let refs: Vec<&str> = zones.iter().map(String::as_str).collect();
    let dns = TestDns::start(&refs, &[]).await;
    let base = |extra: &[&str]| {
        let mut v: Vec<String> = ["dns", "contoso.test", "--resolver", &dns.resolver()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let flags = [
        "--sending-ip",
        "192.0.2.7",
        "--dnsbl-zone",
        "bl.test",
        "--dnsbl-zone",
        "zen.test",
    ];
    let r = cli(base(&flags)).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    insta::assert_snapshot!("dns_contoso_human", bin::redact_ports(&r.stdout));
    let mut json_flags = flags.to_vec();
    json_flags.push("--json");
    let r = cli(base(&json_flags)).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["command"], "dns");
    // Top-level keys in this order (the pretty JSON has them at two spaces of indent).
    let order = [
        "schema_version",
        "command",
        "version",
        "domain",
        "resolver",
        "mx",
        "mx_error",
        "spf",
        "dmarc",
        "dkim",
        "mta_sts",
        "tls_rpt",
        "dane",
        "rdns",
        "dnsbl",
        "verdict",
    ];
    let found: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  \"")?.split_once('"').map(|(k, _)| k))
        .collect();
    assert_eq!(found, order);
    assert_eq!(j["spf"]["status"], "pass");
    assert_eq!(j["spf"]["dns_lookups"], 2);
    assert_eq!(j["spf"]["sending_ip"]["result"], "pass");
    assert_eq!(j["dmarc"]["findings"][0]["severity"], "warning");
    assert_eq!(
        j["dmarc"]["findings"][0]["diagnosis"]["category"],
        "spf_dkim_dmarc_failure"
    );
    assert_eq!(j["dmarc"]["findings"][0]["diagnosis"]["layer"], "policy");
    assert_eq!(j["dkim"]["selectors"][1]["state"], "dangling");
    assert_eq!(j["dnsbl"]["results"][0]["state"], "listed");
    assert_eq!(
        j["dnsbl"]["findings"][0]["diagnosis"]["category"],
        "ip_blocklisted"
    );
    assert_eq!(j["verdict"]["passed"], false);
    // The JSON reads back into the model.
    let _: PostureReport = serde_json::from_value(j).unwrap();
    // A posture without errors passes: SPF -all and DMARC p=reject, optional records absent.
    let r = cli(vec![
        "dns".into(),
        "clean.test".into(),
        "--resolver".into(),
        dns.resolver(),
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("Verdict: PASS no errors"), "{}", r.stdout);
    let r = cli(vec![
        "dns".into(),
        "contoso.test".into(),
        "--resolver".into(),
        "nowhere".into(),
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let missing_ca = base(&["--tls-ca-file", "/nonexistent/ca.pem"]);
    let r = cli(missing_ca).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--tls-ca-file"), "{}", r.stderr);
}

/// sts.test: an Exchange Online MX and both MX forms of Microsoft's migration; `id` is the
/// `_mta-sts` record's id. The policy host answers `answer`.
struct StsLab {
    dns: TestDns,
    pki: certs::TestPki,
    server: PolicyServer,
}

async fn sts_lab(id: &str, answer: Vec<u8>) -> StsLab {
    let z = zone(
        "sts.test",
        &format!(
            "@ MX 10 sts-test.mail.protection.outlook.com.\n@ MX 20 sts-test.l-v1.mx.microsoft.\n\
             @ TXT \"v=spf1 include:spf.protection.outlook.com -all\"\n\
             _mta-sts TXT \"v=STSv1; id={id}\"\nmta-sts A 127.0.0.1"
        ),
    );
    let dns = TestDns::start(&[&z], &[]).await;
    let pki = certs::TestPki::new();
    let server = policy_server(&pki, "mta-sts.sts.test", answer).await;
    StsLab { dns, pki, server }
}

impl StsLab {
    fn fetch(&self, cache: Option<&std::path::Path>) -> FetchOptions {
        FetchOptions {
            https_port: self.server.port,
            ca_file: Some(self.pki.ca_file().to_path_buf()),
            cache: cache.map(|c| c.to_path_buf()),
            ..Default::default()
        }
    }

    async fn posture(&self, cache: Option<&std::path::Path>) -> PostureReport {
        run(&self.dns, "sts.test", |o| o.mta_sts = self.fetch(cache)).await
    }

    /// What a sending MTA applies (the trace's view).
    async fn sender(&self, cache: &std::path::Path) -> Result<Option<SenderPolicy>, FetchError> {
        let dns = Dns::new(
            ResolverChoice::Server(self.dns.addr),
            std::time::Duration::from_secs(2),
        )
        .unwrap();
        sender_policy(&dns, "sts.test", &self.fetch(Some(cache))).await
    }
}

async fn sts(id: &str, answer: Vec<u8>) -> PostureReport {
    sts_lab(id, answer).await.posture(None).await
}

/// A wildcard covers one label (RFC 8461 4.1): `*.mx.microsoft` would not match
/// `sts-test.l-v1.mx.microsoft`.
const BOTH_MX: &str = "version: STSv1\nmode: enforce\nmx: *.mail.protection.outlook.com\nmx: *.l-v1.mx.microsoft\nmax_age: 604800\n";

#[tokio::test]
async fn mta_sts_enforce_policy_matching_every_mx() {
    let r = sts("20261129a", ok_policy(BOTH_MX)).await;
    let m = &r.mta_sts;
    assert_eq!(
        m.section.status,
        Some(Status::Pass),
        "{}",
        causes(&m.section.findings)
    );
    assert_eq!(m.id.as_deref(), Some("20261129a"));
    let p = m.policy.as_ref().unwrap();
    assert_eq!((p.mode.as_str(), p.max_age), ("enforce", 604800));
    assert!(m.unmatched_mx.is_empty());
}

#[tokio::test]
async fn mta_sts_wrong_mx_pattern_enforce_vs_testing() {
    let enforce =
        "version: STSv1\nmode: enforce\nmx: *.mail.protection.outlook.com\nmax_age: 604800\n";
    let r = sts("1", ok_policy(enforce)).await;
    assert_eq!(r.mta_sts.unmatched_mx, ["sts-test.l-v1.mx.microsoft"]);
    assert!(has(
        &r.mta_sts.section.findings,
        Severity::Error,
        "not matched"
    ));
    let testing = enforce.replace("enforce", "testing");
    let r = sts("1", ok_policy(&testing)).await;
    assert!(has(
        &r.mta_sts.section.findings,
        Severity::Warning,
        "not matched"
    ));
    assert_eq!(r.mta_sts.section.status, Some(Status::Warn));
}

#[tokio::test]
async fn mta_sts_redirect_size_cap_and_bad_id_fail() {
    let redirect = b"HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.test/p.txt\r\nContent-Length: 0\r\n\r\n".to_vec();
    let r = sts("1", redirect).await;
    assert!(
        has(&r.mta_sts.section.findings, Severity::Error, "redirect"),
        "{}",
        causes(&r.mta_sts.section.findings)
    );
    let big = format!("{BOTH_MX}{}", "# padding\n".repeat(7000));
    let r = sts("1", ok_policy(&big)).await;
    assert!(
        has(&r.mta_sts.section.findings, Severity::Error, "size cap"),
        "{}",
        causes(&r.mta_sts.section.findings)
    );
    let r = sts("2026-11-29", ok_policy(BOTH_MX)).await;
    assert!(has(
        &r.mta_sts.section.findings,
        Severity::Error,
        "no valid id="
    ));
}

/// RFC 8461 5.1 with `--mta-sts-cache`: a fetched policy is stored; a failed fetch falls
/// back on the valid cached one; the same id uses the cache; a new id is fetched; an
/// expired entry is ignored.
#[tokio::test]
async fn mta_sts_cache_fallback_refetch_and_expiry() {
    let pki = certs::TestPki::new();
    let cache = pki.dir().join("mta-sts-cache.json");
    // Fetched and stored.
    let lab = sts_lab("1", ok_policy(BOTH_MX)).await;
    let r = lab.posture(Some(&cache)).await;
    assert_eq!(r.mta_sts.policy_source, Some(PolicySource::Fetched));
    let stored = mta_sts_cache::lookup(&cache, "sts.test").unwrap().unwrap();
    assert_eq!((stored.id.as_str(), stored.max_age), ("1", 604800));
    // The fetch fails: the cached policy is shown (and still judged), the failure reported.
    let lab = sts_lab("1", not_found()).await;
    let r = lab.posture(Some(&cache)).await;
    let f = causes(&r.mta_sts.section.findings);
    assert_eq!(r.mta_sts.policy_source, Some(PolicySource::Cache), "{f}");
    assert_eq!(r.mta_sts.policy.as_ref().unwrap().mode, "enforce");
    assert!(
        has(&r.mta_sts.section.findings, Severity::Error, "not 200"),
        "{f}"
    );
    assert!(
        has(
            &r.mta_sts.section.findings,
            Severity::Info,
            "using the cached policy (id 1"
        ),
        "{f}"
    );
    let human = human(&r);
    assert!(
        human.contains("policy (from the cache): mode enforce"),
        "{human}"
    );
    // A sender: same id, fetch failing: the cache, without complaint.
    let p = lab.sender(&cache).await.unwrap().unwrap();
    assert!(p.cached.is_some() && p.notes.is_empty(), "{:?}", p.notes);
    // A sender: a new id with its fetch failing: the cached policy, with the failure noted.
    let lab = sts_lab("2", not_found()).await;
    let p = lab.sender(&cache).await.unwrap().unwrap();
    assert_eq!(p.cached.as_ref().map(|c| c.id.as_str()), Some("1"));
    assert!(
        p.notes[0].contains("the policy fetch failed"),
        "{:?}",
        p.notes
    );
    // A new id that fetches: the new policy replaces the cached one.
    let testing = BOTH_MX.replace("enforce", "testing");
    let lab = sts_lab("2", ok_policy(&testing)).await;
    let p = lab.sender(&cache).await.unwrap().unwrap();
    assert!(p.cached.is_none());
    assert_eq!(
        (p.policy.mode.as_str(), p.id.as_deref()),
        ("testing", Some("2"))
    );
    let stored = mta_sts_cache::lookup(&cache, "sts.test").unwrap().unwrap();
    assert_eq!(
        (stored.id.as_str(), stored.policy.mode.as_str()),
        ("2", "testing")
    );
    // Expired (fetched in 1970): ignored, so a failed fetch means no policy.
    let old = CachedPolicy {
        fetched_at: 1000,
        ..stored
    };
    mta_sts_cache::store(&cache, "sts.test", old).unwrap();
    let lab = sts_lab("3", not_found()).await;
    let err = lab.sender(&cache).await.unwrap_err();
    assert!(matches!(err, FetchError::Status(_)), "{err}");
    assert!(err.to_string().contains("not 200"), "{err}");
    let r = lab.posture(Some(&cache)).await;
    assert_eq!(r.mta_sts.policy_source, None);
    // The flag on `dns`.
    use clap::Parser;
    let cli = mxtrace::cli::Cli::try_parse_from([
        "mxtrace",
        "dns",
        "sts.test",
        "--mta-sts-cache",
        "c.json",
    ])
    .unwrap();
    let mxtrace::cli::Command::Dns(d) = cli.command else {
        panic!("not dns")
    };
    assert_eq!(d.to_options().mta_sts.cache, Some("c.json".into()));
}
