//! One check as every front end runs it (the command line, the demo, the tests): a probe of
//! one endpoint or a trace of a domain, its options already resolved from a `SessionSpec`.

use crate::model::{ProbeReport, TraceReport};
use crate::spec::ProbeOptions;
use crate::trace::{TraceError, TraceOptions};
use serde::Serialize;

#[derive(Debug, Clone)]
pub enum Job {
    Probe(Box<ProbeOptions>),
    Trace(Box<TraceOptions>),
}

/// The report of a job, serialized as the report itself.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum JobReport {
    Trace(Box<TraceReport>),
    Probe(Box<ProbeReport>),
}

impl JobReport {
    pub fn passed(&self) -> bool {
        match self {
            JobReport::Trace(t) => t.verdict.passed,
            JobReport::Probe(p) => p.verdict.passed,
        }
    }

    /// The command name in the JSON envelope.
    pub fn command(&self) -> &'static str {
        match self {
            JobReport::Trace(_) => "trace",
            JobReport::Probe(_) => "probe",
        }
    }
}

/// Runs the job. Network failures are in the report; the error is a configuration the user
/// must fix (the resolver, a TLS file).
pub async fn execute(job: &Job) -> Result<JobReport, TraceError> {
    Ok(match job {
        Job::Probe(o) => JobReport::Probe(Box::new(crate::probe::probe(o).await?)),
        Job::Trace(o) => JobReport::Trace(Box::new(crate::trace::trace(o).await?)),
    })
}
