//! The domain's MTA-STS posture (RFC 8461): the `_mta-sts` TXT record and its id, the policy
//! (fetched by `crate::mta_sts`, or from the cache when the fetch fails), its mode and max_age,
//! and its `mx:` patterns matched against the real MX set.

use super::section_records;
use crate::mta_sts::{
    cache, cached_entry, fetch_policy, mx_matches, parse_policy, record_id, remember, FetchOptions,
};
use mxtrace_net::dns::Dns;
use mxtrace_proto::model::posture::{Advice, MtaStsPolicy, MtaStsSection, PolicySource, Severity};
use mxtrace_proto::model::{Category, Layer};

const STEP: &str =
    "Publish _mta-sts.DOMAIN TXT \"v=STSv1; id=YYYYMMDDnn\" and serve the policy at \
                    https://mta-sts.DOMAIN/.well-known/mta-sts.txt; change the id whenever the \
                    policy changes (RFC 8461 3).";

const ADVICE: Advice = Advice {
    category: Category::TlsFailed,
    layer: Layer::Tls,
    step: STEP,
};

pub async fn check(dns: &Dns, domain: &str, mx: &[String], fetch: &FetchOptions) -> MtaStsSection {
    let mut s = MtaStsSection::default();
    let name = format!("_mta-sts.{domain}");
    let Some(records) =
        section_records(dns, &mut s.section, &name, "v=STSv1", "MTA-STS record").await
    else {
        return s;
    };
    match records.as_slice() {
        [] => {
            s.section.push(ADVICE.finding(
                Severity::Info,
                format!("no MTA-STS record at {name}: senders may deliver without TLS or with an unverified certificate"),
            ));
            s.section.close(true);
            return s;
        }
        [one] => s.id = record_id(one),
        more => s.section.push(ADVICE.finding(
            Severity::Error,
            format!(
                "{name} has {} MTA-STS records: senders treat that as no policy (RFC 8461 3.1)",
                more.len()
            ),
        )),
    }
    if s.id.is_none() && records.len() == 1 {
        s.section.push(ADVICE.finding(
            Severity::Error,
            format!("{name}: no valid id= (1-32 letters and digits, RFC 8461 3.1): senders ignore the record"),
        ));
    }
    let host = format!("mta-sts.{domain}");
    s.policy_url = Some(format!("https://{host}/.well-known/mta-sts.txt"));
    let mut notes = Vec::new();
    match fetch_policy(dns, &host, fetch)
        .await
        .and_then(|b| Ok(parse_policy(&b)?))
    {
        Ok(p) => {
            judge_policy(&mut s, &p, mx);
            remember(fetch, domain, &p, s.id.as_deref(), cache::now(), &mut notes);
            s.policy = Some(p);
            s.policy_source = Some(PolicySource::Fetched);
        }
        Err(why) => {
            s.section.push(ADVICE.finding(
                Severity::Error,
                format!("the MTA-STS policy at https://{host}/.well-known/mta-sts.txt: {why}; senders that cached an enforce policy keep it, new ones use none"),
            ));
            use_cached(&mut s, fetch, domain, mx, &mut notes);
        }
    }
    for n in notes {
        s.section.push(ADVICE.finding(Severity::Warning, n));
    }
    s.section.close(false);
    s
}

/// After a failed fetch: the valid cached policy, judged and shown as from the cache.
fn use_cached(
    s: &mut MtaStsSection,
    fetch: &FetchOptions,
    domain: &str,
    mx: &[String],
    notes: &mut Vec<String>,
) {
    let Some(c) = cached_entry(fetch, domain, notes).filter(|c| c.valid_at(cache::now())) else {
        return;
    };
    s.section.push(ADVICE.finding(
        Severity::Info,
        format!("using the cached policy (id {}, fetched {}), as senders that cached it do until it expires (RFC 8461 5.1)", c.id, c.fetched_at_text()),
    ));
    judge_policy(s, &c.policy, mx);
    s.policy = Some(c.policy);
    s.policy_source = Some(PolicySource::Cache);
}

/// Mode and max_age judged, and every MX matched against the `mx:` patterns.
fn judge_policy(s: &mut MtaStsSection, p: &MtaStsPolicy, mx: &[String]) {
    s.unmatched_mx = mx
        .iter()
        .filter(|h| !mx_matches(&p.mx, h))
        .cloned()
        .collect();
    if !s.unmatched_mx.is_empty() && p.mode != "none" {
        let sev = if p.mode == "enforce" {
            Severity::Error
        } else {
            Severity::Warning
        };
        s.section.push(ADVICE.finding(
            sev,
            format!("MX {} not matched by the policy's mx: patterns ({}): in {} mode compliant senders {}",
                s.unmatched_mx.join(", "), p.mx.join(", "), p.mode,
                if p.mode == "enforce" { "will not deliver to it" } else { "report it" }),
        ));
    }
    if p.mode == "testing" {
        s.section.push(ADVICE.finding(
            Severity::Info,
            "mode testing: failures are reported (TLS-RPT), mail is still delivered".to_string(),
        ));
    }
    if p.max_age < 86_400 {
        s.section.push(ADVICE.finding(
            Severity::Warning,
            format!("max_age {} is under a day: senders forget the policy quickly (RFC 8461 3.2 suggests weeks)", p.max_age),
        ));
    }
}
