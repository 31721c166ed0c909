//! The calm transcript layout (report/human.rs), through the binary against the loopback lab
//! (tests/support/lab.rs): a finding that is not the failure is one ` !  ` line in place and
//! explained under "Findings:"; the failure is explained once, under the verdict. Nets
//! 160-169 of 127.0.0.0/8.

#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/lab.rs"]
mod lab;
mod support;

use lab::{Lab, FABRIKAM};
use support::bin::Run;

/// `mxtrace probe` of the lab's Postfix MX, without the lab CA unless `ca`: its certificate
/// then does not verify (an unknown CA), which report mode records and passes over.
async fn probe(lab: &Lab, ca: bool, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        "probe".into(),
        format!("127.0.{}.{FABRIKAM}:{}", lab.net, lab.port),
        "--tls-name".into(),
        "mx.fabrikam.com".into(),
        "--ehlo".into(),
        "probe.contoso.test".into(),
        "--from".into(),
        "user@contoso.com".into(),
    ];
    if ca {
        args.push("--tls-ca-file".into());
        args.push(lab.write("ca.pem", &lab.pki.ca_pem()).display().to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    lab::mxtrace_blocking(args).await
}

/// The time column and the client's port (support/bin.rs), the lab's port and dates
/// (support/lab.rs), and what a fresh certificate changes: its fingerprint and days left.
fn redact(r: &Run, lab: &Lab) -> String {
    let text = lab::redact(&support::bin::redact(&r.stdout), lab.port);
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("sha256 ") {
                return "      sha256   FINGERPRINT".to_string();
            }
            match (l.find(" to TIMESTAMP ("), l.find(" days left)")) {
                (Some(i), Some(_)) => format!("{} to TIMESTAMP (# days left)", &l[..i]),
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_is_one_line_in_place_and_explained_after_the_transcript() {
    let lab = lab::scenario_c(160).await;
    let r = probe(&lab, false, &["--rcpt", "user@fabrikam.com"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = redact(&r, &lab);
    insta::assert_snapshot!("unverified_certificate_passes", text);
    // The explanation is not in the dialogue: it comes once, after the TLS report.
    let findings = text.find("\nFindings:\n").expect("a Findings section");
    assert!(
        text.find("tls_failed layer tls").unwrap() > findings,
        "{text}"
    );
    assert_eq!(text.matches("cause: ").count(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_is_explained_once_beside_the_verdict() {
    let lab = lab::scenario_c(161).await;
    // Two recipients refused alike: the second points at the verdict's explanation.
    let r = probe(
        &lab,
        true,
        &["--rcpt", "a@elsewhere.test", "--rcpt", "b@elsewhere.test"],
    )
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let text = redact(&r, &lab);
    insta::assert_snapshot!("relay_denied_twice", text);
    assert!(!text.contains("Findings:"), "{text}");
    assert_eq!(text.matches("cause: ").count(), 1, "{text}");
    let verdict = text.find("\nVerdict: FAIL").unwrap();
    assert!(text.find("cause: ").unwrap() > verdict, "{text}");
}
