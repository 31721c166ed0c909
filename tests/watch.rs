//! `mxtrace watch` as users and CI run it, against a scripted peer that fails and recovers on
//! cue (by connection number): the exact events and outage windows in line mode and in JSON,
//! the JSON shape, the report file read back by `report` (and refused by `diff`), exit codes,
//! usage errors (the help text is pinned in tests/cli.rs).

mod support;

use support::bin::{mxtrace, redact_ports};
use support::scripted::{esmtp_greeting, expect, line, quit, ScriptedPeer, Step};

/// A session that answers RCPT with `rcpt`, then RSET and QUIT.
fn session(rcpt: &str) -> Vec<Step> {
    let mut s = esmtp_greeting("mx.contoso.test", &["SIZE 1000000"]);
    s.extend([
        expect("MAIL FROM:"),
        line("250 2.1.0 Ok"),
        expect("RCPT TO:"),
        line(rcpt),
        expect("RSET"),
        line("250 2.0.0 Ok"),
    ]);
    s.extend(quit());
    s
}

const OK: &str = "250 2.1.5 Ok";
const DENIED: &str = "554 5.7.1 <user@contoso.test>: Relay access denied";

/// Connections 3 and 4 (1-based) are refused at RCPT: the path breaks at the third probe and
/// comes back at the fifth.
fn break_and_recover() -> ScriptedPeer {
    ScriptedPeer::spawn_thread(6, |n| session(if matches!(n, 2 | 3) { DENIED } else { OK }))
}

fn watch_args<'a>(target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "watch",
        target,
        "--rcpt",
        "user@contoso.test",
        "--interval",
        "1s",
        "--count",
        "6",
    ];
    a.extend_from_slice(extra);
    a
}

/// The event lines with their times replaced (the rest is exact).
fn events_of(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("20"))
        .map(|l| {
            let (_, rest) = l.split_once(' ').unwrap();
            redact_ports(&format!("TIME {rest}"))
        })
        .collect()
}

#[test]
fn line_mode_prints_each_event_once_and_the_outage_window() {
    let peer = break_and_recover();
    let target = peer.addr.to_string();
    let dir = tempdir();
    let json = dir.join("window.json");
    let json_s = json.to_str().unwrap();
    let r = mxtrace(&watch_args(&target, &["--report", json_s]), &[]);
    assert_eq!(
        r.code, 0,
        "the last probe passed:\n{}{}",
        r.stdout, r.stderr
    );
    assert_eq!(
        events_of(&r.stdout),
        [
            "TIME 127.0.0.1:PORT UP first probe passed",
            "TIME 127.0.0.1:PORT DOWN rcpt_to 250 -> 554 5.7.1 relay_denied",
            "TIME 127.0.0.1:PORT UP recovered after 2 s: rcpt_to 554 5.7.1 -> 250",
        ],
        "{}",
        r.stdout
    );
    for l in peer.logs() {
        l.assert_completed();
    }
    let summary = redact_ports(&r.stdout);
    assert!(
        summary.contains("127.0.0.1:PORT: up since ") && summary.contains("; 6 probes, 2 failed"),
        "{summary}"
    );
    assert!(
        summary.contains(" (2 s, 2 probes failed): rcpt_to 554 5.7.1 relay_denied"),
        "{summary}"
    );
    for stretch in [
        "before 2 probes, 0 failed (0%)",
        "during 2 probes, 2 failed (100%)",
        "after  2 probes, 0 failed (0%)",
    ] {
        assert!(summary.contains(stretch), "{stretch}: {summary}");
    }
    assert!(
        summary.contains("PASS: every target passed its last probe (1 outage(s) in the window)")
    );

    // The saved report: an outage window of two probes, two seconds, and its reply.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(saved["schema_version"], 1);
    assert_eq!(saved["command"], "watch");
    // The report line of `--json`, pretty: the same schema.
    assert_eq!(saved["type"], "report");
    support::bin::schema::check("watch", &saved, "the --report file");
    let o = &saved["targets"][0]["outages"][0];
    assert_eq!(o["stage"], "rcpt_to");
    assert_eq!(o["reply"], "554 5.7.1");
    assert_eq!(o["category"], "relay_denied");
    assert_eq!(o["probes_failed"], 2);
    assert_eq!(o["text"], "<user@contoso.test>: Relay access denied");
    let d = o["duration_ms"].as_f64().unwrap();
    assert!(
        (1_900.0..2_100.0).contains(&d),
        "one outage of two 1 s ticks: {d}"
    );

    // The model reads back every field it wrote.
    let doc = mxtrace_proto::model::Document::read(&json).unwrap();
    let mxtrace_proto::model::Document::Watch(w) = &doc else {
        panic!("a watch report: {}", doc.command());
    };
    let line = mxtrace_proto::model::watch::WatchLine::Report(w.as_ref().clone());
    let again: serde_json::Value =
        serde_json::from_str(&mxtrace_render::json::render("watch", &line).unwrap()).unwrap();
    assert_eq!(again, saved, "the watch report reads back unchanged");

    // `report` renders it; `diff` has nothing to compare in it.
    let html = dir.join("window.html");
    let r = mxtrace(&["report", json_s, "--html", html.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<h3>Outage windows</h3>"), "{page}");
    assert!(page.contains("&lt;user@contoso.test&gt;: Relay access denied"));
    assert!(page.contains("<td>during (first failure to last recovery)</td><td>2</td><td>2 (100%)"));
    let r = mxtrace(&["diff", json_s, json_s], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is a watch report"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn json_streams_one_object_per_probe_and_per_event_then_the_report() {
    let peer = break_and_recover();
    let target = peer.addr.to_string();
    let r = mxtrace(&watch_args(&target, &["--json"]), &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "probe", "event", "probe", "probe", "event", "probe", "probe", "event", "probe",
            "report"
        ]
    );
    for l in r.stdout.lines() {
        assert!(
            l.starts_with(r#"{"schema_version":1,"command":"watch","version":"#),
            "the envelope first: {l}"
        );
    }
    let events: Vec<(u64, &str, &str)> = lines
        .iter()
        .filter(|l| l["type"] == "event")
        .map(|l| {
            (
                l["seq"].as_u64().unwrap(),
                l["kind"].as_str().unwrap(),
                l["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (1, "first", "first probe passed"),
            (3, "down", "rcpt_to 250 -> 554 5.7.1 relay_denied"),
            (5, "up", "recovered after 2 s: rcpt_to 554 5.7.1 -> 250"),
        ]
    );
    // The shape, pinned: key order and values of a failed probe, an event and the report.
    let probe = lines.iter().find(|l| l["passed"] == false).unwrap();
    let event = lines.iter().find(|l| l["kind"] == "down").unwrap();
    let report = lines.last().unwrap();
    let shape = format!(
        "{}\n{}\n{}\n",
        shape_of(probe),
        shape_of(event),
        shape_of(report)
    );
    insta::assert_snapshot!("watch_json_shape", shape);
}

/// A JSON value with every number and time replaced by its type, ports redacted, and arrays
/// cut to their first element: the shape tools depend on.
fn shape_of(v: &serde_json::Value) -> String {
    fn walk(v: &serde_json::Value, key: &str) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Number(_) if key == "seq" || key.ends_with("code") => v.clone(),
            Value::Number(_) => Value::String("<number>".into()),
            Value::String(s)
                if ["at", "start", "end", "since", "started_at", "ended_at"].contains(&key)
                    && s.starts_with("20") =>
            {
                Value::String("<time>".into())
            }
            Value::String(s) if key == "version" => Value::String(format!("<{}>", s.len().min(1))),
            Value::Array(a) => Value::Array(a.iter().take(1).map(|x| walk(x, key)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, x)| (k.clone(), walk(x, k))).collect())
            }
            _ => v.clone(),
        }
    }
    redact_ports(&serde_json::to_string_pretty(&walk(v, "")).unwrap())
}

#[test]
fn until_fail_stops_at_the_first_failed_probe_and_exits_1() {
    let peer = ScriptedPeer::spawn_thread(3, |n| session(if n == 1 { DENIED } else { OK }));
    let target = peer.addr.to_string();
    let r = mxtrace(
        &[
            "watch",
            &target,
            "--rcpt",
            "user@contoso.test",
            "--interval",
            "1s",
            "--until",
            "fail",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("--until fail: a probe failed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("FAIL: last probe failed: 127.0.0.1:"),
        "{}",
        r.stdout
    );
    assert_eq!(peer.logs().len(), 2, "no probe after the failure");
}

#[test]
fn usage_errors_exit_2() {
    let r = mxtrace(&["watch", "127.0.0.1:25", "--interval", "500ms"], &[]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.trim(),
        "mxtrace: --interval 500ms is shorter than the 1s floor (one session a second per target)"
    );
    let r = mxtrace(&["watch", "not a host!"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = mxtrace(&["watch"], &[]);
    assert_eq!(r.code, 2, "a target is required");
    let r = mxtrace(&["watch", "127.0.0.1", "--format", "nagios"], &[]);
    assert_eq!(
        r.code, 3,
        "a usage error under --format nagios is UNKNOWN: {}",
        r.stdout
    );
}

fn tempdir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let d = std::env::temp_dir().join(format!("mxtrace-watch-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The running `watch --json` child, its lines as they come, stopped by its pid on drop.
struct Child {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Child {
    fn spawn(args: &[&str]) -> Child {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mxtrace"))
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run mxtrace watch");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&l).expect("a JSON line"));
            }
        });
        Child {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// A line read, checked against the published schema as `mxtrace()` checks its output.
    fn keep(&mut self, v: serde_json::Value) {
        support::bin::schema::check("watch", &v, "a line of a running watch --json");
        self.seen.push(v);
    }

    /// The probes printed so far: the lines already written are given 100 ms to reach the
    /// reader (probes are a second apart), then read without waiting.
    fn probes_settled(&mut self) -> u64 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        while let Ok(v) = self.lines.try_recv() {
            self.keep(v);
        }
        self.seen.iter().filter(|l| l["type"] == "probe").count() as u64
    }

    /// Reads lines (at most 30 s) until one matches.
    fn wait(&mut self, what: &str, hit: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        if let Some(v) = self.seen.iter().find(|v| hit(v)) {
            return v.clone();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} within 30 s: {:#?}", self.seen));
            self.keep(v.clone());
            if hit(&v) {
                return v;
            }
        }
    }

    /// SIGTERM (as a service manager stops it), then the exit code.
    fn stop(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real Postfix's recipient table is emptied and restored while `watch` runs: the break
/// and the recovery each show within one interval, with the reply that caused them.
#[test]
fn watch_sees_a_postfix_recipient_table_change() {
    let Some(lab) = support::postfix::PostfixLab::start() else {
        return;
    };
    let target = lab.target("PORT_SMTP");
    let ca = lab.get("CA_FILE").to_string();
    let mut w = Child::spawn(&[
        "watch",
        &target,
        "--json",
        "--interval",
        "1s",
        "--rcpt",
        "user@contoso.test",
        "--tls-name",
        "mx.contoso.test",
        "--tls-ca-file",
        &ca,
        "--stage-timeout",
        "10s",
    ]);
    let passed = |v: &serde_json::Value| v["type"] == "probe" && v["passed"] == true;
    w.wait("a passed probe", passed);
    // A probe under way when the table changes may still see the old one; the next starts
    // within one interval and must see the new one: seq at most k + 2.
    lab.set_recipients(&[]);
    let k = w.probes_settled();
    let down = w.wait("the break", |v| v["kind"] == "down");
    assert!(
        down["seq"].as_u64().unwrap() <= k + 2,
        "{down} after {k} probes"
    );
    assert_eq!(
        down["message"],
        "rcpt_to 250 -> 550 5.1.1 recipient_unknown"
    );
    lab.set_recipients(&["user@contoso.test"]);
    let k = w.probes_settled();
    let up = w.wait("the recovery", |v| v["kind"] == "up");
    assert!(
        up["seq"].as_u64().unwrap() <= k + 2,
        "{up} after {k} probes"
    );
    let msg = up["message"].as_str().unwrap();
    assert!(
        msg.starts_with("recovered after ") && msg.ends_with(": rcpt_to 550 5.1.1 -> 250"),
        "{msg}"
    );
    assert_eq!(w.stop(), 0, "SIGTERM ends the watch; the last probe passed");
    let report = w.wait("the report", |v| v["type"] == "report");
    assert_eq!(report["stopped_by"], "interrupted");
    let o = &report["targets"][0]["outages"][0];
    assert_eq!(
        (&o["stage"], &o["reply"], &o["category"]),
        (
            &serde_json::json!("rcpt_to"),
            &serde_json::json!("550 5.1.1"),
            &serde_json::json!("recipient_unknown")
        )
    );
    assert!(o["text"].as_str().unwrap().contains("User unknown"), "{o}");
}
