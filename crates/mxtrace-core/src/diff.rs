//! `diff BEFORE.json AFTER.json`: what changed between two results, the firewall-change check.
//! Works on the results of `run`, `probe` and `trace`, read back into the result model
//! (`model::Document`) and normalized to a list of probes keyed by (hop, host, address, port),
//! plus `run`'s expectations keyed by id. Each change is a regression (exit 1), an improvement
//! or a plain change.

use mxtrace_proto::model::diff::{
    Change, DiffReport, DiffSummary, DiffVerdict, DocInfo, Kind, Threshold, EXPIRY_WARNING_DAYS,
};
use mxtrace_proto::model::{Document, ExpectationResult, Outcome, ProbeReport, StageRecord};
use mxtrace_proto::model::{Stage, TlsReport};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Inputs `diff` cannot compare (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// Not a result file, or of an unknown schema (the error names the file).
    #[error(transparent)]
    Read(#[from] mxtrace_proto::model::DocumentError),
    #[error(
        "{} is a {before} result and {} a {after} result: compare results of the same command",
        before_file.display(),
        after_file.display()
    )]
    DifferentCommands {
        before_file: std::path::PathBuf,
        before: &'static str,
        after_file: std::path::PathBuf,
        after: &'static str,
    },
    /// A watch report is the change window itself: it has no before and after to compare.
    #[error(
        "{} is a watch report: diff compares the results of run, probe or trace taken before \
         and after a change (`mxtrace report` renders a watch report)",
        file.display()
    )]
    Watch { file: std::path::PathBuf },
}

/// Reads one result file: a usage error naming the file when it is not a result this version
/// reads.
pub fn read(path: &Path) -> Result<Document, DiffError> {
    Ok(Document::read(path)?)
}

/// Compares two results already read.
pub fn diff(
    before_file: &Path,
    before: &Document,
    after_file: &Path,
    after: &Document,
    threshold: Threshold,
) -> Result<DiffReport, DiffError> {
    for (file, doc) in [(before_file, before), (after_file, after)] {
        if matches!(doc, Document::Watch(_)) {
            return Err(DiffError::Watch {
                file: file.to_path_buf(),
            });
        }
    }
    if before.command() != after.command() {
        return Err(DiffError::DifferentCommands {
            before_file: before_file.to_path_buf(),
            before: before.command(),
            after_file: after_file.to_path_buf(),
            after: after.command(),
        });
    }
    let (b, a) = (
        mxtrace_proto::model::diff::normalize(before),
        mxtrace_proto::model::diff::normalize(after),
    );
    let mut findings = Vec::new();
    compare_probe_sets(&mut findings, &b.probes, &a.probes, threshold);
    compare_expectations(&mut findings, &b.expectations, &a.expectations);
    let info = |file: &Path, d: &Document| DocInfo {
        file: file.display().to_string(),
        command: d.command().to_string(),
        started_at: Some(d.started_at().to_string()),
    };
    Ok(report(
        info(before_file, before),
        info(after_file, after),
        threshold,
        findings,
    ))
}

/// Counts the changes and gives the verdict.
fn report(
    before: DocInfo,
    after: DocInfo,
    threshold: Threshold,
    findings: Vec<Change>,
) -> DiffReport {
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
    DiffReport {
        before,
        after,
        latency_threshold: threshold,
        findings,
        summary,
        verdict,
    }
}

/// Probes matched by (hop, subject); one on a single side means the walk took another path.
fn compare_probe_sets(
    out: &mut Vec<Change>,
    before: &[mxtrace_proto::model::diff::Rec<'_>],
    after: &[mxtrace_proto::model::diff::Rec<'_>],
    t: Threshold,
) {
    let key = |r: &mxtrace_proto::model::diff::Rec<'_>| (r.hop.clone(), r.subject.clone());
    let after_by: HashMap<(String, String), &mxtrace_proto::model::diff::Rec<'_>> =
        after.iter().map(|r| (key(r), r)).collect();
    let before_keys: HashSet<(String, String)> = before.iter().map(key).collect();
    let moved =
        |r: &mxtrace_proto::model::diff::Rec<'_>, was: &str, now: &str, message: &str| Change {
            kind: Kind::Change,
            what: "probe_set",
            hop: r.hop.clone(),
            subject: r.subject.clone(),
            stage: None,
            before: Some(was.into()),
            after: Some(now.into()),
            message: message.into(),
        };
    for rb in before {
        match after_by.get(&key(rb)) {
            Some(ra) => compare_probe(out, rb, ra.report, t),
            None => out.push(moved(
                rb,
                "probed",
                "not probed",
                "probed before, not after (the walk took another path)",
            )),
        }
    }
    for ra in after.iter().filter(|r| !before_keys.contains(&key(r))) {
        out.push(moved(
            ra,
            "not probed",
            "probed",
            "probed after, not before (the walk took another path)",
        ));
    }
}

fn compare_expectations(
    out: &mut Vec<Change>,
    before: &[&ExpectationResult],
    after: &[&ExpectationResult],
) {
    let change = |e: &ExpectationResult, kind, was, now, message| Change {
        kind,
        what: "expectation",
        hop: e.id.split('/').next().unwrap_or("").to_string(),
        subject: e.id.clone(),
        stage: None,
        before: was,
        after: now,
        message,
    };
    let after_by: HashMap<&str, &ExpectationResult> =
        after.iter().map(|e| (e.id.as_str(), *e)).collect();
    for e in before {
        let Some(now) = after_by.get(e.id.as_str()) else {
            let message = format!("expectation {:?} no longer checked", e.description);
            out.push(change(
                e,
                Kind::Change,
                Some(e.observed.clone()),
                None,
                message,
            ));
            continue;
        };
        if e.passed == now.passed {
            continue;
        }
        let (kind, verb) = if e.passed {
            (Kind::Regression, "now fails")
        } else {
            (Kind::Improvement, "now passes")
        };
        let message = format!("{} {verb} (observed: {})", e.description, now.observed);
        let (was, is) = (Some(e.observed.clone()), Some(now.observed.clone()));
        out.push(change(e, kind, was, is, message));
    }
    let before_ids: HashSet<&str> = before.iter().map(|e| e.id.as_str()).collect();
    for e in after.iter().filter(|e| !before_ids.contains(e.id.as_str())) {
        let message = format!("expectation {:?} newly checked", e.description);
        out.push(change(
            e,
            Kind::Change,
            None,
            Some(e.observed.clone()),
            message,
        ));
    }
}

/// Changes about one probe, pushed with its hop and subject.
struct Out<'a> {
    rec: &'a mxtrace_proto::model::diff::Rec<'a>,
    findings: &'a mut Vec<Change>,
}

impl Out<'_> {
    fn push(
        &mut self,
        kind: Kind,
        what: &'static str,
        stage: Option<Stage>,
        before: Option<String>,
        after: Option<String>,
        message: String,
    ) {
        self.findings.push(Change {
            kind,
            what,
            hop: self.rec.hop.clone(),
            subject: self.rec.subject.clone(),
            stage,
            before,
            after,
            message,
        });
    }
}

fn stage_of(r: &ProbeReport, stage: Stage) -> Option<&StageRecord> {
    r.stages.iter().find(|s| s.stage == stage)
}

fn connected(r: &ProbeReport) -> bool {
    stage_of(r, Stage::Connect).is_some_and(|s| s.outcome == Outcome::Ok)
}

/// `refused`, `250 2.1.5 accepted`.
fn stage_text(s: &StageRecord) -> String {
    let mut out = match (&s.error, &s.reply) {
        (Some(e), _) => e.kind.as_str().to_string(),
        (None, Some(reply)) => match reply.enhanced {
            Some(e) => format!("{} {e}", reply.code),
            None => reply.code.to_string(),
        },
        (None, None) => s.outcome.as_str().to_string(),
    };
    if let Some(d) = &s.diagnosis {
        out.push(' ');
        out.push_str(d.category.as_str());
    }
    out
}

fn compare_probe(
    findings: &mut Vec<Change>,
    rec: &mxtrace_proto::model::diff::Rec<'_>,
    a: &ProbeReport,
    t: Threshold,
) {
    let b = rec.report;
    let mut out = Out { rec, findings };
    let start = out.findings.len();
    match (connected(b), connected(a)) {
        (true, true) => {
            compare_tls(&mut out, b.tls.as_ref(), a.tls.as_ref());
            let (cb, ca) = (&b.capabilities, &a.capabilities);
            compare_capabilities(&mut out, &cb.before_tls, &ca.before_tls, Stage::Ehlo);
            compare_capabilities(&mut out, &cb.after_tls, &ca.after_tls, Stage::EhloTls);
            compare_stages(&mut out, b, a, t);
        }
        (cb, ca) => compare_reachability(&mut out, b, a, cb, ca),
    }
    // The verdict, only when nothing above explains its change.
    let explained = out
        .findings
        .iter()
        .skip(start)
        .any(|f| f.kind != Kind::Change);
    let (vb, va) = (b.verdict.passed, a.verdict.passed);
    if vb != va && !explained {
        let (kind, verb) = if vb {
            (Kind::Regression, "now fails")
        } else {
            (Kind::Improvement, "now passes")
        };
        let message = format!("probe {verb}: {}", a.verdict.summary);
        let (was, is) = (Some(vb.to_string()), Some(va.to_string()));
        out.push(kind, "verdict", None, was, is, message);
    }
}

/// At least one side did not connect.
fn compare_reachability(out: &mut Out<'_>, b: &ProbeReport, a: &ProbeReport, cb: bool, ca: bool) {
    let connect_text = |r: &ProbeReport| {
        stage_of(r, Stage::Connect)
            .map(stage_text)
            .unwrap_or_else(|| "not tried".into())
    };
    let stage = Some(Stage::Connect);
    let connected = || Some("connected".to_string());
    match (cb, ca) {
        (true, false) => {
            let message = format!("no longer reachable: {}", connect_error(a));
            out.push(
                Kind::Regression,
                "reachability",
                stage,
                connected(),
                Some(connect_text(a)),
                message,
            )
        }
        (false, true) => {
            let was = Some(connect_text(b));
            out.push(
                Kind::Improvement,
                "reachability",
                stage,
                was,
                connected(),
                "now reachable".into(),
            )
        }
        _ => {
            let (eb, ea) = (connect_text(b), connect_text(a));
            if eb != ea {
                let message = format!("still not reachable, now {ea} (was {eb})");
                out.push(
                    Kind::Change,
                    "reachability",
                    stage,
                    Some(eb),
                    Some(ea),
                    message,
                );
            }
        }
    }
}

fn connect_error(r: &ProbeReport) -> String {
    stage_of(r, Stage::Connect)
        .and_then(|s| s.error.as_ref())
        .map(|e| format!("{} ({})", e.kind.as_str(), e.message))
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

/// The version first; the rest only when both sides negotiated TLS.
fn compare_tls(out: &mut Out<'_>, b: Option<&TlsReport>, a: Option<&TlsReport>) {
    let version = |t: Option<&TlsReport>| t.and_then(|t| t.version.clone());
    compare_tls_version(out, version(b), version(a));
    let (Some(b), Some(a)) = (b, a) else {
        return;
    };
    if b.version.is_none() || a.version.is_none() {
        return;
    }
    if b.cipher != a.cipher {
        let name = |c: &Option<String>| c.clone().unwrap_or_else(|| "none".into());
        let message = format!("cipher {} -> {}", name(&b.cipher), name(&a.cipher));
        out.push(
            Kind::Change,
            "tls_cipher",
            None,
            b.cipher.clone(),
            a.cipher.clone(),
            message,
        );
    }
    compare_verified(out, b, a);
    if let (Some(lb), Some(la)) = (b.chain.first(), a.chain.first()) {
        compare_leaf(out, lb, la);
    }
}

fn compare_tls_version(out: &mut Out<'_>, vb: Option<String>, va: Option<String>) {
    match (vb, va) {
        (Some(x), None) => {
            let message = format!("TLS no longer negotiated (was {x})");
            out.push(
                Kind::Regression,
                "tls_version",
                None,
                Some(x),
                None,
                message,
            )
        }
        (None, Some(y)) => {
            let message = format!("TLS now negotiated ({y})");
            out.push(
                Kind::Improvement,
                "tls_version",
                None,
                None,
                Some(y),
                message,
            )
        }
        (Some(x), Some(y)) if x != y => {
            let kind = if tls_rank(&y) < tls_rank(&x) {
                Kind::Regression
            } else {
                Kind::Improvement
            };
            let message = format!("TLS version {x} -> {y}");
            out.push(kind, "tls_version", None, Some(x), Some(y), message);
        }
        _ => {}
    }
}

fn compare_verified(out: &mut Out<'_>, b: &TlsReport, a: &TlsReport) {
    let (yes, no) = (
        || Some("verified".to_string()),
        || Some("not verified".to_string()),
    );
    match (b.verified, a.verified) {
        (true, false) => {
            let why = a.verify_error.as_deref().unwrap_or("unknown reason");
            let message = format!("certificate no longer verifies: {why}");
            out.push(Kind::Regression, "tls_verified", None, yes(), no(), message)
        }
        (false, true) => {
            let message = "certificate now verifies".to_string();
            out.push(
                Kind::Improvement,
                "tls_verified",
                None,
                no(),
                yes(),
                message,
            )
        }
        _ => {}
    }
}

/// The server's certificate: replaced, expired, about to expire or renewed.
fn compare_leaf(
    out: &mut Out<'_>,
    lb: &mxtrace_proto::model::CertInfo,
    la: &mxtrace_proto::model::CertInfo,
) {
    let (na, nb) = (&la.not_after, &lb.not_after);
    if lb.sha256 != la.sha256 {
        let message = format!(
            "certificate replaced: sha256 {} -> {}, subject {}, not after {nb} -> {na}",
            short(&lb.sha256),
            short(&la.sha256),
            la.subject
        );
        let (was, is) = (Some(lb.sha256.clone()), Some(la.sha256.clone()));
        out.push(Kind::Change, "certificate", None, was, is, message);
    }
    let (db, da) = (lb.days_left, la.days_left);
    let crossed = |limit: i64| db >= limit && da < limit;
    let left = |d: i64| Some(format!("{d} days left"));
    let (kind, now, message) = if crossed(0) {
        let message = format!("certificate expired (not after {na})");
        (Kind::Regression, Some(format!("expired ({na})")), message)
    } else if crossed(EXPIRY_WARNING_DAYS) {
        let message = format!(
            "certificate expires in {da} days (not after {na}), under {EXPIRY_WARNING_DAYS}"
        );
        (Kind::Regression, left(da), message)
    } else if db < EXPIRY_WARNING_DAYS && da >= EXPIRY_WARNING_DAYS {
        let message = format!("certificate renewed: {da} days left (not after {na})");
        (Kind::Improvement, left(da), message)
    } else {
        return;
    };
    out.push(kind, "certificate_expiry", None, left(db), now, message);
}

fn short(fp: &str) -> String {
    fp.chars().take(16).collect()
}

/// Keyword name -> the line as advertised.
fn keywords(c: &mxtrace_proto::smtp::ehlo::Capabilities) -> Vec<(String, String)> {
    c.keywords
        .iter()
        .map(|k| {
            let name = k.split(' ').next().unwrap_or("").to_ascii_uppercase();
            (name, k.clone())
        })
        .collect()
}

/// EHLO keywords gone, changed or new; losing STARTTLS is a regression, gaining it an
/// improvement.
fn compare_capabilities(
    out: &mut Out<'_>,
    b: &Option<mxtrace_proto::smtp::ehlo::Capabilities>,
    a: &Option<mxtrace_proto::smtp::ehlo::Capabilities>,
    stage: Stage,
) {
    let (Some(b), Some(a)) = (b, a) else {
        return;
    };
    let (kb, ka) = (keywords(b), keywords(a));
    let suffix = if stage == Stage::EhloTls {
        " after TLS"
    } else {
        ""
    };
    let find = |list: &[(String, String)], name: &str| {
        list.iter().find(|(n, _)| n == name).map(|(_, l)| l.clone())
    };
    let starttls_or = |name: &str, k: Kind| if name == "STARTTLS" { k } else { Kind::Change };
    let s = Some(stage);
    for (name, line) in &kb {
        match find(&ka, name) {
            None => {
                let message = format!("EHLO{suffix} no longer offers {line}");
                let kind = starttls_or(name, Kind::Regression);
                out.push(kind, "capability", s, Some(line.clone()), None, message);
            }
            Some(now) if now != *line => {
                let message = format!("EHLO{suffix} {line} -> {now}");
                out.push(
                    Kind::Change,
                    "capability",
                    s,
                    Some(line.clone()),
                    Some(now),
                    message,
                );
            }
            Some(_) => {}
        }
    }
    for (name, line) in ka.iter().filter(|(n, _)| find(&kb, n).is_none()) {
        let message = format!("EHLO{suffix} now offers {line}");
        let kind = starttls_or(name, Kind::Improvement);
        out.push(kind, "capability", s, None, Some(line.clone()), message);
    }
}

/// Stages paired by name and occurrence (the second `rcpt_to` with the second).
fn compare_stages(out: &mut Out<'_>, b: &ProbeReport, a: &ProbeReport, t: Threshold) {
    let mut seen: HashMap<Stage, usize> = HashMap::new();
    for sb in &b.stages {
        let n = seen.entry(sb.stage).or_insert(0);
        let nth = *n;
        *n += 1;
        // RSET and QUIT end the probe; how they go says nothing about the path.
        if matches!(sb.stage, Stage::Rset | Stage::Quit) {
            continue;
        }
        let Some(sa) = a.stages.iter().filter(|s| s.stage == sb.stage).nth(nth) else {
            continue;
        };
        if !compare_reply(out, sb, sa)
            && sb.outcome != Outcome::Error
            && sa.outcome != Outcome::Error
        {
            compare_latency(out, sb, sa, t);
        }
    }
}

/// A different reply or outcome at one stage; true when there was one.
fn compare_reply(out: &mut Out<'_>, sb: &StageRecord, sa: &StageRecord) -> bool {
    let (tb, ta) = (stage_text(sb), stage_text(sa));
    if tb == ta && sb.outcome == sa.outcome {
        return false;
    }
    let kind = match (sb.outcome == Outcome::Ok, sa.outcome == Outcome::Ok) {
        (true, false) => Kind::Regression,
        (false, true) => Kind::Improvement,
        _ => Kind::Change,
    };
    let mut message = format!("{}: {tb} -> {ta}", sb.stage);
    if kind == Kind::Regression {
        if let Some(d) = &sa.diagnosis {
            message.push_str(&format!(" ({})", d.cause));
        }
    }
    out.push(kind, "reply", Some(sb.stage), Some(tb), Some(ta), message);
    true
}

fn compare_latency(out: &mut Out<'_>, sb: &StageRecord, sa: &StageRecord, t: Threshold) {
    let (mb, ma) = (sb.elapsed_ms, sa.elapsed_ms);
    let (kind, how) = if t.exceeded(mb, ma) {
        (Kind::Regression, "slower:")
    } else if t.exceeded(ma, mb) {
        (Kind::Improvement, "faster:")
    } else {
        return;
    };
    let name = sb.stage;
    let message = format!("{name} {how} {mb:.1} ms -> {ma:.1} ms (threshold {t})");
    let (was, is) = (Some(format!("{mb:.1} ms")), Some(format!("{ma:.1} ms")));
    out.push(kind, "latency", Some(name), was, is, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_versions_rank() {
        assert!(tls_rank("TLSv1.3") > tls_rank("TLSv1.2"));
    }
}
