//! `mxtrace roundtrip` against the real Postfix lab delivering by LMTP into a real Dovecot
//! (tests/support/postfix/README.md, "Mailboxes over IMAP"): delivered to the inbox, to
//! Junk, deferred past --within, bounced with the NDR read back, a wrong mailbox password
//! (nothing sent), and a mailbox holding other mail left as it was.

mod support;

use mxtrace_core::roundtrip::MailboxOptions;
use mxtrace_net::imap::{Arg, ImapConn};
use mxtrace_proto::mailbox::MailboxUrl;
use mxtrace_proto::secret::Secret;
use std::time::Duration;
use support::bin::{mxtrace, redact_ports, Run};
use support::postfix::PostfixLab;

const FROM: &str = "probe@fabrikam.test";

fn imaps(lab: &PostfixLab, user_key: &str) -> String {
    format!(
        "imaps://{}@{}:{}",
        lab.get(user_key),
        lab.get("ADDR"),
        lab.get("PORT_IMAPS")
    )
}

/// `mxtrace roundtrip` through the lab's port 25 into user@'s mailbox over IMAPS.
fn roundtrip(lab: &PostfixLab, from: &str, rcpt: &str, extra: &[&str]) -> Run {
    roundtrip_to(lab, from, rcpt, &imaps(lab, "IMAP_USER"), "MBOX_PW", extra)
}

fn roundtrip_to(
    lab: &PostfixLab,
    from: &str,
    rcpt: &str,
    mailbox: &str,
    pw: &str,
    extra: &[&str],
) -> Run {
    let via = lab.target("PORT_SMTP");
    let ca = lab.get("CA_FILE");
    let name = lab.get("TLS_NAME");
    let mut args = vec![
        "roundtrip",
        "--via",
        &via,
        "--from",
        from,
        "--rcpt",
        rcpt,
        "--mailbox",
        mailbox,
        "--mailbox-password-env",
        pw,
        "--mailbox-ca-file",
        ca,
        "--mailbox-tls-name",
        name,
        "--tls-ca-file",
        ca,
        "--tls-name",
        name,
    ];
    args.extend_from_slice(extra);
    mxtrace(
        &args,
        &[
            ("MBOX_PW", lab.get("IMAP_PASSWORD")),
            ("NDR_PW", lab.get("NDR_PASSWORD")),
            ("BAD_PW", "not-the-password"),
        ],
    )
}

/// Every message of INBOX and Junk as `FOLDER UID n FLAGS (...)`, \Recent left out (a
/// session flag, RFC 3501 2.3.2: whichever session looks first takes it).
async fn mailbox_state(lab: &PostfixLab) -> Vec<String> {
    let url = MailboxUrl::parse(&imaps(lab, "IMAP_USER")).unwrap();
    let o = MailboxOptions::with_password(
        url,
        Secret::new(lab.get("IMAP_PASSWORD").into()),
        Some(lab.get("CA_FILE").into()),
        Some(lab.get("TLS_NAME").into()),
        Duration::from_secs(10),
    );
    let mut c = ImapConn::connect(&o.imap, "test", tokio::time::Instant::now())
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    c.login(&o.credentials().await.unwrap()).await.unwrap();
    let mut out = Vec::new();
    for folder in ["INBOX", "Junk"] {
        c.open_folder(folder, false).await.unwrap();
        let done = c
            .run("UID FETCH", &[Arg::Raw("UID FETCH 1:* (FLAGS)")])
            .await
            .unwrap();
        for r in done.untagged.iter().filter(|r| r.text.contains("FETCH")) {
            let fields = r.text.split_once('(').map(|(_, f)| f).unwrap_or("");
            out.push(format!(
                "{folder} {}",
                fields
                    .replace("\\Recent", "")
                    .replace("( ", "(")
                    .replace(" )", ")")
            ));
        }
    }
    c.logout().await;
    out.sort();
    out
}

/// Sends a message with the plain probe (`--data`), not a round trip: mail that was there.
fn deliver_other(lab: &PostfixLab, header: &str) {
    let via = lab.target("PORT_SMTP");
    let r = mxtrace(
        &[
            "probe",
            &via,
            "--from",
            "other@fabrikam.test",
            "--rcpt",
            lab.get("VALID_RCPT"),
            "--data",
            "--header",
            header,
            "--starttls",
            "never",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

async fn wait_for_messages(lab: &PostfixLab, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let s = mailbox_state(lab).await;
        if s.len() >= n {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the other messages were not delivered in 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_to_the_inbox_and_the_mailbox_left_as_it_was() {
    let Some(lab) = PostfixLab::start_with_imap() else {
        return;
    };
    // Mail that was there: one in INBOX (flagged and seen by hand), one in Junk.
    deliver_other(&lab, "X-Test: keep-1");
    deliver_other(&lab, "X-Spam-Flag: YES");
    wait_for_messages(&lab, 2).await;
    {
        let s = mailbox_state(&lab).await;
        assert!(
            s.iter().any(|l| l.starts_with("INBOX")) && s.iter().any(|l| l.starts_with("Junk")),
            "{s:?}"
        );
    }
    set_flags(&lab).await;
    let before = mailbox_state(&lab).await;
    let html = std::env::temp_dir().join(format!("mxtrace-rt-{}.html", std::process::id()));
    let html_s = html.display().to_string();
    let r = roundtrip(
        &lab,
        FROM,
        lab.get("VALID_RCPT"),
        &["--within", "20s", "--json", "--html", &html_s],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["command"], "roundtrip");
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["delivery"]["status"], "delivered");
    assert_eq!(j["delivery"]["folder"], "inbox");
    assert_eq!(j["delivery"]["folder_name"], "INBOX");
    let secs = j["delivery"]["seconds"].as_f64().unwrap();
    assert!((0.0..20.0).contains(&secs), "{secs}");
    assert!(j["delivery"]["header_seconds"].as_i64().is_some());
    // The path: our session into Postfix with TLS, then Postfix to Dovecot by LMTP.
    let hops = j["path"]["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2, "{hops:?}");
    assert_eq!(hops[0]["with"], "ESMTPS");
    assert!(hops[0]["tls_version"]
        .as_str()
        .unwrap()
        .starts_with("TLSv1."));
    assert_eq!(hops[0]["by"], lab.get("TLS_NAME"));
    assert_eq!(hops[1]["with"], "LMTP");
    assert_eq!(
        j["findings"].as_array().unwrap().len(),
        0,
        "{}",
        j["findings"]
    );
    assert_eq!(j["cleanup"][0]["action"], "deleted");
    assert_eq!(j["mailbox"]["idle"], true);
    assert_eq!(j["mailbox"]["uidplus"], true);
    assert_eq!(j["mailbox"]["junk_folder"], "Junk");
    assert_eq!(j["mailbox"]["junk_found_by"], "special-use");
    assert!(j["sent"]["reply"].as_str().unwrap().contains("queued as"));
    // No secret anywhere; the id is in the message's headers.
    assert!(!r.stdout.contains(lab.get("IMAP_PASSWORD")));
    assert!(r.stdout.contains("AUTHENTICATE PLAIN <redacted>"));
    // Only the probe was deleted: every other message keeps its UID and flags.
    assert_eq!(mailbox_state(&lab).await, before);
    // The result model reads every field back: read, written again, the same JSON.
    let doc = mxtrace_proto::model::Document::from_value(std::path::Path::new("stdout"), j.clone())
        .unwrap();
    let mxtrace_proto::model::Document::Roundtrip(back) = &doc else {
        panic!("{}", doc.command())
    };
    let again: serde_json::Value =
        serde_json::from_str(&mxtrace_render::json::render("roundtrip", back).unwrap()).unwrap();
    assert_eq!(again, j);
    // The HTML page, and `report` of the saved JSON, give the same bytes.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<h2>Delivery</h2>") && page.contains("ESMTPS"),
        "{page}"
    );
    let saved = html.with_extension("json");
    std::fs::write(&saved, &r.stdout).unwrap();
    let again = html.with_extension("again.html");
    let rep = mxtrace(
        &[
            "report",
            &saved.display().to_string(),
            "--html",
            &again.display().to_string(),
        ],
        &[],
    );
    assert_eq!(rep.code, 0, "{}", rep.stderr);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), page);
    for f in [&html, &saved, &again] {
        let _ = std::fs::remove_file(f);
    }
}

/// \Flagged and \Seen on the INBOX message, by hand.
async fn set_flags(lab: &PostfixLab) {
    let url = MailboxUrl::parse(&imaps(lab, "IMAP_USER")).unwrap();
    let o = MailboxOptions::with_password(
        url,
        Secret::new(lab.get("IMAP_PASSWORD").into()),
        Some(lab.get("CA_FILE").into()),
        Some(lab.get("TLS_NAME").into()),
        Duration::from_secs(10),
    );
    let mut c = ImapConn::connect(&o.imap, "test", tokio::time::Instant::now())
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    c.login(&o.credentials().await.unwrap()).await.unwrap();
    c.open_folder("INBOX", true).await.unwrap();
    c.run(
        "STORE",
        &[Arg::Raw("UID STORE 1:* +FLAGS (\\Flagged \\Seen)")],
    )
    .await
    .unwrap();
    c.logout().await;
}

#[test]
fn filed_in_junk_is_a_failing_finding() {
    let Some(lab) = PostfixLab::start_with_imap() else {
        return;
    };
    let r = roundtrip(
        &lab,
        FROM,
        lab.get("VALID_RCPT"),
        &["--within", "20s", "--json", "--header", "X-Spam-Flag: YES"],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["delivery"]["status"], "delivered");
    assert_eq!(j["delivery"]["folder"], "junk");
    assert_eq!(j["delivery"]["folder_name"], "Junk");
    let codes: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"landed_in_junk"), "{codes:?}");
    assert!(codes.contains(&"spam_verdict"), "{codes:?}");
    assert_eq!(j["receiver"]["spam_flag"], "YES");
    assert_eq!(j["cleanup"][0]["folder"], "Junk");
    assert_eq!(j["cleanup"][0]["action"], "deleted");
    assert_eq!(j["verdict"]["passed"], false);
}

#[test]
fn deferred_past_within_says_where_it_was_last_seen() {
    let Some(lab) = PostfixLab::start_with_imap() else {
        return;
    };
    let r = roundtrip(
        &lab,
        FROM,
        lab.get("HELD_RCPT"),
        &["--within", "2s", "--json"],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["delivery"]["status"], "not_delivered");
    let seen = &j["delivery"]["last_seen"];
    assert_eq!(seen["host"], lab.get("ADDR"));
    let reply = seen["reply"].as_str().unwrap();
    let queue_id = reply.rsplit(' ').next().unwrap();
    assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}");
    assert_eq!(j["findings"][0]["code"], "not_delivered");
    assert!(j["cleanup"].as_array().unwrap().is_empty());
    // Postfix holds it in its deferred queue, as the lab's README says.
    let q = lab.queue();
    assert!(q.contains(queue_id) && q.contains("\"deferred\""), "{q}");
    // Human output: the verdict line says it.
    let human = roundtrip(&lab, FROM, lab.get("HELD_RCPT"), &["--within", "1s"]);
    assert_eq!(human.code, 1);
    assert!(
        human
            .stdout
            .contains("FAIL not delivered within 1s: last seen accepted by"),
        "{}",
        human.stdout
    );
}

#[test]
fn bounced_with_the_ndr_read_back() {
    let Some(lab) = PostfixLab::start_with_imap() else {
        return;
    };
    let ndr = imaps(&lab, "NDR_USER");
    let r = roundtrip(
        &lab,
        lab.get("NDR_USER"),
        lab.get("BOUNCE_RCPT"),
        &[
            "--within",
            "20s",
            "--json",
            "--ndr-mailbox",
            &ndr,
            "--ndr-mailbox-password-env",
            "NDR_PW",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["delivery"]["status"], "bounced");
    let b = &j["bounce"];
    assert_eq!(b["reporting_mta"], lab.get("TLS_NAME"));
    assert_eq!(b["recipients"][0]["recipient"], lab.get("BOUNCE_RCPT"));
    assert_eq!(b["recipients"][0]["status"], "5.1.1");
    assert_eq!(b["recipients"][0]["category"], "recipient_unknown");
    assert!(b["seconds"].as_f64().is_some());
    assert_eq!(j["findings"][0]["code"], "bounced");
    assert_eq!(j["cleanup"][0]["message"], "bounce");
    assert_eq!(j["cleanup"][0]["action"], "deleted");
    assert!(!r.stdout.contains(lab.get("NDR_PASSWORD")));
}

#[test]
fn a_wrong_mailbox_password_sends_nothing() {
    let Some(lab) = PostfixLab::start_with_imap() else {
        return;
    };
    // imap:// (STARTTLS) this time.
    let mailbox = format!(
        "imap://{}@{}:{}",
        lab.get("IMAP_USER"),
        lab.get("ADDR"),
        lab.get("PORT_IMAP")
    );
    let r = roundtrip_to(
        &lab,
        FROM,
        lab.get("VALID_RCPT"),
        &mailbox,
        "BAD_PW",
        &["--within", "5s"],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("login as user@contoso.test refused"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was sent"), "{}", r.stderr);
    assert!(!r.stderr.contains("not-the-password"));
    // Postfix never saw the sender: no connection reached MAIL FROM, nothing is queued.
    std::thread::sleep(Duration::from_millis(300));
    let log = lab.maillog();
    assert!(!log.contains(FROM), "{log}");
    let q = lab.queue();
    assert!(q.is_empty(), "{q}");
}

/// A scenario file whose hops ask for round trips (`[hop.roundtrip]`, `roundtrip.*`
/// expectations) through the lab: delivered to the inbox in time (pass), filed in Junk (the
/// folder expectation fails), held past the hop's deadline (fails), and a mailbox that refuses
/// the password (the round trip does not start; its expectation fails saying why). Every
/// output of `run` reports them: human, JSON, JUnit, HTML; `diff` of two runs compares them.
#[test]
fn a_scenario_file_hop_asks_for_a_round_trip() {
    let Some(lab) = PostfixLab::start_with_imap() else {
        return;
    };
    let dir = support::postfix::fresh_dir("rt-run");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("roundtrips.toml");
    std::fs::write(&file, scenario(&lab, true)).unwrap();
    let file_s = file.display().to_string();
    let junit = dir.join("junit.xml");
    let html = dir.join("run.html");
    let env = [
        ("MBOX_PW", lab.get("IMAP_PASSWORD")),
        ("BAD_PW", "not-the-password"),
    ];
    let (junit_s, html_s) = (junit.display().to_string(), html.display().to_string());
    let args = [
        "run", &file_s, "--json", "--junit", &junit_s, "--html", &html_s,
    ];
    let r = mxtrace(&args, &env);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let before = dir.join("before.json");
    std::fs::write(&before, &r.stdout).unwrap();
    let j = r.json();
    check_run_json(&lab, &j, &r.stdout);
    check_junit_and_html(&junit, &html);
    check_human(&file_s, &env);
    check_diff(&lab, &file, &before, &env);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The run's JSON: each expectation's result, the round trips' reports and the error.
fn check_run_json(lab: &PostfixLab, j: &serde_json::Value, stdout: &str) {
    let results: Vec<(String, bool)> = j["hops"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["expectations"].as_array().unwrap().iter())
        .map(|e| {
            let id = e["id"].as_str().unwrap();
            (
                id.replace(&lab.target("PORT_SMTP"), "HOST"),
                e["passed"] == true,
            )
        })
        .collect();
    let want = [
        ("inbound/HOST/reachable", true),
        ("inbound/roundtrip.delivered", true),
        ("inbound/roundtrip.folder", true),
        ("inbound/roundtrip.within", true),
        ("junk/HOST/passes", true),
        ("junk/roundtrip.delivered", true),
        ("junk/roundtrip.folder", false),
        ("held/HOST/passes", true),
        ("held/roundtrip.delivered", false),
        ("wrong password/HOST/passes", true),
        ("wrong password/roundtrip.passes", false),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(i, p)| (i.to_string(), *p)).collect();
    assert_eq!(results, want);
    let hop = |i: usize| &j["hops"][i];
    let inbound = &hop(0)["roundtrip"]["report"];
    assert_eq!(inbound["delivery"]["folder"], "inbox");
    assert_eq!(inbound["rcpt"], lab.get("VALID_RCPT"));
    assert_eq!(inbound["cleanup"][0]["action"], "deleted");
    let folder = &hop(1)["expectations"][2];
    assert_eq!(
        folder["observed"]
            .as_str()
            .unwrap()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>(),
        ["delivered", "to", "Junk"]
    );
    assert!(
        folder["cause"]
            .as_str()
            .unwrap()
            .starts_with("landed_in_junk: "),
        "{folder}"
    );
    let held = &hop(2)["expectations"][1];
    assert!(
        held["observed"]
            .as_str()
            .unwrap()
            .starts_with("not delivered within 2s: last seen accepted by"),
        "{held}"
    );
    let wrong = &hop(3)["roundtrip"];
    assert!(wrong["report"].is_null());
    let error = wrong["error"].as_str().unwrap();
    assert!(
        error.contains("login as user@contoso.test refused") && error.contains("nothing was sent"),
        "{error}"
    );
    assert!(!stdout.contains("not-the-password") && !stdout.contains(lab.get("IMAP_PASSWORD")));
}

/// JUnit: a test case per expectation, the round trip's among them; HTML: each round trip in
/// its hop, its expectations linked to it.
fn check_junit_and_html(junit: &std::path::Path, html: &std::path::Path) {
    // JUnit: a test case per expectation, the round trip's among them.
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains(r#"<testcase name="message delivered to inbox" classname="roundtrips.junk">"#),
        "{xml}"
    );
    assert!(
        xml.contains("expected inbox, observed delivered to Junk"),
        "{xml}"
    );
    // HTML: each round trip in its hop, its expectations linked to it.
    let page = std::fs::read_to_string(html).unwrap();
    assert!(
        page.contains(r#"<h3 id="hop0-rt">Round trip</h3>"#),
        "{page}"
    );
    assert!(
        page.contains(r##"<a href="#hop1-rt" class="mono">junk/roundtrip.folder</a>"##),
        "{page}"
    );
    assert!(page.contains("could not start"), "{page}");
}

/// Human: a line per round trip, and one per expectation.
fn check_human(file: &str, env: &[(&str, &str)]) {
    // Human: a line per round trip, and one per expectation.
    let human = mxtrace(&["run", file], env);
    assert_eq!(human.code, 1);
    let out = redact_ports(&human.stdout);
    for line in [
        "     round trip probe@fabrikam.test -> user@contoso.test (mailbox imaps://user@contoso.test@127.0.0.1:PORT): delivered to INBOX in ",
        "FAIL hop 1 junk: message delivered to inbox (observed: delivered to Junk in ",
        "     why: landed_in_junk: ",
        "FAIL hop 1 held: message delivered to the mailbox (observed: not delivered within 2s: ",
        "     round trip could not start: mailbox imaps://user@contoso.test@127.0.0.1:PORT: login as user@contoso.test refused (AUTHENTICATE PLAIN): ",
        "FAIL hop 1 wrong password: round trip passes (observed: not run: mailbox ",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
}

/// `diff` of two runs: without the junk header the folder expectation passes.
fn check_diff(
    lab: &PostfixLab,
    file: &std::path::Path,
    before: &std::path::Path,
    env: &[(&str, &str)],
) {
    // `diff` of two runs: without the junk header the folder expectation passes.
    std::fs::write(file, scenario(lab, false)).unwrap();
    let file_s = file.display().to_string();
    let r = mxtrace(&["run", &file_s, "--json"], env);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let after = before.with_file_name("after.json");
    std::fs::write(&after, &r.stdout).unwrap();
    let (b, a) = (before.display().to_string(), after.display().to_string());
    let d = mxtrace(&["diff", &b, &a], &[]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(
        d.stdout.contains("IMPROVEMENT junk: message delivered to inbox now passes (observed: delivered to INBOX in "),
        "{}",
        d.stdout
    );
    let d = mxtrace(&["diff", &a, &b, "--json"], &[]);
    assert_eq!(d.code, 1, "{}{}", d.stdout, d.stderr);
    let dj = d.json();
    let f = &dj["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["what"] == "expectation")
        .unwrap();
    assert_eq!(
        (f["kind"].as_str(), f["subject"].as_str()),
        (Some("regression"), Some("junk/roundtrip.folder"))
    );
}

/// The scenario file of the test above; `junk` adds the header Sieve files into Junk.
fn scenario(lab: &PostfixLab, junk: bool) -> String {
    let hosts = format!("hosts = [\"{}\"]", lab.target("PORT_SMTP"));
    let tls = format!(
        "tls_ca_file = {:?}\ntls_name = \"{}\"",
        lab.get("CA_FILE"),
        lab.get("TLS_NAME")
    );
    let mailbox = |pw: &str| {
        format!(
            "mailbox = \"{}\"\nmailbox_password_env = \"{pw}\"\nmailbox_ca_file = {:?}\nmailbox_tls_name = \"{}\"",
            imaps(lab, "IMAP_USER"),
            lab.get("CA_FILE"),
            lab.get("TLS_NAME")
        )
    };
    let rcpt = lab.get("VALID_RCPT");
    let header = if junk {
        "header = [\"X-Spam-Flag: YES\"]"
    } else {
        ""
    };
    format!(
        "name = \"lab round trips\"\n[defaults]\nfrom = \"{FROM}\"\n{tls}\n\
         [[hop]]\nname = \"inbound\"\n{hosts}\n[hop.roundtrip]\nrcpt = \"{rcpt}\"\n{}\nwithin = \"20s\"\n\
         [hop.expect]\nreachable = true\nroundtrip.delivered = true\nroundtrip.folder = \"inbox\"\nroundtrip.within = \"15s\"\n\
         [[hop]]\nname = \"junk\"\n{hosts}\n[hop.roundtrip]\nrcpt = \"{rcpt}\"\n{}\n{header}\nwithin = \"20s\"\n\
         [hop.expect]\nroundtrip.delivered = true\nroundtrip.folder = \"inbox\"\n\
         [[hop]]\nname = \"held\"\n{hosts}\n[hop.roundtrip]\nrcpt = \"{}\"\n{}\nwithin = \"2s\"\n\
         [hop.expect]\nroundtrip.delivered = true\n\
         [[hop]]\nname = \"wrong password\"\n{hosts}\n[hop.roundtrip]\nrcpt = \"{rcpt}\"\n{}\n",
        mailbox("MBOX_PW"),
        mailbox("MBOX_PW"),
        lab.get("HELD_RCPT"),
        mailbox("MBOX_PW"),
        mailbox("BAD_PW"),
    )
}
