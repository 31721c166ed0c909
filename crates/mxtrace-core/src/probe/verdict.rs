//! After the session: explain every stage, then decide whether the probe passed.
//!
//! The pass rule: a probe passes only when the transaction it was asked for happened (through
//! end of data with `--data`, through every RCPT with `--rcpt`, through MAIL with `--from`
//! alone, through EHLO or HELO otherwise; AUTH when asked; TLS when `--starttls require` or
//! `--tls-implicit`), and no stage on the way failed. Only three failures are passed over:
//! RSET and QUIT (after everything was checked), EHLO refused and answered by HELO (RFC 5321
//! 4.1.4), and STARTTLS answered with a 4xx in auto mode (RFC 3207 4: the client may go on in
//! plaintext; the verdict carries a warning).
//!
//! With several recipients the summary also says what happened to each (accepted, or refused
//! and why) and, with `--data`, whether the message reached the accepted ones: a refused
//! recipient fails the probe, but the delivery to the others is still reported.

use super::{ProbeOptions, StartTls};
use mxtrace_knowledge::{Diagnosis, Observation, Observed, PathContext, SessionFacts};
use mxtrace_proto::model::{
    CapabilitySet, Outcome, RecipientResult, RecipientStatus, Stage, StageRecord, TlsReport,
    Verdict,
};
use mxtrace_proto::sasl::ErrorChallenge;

/// Gives every stage its diagnosis, with next steps fitted to the server that answered.
pub(super) fn explain(
    stages: &mut [StageRecord],
    observations: &[(usize, Observation)],
    challenges: &[(usize, ErrorChallenge)],
    tls: Option<&mut TlsReport>,
    caps: &CapabilitySet,
    opts: &ProbeOptions,
    ctx: PathContext,
) {
    let (host, naming) = (opts.host.as_str(), opts.naming);
    let names = claimed_names(stages, tls.as_deref(), host);
    for s in stages.iter_mut() {
        s.diagnosis = stage_diagnosis(s, ctx, facts_for(s, &names));
    }
    for (idx, obs) in observations {
        let Some(s) = stages.get_mut(*idx) else {
            continue;
        };
        // A finding replaces a plain "accepted" (which says less) and the generic explanation
        // of a stage mxtrace ended itself; a server's refusal keeps its own.
        let replace = s.reply.is_none()
            || s.diagnosis
                .as_ref()
                .is_none_or(|d| d.category == mxtrace_proto::model::Category::Accepted);
        if replace {
            s.diagnosis = Some(Diagnosis::new(
                mxtrace_knowledge::explain_observation(*obs),
                ctx,
            ));
        }
    }
    // An OAuth error challenge says why the token was refused: first in the cause and steps.
    for (idx, ch) in challenges {
        if let Some(d) = stages.get_mut(*idx).and_then(|s| s.diagnosis.as_mut()) {
            let (why, steps) =
                mxtrace_knowledge::explain_challenge(&ch.status, ch.scope.as_deref());
            d.cause = format!("{} {why}", d.cause);
            let mut first: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
            first.extend(
                d.next_steps
                    .drain(..)
                    .filter(|s| !steps.contains(&s.as_str())),
            );
            d.next_steps = first;
        }
    }
    // Steps for the server that answered: a known non-Microsoft server gets no Exchange Online
    // receiving-side steps.
    let banner = stages
        .iter()
        .find(|s| s.stage == Stage::Banner)
        .and_then(|s| s.reply.as_ref());
    let seen = caps.after_tls.as_ref().or(caps.before_tls.as_ref());
    let peer = mxtrace_knowledge::identify_peer(host, banner, seen);
    // A handshake that completed shows that both ends share a TLS version and cipher.
    let negotiated = tls.as_ref().is_some_and(|t| t.version.is_some());
    for s in stages.iter_mut() {
        if let Some(d) = s.diagnosis.as_mut() {
            mxtrace_knowledge::fit_steps(d, peer);
            if negotiated {
                mxtrace_knowledge::drop_cipher_advice(d);
            }
            mxtrace_knowledge::word_settings(d, naming);
        }
    }
    // A certificate that did not verify after a handshake that completed (report mode) is a
    // finding about the certificate, not the handshake's outcome: it goes with the TLS report.
    let handshake_ok = stages
        .iter()
        .any(|s| s.stage == Stage::TlsHandshake && s.outcome == Outcome::Ok);
    if let Some(t) = tls.filter(|_| handshake_ok) {
        t.verification = t.verify_error.as_deref().map(|why| {
            let mut d = Diagnosis::new(mxtrace_knowledge::explain_tls_verification(why), ctx);
            mxtrace_knowledge::fit_steps(&mut d, peer);
            mxtrace_knowledge::drop_cipher_advice(&mut d);
            mxtrace_knowledge::word_settings(&mut d, naming);
            d
        });
    }
}

fn stage_diagnosis(s: &StageRecord, ctx: PathContext, facts: SessionFacts) -> Option<Diagnosis> {
    if let Some(e) = &s.error {
        let observed = Observed::Error {
            kind: e.kind,
            detail: &e.message,
        };
        return Some(mxtrace_knowledge::diagnose(s.stage, observed, ctx));
    }
    let r = s.reply.as_ref()?;
    Some(mxtrace_knowledge::diagnose_in(
        s.stage,
        Observed::Reply(r),
        ctx,
        facts,
    ))
}

/// The names the server claims: the host it was reached through (the MX), the name in its
/// greeting and in its EHLO reply, and its certificate's names; lower-case.
fn claimed_names(stages: &[StageRecord], tls: Option<&TlsReport>, host: &str) -> Vec<String> {
    let first_word = |s: &StageRecord| {
        let line = s.reply.as_ref()?.lines.first()?;
        Some(line.get(4..)?.split_whitespace().next()?.to_string())
    };
    let greeted = stages
        .iter()
        .filter(|s| matches!(s.stage, Stage::Banner | Stage::Ehlo | Stage::EhloTls))
        .filter_map(first_word);
    let certified = tls
        .and_then(|t| t.chain.first())
        .map(|c| {
            c.sans
                .iter()
                .chain(std::iter::once(&c.subject))
                .cloned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    std::iter::once(host.to_string())
        .chain(greeted)
        .chain(certified)
        .map(|n| {
            n.trim_start_matches("CN=")
                .trim_end_matches('.')
                .to_ascii_lowercase()
        })
        .filter(|n| n.contains('.'))
        .collect()
}

/// For a reply at RCPT: whether the server claims the recipient's domain (a name equal to it
/// or under it, or Exchange Online's `domain-tld.mail.protection.outlook.com` for it).
fn facts_for(s: &StageRecord, names: &[String]) -> SessionFacts {
    let domain = (s.stage == Stage::RcptTo)
        .then(|| s.sent.first())
        .flatten()
        .and_then(|cmd| cmd.rsplit_once('@'))
        .map(|(_, d)| d.trim_end_matches(['>', ' ']).to_ascii_lowercase())
        .filter(|d| d.contains('.'));
    let Some(domain) = domain else {
        return SessionFacts::default();
    };
    let eop = format!("{}.mail.protection.outlook.com", domain.replace('.', "-"));
    let claimed = names
        .iter()
        .any(|n| *n == domain || n.ends_with(&format!(".{domain}")) || *n == eop);
    SessionFacts {
        recipient_domain_claimed: Some(claimed).filter(|_| !names.is_empty()),
    }
}

/// Whether a failed stage at `idx` is passed over (see the module comment).
fn excused(opts: &ProbeOptions, stages: &[StageRecord], idx: usize) -> bool {
    let Some(s) = stages.get(idx) else {
        return true;
    };
    match s.stage {
        Stage::Rset | Stage::Quit => true,
        Stage::Ehlo => stages
            .get(idx + 1)
            .is_some_and(|next| next.stage == Stage::Helo),
        Stage::Starttls => {
            opts.starttls == StartTls::Auto
                && s.error.is_none()
                && s.reply
                    .as_ref()
                    .is_some_and(|r| r.first_digit() == 4 && r.code != 421)
        }
        _ => false,
    }
}

/// The stage the probe had to reach, and whether it did. None: it did.
fn missing(opts: &ProbeOptions, stages: &[StageRecord]) -> Option<&'static str> {
    let ok = |stage: Stage| {
        stages
            .iter()
            .any(|s| s.stage == stage && s.outcome == Outcome::Ok)
    };
    let count_ok = |stage: Stage| {
        stages
            .iter()
            .filter(|s| s.stage == stage && s.outcome == Outcome::Ok)
            .count()
    };
    if !(ok(Stage::Ehlo) || ok(Stage::Helo)) {
        return Some("EHLO");
    }
    let tls_required = opts.implicit_tls || opts.starttls == StartTls::Require;
    if tls_required && !ok(Stage::TlsHandshake) {
        return Some("the TLS handshake");
    }
    if opts.starttls == StartTls::Require && !opts.implicit_tls && !ok(Stage::EhloTls) {
        return Some("EHLO after TLS");
    }
    if opts.auth.is_some() && !ok(Stage::Auth) {
        return Some("AUTH");
    }
    if (opts.from.is_some() || !opts.rcpts.is_empty()) && !ok(Stage::MailFrom) {
        return Some("MAIL FROM");
    }
    if count_ok(Stage::RcptTo) < opts.rcpts.len() {
        return Some("RCPT TO for every recipient");
    }
    if opts.data && !opts.rcpts.is_empty() && !ok(Stage::EndOfData) {
        return Some("the end of data");
    }
    None
}

/// What happened to each `--rcpt`: the RCPT stages answer in the order the recipients were
/// given (one by one or pipelined); a recipient without a stage was never tried.
pub(super) fn recipients(opts: &ProbeOptions, stages: &[StageRecord]) -> Vec<RecipientResult> {
    let mut rcpt_stages = stages.iter().filter(|s| s.stage == Stage::RcptTo);
    let delivered = opts.data.then(|| {
        stages
            .iter()
            .any(|s| s.stage == Stage::EndOfData && s.outcome == Outcome::Ok)
    });
    opts.rcpts
        .iter()
        .map(|address| {
            let Some(s) = rcpt_stages.next() else {
                return RecipientResult {
                    address: address.clone(),
                    status: RecipientStatus::NotTried,
                    code: None,
                    enhanced: None,
                    category: None,
                    delivered: delivered.map(|_| false),
                };
            };
            let accepted = s.outcome == Outcome::Ok;
            RecipientResult {
                address: address.clone(),
                status: if accepted {
                    RecipientStatus::Accepted
                } else {
                    RecipientStatus::Refused
                },
                code: s.reply.as_ref().map(|r| r.code),
                enhanced: s
                    .reply
                    .as_ref()
                    .and_then(|r| r.enhanced)
                    .map(|e| e.to_string()),
                category: s
                    .diagnosis
                    .as_ref()
                    .map(|d| d.category)
                    .filter(|_| !accepted),
                delivered: delivered.map(|d| d && accepted),
            }
        })
        .collect()
}

/// `; recipients: a@x accepted 250 2.1.5, b@x refused 550 5.1.1 (recipient_unknown); message
/// delivered to 1 of 2 recipients (end of data 250)`, for a probe with several recipients.
fn recipients_clause(stages: &[StageRecord], rcpts: &[RecipientResult]) -> String {
    if rcpts.len() < 2 {
        return String::new();
    }
    let each: Vec<String> = rcpts
        .iter()
        .map(|r| {
            let codes = match (r.code, &r.enhanced) {
                (Some(c), Some(e)) => format!(" {c} {e}"),
                (Some(c), None) => format!(" {c}"),
                _ => String::new(),
            };
            let why = r
                .category
                .map(|c| format!(" ({})", c.as_str()))
                .unwrap_or_default();
            let status = match r.status {
                RecipientStatus::Accepted => "accepted",
                RecipientStatus::Refused => "refused",
                RecipientStatus::NotTried => "not tried",
            };
            format!("{} {status}{codes}{why}", r.address)
        })
        .collect();
    let mut out = format!("; recipients: {}", each.join(", "));
    if rcpts.iter().any(|r| r.delivered.is_some()) {
        let to = rcpts.iter().filter(|r| r.delivered == Some(true)).count();
        let eod = stages.iter().find(|s| s.stage == Stage::EndOfData);
        out.push_str(&match (to, eod) {
            (0, Some(s)) => format!("; message not delivered (end of data {})", describe(s)),
            (0, None) => "; message not delivered (no DATA: no recipient accepted)".to_string(),
            (n, Some(s)) => format!(
                "; message delivered to {n} of {} recipients (end of data {})",
                rcpts.len(),
                describe(s)
            ),
            (n, None) => format!("; message delivered to {n} of {}", rcpts.len()),
        });
    }
    out
}

pub(super) fn verdict(
    opts: &ProbeOptions,
    stages: &[StageRecord],
    rcpts: &[RecipientResult],
    warnings: &[String],
) -> Verdict {
    let clause = recipients_clause(stages, rcpts);
    let failed = stages
        .iter()
        .enumerate()
        .find(|(i, s)| s.outcome != Outcome::Ok && !excused(opts, stages, *i))
        .map(|(_, s)| s);
    if let Some(s) = failed {
        let mut summary = format!("failed at {}: {}", s.stage, describe(s));
        if let Some(d) = &s.diagnosis {
            summary.push_str(&format!(" ({})", d.category.as_str()));
        }
        if never_encrypted(opts, stages) {
            summary.push_str("; the session was never encrypted (--starttls require)");
        }
        summary.push_str(&clause);
        return Verdict {
            passed: false,
            outcome: s.outcome,
            failed_stage: Some(s.stage),
            summary,
            warnings: warnings.to_vec(),
        };
    }
    let last = stages
        .iter()
        .rev()
        .find(|s| !matches!(s.stage, Stage::Quit | Stage::Rset));
    if let Some(goal) = missing(opts, stages) {
        // Every stage that ran answered as expected, yet the session ended early.
        let after = last.map_or("connect", |s| s.stage.as_str());
        return Verdict {
            passed: false,
            outcome: Outcome::Error,
            failed_stage: last.map(|s| s.stage),
            summary: format!("failed: the session ended after {after}, before {goal}{clause}"),
            warnings: warnings.to_vec(),
        };
    }
    let mut summary = match last {
        Some(s) => format!(
            "passed: every stage answered, last {} {}",
            s.stage,
            describe(s)
        ),
        None => "passed".to_string(),
    };
    summary.push_str(&clause);
    for w in warnings {
        summary.push_str("; warning: ");
        summary.push_str(w);
    }
    Verdict {
        passed: true,
        outcome: Outcome::Ok,
        failed_stage: None,
        summary,
        warnings: warnings.to_vec(),
    }
}

/// Under `--starttls require`, a failure before the TLS handshake completed means nothing of
/// the session was encrypted: the verdict says so, so nobody reads the failure as a TLS one.
fn never_encrypted(opts: &ProbeOptions, stages: &[StageRecord]) -> bool {
    opts.starttls == StartTls::Require
        && !opts.implicit_tls
        && !stages
            .iter()
            .any(|s| s.stage == Stage::TlsHandshake && s.outcome == Outcome::Ok)
}

/// `250 2.1.5` or `refused (why)`, for summaries.
fn describe(s: &StageRecord) -> String {
    match (&s.reply, &s.error) {
        (_, Some(e)) => format!("{} ({})", e.kind.as_str(), e.message),
        (Some(r), None) => match r.enhanced {
            Some(e) => format!("{} {e}", r.code),
            None => r.code.to_string(),
        },
        (None, None) => "ok".to_string(),
    }
}
