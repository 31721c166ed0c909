//! SPF (RFC 7208). Records are parsed and `--sending-ip` evaluated by mail-auth (a maintained
//! implementation of `check_host()`); mail-auth exposes neither the include tree nor its lookup
//! counts, so the tree is walked here with mail-auth's parsed directives, counting the terms
//! that cost a DNS lookup (limit 10) and the lookups that found nothing (limit 2), both from
//! RFC 7208 4.6.4, and catching include loops.

use super::dns_finding;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::spf::{Macro, Mechanism, Qualifier, Spf};
use mail_auth::{MessageAuthenticator, SpfResult};
use mxtrace_knowledge::is_eop_host;
use mxtrace_net::dns::Dns;
use mxtrace_proto::model::posture::{Advice, Finding, Severity, SpfIpResult, SpfNode, SpfSection};
use mxtrace_proto::model::{Category, Layer};
use mxtrace_proto::spec::Family;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// RFC 7208 4.6.4.
const MAX_LOOKUPS: usize = 10;
const MAX_VOID: usize = 2;
/// Bounds on the walk itself, whatever the records say.
const MAX_DEPTH: usize = 10;
const MAX_NODES: usize = 40;
/// The whole `check_host()` for `--sending-ip` (RFC 7208 4.6.4 suggests at least 20 s).
const EVAL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Microsoft 365's SPF include (Microsoft Learn, "Set up SPF to identify valid email sources
/// for your Microsoft 365 domain").
pub const EOP_INCLUDE: &str = "spf.protection.outlook.com";

const SPF_STEP: &str = "Publish one TXT record at the domain starting with v=spf1 that lists \
                        every server sending as it, ending in -all (Microsoft Learn, \"Set up \
                        SPF to identify valid email sources for your Microsoft 365 domain\").";

struct Walk<'a> {
    dns: &'a Dns,
    lookups: usize,
    voids: usize,
    nodes: usize,
    findings: Vec<Finding>,
    seen_eop: bool,
}

pub async fn check(dns: &Dns, domain: &str, mx: &[String], ip: Option<IpAddr>) -> SpfSection {
    let mut s = SpfSection::default();
    let records = match dns.versioned_txt(domain, "v=spf1").await {
        Ok(r) => r,
        Err(e) => {
            s.section.push(dns_finding(&e, "SPF record"));
            s.section.close(false);
            return s;
        }
    };
    s.section.records.clone_from(&records);
    if records.is_empty() {
        s.section.push(err(
            format!("{domain} publishes no SPF record: receivers cannot tell its senders from forgers, and Exchange Online marks such mail as spoofed (compauth)"),
        ));
        s.section.close(true);
        return s;
    }
    let mut w = Walk {
        dns,
        lookups: 0,
        voids: 0,
        nodes: 0,
        findings: Vec::new(),
        seen_eop: false,
    };
    let tree = walk(&mut w, domain.to_string(), "top", Vec::new()).await;
    s.all = top_all(records.first().map(String::as_str).unwrap_or(""));
    let eop_mx = mx.iter().any(|h| is_eop_host(h));
    judge(&mut s, &w, &tree, eop_mx);
    s.section.findings.append(&mut w.findings);
    s.dns_lookups = w.lookups;
    s.void_lookups = w.voids;
    s.tree = Some(tree);
    if let Some(ip) = ip {
        let r = evaluate(dns, domain, ip).await;
        ip_finding(&mut s, domain, &r);
        s.sending_ip = Some(r);
    }
    s.section.close(false);
    s
}

fn err(cause: String) -> Finding {
    ADVICE.finding(Severity::Error, cause)
}

const ADVICE: Advice = Advice {
    category: Category::SpfDkimDmarcFailure,
    layer: Layer::Policy,
    step: SPF_STEP,
};

/// The limits, `all` and the Microsoft 365 include, judged on the walked tree.
fn judge(s: &mut SpfSection, w: &Walk<'_>, tree: &SpfNode, eop_mx: bool) {
    let f = &mut s.section;
    if w.lookups > MAX_LOOKUPS {
        f.push(err(format!(
            "the SPF evaluation needs {} DNS lookups, over the limit of {MAX_LOOKUPS} (RFC 7208 4.6.4): every receiver's SPF check ends in permerror; flatten includes or drop unused ones",
            w.lookups
        )));
    }
    if w.voids > MAX_VOID {
        f.push(err(format!(
            "{} SPF lookups found no record, over the limit of {MAX_VOID} void lookups (RFC 7208 4.6.4): receivers answer permerror; remove the terms naming dead domains",
            w.voids
        )));
    }
    match s.all.as_deref() {
        Some("+all") => f.push(err(
            "+all: any server on the internet passes SPF for this domain".to_string(),
        )),
        Some("?all") => f.push(ADVICE.finding(
            Severity::Warning,
            "?all: mail from unlisted servers is neutral, SPF protects nothing".to_string(),
        )),
        None if tree
            .record
            .as_deref()
            .is_some_and(|r| !r.contains("redirect=")) =>
        {
            f.push(
                ADVICE.finding(
                    Severity::Warning,
                    "no all term: unlisted servers get the default result neutral (RFC 7208 4.7)"
                        .to_string(),
                ),
            )
        }
        _ => {}
    }
    if eop_mx && !w.seen_eop {
        f.push(ADVICE.finding(
            Severity::Warning,
            format!("the MX is Exchange Online, but SPF does not include {EOP_INCLUDE}: mail the tenant sends fails SPF"),
        ));
    }
}

/// The top record's `all` with its qualifier, as written.
fn top_all(record: &str) -> Option<String> {
    record.split_whitespace().find_map(|t| {
        let q = t.chars().next().filter(|c| "+-~?".contains(*c));
        let bare = t.trim_start_matches(['+', '-', '~', '?']);
        bare.eq_ignore_ascii_case("all")
            .then(|| format!("{}all", q.unwrap_or('+')))
    })
}

/// One record and everything below it. Boxed: it recurses.
fn walk<'a>(
    w: &'a mut Walk<'_>,
    domain: String,
    via: &'static str,
    stack: Vec<String>,
) -> Pin<Box<dyn Future<Output = SpfNode> + Send + 'a>> {
    Box::pin(async move {
        w.nodes += 1;
        if domain.eq_ignore_ascii_case(EOP_INCLUDE) {
            w.seen_eop = true;
        }
        let mut node = SpfNode {
            domain: domain.clone(),
            via: via.to_string(),
            ..SpfNode::default()
        };
        let records = match w.dns.versioned_txt(&domain, "v=spf1").await {
            Ok(r) => r,
            Err(e) => {
                node.error = Some(format!("temperror: {}", e.message));
                w.findings
                    .push(dns_finding(&e, &format!("SPF record of {domain}")));
                return node;
            }
        };
        node.record = records.first().cloned();
        let spf = match records.as_slice() {
            [] => {
                if via != "top" {
                    w.voids += 1;
                    node.error = Some("no SPF record (permerror, RFC 7208 5.2)".to_string());
                    w.findings.push(err(format!(
                        "{via}:{domain} has no SPF record: receivers answer permerror (RFC 7208 5.2)"
                    )));
                }
                return node;
            }
            [one] => Spf::parse(one.as_bytes()),
            _ => {
                node.error = Some("more than one SPF record (permerror)".to_string());
                w.findings.push(err(format!(
                    "{domain} publishes {} SPF records: receivers answer permerror (RFC 7208 3.2); merge them into one",
                    records.len()
                )));
                return node;
            }
        };
        let Ok(spf) = spf else {
            node.error = Some("syntax error (permerror)".to_string());
            w.findings.push(err(format!(
                "the SPF record of {domain} does not parse: receivers answer permerror"
            )));
            return node;
        };
        let mut stack = stack;
        stack.push(domain.to_ascii_lowercase());
        terms(w, &spf, &mut node, &stack).await;
        node
    })
}

/// The terms of one record: counts lookups, follows includes and the redirect.
async fn terms(w: &mut Walk<'_>, spf: &Spf, node: &mut SpfNode, stack: &[String]) {
    let domain = node.domain.clone();
    let mut has_all = false;
    for d in spf.directives.iter() {
        match &d.mechanism {
            Mechanism::All => has_all = true,
            Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. } => {}
            Mechanism::Include { macro_string } => {
                node.lookups += 1;
                w.lookups += 1;
                follow(w, node, macro_string, "include", stack).await;
            }
            Mechanism::A { macro_string, .. } => {
                count(w, node);
                let target = literal(macro_string, &domain);
                if let Some(t) = target {
                    let v4 = w.dns.addresses(&t, Family::V4).await;
                    let v6 = w.dns.addresses(&t, Family::V6).await;
                    if v4.is_err_and(|e| e.is_absent()) && v6.is_err_and(|e| e.is_absent()) {
                        w.voids += 1;
                    }
                }
            }
            Mechanism::Mx { macro_string, .. } => {
                count(w, node);
                if let Some(t) = literal(macro_string, &domain) {
                    if w.dns.mx(&t).await.is_err_and(|e| e.is_absent()) {
                        w.voids += 1;
                    }
                }
            }
            Mechanism::Exists { macro_string } => {
                count(w, node);
                if let Some(t) = literal(macro_string, &domain) {
                    let r = w.dns.addresses(&t, Family::V4).await;
                    if r.is_err_and(|e| e.is_absent()) {
                        w.voids += 1;
                    }
                }
            }
            Mechanism::Ptr { .. } => {
                count(w, node);
                w.findings.push(ADVICE.finding(
                    Severity::Warning,
                    format!("the SPF record of {domain} uses ptr, which RFC 7208 5.5 says not to use: slow, and many receivers skip it"),
                ));
            }
        }
    }
    if let (Some(r), false) = (&spf.redirect, has_all) {
        node.lookups += 1;
        w.lookups += 1;
        follow(w, node, r, "redirect", stack).await;
    }
    if matches!(
        spf.directives.iter().find(|d| d.mechanism == Mechanism::All),
        Some(d) if d.qualifier == Qualifier::Pass
    ) && node.via != "top"
    {
        w.findings.push(ADVICE.finding(
            Severity::Warning,
            format!("{domain} (included) ends in +all: the include passes every server"),
        ));
    }
}

fn count(w: &mut Walk<'_>, node: &mut SpfNode) {
    node.lookups += 1;
    w.lookups += 1;
}

/// Walks an include or redirect target, unless it loops or a bound is reached.
async fn follow(
    w: &mut Walk<'_>,
    node: &mut SpfNode,
    target: &Macro,
    via: &'static str,
    stack: &[String],
) {
    let Some(t) = literal(target, &node.domain) else {
        node.children.push(SpfNode {
            domain: "(macro, expanded per message)".to_string(),
            via: via.to_string(),
            ..SpfNode::default()
        });
        return;
    };
    if stack.contains(&t.to_ascii_lowercase()) {
        w.findings.push(err(format!(
            "SPF include loop: {} -> {t} (receivers answer permerror)",
            stack.join(" -> ")
        )));
        node.children.push(SpfNode {
            domain: t,
            via: via.to_string(),
            error: Some("loop".to_string()),
            ..SpfNode::default()
        });
        return;
    }
    if w.lookups > MAX_LOOKUPS || stack.len() >= MAX_DEPTH || w.nodes >= MAX_NODES {
        return;
    }
    let child = walk(w, t, via, stack.to_vec()).await;
    node.children.push(child);
}

/// A domain-spec without macros, or the current domain when there is none.
fn literal(m: &Macro, current: &str) -> Option<String> {
    match m {
        Macro::None => Some(current.to_string()),
        Macro::Literal(b) => Some(String::from_utf8_lossy(b).trim_end_matches('.').to_string()),
        _ => None,
    }
}

/// `check_host()` for `ip` with MAIL FROM `postmaster@DOMAIN`.
async fn evaluate(dns: &Dns, domain: &str, ip: IpAddr) -> SpfIpResult {
    let auth = MessageAuthenticator(dns.resolver().clone());
    let sender = format!("postmaster@{domain}");
    let check = auth.verify_spf(SpfParameters::verify_mail_from(
        ip,
        domain,
        "mxtrace.invalid",
        &sender,
    ));
    // Each lookup is bounded by the resolver; this bounds the whole evaluation too.
    let result = match tokio::time::timeout(EVAL_DEADLINE, check).await {
        Ok(out) => out.result(),
        Err(_) => SpfResult::TempError,
    };
    let result = match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    };
    SpfIpResult {
        ip: ip.to_string(),
        result: result.to_string(),
    }
}

fn ip_finding(s: &mut SpfSection, domain: &str, r: &SpfIpResult) {
    let sev = match r.result.as_str() {
        "pass" => return,
        "softfail" | "neutral" | "none" => Severity::Warning,
        _ => Severity::Error,
    };
    s.section.push(ADVICE.finding(
        sev,
        format!(
            "SPF for {} sending as {domain}: {} (receivers junk or reject its mail)",
            r.ip, r.result
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_qualifiers() {
        assert_eq!(top_all("v=spf1 mx -all").as_deref(), Some("-all"));
        assert_eq!(top_all("v=spf1 mx all").as_deref(), Some("+all"));
        assert_eq!(top_all("v=spf1 mx ?ALL").as_deref(), Some("?all"));
        assert_eq!(top_all("v=spf1 mx"), None);
    }
}
