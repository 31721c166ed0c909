//! One check as every front end runs it (the command line, the demo, the tests): a probe of
//! one endpoint or a trace of a domain, its options already resolved from a `SessionSpec`.

use crate::limits::Limits;
use crate::probe::ProbeOptions;
use crate::trace::{TraceError, TraceOptions};
use mxtrace_proto::model::JobReport;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Job {
    Probe(Box<ProbeOptions>),
    Trace(Box<TraceOptions>),
}

impl Job {
    /// The job with its sessions held to `limits` (a sweep's per-destination slots).
    pub fn with_limits(mut self, limits: Arc<Limits>) -> Job {
        match &mut self {
            Job::Probe(o) => o.limits = Some(limits),
            Job::Trace(o) => o.probe.limits = Some(limits),
        }
        self
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
