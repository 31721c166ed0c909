//! Exchange Online and Exchange Server stamps, decoded into words from Microsoft's own
//! documentation of each field. A field or value the documentation does not describe is shown
//! raw and marked unknown: Microsoft says those are for its anti-spam team's diagnostics.
//!
//! Sources:
//! - [ANTISPAM]: Microsoft Learn, "Anti-spam message headers in cloud organizations",
//!   <https://learn.microsoft.com/defender-office-365/message-headers-eop-mdo>
//! - [FIREWALL]: Microsoft Learn, Exchange Server 2013 "Header firewall" (organization
//!   X-headers table), <https://learn.microsoft.com/exchange/header-firewall-exchange-2013-help>
//! - [DIRECTION]: Microsoft Learn, `MailDirectionality` enumeration
//!   (Microsoft.Exchange.Data.Transport), <https://learn.microsoft.com/previous-versions/office/exchange-server-api/jj939227(v=exchg.150)>

use mxtrace_proto::model::headers::{ExchangeStamps, StampField};

pub const SOURCE_ANTISPAM: &str =
    "https://learn.microsoft.com/defender-office-365/message-headers-eop-mdo";
pub const SOURCE_FIREWALL: &str =
    "https://learn.microsoft.com/exchange/header-firewall-exchange-2013-help";
pub const SOURCE_DIRECTION: &str = "https://learn.microsoft.com/previous-versions/office/exchange-server-api/jj939227(v=exchg.150)";

/// At most this many `field:value` pairs are read from one stamp.
const MAX_FIELDS: usize = 64;
/// A value longer than this is cut (SFS lists run to hundreds of characters).
const MAX_VALUE: usize = 600;

/// X-Forefront-Antispam-Report fields whose meaning does not depend on the value [ANTISPAM].
const FOREFRONT_FIELDS: &[(&str, &str)] = &[
    ("CIP", "connecting IP address (usable in the IP Allow List or IP Block List)"),
    ("CTRY", "source country/region of the connecting IP address (may differ from the originating sender's)"),
    ("LANG", "language the message was written in"),
    ("SCL", "spam confidence level: higher is more likely spam"),
    ("H", "HELO/EHLO name of the connecting server"),
    ("PTR", "reverse DNS (PTR) of the source IP address"),
    ("ARC", "ARC fields (AAR, AMS, AS with its cv= chain validation)"),
    ("X-CustomSpam", "matched an Advanced Spam Filter (ASF) setting"),
];

/// Values of the fields whose meaning is in the value [ANTISPAM].
const FOREFRONT_VALUES: &[(&str, &str, &str)] = &[
    ("IPV", "CAL", "skipped spam filtering: the source IP address is in the IP Allow List"),
    ("IPV", "NLI", "the IP address was not found on any IP reputation list"),
    ("SFV", "BLK", "filtering skipped, blocked: the sender is in a user's Blocked Senders list"),
    ("SFV", "NSPM", "spam filtering marked the message as nonspam; sent to the intended recipients"),
    ("SFV", "SFE", "filtering skipped, allowed: the sender is in a user's Safe Senders list"),
    ("SFV", "SKA", "skipped spam filtering, delivered to the Inbox: sender in the allowed senders or domains of an anti-spam policy"),
    ("SFV", "SKB", "marked as spam: sender in the blocked senders or domains of an anti-spam policy"),
    ("SFV", "SKN", "marked as nonspam before spam filtering (e.g. SCL -1 or bypass by a mail flow rule)"),
    ("SFV", "SKQ", "released from quarantine and sent to the intended recipients"),
    ("SFV", "SKS", "marked as spam before spam filtering (e.g. SCL 5-9 set by a mail flow rule)"),
    ("SFV", "SPM", "marked as spam by spam filtering"),
    ("SRV", "BULK", "identified as bulk email by spam filtering and the BCL threshold"),
    ("DIR", "INB", "inbound message"),
    ("DIR", "OUT", "outbound message"),
    ("DIR", "INT", "internal message"),
    ("SFTY", "9.19", "domain impersonation: the sending domain impersonates a protected domain"),
    ("SFTY", "9.20", "user impersonation: the sender impersonates a user of the recipient's organization or a protected user"),
    ("SFTY", "9.25", "first contact safety tip: might indicate a suspicious or phishing message"),
    ("CAT", "AMP", "anti-malware"),
    ("CAT", "BIMP", "brand impersonation"),
    ("CAT", "BULK", "bulk"),
    ("CAT", "DIMP", "domain impersonation"),
    ("CAT", "FTBP", "anti-malware common attachments filter"),
    ("CAT", "GIMP", "mailbox intelligence impersonation"),
    ("CAT", "HPHSH", "high confidence phishing"),
    ("CAT", "HPHISH", "high confidence phishing"),
    ("CAT", "HSPM", "high confidence spam"),
    ("CAT", "INTOS", "intra-organization phishing"),
    ("CAT", "MALW", "malware"),
    ("CAT", "OSPM", "outbound spam"),
    ("CAT", "PHSH", "phishing"),
    ("CAT", "SAP", "Safe Attachments"),
    ("CAT", "SPM", "spam"),
    ("CAT", "SPOOF", "spoofing"),
    ("CAT", "UIMP", "user impersonation"),
];

/// The Exchange organization headers this tool decodes [FIREWALL], [DIRECTION].
const ORGANIZATION_HEADERS: &[(&str, &str)] = &[
    ("x-ms-exchange-organization-scl", "spam confidence level, 0-9 (higher is more suspicious); -1 exempts the message from content filtering"),
    ("x-ms-exchange-organization-authas", "how the sending server authenticated: Anonymous, Internal, External or Partner"),
    ("x-ms-exchange-organization-authsource", "the server that evaluated the message's authentication for the organization"),
    ("x-ms-exchange-organization-authmechanism", "authentication mechanism of the submission (a 2-digit hexadecimal number)"),
    ("x-ms-exchange-organization-messagedirectionality", "direction of the message for the organization: Originating, Incoming or Undefined"),
    ("x-ms-exchange-organization-network-message-id", "the Network Message ID: the key to find this message in message trace and Threat Explorer"),
    ("x-ms-exchange-organization-originalarrivaltime", "when the message first entered the Exchange organization"),
    ("x-ms-exchange-organization-pcl", "phishing confidence level, 1-8 (larger is more suspicious)"),
];

/// Decodes the stamps found among `headers` (name, unfolded value).
pub fn decode(headers: &[(String, String)]) -> ExchangeStamps {
    let mut out = ExchangeStamps::default();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            // The first (topmost) stamp is the one the last Microsoft hop wrote.
            "x-forefront-antispam-report" if out.forefront.is_empty() => {
                out.forefront = split_pairs(value).map(|(f, v)| forefront(f, v)).collect();
            }
            "x-microsoft-antispam" if out.microsoft_antispam.is_empty() => {
                out.microsoft_antispam = split_pairs(value).map(|(f, v)| antispam(f, v)).collect();
            }
            _ => {
                if let Some((_, meaning)) = ORGANIZATION_HEADERS.iter().find(|(h, _)| *h == lower) {
                    if out
                        .organization
                        .iter()
                        .any(|f| f.field.eq_ignore_ascii_case(name))
                    {
                        continue;
                    }
                    let value = cut(value.trim());
                    if lower == "x-ms-exchange-organization-network-message-id" {
                        out.network_message_id = Some(value.clone());
                    }
                    out.organization.push(StampField {
                        field: name.clone(),
                        value,
                        meaning: Some((*meaning).to_string()),
                    });
                }
            }
        }
    }
    if !out.forefront.is_empty() || !out.microsoft_antispam.is_empty() {
        out.sources.push(SOURCE_ANTISPAM);
    }
    if !out.organization.is_empty() {
        out.sources.push(SOURCE_FIREWALL);
    }
    if out.organization.iter().any(|f| {
        f.field
            .eq_ignore_ascii_case("x-ms-exchange-organization-messagedirectionality")
    }) {
        out.sources.push(SOURCE_DIRECTION);
    }
    out
}

/// `FIELD:value;FIELD:value;...` with whitespace after the separators (folded stamps).
fn split_pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(MAX_FIELDS)
        .map(|pair| match pair.split_once(':') {
            Some((f, v)) => (f.trim(), v.trim()),
            None => (pair, ""),
        })
}

fn forefront(field: &str, value: &str) -> StampField {
    let meaning = FOREFRONT_VALUES
        .iter()
        .find(|(f, v, _)| f.eq_ignore_ascii_case(field) && v.eq_ignore_ascii_case(value))
        .map(|(_, _, m)| (*m).to_string())
        .or_else(|| {
            FOREFRONT_FIELDS
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(field))
                .map(|(_, m)| (*m).to_string())
        })
        .or_else(|| value_field_meaning(field, value));
    StampField {
        field: field.to_string(),
        value: cut(value),
        meaning,
    }
}

/// Fields documented by their values but stamped empty or with a value the page does not
/// list: say which field it is, and that the value is not documented.
fn value_field_meaning(field: &str, value: &str) -> Option<String> {
    let name = match field.to_ascii_uppercase().as_str() {
        "SFV" => "spam filtering verdict",
        "IPV" => "IP reputation verdict",
        "SRV" => "bulk verdict",
        "DIR" => "directionality",
        "SFTY" => "safety tip",
        "CAT" => "category of threat policy applied",
        _ => return None,
    };
    Some(if value.is_empty() {
        format!("{name}: empty (nothing to report)")
    } else {
        format!("{name}: value not documented (shown raw)")
    })
}

fn antispam(field: &str, value: &str) -> StampField {
    let meaning = if field.eq_ignore_ascii_case("BCL") {
        Some("bulk complaint level: higher means a bulk message is more likely to generate complaints".to_string())
    } else {
        None
    };
    StampField {
        field: field.to_string(),
        value: cut(value),
        meaning,
    }
}

fn cut(s: &str) -> String {
    super::ellipsis(s, MAX_VALUE + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn forefront_fields_are_decoded_from_the_table() {
        let s = decode(&[h(
            "X-Forefront-Antispam-Report",
            "CIP:192.0.2.10;CTRY:US;LANG:en;SCL:1;SRV:;IPV:NLI;SFV:NSPM;H:mail.fabrikam.test;PTR:mail.fabrikam.test;CAT:NONE;SFS:(13230040)(1800799024);DIR:INB;SFP:1101;",
        )]);
        let get = |f: &str| s.forefront.iter().find(|x| x.field == f).unwrap();
        assert_eq!(get("CIP").value, "192.0.2.10");
        assert!(get("SFV").meaning.as_deref().unwrap().contains("nonspam"));
        assert!(get("IPV").meaning.as_deref().unwrap().contains("not found"));
        assert!(get("DIR").meaning.as_deref().unwrap().contains("inbound"));
        assert!(get("SRV").meaning.as_deref().unwrap().contains("empty"));
        // Undocumented: raw, said so, never guessed.
        assert_eq!(get("SFS").value, "(13230040)(1800799024)");
        assert_eq!(get("SFS").meaning, None);
        assert_eq!(get("SFP").meaning, None);
        assert!(get("CAT")
            .meaning
            .as_deref()
            .unwrap()
            .contains("not documented"));
        assert_eq!(s.sources, vec![SOURCE_ANTISPAM]);
    }

    #[test]
    fn bcl_and_organization_headers() {
        let s = decode(&[
            h("X-Microsoft-Antispam", "BCL:7;ARA:13230040;"),
            h(
                "X-MS-Exchange-Organization-Network-Message-Id",
                " 8a3c2f1e-0000-4c5d-9e1f-08dd00000000",
            ),
            h("X-MS-Exchange-Organization-AuthAs", "Anonymous"),
            h("X-MS-Exchange-Organization-SCL", "1"),
        ]);
        assert_eq!(s.microsoft_antispam[0].value, "7");
        assert!(s.microsoft_antispam[0].meaning.is_some());
        assert_eq!(s.microsoft_antispam[1].meaning, None);
        assert_eq!(
            s.network_message_id.as_deref(),
            Some("8a3c2f1e-0000-4c5d-9e1f-08dd00000000")
        );
        assert_eq!(s.organization.len(), 3);
        assert!(!s.is_empty());
    }

    #[test]
    fn hostile_stamps_are_bounded() {
        let long = "A:".to_string() + &"x".repeat(10_000) + &";B:1".repeat(1000);
        let s = decode(&[h("X-Forefront-Antispam-Report", &long)]);
        assert!(s.forefront.len() <= MAX_FIELDS);
        assert!(s.forefront[0].value.chars().count() <= MAX_VALUE + 1);
        assert!(
            decode(&[h("X-Forefront-Antispam-Report", ";;;:::")])
                .forefront
                .len()
                <= 3
        );
    }
}
