//! What in a round trip would hurt real mail: one row per finding, with its severity (an
//! error fails the round trip) and the public source of the rule.

use mxtrace_proto::model::posture::Severity;
use mxtrace_proto::model::roundtrip::RoundtripFinding;

struct Rule {
    code: &'static str,
    severity: Severity,
    source: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        code: "not_delivered",
        severity: Severity::Error,
        source: "RFC 5321 4.5.4.1 (an accepted message may wait in a queue and be retried)",
    },
    Rule {
        code: "bounced",
        severity: Severity::Error,
        source: "RFC 3464 (delivery status notifications)",
    },
    Rule {
        code: "not_sent",
        severity: Severity::Error,
        source: "RFC 5321 4.2.5 (the end of DATA reply)",
    },
    Rule {
        code: "mailbox_error",
        severity: Severity::Error,
        source: "RFC 3501 (IMAP4rev1)",
    },
    Rule {
        code: "landed_in_junk",
        severity: Severity::Error,
        source: "RFC 6154 (the \\Junk special-use mailbox); Microsoft Learn, \"Configure junk email settings on Exchange Online mailboxes\"",
    },
    Rule {
        code: "spam_verdict",
        severity: Severity::Error,
        source: "Microsoft Learn, \"Spam confidence level (SCL) in cloud organizations\" and \"Anti-spam message headers\"",
    },
    Rule {
        code: "dmarc_fail",
        severity: Severity::Error,
        source: "RFC 7489 6.6 (receivers apply the domain's DMARC policy to failing mail)",
    },
    Rule {
        code: "compauth_fail",
        severity: Severity::Error,
        source: "Microsoft Learn, \"Anti-spam message headers\" (compauth) and \"Email authentication in EOP\"",
    },
    Rule {
        code: "spf_fail",
        severity: Severity::Warning,
        source: "RFC 7208 2.6 (SPF results)",
    },
    Rule {
        code: "dkim_fail",
        severity: Severity::Warning,
        source: "RFC 6376 6.1 (DKIM verification)",
    },
    Rule {
        code: "hop_without_tls",
        severity: Severity::Warning,
        source: "RFC 3207 (STARTTLS); RFC 3848 (ESMTPS in Received); RFC 8461 (MTA-STS)",
    },
    Rule {
        code: "slow_hop",
        severity: Severity::Warning,
        source: "RFC 5321 4.5.4.1 (queueing and retries delay a message)",
    },
    Rule {
        code: "scenario_mismatch",
        severity: Severity::Error,
        source: "Microsoft Learn, \"Mail flow best practices for Exchange Online, Microsoft 365, and Office 365\"",
    },
    Rule {
        code: "scenario_unknown",
        severity: Severity::Warning,
        source: "Microsoft Learn, \"Mail flow best practices for Exchange Online, Microsoft 365, and Office 365\"",
    },
];

/// The finding `code` with this message. Every code used is a row of `RULES` (a test checks).
pub fn finding(code: &'static str, message: String) -> RoundtripFinding {
    let rule = RULES.iter().find(|r| r.code == code);
    RoundtripFinding {
        code: code.to_string(),
        severity: rule.map_or(Severity::Error, |r| r.severity),
        message,
        source: rule.map(|r| r.source.to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_source_and_a_unique_code() {
        let mut codes: Vec<_> = RULES.iter().map(|r| r.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RULES.len());
        assert!(RULES.iter().all(|r| !r.source.is_empty()));
        assert_eq!(
            finding("dmarc_fail", String::new()).severity,
            Severity::Error
        );
        assert_eq!(
            finding("slow_hop", String::new()).severity,
            Severity::Warning
        );
    }
}
