//! `watch`: targets probed every interval through a change window. The engine
//! (`mxtrace_core::watch`) fills these; the live screen, the event lines, `--json` and the
//! change-window report (`--report`, `--html`, `mxtrace report`) read them.

use super::{Category, ErrorKind, Outcome, Stage};
use serde::{Deserialize, Serialize};

/// The whole change window: every target's statistics, outages and timeline, and every event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WatchReport {
    /// When the first probe started (RFC 3339, UTC).
    pub started_at: String,
    /// When the watch stopped.
    pub ended_at: String,
    pub elapsed_ms: f64,
    /// Time between the starts of two probes of one target.
    pub interval_ms: f64,
    pub stopped_by: StopReason,
    pub targets: Vec<WatchTarget>,
    /// Every change, in the order seen.
    pub events: Vec<WatchEvent>,
    pub verdict: WatchVerdict,
}

/// Why the watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every target was probed `--count` times.
    Count,
    /// `--until pass`: the last probe of every target passed.
    UntilPass,
    /// `--until fail`: a probe failed.
    UntilFail,
    /// Ctrl-C, SIGTERM, or `q` on the live screen.
    Interrupted,
}

/// Exit 0 when the last probe of every target passed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WatchVerdict {
    pub passed: bool,
    pub summary: String,
}

/// A probe of `host:port` or a trace of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Probe,
    Trace,
}

/// One target through the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WatchTarget {
    /// As `probe` or `trace` takes it: `host:port` or a domain.
    pub target: String,
    pub kind: TargetKind,
    pub status: TargetStatus,
    pub probes: u64,
    pub failed: u64,
    /// The latest probe, absent before the first one ends.
    pub last: Option<ProbeSample>,
    /// Per stage, in the order the stages ran.
    pub stages: Vec<StageStats>,
    pub phases: Phases,
    pub outages: Vec<Outage>,
    /// Every probe, oldest first (the oldest are dropped past a bound: `timeline_dropped`).
    pub timeline: Vec<TimelinePoint>,
    #[serde(default)]
    pub timeline_dropped: u64,
}

/// Up or down, and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TargetStatus {
    pub state: State,
    /// When the state began (the start of the probe that showed it); null before any probe.
    pub since: Option<String>,
    pub since_ms: Option<f64>,
}

/// `up` (the last probe passed), `down`, or `unknown` before the first probe ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum State {
    Unknown,
    Up,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        }
    }
}

/// One stage's numbers over the probes that reached it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StageStats {
    pub stage: Stage,
    /// Probes that reached this stage.
    pub count: u64,
    /// Probes whose verdict this stage decided (they failed here).
    pub failed: u64,
    /// `failed` over all the target's probes, 0 to 1.
    pub fail_share: f64,
    pub last_ms: f64,
    pub avg_ms: f64,
    pub best_ms: f64,
    pub worst_ms: f64,
    /// Mean absolute difference between consecutive times (as mtr's jitter).
    pub jitter_ms: f64,
    /// The latest times, oldest first (for a sparkline).
    pub recent_ms: Vec<f64>,
    /// The latest probe's answer at this stage.
    pub outcome: Outcome,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    pub category: Option<Category>,
}

/// Numbers of a stretch of probes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PhaseStats {
    pub probes: u64,
    pub failed: u64,
    /// `failed` over `probes`, 0 to 1.
    pub fail_share: f64,
    /// Whole-probe times, over every probe of the stretch; null without probes.
    pub avg_ms: Option<f64>,
    pub best_ms: Option<f64>,
    pub worst_ms: Option<f64>,
}

/// Before the first failed probe, from it to the last recovery, and after that recovery.
/// `during` and `after` are empty when the target never failed; `after` is empty while it is
/// still down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Phases {
    pub before: PhaseStats,
    pub during: PhaseStats,
    pub after: PhaseStats,
}

/// A stretch of failed probes: from the start of the first to the start of the probe that
/// passed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Outage {
    pub start: String,
    pub start_ms: f64,
    /// Null while the outage lasts (the watch ended during it).
    pub end: Option<String>,
    pub end_ms: Option<f64>,
    /// Up to the end, or to the end of the watch while it lasts.
    pub duration_ms: f64,
    /// The stage and reply of the first failed probe.
    pub stage: Option<Stage>,
    /// `554 5.7.1`, `error refused`: what that stage answered.
    pub reply: String,
    pub category: Option<Category>,
    /// The reply text of that answer (the server's words).
    pub text: Option<String>,
    pub probes_failed: u64,
}

/// One probe in the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TimelinePoint {
    pub at_ms: f64,
    pub elapsed_ms: f64,
    pub passed: bool,
    pub failed_stage: Option<Stage>,
}

/// One probe of one target, as `--json` streams it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProbeSample {
    pub target: String,
    /// 1 for the target's first probe.
    pub seq: u64,
    /// When the probe started, and its offset from the start of the watch.
    pub at: String,
    pub at_ms: f64,
    pub elapsed_ms: f64,
    pub passed: bool,
    pub outcome: Outcome,
    /// The stage that decided a failure; null when it passed or DNS decided (`category`).
    pub failed_stage: Option<Stage>,
    /// The diagnosis category of the failure.
    pub category: Option<Category>,
    pub summary: String,
    pub stages: Vec<SampleStage>,
}

/// One stage of a probe, reduced to what the watch compares and times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SampleStage {
    pub stage: Stage,
    pub elapsed_ms: f64,
    pub outcome: Outcome,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    pub error: Option<ErrorKind>,
    pub category: Option<Category>,
    /// The reply's text (failures only: it says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl SampleStage {
    /// What the stage answered, as events show it: `250` when it went well, `554 5.7.1` when
    /// not, `error refused` without a reply, `ok` for a stage without replies.
    pub fn answer(&self) -> String {
        match (self.code, self.outcome, self.error) {
            (Some(c), Outcome::Ok, _) => c.to_string(),
            (Some(c), _, _) => match &self.enhanced {
                Some(e) => format!("{c} {e}"),
                None => c.to_string(),
            },
            (None, _, Some(k)) => format!("error {}", k.as_str()),
            (None, Outcome::Ok, None) => "ok".to_string(),
            (None, o, None) => o.as_str().to_string(),
        }
    }

    /// Two answers are the same change-wise: same outcome, code and error (an enhanced code
    /// or a text that differs alone is not a change).
    pub fn same_answer(&self, other: &SampleStage) -> bool {
        self.outcome == other.outcome && self.code == other.code && self.error == other.error
    }
}

/// A change seen between two consecutive probes of a target (or its first probe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WatchEvent {
    pub target: String,
    /// The probe that showed the change.
    pub seq: u64,
    pub at: String,
    pub at_ms: f64,
    pub kind: EventKind,
    /// The first stage whose answer changed (the failing stage for `first`).
    pub stage: Option<Stage>,
    /// Its answer before and after (`from` is null for `first`).
    pub from: Option<String>,
    pub to: Option<String>,
    pub category: Option<Category>,
    /// `up`: how long the target was down.
    pub outage_ms: Option<f64>,
    /// The event in words: `rcpt_to 250 -> 554 5.7.1 relay_denied`, `recovered after 39 s`.
    pub message: String,
}

/// `first` (the first probe's state), `down`, `up` (recovered) or `changed` (an answer
/// changed without passing or failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    First,
    Down,
    Up,
    Changed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::First => "first",
            EventKind::Down => "down",
            EventKind::Up => "up",
            EventKind::Changed => "changed",
        }
    }
}

/// One line of `watch --json`: a probe, an event, or the report at the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchLine {
    Probe(ProbeSample),
    Event(WatchEvent),
    Report(WatchReport),
}

/// A duration in words for events and summaries: `850 ms`, `39 s`, `4 min 5 s`, `2 h 3 min`.
pub fn duration_words(ms: f64) -> String {
    if ms < 1000.0 {
        return format!("{} ms", ms.max(0.0).round());
    }
    // Whole seconds: the interval is seconds, a finer figure would be noise.
    let s = (ms / 1000.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_words() {
        assert_eq!(duration_words(850.4), "850 ms");
        assert_eq!(duration_words(39_000.0), "39 s");
        assert_eq!(duration_words(120_000.0), "2 min");
        assert_eq!(duration_words(245_000.0), "4 min 5 s");
        assert_eq!(duration_words(7_380_000.0), "2 h 3 min");
    }

    #[test]
    fn answers_in_words() {
        let mut s = SampleStage {
            stage: Stage::RcptTo,
            elapsed_ms: 1.0,
            outcome: Outcome::Ok,
            code: Some(250),
            enhanced: Some("2.1.5".into()),
            error: None,
            category: None,
            text: None,
        };
        assert_eq!(s.answer(), "250");
        let ok = s.clone();
        s.outcome = Outcome::Permanent;
        s.code = Some(554);
        s.enhanced = Some("5.7.1".into());
        assert_eq!(s.answer(), "554 5.7.1");
        assert!(!s.same_answer(&ok));
        s.code = None;
        s.outcome = Outcome::Error;
        s.error = Some(ErrorKind::Refused);
        assert_eq!(s.answer(), "error refused");
    }
}
