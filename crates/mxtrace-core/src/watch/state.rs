//! The watch's memory, fed one sample at a time: per target and stage the running numbers, the
//! status, the outages and the before/during/after stretches; the events each sample causes.
//! No clock and no I/O: times come in the samples, so tests feed it directly.

use mxtrace_proto::model::watch::{
    duration_words, EventKind, Outage, PhaseStats, Phases, ProbeSample, SampleStage, StageStats,
    State, TargetKind, TargetStatus, TimelinePoint, WatchEvent, WatchTarget,
};
use mxtrace_proto::model::{Outcome, Stage};
use std::collections::VecDeque;

/// Times kept per stage for the sparkline.
pub const RECENT: usize = 60;
/// Probes kept per target in the timeline (about 28 hours at the default 5 s); the oldest go.
pub const TIMELINE_MAX: usize = 20_000;
/// Events kept (the oldest go first); a flapping target cannot grow memory without bound.
pub const EVENTS_MAX: usize = 10_000;

/// Every target's state and the events so far.
#[derive(Debug, Clone)]
pub struct WatchState {
    targets: Vec<TargetState>,
    events: VecDeque<WatchEvent>,
}

#[derive(Debug, Clone)]
struct TargetState {
    name: String,
    kind: TargetKind,
    probes: u64,
    failed: u64,
    last: Option<ProbeSample>,
    stages: Vec<StageAcc>,
    status: TargetStatus,
    before: PhaseAcc,
    during: PhaseAcc,
    /// Since the latest recovery; folded into `during` when the target fails again.
    after: PhaseAcc,
    outages: Vec<Outage>,
    timeline: VecDeque<TimelinePoint>,
    timeline_dropped: u64,
}

#[derive(Debug, Clone)]
struct StageAcc {
    stage: Stage,
    count: u64,
    failed: u64,
    sum_ms: f64,
    best_ms: f64,
    worst_ms: f64,
    jitter_sum: f64,
    prev_ms: Option<f64>,
    recent: VecDeque<f64>,
    last: SampleStage,
}

#[derive(Debug, Clone, Copy, Default)]
struct PhaseAcc {
    probes: u64,
    failed: u64,
    sum_ms: f64,
    best_ms: Option<f64>,
    worst_ms: Option<f64>,
}

impl PhaseAcc {
    fn add(&mut self, s: &ProbeSample) {
        self.probes += 1;
        self.failed += u64::from(!s.passed);
        self.sum_ms += s.elapsed_ms;
        self.best_ms = Some(self.best_ms.map_or(s.elapsed_ms, |b| b.min(s.elapsed_ms)));
        self.worst_ms = Some(self.worst_ms.map_or(s.elapsed_ms, |w| w.max(s.elapsed_ms)));
    }

    fn merge(&mut self, o: &PhaseAcc) {
        self.probes += o.probes;
        self.failed += o.failed;
        self.sum_ms += o.sum_ms;
        self.best_ms = min_opt(self.best_ms, o.best_ms);
        self.worst_ms = max_opt(self.worst_ms, o.worst_ms);
    }

    fn stats(&self) -> PhaseStats {
        PhaseStats {
            probes: self.probes,
            failed: self.failed,
            fail_share: share(self.failed, self.probes),
            avg_ms: (self.probes > 0).then(|| self.sum_ms / self.probes as f64),
            best_ms: self.best_ms,
            worst_ms: self.worst_ms,
        }
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl StageAcc {
    fn new(s: &SampleStage) -> StageAcc {
        StageAcc {
            stage: s.stage,
            count: 0,
            failed: 0,
            sum_ms: 0.0,
            best_ms: f64::INFINITY,
            worst_ms: 0.0,
            jitter_sum: 0.0,
            prev_ms: None,
            recent: VecDeque::with_capacity(RECENT),
            last: s.clone(),
        }
    }

    fn add(&mut self, s: &SampleStage, decided: bool) {
        let t = s.elapsed_ms;
        self.count += 1;
        self.failed += u64::from(decided);
        self.sum_ms += t;
        self.best_ms = self.best_ms.min(t);
        self.worst_ms = self.worst_ms.max(t);
        if let Some(p) = self.prev_ms {
            self.jitter_sum += (t - p).abs();
        }
        self.prev_ms = Some(t);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(t);
        self.last = s.clone();
    }

    fn stats(&self, probes: u64) -> StageStats {
        let n = self.count.max(1) as f64;
        StageStats {
            stage: self.stage,
            count: self.count,
            failed: self.failed,
            fail_share: share(self.failed, probes),
            last_ms: self.last.elapsed_ms,
            avg_ms: self.sum_ms / n,
            best_ms: if self.count == 0 { 0.0 } else { self.best_ms },
            worst_ms: self.worst_ms,
            jitter_ms: if self.count > 1 {
                self.jitter_sum / (self.count - 1) as f64
            } else {
                0.0
            },
            recent_ms: self.recent.iter().copied().collect(),
            outcome: self.last.outcome,
            code: self.last.code,
            enhanced: self.last.enhanced.clone(),
            category: self.last.category,
        }
    }
}

/// Where a probe failed and what was answered there: its failing stage, or DNS for a trace
/// that DNS decided.
fn failure_point(s: &ProbeSample) -> (Option<Stage>, String) {
    let stage = s.failed_stage;
    let answer = stage
        .and_then(|f| s.stages.iter().rev().find(|x| x.stage == f))
        .map(SampleStage::answer)
        .unwrap_or_else(|| match stage {
            Some(_) => s.outcome.as_str().to_string(),
            None => "dns".to_string(),
        });
    (stage, answer)
}

/// The first stage whose answer differs between two probes: (stage, before, after). A stage
/// one of them did not reach counts as `not reached`.
fn first_change(prev: &ProbeSample, cur: &ProbeSample) -> Option<(Stage, String, String)> {
    let find = |s: &ProbeSample, st: Stage| s.stages.iter().find(|x| x.stage == st).cloned();
    let not_reached = || "not reached".to_string();
    for c in &cur.stages {
        match find(prev, c.stage) {
            Some(p) if p.same_answer(c) => {}
            Some(p) => return Some((c.stage, p.answer(), c.answer())),
            None => return Some((c.stage, not_reached(), c.answer())),
        }
    }
    prev.stages
        .iter()
        .find(|p| find(cur, p.stage).is_none())
        .map(|p| (p.stage, p.answer(), not_reached()))
}

impl TargetState {
    fn new(name: String, kind: TargetKind) -> TargetState {
        TargetState {
            name,
            kind,
            probes: 0,
            failed: 0,
            last: None,
            stages: Vec::new(),
            status: TargetStatus {
                state: State::Unknown,
                since: None,
                since_ms: None,
            },
            before: PhaseAcc::default(),
            during: PhaseAcc::default(),
            after: PhaseAcc::default(),
            outages: Vec::new(),
            timeline: VecDeque::new(),
            timeline_dropped: 0,
        }
    }

    fn add_stages(&mut self, s: &ProbeSample) {
        for st in &s.stages {
            let decided = s.failed_stage == Some(st.stage);
            match self.stages.iter_mut().find(|a| a.stage == st.stage) {
                Some(acc) => acc.add(st, decided),
                None => {
                    let mut acc = StageAcc::new(st);
                    acc.add(st, decided);
                    self.stages.push(acc);
                    // In the order a session runs them, whichever probe saw a stage first.
                    self.stages
                        .sort_by_key(|a| Stage::ALL.iter().position(|x| *x == a.stage));
                }
            }
        }
    }

    fn add_phase(&mut self, s: &ProbeSample) {
        let ever_failed = !self.outages.is_empty();
        if s.passed && !ever_failed {
            self.before.add(s);
        } else if s.passed {
            self.after.add(s);
        } else {
            // A new failure: what looked like "after" was still the window.
            let after = std::mem::take(&mut self.after);
            self.during.merge(&after);
            self.during.add(s);
        }
    }

    fn add_timeline(&mut self, s: &ProbeSample) {
        if self.timeline.len() == TIMELINE_MAX {
            self.timeline.pop_front();
            self.timeline_dropped += 1;
        }
        self.timeline.push_back(TimelinePoint {
            at_ms: s.at_ms,
            elapsed_ms: s.elapsed_ms,
            passed: s.passed,
            failed_stage: s.failed_stage,
        });
    }

    /// Opens, extends or closes the outage; returns how long a closed one lasted.
    fn track_outage(&mut self, s: &ProbeSample) -> Option<f64> {
        let open = self.outages.last_mut().filter(|o| o.end_ms.is_none());
        match (open, s.passed) {
            (Some(o), true) => {
                o.end = Some(s.at.clone());
                o.end_ms = Some(s.at_ms);
                o.duration_ms = s.at_ms - o.start_ms;
                Some(o.duration_ms)
            }
            (Some(o), false) => {
                o.probes_failed += 1;
                None
            }
            (None, false) => {
                let (stage, reply) = failure_point(s);
                let text = stage
                    .and_then(|f| s.stages.iter().rev().find(|x| x.stage == f))
                    .and_then(|x| x.text.clone());
                self.outages.push(Outage {
                    start: s.at.clone(),
                    start_ms: s.at_ms,
                    end: None,
                    end_ms: None,
                    duration_ms: 0.0,
                    stage,
                    reply,
                    category: s.category,
                    text,
                    probes_failed: 1,
                });
                None
            }
            (None, true) => None,
        }
    }

    /// The event this sample causes, if it changed anything.
    fn event(&self, s: &ProbeSample, outage_ms: Option<f64>) -> Option<WatchEvent> {
        let base = |kind, stage, from, to, category, message| WatchEvent {
            target: self.name.clone(),
            seq: s.seq,
            at: s.at.clone(),
            at_ms: s.at_ms,
            kind,
            stage,
            from,
            to,
            category,
            outage_ms,
            message,
        };
        let Some(prev) = &self.last else {
            let (stage, answer) = failure_point(s);
            return Some(if s.passed {
                let msg = "first probe passed".to_string();
                base(EventKind::First, None, None, None, None, msg)
            } else {
                let msg = format!("first probe failed: {}", words(stage, None, &answer, s));
                base(EventKind::First, stage, None, Some(answer), s.category, msg)
            });
        };
        let change = first_change(prev, s);
        let kind = match (prev.passed, s.passed) {
            (true, false) => EventKind::Down,
            (false, true) => EventKind::Up,
            _ if change.is_some() => EventKind::Changed,
            _ => return None,
        };
        // A failure is named by the stage that failed, even if an earlier one changed too.
        let failure_moved = !s.passed && (prev.passed || failure_point(prev) != failure_point(s));
        let (stage, from, to) = match change {
            _ if failure_moved => {
                let (stage, to) = failure_point(s);
                // DNS decided (no stage): the verdict before is what changed.
                let from = match stage {
                    None => verdict(prev),
                    Some(f) => prev
                        .stages
                        .iter()
                        .find(|x| x.stage == f)
                        .map_or_else(|| "not reached".to_string(), SampleStage::answer),
                };
                (stage, from, to)
            }
            Some((stage, from, to)) => (Some(stage), from, to),
            None => (None, verdict(prev), verdict(s)),
        };
        let category = match kind {
            EventKind::Up => None,
            _ => stage
                .and_then(|f| s.stages.iter().rev().find(|x| x.stage == f))
                .and_then(|x| x.category)
                .or(s.category),
        };
        let what = words(stage, Some(&from), &to, s);
        let message = match (kind, outage_ms) {
            (EventKind::Up, Some(ms)) => format!("recovered after {}: {what}", duration_words(ms)),
            _ => what,
        };
        Some(base(kind, stage, Some(from), Some(to), category, message))
    }

    fn snapshot(&self, now_ms: f64, timeline: bool) -> WatchTarget {
        let mut outages = self.outages.clone();
        if let Some(o) = outages.last_mut().filter(|o| o.end_ms.is_none()) {
            o.duration_ms = (now_ms - o.start_ms).max(0.0);
        }
        WatchTarget {
            target: self.name.clone(),
            kind: self.kind,
            status: self.status.clone(),
            probes: self.probes,
            failed: self.failed,
            last: self.last.clone(),
            stages: self.stages.iter().map(|a| a.stats(self.probes)).collect(),
            phases: Phases {
                before: self.before.stats(),
                during: self.during.stats(),
                after: self.after.stats(),
            },
            outages,
            timeline: if timeline {
                self.timeline.iter().cloned().collect()
            } else {
                Vec::new()
            },
            timeline_dropped: self.timeline_dropped,
        }
    }
}

fn verdict(s: &ProbeSample) -> String {
    if s.passed { "passed" } else { "failed" }.to_string()
}

/// `rcpt_to 250 -> 554 5.7.1 relay_denied`; the category only when the new answer failed.
fn words(stage: Option<Stage>, from: Option<&str>, to: &str, s: &ProbeSample) -> String {
    let mut out = stage.map_or_else(String::new, |st| format!("{st} "));
    if let Some(f) = from {
        out.push_str(&format!("{f} -> "));
    }
    out.push_str(to);
    let failed_here = stage.and_then(|f| s.stages.iter().rev().find(|x| x.stage == f));
    let category = match failed_here {
        Some(x) if x.outcome != Outcome::Ok => x.category,
        Some(_) => None,
        None if !s.passed => s.category,
        None => None,
    };
    if let Some(c) = category {
        out.push_str(&format!(" {c}"));
    }
    out
}

impl WatchState {
    /// Targets by name and kind, in the order given (their index is used from then on).
    pub fn new(targets: impl IntoIterator<Item = (String, TargetKind)>) -> WatchState {
        WatchState {
            targets: targets
                .into_iter()
                .map(|(n, k)| TargetState::new(n, k))
                .collect(),
            events: VecDeque::new(),
        }
    }

    /// Takes in target `index`'s next sample; returns the event it caused, if any.
    pub fn observe(&mut self, index: usize, s: ProbeSample) -> Option<WatchEvent> {
        let t = self.targets.get_mut(index)?;
        let outage_ms = t.track_outage(&s);
        let event = t.event(&s, outage_ms);
        t.probes += 1;
        t.failed += u64::from(!s.passed);
        t.add_stages(&s);
        t.add_phase(&s);
        t.add_timeline(&s);
        let state = if s.passed { State::Up } else { State::Down };
        if t.status.state != state {
            t.status = TargetStatus {
                state,
                since: Some(s.at.clone()),
                since_ms: Some(s.at_ms),
            };
        }
        t.last = Some(s);
        if let Some(e) = &event {
            if self.events.len() == EVENTS_MAX {
                self.events.pop_front();
            }
            self.events.push_back(e.clone());
        }
        event
    }

    /// Forgets the per-stage numbers and the probe counts (the live screen's reset); the
    /// status, outages, stretches, timeline and events are the window's record and stay.
    pub fn reset_stats(&mut self) {
        for t in &mut self.targets {
            t.stages.clear();
            t.probes = 0;
            t.failed = 0;
        }
    }

    /// Every target as the model has it; `timeline` false leaves the timelines out (the live
    /// screen redraws often and shows none).
    pub fn targets(&self, now_ms: f64, timeline: bool) -> Vec<WatchTarget> {
        self.targets
            .iter()
            .map(|t| t.snapshot(now_ms, timeline))
            .collect()
    }

    pub fn events(&self) -> impl DoubleEndedIterator<Item = &WatchEvent> + ExactSizeIterator {
        self.events.iter()
    }

    /// The number of targets.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// True when every target has been probed and its latest probe passed.
    pub fn all_up(&self) -> bool {
        self.targets
            .iter()
            .all(|t| t.last.as_ref().is_some_and(|s| s.passed))
    }
}
