//! `watch`: targets probed (or traced) every interval through a change window, with the
//! statistics, events and outage windows of `model::watch`. The engine part: one task per
//! target on a fixed schedule (a probe that overruns skips the ticks it covered, never stacks;
//! a slow target delays no other), and one loop that feeds their results to `WatchState` and
//! hands every probe and event to a `Sink`. The clock, the prober and the sink are passed in,
//! so tests drive the loop on tokio's paused time with canned reports. No clap, no terminal.

mod sample;
mod state;

pub use sample::{sample, Stamp};
pub use state::{WatchState, EVENTS_MAX, RECENT, TIMELINE_MAX};

use crate::job::{Job, Target};
use crate::trace::TraceError;
use mxtrace_proto::model::watch::{
    ProbeSample, StopReason, TargetKind, WatchEvent, WatchReport, WatchVerdict,
};
use mxtrace_proto::model::JobReport;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Time between two probes of a target when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest interval: one session a second per target, as mtr's default pace. Shorter
/// would hammer a receiver that is being changed (and trip its connection-rate limits, which
/// would then show as failures).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// When the watch stops by itself (it always stops on `Control::Stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The latest probe of every target passed.
    Pass,
    /// Any probe failed.
    Fail,
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub interval: Duration,
    /// Probes per target, then stop.
    pub count: Option<u64>,
    pub until: Option<Until>,
}

/// An interval under `MIN_INTERVAL`.
#[derive(Debug, thiserror::Error)]
#[error("{} is shorter than the {} floor (one session a second per target)",
    humantime::format_duration(*.0), humantime::format_duration(MIN_INTERVAL))]
pub struct IntervalTooShort(pub Duration);

impl WatchOptions {
    pub fn new(
        interval: Duration,
        count: Option<u64>,
        until: Option<Until>,
    ) -> Result<WatchOptions, IntervalTooShort> {
        if interval < MIN_INTERVAL {
            return Err(IntervalTooShort(interval));
        }
        Ok(WatchOptions {
            interval,
            count,
            until,
        })
    }
}

/// What the front end asks of a running watch (keys of the live screen, Ctrl-C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Start no new probe until resumed (a probe under way finishes).
    Pause(bool),
    /// `WatchState::reset_stats`.
    Reset,
    Stop,
}

/// The watch's time: elapsed since its start (monotonic) and the wall time of an instant.
pub trait Clock: Send + Sync + 'static {
    fn elapsed(&self) -> Duration;
    /// RFC 3339 UTC with milliseconds, of the instant `at` after the start.
    fn wall(&self, at: Duration) -> String;
    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send;
}

/// tokio's clock (so `start_paused` tests control it) and the wall time it started at.
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: tokio::time::Instant,
    wall_start: SystemTime,
}

impl TokioClock {
    pub fn new() -> TokioClock {
        TokioClock::starting_at(SystemTime::now())
    }

    /// A clock whose start is this wall time (tests: the same times every run).
    pub fn starting_at(wall_start: SystemTime) -> TokioClock {
        TokioClock {
            start: tokio::time::Instant::now(),
            wall_start,
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn wall(&self, at: Duration) -> String {
        mxtrace_proto::date::rfc3339_ms(self.wall_start + at)
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(self.start + at)
    }
}

/// Runs one target's job: `job::execute`, or canned reports in tests.
pub trait Prober: Send + Sync + 'static {
    fn run(
        &self,
        index: usize,
        job: &Job,
    ) -> impl Future<Output = Result<JobReport, TraceError>> + Send;
}

/// The real thing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Engine;

impl Prober for Engine {
    fn run(
        &self,
        _index: usize,
        job: &Job,
    ) -> impl Future<Output = Result<JobReport, TraceError>> + Send {
        crate::job::execute(job)
    }
}

/// Where probes and events go as they happen (lines, JSON, the live screen). Called from the
/// watch loop: a sink must not block (the screen hands a snapshot to its own thread).
pub trait Sink {
    fn probe(&mut self, sample: &ProbeSample, state: &WatchState, now_ms: f64);
    fn event(&mut self, event: &WatchEvent, state: &WatchState, now_ms: f64);
}

/// One target to watch: what the user wrote and the job it became (`Job::new`).
pub struct WatchTarget {
    pub target: Target,
    pub job: Job,
}

impl WatchTarget {
    pub fn kind(&self) -> TargetKind {
        match self.target {
            Target::Probe { .. } => TargetKind::Probe,
            Target::Trace { .. } => TargetKind::Trace,
        }
    }
}

/// A finished job from a target task: which target, which of its probes, when it started.
struct Done {
    index: usize,
    seq: u64,
    at: Duration,
    result: Result<JobReport, TraceError>,
}

/// Watches until `--count`, `--until` or `Control::Stop`; the report of the whole window.
/// A configuration error (resolver, TLS file) ends the watch with that error.
pub async fn run<C: Clock, P: Prober, S: Sink>(
    targets: Vec<WatchTarget>,
    opts: &WatchOptions,
    clock: Arc<C>,
    prober: Arc<P>,
    sink: &mut S,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> Result<WatchReport, TraceError> {
    let mut state = WatchState::new(targets.iter().map(|t| (t.target.text(), t.kind())));
    let names: Vec<String> = targets.iter().map(|t| t.target.text()).collect();
    let (pause_tx, pause_rx) = watch::channel(false);
    let (mut tasks, mut rx) = spawn_targets(targets, opts, &clock, &prober, pause_rx);
    let mut controls_open = true;
    let stopped_by = loop {
        tokio::select! {
            done = rx.recv() => {
                let Some(done) = done else { break StopReason::Count };
                let at_ms = ms(done.at);
                let stamp = Stamp {
                    target: names.get(done.index).map_or("", String::as_str),
                    seq: done.seq,
                    at: clock.wall(done.at),
                    at_ms,
                };
                let s = sample(&done.result?, stamp);
                let passed = s.passed;
                let event = state.observe(done.index, s.clone());
                let now = ms(clock.elapsed());
                sink.probe(&s, &state, now);
                if let Some(e) = &event {
                    sink.event(e, &state, now);
                }
                match opts.until {
                    Some(Until::Fail) if !passed => break StopReason::UntilFail,
                    Some(Until::Pass) if state.all_up() => break StopReason::UntilPass,
                    _ => {}
                }
            }
            c = control.recv(), if controls_open => match c {
                Some(Control::Pause(p)) => { let _ = pause_tx.send(p); }
                Some(Control::Reset) => state.reset_stats(),
                Some(Control::Stop) => break StopReason::Interrupted,
                None => controls_open = false,
            },
        }
    };
    tasks.abort_all();
    let end = clock.elapsed();
    Ok(report(
        &state,
        clock.as_ref(),
        end,
        opts.interval,
        stopped_by,
    ))
}

/// A task per target, each sending its results to the one receiver returned.
fn spawn_targets<C: Clock, P: Prober>(
    targets: Vec<WatchTarget>,
    opts: &WatchOptions,
    clock: &Arc<C>,
    prober: &Arc<P>,
    pause: watch::Receiver<bool>,
) -> (JoinSet<()>, mpsc::Receiver<Done>) {
    let (tx, rx) = mpsc::channel::<Done>(targets.len().max(1));
    let mut tasks = JoinSet::new();
    for (index, t) in targets.into_iter().enumerate() {
        let schedule = Schedule {
            index,
            interval: opts.interval,
            count: opts.count,
        };
        let job = Arc::new(t.job);
        tasks.spawn(target_loop(
            schedule,
            job,
            clock.clone(),
            prober.clone(),
            tx.clone(),
            pause.clone(),
        ));
    }
    (tasks, rx)
}

/// The report at the end of the watch (or at any instant `end`).
pub fn report<C: Clock>(
    state: &WatchState,
    clock: &C,
    end: Duration,
    interval: Duration,
    stopped_by: StopReason,
) -> WatchReport {
    let targets = state.targets(ms(end), true);
    let down: Vec<String> = targets
        .iter()
        .filter(|t| !t.last.as_ref().is_some_and(|s| s.passed))
        .map(|t| t.target.clone())
        .collect();
    let outages: usize = targets.iter().map(|t| t.outages.len()).sum();
    let passed = down.is_empty();
    let summary = match (passed, outages) {
        (true, 0) => "every target passed every probe".to_string(),
        (true, n) => format!("every target passed its last probe ({n} outage(s) in the window)"),
        (false, _) => format!("last probe failed: {}", down.join(", ")),
    };
    WatchReport {
        started_at: clock.wall(Duration::ZERO),
        ended_at: clock.wall(end),
        elapsed_ms: ms(end),
        interval_ms: ms(interval),
        stopped_by,
        targets,
        events: state.events().cloned().collect(),
        verdict: WatchVerdict { passed, summary },
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Schedule {
    index: usize,
    interval: Duration,
    count: Option<u64>,
}

/// One target: a probe at every tick of its schedule, the result sent to the loop.
async fn target_loop<C: Clock, P: Prober>(
    s: Schedule,
    job: Arc<Job>,
    clock: Arc<C>,
    prober: Arc<P>,
    tx: mpsc::Sender<Done>,
    mut paused: watch::Receiver<bool>,
) {
    let mut next = Duration::ZERO;
    let mut seq = 0u64;
    while s.count.is_none_or(|c| seq < c) {
        clock.sleep_until(next).await;
        while *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                return;
            }
        }
        let at = clock.elapsed();
        let result = prober.run(s.index, &job).await;
        seq += 1;
        let done = Done {
            index: s.index,
            seq,
            at,
            result,
        };
        if tx.send(done).await.is_err() {
            return;
        }
        next = next_tick(next, clock.elapsed(), s.interval);
    }
}

/// The first tick of the schedule (multiples of `interval`) after `prev` that is not already
/// past: a probe that took longer than the interval skips the ticks it covered.
fn next_tick(prev: Duration, now: Duration, interval: Duration) -> Duration {
    let next = prev + interval;
    if next >= now || interval.is_zero() {
        return next;
    }
    let n = now.as_nanos().div_ceil(interval.as_nanos());
    interval * u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
