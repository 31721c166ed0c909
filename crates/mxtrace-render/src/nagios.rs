//! `--format nagios`: a check result for Nagios, Icinga and every monitor that runs Nagios
//! plugins, following the Monitoring Plugins development guidelines
//! (https://www.monitoring-plugins.org/doc/guidelines.html): one status line
//! `SMTP STATE - text | perfdata`, performance data `'label'=value[UOM];warn;crit;min;max`, and
//! the exit code 0/1/2/3 for OK/WARNING/CRITICAL/UNKNOWN.
//!
//! A failed check (refused, timed out, a 4xx/5xx, a TLS failure, an expectation not met) is
//! CRITICAL, as `check_smtp` makes it; the latency and certificate thresholds make an
//! otherwise passing check WARNING or CRITICAL.

use crate::style::terminal_safe;
use mxtrace_proto::model::{HopData, ProbeReport, RunReport, Stage, StageRecord, TraceReport};
use std::fmt::Write;
use std::str::FromStr;
use std::time::Duration;

/// The plugin states, in the guidelines' order; the value is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl State {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn word(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }
}

/// A latency limit: on the whole check (`2s`) or on every record of one stage (`rcpt_to=1s`).
/// A value strictly above the limit alerts, so `0s` alerts on any measurable time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub stage: Option<Stage>,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    #[error("unknown stage {0:?} (connect, banner, ehlo, helo, starttls, tls_handshake, ehlo_tls, auth, mail_from, rcpt_to, data, end_of_data; or mail, rcpt, tls, eod)")]
    UnknownStage(String),
    #[error("{0:?} is not a duration (2s, 500ms, 1m): {1}")]
    Duration(String, #[source] humantime::DurationError),
    #[error("{0:?} is not a number of days (30 or 30d)")]
    Days(String),
}

/// A stage as thresholds name it: the JSON names, and the short forms `mail`, `rcpt`, `tls`,
/// `eod`. Unlike `explain --stage`, `connect` is the TCP connection, not the banner.
fn stage_name(s: &str) -> Option<Stage> {
    let s = s.trim().to_ascii_lowercase().replace('-', "_");
    let alias = match s.as_str() {
        "mail" => Some(Stage::MailFrom),
        "rcpt" => Some(Stage::RcptTo),
        "tls" => Some(Stage::TlsHandshake),
        "eod" => Some(Stage::EndOfData),
        _ => None,
    };
    alias.or_else(|| Stage::ALL.into_iter().find(|st| st.as_str() == s))
}

impl FromStr for Limit {
    type Err = ThresholdError;

    /// `DURATION` or `STAGE=DURATION` (humantime: `0s`, `750ms`, `2s`).
    fn from_str(s: &str) -> Result<Limit, ThresholdError> {
        let (stage, value) = match s.split_once('=') {
            Some((name, v)) => {
                let st =
                    stage_name(name).ok_or_else(|| ThresholdError::UnknownStage(name.into()))?;
                (Some(st), v)
            }
            None => (None, s),
        };
        let max = humantime::parse_duration(value.trim())
            .map_err(|e| ThresholdError::Duration(value.into(), e))?;
        Ok(Limit { stage, max })
    }
}

/// `--cert-warning 30d`: days, with or without the `d`.
pub fn parse_days(s: &str) -> Result<u32, ThresholdError> {
    let t = s.trim();
    let digits = t
        .strip_suffix("days")
        .or_else(|| t.strip_suffix('d'))
        .unwrap_or(t);
    digits
        .trim()
        .parse()
        .map_err(|_| ThresholdError::Days(s.into()))
}

/// What makes a passing check WARNING or CRITICAL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thresholds {
    pub warning: Vec<Limit>,
    pub critical: Vec<Limit>,
    /// WARNING when the leaf certificate has fewer days left.
    pub cert_warning: Option<u32>,
    /// CRITICAL when the leaf certificate has fewer days left.
    pub cert_critical: Option<u32>,
}

impl Thresholds {
    pub fn is_empty(&self) -> bool {
        self == &Thresholds::default()
    }
}

/// The status line and perfdata (one line, newline-terminated) and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub state: State,
}

/// What a check measured, whichever command ran it.
struct Measured {
    /// `host:port`, a domain, or the scenario file.
    subject: String,
    /// What was reached (`250 at rcpt_to`), or why the check failed.
    result: String,
    failed: bool,
    total_s: f64,
    /// Extra perfdata before the stages (`dns`, `failed`), already formatted.
    extra: Vec<String>,
    samples: Vec<Sample>,
    /// `TLS 1.3 verified`, `no TLS`; None where it says nothing (a run).
    tls: Option<String>,
    /// Days left on the leaf certificate; the fewest when several were seen.
    cert_days: Option<i64>,
}

/// One stage's time, labelled for perfdata.
struct Sample {
    label: String,
    stage: Stage,
    seconds: f64,
}

/// `probe`: the endpoint, the reply that ended it, its stages.
pub fn render_probe(r: &ProbeReport, t: &Thresholds) -> Rendered {
    let host = match r.target.host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{}]:{}", r.target.host, r.target.port),
        Err(_) => format!("{}:{}", r.target.host, r.target.port),
    };
    let m = Measured {
        subject: host,
        result: probe_result(r),
        failed: !r.verdict.passed,
        total_s: r.elapsed_ms / 1000.0,
        extra: Vec::new(),
        samples: samples(r, ""),
        tls: Some(tls_text(r)),
        cert_days: leaf_days(r),
    };
    evaluate(&m, t)
}

/// `trace`: the domain and the trace's verdict; the stages of the probe that decided each hop
/// (hop 2's labels start with `hop2_`).
pub fn render_trace(r: &TraceReport, t: &Thresholds) -> Rendered {
    let mut extra = Vec::new();
    let mut all = Vec::new();
    let mut probes = Vec::new();
    for hop in &r.hops {
        let prefix = if hop.hop <= 1 {
            String::new()
        } else {
            format!("hop{}_", hop.hop)
        };
        extra.push(perf(
            &format!("{prefix}dns"),
            hop.dns_elapsed_ms / 1000.0,
            None,
        ));
        let main = hop
            .decided_by
            .and_then(|i| hop.probes.get(i))
            .or(hop.probes.last());
        if let Some(p) = main {
            all.extend(samples(&p.report, &prefix));
            probes.push(&p.report);
        }
    }
    let m = Measured {
        subject: r.domain.clone(),
        result: r.verdict.summary.clone(),
        failed: !r.verdict.passed,
        total_s: r.elapsed_ms / 1000.0,
        extra,
        samples: all,
        tls: probes.first().map(|p| tls_text(p)),
        cert_days: probes.iter().filter_map(|p| leaf_days(p)).min(),
    };
    evaluate(&m, t)
}

/// `run`: the expectations; the stages of each hop's probes (`hop1_`, or `hop1_2_` for the
/// second host of a hop with several).
pub fn render_run(r: &RunReport, t: &Thresholds) -> Rendered {
    let mut all = Vec::new();
    let mut cert_days: Option<i64> = None;
    for (i, hop) in r.hops.iter().enumerate() {
        let probes: Vec<&ProbeReport> = match &hop.result {
            HopData::Probes(ps) => ps.iter().collect(),
            HopData::Trace(tr) => tr
                .hops
                .iter()
                .filter_map(|h| {
                    h.decided_by
                        .and_then(|d| h.probes.get(d))
                        .or(h.probes.last())
                })
                .map(|p| &p.report)
                .collect(),
        };
        for (j, p) in probes.iter().enumerate() {
            let prefix = match (probes.len(), j) {
                (1, _) => format!("hop{}_", i + 1),
                _ => format!("hop{}_{}_", i + 1, j + 1),
            };
            all.extend(samples(p, &prefix));
            cert_days = match (cert_days, leaf_days(p)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let s = &r.summary;
    let result = match r
        .hops
        .iter()
        .flat_map(|h| &h.expectations)
        .find(|e| !e.passed)
    {
        Some(e) => format!(
            "{} of {} expectations failed, first {}: {} (observed: {})",
            s.failed, s.total, e.id, e.description, e.observed
        ),
        None => format!("{} of {} expectations passed", s.passed, s.total),
    };
    let m = Measured {
        subject: r.file.clone(),
        result,
        failed: !r.verdict.passed,
        total_s: r.elapsed_ms / 1000.0,
        extra: vec![format!("'failed'={};;;0;{}", s.failed, s.total)],
        samples: all,
        tls: None,
        cert_days,
    };
    evaluate(&m, t)
}

/// A check that could not run (bad usage, a configuration error): UNKNOWN.
pub fn render_unknown(message: &str) -> Rendered {
    let first = message.lines().next().unwrap_or_default();
    Rendered {
        text: format!("SMTP UNKNOWN - {}\n", plain(first)),
        state: State::Unknown,
    }
}

/// The stages of one probe as samples; RSET and QUIT come after the check and are left out.
/// A stage seen again (a second RCPT) is labelled `rcpt_to_2`.
fn samples(r: &ProbeReport, prefix: &str) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    for s in &r.stages {
        if matches!(s.stage, Stage::Rset | Stage::Quit) {
            continue;
        }
        let n = out.iter().filter(|x| x.stage == s.stage).count();
        let label = match n {
            0 => format!("{prefix}{}", s.stage),
            _ => format!("{prefix}{}_{}", s.stage, n + 1),
        };
        out.push(Sample {
            label,
            stage: s.stage,
            seconds: s.elapsed_ms / 1000.0,
        });
    }
    out
}

/// `250 at rcpt_to`, or for a failure `550 5.1.1 at rcpt_to (recipient_unknown)` and
/// `refused at connect (connector_or_routing)`.
fn probe_result(r: &ProbeReport) -> String {
    let describe = |s: &StageRecord| format!("{} at {}", super::answer(s), s.stage);
    if r.verdict.passed {
        return super::last_checked(r).map_or_else(|| "passed".to_string(), describe);
    }
    match super::decisive(r).and_then(|i| r.stages.get(i)) {
        Some(s) => {
            let cat = s
                .diagnosis
                .as_ref()
                .map(|d| format!(" ({})", d.category.as_str()))
                .unwrap_or_default();
            format!("{}{cat}", describe(s))
        }
        // Every stage answered, yet the session ended early: the verdict says how.
        None => r.verdict.summary.clone(),
    }
}

fn tls_text(r: &ProbeReport) -> String {
    match &r.tls {
        None => "no TLS".to_string(),
        Some(t) => {
            let version = t
                .version
                .as_deref()
                .unwrap_or("TLS")
                .replace("TLSv", "TLS ");
            match (t.verified, &t.verify_error) {
                (true, _) => format!("{version} verified"),
                (false, Some(why)) => format!("{version} NOT verified ({why})"),
                (false, None) => format!("{version} NOT verified"),
            }
        }
    }
}

fn leaf_days(r: &ProbeReport) -> Option<i64> {
    r.tls.as_ref()?.chain.first().map(|c| c.days_left)
}

/// Seconds as perfdata writes them: `0.012345`, thresholds without trailing zeros (`2`, `0.5`).
fn secs(d: Duration) -> String {
    let s = format!("{:.6}", d.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `'label'=VALUEs;WARN;CRIT;0`.
fn perf(label: &str, seconds: f64, limits: Option<(Option<Duration>, Option<Duration>)>) -> String {
    let (w, c) = limits.unwrap_or_default();
    format!(
        "'{label}'={seconds:.6}s;{};{};0",
        w.map(secs).unwrap_or_default(),
        c.map(secs).unwrap_or_default()
    )
}

/// The limit of this kind on `stage` (None: the whole check); the last given wins.
fn limit(limits: &[Limit], stage: Option<Stage>) -> Option<Duration> {
    limits
        .iter()
        .rev()
        .find(|l| l.stage == stage)
        .map(|l| l.max)
}

/// Applies the thresholds and writes the status line and perfdata.
fn evaluate(m: &Measured, t: &Thresholds) -> Rendered {
    let mut state = if m.failed { State::Critical } else { State::Ok };
    let mut alerts: Vec<String> = Vec::new();
    let mut raise = |s: State, why: String| {
        state = state.max(s);
        alerts.push(why);
    };
    let bounds = |stage| (limit(&t.warning, stage), limit(&t.critical, stage));
    let total = Duration::from_secs_f64(m.total_s.max(0.0));
    check_latency("time", total, bounds(None), &mut raise);
    let mut missing = Vec::new();
    for l in t.warning.iter().chain(&t.critical).filter_map(|l| l.stage) {
        let mut seen = false;
        for s in m.samples.iter().filter(|s| s.stage == l) {
            seen = true;
            let took = Duration::from_secs_f64(s.seconds.max(0.0));
            check_latency(&s.label, took, bounds(Some(l)), &mut raise);
        }
        if !seen && !missing.contains(&l) {
            missing.push(l);
        }
    }
    check_cert(m.cert_days, t, &mut raise);
    alerts.dedup();
    // A threshold on a stage the check never reached cannot be judged: UNKNOWN, unless the
    // check failed (CRITICAL says more).
    if !m.failed && !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        alerts.push(format!("no {} stage to measure", names.join(", ")));
        state = State::Unknown;
    }
    Rendered {
        text: format!("{} | {}\n", status_line(m, state, &alerts), perfdata(m, t)),
        state,
    }
}

/// Raises WARNING or CRITICAL when `took` is over a limit.
fn check_latency(
    label: &str,
    took: Duration,
    (warn, crit): (Option<Duration>, Option<Duration>),
    raise: &mut impl FnMut(State, String),
) {
    let over = |max: Option<Duration>| max.filter(|m| took > *m);
    if let Some(max) = over(crit) {
        raise(
            State::Critical,
            format!("{label} {}s > {}s", secs_of(took), secs(max)),
        );
    } else if let Some(max) = over(warn) {
        raise(
            State::Warning,
            format!("{label} {}s > {}s", secs_of(took), secs(max)),
        );
    }
}

fn secs_of(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// Days left under a limit; no certificate at all is CRITICAL when a limit was asked for.
fn check_cert(days: Option<i64>, t: &Thresholds, raise: &mut impl FnMut(State, String)) {
    if t.cert_warning.is_none() && t.cert_critical.is_none() {
        return;
    }
    let Some(days) = days else {
        raise(State::Critical, "no certificate to check".to_string());
        return;
    };
    let under = |l: Option<u32>| l.filter(|l| days < i64::from(*l));
    if let Some(l) = under(t.cert_critical) {
        raise(State::Critical, format!("cert {days} days < {l}"));
    } else if let Some(l) = under(t.cert_warning) {
        raise(State::Warning, format!("cert {days} days < {l}"));
    }
}

/// `SMTP OK - host:25 250 at rcpt_to in 0.123s, TLS 1.3 verified, cert 87 days; alerts`.
/// Everything that can come from the network is made one safe line without `|`.
fn status_line(m: &Measured, state: State, alerts: &[String]) -> String {
    let mut line = format!("{} {} in {:.3}s", m.subject, m.result, m.total_s.max(0.0));
    if let Some(tls) = &m.tls {
        let _ = write!(line, ", {tls}");
    }
    if let Some(d) = m.cert_days {
        let _ = write!(line, ", cert {d} days");
    }
    if !alerts.is_empty() {
        let _ = write!(line, "; {}", alerts.join(", "));
    }
    format!("SMTP {} - {}", state.word(), plain(&line))
}

/// `'time'=…s;W;C;0`, the extras, every stage, `'cert_days'=…d;W:;C:`. Certificate limits are
/// ranges `N:` (alert below N), the guidelines' threshold syntax for a lower bound.
fn perfdata(m: &Measured, t: &Thresholds) -> String {
    let bounds = |stage| Some((limit(&t.warning, stage), limit(&t.critical, stage)));
    let mut parts = vec![perf("time", m.total_s, bounds(None))];
    parts.extend(m.extra.iter().cloned());
    for s in &m.samples {
        parts.push(perf(&s.label, s.seconds, bounds(Some(s.stage))));
    }
    if let Some(d) = m.cert_days {
        let lower = |l: Option<u32>| l.map(|l| format!("{l}:")).unwrap_or_default();
        parts.push(format!(
            "'cert_days'={d}d;{};{}",
            lower(t.cert_warning),
            lower(t.cert_critical)
        ));
    }
    parts.join(" ")
}

/// One line for a monitor: control characters made visible, and no `|` (it starts perfdata).
fn plain(s: &str) -> String {
    terminal_safe(s).replace('|', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_total_and_per_stage() {
        assert_eq!(
            "2s".parse::<Limit>().unwrap(),
            Limit {
                stage: None,
                max: Duration::from_secs(2)
            }
        );
        assert_eq!(
            "rcpt=1ms".parse::<Limit>().unwrap(),
            Limit {
                stage: Some(Stage::RcptTo),
                max: Duration::from_millis(1)
            }
        );
        assert_eq!(
            "connect=0s".parse::<Limit>().unwrap().stage,
            Some(Stage::Connect)
        );
        assert!(matches!(
            "bogus=1s".parse::<Limit>(),
            Err(ThresholdError::UnknownStage(_))
        ));
        assert!(matches!(
            "rcpt_to=fast".parse::<Limit>(),
            Err(ThresholdError::Duration(..))
        ));
        assert_eq!(parse_days("30d"), Ok(30));
        assert_eq!(parse_days("14"), Ok(14));
        assert!(parse_days("-1").is_err());
    }

    #[test]
    fn perfdata_numbers_follow_the_guidelines() {
        assert_eq!(secs(Duration::from_millis(2000)), "2");
        assert_eq!(secs(Duration::from_millis(500)), "0.5");
        assert_eq!(secs(Duration::ZERO), "0");
        assert_eq!(
            perf(
                "time",
                0.1234567,
                Some((Some(Duration::from_secs(2)), None))
            ),
            "'time'=0.123457s;2;;0"
        );
    }

    #[test]
    fn status_text_cannot_break_the_line_or_start_perfdata() {
        assert_eq!(plain("a|b\r\nc"), r"a/b\x0d\x0ac");
        let r = render_unknown("bad flag\nmore");
        assert_eq!(r.text, "SMTP UNKNOWN - bad flag\n");
        assert_eq!(r.state.code(), 3);
    }
}
