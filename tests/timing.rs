//! Timings are the network's and the peer's (issue 11): no one-time start-up cost inside a
//! stage, and no delayed-ACK stall on mxtrace's side against a server that holds its next
//! pipelined reply until the previous one is acknowledged. Loopback only.

use mxtrace_core::probe::{self, warm, StartTls};
use mxtrace_proto::model::{ProbeReport, Stage, StageRecord};
use mxtrace_proto::spec::SessionSpec;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A pipelining server with Nagle's algorithm ON that writes each reply on its own, and its EHLO
/// reply a line at a time: its second pipelined reply, and the second line, wait in its kernel
/// until the client has ACKed the first (RFC 896).
async fn nagle_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                tcp.set_nodelay(false).unwrap();
                let (r, mut w) = tcp.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 nagle.test ESMTP\r\n").await.unwrap();
                while let Ok(Some(l)) = lines.next_line().await {
                    let reply: &[u8] = match l.get(..4).map(str::to_ascii_uppercase).as_deref() {
                        Some("EHLO") => {
                            w.write_all(b"250-nagle.test\r\n").await.unwrap();
                            b"250 PIPELINING\r\n"
                        }
                        Some("QUIT") => b"221 bye\r\n",
                        _ => b"250 ok\r\n",
                    };
                    // One write (one segment) per reply.
                    if w.write_all(reply).await.is_err() || reply.starts_with(b"221") {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn options(addr: SocketAddr, starttls: StartTls) -> probe::ProbeOptions {
    let mut o =
        probe::ProbeOptions::from_spec(&SessionSpec::default(), addr.ip().to_string(), addr.port())
            .unwrap();
    o.starttls = starttls;
    o.ehlo = Some("probe.fabrikam.test".into());
    o.from = Some("a@fabrikam.test".into());
    o.rcpts = vec!["b@contoso.test".into()];
    o
}

fn stage(r: &ProbeReport, st: Stage) -> &StageRecord {
    r.stages.iter().find(|s| s.stage == st).unwrap()
}

/// Without quick ACKs, Linux holds the ACK of the MAIL reply (and of EHLO's first line) for at
/// least 40 ms (TCP_DELACK_MIN) and the RCPT reply (the next line) arrives that much later
/// (measured: 42-52 ms, against 0.3 ms with them). The minimum over several sessions is robust to a busy machine: the
/// stall is a floor the kernel imposes on every session, noise is not.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_server_holding_its_next_reply_until_acked_costs_no_delayed_ack() {
    let addr = nagle_server().await;
    let (mut gaps, mut ehlos) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let r = probe::probe(&options(addr, StartTls::Never)).await.unwrap();
        assert!(r.verdict.passed, "{}", r.verdict.summary);
        let end = |s: &StageRecord| s.started_ms + s.elapsed_ms;
        let (mail, rcpt) = (stage(&r, Stage::MailFrom), stage(&r, Stage::RcptTo));
        assert_eq!(mail.started_ms, rcpt.started_ms, "sent in one write");
        gaps.push(end(rcpt) - end(mail));
        ehlos.push(stage(&r, Stage::Ehlo).elapsed_ms);
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        min(&gaps) < 20.0,
        "RCPT reply waited for a delayed ACK: {gaps:?}"
    );
    assert!(
        min(&ehlos) < 20.0,
        "EHLO's 2nd line waited for a delayed ACK: {ehlos:?}"
    );
}

/// AWS-LC's one-time seeding (tens of ms) happens before the first stage's clock starts, so
/// the first `tls_handshake` of a process does not carry it. Structural: the warm-up finished
/// no later than the probe's own start.
#[tokio::test]
async fn the_random_generator_is_seeded_before_the_probe_starts_timing() {
    let addr = nagle_server().await;
    // STARTTLS auto: the probe is ready for TLS, so it pays the seeding up front.
    let r = probe::probe(&options(addr, StartTls::Auto)).await.unwrap();
    let warmed = warm::warmed_at().expect("warmed up by the probe");
    let started = humantime::parse_rfc3339(&r.started_at).unwrap();
    // started_at has millisecond precision: compare at that precision.
    let ms =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert!(ms(warmed) <= ms(started), "{warmed:?} > {started:?}");
}

/// The transcript shows a pipelined group as sent (MAIL, then RCPT), then each reply at the
/// time it arrived: the times down the page never go back.
#[tokio::test]
async fn the_transcript_never_goes_back_in_time() {
    use mxtrace_render::human::render_probe;
    use mxtrace_render::style::Style;
    let addr = nagle_server().await;
    let r = probe::probe(&options(addr, StartTls::Never)).await.unwrap();
    let text = render_probe(&r, Style::new(false));
    let times: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim_start().split_once(" ms ")?.0.parse().ok())
        .collect();
    assert!(times.len() >= 8, "{text}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    assert!(at("-> RCPT TO:") < at("<-  250 ok"), "{text}");
}
