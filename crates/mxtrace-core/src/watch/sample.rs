//! A probe's or a trace's report reduced to what the watch times and compares: its verdict and
//! one line per stage. A trace is reduced to the probe that decided it (the first failing hop's,
//! else hop 1's); a hop that DNS decided has no stages and the DNS failure's category.

use mxtrace_proto::model::watch::{ProbeSample, SampleStage};
use mxtrace_proto::model::{
    Category, JobReport, Outcome, ProbeReport, StageRecord, TraceHop, TraceReport,
};

/// Where the sample sits: its target's name, its number and when it started.
pub struct Stamp<'a> {
    pub target: &'a str,
    pub seq: u64,
    pub at: String,
    pub at_ms: f64,
}

/// The sample of one finished job.
pub fn sample(report: &JobReport, stamp: Stamp<'_>) -> ProbeSample {
    match report {
        JobReport::Probe(p) => from_probe(p, stamp),
        JobReport::Trace(t) => from_trace(t, stamp),
    }
}

fn from_probe(p: &ProbeReport, stamp: Stamp<'_>) -> ProbeSample {
    let stages = merged(p.stages.iter().map(stage));
    let failed_stage = p.verdict.failed_stage.filter(|_| !p.verdict.passed);
    let category = failed_stage.and_then(|f| {
        stages
            .iter()
            .rev()
            .find(|s| s.stage == f)
            .and_then(|s| s.category)
    });
    ProbeSample {
        target: stamp.target.to_string(),
        seq: stamp.seq,
        at: stamp.at,
        at_ms: stamp.at_ms,
        elapsed_ms: p.elapsed_ms,
        passed: p.verdict.passed,
        outcome: p.verdict.outcome,
        failed_stage,
        category,
        summary: p.verdict.summary.clone(),
        stages,
    }
}

/// One entry per stage: a stage that ran more than once (one RCPT per `--rcpt`) counts once,
/// with the longest time (pipelined commands overlap) and the answer of its first failure, else
/// of its last record.
fn merged(records: impl Iterator<Item = SampleStage>) -> Vec<SampleStage> {
    let mut out: Vec<SampleStage> = Vec::new();
    for r in records {
        match out.iter_mut().find(|s| s.stage == r.stage) {
            None => out.push(r),
            Some(s) => {
                let elapsed_ms = s.elapsed_ms.max(r.elapsed_ms);
                if s.outcome == Outcome::Ok {
                    *s = r;
                }
                s.elapsed_ms = elapsed_ms;
            }
        }
    }
    out
}

fn stage(r: &StageRecord) -> SampleStage {
    let failed = r.outcome != Outcome::Ok;
    let text = match (&r.reply, &r.error) {
        _ if !failed => None,
        (Some(reply), _) => Some(reply.text()),
        (None, Some(e)) => Some(e.message.clone()),
        (None, None) => None,
    };
    SampleStage {
        stage: r.stage,
        elapsed_ms: r.elapsed_ms,
        outcome: r.outcome,
        code: r.reply.as_ref().map(|x| x.code),
        enhanced: r
            .reply
            .as_ref()
            .and_then(|x| x.enhanced)
            .map(|e| e.to_string()),
        error: r.error.as_ref().map(|e| e.kind),
        category: r.diagnosis.as_ref().map(|d| d.category),
        text,
    }
}

fn from_trace(t: &TraceReport, stamp: Stamp<'_>) -> ProbeSample {
    let hop = t
        .hops
        .iter()
        .find(|h| !h.verdict.passed)
        .or_else(|| t.hops.first());
    let probe = hop.and_then(deciding_probe);
    let mut s = match probe {
        Some(p) => from_probe(p, stamp),
        None => ProbeSample {
            target: stamp.target.to_string(),
            seq: stamp.seq,
            at: stamp.at,
            at_ms: stamp.at_ms,
            elapsed_ms: 0.0,
            passed: false,
            outcome: Outcome::Error,
            failed_stage: None,
            category: None,
            summary: String::new(),
            stages: Vec::new(),
        },
    };
    // The trace's verdict and time (DNS included) are the target's.
    s.passed = t.verdict.passed;
    s.outcome = t.verdict.outcome;
    s.summary.clone_from(&t.verdict.summary);
    s.elapsed_ms = t.elapsed_ms;
    if s.passed {
        s.failed_stage = None;
        s.category = None;
    } else if probe.is_none() {
        let dns = hop.and_then(|h| h.error.as_ref());
        s.category = Some(
            dns.and_then(|e| e.diagnosis.as_ref())
                .map_or(Category::DnsFailure, |d| d.category),
        );
    }
    s
}

/// The probe that decided the hop, else the last one tried (every address failed).
fn deciding_probe(h: &TraceHop) -> Option<&ProbeReport> {
    let i = h.decided_by.or_else(|| h.probes.len().checked_sub(1))?;
    h.probes.get(i).map(|p| &p.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxtrace_proto::model::Stage;

    fn rcpt(code: u16, ms: f64) -> SampleStage {
        SampleStage {
            stage: Stage::RcptTo,
            elapsed_ms: ms,
            outcome: if code < 400 {
                Outcome::Ok
            } else {
                Outcome::Permanent
            },
            code: Some(code),
            enhanced: None,
            error: None,
            category: None,
            text: None,
        }
    }

    #[test]
    fn a_stage_run_twice_counts_once_with_its_failure() {
        let m = merged([rcpt(250, 3.0), rcpt(550, 2.0), rcpt(250, 1.0)].into_iter());
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].code, m[0].elapsed_ms), (Some(550), 3.0));
        let m = merged([rcpt(250, 1.0), rcpt(251, 4.0)].into_iter());
        assert_eq!((m[0].code, m[0].elapsed_ms), (Some(251), 4.0));
    }
}
