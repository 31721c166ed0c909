//! `mxtrace dns`: a domain's mail posture against the lab's DNS server on loopback (no other
//! server is ever asked: the resolver is always given). Edge cases run the engine directly;
//! the human output is pinned by a snapshot and the JSON shape and exit codes through the binary.

#[path = "support/bin.rs"]
mod bin;
#[path = "support/dns.rs"]
mod dns_support;

use dns_support::TestDns;
use mxtrace_core::dns::ResolverChoice;
use mxtrace_core::lab::dns::zone_text as zone;
use mxtrace_core::posture::model::{PostureReport, Severity, Status};
use mxtrace_core::posture::{posture, PostureOptions};

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

fn causes(findings: &[mxtrace_core::posture::model::Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{:?}: {}", f.severity, f.diagnosis.cause))
        .collect::<Vec<_>>()
        .join("\n")
}

fn has(findings: &[mxtrace_core::posture::model::Finding], sev: Severity, text: &str) -> bool {
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
