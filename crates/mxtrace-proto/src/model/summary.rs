//! One word for what decided a job, shared by `sweep`'s summary, its readable lines and
//! `report`'s fleet table.

use super::{JobReport, ProbeReport};

impl JobReport {
    /// The reply category of the stage that failed a probe; a trace's from its deciding probe
    /// or DNS; the outcome (`ok`, `error`, ...) when nothing was classified.
    pub fn failure_category(&self) -> &'static str {
        failure_category(self)
    }

    /// The verdict's one-line summary.
    pub fn summary(&self) -> &str {
        match self {
            JobReport::Probe(p) => &p.verdict.summary,
            JobReport::Trace(t) => &t.verdict.summary,
        }
    }

    /// The whole job's time, in the model's milliseconds.
    pub fn elapsed_ms(&self) -> f64 {
        match self {
            JobReport::Probe(p) => p.elapsed_ms,
            JobReport::Trace(t) => t.elapsed_ms,
        }
    }
}

fn failure_category(report: &JobReport) -> &'static str {
    fn of_probe(p: &ProbeReport) -> Option<&'static str> {
        let failed = p.verdict.failed_stage?;
        let stage = p.stages.iter().rev().find(|s| s.stage == failed)?;
        Some(stage.diagnosis.as_ref()?.category.as_str())
    }
    let found = match report {
        JobReport::Probe(p) => of_probe(p),
        JobReport::Trace(t) => t.hops.iter().find_map(|h| {
            let dns = h.error.as_ref().and_then(|e| e.diagnosis.as_ref());
            dns.map(|d| d.category.as_str()).or_else(|| {
                let decided = h.decided_by.and_then(|i| h.probes.get(i));
                decided
                    .or(h.probes.last())
                    .and_then(|p| of_probe(&p.report))
            })
        }),
    };
    found.unwrap_or(match report {
        JobReport::Probe(p) => p.verdict.outcome.as_str(),
        JobReport::Trace(t) => t.verdict.outcome.as_str(),
    })
}
