//! The transcript recorder: writes down each stage (what was sent, the reply or the error, its
//! time) with no socket and no diagnosis. Replies are judged against the table of expected
//! codes; explanations come later, from `verdict`, over the finished record.

use super::expect::{self, Fit};
use mxtrace_knowledge::Observation;
use mxtrace_net::conn::ConnError;
use mxtrace_proto::model::{micros_of, ms_from_micros, Stage};
use mxtrace_proto::model::{ErrorKind, Outcome, StageError, StageRecord};
use mxtrace_proto::sasl::ErrorChallenge;
use mxtrace_proto::smtp::reply::Reply;
use tokio::time::Instant;

/// Every stage of one probe, in the order it happened.
pub(super) struct Transcript {
    t0: Instant,
    pub(super) stages: Vec<StageRecord>,
    /// Findings at a stage that a reply alone does not show (a masked banner, STARTTLS not
    /// offered), explained by the diagnosis pass.
    pub(super) observations: Vec<(usize, Observation)>,
    /// OAuth error challenges (RFC 7628 3.2.2) at a stage, decoded, for the diagnosis.
    pub(super) challenges: Vec<(usize, ErrorChallenge)>,
}

impl Transcript {
    pub(super) fn new(t0: Instant) -> Transcript {
        Transcript {
            t0,
            stages: Vec::new(),
            observations: Vec::new(),
            challenges: Vec::new(),
        }
    }

    /// Appends one stage. `started` is when its first byte went out (or its wait began); the
    /// stage ends now.
    fn push(
        &mut self,
        stage: Stage,
        sent: Vec<String>,
        started: Instant,
        encrypted: bool,
    ) -> usize {
        let now = Instant::now();
        let idx = self.stages.len();
        // Start and end are cut to the microsecond on the same clock and the duration is
        // their difference, so start + elapsed is exactly where the next stage can begin: the
        // times shown down a transcript never go back by a rounding step.
        let started_us = micros_of(started.saturating_duration_since(self.t0));
        let ended_us = micros_of(now.saturating_duration_since(self.t0)).max(started_us);
        self.stages.push(StageRecord {
            stage,
            sent,
            reply: None,
            elapsed_ms: ms_from_micros(ended_us - started_us),
            started_ms: ms_from_micros(started_us),
            encrypted,
            outcome: Outcome::Ok,
            error: None,
            notes: Vec::new(),
            diagnosis: None,
        });
        idx
    }

    /// A stage answered by `reply`: its outcome follows the table of expected codes, and a
    /// positive reply out of step is a protocol error.
    pub(super) fn reply(
        &mut self,
        stage: Stage,
        sent: Vec<String>,
        started: Instant,
        encrypted: bool,
        reply: Reply,
    ) -> usize {
        let idx = self.push(stage, sent, started, encrypted);
        let (outcome, error) = match expect::fit(stage, &reply) {
            Fit::Expected => (Outcome::Ok, None),
            Fit::Refused if reply.first_digit() == 4 => (Outcome::Transient, None),
            Fit::Refused => (Outcome::Permanent, None),
            Fit::Continue | Fit::Unexpected => (
                Outcome::Error,
                Some(StageError {
                    kind: ErrorKind::Protocol,
                    message: expect::unexpected(stage, &reply),
                }),
            ),
        };
        if let Some(s) = self.stages.get_mut(idx) {
            s.reply = Some(reply);
            s.outcome = outcome;
            s.error = error;
        }
        idx
    }

    /// A stage that ended without a reply: a socket error, a timeout, or something mxtrace
    /// refused to do itself.
    pub(super) fn error(
        &mut self,
        stage: Stage,
        sent: Vec<String>,
        started: Instant,
        encrypted: bool,
        err: ConnError,
    ) -> usize {
        let idx = self.push(stage, sent, started, encrypted);
        if let Some(s) = self.stages.get_mut(idx) {
            s.outcome = Outcome::Error;
            s.error = Some(StageError {
                kind: err.kind,
                message: err.message,
            });
        }
        idx
    }

    /// A stage that has no SMTP reply (connect, the TLS handshake) and succeeded.
    pub(super) fn done(&mut self, stage: Stage, started: Instant, encrypted: bool) -> usize {
        self.push(stage, Vec::new(), started, encrypted)
    }

    /// Turns a recorded stage into an error: a reply came, but the session cannot go on.
    pub(super) fn mark_error(&mut self, idx: usize, kind: ErrorKind, message: String) {
        if let Some(s) = self.stages.get_mut(idx) {
            s.outcome = Outcome::Error;
            s.error = Some(StageError { kind, message });
        }
    }

    pub(super) fn note(&mut self, idx: usize, note: impl Into<String>) {
        if let Some(s) = self.stages.get_mut(idx) {
            s.notes.push(note.into());
        }
    }

    /// Notes a finding at a stage; the diagnosis pass explains it.
    pub(super) fn observe(&mut self, idx: usize, obs: Observation, note: impl Into<String>) {
        self.note(idx, note);
        self.observations.push((idx, obs));
    }

    /// The index of the last stage recorded.
    pub(super) fn last(&self) -> usize {
        self.stages.len().saturating_sub(1)
    }
}
