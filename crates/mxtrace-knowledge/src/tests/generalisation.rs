//! The generalisation test (issue 29): the labelled corpus in corpus/, split before any rule was
//! written. The dev part may be read by people and rules; the held-out part is read only here,
//! and only aggregate figures are printed for it (never a row's text), so nobody fits to it.

use super::super::*;
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::Reply;
use std::collections::BTreeMap;

const DEV: &str = include_str!("../../corpus/replies-dev.tsv");
const HELDOUT: &str = include_str!("../../corpus/replies-heldout.tsv");

struct Row {
    line: usize,
    stage: Option<Stage>,
    want: String,
    reply: String,
}

fn rows(text: &str) -> Vec<Row> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 5, "line {}: 5 columns", i + 1);
            let stage = match cols[0] {
                "-" => None,
                s => Some(Stage::from_user(s).unwrap_or_else(|| panic!("line {}: stage", i + 1))),
            };
            Row {
                line: i + 1,
                stage,
                want: cols[1].to_string(),
                reply: cols[3].replace("\\n", "\n"),
            }
        })
        .collect()
}

/// What one run over a part found.
#[derive(Default)]
struct Score {
    total: usize,
    right: usize,
    confident_wrong: usize,
    per_category: BTreeMap<String, (usize, usize)>,
    misses: Vec<String>,
}

fn score(rows: &[Row]) -> Score {
    let mut s = Score::default();
    for r in rows {
        let reply = Reply::parse_text(&r.reply).unwrap_or_else(|e| panic!("line {}: {e}", r.line));
        let f = classify_reply(r.stage, &reply);
        let got = f.category.as_str();
        let entry = s.per_category.entry(r.want.clone()).or_default();
        entry.1 += 1;
        s.total += 1;
        if got == r.want {
            s.right += 1;
            entry.0 += 1;
            continue;
        }
        let confident = f.confidence == Confidence::High;
        if confident {
            s.confident_wrong += 1;
        }
        s.misses.push(format!(
            "line {} [{:?}] {:?}: want {} got {got}{} ({:?}, {})",
            r.line,
            r.stage,
            r.reply,
            r.want,
            if confident { " CONFIDENT" } else { "" },
            f.tier,
            f.source
        ));
    }
    s
}

fn pct(right: usize, total: usize) -> f64 {
    if total == 0 {
        return 100.0;
    }
    right as f64 * 100.0 / total as f64
}

fn print_aggregate(label: &str, s: &Score) {
    println!(
        "{label}: {}/{} right ({:.1}%), confident-wrong {}",
        s.right,
        s.total,
        pct(s.right, s.total),
        s.confident_wrong
    );
    for (cat, (right, total)) in &s.per_category {
        println!("  {label} {cat}: {right}/{total}");
    }
}

#[test]
fn dev_replies() {
    let s = score(&rows(DEV));
    print_aggregate("replies dev", &s);
    for m in &s.misses {
        println!("  {m}");
    }
}

/// The goal for the held-out part (issue 29): 95 %, with near-zero confident wrong answers (at
/// most one, or 1 % of the part). Not reached yet: docs/diagnosis.md has the figures.
const HELDOUT_GOAL: f64 = 95.0;
/// What the method reached (round 1: 80.3 %, 19 confident wrong; round 2, measured after the
/// work: 81.2 %, 14; round 3, unchanged; round 4: 10 confident wrong with the calibration rule;
/// round 5, unchanged; docs/diagnosis.md): the floor a change may not fall below. Raise both as the method
/// improves; never lower them.
const HELDOUT_FLOOR: f64 = 81.0;
const HELDOUT_CONFIDENT_WRONG_MAX: usize = 10;

/// Aggregate figures only: the held-out rows are never printed, and a failure says the
/// figures, not the rows.
#[test]
fn heldout_replies() {
    let s = score(&rows(HELDOUT));
    print_aggregate("replies held-out", &s);
    let accuracy = pct(s.right, s.total);
    let near_zero = s.confident_wrong <= 1 || s.confident_wrong * 100 <= s.total;
    let met = accuracy >= HELDOUT_GOAL && near_zero;
    println!(
        "replies held-out: goal {HELDOUT_GOAL}% with near-zero confident wrong: {}",
        if met { "met" } else { "NOT MET" }
    );
    assert!(
        accuracy >= HELDOUT_FLOOR,
        "replies held-out: {accuracy:.1}% right, below the floor of {HELDOUT_FLOOR}%"
    );
    assert!(
        s.confident_wrong <= HELDOUT_CONFIDENT_WRONG_MAX,
        "replies held-out: {} confident wrong answers, more than {HELDOUT_CONFIDENT_WRONG_MAX}",
        s.confident_wrong
    );
}

fn finding(stage: Option<Stage>, text: &str) -> Finding {
    classify_reply(stage, &Reply::parse_text(text).unwrap())
}

/// The conflict rule (docs/diagnosis.md "Conflicts"): a phrase that names one cause overrides
/// the code; words override a generic code; a disagreement lowers the confidence.
#[test]
fn conflicts_are_settled_by_one_rule() {
    // A generic 5.7.1 whose text says spam: the words decide, nothing disagrees, but no code
    // says it too, so "probably" (docs/diagnosis.md "Confidence").
    let f = finding(
        Some(Stage::EndOfData),
        "550 5.7.1 Message identified as spam",
    );
    assert_eq!(f.category, Category::ContentRejected);
    assert_eq!(f.confidence, Confidence::Medium);
    // The same words with the code that means it: sure.
    let f = finding(
        Some(Stage::EndOfData),
        "554 5.6.0 Message identified as spam",
    );
    assert_eq!(f.category, Category::ContentRejected);
    assert_eq!(f.confidence, Confidence::High);
    // A specific code against a phrase naming another cause: the phrase wins, unsure.
    let f = finding(Some(Stage::RcptTo), "550 5.1.1 Mailbox is full");
    assert_eq!(f.category, Category::MailboxDisabledOrFull);
    assert_eq!(f.confidence, Confidence::Medium);
    assert_eq!(f.runner_up, Some(Category::RecipientUnknown));
    assert!(
        f.cause.starts_with("Probably mailbox_disabled_or_full"),
        "{}",
        f.cause
    );
    // A specific code against a word that merely leans: the code wins, unsure.
    let f = finding(Some(Stage::RcptTo), "550 5.1.1 <a@b.test>... prohibited");
    assert_eq!(f.category, Category::RecipientUnknown);
    assert_eq!(f.confidence, Confidence::Medium);
    assert_eq!(f.runner_up, Some(Category::PolicyOrTransportRule));
    // Nothing against it: sure.
    let f = finding(Some(Stage::RcptTo), "550 5.1.1 <a@b.test>... unknown");
    assert_eq!(f.confidence, Confidence::High);
}

/// The stage weighs the same words: a quota at MAIL is the sender's, at RCPT the mailbox's;
/// "send EHLO first" at STARTTLS is a sequence error, not a TLS failure.
#[test]
fn the_stage_weighs_the_words() {
    let quota = "452 4.3.1 Queue quota exceeded for this organization";
    assert_eq!(
        finding(Some(Stage::RcptTo), quota).category,
        Category::ReputationOrRateLimited
    );
    let full = "452 4.2.2 Over quota";
    assert_eq!(
        finding(Some(Stage::RcptTo), full).category,
        Category::MailboxDisabledOrFull
    );
    let seq = "503 5.5.1 Error: send EHLO first";
    assert_eq!(
        finding(Some(Stage::Starttls), seq).category,
        Category::ProtocolError
    );
    let unauth = "530 5.7.0 Unauthenticated senders not allowed";
    assert_eq!(
        finding(Some(Stage::MailFrom), unauth).category,
        Category::AuthRequired
    );
    let loop_ = "554 5.4.0 Hop count exceeded - possible mail loop";
    assert_eq!(
        finding(Some(Stage::EndOfData), loop_).category,
        Category::ConnectorOrRouting
    );
}

/// Unsure says `other`, low, with the closest reading as the runner-up.
#[test]
fn an_unsure_classifier_says_other() {
    let f = finding(Some(Stage::RcptTo), "550 5.7.1 Access denied");
    assert_eq!(f.category, Category::Other);
    assert_eq!(f.confidence, Confidence::Low);
    assert_eq!(f.runner_up, Some(Category::PolicyOrTransportRule));
    assert!(f
        .cause
        .contains("closest reading is policy_or_transport_rule"));
}

/// What the session knows: a server that does not claim the recipient's domain and refuses
/// without a reason is probably refusing to relay; one that claims it and says "relay" is
/// probably missing the domain from its own accepted domains.
#[test]
fn session_facts_weigh_a_refusal_at_rcpt() {
    let bare = Reply::parse_text("550 5.7.1 Access denied").unwrap();
    let not_ours = SessionFacts {
        recipient_domain_claimed: Some(false),
    };
    let f = classify_in(Some(Stage::RcptTo), &bare, not_ours);
    assert_eq!(f.category, Category::RelayDenied);
    assert_eq!(f.confidence, Confidence::Medium);
    let ours = SessionFacts {
        recipient_domain_claimed: Some(true),
    };
    assert_eq!(
        classify_in(Some(Stage::RcptTo), &bare, ours).category,
        Category::Other
    );
    let relay = Reply::parse_text("554 5.7.1 <a@b.test>: Relay access denied").unwrap();
    let f = classify_in(Some(Stage::RcptTo), &relay, ours);
    assert_eq!(f.category, Category::RelayDenied);
    assert_eq!(f.confidence, Confidence::Medium);
    assert_eq!(f.runner_up, Some(Category::RecipientUnknown));
    // Knowing nothing changes nothing: Postfix's own wording, sure.
    assert_eq!(
        classify_reply(Some(Stage::RcptTo), &relay).confidence,
        Confidence::High
    );
    // Relaying refused in other words, with a generic code: probably.
    let other = Reply::parse_text("554 5.7.1 <a@b.test>: we do not relay").unwrap();
    let f = classify_reply(Some(Stage::RcptTo), &other);
    assert_eq!(f.category, Category::RelayDenied);
    assert_eq!(f.confidence, Confidence::Medium);
}

/// The registry table covers every subject of RFC 3463 and names its source.
#[test]
fn the_registry_is_whole() {
    use super::super::registry::{meaning, REGISTRY};
    for (subject, details) in [
        (0, 0),
        (1, 11),
        (2, 4),
        (3, 6),
        (4, 7),
        (5, 6),
        (6, 10),
        (7, 30),
    ] {
        for detail in 0..=details {
            if subject == 0 && detail > 0 {
                continue;
            }
            assert!(meaning(subject, detail).is_some(), "X.{subject}.{detail}");
        }
    }
    assert!(REGISTRY
        .iter()
        .all(|r| r.source.contains("RFC") || r.source.contains("IANA")));
}

/// Sendmail's access-map TLS requirement (TLS_Clt ... ENCR:128) answers MAIL on a plaintext
/// session with "encryption too weak 0 less than 128": the server requires TLS first.
#[test]
fn sendmail_encryption_too_weak_requires_tls() {
    let f = finding(
        Some(Stage::MailFrom),
        "454 4.7.0 encryption too weak 0 less than 128",
    );
    assert_eq!(f.category, Category::TlsRequired);
    // 4.7.0 is generic: the words alone decide, "probably".
    assert_eq!(f.confidence, Confidence::Medium);
    let f = finding(
        Some(Stage::MailFrom),
        "530 5.7.10 encryption too weak 0 less than 128",
    );
    assert_eq!(f.category, Category::TlsRequired);
    assert_eq!(f.confidence, Confidence::High);
}

/// Spamhaus lists domains (DBL) as well as IPs: a sender or HELO domain "listed in Spamhaus"
/// is a domain listing; the client host blocked using Spamhaus is an IP listing.
#[test]
fn a_listed_domain_is_not_a_listed_ip() {
    let domain = "550 5.7.1 Service unavailable, MailFrom domain is listed in Spamhaus. (S8002)";
    assert_eq!(
        finding(None, domain).category,
        Category::ReputationOrRateLimited
    );
    let ip = "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus.";
    assert_eq!(finding(None, ip).category, Category::IpBlocklisted);
}

/// A quota said of the recipient is a full mailbox, in whatever words, and it outweighs a
/// recipient code it contradicts (medium confidence, the code's reading the runner-up).
#[test]
fn a_recipient_quota_is_a_full_mailbox() {
    let f = finding(
        None,
        "552 5.1.1 <a@b.test> recipient rejected - extended quota violation",
    );
    assert_eq!(f.category, Category::MailboxDisabledOrFull);
    assert_eq!(f.confidence, Confidence::Medium);
    assert_eq!(f.runner_up, Some(Category::RecipientUnknown));
    let size = "552 5.2.2 Mailbox size limit exceeded";
    assert_eq!(
        finding(None, size).category,
        Category::MailboxDisabledOrFull
    );
    // At AUTH "unknown user" is about the login, never a recipient.
    let login = "535 5.7.8 Authentication failed: unknown user";
    assert_eq!(
        finding(Some(Stage::Auth), login).category,
        Category::AuthFailed
    );
}

/// A phrase naming a cause wins over a single word of a row listed before it ("spoofing"
/// leans to the sender; "rejected by ... policy" names the policy).
#[test]
fn a_phrase_beats_an_earlier_single_word() {
    let f = finding(
        None,
        "550 Rejected by header based Anti-Spoofing policy: a@b.test",
    );
    assert_eq!(f.category, Category::PolicyOrTransportRule);
    let f = finding(None, "554 Email rejected due to security policies");
    assert_eq!(f.category, Category::PolicyOrTransportRule);
    // But an email-authentication policy is the authentication family's.
    let f = finding(None, "550 5.7.1 Email rejected per DMARC policy for b.test");
    assert_eq!(f.category, Category::SpfDkimDmarcFailure);
}

/// The basic code and the stage alone are a guess: low confidence, and a word away from the
/// stage where its cause is answered is a guess too.
#[test]
fn stage_alone_and_stray_words_are_low_confidence() {
    let f = finding(Some(Stage::RcptTo), "550 5.0.0 <a@b.test>");
    assert_eq!(f.confidence, Confidence::Low, "{f:?}");
    let f = finding(Some(Stage::Banner), "554 unknown");
    assert_ne!(f.confidence, Confidence::High, "{f:?}");
}

/// High confidence needs nothing against it: a reply that also names another cause is only
/// "probably" what decided, that cause the runner-up (docs/diagnosis.md "Confidence").
#[test]
fn a_second_named_cause_lowers_the_confidence() {
    // Nothing against it: sure.
    let f = finding(Some(Stage::RcptTo), "550 5.1.1 User unknown");
    assert_eq!(f.category, Category::RecipientUnknown);
    assert_eq!(f.confidence, Confidence::High);
    // A vendor row decides (Postfix's rate limit), but a phrase names an unknown user: not
    // sure, whatever decided.
    let f = finding(
        Some(Stage::RcptTo),
        "550 5.1.1 User unknown; too many connections from your host",
    );
    assert_eq!(f.category, Category::ReputationOrRateLimited);
    assert_eq!(f.confidence, Confidence::Medium);
    assert_eq!(f.runner_up, Some(Category::RecipientUnknown));
    // Postfix's "Service unavailable;" before a DNSBL refusal is not a second cause.
    let f = finding(
        Some(Stage::RcptTo),
        "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
    );
    assert_eq!(f.category, Category::IpBlocklisted);
    assert_eq!(f.confidence, Confidence::High);
}

/// Greylisting's words beat the DNS reading of X.4.3 (Apache James defers greylisted senders
/// with "451 4.4.3 Temporary rejected"; X.4.3 is generic); a reason of another cause keeps
/// them out, and "try again later" alone is any temporary failure's, not greylisting's.
#[test]
fn temporarily_rejected_at_rcpt_is_greylisting() {
    let f = finding(
        Some(Stage::RcptTo),
        "451 4.4.3 Temporary rejected: Please try again later",
    );
    assert_eq!(f.category, Category::Greylisted);
    assert_eq!(f.runner_up, Some(Category::DnsFailure));
    let f = finding(
        Some(Stage::RcptTo),
        "451 4.4.3 Temporary DNS lookup failure, try again later",
    );
    assert_eq!(f.category, Category::DnsFailure);
    let f = finding(Some(Stage::RcptTo), "451 Please try again later.");
    assert_eq!(f.category, Category::ServiceUnavailable);
    // Permanent: never greylisting.
    let f = finding(Some(Stage::RcptTo), "550 Temporarily rejected");
    assert_ne!(f.category, Category::Greylisted);
}

/// "Service currently unavailable" is the service's state, permanent code or not.
#[test]
fn service_wordings_are_the_service() {
    for text in [
        "554 Service currently unavailable",
        "554 5.3.0 Service is unavailable",
    ] {
        assert_eq!(
            finding(Some(Stage::Banner), text).category,
            Category::ServiceUnavailable,
            "{text}"
        );
    }
}

/// A URI list judges the links a message contains (content); the same lists asked about the
/// sender's domain judge the sender (reputation); an IP list judges the client's address.
#[test]
fn a_listed_link_is_content() {
    let uri = "554 5.7.0 Rejected: message contains domain example.net listed by multi.surbl.org";
    assert_eq!(
        finding(Some(Stage::EndOfData), uri).category,
        Category::ContentRejected
    );
    let uri = "550 5.7.1 Message rejected: URL in the message body is listed in multi.uribl.com";
    assert_eq!(
        finding(Some(Stage::EndOfData), uri).category,
        Category::ContentRejected
    );
    let sender = "554 5.7.1 <a@b.test>: Sender address rejected: b.test listed in dbl.spamhaus.org";
    assert_eq!(
        finding(Some(Stage::MailFrom), sender).category,
        Category::ReputationOrRateLimited
    );
}

/// The policy family names the receiving organization's own rules in vendors' words
/// (Exchange delivery restrictions and moderation, allow lists, geo blocks, DLP, an
/// administrator's or a user's block), not only the word "policy".
#[test]
fn organization_rules_in_vendor_words_are_policy() {
    for (stage, text) in [
        (
            Some(Stage::RcptTo),
            "550 5.7.1 This group only accepts messages from people in its organization",
        ),
        (None, "550 5.7.1 Message blocked by the administrator"),
        (
            Some(Stage::RcptTo),
            "550 5.7.1 Sender not in the allowed senders list of the recipient",
        ),
        (
            Some(Stage::Banner),
            "554 5.7.1 Connections from your country are blocked (GeoIP)",
        ),
        (
            Some(Stage::EndOfData),
            "550 5.7.1 Message rejected by DLP: data loss prevention",
        ),
        (
            Some(Stage::RcptTo),
            "550 5.7.1 The recipient does not wish to receive mail from you",
        ),
        (None, "550 Envelope blocked - Policy Entry"),
    ] {
        let f = finding(stage, text);
        assert_eq!(f.category, Category::PolicyOrTransportRule, "{text}");
        // Words alone, without a code that says the same: never sure.
        assert_ne!(f.confidence, Confidence::High, "{text}");
    }
}

/// Reputation and sending limits in the providers' words (Yahoo's TSS04/TS03, sending limits
/// and frequencies), and a list named as an IP reputation zone (csi.mimecast.org,
/// csi.cloudmark.com) is an IP list.
#[test]
fn reputation_and_limits_in_provider_words() {
    for text in [
        "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints",
        "421 4.7.0 [TS03] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed",
        "550 5.7.1 Your IP has hit spam traps",
        "452 4.5.3 Daily sending limit exceeded for this account",
        "450 4.7.1 Sending rate is too high, slow down",
    ] {
        let f = finding(None, text);
        assert_eq!(f.category, Category::ReputationOrRateLimited, "{text}");
    }
    let f = finding(None, "550 csi.mimecast.org Poor Reputation Sender.");
    assert_eq!(f.category, Category::IpBlocklisted);
}

/// Content refused in words other than "spam" (objectionable or prohibited content, banned
/// words, Bayesian filters), at end of data; a listed link is the content, never the IP.
#[test]
fn content_in_other_words_is_content() {
    for text in [
        "550 5.7.1 Message contains objectionable content",
        "554 5.7.1 Prohibited content found in message",
        "550 5.7.1 Message rejected: banned word in subject",
        "554 5.7.1 Rejected by Bayesian filter",
        "550 5.7.1 Blacklisted URL in message",
    ] {
        let f = finding(Some(Stage::EndOfData), text);
        assert_eq!(f.category, Category::ContentRejected, "{text}");
    }
    let f = finding(None, "554 5.7.1 Blacklisted URL in message");
    assert_eq!(f.category, Category::ContentRejected);
}

/// The labelling decisions of corpus/README.md, as the classifier reads them: a malformed
/// recipient under the address subject (X.1.3) is the recipient's, the server's own load is
/// the service, a licence that expired is the server's, not a route.
#[test]
fn labelling_decisions_hold() {
    let f = finding(
        Some(Stage::RcptTo),
        "553 5.1.3 Syntax error in recipient address",
    );
    assert_eq!(f.category, Category::RecipientUnknown);
    let f = finding(None, "451 4.4.5 High load, try again later");
    assert_eq!(f.category, Category::ServiceUnavailable);
    let f = finding(None, "422 License Expired");
    assert_eq!(f.category, Category::ServiceUnavailable);
}

/// A list is about what it lists: a recipient on an access list is the receiving side's rule,
/// a sender on one is a sender refusal, and only clients (an IP, a DNSBL) make an IP block.
/// A client name under a reserved or unknown TLD cannot resolve; a sender's is the sender's.
#[test]
fn a_list_is_about_what_it_lists() {
    let f = finding(None, "550 5.7.1 recipient <a@b.test> is on the deny list");
    assert_eq!(f.category, Category::PolicyOrTransportRule);
    assert_ne!(f.confidence, Confidence::High);
    let f = finding(
        Some(Stage::MailFrom),
        "550 5.7.1 sender <a@b.test> blacklisted",
    );
    assert_eq!(f.category, Category::SenderRejected);
    let f = finding(
        None,
        "550 5.7.1 recipient rejected: 192.0.2.1 listed in dnsbl.example",
    );
    assert_eq!(f.category, Category::IpBlocklisted);
    let f = finding(
        None,
        "550 5.7.1 host mx.example.zz [192.0.2.1] from unknown TLD",
    );
    assert_eq!(f.category, Category::DnsFailure);
    let f = finding(
        None,
        "550 5.7.1 sender <a@b.invalid> from RFC2606 reserved domain",
    );
    assert_eq!(f.category, Category::SenderRejected);
}
