//! MTA-STS (RFC 8461): the `_mta-sts` TXT record and its id.

use super::model::{Finding, MtaStsSection, Severity};
use super::{dns_finding, tag, tag_list, versioned_txt};
use crate::dns::Dns;
use crate::model::{Category, Layer};
use std::path::PathBuf;
use std::time::Duration;

/// How the policy is fetched (RFC 8461 3.3).
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// 443; labs and tests serve the policy host on another port.
    pub https_port: u16,
    /// The whole fetch, connect to last byte.
    pub timeout: Duration,
    /// Extra trust anchors (PEM) beside the public roots, as `--tls-ca-file` for probes.
    pub ca_file: Option<PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            https_port: 443,
            timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }
}

const STEP: &str =
    "Publish _mta-sts.DOMAIN TXT \"v=STSv1; id=YYYYMMDDnn\" and serve the policy at \
                    https://mta-sts.DOMAIN/.well-known/mta-sts.txt; change the id whenever the \
                    policy changes (RFC 8461 3).";

pub(crate) fn finding(sev: Severity, cause: String) -> Finding {
    Finding::new(
        sev,
        Category::TlsFailed,
        Layer::Tls,
        cause,
        vec![STEP.to_string()],
    )
}

pub async fn check(
    dns: &Dns,
    domain: &str,
    _mx: &[String],
    _fetch: &FetchOptions,
) -> MtaStsSection {
    let mut s = MtaStsSection::default();
    let name = format!("_mta-sts.{domain}");
    let records = match versioned_txt(dns, &name, "v=STSv1").await {
        Ok(r) => r,
        Err(e) => {
            s.section.push(dns_finding(&e, "MTA-STS record"));
            s.section.close(false);
            return s;
        }
    };
    s.section.records.clone_from(&records);
    match records.as_slice() {
        [] => {
            s.section.push(finding(
                Severity::Info,
                format!("no MTA-STS record at {name}: senders may deliver without TLS or with an unverified certificate"),
            ));
            s.section.close(true);
            return s;
        }
        [one] => s.id = record_id(one),
        more => s.section.push(finding(
            Severity::Error,
            format!(
                "{name} has {} MTA-STS records: senders treat that as no policy (RFC 8461 3.1)",
                more.len()
            ),
        )),
    }
    if s.id.is_none() && records.len() == 1 {
        s.section.push(finding(
            Severity::Error,
            format!("{name}: no valid id= (1-32 letters and digits, RFC 8461 3.1): senders ignore the record"),
        ));
    }
    s.section.close(false);
    s
}

/// The `id=` of a `v=STSv1` record: 1 to 32 letters and digits (RFC 8461 3.1).
fn record_id(record: &str) -> Option<String> {
    let tags = tag_list(record).ok()?;
    let id = tag(&tags, "id")?;
    (!id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| id.to_string())
}
