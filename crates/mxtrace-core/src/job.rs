//! One check as every front end runs it: a probe of one endpoint or a trace of a domain.
//! This is the one place a target becomes a job (`Target` then `Job::new`), for `probe` and
//! `trace` on the command line, `sweep`'s lines, the exporter's scrapes and scenario files.

use crate::limits::Limits;
use crate::probe::ProbeOptions;
use crate::trace::{TraceError, TraceOptions};
use mxtrace_proto::model::{JobReport, PathContext};
use mxtrace_proto::spec::{self, Naming, SessionSpec, SpecError, TargetError};
use std::net::IpAddr;
use std::sync::Arc;

/// What a target asks for: an endpoint to probe or a domain to trace, the port filled in.
/// Kept as written (the report shows the host as the user typed it); `normalized` makes the
/// same target written two ways one target, for lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Probe { host: String, port: u16 },
    Trace { domain: String },
}

impl Target {
    /// `host[:port]` or an IP address is probed, a bare domain is traced; `probe X` and
    /// `trace X` say which. `default_port` is the session's (25, or 465 with implicit TLS).
    pub fn parse(text: &str, default_port: u16) -> Result<Target, TargetError> {
        let text = text.trim();
        let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        match word {
            "probe" if !rest.is_empty() => Target::probe(rest, default_port),
            "trace" if !rest.is_empty() => Target::trace(rest),
            _ => {
                // Port 0 is never a real port: it marks "no port written".
                let (host, port) = spec::parse_target(text, 0)?;
                if port != 0 || host.parse::<IpAddr>().is_ok() {
                    Target::probe(text, default_port)
                } else {
                    Target::trace(text)
                }
            }
        }
    }

    /// `host[:port]` (`[v6]:port`), probed whatever it looks like.
    pub fn probe(text: &str, default_port: u16) -> Result<Target, TargetError> {
        let (host, port) = spec::parse_target(text, default_port)?;
        Ok(Target::Probe { host, port })
    }

    /// A domain whose MX is walked.
    pub fn trace(text: &str) -> Result<Target, TargetError> {
        let domain = spec::check_domain(text)?;
        Ok(Target::Trace { domain })
    }

    /// Lower case, no trailing dot: `MX1.Contoso.COM.:25` and `mx1.contoso.com:25` are one.
    pub fn normalized(self) -> Target {
        let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
        match self {
            Target::Probe { host, port } => Target::Probe {
                host: norm(&host),
                port,
            },
            Target::Trace { domain } => Target::Trace {
                domain: norm(&domain),
            },
        }
    }

    /// The host or domain: what an allowlist is checked against.
    pub fn host(&self) -> &str {
        match self {
            Target::Probe { host, .. } => host,
            Target::Trace { domain } => domain,
        }
    }

    /// The target as `probe` or `trace` takes it: `host:port`, `[v6]:port` or `domain`.
    pub fn text(&self) -> String {
        match self {
            Target::Probe { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Target::Probe { host, port } => format!("{host}:{port}"),
            Target::Trace { domain } => domain.clone(),
        }
    }

    /// The target with its verb (`probe mx.contoso.com:25`): for a normalized target, the
    /// `input` of a sweep's JSONL line and the key of dedup, shards and `--resume`.
    pub fn key(&self) -> String {
        let verb = match self {
            Target::Probe { .. } => "probe",
            Target::Trace { .. } => "trace",
        };
        format!("{verb} {}", self.text())
    }
}

#[derive(Debug, Clone)]
pub enum Job {
    Probe(Box<ProbeOptions>),
    Trace(Box<TraceOptions>),
}

impl Job {
    /// The job `target` stands for with these settings: validated, the password read, the
    /// path context (scenario, hop) and the tenant (scenario B's hop 2) applied. `naming` is
    /// how the settings were written (flags or keys): the report's advice names them so.
    pub fn new(
        target: &Target,
        spec: &SessionSpec,
        ctx: PathContext,
        tenant: Option<&str>,
        naming: Naming,
    ) -> Result<Job, SpecError> {
        Ok(match target {
            Target::Probe { host, port } => {
                let mut o = ProbeOptions::from_spec(spec, host.clone(), *port)?;
                o.ctx = ctx;
                o.naming = naming;
                Job::Probe(Box::new(o))
            }
            Target::Trace { domain } => {
                // A scenario without a hop is named (`trace --scenario`): the walk is its MX
                // hop (D's is hop 2). With a hop (scenario files, exporter modules), the
                // context says exactly where the walk is.
                let named = ctx.scenario.filter(|_| ctx.hop.is_none());
                let mut o = TraceOptions::new(domain, spec, named, tenant)?;
                o.probe.ctx = ctx;
                o.probe.naming = naming;
                Job::Trace(Box::new(o))
            }
        })
    }

    /// How the job's settings were written (flags or keys), for advice that names them.
    pub fn naming(&self) -> Naming {
        match self {
            Job::Probe(o) => o.naming,
            Job::Trace(o) => o.probe.naming,
        }
    }

    /// The job's probes sharing TLS configurations through `cache` (a sweep's targets).
    pub fn with_tls_cache(mut self, cache: Arc<mxtrace_net::tls::ConfigCache>) -> Job {
        match &mut self {
            Job::Probe(o) => o.tls_cache = Some(cache),
            Job::Trace(o) => o.probe.tls_cache = Some(cache),
        }
        self
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> String {
        Target::parse(text, 25).unwrap().normalized().key()
    }

    #[test]
    fn targets_become_probes_or_traces() {
        assert_eq!(key("MX1.Contoso.COM.:2525"), "probe mx1.contoso.com:2525");
        assert_eq!(key("192.0.2.1"), "probe 192.0.2.1:25");
        assert_eq!(key("[2001:db8::1]:587"), "probe [2001:db8::1]:587");
        assert_eq!(key("Contoso.com."), "trace contoso.com");
        assert_eq!(key("  probe mx.contoso.com "), "probe mx.contoso.com:25");
        assert_eq!(key("trace contoso.com"), "trace contoso.com");
        assert!(Target::parse("not a host!", 25).is_err());
        assert!(Target::parse("mx:0", 25).is_err());
        assert_eq!(
            Target::parse("contoso.com", 25).unwrap().host(),
            "contoso.com"
        );
    }
}
