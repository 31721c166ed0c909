//! The watch loop on tokio's paused clock with canned probe reports: exact events, outage
//! windows, stretches, schedules (overruns skip ticks, a slow target delays no other), pause,
//! reset and the stop conditions.

use super::*;
use mxtrace_proto::model::watch::{EventKind, State, TargetKind};
use mxtrace_proto::model::{ProbeReport, Stage};
use mxtrace_proto::spec::Naming;
use serde_json::json;
use std::sync::Mutex;

/// What a canned probe answers at RCPT (250 passes), or a refused connection (0).
#[derive(Clone, Copy)]
struct Canned {
    rcpt: u16,
    took: Duration,
}

fn ok() -> Canned {
    Canned {
        rcpt: 250,
        took: Duration::from_millis(40),
    }
}

fn denied() -> Canned {
    Canned {
        rcpt: 554,
        took: Duration::from_millis(40),
    }
}

fn refused() -> Canned {
    Canned {
        rcpt: 0,
        took: Duration::from_millis(1),
    }
}

fn stage(name: &str, code: Option<u16>, outcome: &str, ms: f64) -> serde_json::Value {
    let reply = code.map(|c| {
        let text = match c {
            554 => "554 5.7.1 <a@b.test>: Relay access denied".to_string(),
            250 => "250 2.1.5 Ok".to_string(),
            c => format!("{c} ok"),
        };
        json!({"code": c, "enhanced": if c == 554 { Some("5.7.1") } else { None }, "lines": [text]})
    });
    let diagnosis = (outcome != "ok").then(|| {
        let category = if code.is_some() {
            "relay_denied"
        } else {
            "other"
        };
        json!({"category": category, "layer": "recipient", "cause": "c", "next_steps": []})
    });
    let error = (code.is_none() && outcome != "ok")
        .then(|| json!({"kind": "refused", "message": "connection refused"}));
    json!({"stage": name, "sent": [], "reply": reply, "elapsed_ms": ms, "started_ms": 0.0,
        "encrypted": false, "outcome": outcome, "error": error, "notes": [],
        "diagnosis": diagnosis})
}

fn report(c: Canned) -> JobReport {
    let mut stages = vec![];
    let (passed, failed, outcome) = if c.rcpt == 0 {
        stages.push(stage("connect", None, "error", 1.0));
        (false, Some("connect"), "error")
    } else {
        stages.push(stage("connect", None, "ok", 1.0));
        stages.push(stage("banner", Some(220), "ok", 10.0));
        stages.push(stage("ehlo", Some(250), "ok", 2.0));
        let o = if c.rcpt == 250 { "ok" } else { "permanent" };
        stages.push(stage("rcpt_to", Some(c.rcpt), o, 20.0));
        stages.push(stage("quit", Some(221), "ok", 1.0));
        let passed = c.rcpt == 250;
        (passed, (!passed).then_some("rcpt_to"), o)
    };
    let p: ProbeReport = serde_json::from_value(json!({
        "target": {"host": "mx.test", "port": 25, "tls_mode": "none"},
        "stages": stages, "capabilities": {},
        "verdict": {"passed": passed, "outcome": outcome, "failed_stage": failed,
            "summary": "s", "warnings": []},
        "started_at": "x", "elapsed_ms": c.took.as_secs_f64() * 1000.0,
    }))
    .unwrap();
    JobReport::Probe(Box::new(p))
}

/// Target i plays script i, one entry per probe, the last repeated.
struct Scripted(Vec<Vec<Canned>>, Mutex<Vec<usize>>);

impl Scripted {
    fn new(scripts: Vec<Vec<Canned>>) -> Arc<Scripted> {
        let n = scripts.len();
        Arc::new(Scripted(scripts, Mutex::new(vec![0; n])))
    }
}

impl Prober for Scripted {
    fn run(
        &self,
        index: usize,
        _job: &Job,
    ) -> impl Future<Output = Result<JobReport, TraceError>> + Send {
        let c = {
            let mut seen = self.1.lock().unwrap();
            let script = &self.0[index];
            let c = script[seen[index].min(script.len() - 1)];
            seen[index] += 1;
            c
        };
        async move {
            tokio::time::sleep(c.took).await;
            Ok(report(c))
        }
    }
}

#[derive(Default)]
struct Collect {
    probes: Vec<ProbeSample>,
    events: Vec<WatchEvent>,
}

impl Sink for Collect {
    fn probe(&mut self, s: &ProbeSample, _: &WatchState, _: f64) {
        self.probes.push(s.clone());
    }
    fn event(&mut self, e: &WatchEvent, _: &WatchState, _: f64) {
        self.events.push(e.clone());
    }
}

fn targets(n: usize) -> Vec<WatchTarget> {
    let spec = mxtrace_proto::spec::SessionSpec::default();
    (0..n)
        .map(|i| {
            let target = Target::parse(&format!("127.0.0.{}:25", i + 1), 25).unwrap();
            let job = Job::new(&target, &spec, Default::default(), None, Naming::Flag).unwrap();
            WatchTarget { target, job }
        })
        .collect()
}

fn clock() -> Arc<TokioClock> {
    // 2026-11-23T08:54:49Z
    Arc::new(TokioClock::starting_at(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_424_089),
    ))
}

async fn watch(
    scripts: Vec<Vec<Canned>>,
    opts: WatchOptions,
    controls: Vec<(u64, Control)>,
) -> (WatchReport, Collect) {
    let (tx, rx) = mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    tokio::spawn(async move {
        for (at, c) in controls {
            tokio::time::sleep_until(start + Duration::from_millis(at)).await;
            let _ = tx.send(c);
        }
        // Keep the channel open: a closed one is not a stop.
        std::future::pending::<()>().await;
    });
    let mut sink = Collect::default();
    let n = scripts.len();
    let r = run(
        targets(n),
        &opts,
        clock(),
        Scripted::new(scripts),
        &mut sink,
        rx,
    )
    .await
    .unwrap();
    (r, sink)
}

fn opts(count: Option<u64>, until: Option<Until>) -> WatchOptions {
    WatchOptions::new(Duration::from_secs(5), count, until).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_break_and_its_recovery_are_events_and_one_outage() {
    let script = vec![ok(), ok(), denied(), denied(), ok(), ok()];
    let (r, sink) = watch(vec![script], opts(Some(6), None), vec![]).await;
    let msgs: Vec<(u64, f64, EventKind, &str)> = sink
        .events
        .iter()
        .map(|e| (e.seq, e.at_ms, e.kind, e.message.as_str()))
        .collect();
    assert_eq!(
        msgs,
        [
            (1, 0.0, EventKind::First, "first probe passed"),
            (
                3,
                10_000.0,
                EventKind::Down,
                "rcpt_to 250 -> 554 5.7.1 relay_denied"
            ),
            (
                5,
                20_000.0,
                EventKind::Up,
                "recovered after 10 s: rcpt_to 554 5.7.1 -> 250"
            ),
        ]
    );
    assert_eq!(sink.events[1].at, "2026-11-23T08:54:59.000Z");
    assert_eq!(sink.probes.len(), 6);
    assert_eq!(r.stopped_by, StopReason::Count);
    assert!(r.verdict.passed, "{:?}", r.verdict);
    let t = &r.targets[0];
    assert_eq!(t.status.state, State::Up);
    assert_eq!(t.status.since_ms, Some(20_000.0));
    assert_eq!(t.outages.len(), 1);
    let o = &t.outages[0];
    assert_eq!(
        (o.start_ms, o.end_ms, o.duration_ms),
        (10_000.0, Some(20_000.0), 10_000.0)
    );
    assert_eq!(
        (o.stage, o.reply.as_str()),
        (Some(Stage::RcptTo), "554 5.7.1")
    );
    assert_eq!(
        o.category,
        Some(mxtrace_proto::model::Category::RelayDenied)
    );
    assert_eq!(o.probes_failed, 2);
    assert_eq!(o.text.as_deref(), Some("<a@b.test>: Relay access denied"));
    let p = &t.phases;
    assert_eq!(
        (p.before.probes, p.during.probes, p.after.probes),
        (2, 2, 2)
    );
    assert_eq!((p.during.failed, p.during.fail_share), (2, 1.0));
    let rcpt = t.stages.iter().find(|s| s.stage == Stage::RcptTo).unwrap();
    assert_eq!((rcpt.count, rcpt.failed), (6, 2));
    assert!((rcpt.fail_share - 2.0 / 6.0).abs() < 1e-9);
    assert_eq!(
        (rcpt.code, rcpt.best_ms, rcpt.worst_ms),
        (Some(250), 20.0, 20.0)
    );
    assert_eq!(rcpt.recent_ms.len(), 6);
    let order: Vec<Stage> = t.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        order,
        [
            Stage::Connect,
            Stage::Banner,
            Stage::Ehlo,
            Stage::RcptTo,
            Stage::Quit
        ]
    );
    assert_eq!(t.timeline.len(), 6);
    assert_eq!(r.events.len(), 3);
    // The report reads back as it was written.
    let back: WatchReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back.targets[0].outages, t.outages);
}

#[tokio::test(start_paused = true)]
async fn a_change_during_an_outage_and_an_open_outage_at_the_end() {
    let script = vec![ok(), refused(), denied()];
    let (r, sink) = watch(vec![script], opts(Some(3), None), vec![]).await;
    let msgs: Vec<&str> = sink.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "first probe passed",
            "connect ok -> error refused other",
            "rcpt_to not reached -> 554 5.7.1 relay_denied"
        ]
    );
    assert_eq!(sink.events[2].kind, EventKind::Changed);
    assert!(!r.verdict.passed);
    assert_eq!(r.verdict.summary, "last probe failed: 127.0.0.1:25");
    let o = &r.targets[0].outages[0];
    assert_eq!((o.end_ms, o.reply.as_str()), (None, "error refused"));
    // Open: it lasts until the end of the watch (the third probe ended at 10.04 s).
    assert!((o.duration_ms - 5_040.0).abs() < 1.0, "{}", o.duration_ms);
    assert_eq!(r.targets[0].phases.after.probes, 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_target_delays_no_other_and_overruns_skip_ticks() {
    let slow = Canned {
        took: Duration::from_secs(12),
        ..ok()
    };
    let (_, sink) = watch(vec![vec![slow], vec![ok()]], opts(Some(3), None), vec![]).await;
    let at = |t: &str| -> Vec<f64> {
        sink.probes
            .iter()
            .filter(|p| p.target == t)
            .map(|p| p.at_ms)
            .collect()
    };
    assert_eq!(at("127.0.0.2:25"), [0.0, 5_000.0, 10_000.0]);
    assert_eq!(at("127.0.0.1:25"), [0.0, 15_000.0, 30_000.0]);
}

#[tokio::test(start_paused = true)]
async fn pause_reset_and_stop() {
    let controls = vec![
        (1_000, Control::Pause(true)),
        (16_000, Control::Pause(false)),
        (17_000, Control::Reset),
        (22_000, Control::Stop),
    ];
    let (r, sink) = watch(vec![vec![ok()]], opts(None, None), controls).await;
    let at: Vec<f64> = sink.probes.iter().map(|p| p.at_ms).collect();
    assert_eq!(at, [0.0, 16_000.0, 20_000.0]);
    assert_eq!(r.stopped_by, StopReason::Interrupted);
    // Reset: the probe at 20 s is the only one counted; the timeline keeps all three.
    assert_eq!(r.targets[0].probes, 1);
    assert_eq!(r.targets[0].stages[0].count, 1);
    assert_eq!(r.targets[0].timeline.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn until_fail_and_until_pass() {
    let (r, sink) = watch(
        vec![vec![ok(), ok(), denied()], vec![ok()]],
        opts(None, Some(Until::Fail)),
        vec![],
    )
    .await;
    assert_eq!(r.stopped_by, StopReason::UntilFail);
    assert!(!sink.probes.last().unwrap().passed);
    let (r, sink) = watch(
        vec![vec![denied(), denied(), ok()]],
        opts(None, Some(Until::Pass)),
        vec![],
    )
    .await;
    assert_eq!(r.stopped_by, StopReason::UntilPass);
    assert_eq!(sink.probes.len(), 3);
    assert_eq!(
        sink.events[0].message,
        "first probe failed: rcpt_to 554 5.7.1 relay_denied"
    );
    assert_eq!(r.targets[0].outages[0].start_ms, 0.0);
}

#[test]
fn a_failure_dns_decided_has_no_stage() {
    use mxtrace_proto::model::{Category, Outcome};
    let mut st = WatchState::new([("contoso.test".to_string(), TargetKind::Trace)]);
    let s = |seq: u64, passed: bool| ProbeSample {
        target: "contoso.test".into(),
        seq,
        at: format!("t{seq}"),
        at_ms: seq as f64 * 1000.0,
        elapsed_ms: 5.0,
        passed,
        outcome: if passed { Outcome::Ok } else { Outcome::Error },
        failed_stage: None,
        category: (!passed).then_some(Category::DnsFailure),
        summary: String::new(),
        stages: vec![],
    };
    assert_eq!(
        st.observe(0, s(1, true)).unwrap().message,
        "first probe passed"
    );
    let e = st.observe(0, s(2, false)).unwrap();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (EventKind::Down, "passed -> dns dns_failure")
    );
    assert!(
        st.observe(0, s(3, false)).is_none(),
        "the same failure again"
    );
    let t = &st.targets(3_500.0, false)[0];
    let o = &t.outages[0];
    assert_eq!(
        (o.stage, o.reply.as_str(), o.probes_failed),
        (None, "dns", 2)
    );
    assert_eq!(o.duration_ms, 1_500.0, "open: up to now");
    assert_eq!(t.status.since.as_deref(), Some("t2"));
}

#[test]
fn intervals_have_a_floor() {
    assert!(WatchOptions::new(Duration::from_millis(999), None, None).is_err());
    assert!(WatchOptions::new(MIN_INTERVAL, None, None).is_ok());
    let s = Duration::from_secs;
    assert_eq!(next_tick(s(0), s(1), s(5)), s(5));
    assert_eq!(next_tick(s(0), s(12), s(5)), s(15));
    assert_eq!(next_tick(s(5), s(15), s(5)), s(15));
}
