//! DANE in the walk (RFC 7672 2.2), as a DANE-aware sender (Postfix
//! `smtp_tls_security_level = dane`) delivers: the TLSA records of each MX host decide how it is
//! used. Secure and usable: STARTTLS required and the certificate authenticated by DANE; secure
//! but none usable: STARTTLS required; insecure: DANE does not apply; bogus (the TLSA answer,
//! or the MX answer itself): the host is not used.

use super::{fail_verdict, Walking};
use hickory_resolver::proto::rr::RecordType;
use mxtrace_net::dns::{SecureDns, Tlsa};
use mxtrace_net::tls::dane::usable;
use mxtrace_proto::model::posture::DnssecStatus;
use mxtrace_proto::model::{MxSource, Outcome, TraceHop};
use std::collections::HashMap;

/// Fills `dane` (host -> usable records) and leaves bogus hosts out of `w.hop.mx`. Returns the
/// decided hop when no MX host is left (the DANE failure).
pub(super) async fn apply(
    secure: &SecureDns,
    dane: &mut HashMap<String, Vec<Tlsa>>,
    w: &mut Walking,
) -> Option<TraceHop> {
    if w.hop.mx_source != MxSource::Mx {
        return None;
    }
    let mut bogus = Vec::new();
    let mut any = false;
    for m in &w.hop.mx {
        let answer = match secure.tlsa(&m.host).await {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(e) => {
                w.warnings.push(format!(
                    "DANE: cannot read the TLSA records of {}: {}",
                    m.host, e.message
                ));
                continue;
            }
        };
        any = true;
        match answer.status {
            DnssecStatus::Bogus => bogus.push((m.host.clone(), answer.name)),
            DnssecStatus::Insecure => w.warnings.push(format!(
                "DANE: TLSA at {} is DNSSEC-insecure: not trusted, DANE does not apply to {}",
                answer.name, m.host
            )),
            DnssecStatus::Secure => {
                let records = usable(&answer.records);
                w.warnings
                    .push(protected(&m.host, &answer.name, records.len()));
                dane.insert(m.host.clone(), records);
            }
        }
    }
    if any && secure.status(&w.hop.domain, RecordType::MX).await == DnssecStatus::Bogus {
        let why = format!(
            "the MX answer of {} is DNSSEC-bogus (RFC 7672 2.2.1)",
            w.hop.domain
        );
        return Some(failed(w, why));
    }
    leave_out(w, &bogus)
}

fn protected(host: &str, name: &str, usable: usize) -> String {
    if usable == 0 {
        format!(
            "DANE: TLSA at {name} is secure but none of its records is usable: STARTTLS \
             required to {host}, certificate not authenticated (RFC 7672 2.2)"
        )
    } else {
        format!(
            "DANE: {host} has {usable} usable TLSA record(s) at {name}: STARTTLS required and \
             the certificate authenticated by DANE, not by the trust stores (RFC 7672 3.1)"
        )
    }
}

/// Removes the hosts whose TLSA answer is bogus; the hop fails when none is left.
fn leave_out(w: &mut Walking, bogus: &[(String, String)]) -> Option<TraceHop> {
    for (host, name) in bogus {
        w.warnings.push(format!(
            "DANE: the TLSA answer at {name} is DNSSEC-bogus: MX {host} not used (RFC 7672 2.2)"
        ));
    }
    w.hop
        .mx
        .retain(|m| !bogus.iter().any(|(h, _)| *h == m.host));
    if bogus.is_empty() || !w.hop.mx.is_empty() {
        return None;
    }
    Some(failed(
        w,
        "every MX host's TLSA answer is DNSSEC-bogus".to_string(),
    ))
}

fn failed(w: &mut Walking, why: String) -> TraceHop {
    let mut hop = w.hop.clone();
    hop.verdict = fail_verdict(
        Outcome::Error,
        format!("DANE failure: {why}; DANE senders do not deliver"),
        std::mem::take(&mut w.warnings),
    );
    hop
}
