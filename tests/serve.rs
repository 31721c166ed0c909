//! `mxtrace serve`, the Prometheus exporter, run as a user runs it (the binary, a config file,
//! HTTP on loopback): against the lab, a scripted AUTH server, the real Postfix, and scraped by
//! a real Prometheus (tests/support/prometheus/install.sh). Every exporter and Prometheus the
//! tests start listens on 127.0.0.1 and is stopped by its pid when its guard drops.

#[path = "support/dns.rs"]
mod dns_support;
#[path = "support/lab.rs"]
mod lab;
mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::peers::free_port;
use support::postfix::PostfixLab;
use support::scripted::{line, ScriptedServer, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running `mxtrace serve`; killed by pid on drop. Its stderr (the log) is read at `stop`.
struct Exporter {
    child: Child,
    addr: SocketAddr,
}

impl Exporter {
    fn start(config: &Path, env: &[(&str, &str)]) -> Exporter {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mxtrace"));
        cmd.args(["serve", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start mxtrace serve");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("read the listening line");
        let addr = first
            .trim()
            .strip_prefix("mxtrace serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .expect("listening address");
        Exporter { child, addr }
    }

    /// Stops the exporter (SIGKILL by pid) and returns what it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut log);
        }
        log
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; the status and body. Bounded in time.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Content-Length: 0\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("send");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        // axum sends short bodies with Content-Length; chunked only when streaming.
        let exposition = path.starts_with("/metrics") || path.starts_with("/probe");
        if status == 200 && exposition && !path.contains("debug=true") {
            promtool_clean(path, body);
        }
        (status, body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("HTTP deadline")
}

/// Every exposition a test reads (`/metrics`, `/probe`) passes `promtool check metrics`: the
/// text format and Prometheus's naming rules (base units, counters ending in `_total`).
fn promtool_clean(path: &str, body: &str) {
    use std::io::Write;
    static SAID: std::sync::Once = std::sync::Once::new();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        let why =
            "promtool not installed (tests/support/prometheus/install.sh): expositions unchecked";
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
        SAID.call_once(|| eprintln!("SKIPPED: {why}"));
        return;
    };
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics on {path}:\n{}{}\n--- exposition:\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn value<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A module on the lab of scenario C (fabrikam.com's MX, a Postfix role server).
fn lab_config(lab: &lab::Lab, extra: &str) -> String {
    lab.write("ca.pem", &lab.pki.ca_pem());
    format!(
        r#"max_concurrency = 1
[modules.fab]
allowed_targets = ["fabrikam.com", "127.0.{net}.0/24"]
resolver = "{resolver}"
port = {port}
tls_ca_file = "ca.pem"
ehlo = "probe.fabrikam.test"
from = "probe@contoso.com"
rcpt = ["user@fabrikam.com"]
dns_timeout = "2s"
connect_timeout = "3s"
stage_timeout = "5s"
{extra}"#,
        net = lab.net,
        resolver = lab.dns.resolver(),
        port = lab.port,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_the_lab_refuses_what_it_must_and_reloads() {
    let lab = lab::scenario_c(150).await;
    let hole = support::scripted::blackhole();
    let slow = "[modules.slow]\nallowed_targets = [\"127.0.0.1\"]\nconnect_timeout = \"4s\"\n";
    let config = lab.write("exporter.toml", &lab_config(&lab, slow));
    let exp = Exporter::start(&config, &[]);
    let a = exp.addr;

    assert_eq!(http(a, "GET", "/-/healthy", &[]).await.0, 200);
    assert_eq!(http(a, "GET", "/-/ready", &[]).await.0, 200);

    // A domain is traced: MX, TLS, the envelope accepted.
    let (code, m) = http(a, "GET", "/probe?module=fab&target=fabrikam.com", &[]).await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(value(&m, "mxtrace_probe_success"), Some("1"), "{m}");
    assert_eq!(value(&m, "mxtrace_mx_hosts{hop=\"1\"}"), Some("1"), "{m}");
    assert_eq!(
        value(&m, "mxtrace_tls_verified{hop=\"1\"}"),
        Some("1"),
        "{m}"
    );
    assert_eq!(
        value(&m, "mxtrace_starttls_offered{hop=\"1\"}"),
        Some("1"),
        "{m}"
    );
    assert_eq!(
        value(&m, "mxtrace_stage_reply_code{hop=\"1\",stage=\"rcpt_to\"}"),
        Some("250"),
        "{m}"
    );
    assert!(value(
        &m,
        "mxtrace_tls_cert_not_after_timestamp_seconds{hop=\"1\"}"
    )
    .is_some());

    // An address with nothing listening: refused at connect.
    let refused = format!(
        "/probe?module=fab&target=127.0.{}.{}:{}",
        lab.net,
        lab::RELAY,
        lab.port
    );
    let (code, m) = http(a, "GET", &refused, &[]).await;
    assert_eq!(code, 200);
    assert_eq!(value(&m, "mxtrace_probe_success"), Some("0"), "{m}");
    assert_eq!(
        value(
            &m,
            "mxtrace_stage_error{hop=\"1\",stage=\"connect\",kind=\"refused\"}"
        ),
        Some("1"),
        "{m}"
    );

    // debug=true: the transcript, then the metrics.
    let (code, d) = http(
        a,
        "GET",
        "/probe?module=fab&target=fabrikam.com&debug=true",
        &[],
    )
    .await;
    assert_eq!(code, 200);
    assert!(d.starts_with("Transcript:\n"), "{d}");
    assert!(d.contains("RCPT TO:<user@fabrikam.com>"), "{d}");
    assert!(
        d.contains("\nMetrics:\nmxtrace_probe_success") || d.contains("\nMetrics:\n# HELP"),
        "{d}"
    );

    // Not an open proxy: anything outside the allowlist is 400, and counted.
    for bad in ["contoso.com", "127.0.0.1:25", "fabrikam.com.evil.example"] {
        let (code, body) = http(a, "GET", &format!("/probe?module=fab&target={bad}"), &[]).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains("allowed_targets"), "{body}");
    }
    assert_eq!(
        http(a, "GET", "/probe?module=nope&target=fabrikam.com", &[])
            .await
            .0,
        400
    );
    assert_eq!(http(a, "GET", "/probe?module=fab", &[]).await.0, 400);

    // max_concurrency = 1: while a probe hangs on a blackholed connect, a second scrape gets
    // 503 at once; the scrape timeout header bounds the first.
    let hung = format!("/probe?module=slow&target={}", hole.addr);
    let first = tokio::spawn(async move {
        http(
            a,
            "GET",
            &hung,
            &[("X-Prometheus-Scrape-Timeout-Seconds", "3")],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let t0 = Instant::now();
    let (code, _) = http(a, "GET", "/probe?module=fab&target=fabrikam.com", &[]).await;
    assert_eq!(code, 503);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "refused at once, not queued"
    );
    let (code, m) = first.await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(value(&m, "mxtrace_probe_success"), Some("0"), "{m}");

    let (_, own) = http(a, "GET", "/metrics", &[]).await;
    for series in [
        "mxtrace_exporter_rejected_total{reason=\"target_not_allowed\"} 3",
        "mxtrace_exporter_rejected_total{reason=\"unknown_module\"} 1",
        "mxtrace_exporter_rejected_total{reason=\"concurrency_limit\"} 1",
        "mxtrace_exporter_probes_total{module=\"fab\",result=\"success\"} 2",
        "mxtrace_exporter_max_concurrency 1",
    ] {
        assert!(own.lines().any(|l| l == series), "{series} missing:\n{own}");
    }

    // Reload: POST /-/reload reads a new module; a broken file keeps the running config.
    let more = format!("{slow}[modules.added]\nallowed_targets = [\"127.0.0.1\"]\n");
    std::fs::write(&config, lab_config(&lab, &more)).unwrap();
    assert_eq!(http(a, "POST", "/-/reload", &[]).await.0, 200);
    let (code, _) = http(
        a,
        "GET",
        &format!("/probe?module=added&target={}", support::refused_addr()),
        &[],
    )
    .await;
    assert_eq!(code, 200, "the new module is served");
    std::fs::write(&config, "[modules.broken\n").unwrap();
    let (code, body) = http(a, "POST", "/-/reload", &[]).await;
    assert_eq!(code, 500);
    assert!(body.contains("exporter.toml:1:"), "{body}");
    assert_eq!(
        http(a, "GET", "/probe?module=fab&target=fabrikam.com", &[])
            .await
            .0,
        200
    );
    // SIGHUP rereads it too.
    std::fs::write(
        &config,
        lab_config(&lab, "[modules.hup]\nallowed_targets = [\"127.0.0.1\"]\n"),
    )
    .unwrap();
    let pid = exp.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let probe_hup = format!("/probe?module=hup&target={}", support::refused_addr());
    let deadline = Instant::now() + Duration::from_secs(10);
    while http(a, "GET", &probe_hup, &[]).await.0 != 200 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, own) = http(a, "GET", "/metrics", &[]).await;
    assert!(
        own.contains("mxtrace_exporter_config_reloads_total{result=\"failure\"} 1"),
        "{own}"
    );
    assert!(
        own.contains("mxtrace_exporter_config_reloads_total{result=\"success\"} 2"),
        "{own}"
    );
    let log = exp.stop();
    assert!(log.contains("refused (target_not_allowed)"), "{log}");
}

/// Each key of a module's `expect` is one `mxtrace_expectation_met` series; one not met makes
/// the scrape fail although the probe itself passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_expectations_are_metrics_and_decide_success() {
    let lab = lab::scenario_c(147).await;
    let met = "[modules.fab.expect]\nmx_matches = \"mx.fabrikam.*\"\ntls_verified = true\n\
               stage.rcpt_to = \"accepted\"\nlatency.total = \"30s\"\n";
    let missed = "[modules.fab.expect]\npasses = true\nstage.rcpt_to = \"recipient_unknown\"\n\
                  certificate_min_days = 100000\n";
    let second = lab_config(&lab, missed)
        .replace("max_concurrency = 1\n", "")
        .replace("[modules.fab", "[modules.fab_missed");
    let config = lab.write(
        "exporter.toml",
        &format!("{}{second}", lab_config(&lab, met)),
    );
    let exp = Exporter::start(&config, &[]);
    let a = exp.addr;
    let (code, m) = http(a, "GET", "/probe?module=fab&target=fabrikam.com", &[]).await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(value(&m, "mxtrace_probe_success"), Some("1"), "{m}");
    for key in [
        "mx_matches",
        "tls_verified",
        "stage.rcpt_to",
        "latency.total",
    ] {
        let series = format!("mxtrace_expectation_met{{expectation=\"{key}\"}}");
        assert_eq!(value(&m, &series), Some("1"), "{key}\n{m}");
    }
    assert_eq!(m.matches("mxtrace_expectation_met{").count(), 4, "{m}");

    // The same server probed as a host: it accepts, but not as this module expects.
    let target = format!("127.0.{}.{}:{}", lab.net, lab::FABRIKAM, lab.port);
    let (code, m) = http(
        a,
        "GET",
        &format!("/probe?module=fab_missed&target={target}"),
        &[],
    )
    .await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(value(&m, "mxtrace_probe_success"), Some("0"), "{m}");
    assert_eq!(
        value(&m, "mxtrace_stage_reply_code{hop=\"1\",stage=\"rcpt_to\"}"),
        Some("250"),
        "{m}"
    );
    for (key, want) in [
        ("passes", "1"),
        ("stage.rcpt_to", "0"),
        ("certificate_min_days", "0"),
    ] {
        let series = format!("mxtrace_expectation_met{{expectation=\"{key}\"}}");
        assert_eq!(value(&m, &series), Some(want), "{key}\n{m}");
    }
    let (_, own) = http(a, "GET", "/metrics", &[]).await;
    assert!(
        own.contains("mxtrace_exporter_probes_total{module=\"fab_missed\",result=\"failure\"} 1"),
        "{own}"
    );
    exp.stop();
}

#[test]
fn secrets_never_reach_metrics_debug_or_logs() {
    const PW: &str = "s3cr3t-Hunter2";
    let pki = support::certs::TestPki::new();
    let mut steps = support::scripted::starttls_dialogue(
        "mx.contoso.test",
        &["STARTTLS"],
        pki.server_config(&support::certs::CertKind::Valid("mx.contoso.test".into())),
        &["AUTH PLAIN LOGIN"],
    );
    steps.extend([
        Step::Expect("AUTH PLAIN".into()),
        line("235 2.7.0 Authentication successful"),
        Step::Expect("QUIT".into()),
        line("221 Bye"),
        Step::Close,
    ]);
    let server = ScriptedServer::spawn_thread(steps);
    let dir = lab::TempDir::new();
    let ca = pki.ca_file().display().to_string();
    let config = write(
        dir.path(),
        "exporter.toml",
        &format!(
            "[modules.auth]\nallowed_targets = [\"127.0.0.1\"]\ntls_name = \"mx.contoso.test\"\n\
             tls_ca_file = \"{ca}\"\nauth_user = \"me@contoso.test\"\n\
             auth_password_env = \"MXTRACE_SERVE_TEST_PW\"\nstage_timeout = \"5s\"\n"
        ),
    );
    let exp = Exporter::start(&config, &[("MXTRACE_SERVE_TEST_PW", PW)]);
    let a = exp.addr;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = format!("/probe?module=auth&target={}&debug=true", server.addr);
    let (code, debug) = rt.block_on(http(a, "GET", &target, &[]));
    let (_, own) = rt.block_on(http(a, "GET", "/metrics", &[]));
    let log = exp.stop();
    let received = server.finish_blocking().received;
    assert_eq!(code, 200, "{debug}");
    // The password really went over the wire (base64 in AUTH PLAIN) ...
    assert!(
        received.iter().any(|l| l.starts_with("AUTH PLAIN ")),
        "{received:?}"
    );
    assert!(debug.contains("AUTH PLAIN <redacted>"), "{debug}");
    // ... and nowhere else: not in the transcript, the metrics, /metrics or the log.
    let b64 = "czNjcjN0LUh1bnRlcjI"; // base64 of the password's first 14 bytes
    for (what, text) in [("debug", &debug), ("/metrics", &own), ("log", &log)] {
        assert!(!text.contains(PW) && !text.contains(b64), "{what}: {text}");
    }
}

#[test]
fn help_and_config_errors() {
    let r = support::bin::mxtrace(&["serve", "--help"], &[]);
    assert_eq!(r.code, 0);
    for want in [
        "--config <FILE>",
        "--listen <IP:PORT>",
        "127.0.0.1:9125",
        "max_concurrency",
        "SIGHUP",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }
    let dir = lab::TempDir::new();
    let bad = write(
        dir.path(),
        "bad.toml",
        "[modules.m]\nallowed_targets = [\"a.example\"]\nporty = 1\n",
    );
    let r = support::bin::mxtrace(&["serve", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("bad.toml:3:1: unknown field `porty`"),
        "{}",
        r.stderr
    );
}

/// Starts nothing and says so outside CI; under CI=true a missing Prometheus fails.
fn prometheus_installed() -> bool {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let why = "prometheus/promtool not installed (run tests/support/prometheus/install.sh)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}: CI must run the Prometheus tests");
        }
        eprintln!("SKIPPED: {why}");
    }
    found
}

/// A Prometheus on loopback with its own data directory; killed by pid on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, config: &str) -> Prometheus {
        let file = write(dir, "prometheus.yml", config);
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Prometheus { child, addr }
    }

    /// Polls an instant query until `ok` accepts one of its results (bounded).
    async fn wait_for(
        &self,
        query: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let path = format!("/api/v1/query?query={}", encode(query));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Ok((200, body))) = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::spawn(http_lenient(self.addr, path.clone())),
            )
            .await
            {
                let json = json_body(&body);
                if let Some(r) = json["data"]["result"]
                    .as_array()
                    .and_then(|rs| rs.iter().find(|r| ok(r)))
                {
                    return r.clone();
                }
            }
            assert!(Instant::now() < deadline, "no result for {query}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// GET that returns (0, "") when Prometheus is not up yet.
async fn http_lenient(addr: SocketAddr, path: String) -> (u16, String) {
    if tokio::net::TcpStream::connect(addr).await.is_err() {
        return (0, String::new());
    }
    http(addr, "GET", &path, &[]).await
}

/// Prometheus answers with Content-Length or chunked; the JSON object is the braces.
fn json_body(body: &str) -> serde_json::Value {
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |e| e + 1);
    serde_json::from_str(body.get(start..end).unwrap_or("")).unwrap_or_default()
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn scrape_job(job: &str, module: &str, target: &str, exporter: SocketAddr) -> String {
    format!(
        r#"  - job_name: {job}
    metrics_path: /probe
    params:
      module: [{module}]
    static_configs:
      - targets: ["{target}"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: "{exporter}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_exporter_probing_postfix() {
    if !prometheus_installed() {
        return;
    }
    let Some(pf) = PostfixLab::start() else {
        return;
    };
    let dir = lab::TempDir::new();
    let ca = pf.get("CA_FILE").to_string();
    let module = |name: &str, rcpt: &str| {
        format!(
            "[modules.{name}]\nallowed_targets = [\"127.0.0.0/8\"]\ntls_name = \"mx.contoso.test\"\n\
             tls_ca_file = \"{ca}\"\nehlo = \"probe.fabrikam.test\"\nfrom = \"probe@fabrikam.test\"\n\
             rcpt = [\"{rcpt}\"]\nstage_timeout = \"10s\"\n"
        )
    };
    let config = write(
        dir.path(),
        "exporter.toml",
        &format!(
            "{}{}",
            module("ok", "user@contoso.test"),
            module("unknown", "nobody@contoso.test")
        ),
    );
    let exp = Exporter::start(&config, &[]);
    let smtp = pf.target("PORT_SMTP");
    let refused = support::refused_addr().to_string();
    let prom_config = format!(
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\nscrape_configs:\n{}{}{}",
        scrape_job("postfix_ok", "ok", &smtp, exp.addr),
        scrape_job("postfix_unknown", "unknown", &smtp, exp.addr),
        scrape_job("refused", "ok", &refused, exp.addr),
    );
    let prom = Prometheus::start(dir.path(), &prom_config);

    let r = prom
        .wait_for("mxtrace_probe_success{job=\"postfix_ok\"}", |r| {
            r["value"][1] == "1"
        })
        .await;
    assert_eq!(r["metric"]["instance"], smtp.as_str());
    let r = prom
        .wait_for(
            "mxtrace_probe_failed_stage{job=\"postfix_unknown\"}",
            |_| true,
        )
        .await;
    assert_eq!(r["metric"]["stage"], "rcpt_to", "{r}");
    assert_eq!(r["metric"]["category"], "recipient_unknown", "{r}");
    let r = prom
        .wait_for(
            "mxtrace_tls_cert_not_after_timestamp_seconds{job=\"postfix_ok\"}",
            |_| true,
        )
        .await;
    let not_after: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(not_after > now, "{r}");
    let r = prom
        .wait_for(
            "mxtrace_stage_error{job=\"refused\",stage=\"connect\"}",
            |_| true,
        )
        .await;
    assert_eq!(r["metric"]["kind"], "refused", "{r}");
    let r = prom
        .wait_for("mxtrace_probe_success{job=\"refused\"}", |_| true)
        .await;
    assert_eq!(r["value"][1], "0");
    drop(prom);
    exp.stop();
}

/// monitoring/: the example Prometheus config and the alert rules pass promtool, and every
/// alert has a unit test that fires it (monitoring/alerts.test.yml).
#[test]
fn promtool_checks_the_monitoring_files() {
    if !prometheus_installed() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring");
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every alert in the rules is exercised by a unit test.
    let rules = std::fs::read_to_string(root.join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(root.join("alerts.test.yml")).unwrap();
    for name in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "no test fires {name}"
        );
    }
}

/// `[roundtrips.NAME]`: a round trip through the real Postfix into the real Dovecot, run on
/// its own schedule; `/metrics` shows its last result, and no password appears anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrips_run_on_their_schedule_and_show_in_metrics() {
    let Some(lab) = PostfixLab::start_with_imap() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("mxtrace-serve-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "[roundtrips.lab]\ninterval = \"10s\"\nvia = \"{}\"\nfrom = \"probe@fabrikam.test\"\n\
         rcpt = \"{}\"\nmailbox = \"imaps://{}@{}:{}\"\nmailbox_password_env = \"MBOX_PW\"\n\
         mailbox_ca_file = \"{ca}\"\nmailbox_tls_name = \"{name}\"\ntls_ca_file = \"{ca}\"\n\
         tls_name = \"{name}\"\nwithin = \"20s\"\n",
        lab.target("PORT_SMTP"),
        lab.get("VALID_RCPT"),
        lab.get("IMAP_USER"),
        lab.get("ADDR"),
        lab.get("PORT_IMAPS"),
        ca = lab.get("CA_FILE"),
        name = lab.get("TLS_NAME"),
    );
    let path = write(&dir, "exporter.toml", &config);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let exp = Exporter::start(&path, &[("MBOX_PW", lab.get("IMAP_PASSWORD"))]);
    let mut text = String::new();
    for _ in 0..300 {
        text = http(exp.addr, "GET", "/metrics", &[]).await.1;
        if text.contains("mxtrace_roundtrip_runs_total{roundtrip=\"lab\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |s: &str| value(&text, s).unwrap_or_else(|| panic!("no {s} in\n{text}"));
    assert_eq!(
        get("mxtrace_roundtrip_runs_total{roundtrip=\"lab\",result=\"success\"}"),
        "1"
    );
    assert_eq!(get("mxtrace_roundtrip_success{roundtrip=\"lab\"}"), "1");
    assert_eq!(get("mxtrace_roundtrip_delivered{roundtrip=\"lab\"}"), "1");
    assert_eq!(get("mxtrace_roundtrip_in_junk{roundtrip=\"lab\"}"), "0");
    let secs: f64 = get("mxtrace_roundtrip_delivery_seconds{roundtrip=\"lab\"}")
        .parse()
        .unwrap();
    assert!((0.0..20.0).contains(&secs), "{secs}");
    let hop1 = format!(
        "mxtrace_roundtrip_hop_delay_seconds{{roundtrip=\"lab\",hop=\"1\",by=\"{}\"}}",
        lab.get("TLS_NAME")
    );
    get(&hop1);
    assert!(
        text.contains("mxtrace_roundtrip_path_info{roundtrip=\"lab\",path=\""),
        "{text}"
    );
    let last: f64 = get("mxtrace_roundtrip_last_success_timestamp_seconds{roundtrip=\"lab\"}")
        .parse()
        .unwrap();
    assert!(last >= started, "{last} < {started}");
    assert_eq!(
        get("mxtrace_roundtrip_findings{roundtrip=\"lab\",severity=\"error\"}"),
        "0"
    );
    let log = exp.stop();
    assert!(
        log.contains("roundtrip=\"lab\" success=true delivered to INBOX"),
        "{log}"
    );
    for out in [&text, &log] {
        assert!(!out.contains(lab.get("IMAP_PASSWORD")));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A connection that opened and sent one header line, kept open until closed from the other
/// side; returns when it was closed (EOF or reset), or None if still open at `until`.
async fn closed_within(mut s: tokio::net::TcpStream, until: Instant) -> Option<Instant> {
    let mut buf = [0u8; 512];
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Slowloris: 1,000 connections that never finish their request head are closed by
/// `header_timeout` while scrapes of `/metrics` and `/probe` are answered; an idle keep-alive
/// connection is closed by `idle_timeout`; heads and bodies over `max_request_bytes` are
/// refused; a connection over `max_connections` is closed at once. Small limits, loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_by_the_deadlines_while_scrapes_are_answered() {
    let dir = lab::TempDir::new();
    let refused = support::refused_addr();
    let config = write(
        dir.path(),
        "limits.toml",
        "header_timeout = \"2s\"\nidle_timeout = \"1s\"\nmax_connections = 1100\n\
         max_request_bytes = 8192\n[modules.m]\nallowed_targets = [\"127.0.0.0/8\"]\n\
         starttls = \"never\"\nconnect_timeout = \"2s\"\n",
    );
    let exp = Exporter::start(&config, &[]);
    let mut slow = Vec::new();
    for _ in 0..1000 {
        // Before the connect: the exporter's deadline runs from its accept, which is later.
        let opened = Instant::now();
        let mut s = tokio::net::TcpStream::connect(exp.addr)
            .await
            .expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: slow\r\n")
            .await
            .expect("one header line");
        slow.push((s, opened));
    }
    // Scrapes are answered while they wait: every slow connection is open or was closed by
    // the deadline (opening 1,000 can take longer than the deadline on a loaded machine).
    let (status, own) = http(exp.addr, "GET", "/metrics", &[]).await;
    assert_eq!(status, 200);
    let count =
        |own: &str, series: &str| -> u32 { value(own, series).map_or(0, |v| v.parse().unwrap()) };
    let timed_out = "mxtrace_exporter_connections_closed_total{reason=\"header_timeout\"}";
    let seen = count(&own, "mxtrace_exporter_connections") + count(&own, timed_out);
    assert!(seen > 1000, "{own}");
    let target = format!("/probe?module=m&target={refused}");
    let (status, probe) = http(exp.addr, "GET", &target, &[]).await;
    assert_eq!(
        (status, value(&probe, "mxtrace_probe_success")),
        (200, Some("0"))
    );
    // Every slow connection is closed by its deadline (2 s after it opened; 3 s of slack for
    // a loaded machine), none before it.
    let closes: Vec<_> = slow
        .into_iter()
        .map(|(s, opened)| {
            let closed = closed_within(s, opened + Duration::from_secs(5));
            tokio::spawn(async move { (opened, closed.await) })
        })
        .collect();
    for (i, c) in closes.into_iter().enumerate() {
        let (opened, closed) = c.await.unwrap();
        let at = closed.unwrap_or_else(|| panic!("slow connection {i} still open after 5 s"));
        assert!(
            at >= opened + Duration::from_secs(2),
            "connection {i} closed early"
        );
    }
    let (_, own) = http(exp.addr, "GET", "/metrics", &[]).await;
    assert!(count(&own, timed_out) >= 1000, "{own}");

    // An idle keep-alive connection: answered, then closed after idle_timeout.
    let mut keep = tokio::net::TcpStream::connect(exp.addr).await.unwrap();
    keep.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: k\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = keep.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle_from = Instant::now();
    let closed = closed_within(keep, idle_from + Duration::from_secs(4)).await;
    assert!(closed.is_some_and(|t| t >= idle_from + Duration::from_millis(900)));

    // A head over max_request_bytes: 431; a body declared over it: 413.
    let big = "x".repeat(9000);
    let (status, _) = http(exp.addr, "GET", "/-/healthy", &[("X-Big", &big)]).await;
    assert_eq!(status, 431);
    let mut s = tokio::net::TcpStream::connect(exp.addr).await.unwrap();
    s.write_all(b"POST /-/reload HTTP/1.1\r\nHost: b\r\nContent-Length: 100000\r\n\r\n")
        .await
        .unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let (_, own) = http(exp.addr, "GET", "/metrics", &[]).await;
    assert_eq!(
        value(
            &own,
            "mxtrace_exporter_rejected_total{reason=\"request_too_large\"}"
        ),
        Some("1")
    );
    exp.stop();
}

/// One connection over `max_connections` is closed at accept and counted; the slots come back
/// when connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_max_connections_is_closed_at_once() {
    let dir = lab::TempDir::new();
    let config = write(
        dir.path(),
        "cap.toml",
        "header_timeout = \"3s\"\nmax_connections = 2\n[modules.m]\n\
         allowed_targets = [\"127.0.0.1\"]\n",
    );
    let exp = Exporter::start(&config, &[]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(exp.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    // Accepted by the kernel, then closed by the exporter before the deadline of the others.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = tokio::net::TcpStream::connect(exp.addr).await.unwrap();
    let closed = closed_within(third, Instant::now() + Duration::from_secs(2)).await;
    assert!(closed.is_some(), "the third connection was held");
    drop(held);
    // Slots free again: a scrape is answered and the refusal was counted. A scrape sent before
    // the exporter has seen the held connections close is refused too, and counted.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tries = 0;
    let own = loop {
        tries += 1;
        if let Ok(Ok((200, own))) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::spawn(http(exp.addr, "GET", "/metrics", &[])),
        )
        .await
        {
            break own;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape answered after the slots came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rejected = value(
        &own,
        "mxtrace_exporter_rejected_total{reason=\"connection_limit\"}",
    )
    .and_then(|v| v.parse::<u32>().ok());
    assert!(
        matches!(rejected, Some(n) if (1..=tries).contains(&n)),
        "{rejected:?} after {tries} scrape(s): {own}"
    );
    exp.stop();
}
