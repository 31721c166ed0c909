//! TLS-RPT (RFC 8460): `_smtp._tls.DOMAIN`, `v=TLSRPTv1; rua=...` where senders report TLS
//! failures (MTA-STS and DANE ones included). Optional: its absence is information.

use super::section_records;
use mxtrace_net::dns::Dns;
use mxtrace_proto::model::posture::{Advice, Severity, TlsRptSection};
use mxtrace_proto::model::{Category, Layer};
use mxtrace_proto::record::{tag, tag_list};

const STEP: &str = "Publish _smtp._tls.DOMAIN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@DOMAIN\" \
                    to receive the TLS failure reports of senders (RFC 8460 3).";

const ADVICE: Advice = Advice {
    category: Category::TlsFailed,
    layer: Layer::Tls,
    step: STEP,
};

pub async fn check(dns: &Dns, domain: &str) -> TlsRptSection {
    let mut s = TlsRptSection::default();
    let name = format!("_smtp._tls.{domain}");
    let Some(records) =
        section_records(dns, &mut s.section, &name, "v=TLSRPTv1", "TLS-RPT record").await
    else {
        return s;
    };
    match records.as_slice() {
        [] => s.section.push(ADVICE.finding(
            Severity::Info,
            format!("no TLS-RPT record at {name}: nobody hears about senders' TLS failures"),
        )),
        [one] => judge(&mut s, &name, one),
        more => s.section.push(ADVICE.finding(
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
        s.section.push(ADVICE.finding(
            Severity::Error,
            format!("{name}: no valid rua= (RFC 8460 3): reports have nowhere to go"),
        ));
        return;
    };
    s.rua = rua.split(',').map(|u| u.trim().to_string()).collect();
    for u in &s.rua {
        let l = u.to_ascii_lowercase();
        if !(l.starts_with("mailto:") || l.starts_with("https:")) {
            s.section.push(ADVICE.finding(
                Severity::Error,
                format!("{name}: rua {u:?} is neither mailto: nor https: (RFC 8460 3)"),
            ));
        }
    }
}
