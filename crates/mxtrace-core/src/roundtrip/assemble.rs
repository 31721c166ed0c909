//! From what the wait found to the report's parts: the delivered copy or the bounce fetched
//! and read, the findings, the cleanup, and the verdict.

use super::mailbox::{Location, Mailbox, BOUNCE_BYTES};
use super::{finding, reading, seconds_since, Outcome, RoundtripOptions};
use mxtrace_proto::model::posture::Severity;
use mxtrace_proto::model::roundtrip::{
    Bounce, Cleanup, Delivery, DeliveryStatus, FolderKind, LastSeen, ReceiverVerdicts,
    RoundtripFinding, RoundtripPath, RoundtripVerdict, Sent,
};
use std::time::Duration;

pub(super) struct Parts {
    pub delivery: Delivery,
    pub path: Option<RoundtripPath>,
    pub receiver: Option<ReceiverVerdicts>,
    pub bounce: Option<Bounce>,
    pub findings: Vec<RoundtripFinding>,
    pub cleanup: Vec<Cleanup>,
}

fn delivery(status: DeliveryStatus) -> Delivery {
    Delivery {
        status,
        folder: None,
        folder_name: None,
        uid: None,
        seconds: None,
        header_seconds: None,
        last_seen: None,
        error: None,
    }
}

pub(super) async fn assemble(
    o: &RoundtripOptions,
    sent: &Sent,
    outcome: Outcome,
    main: &mut Mailbox,
    ndr: Option<&mut Mailbox>,
) -> Parts {
    let mut p = Parts {
        delivery: delivery(DeliveryStatus::NotSent),
        path: None,
        receiver: None,
        bounce: None,
        findings: Vec::new(),
        cleanup: Vec::new(),
    };
    match outcome {
        Outcome::NotSent => p.findings.push(finding(
            "not_sent",
            format!("no server accepted the message: {}", send_summary(sent)),
        )),
        Outcome::Delivered(loc) => delivered(o, sent, &loc, main, &mut p).await,
        Outcome::Bounced(loc) => {
            p.delivery = not_delivered(sent, DeliveryStatus::Bounced);
            if let Some(n) = ndr {
                bounced(o, sent, &loc, n, &mut p).await;
            }
        }
        Outcome::Timeout => {
            p.delivery = not_delivered(sent, DeliveryStatus::NotDelivered);
            p.findings.push(finding(
                "not_delivered",
                format!(
                    "not in INBOX or Junk after {}; last seen {}. It may still be queued and \
                     arrive later: mxtrace does not delete it then",
                    humantime::format_duration(o.within),
                    last_seen_words(p.delivery.last_seen.as_ref())
                ),
            ));
        }
        Outcome::Failed(e) => {
            p.delivery = not_delivered(sent, DeliveryStatus::Unknown);
            p.delivery.error = Some(e.clone());
            p.findings.push(finding("mailbox_error", e));
        }
    }
    p
}

fn not_delivered(sent: &Sent, status: DeliveryStatus) -> Delivery {
    let mut d = delivery(status);
    d.last_seen = sent.host.as_ref().map(|h| LastSeen {
        host: h.clone(),
        ip: sent.ip.clone(),
        at: sent.at.clone(),
        reply: sent.reply.clone(),
    });
    d
}

fn last_seen_words(l: Option<&LastSeen>) -> String {
    match l {
        Some(l) => format!(
            "accepted by {}{} at {}",
            l.host,
            l.ip.as_deref()
                .map(|i| format!(" [{i}]"))
                .unwrap_or_default(),
            l.at.as_deref().unwrap_or("?")
        ),
        None => "nowhere".into(),
    }
}

async fn delivered(
    o: &RoundtripOptions,
    sent: &Sent,
    loc: &Location,
    main: &mut Mailbox,
    p: &mut Parts,
) {
    let mut d = delivery(DeliveryStatus::Delivered);
    d.folder = Some(loc.kind);
    d.folder_name = Some(loc.folder.clone());
    d.uid = Some(loc.uid);
    d.seconds = seconds_since(sent, loc.seen_at);
    let header = async {
        main.conn.open_folder(&loc.folder, false).await?;
        main.conn.uid_fetch(loc.uid, None).await
    }
    .await;
    match header {
        Ok(Some(h)) => match crate::headers::analyze("the delivered copy", &h) {
            Ok(report) => {
                let path = reading::path(&report, o.expected_scenario);
                d.header_seconds = path.total_delay_s;
                p.receiver = Some(reading::receiver(&report, &h));
                p.path = Some(path);
            }
            Err(e) => d.error = Some(e.to_string()),
        },
        Ok(None) => d.error = Some("the server returned no header for the message".into()),
        Err(e) => d.error = Some(format!("fetching the header: {e}")),
    }
    p.findings = reading::findings(&d, p.path.as_ref(), p.receiver.as_ref(), o.slow_hop);
    p.delivery = d;
    p.cleanup.push(main.clean("probe", loc, o.keep).await);
}

async fn bounced(
    o: &RoundtripOptions,
    sent: &Sent,
    loc: &Location,
    ndr: &mut Mailbox,
    p: &mut Parts,
) {
    let seconds = seconds_since(sent, loc.seen_at);
    let body = async {
        ndr.conn.open_folder(&loc.folder, false).await?;
        ndr.conn.uid_fetch(loc.uid, Some(BOUNCE_BYTES)).await
    }
    .await;
    let bounce = match body {
        Ok(Some(b)) => crate::headers::analyze("the bounce", &b)
            .ok()
            .map(|r| reading::bounce(&r, &loc.folder, loc.uid, seconds)),
        Ok(None) | Err(_) => None,
    };
    let words = bounce
        .as_ref()
        .and_then(|b| b.recipients.first())
        .map(|r| {
            format!(
                "{} {}{}",
                r.recipient,
                r.status.as_deref().unwrap_or(""),
                r.diagnostic_code
                    .as_deref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "a non-delivery report came back".into());
    p.findings.push(finding("bounced", words));
    p.bounce = bounce;
    p.cleanup.push(ndr.clean("bounce", loc, o.keep).await);
}

fn send_summary(sent: &Sent) -> String {
    match &sent.report {
        mxtrace_proto::model::JobReport::Probe(r) => r.verdict.summary.clone(),
        mxtrace_proto::model::JobReport::Trace(r) => r.verdict.summary.clone(),
    }
}

/// Passed: delivered to the inbox, and no finding of error severity.
pub(super) fn verdict(p: &Parts, sent: &Sent, within: Duration) -> RoundtripVerdict {
    let errors = p
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let d = &p.delivery;
    let secs = |s: Option<f64>| s.map(|s| format!(" in {s:.1} s")).unwrap_or_default();
    let summary = match d.status {
        DeliveryStatus::Delivered => {
            let hops = p.path.as_ref().map_or(0, |x| x.hops.len());
            let mut s = format!(
                "delivered to {}{} ({hops} hop{})",
                d.folder_name.as_deref().unwrap_or("?"),
                secs(d.seconds),
                if hops == 1 { "" } else { "s" }
            );
            if errors > 0 {
                s.push_str(&format!(
                    ", {errors} finding{} that would hurt real mail",
                    if errors == 1 { "" } else { "s" }
                ));
            }
            s
        }
        DeliveryStatus::Bounced => format!(
            "bounced{}",
            p.findings
                .iter()
                .find(|f| f.code == "bounced")
                .map(|f| format!(": {}", f.message))
                .unwrap_or_default()
        ),
        DeliveryStatus::NotDelivered => format!(
            "not delivered within {}: last seen {}",
            humantime::format_duration(within),
            last_seen_words(d.last_seen.as_ref())
        ),
        DeliveryStatus::NotSent => format!("not sent: {}", send_summary(sent)),
        DeliveryStatus::Unknown => format!(
            "not confirmed: {}",
            d.error.as_deref().unwrap_or("the mailbox failed")
        ),
    };
    RoundtripVerdict {
        passed: d.status == DeliveryStatus::Delivered
            && d.folder == Some(FolderKind::Inbox)
            && errors == 0,
        summary,
    }
}
