//! The delivered copy (or the bounce) read by the headers engine, turned into the round
//! trip's path, the receiving side's verdicts and the findings that would hurt real mail.

use super::findings::finding;
use mxtrace_proto::model::headers::{HeadersReport, Hop};
use mxtrace_proto::model::roundtrip::{
    AuthVerdict, Bounce, BounceRecipient, Delivery, DeliveryStatus, FolderKind, PathHop,
    ReceiverVerdicts, RoundtripFinding, RoundtripPath,
};
use mxtrace_proto::model::Scenario;
use std::time::Duration;

/// Authentication methods shown, in this order (others are left out).
const METHODS: &[&str] = &["spf", "dkim", "dmarc", "arc", "compauth"];
/// Forefront spam verdicts (SFV) that mean "treated as spam" (Microsoft Learn, "Anti-spam
/// message headers").
const SPAM_SFV: &[&str] = &["SPM", "SKS", "SKB", "BLK"];
/// EOP's SCL from which a message goes to Junk (Microsoft Learn, "Spam confidence level").
const SPAM_SCL: i32 = 5;

pub fn path(report: &HeadersReport, expected: Option<Scenario>) -> RoundtripPath {
    let m = &report.message;
    RoundtripPath {
        hops: m.hops.iter().map(path_hop).collect(),
        zones: m.path.zones.clone(),
        scenario: m.path.scenario,
        expected_scenario: expected,
        total_delay_s: m.path.total_delay_s,
        slowest_hop: m.path.slowest_hop,
    }
}

fn path_hop(h: &Hop) -> PathHop {
    PathHop {
        index: h.index,
        from: h.from.clone().or(h.helo.clone()),
        from_ip: h.from_ip.clone(),
        by: h.by.clone(),
        with: h.with.clone(),
        tls_version: h.tls.as_ref().and_then(|t| t.version.clone()),
        cipher: h.tls.as_ref().and_then(|t| t.cipher.clone()),
        time: h.time.clone(),
        delay_s: h.delay_s,
        clock_skew: h.clock_skew,
        zone: h.zone,
    }
}

/// The topmost Authentication-Results, the Forefront SCL and verdict, other filters' flag.
pub fn receiver(report: &HeadersReport, header: &[u8]) -> ReceiverVerdicts {
    let auth = &report.message.authentication;
    let mut verdicts = Vec::new();
    for method in METHODS {
        if let Some(r) = auth.verdict(method) {
            let detail = ["reason", "action"]
                .iter()
                .find_map(|k| r.properties.get(*k).cloned())
                .or(r.comment.clone());
            verdicts.push(AuthVerdict {
                method: r.method.to_ascii_lowercase(),
                result: r.result.to_ascii_lowercase(),
                detail,
                by: r.authserv_id.clone(),
            });
        }
    }
    let ex = &report.message.exchange;
    let stamp = |f: &str| {
        ex.forefront
            .iter()
            .find(|s| s.field.eq_ignore_ascii_case(f))
    };
    let scl = stamp("SCL")
        .and_then(|s| s.value.trim().parse().ok())
        .or_else(|| {
            ex.organization
                .iter()
                .find(|s| {
                    s.field
                        .eq_ignore_ascii_case("X-MS-Exchange-Organization-SCL")
                })
                .and_then(|s| s.value.trim().parse().ok())
        });
    ReceiverVerdicts {
        auth: verdicts,
        scl,
        spam_verdict: stamp("SFV").map(|s| s.value.clone()),
        spam_verdict_meaning: stamp("SFV").and_then(|s| s.meaning.clone()),
        spam_flag: header_value(header, "X-Spam-Flag"),
    }
}

/// The first value of a header field in a raw header block (unfolded, at most 200 chars).
fn header_value(header: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if !n.trim_end().eq_ignore_ascii_case(name) || n.starts_with([' ', '\t']) {
            continue;
        }
        let mut value = v.trim().to_string();
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(next.trim());
        }
        return Some(mxtrace_proto::text::clip_to(&value, 200));
    }
    None
}

/// The bounce's recipients, each as the classifier read its diagnostic reply.
pub fn bounce(report: &HeadersReport, folder: &str, uid: u32, seconds: Option<f64>) -> Bounce {
    let ndr = report.ndr.as_ref().map(|n| &n.ndr);
    let recipients = ndr
        .map(|n| {
            n.recipients
                .iter()
                .map(|r| BounceRecipient {
                    recipient: r.recipient.clone(),
                    action: r.action.clone(),
                    status: r.status.clone(),
                    remote_mta: r.remote_mta.clone(),
                    diagnostic_code: r.diagnostic_code.clone(),
                    category: r.explanation.as_ref().map(|e| e.category),
                    cause: r.explanation.as_ref().map(|e| e.cause.clone()),
                })
                .collect()
        })
        .unwrap_or_default();
    Bounce {
        folder_name: folder.to_string(),
        uid,
        seconds,
        reporting_mta: ndr.and_then(|n| n.reporting_mta.clone().or(n.generating_server.clone())),
        recipients,
        summary: report.verdict.summary.clone(),
    }
}

/// The findings of a delivered copy: where it landed, what the receiver concluded, the path.
pub fn findings(
    delivery: &Delivery,
    path: Option<&RoundtripPath>,
    rec: Option<&ReceiverVerdicts>,
    slow_hop: Duration,
) -> Vec<RoundtripFinding> {
    let mut out = Vec::new();
    if delivery.status == DeliveryStatus::Delivered && delivery.folder == Some(FolderKind::Junk) {
        out.push(finding(
            "landed_in_junk",
            format!(
                "the message was filed in {}: real mail like it goes unread",
                delivery.folder_name.as_deref().unwrap_or("Junk")
            ),
        ));
    }
    if let Some(r) = rec {
        receiver_findings(r, &mut out);
    }
    if let Some(p) = path {
        path_findings(p, slow_hop, &mut out);
    }
    out
}

fn receiver_findings(r: &ReceiverVerdicts, out: &mut Vec<RoundtripFinding>) {
    let spam_sfv = r
        .spam_verdict
        .as_deref()
        .is_some_and(|v| SPAM_SFV.iter().any(|s| v.eq_ignore_ascii_case(s)));
    if spam_sfv || r.scl.is_some_and(|s| s >= SPAM_SCL) {
        out.push(finding(
            "spam_verdict",
            format!(
                "Exchange Online Protection marked it as spam (SCL {}, SFV {})",
                r.scl.map_or("-".into(), |s| s.to_string()),
                r.spam_verdict.as_deref().unwrap_or("-")
            ),
        ));
    } else if r
        .spam_flag
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("YES"))
    {
        out.push(finding(
            "spam_verdict",
            "a spam filter flagged it (X-Spam-Flag: YES)".to_string(),
        ));
    }
    for v in &r.auth {
        let code = match (v.method.as_str(), v.result.as_str()) {
            ("dmarc", "fail") => "dmarc_fail",
            ("compauth", "fail") => "compauth_fail",
            ("spf", "fail" | "softfail" | "permerror") => "spf_fail",
            ("dkim", "fail" | "permerror") => "dkim_fail",
            _ => continue,
        };
        let by =
            v.by.as_deref()
                .map(|b| format!(" at {b}"))
                .unwrap_or_default();
        let detail = v
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        out.push(finding(
            code,
            format!("{}={}{by}{detail}", v.method, v.result),
        ));
    }
}

fn path_findings(p: &RoundtripPath, slow_hop: Duration, out: &mut Vec<RoundtripFinding>) {
    for h in p.hops.iter().filter(|h| smtp_without_tls(h)) {
        out.push(finding(
            "hop_without_tls",
            format!(
                "hop {} ({} -> {}) was not encrypted (with {})",
                h.index,
                h.from.as_deref().or(h.from_ip.as_deref()).unwrap_or("?"),
                h.by.as_deref().unwrap_or("?"),
                h.with.as_deref().unwrap_or("?")
            ),
        ));
    }
    let limit = i64::try_from(slow_hop.as_secs()).unwrap_or(i64::MAX);
    if let Some(h) = p
        .hops
        .iter()
        .filter(|h| h.delay_s.is_some_and(|d| d > limit))
        .max_by_key(|h| h.delay_s)
    {
        out.push(finding(
            "slow_hop",
            format!(
                "hop {} (by {}) took {} s, more than {} s",
                h.index,
                h.by.as_deref().unwrap_or("?"),
                h.delay_s.unwrap_or_default(),
                limit
            ),
        ));
    }
    match (p.expected_scenario, p.scenario) {
        (Some(want), Some(got)) if want != got => out.push(finding(
            "scenario_mismatch",
            format!("the path shows scenario {got}, not the {want} expected"),
        )),
        (Some(want), None) => out.push(finding(
            "scenario_unknown",
            format!("the path shows no delivery scenario; {want} was expected"),
        )),
        _ => {}
    }
}

/// An SMTP hop (not LMTP, local or an Exchange-internal one) without TLS: `with SMTP`,
/// `ESMTP` or `ESMTPA` and no TLS clause (RFC 3848: TLS shows as ESMTPS / ESMTPSA).
fn smtp_without_tls(h: &PathHop) -> bool {
    let with = h.with.as_deref().unwrap_or("").to_ascii_uppercase();
    let plain = matches!(
        with.as_str(),
        "SMTP" | "ESMTP" | "ESMTPA" | "UTF8SMTP" | "UTF8SMTPA"
    );
    plain && h.tls_version.is_none() && h.cipher.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_unfolded_and_first() {
        let h = b"Subject: x\r\nX-Spam-Flag: YES\r\nX-Spam-Status: Yes,\r\n score=9\r\nX-Spam-Flag: NO\r\n";
        assert_eq!(header_value(h, "x-spam-flag").as_deref(), Some("YES"));
        assert_eq!(
            header_value(h, "X-Spam-Status").as_deref(),
            Some("Yes, score=9")
        );
        assert_eq!(header_value(h, "X-Other"), None);
    }

    fn hop(with: &str, tls: bool) -> PathHop {
        PathHop {
            index: 1,
            from: Some("a".into()),
            from_ip: None,
            by: Some("b".into()),
            with: Some(with.into()),
            tls_version: tls.then(|| "TLSv1.3".into()),
            cipher: None,
            time: None,
            delay_s: Some(3),
            clock_skew: false,
            zone: mxtrace_proto::model::headers::Zone::ThirdParty,
        }
    }

    #[test]
    fn only_smtp_hops_need_tls() {
        assert!(smtp_without_tls(&hop("ESMTP", false)));
        assert!(!smtp_without_tls(&hop("ESMTPS", true)));
        assert!(!smtp_without_tls(&hop("LMTP", false)));
        assert!(!smtp_without_tls(&hop("ESMTP", true)));
    }
}
