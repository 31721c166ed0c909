//! `diff BEFORE.json AFTER.json`: what changed between two results, the firewall-change check.
//! Works on the JSON of `run`, `probe` and `trace`, normalized to a list of probes keyed by
//! (hop, host, address, port), plus `run`'s expectations keyed by id. Each change is a
//! regression (exit 1), an improvement or a plain change.
//!
//! The input is read as untyped JSON: results written by an older or newer mxtrace still
//! compare on the fields both have.

use crate::exit::UsageError;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// A certificate with fewer days left than this is about to expire (a renewal that did not
/// happen); the runbooks' "connector certificate expiry" cause.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// Latency changes smaller than this are timer noise, whatever the percentage.
const NOISE_MS: f64 = 10.0;

/// When a slower stage counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Slower by more than this percentage of the earlier time (and by at least 10 ms).
    Percent(f64),
    /// Slower by more than this.
    Absolute(Duration),
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Percent(p) => write!(f, "{p}%"),
            Threshold::Absolute(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// `50%` or a duration (`200ms`).
pub fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        return match p.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(Threshold::Percent(v)),
            _ => Err(format!("{s:?}: expected a positive percentage such as 50%")),
        };
    }
    crate::spec::parse_duration(s)
        .map(Threshold::Absolute)
        .map_err(|e| e.to_string())
}

impl Threshold {
    /// Whether going from `before` to `after` ms crosses the threshold.
    fn exceeded(self, before: f64, after: f64) -> bool {
        let grew = after - before;
        match self {
            Threshold::Percent(p) => grew >= NOISE_MS && grew > before * p / 100.0,
            Threshold::Absolute(d) => grew > d.as_secs_f64() * 1000.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Regression,
    Improvement,
    Change,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Regression => "regression",
            Kind::Improvement => "improvement",
            Kind::Change => "change",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// `reachability`, `tls_version`, `tls_verified`, `tls_cipher`, `certificate`,
    /// `certificate_expiry`, `capability`, `reply`, `latency`, `verdict`, `probe_set`,
    /// `expectation`.
    pub what: &'static str,
    /// The hop: its name in a `run`, `hop N DOMAIN` in a `trace`, empty for a `probe`.
    pub hop: String,
    /// `host ip:port`, or the expectation id.
    pub subject: String,
    pub stage: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffSummary {
    pub regressions: usize,
    pub improvements: usize,
    pub changes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffVerdict {
    /// True when there is no regression (exit 0).
    pub passed: bool,
    pub summary: String,
}

/// `diff --json` (after `command` and `version`).
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub before: DocInfo,
    pub after: DocInfo,
    pub latency_threshold: Threshold,
    pub findings: Vec<Finding>,
    pub summary: DiffSummary,
    pub verdict: DiffVerdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocInfo {
    pub file: String,
    /// `run`, `probe` or `trace`.
    pub command: String,
    pub started_at: Option<String>,
}

/// Reads one result file.
pub fn read(path: &Path) -> Result<Value, UsageError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("{shown}: cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| UsageError(format!("{shown}: not JSON: {e}")))
}

/// One probe of a result, keyed for matching.
struct Rec<'a> {
    hop: String,
    subject: String,
    v: &'a Value,
}

struct Doc<'a> {
    command: String,
    probes: Vec<Rec<'a>>,
    /// id -> (passed, observed, description)
    expectations: Vec<(String, bool, String, String)>,
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn probe_rec<'a>(hop: String, report: &'a Value) -> Rec<'a> {
    let host = get_str(report, &["target", "host"]).unwrap_or("?");
    let ip = get_str(report, &["target", "ip"]).unwrap_or("-");
    let port = get(report, &["target", "port"])
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Rec {
        hop,
        subject: format!("{host} {ip}:{port}"),
        v: report,
    }
}

fn trace_recs<'a>(out: &mut Vec<Rec<'a>>, hop_prefix: Option<&str>, trace: &'a Value) {
    for h in arr(trace, &["hops"]) {
        let hop = match hop_prefix {
            Some(p) => p.to_string(),
            None => format!(
                "hop {} {}",
                get(h, &["hop"]).and_then(Value::as_u64).unwrap_or(1),
                get_str(h, &["domain"]).unwrap_or("?")
            ),
        };
        for p in arr(h, &["probes"]) {
            if let Some(r) = p.get("report") {
                out.push(probe_rec(hop.clone(), r));
            }
        }
    }
}

fn normalize<'a>(file: &Path, v: &'a Value) -> Result<Doc<'a>, UsageError> {
    let command = get_str(v, &["command"]).unwrap_or("").to_string();
    let mut probes = Vec::new();
    let mut expectations = Vec::new();
    let looks_run = command == "run" || get(v, &["summary", "total"]).is_some();
    let looks_trace = command == "trace" || (v.get("domain").is_some() && v.get("hops").is_some());
    let looks_probe =
        command == "probe" || (v.get("target").is_some() && v.get("stages").is_some());
    let command = if looks_run {
        for h in arr(v, &["hops"]) {
            let name = get_str(h, &["name"]).unwrap_or("?").to_string();
            match h.get("result") {
                Some(Value::Array(list)) => {
                    for r in list {
                        probes.push(probe_rec(name.clone(), r));
                    }
                }
                Some(t @ Value::Object(_)) => trace_recs(&mut probes, Some(&name), t),
                _ => {}
            }
            for e in arr(h, &["expectations"]) {
                if let Some(id) = get_str(e, &["id"]) {
                    expectations.push((
                        id.to_string(),
                        get(e, &["passed"])
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        get_str(e, &["observed"]).unwrap_or("").to_string(),
                        get_str(e, &["description"]).unwrap_or("").to_string(),
                    ));
                }
            }
        }
        "run"
    } else if looks_trace {
        trace_recs(&mut probes, None, v);
        "trace"
    } else if looks_probe {
        probes.push(probe_rec(String::new(), v));
        "probe"
    } else {
        return Err(UsageError(format!(
            "{}: not an mxtrace result (expected the JSON of run, probe or trace)",
            file.display()
        )));
    };
    Ok(Doc {
        command: command.to_string(),
        probes,
        expectations,
    })
}

/// Compares two results already read.
pub fn diff(
    before_file: &Path,
    before: &Value,
    after_file: &Path,
    after: &Value,
    threshold: Threshold,
) -> Result<DiffReport, UsageError> {
    let b = normalize(before_file, before)?;
    let a = normalize(after_file, after)?;
    if b.command != a.command {
        return Err(UsageError(format!(
            "{} is a {} result and {} a {} result: compare results of the same command",
            before_file.display(),
            b.command,
            after_file.display(),
            a.command
        )));
    }
    let mut findings = Vec::new();
    let key = |r: &Rec<'_>| (r.hop.clone(), r.subject.clone());
    let after_by: HashMap<(String, String), &Rec<'_>> =
        a.probes.iter().map(|r| (key(r), r)).collect();
    let before_keys: std::collections::HashSet<(String, String)> =
        b.probes.iter().map(key).collect();
    for rb in &b.probes {
        match after_by.get(&key(rb)) {
            Some(ra) => compare_probe(&mut findings, rb, ra, threshold),
            None => findings.push(Finding {
                kind: Kind::Change,
                what: "probe_set",
                hop: rb.hop.clone(),
                subject: rb.subject.clone(),
                stage: None,
                before: Some("probed".into()),
                after: Some("not probed".into()),
                message: "probed before, not after (the walk took another path)".into(),
            }),
        }
    }
    for ra in &a.probes {
        if !before_keys.contains(&key(ra)) {
            findings.push(Finding {
                kind: Kind::Change,
                what: "probe_set",
                hop: ra.hop.clone(),
                subject: ra.subject.clone(),
                stage: None,
                before: Some("not probed".into()),
                after: Some("probed".into()),
                message: "probed after, not before (the walk took another path)".into(),
            });
        }
    }
    compare_expectations(&mut findings, &b.expectations, &a.expectations);

    let count = |k: Kind| findings.iter().filter(|f| f.kind == k).count();
    let summary = DiffSummary {
        regressions: count(Kind::Regression),
        improvements: count(Kind::Improvement),
        changes: count(Kind::Change),
    };
    let verdict = DiffVerdict {
        passed: summary.regressions == 0,
        summary: if findings.is_empty() {
            "no difference".to_string()
        } else {
            format!(
                "{} regression(s), {} improvement(s), {} other change(s)",
                summary.regressions, summary.improvements, summary.changes
            )
        },
    };
    let info = |file: &Path, d: &Doc<'_>, v: &Value| DocInfo {
        file: file.display().to_string(),
        command: d.command.clone(),
        started_at: get_str(v, &["started_at"]).map(str::to_string),
    };
    Ok(DiffReport {
        before: info(before_file, &b, before),
        after: info(after_file, &a, after),
        latency_threshold: threshold,
        findings,
        summary,
        verdict,
    })
}

fn compare_expectations(
    out: &mut Vec<Finding>,
    before: &[(String, bool, String, String)],
    after: &[(String, bool, String, String)],
) {
    let hop_of = |id: &str| id.split('/').next().unwrap_or("").to_string();
    let after_by: HashMap<&str, &(String, bool, String, String)> =
        after.iter().map(|e| (e.0.as_str(), e)).collect();
    for (id, passed, observed, description) in before {
        let Some((_, now, now_observed, _)) = after_by.get(id.as_str()) else {
            out.push(Finding {
                kind: Kind::Change,
                what: "expectation",
                hop: hop_of(id),
                subject: id.clone(),
                stage: None,
                before: Some(observed.clone()),
                after: None,
                message: format!("expectation {description:?} no longer checked"),
            });
            continue;
        };
        if passed == now {
            continue;
        }
        let (kind, verb) = if *passed {
            (Kind::Regression, "now fails")
        } else {
            (Kind::Improvement, "now passes")
        };
        out.push(Finding {
            kind,
            what: "expectation",
            hop: hop_of(id),
            subject: id.clone(),
            stage: None,
            before: Some(observed.clone()),
            after: Some(now_observed.clone()),
            message: format!("{description} {verb} (observed: {now_observed})"),
        });
    }
    let before_ids: std::collections::HashSet<&str> = before.iter().map(|e| e.0.as_str()).collect();
    for (id, _, observed, description) in after {
        if !before_ids.contains(id.as_str()) {
            out.push(Finding {
                kind: Kind::Change,
                what: "expectation",
                hop: hop_of(id),
                subject: id.clone(),
                stage: None,
                before: None,
                after: Some(observed.clone()),
                message: format!("expectation {description:?} newly checked"),
            });
        }
    }
}

/// Findings about one probe, to push with its hop and subject.
struct Out<'a> {
    rec: &'a Rec<'a>,
    findings: &'a mut Vec<Finding>,
}

impl Out<'_> {
    fn push(
        &mut self,
        kind: Kind,
        what: &'static str,
        stage: Option<&str>,
        before: Option<String>,
        after: Option<String>,
        message: String,
    ) {
        self.findings.push(Finding {
            kind,
            what,
            hop: self.rec.hop.clone(),
            subject: self.rec.subject.clone(),
            stage: stage.map(str::to_string),
            before,
            after,
            message,
        });
    }
}

fn stage_of<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    arr(v, &["stages"])
        .iter()
        .find(|s| get_str(s, &["stage"]) == Some(name))
}

fn connected(v: &Value) -> bool {
    stage_of(v, "connect").is_some_and(|s| get_str(s, &["outcome"]) == Some("ok"))
}

/// `refused (why)`, `250 2.1.5 accepted`.
fn stage_text(s: &Value) -> String {
    let mut out = String::new();
    if let Some(e) = s.get("error").filter(|e| !e.is_null()) {
        out.push_str(get_str(e, &["kind"]).unwrap_or("error"));
    } else if let Some(code) = get(s, &["reply", "code"]).and_then(Value::as_u64) {
        out.push_str(&code.to_string());
        if let Some(e) = get_str(s, &["reply", "enhanced"]) {
            out.push(' ');
            out.push_str(e);
        }
    } else {
        out.push_str(get_str(s, &["outcome"]).unwrap_or("?"));
    }
    if let Some(c) = get_str(s, &["diagnosis", "category"]) {
        out.push(' ');
        out.push_str(c);
    }
    out
}

fn compare_probe(findings: &mut Vec<Finding>, b: &Rec<'_>, a: &Rec<'_>, t: Threshold) {
    let mut out = Out { rec: b, findings };
    let start = out.findings.len();
    let (cb, ca) = (connected(b.v), connected(a.v));
    let connect_text = |v: &Value| {
        stage_of(v, "connect")
            .map(stage_text)
            .unwrap_or_else(|| "not tried".into())
    };
    match (cb, ca) {
        (true, false) => out.push(
            Kind::Regression,
            "reachability",
            Some("connect"),
            Some("connected".into()),
            Some(connect_text(a.v)),
            format!("no longer reachable: {}", connect_error(a.v)),
        ),
        (false, true) => out.push(
            Kind::Improvement,
            "reachability",
            Some("connect"),
            Some(connect_text(b.v)),
            Some("connected".into()),
            "now reachable".into(),
        ),
        (false, false) => {
            let (eb, ea) = (connect_text(b.v), connect_text(a.v));
            if eb != ea {
                out.push(
                    Kind::Change,
                    "reachability",
                    Some("connect"),
                    Some(eb.clone()),
                    Some(ea.clone()),
                    format!("still not reachable, now {ea} (was {eb})"),
                );
            }
        }
        (true, true) => {
            compare_tls(&mut out, b.v, a.v);
            compare_capabilities(&mut out, b.v, a.v, "before_tls", "");
            compare_capabilities(&mut out, b.v, a.v, "after_tls", " after TLS");
            compare_stages(&mut out, b.v, a.v, t);
        }
    }
    // The verdict, only when nothing above explains its change.
    let explained = out
        .findings
        .iter()
        .skip(start)
        .any(|f| f.kind != Kind::Change);
    let vb = get(b.v, &["verdict", "passed"]).and_then(Value::as_bool);
    let va = get(a.v, &["verdict", "passed"]).and_then(Value::as_bool);
    if let (Some(vb), Some(va)) = (vb, va) {
        if vb != va && !explained {
            let summary = get_str(a.v, &["verdict", "summary"])
                .unwrap_or("")
                .to_string();
            out.push(
                if vb {
                    Kind::Regression
                } else {
                    Kind::Improvement
                },
                "verdict",
                None,
                Some(vb.to_string()),
                Some(va.to_string()),
                format!(
                    "probe {}: {summary}",
                    if vb { "now fails" } else { "now passes" }
                ),
            );
        }
    }
}

fn connect_error(v: &Value) -> String {
    stage_of(v, "connect")
        .and_then(|s| s.get("error"))
        .map(|e| {
            format!(
                "{} ({})",
                get_str(e, &["kind"]).unwrap_or("error"),
                get_str(e, &["message"]).unwrap_or("")
            )
        })
        .unwrap_or_else(|| "connect not attempted".into())
}

/// `TLSv1.3` -> 13, for ordering versions.
fn tls_rank(v: &str) -> u32 {
    v.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

fn compare_tls(out: &mut Out<'_>, b: &Value, a: &Value) {
    let vb = get_str(b, &["tls", "version"]);
    let va = get_str(a, &["tls", "version"]);
    match (vb, va) {
        (Some(x), None) => out.push(
            Kind::Regression,
            "tls_version",
            None,
            Some(x.into()),
            None,
            format!("TLS no longer negotiated (was {x})"),
        ),
        (None, Some(y)) => out.push(
            Kind::Improvement,
            "tls_version",
            None,
            None,
            Some(y.into()),
            format!("TLS now negotiated ({y})"),
        ),
        (Some(x), Some(y)) if x != y => {
            let kind = if tls_rank(y) < tls_rank(x) {
                Kind::Regression
            } else {
                Kind::Improvement
            };
            out.push(
                kind,
                "tls_version",
                None,
                Some(x.into()),
                Some(y.into()),
                format!("TLS version {x} -> {y}"),
            );
        }
        _ => {}
    }
    if vb.is_none() || va.is_none() {
        return;
    }
    let cb = get_str(b, &["tls", "cipher"]);
    let ca = get_str(a, &["tls", "cipher"]);
    if cb != ca {
        out.push(
            Kind::Change,
            "tls_cipher",
            None,
            cb.map(str::to_string),
            ca.map(str::to_string),
            format!(
                "cipher {} -> {}",
                cb.unwrap_or("none"),
                ca.unwrap_or("none")
            ),
        );
    }
    let verified = |v: &Value| get(v, &["tls", "verified"]).and_then(Value::as_bool);
    match (verified(b), verified(a)) {
        (Some(true), Some(false)) => out.push(
            Kind::Regression,
            "tls_verified",
            None,
            Some("verified".into()),
            Some("not verified".into()),
            format!(
                "certificate no longer verifies: {}",
                get_str(a, &["tls", "verify_error"]).unwrap_or("unknown reason")
            ),
        ),
        (Some(false), Some(true)) => out.push(
            Kind::Improvement,
            "tls_verified",
            None,
            Some("not verified".into()),
            Some("verified".into()),
            "certificate now verifies".into(),
        ),
        _ => {}
    }
    let leaf = |v: &Value| {
        get(v, &["tls", "chain"])
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .cloned()
    };
    let (Some(lb), Some(la)) = (leaf(b), leaf(a)) else {
        return;
    };
    let fb = get_str(&lb, &["sha256"]).unwrap_or("");
    let fa = get_str(&la, &["sha256"]).unwrap_or("");
    let nb = get_str(&lb, &["not_after"]).unwrap_or("?");
    let na = get_str(&la, &["not_after"]).unwrap_or("?");
    if fb != fa {
        out.push(
            Kind::Change,
            "certificate",
            None,
            Some(fb.into()),
            Some(fa.into()),
            format!(
                "certificate replaced: sha256 {} -> {}, subject {}, not after {nb} -> {na}",
                short(fb),
                short(fa),
                get_str(&la, &["subject"]).unwrap_or("?")
            ),
        );
    }
    let db = get(&lb, &["days_left"]).and_then(Value::as_i64);
    let da = get(&la, &["days_left"]).and_then(Value::as_i64);
    if let (Some(db), Some(da)) = (db, da) {
        let crossed = |limit: i64| db >= limit && da < limit;
        if crossed(0) {
            out.push(
                Kind::Regression,
                "certificate_expiry",
                None,
                Some(format!("{db} days left")),
                Some(format!("expired ({na})")),
                format!("certificate expired (not after {na})"),
            );
        } else if crossed(EXPIRY_WARNING_DAYS) {
            out.push(
                Kind::Regression,
                "certificate_expiry",
                None,
                Some(format!("{db} days left")),
                Some(format!("{da} days left")),
                format!(
                    "certificate expires in {da} days (not after {na}), under {EXPIRY_WARNING_DAYS}"
                ),
            );
        } else if db < EXPIRY_WARNING_DAYS && da >= EXPIRY_WARNING_DAYS {
            out.push(
                Kind::Improvement,
                "certificate_expiry",
                None,
                Some(format!("{db} days left")),
                Some(format!("{da} days left")),
                format!("certificate renewed: {da} days left (not after {na})"),
            );
        }
    }
}

fn short(fp: &str) -> String {
    fp.chars().take(16).collect()
}

/// Keyword name -> the line as advertised.
fn keywords(v: &Value, set: &str) -> Option<Vec<(String, String)>> {
    let c = get(v, &["capabilities", set]).filter(|c| !c.is_null())?;
    Some(
        arr(c, &["keywords"])
            .iter()
            .filter_map(Value::as_str)
            .map(|k| {
                let name = k.split(' ').next().unwrap_or("").to_ascii_uppercase();
                (name, k.to_string())
            })
            .collect(),
    )
}

fn compare_capabilities(out: &mut Out<'_>, b: &Value, a: &Value, set: &str, suffix: &str) {
    let (Some(kb), Some(ka)) = (keywords(b, set), keywords(a, set)) else {
        return;
    };
    let stage = if set == "before_tls" {
        "ehlo"
    } else {
        "ehlo_tls"
    };
    let find = |list: &[(String, String)], name: &str| {
        list.iter().find(|(n, _)| n == name).map(|(_, l)| l.clone())
    };
    for (name, line) in &kb {
        match find(&ka, name) {
            None => {
                let kind = if name == "STARTTLS" {
                    Kind::Regression
                } else {
                    Kind::Change
                };
                out.push(
                    kind,
                    "capability",
                    Some(stage),
                    Some(line.clone()),
                    None,
                    format!("EHLO{suffix} no longer offers {line}"),
                );
            }
            Some(now) if now != *line => out.push(
                Kind::Change,
                "capability",
                Some(stage),
                Some(line.clone()),
                Some(now.clone()),
                format!("EHLO{suffix} {line} -> {now}"),
            ),
            Some(_) => {}
        }
    }
    for (name, line) in &ka {
        if find(&kb, name).is_none() {
            let kind = if name == "STARTTLS" {
                Kind::Improvement
            } else {
                Kind::Change
            };
            out.push(
                kind,
                "capability",
                Some(stage),
                None,
                Some(line.clone()),
                format!("EHLO{suffix} now offers {line}"),
            );
        }
    }
}

/// Stages paired by name and occurrence (the second `rcpt_to` with the second).
fn compare_stages(out: &mut Out<'_>, b: &Value, a: &Value, t: Threshold) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for sb in arr(b, &["stages"]) {
        let Some(name) = get_str(sb, &["stage"]) else {
            continue;
        };
        let n = seen.entry(name.to_string()).or_insert(0);
        let nth = *n;
        *n += 1;
        // RSET and QUIT end the probe; how they go says nothing about the path.
        if matches!(name, "rset" | "quit") {
            continue;
        }
        let Some(sa) = arr(a, &["stages"])
            .iter()
            .filter(|s| get_str(s, &["stage"]) == Some(name))
            .nth(nth)
        else {
            continue;
        };
        let ob = get_str(sb, &["outcome"]).unwrap_or("?");
        let oa = get_str(sa, &["outcome"]).unwrap_or("?");
        let (tb, ta) = (stage_text(sb), stage_text(sa));
        if tb != ta || ob != oa {
            let kind = match (ob == "ok", oa == "ok") {
                (true, false) => Kind::Regression,
                (false, true) => Kind::Improvement,
                _ => Kind::Change,
            };
            let mut msg = format!("{name}: {tb} -> {ta}");
            if kind == Kind::Regression {
                if let Some(c) = get_str(sa, &["diagnosis", "cause"]) {
                    msg.push_str(&format!(" ({c})"));
                }
            }
            out.push(kind, "reply", Some(name), Some(tb), Some(ta), msg);
            continue;
        }
        if ob == "error" || oa == "error" {
            continue;
        }
        let mb = get(sb, &["elapsed_ms"]).and_then(Value::as_f64);
        let ma = get(sa, &["elapsed_ms"]).and_then(Value::as_f64);
        if let (Some(mb), Some(ma)) = (mb, ma) {
            let kind = if t.exceeded(mb, ma) {
                Kind::Regression
            } else if t.exceeded(ma, mb) {
                Kind::Improvement
            } else {
                continue;
            };
            out.push(
                kind,
                "latency",
                Some(name),
                Some(format!("{mb:.1} ms")),
                Some(format!("{ma:.1} ms")),
                format!(
                    "{name} {} {mb:.1} ms -> {ma:.1} ms (threshold {t})",
                    if kind == Kind::Regression {
                        "slower:"
                    } else {
                        "faster:"
                    }
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(parse_threshold("50%"), Ok(Threshold::Percent(50.0)));
        assert_eq!(
            parse_threshold("200ms"),
            Ok(Threshold::Absolute(Duration::from_millis(200)))
        );
        assert!(parse_threshold("-5%").is_err());
        assert!(parse_threshold("fast").is_err());
        let p = Threshold::Percent(50.0);
        assert!(p.exceeded(100.0, 151.0));
        assert!(!p.exceeded(100.0, 149.0));
        assert!(!p.exceeded(1.0, 5.0), "under 10 ms is noise");
        let a = Threshold::Absolute(Duration::from_millis(200));
        assert!(a.exceeded(100.0, 301.0));
        assert!(!a.exceeded(100.0, 299.0));
    }

    #[test]
    fn tls_versions_rank() {
        assert!(tls_rank("TLSv1.3") > tls_rank("TLSv1.2"));
    }
}
