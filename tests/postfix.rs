//! Real peer: the mxtrace binary against a private Postfix on loopback (tests/support/postfix).
//! One test owns the lab, so it is started once and always stopped (by its pid) on drop.

#[path = "support/dns.rs"]
mod dns_support;
mod support;

use support::bin::{mxtrace, stages};
use support::postfix::PostfixLab;

#[test]
fn postfix_real_peer() {
    let Some(lab) = PostfixLab::start() else {
        return;
    };
    let smtp = lab.target("PORT_SMTP");
    let ca = lab.get("CA_FILE").to_string();
    let tls = [
        "--tls-name",
        "mx.contoso.test",
        "--tls-ca-file",
        ca.as_str(),
    ];
    let envelope = |rcpt: &'static str| {
        vec![
            "--ehlo",
            "probe.fabrikam.test",
            "--from",
            "probe@fabrikam.test",
            "--rcpt",
            rcpt,
        ]
    };
    let probe = |target: &str, extra: &[&str]| {
        let mut args = vec!["probe", target, "--json", "--stage-timeout", "10s"];
        args.extend_from_slice(extra);
        mxtrace(&args, &[])
    };

    // A valid recipient over verified STARTTLS: exit 0, 250 2.1.5, RSET then QUIT.
    let args: Vec<&str> = tls
        .iter()
        .copied()
        .chain(envelope("user@contoso.test"))
        .collect();
    let r = probe(&smtp, &args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let rcpt = stages(&j, "rcpt_to");
    assert_eq!(rcpt[0]["reply"]["code"], 250);
    assert_eq!(rcpt[0]["reply"]["enhanced"], "2.1.5");
    assert_eq!(j["tls"]["verified"], true, "{}", j["tls"]);
    assert_eq!(j["capabilities"]["before_tls"]["starttls"], true);
    let names: Vec<&str> = j["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert!(names.ends_with(&["rcpt_to", "rset", "quit"]), "{names:?}");
    assert!(!names.contains(&"data"));

    // Unknown recipient: 550 5.1.1, exit 1.
    let args: Vec<&str> = tls
        .iter()
        .copied()
        .chain(envelope("nobody@contoso.test"))
        .collect();
    let r = probe(&smtp, &args);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    let rcpt = stages(&j, "rcpt_to")[0];
    assert_eq!(rcpt["reply"]["code"], 550);
    assert_eq!(rcpt["reply"]["enhanced"], "5.1.1");
    assert_eq!(rcpt["diagnosis"]["category"], "recipient_unknown");
    assert_eq!(j["verdict"]["failed_stage"], "rcpt_to");

    // Relay attempt to an outside domain: 554 5.7.1 Relay access denied, exit 1.
    let args: Vec<&str> = tls
        .iter()
        .copied()
        .chain(envelope("someone@fabrikam.test"))
        .collect();
    let r = probe(&smtp, &args);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    let rcpt = stages(&j, "rcpt_to")[0];
    assert_eq!(rcpt["reply"]["code"], 554);
    assert!(rcpt["reply"]["lines"][0]
        .as_str()
        .unwrap()
        .contains("Relay access denied"));
    assert_eq!(rcpt["diagnosis"]["category"], "relay_denied");

    // The TLS-required listener refuses MAIL before STARTTLS: 530 5.7.0, exit 1...
    let tlsreq = lab.target("PORT_TLSREQ");
    let args: Vec<&str> = ["--starttls", "never"]
        .into_iter()
        .chain(envelope("user@contoso.test"))
        .collect();
    let r = probe(&tlsreq, &args);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    let mail = stages(&j, "mail_from")[0];
    assert_eq!(mail["reply"]["code"], 530);
    assert!(mail["reply"]["lines"][0]
        .as_str()
        .unwrap()
        .contains("Must issue a STARTTLS command first"));
    assert_eq!(mail["diagnosis"]["category"], "tls_required");
    // ...and accepts with STARTTLS required.
    let args: Vec<&str> = ["--starttls", "require"]
        .into_iter()
        .chain(tls)
        .chain(envelope("user@contoso.test"))
        .collect();
    let r = probe(&tlsreq, &args);
    assert_eq!(r.code, 0, "{}", r.stdout);

    // Implicit TLS (465-style): the full TLS report.
    let smtps = lab.target("PORT_SMTPS");
    let args: Vec<&str> = ["--tls-implicit"].into_iter().chain(tls).collect();
    let r = probe(&smtps, &args);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let j = r.json();
    assert_eq!(j["target"]["tls_mode"], "implicit");
    assert_eq!(j["tls"]["version"], "TLSv1.3");
    assert!(j["tls"]["cipher"]
        .as_str()
        .is_some_and(|c| c.starts_with("TLS13_")));
    assert!(j["tls"]["key_exchange_group"].is_string());
    let leaf = &j["tls"]["chain"][0];
    assert!(leaf["subject"]
        .as_str()
        .unwrap()
        .contains("mx.contoso.test"));
    assert_eq!(leaf["sans"][0], "mx.contoso.test");
    assert!(leaf["days_left"].as_i64().unwrap() > 0);
    assert_eq!(leaf["sha256"].as_str().unwrap().len(), 95);
    assert_eq!(stages(&j, "tls_handshake")[0]["outcome"], "ok");

    // --tls-verify strict against the private CA: fails without trusting it, passes with it.
    let r = probe(
        &smtp,
        &["--tls-name", "mx.contoso.test", "--tls-verify", "strict"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    let hs = stages(&j, "tls_handshake")[0];
    assert_eq!(hs["error"]["kind"], "tls");
    assert!(
        hs["error"]["message"]
            .as_str()
            .unwrap()
            .contains("trusted CA"),
        "{hs}"
    );
    assert_eq!(j["tls"]["verified"], false);
    let args: Vec<&str> = tls
        .iter()
        .copied()
        .chain(["--tls-verify", "strict"])
        .collect();
    assert_eq!(probe(&smtp, &args).code, 0);

    // Report mode (the default) without the CA: the probe goes on and passes, with a warning.
    let r = probe(&smtp, &["--tls-name", "mx.contoso.test"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let j = r.json();
    assert_eq!(j["tls"]["verified"], false);
    assert!(j["verdict"]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("certificate not verified"));

    // --data really delivers one message, which carries the probe id.
    let args: Vec<&str> = tls
        .iter()
        .copied()
        .chain(envelope("user@contoso.test"))
        .chain(["--data"])
        .collect();
    let r = probe(&smtp, &args);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let j = r.json();
    let eod = stages(&j, "end_of_data")[0];
    assert_eq!(eod["reply"]["code"], 250);
    let id = j["probe_id"].as_str().unwrap();
    // Postfix queues first and delivers a moment later: wait for it, bounded.
    let maildir = lab.dir.join("mail/contoso.test/user/new");
    let wanted = format!("X-Mxtrace-Probe: {id}");
    let mut delivered = false;
    for _ in 0..100 {
        delivered = std::fs::read_dir(&maildir).is_ok_and(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .any(|m| m.contains(&wanted))
        });
        if delivered {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        delivered,
        "no message with {wanted} in {}",
        maildir.display()
    );

    // Two recipients, one valid and one unknown: the verdict says what happened to each, and
    // with --data that the message reached the accepted one although the probe fails.
    let two = |data: bool| {
        let mut args: Vec<&str> = tls.to_vec();
        args.extend(["--from", "probe@fabrikam.test"]);
        args.extend([
            "--rcpt",
            "user@contoso.test",
            "--rcpt",
            "nobody@contoso.test",
        ]);
        if data {
            args.push("--data");
        }
        probe(&smtp, &args)
    };
    let r = two(false);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    let summary = j["verdict"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(
            "recipients: user@contoso.test accepted 250 2.1.5, nobody@contoso.test refused 550 5.1.1 (recipient_unknown)"
        ),
        "{summary}"
    );
    assert!(!summary.contains("delivered"), "{summary}");
    let list = j["recipients"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["address"], "user@contoso.test");
    assert_eq!(list[0]["status"], "accepted");
    assert_eq!(list[0]["delivered"], serde_json::Value::Null);
    assert_eq!(list[1]["status"], "refused");
    assert_eq!(list[1]["code"], 550);
    assert_eq!(list[1]["enhanced"], "5.1.1");
    assert_eq!(list[1]["category"], "recipient_unknown");
    let r = two(true);
    assert_eq!(
        r.code, 1,
        "a refused recipient fails the probe: {}",
        r.stdout
    );
    let j = r.json();
    let summary = j["verdict"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("failed at rcpt_to: 550 5.1.1"),
        "{summary}"
    );
    assert!(
        summary.contains("; message delivered to 1 of 2 recipients (end of data 250 2.0.0)"),
        "{summary}"
    );
    assert_eq!(j["recipients"][0]["delivered"], true);
    assert_eq!(j["recipients"][1]["delivered"], false);
    assert_eq!(stages(&j, "end_of_data")[0]["outcome"], "ok");

    // The human transcript reads like a telnet session.
    let r = mxtrace(
        &[
            "probe",
            &smtp,
            "--tls-name",
            "mx.contoso.test",
            "--tls-ca-file",
            &ca,
            "--rcpt",
            "nobody@contoso.test",
        ],
        &[],
    );
    assert_eq!(r.code, 1);
    for want in [
        "<-  220 mx.contoso.test ESMTP",
        " -> STARTTLS",
        " ~> RCPT TO:<nobody@contoso.test>",
        "<~  550 5.1.1 <nobody@contoso.test>: Recipient address rejected",
        "certificate verified",
        "Verdict: FAIL",
    ] {
        assert!(r.stdout.contains(want), "{want:?} not in:\n{}", r.stdout);
    }

    // `trace` through to the real peer: the lab's DNS server on loopback publishes
    // contoso.test's MX as the Postfix lab's address; the walk, TLS and RCPT are real.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let zone = format!(
        "$ORIGIN contoso.test.\n$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n\
         @ IN NS ns\n@ IN MX 10 mx\nmx IN A {}\n",
        lab.get("ADDR")
    );
    let dns = rt.block_on(dns_support::TestDns::start(&[&zone], &[]));
    let resolver = dns.resolver();
    let args: Vec<&str> = [
        "trace",
        "contoso.test",
        "--json",
        "--resolver",
        resolver.as_str(),
        "--port",
        lab.get("PORT_SMTP"),
        "--tls-ca-file",
        ca.as_str(),
        "--stage-timeout",
        "10s",
    ]
    .into_iter()
    .chain(envelope("user@contoso.test"))
    .collect();
    let r = mxtrace(&args, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let hop = &j["hops"][0];
    assert_eq!(hop["mx"][0]["host"], "mx.contoso.test");
    let probe = &hop["probes"][hop["decided_by"].as_u64().unwrap() as usize];
    assert_eq!(probe["banner_name"], "mx.contoso.test");
    assert_eq!(probe["report"]["tls"]["verified"], true);
    let rcpt = stages(&probe["report"], "rcpt_to")[0];
    assert_eq!(rcpt["reply"]["enhanced"], "2.1.5");
    drop(dns);
}
