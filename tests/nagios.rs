//! `--format nagios` through the binary against the loopback lab (tests/support/lab.rs): the
//! status line and perfdata of each state, and the exit codes 0/1/2/3 a monitor acts on.
//! Thresholds of 0s force WARNING/CRITICAL deterministically. Nets 150-159 of 127.0.0.0/8.

#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/lab.rs"]
mod lab;
mod support;

use lab::{mxtrace_blocking, Lab, FABRIKAM, RELAY};
use std::path::Path;
use support::bin::{mxtrace, Run};

/// `mxtrace probe 127.0.NET.HOST:PORT` as a monitor would run it, with the lab's CA and EHLO.
async fn probe(lab: &Lab, host: u8, extra: &[&str]) -> Run {
    let ca = lab.write("ca.pem", &lab.pki.ca_pem());
    let mut args: Vec<String> = [
        "probe".to_string(),
        format!("127.0.{}.{host}:{}", lab.net, lab.port),
        "--format".into(),
        "nagios".into(),
        "--tls-name".into(),
        "mx.fabrikam.com".into(),
        "--tls-ca-file".into(),
        ca.display().to_string(),
        "--ehlo".into(),
        "probe.contoso.test".into(),
        "--from".into(),
        "user@contoso.com".into(),
        "--connect-timeout".into(),
        "3s".into(),
        "--stage-timeout".into(),
        "5s".into(),
    ]
    .into();
    args.extend(extra.iter().map(|s| s.to_string()));
    mxtrace_blocking(args).await
}

/// The output with what changes from run to run replaced: the port, times (`0.001234s`,
/// `0.012s`) and the days left on the lab certificate (a year from the day it was issued).
fn shape(out: &str, port: u16) -> String {
    let out = out.replace(&format!(":{port}"), ":PORT");
    let mut shaped = String::new();
    let mut rest = out.as_str();
    while let Some(c) = rest.chars().next() {
        let days = ["cert ", "'cert_days'="]
            .iter()
            .find_map(|p| rest.strip_prefix(p).map(|r| (*p, r)));
        if let Some((p, r)) = days.filter(|(_, r)| r.starts_with(|c: char| c.is_ascii_digit())) {
            shaped.push_str(p);
            shaped.push('#');
            rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
            continue;
        }
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let decimals = match num.split_once('.') {
            Some((_, d)) if !d.contains('.') => d.len(),
            _ => 0,
        };
        if c.is_ascii_digit() && decimals >= 3 {
            shaped.push('#');
            rest = &rest[num.len()..];
            continue;
        }
        shaped.push(c);
        rest = &rest[c.len_utf8()..];
    }
    shaped
}

/// The perfdata the probes below write for their stages, without thresholds.
const STAGES: &str = "'connect'=#s;;;0 'banner'=#s;;;0 'ehlo'=#s;;;0 'starttls'=#s;;;0 \
                      'tls_handshake'=#s;;;0 'ehlo_tls'=#s;;;0 'mail_from'=#s;;;0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_status_line_and_perfdata() {
    let lab = lab::scenario_c(150).await;
    let r = probe(&lab, FABRIKAM, &["--rcpt", "user@fabrikam.com"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        shape(&r.stdout, lab.port),
        format!(
            "SMTP OK - 127.0.150.3:PORT 250 2.1.5 at rcpt_to in #s, TLS 1.3 verified, cert # \
             days | 'time'=#s;;;0 {STAGES} 'rcpt_to'=#s;;;0 'cert_days'=#d;;\n"
        )
    );
    assert_eq!(r.stdout.lines().count(), 1, "one line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_thresholds_warn_and_crit() {
    let lab = lab::scenario_c(151).await;
    // A stage over its warning limit: WARNING, the limit in the stage's perfdata.
    let r = probe(
        &lab,
        FABRIKAM,
        &[
            "--rcpt",
            "user@fabrikam.com",
            "--warning",
            "rcpt=0s",
            "--warning",
            "1h",
        ],
    )
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        shape(&r.stdout, lab.port),
        format!(
            "SMTP WARNING - 127.0.151.3:PORT 250 2.1.5 at rcpt_to in #s, TLS 1.3 verified, \
             cert # days; rcpt_to #s > 0s | 'time'=#s;3600;;0 {STAGES} 'rcpt_to'=#s;0;;0 \
             'cert_days'=#d;;\n"
        )
    );
    // Over the total's critical limit: CRITICAL, whatever the warning says.
    let r = probe(&lab, FABRIKAM, &["--warning", "0s", "--critical", "1ms"]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let line = shape(&r.stdout, lab.port);
    assert!(
        line.starts_with("SMTP CRITICAL - 127.0.151.3:PORT 250 2.1.0 at mail_from in #s, "),
        "{line}"
    );
    assert!(line.contains("; time #s > #s | 'time'=#s;0;#;0 "), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_and_5xx_are_critical() {
    let lab = lab::scenario_c(152).await;
    // Relay to a domain the MX does not serve: 5xx at RCPT, as check_smtp would see it.
    let r = probe(&lab, FABRIKAM, &["--rcpt", "user@elsewhere.test"]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let line = shape(&r.stdout, lab.port);
    assert!(
        line.starts_with("SMTP CRITICAL - 127.0.152.3:PORT 554 5.7.1 at rcpt_to (relay_denied) in #s, TLS 1.3 verified, cert # days | 'time'=#s;;;0 "),
        "{line}"
    );
    // Nothing listens: refused at connect, no TLS, only the connect stage measured.
    let r = probe(&lab, RELAY, &[]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        shape(&r.stdout, lab.port),
        "SMTP CRITICAL - 127.0.152.9:PORT refused at connect (connector_or_routing) in #s, \
         no TLS | 'time'=#s;;;0 'connect'=#s;;;0\n"
    );
    // A certificate threshold with no certificate at all is CRITICAL too.
    let r = probe(&lab, RELAY, &["--cert-warning", "30d"]).await;
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.contains("no TLS; no certificate to check |"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_days_thresholds() {
    let lab = lab::scenario_c(153).await;
    // The lab certificate has about 365 days left.
    let r = probe(
        &lab,
        FABRIKAM,
        &["--cert-warning", "30d", "--cert-critical", "14"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.ends_with(" 'cert_days'=364d;30:;14:\n")
            || r.stdout.ends_with(" 'cert_days'=365d;30:;14:\n"),
        "{}",
        r.stdout
    );
    let r = probe(
        &lab,
        FABRIKAM,
        &["--cert-warning", "400d", "--cert-critical", "14d"],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    let line = shape(&r.stdout, lab.port);
    assert!(
        line.contains(", cert # days; cert # days < 400 | "),
        "{line}"
    );
    assert!(line.ends_with(" 'cert_days'=#d;400:;14:\n"), "{line}");
    let r = probe(
        &lab,
        FABRIKAM,
        &["--cert-warning", "500", "--cert-critical", "400"],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        shape(&r.stdout, lab.port).contains("; cert # days < 400 | "),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_and_run_report_in_the_same_format() {
    let lab = lab::scenario_c(154).await;
    let r = mxtrace_blocking(vec![
        "trace".into(),
        "fabrikam.com".into(),
        "--resolver".into(),
        lab.dns.resolver(),
        "--port".into(),
        lab.port.to_string(),
        "--tls-ca-file".into(),
        lab.write("ca.pem", &lab.pki.ca_pem()).display().to_string(),
        "--from".into(),
        "user@contoso.com".into(),
        "--rcpt".into(),
        "user@fabrikam.com".into(),
        "--format".into(),
        "nagios".into(),
        "--critical".into(),
        "rcpt_to=1h".into(),
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let line = shape(&r.stdout, lab.port);
    assert!(
        line.starts_with("SMTP OK - fabrikam.com accepted by mx.fabrikam.com [127.0.154.3]: rcpt_to 250 2.1.5 in #s, TLS 1.3 verified, cert # days | 'time'=#s;;;0 'dns'=#s;;;0 'connect'=#s;;;0 "),
        "{line}"
    );
    assert!(
        line.contains(" 'rcpt_to'=#s;;3600;0 'cert_days'=#d;;\n"),
        "{line}"
    );

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/c-outbound-third-party.toml");
    let r = lab.run(&file, &["--format", "nagios"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let line = shape(&r.stdout, lab.port);
    assert!(
        line.starts_with(&format!(
            "SMTP OK - {} 7 of 7 expectations passed in #s, cert # days | 'time'=#s;;;0 'failed'=0;;;0;7 'hop1_connect'=#s;;;0 ",
            file.display()
        )),
        "{line}"
    );
    // An expectation not met is CRITICAL, with the first one that failed.
    let strict = lab.write(
        "cert.toml",
        "name = \"cert\"\n[[hop]]\nname = \"MX\"\ndomain = \"fabrikam.com\"\n\
         [hop.expect]\nreachable = true\ncertificate_min_days = 1000\n",
    );
    let r = lab.run(&strict, &["--format", "nagios"]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let line = shape(&r.stdout, lab.port);
    let status = line.split(" | ").next().unwrap();
    assert!(
        status.starts_with(&format!(
            "SMTP CRITICAL - {} 1 of 2 expectations failed, first MX/certificate_min_days: \
             certificate valid for at least 1000 more days (observed: ",
            strict.display()
        )),
        "{line}"
    );
    assert!(status.ends_with(" in #s, cert # days"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_dns_and_hostile_text_stay_one_safe_line() {
    let lab = lab::scenario_c(156).await;
    // A domain that does not exist: the trace fails in DNS, CRITICAL.
    let trace = |domain: &str| {
        vec![
            "trace".to_string(),
            domain.to_string(),
            "--resolver".into(),
            lab.dns.resolver(),
            "--port".into(),
            lab.port.to_string(),
            "--format".into(),
            "nagios".into(),
        ]
    };
    let r = mxtrace_blocking(trace("nowhere.fabrikam.com")).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with("SMTP CRITICAL - nowhere.fabrikam.com DNS: "),
        "{}",
        r.stdout
    );
    // A refusal quoting the recipient, whose local part holds a `|` (atext, RFC 5322 3.2.3):
    // the run's status line quotes the reply, with the `|` made safe.
    let file = lab.write(
        "relay.toml",
        "name = \"relay\"\n[[hop]]\nname = \"MX\"\nfrom = \"user@contoso.com\"\n\
         hosts = [\"mx.fabrikam.com\"]\nrcpt = [\"a|b@elsewhere.test\"]\n\
         [hop.expect]\nstage.rcpt_to = \"accepted\"\n",
    );
    let r = lab.run(&file, &["--format", "nagios"]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    let status = r.stdout.split(" | ").next().unwrap();
    assert!(status.starts_with("SMTP CRITICAL - "), "{}", r.stdout);
    assert!(status.contains("a/b@elsewhere.test"), "{}", r.stdout);
    assert_eq!(r.stdout.matches(" | ").count(), 1, "{}", r.stdout);
}

#[test]
fn bad_usage_and_configuration_are_unknown() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["probe", "127.0.0.1:25", "--format", "nagios", "--bogus"],
            "SMTP UNKNOWN - usage: unexpected argument '--bogus' found\n",
        ),
        (
            &["probe", "127.0.0.1:25", "--format=nagios", "--warning", "rcpt=fast"],
            "SMTP UNKNOWN - usage: invalid value 'rcpt=fast' for '--warning <[STAGE=]DURATION>': \"fast\" is not a duration (2s, 500ms, 1m): expected number at 0\n",
        ),
        (
            &["probe", "127.0.0.1:25", "--format", "nagios", "--warning", "bogus=1s"],
            "SMTP UNKNOWN - usage: invalid value 'bogus=1s' for '--warning <[STAGE=]DURATION>': unknown stage \"bogus\" (connect, banner, ehlo, helo, starttls, tls_handshake, ehlo_tls, auth, mail_from, rcpt_to, data, end_of_data; or mail, rcpt, tls, eod)\n",
        ),
        (
            &["explain", "550 5.1.1 unknown", "--format", "nagios"],
            "SMTP UNKNOWN - --format nagios applies to probe, trace and run\n",
        ),
        (
            &["run", "/nonexistent/scenario.toml", "--format", "nagios"],
            "SMTP UNKNOWN - ",
        ),
        (
            &["probe", "no such host:25", "--format", "nagios"],
            "SMTP UNKNOWN - ",
        ),
    ];
    for (args, want) in cases {
        let r = mxtrace(args, &[]);
        assert_eq!(r.code, 3, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.starts_with(want), "{args:?}: {}", r.stdout);
        assert_eq!(r.stdout.lines().count(), 1, "{args:?}: {}", r.stdout);
    }
    // Without --format nagios the thresholds mean nothing: a usage error (exit 2) as usual.
    let r = mxtrace(&["probe", "127.0.0.1:25", "--warning", "2s"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("need --format nagios"), "{}", r.stderr);
    // --help is not an error in any format.
    let r = mxtrace(&["probe", "--format", "nagios", "--help"], &[]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("Monitoring (--format nagios):"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_on_a_stage_never_reached_is_unknown() {
    let lab = lab::scenario_c(155).await;
    // No --data: the check has no end_of_data to measure, which a monitor must hear about.
    let r = probe(
        &lab,
        FABRIKAM,
        &["--rcpt", "user@fabrikam.com", "--warning", "eod=1s"],
    )
    .await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let line = shape(&r.stdout, lab.port);
    assert!(
        line.starts_with("SMTP UNKNOWN - 127.0.155.3:PORT 250 2.1.5 at rcpt_to in #s, TLS 1.3 verified, cert # days; no end_of_data stage to measure | "),
        "{line}"
    );
}
