//! DMARC (RFC 7489): `_dmarc.DOMAIN`, else the organisational domain's record (RFC 7489 6.6.3).
//! The organisational domain is taken as the last two labels: no Public Suffix List is
//! downloaded, so under a multi-label suffix (`contoso.co.uk`) this looks one level too high
//! and the report says which name it read.

use super::dns_finding;
use mxtrace_net::dns::Dns;
use mxtrace_proto::model::posture::{Advice, DmarcSection, Finding, Severity};
use mxtrace_proto::model::{Category, Layer};
use mxtrace_proto::record::{tag, tag_list};

const DMARC_STEP: &str = "Publish v=DMARC1 with p=quarantine or p=reject at _dmarc.DOMAIN once \
                          SPF and DKIM pass for every sender (Microsoft Learn, \"Set up DMARC to \
                          validate the From address domain for senders in Microsoft 365\").";
const POLICIES: [&str; 3] = ["none", "quarantine", "reject"];

const ADVICE: Advice = Advice {
    category: Category::SpfDkimDmarcFailure,
    layer: Layer::Policy,
    step: DMARC_STEP,
};

/// The organisational domain by the last-two-labels rule; None when `domain` is already it.
pub fn organizational_domain(domain: &str) -> Option<String> {
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    let n = labels.len();
    (n > 2).then(|| labels.get(n - 2..).unwrap_or_default().join("."))
}

pub async fn check(dns: &Dns, domain: &str) -> DmarcSection {
    let mut s = DmarcSection::default();
    let mut names = vec![(format!("_dmarc.{domain}"), "domain")];
    if let Some(org) = organizational_domain(domain) {
        names.push((format!("_dmarc.{org}"), "organizational_domain"));
    }
    for (name, source) in names {
        match dns.versioned_txt(&name, "v=DMARC1").await {
            Ok(r) if r.is_empty() => continue,
            Ok(records) => {
                s.found_at = Some(name.clone());
                s.source = Some(source.to_string());
                judge(&mut s, &name, records);
                s.section.close(false);
                return s;
            }
            Err(e) => {
                s.section.push(dns_finding(&e, "DMARC record"));
                s.section.close(false);
                return s;
            }
        }
    }
    s.section.push(ADVICE.finding(
        Severity::Warning,
        format!("no DMARC record at _dmarc.{domain} or its organisational domain: receivers apply no policy to forged From addresses, and bulk senders to Gmail and Yahoo need one"),
    ));
    s.section.close(true);
    s
}

fn judge(s: &mut DmarcSection, name: &str, records: Vec<String>) {
    if records.len() > 1 {
        s.section.push(ADVICE.finding(
            Severity::Error,
            format!(
                "{name} has {} DMARC records: receivers ignore them all (RFC 7489 6.6.3)",
                records.len()
            ),
        ));
    }
    s.section.records = records.clone();
    let Some(record) = records.first() else {
        return;
    };
    let tags = match tag_list(record) {
        Ok(t) => t,
        Err(e) => {
            s.section.push(syntax(name, &e.to_string()));
            return;
        }
    };
    if tags.first().map(|(n, _)| n.as_str()) != Some("v") {
        s.section
            .push(syntax(name, "v=DMARC1 must be the first tag"));
    }
    for key in ["p", "sp"] {
        match tag(&tags, key) {
            Some(v) if POLICIES.contains(&v.to_ascii_lowercase().as_str()) => {}
            Some(v) => s.section.push(syntax(
                name,
                &format!("{key}={v} is not none, quarantine or reject"),
            )),
            None if key == "p" => s
                .section
                .push(syntax(name, "the required p= tag is missing")),
            None => {}
        }
    }
    s.p = tag(&tags, "p").map(str::to_ascii_lowercase);
    s.sp = tag(&tags, "sp").map(str::to_ascii_lowercase);
    for key in ["adkim", "aspf"] {
        if let Some(v) = tag(&tags, key).filter(|v| !matches!(*v, "r" | "s")) {
            s.section
                .push(syntax(name, &format!("{key}={v} is not r or s")));
        }
    }
    s.adkim = tag(&tags, "adkim").map(str::to_string);
    s.aspf = tag(&tags, "aspf").map(str::to_string);
    if let Some(v) = tag(&tags, "pct") {
        match v.parse::<u8>() {
            Ok(n) if n <= 100 => s.pct = Some(n),
            _ => s
                .section
                .push(syntax(name, &format!("pct={v} is not 0-100"))),
        }
    }
    s.rua = uris(s, name, tag(&tags, "rua"), "rua");
    s.ruf = uris(s, name, tag(&tags, "ruf"), "ruf");
    policy_findings(s);
}

/// `p=none` and partial `pct`: a policy that does not protect yet.
fn policy_findings(s: &mut DmarcSection) {
    if s.p.as_deref() == Some("none") {
        s.section.push(ADVICE.finding(
            Severity::Warning,
            "p=none: DMARC only monitors; forged mail is delivered (Microsoft recommends moving to p=quarantine, then p=reject)".to_string(),
        ));
    }
    if s.pct.is_some_and(|p| p < 100) && s.p.as_deref() != Some("none") {
        s.section.push(ADVICE.finding(
            Severity::Warning,
            format!(
                "pct={}: the policy applies to only part of the failing mail",
                s.pct.unwrap_or(100)
            ),
        ));
    }
    if s.rua.is_empty() {
        s.section.push(ADVICE.finding(
            Severity::Info,
            "no rua=: nobody receives aggregate reports, so failures go unseen".to_string(),
        ));
    }
}

fn uris(s: &mut DmarcSection, name: &str, value: Option<&str>, key: &str) -> Vec<String> {
    let Some(v) = value else {
        return Vec::new();
    };
    let list: Vec<String> = v.split(',').map(|u| u.trim().to_string()).collect();
    for u in &list {
        if !u.to_ascii_lowercase().starts_with("mailto:") {
            s.section.push(syntax(
                name,
                &format!("{key} URI {u:?} is not a mailto: URI"),
            ));
        }
    }
    list
}

fn syntax(name: &str, what: &str) -> Finding {
    ADVICE.finding(
        Severity::Error,
        format!("DMARC syntax error at {name}: {what} (RFC 7489 6.3)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizational_domain_by_two_labels() {
        assert_eq!(
            organizational_domain("mail.eu.contoso.com").as_deref(),
            Some("contoso.com")
        );
        assert_eq!(organizational_domain("contoso.com"), None);
    }

    #[test]
    fn syntax_errors_are_found() {
        let mut s = DmarcSection::default();
        judge(
            &mut s,
            "_dmarc.x.test",
            vec!["v=DMARC1; p=maybe; pct=150; adkim=x; rua=https://x".to_string()],
        );
        let causes: Vec<_> = s
            .section
            .findings
            .iter()
            .map(|f| f.diagnosis.cause.clone())
            .collect();
        assert_eq!(causes.len(), 4, "{causes:?}");
    }
}
