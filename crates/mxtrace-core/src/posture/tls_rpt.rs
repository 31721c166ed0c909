//! TLS-RPT (RFC 8460): `_smtp._tls.DOMAIN`, `v=TLSRPTv1; rua=...` where senders report TLS
//! failures (MTA-STS and DANE ones included). Optional: its absence is information.

use super::model::{Finding, Severity, TlsRptSection};
use super::{dns_finding, tag, tag_list, versioned_txt};
use crate::dns::Dns;
use crate::model::{Category, Layer};

const STEP: &str = "Publish _smtp._tls.DOMAIN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@DOMAIN\" \
                    to receive the TLS failure reports of senders (RFC 8460 3).";

fn finding(sev: Severity, cause: String) -> Finding {
    Finding::new(
        sev,
        Category::TlsFailed,
        Layer::Tls,
        cause,
        vec![STEP.to_string()],
    )
}

pub async fn check(dns: &Dns, domain: &str) -> TlsRptSection {
    let mut s = TlsRptSection::default();
    let name = format!("_smtp._tls.{domain}");
    let records = match versioned_txt(dns, &name, "v=TLSRPTv1").await {
        Ok(r) => r,
        Err(e) => {
            s.section.push(dns_finding(&e, "TLS-RPT record"));
            s.section.close(false);
            return s;
        }
    };
    s.section.records.clone_from(&records);
    match records.as_slice() {
        [] => s.section.push(finding(
            Severity::Info,
            format!("no TLS-RPT record at {name}: nobody hears about senders' TLS failures"),
        )),
        [one] => judge(&mut s, &name, one),
        more => s.section.push(finding(
            Severity::Error,
            format!(
                "{name} has {} TLS-RPT records: senders must then ignore TLS-RPT (RFC 8460 3)",
                more.len()
            ),
        )),
    }
    s.section.close(records.is_empty());
    s
}

fn judge(s: &mut TlsRptSection, name: &str, record: &str) {
    let rua = tag_list(record)
        .ok()
        .and_then(|t| tag(&t, "rua").map(str::to_string));
    let Some(rua) = rua else {
        s.section.push(finding(
            Severity::Error,
            format!("{name}: no valid rua= (RFC 8460 3): reports have nowhere to go"),
        ));
        return;
    };
    s.rua = rua.split(',').map(|u| u.trim().to_string()).collect();
    for u in &s.rua {
        let l = u.to_ascii_lowercase();
        if !(l.starts_with("mailto:") || l.starts_with("https:")) {
            s.section.push(finding(
                Severity::Error,
                format!("{name}: rua {u:?} is neither mailto: nor https: (RFC 8460 3)"),
            ));
        }
    }
}
