//! The IANA "SMTP Enhanced Status Codes" registry as data: every subject.detail code of RFC 3463
//! and the RFCs that registered codes since (RFC 3886, 4468, 4865, 4954, 5248, 6531, 6710, 7293,
//! 7372, 7505, 8617, 8689), read class by class (2 success, 4 transient, 5 permanent).
//!
//! Source: IANA SMTP Enhanced Status Codes registry,
//! https://www.iana.org/assignments/smtp-enhanced-status-codes (subject and detail sub-codes),
//! RFC 3463 section 3 for the subjects, RFC 5248 for the registry itself. Microsoft's own
//! X.7.x codes (5.7.54, 5.7.64, 5.7.5xx-7xx ...) are in tables.rs MICROSOFT, read first.
//!
//! A row's category is what the code alone says. `generic()` marks the "other or undefined"
//! codes and the catch-alls servers reuse for anything (X.7.1 "delivery not authorized"): their
//! category, if any, yields to words that name a cause (docs/diagnosis.md "Conflicts").

use super::rules::{Classes, CodeRule, Stages, AUTH};
use super::tables::{RFC3463, RFC4954, RFC7208, RFC7372};
use super::Category::*;
use super::Layer;

const RFC3886: &str = "RFC 3886 / IANA SMTP Enhanced Status Codes registry (X.1.9)";
const RFC4468: &str = "RFC 4468 / IANA SMTP Enhanced Status Codes registry (X.6.6)";
const RFC5248: &str =
    "RFC 5248 / IANA SMTP Enhanced Status Codes registry (X.7.10, X.7.13, X.7.14)";
const RFC6531: &str =
    "RFC 6531 section 3.7.4 / IANA SMTP Enhanced Status Codes registry (X.6.7-X.6.10, SMTPUTF8)";
const RFC6710: &str = "RFC 6710 / IANA SMTP Enhanced Status Codes registry (X.3.6, X.7.15, X.7.16)";
const RFC7293: &str = "RFC 7293 / IANA SMTP Enhanced Status Codes registry (X.7.17-X.7.19)";
const RFC7505: &str =
    "RFC 7505 / IANA SMTP Enhanced Status Codes registry (X.1.10, X.1.11, X.7.27)";
const RFC8617: &str = "RFC 8617 / IANA SMTP Enhanced Status Codes registry (X.7.29)";
const RFC8689: &str = "RFC 8689 / IANA SMTP Enhanced Status Codes registry (X.7.30)";
const IANA: &str = "IANA SMTP Enhanced Status Codes registry (X.7.28 mail flood detected)";

/// The security codes RFC 4954 defined for AUTH mean something else at other stages (Yahoo's
/// 554 5.7.9 "policy reasons"), so they decide only at AUTH or with the stage unknown.
const AT_AUTH: Stages = AUTH.or_unknown();

pub static REGISTRY: &[CodeRule] = &[
    CodeRule::new(0, 0, "Other undefined status", None, "", RFC3463).generic(),
    // X.1: addressing.
    CodeRule::new(1, 0, "Other address status", None, "", RFC3463).generic(),
    CodeRule::new(1, 1, "Bad destination mailbox address", Some(RecipientUnknown),
        "The recipient mailbox does not exist at the receiving server.", RFC3463),
    CodeRule::new(1, 2, "Bad destination system address", Some(RecipientUnknown),
        "The recipient's domain or system does not exist or cannot accept mail.", RFC3463),
    CodeRule::new(1, 3, "Bad destination mailbox address syntax", Some(RecipientUnknown),
        "The recipient address is syntactically invalid.", RFC3463),
    CodeRule::new(1, 4, "Destination mailbox address ambiguous", Some(RecipientUnknown),
        "The recipient address matches more than one mailbox (in Exchange: duplicate proxy addresses).", RFC3463),
    CodeRule::new(1, 5, "Destination address valid", Some(Accepted), "", RFC3463),
    CodeRule::new(1, 6, "Destination mailbox has moved, no forwarding address", Some(RecipientUnknown),
        "The recipient has moved and left no forwarding address.", RFC3463),
    CodeRule::new(1, 7, "Bad sender's mailbox address syntax", Some(SenderRejected),
        "The sender address is syntactically invalid.", RFC3463),
    CodeRule::new(1, 8, "Bad sender's system address", Some(SenderRejected),
        "The sender's domain does not exist or cannot accept replies.", RFC3463),
    CodeRule::new(1, 9, "Message relayed to non-compliant mailer", Some(Accepted), "", RFC3886),
    CodeRule::new(1, 10, "Recipient address has null MX", Some(RecipientUnknown),
        "The recipient domain publishes a null MX: it accepts no mail.", RFC7505),
    CodeRule::new(1, 11, "Sender address has null MX", Some(SenderRejected),
        "The sender domain publishes a null MX, so replies could not be delivered.", RFC7505),
    // X.2: the mailbox.
    CodeRule::new(2, 0, "Other or undefined mailbox status", None, "", RFC3463).generic(),
    CodeRule::new(2, 1, "Mailbox disabled, not accepting messages", Some(MailboxDisabledOrFull),
        "The recipient mailbox exists but is disabled or not accepting messages.", RFC3463),
    CodeRule::new(2, 2, "Mailbox full", Some(MailboxDisabledOrFull),
        "The recipient mailbox is full.", RFC3463),
    CodeRule::new(2, 3, "Message length exceeds administrative limit", Some(MessageTooLarge),
        "The message is larger than the recipient's or system's administrative size limit.", RFC3463),
    CodeRule::new(2, 4, "Mailing list expansion problem", None, "", RFC3463).generic(),
    // X.3: the mail system.
    CodeRule::new(3, 0, "Other or undefined mail system status", None, "", RFC3463).generic(),
    CodeRule::new(3, 1, "Mail system full", Some(ServiceUnavailable),
        "The receiving system is out of storage.", RFC3463),
    CodeRule::new(3, 2, "System not accepting network messages", Some(ServiceUnavailable),
        "The receiving system is not accepting network messages right now (shutting down, maintenance or overload).", RFC3463),
    CodeRule::new(3, 3, "System not capable of selected features", Some(ProtocolError),
        "The message requires a feature the receiving system does not support.", RFC3463),
    CodeRule::new(3, 4, "Message too big for system", Some(MessageTooLarge),
        "The message is larger than the receiving system accepts.", RFC3463),
    CodeRule::new(3, 5, "System incorrectly configured", Some(ConnectorOrRouting),
        "The receiving system reports that it is misconfigured for this mail.", RFC3463).generic(),
    CodeRule::new(3, 6, "Requested priority was changed", Some(Accepted), "", RFC6710),
    // X.4: network and routing.
    CodeRule::new(4, 0, "Other or undefined network or routing status", Some(ConnectorOrRouting),
        "A network or routing problem prevented delivery.", RFC3463).generic(),
    CodeRule::new(4, 1, "No answer from host", Some(ConnectorOrRouting),
        "The next-hop host did not answer.", RFC3463).layer(Layer::Network),
    CodeRule::new(4, 2, "Bad connection", Some(ConnectorOrRouting),
        "The connection to the next hop was dropped or broke during the transaction.", RFC3463).layer(Layer::Network),
    // Servers use X.4.3 for any lookup that failed (DNS, LDAP, a greylisting or SPF
    // database): the words decide when they name the cause.
    CodeRule::new(4, 3, "Directory server failure", Some(DnsFailure),
        "A directory (usually DNS) lookup needed for routing failed.", RFC3463).generic(),
    CodeRule::new(4, 4, "Unable to route", Some(DnsFailure),
        "No route to the destination: DNS gives no usable MX or address for the domain (RFC 3463: the host's directory lookup returned no route).", RFC3463)
        .layer(Layer::Dns),
    CodeRule::new(4, 5, "Mail system congestion", Some(ServiceUnavailable),
        "The receiving mail system is congested.", RFC3463),
    CodeRule::new(4, 6, "Routing loop detected", Some(ConnectorOrRouting),
        "The message is looping between servers (connectors or accepted domains point at each other).", RFC3463),
    CodeRule::new(4, 7, "Delivery time expired", Some(ConnectorOrRouting),
        "The message expired in a queue before the next hop accepted it.", RFC3463).layer(Layer::Network),
    // X.5: the mail delivery protocol.
    CodeRule::new(5, 0, "Other or undefined protocol status", None, "", RFC3463).generic(),
    CodeRule::new(5, 1, "Invalid command", Some(ProtocolError),
        "The server did not accept the command (invalid or out of sequence).", RFC3463),
    CodeRule::new(5, 2, "Syntax error", Some(ProtocolError),
        "The command had a syntax error.", RFC3463),
    CodeRule::new(5, 3, "Too many recipients", Some(ReputationOrRateLimited),
        "The message has more recipients than the server accepts in one transaction; the rest must be sent in another.", RFC3463)
        .layer(Layer::Policy),
    CodeRule::new(5, 4, "Invalid command arguments", Some(ProtocolError),
        "The command's arguments or parameters were not valid.", RFC3463),
    CodeRule::new(5, 5, "Wrong protocol version", Some(ProtocolError),
        "The two ends disagree on the protocol version.", RFC3463),
    CodeRule::new(5, 6, "Authentication exchange line is too long", Some(ProtocolError),
        "An AUTH exchange line exceeded the server's limit.", RFC4954),
    // X.6: message content or media.
    CodeRule::new(6, 0, "Other or undefined media error", Some(ContentRejected),
        "The server refused the message content or format.", RFC3463).generic(),
    CodeRule::new(6, 1, "Media not supported", Some(ContentRejected),
        "The message content, encoding or format is not acceptable to the receiving server.", RFC3463),
    CodeRule::new(6, 2, "Conversion required and prohibited", Some(ContentRejected),
        "The message needs a content conversion that is not allowed.", RFC3463),
    CodeRule::new(6, 3, "Conversion required but not supported", Some(ContentRejected),
        "The message needs a content conversion the server cannot do.", RFC3463),
    CodeRule::new(6, 4, "Conversion with loss performed", Some(Accepted), "", RFC3463),
    CodeRule::new(6, 5, "Conversion failed", Some(ContentRejected),
        "A content conversion failed.", RFC3463),
    CodeRule::new(6, 6, "Message content not available", Some(ContentRejected),
        "The referenced message content (BURL) could not be fetched.", RFC4468),
    CodeRule::new(6, 7, "Non-ASCII addresses not permitted for that sender/recipient", Some(ProtocolError),
        "An internationalized (UTF-8) address was used without SMTPUTF8 support on both ends.", RFC6531),
    CodeRule::new(6, 8, "UTF-8 string reply is required, but not permitted by the SMTP client", Some(ProtocolError),
        "The server needs to answer in UTF-8 and the client did not ask for SMTPUTF8.", RFC6531).to(10),
    // X.7: security or policy.
    CodeRule::new(7, 0, "Other or undefined security status", None, "", RFC3463).generic(),
    CodeRule::new(7, 1, "Delivery not authorized, message refused", None, "", RFC3463).generic(),
    CodeRule::new(7, 2, "Mailing list expansion prohibited", Some(PolicyOrTransportRule),
        "The sender may not send to this mailing list.", RFC3463),
    CodeRule::new(7, 3, "Security conversion required but not possible", None, "", RFC3463).generic(),
    CodeRule::new(7, 4, "Security features not supported", None, "", RFC3463).generic(),
    CodeRule::new(7, 5, "Cryptographic failure", None, "", RFC3463).generic(),
    CodeRule::new(7, 6, "Cryptographic algorithm not supported", None, "", RFC3463).generic(),
    // At AUTH the code answers the AUTH command (RFC 4954), whatever its registry meaning.
    CodeRule::new(7, 7, "Message integrity failure", Some(ContentRejected),
        "The message failed an integrity check.", RFC3463).at(Stages::ANY.except(AUTH)),
    CodeRule::new(7, 8, "Authentication credentials invalid", Some(AuthFailed),
        "The server rejected the credentials.", RFC4954).at(AT_AUTH),
    CodeRule::new(7, 9, "Authentication mechanism is too weak", Some(AuthFailed),
        "The server requires a stronger authentication mechanism.", RFC4954).at(AUTH),
    CodeRule::new(7, 10, "Encryption needed", Some(TlsRequired),
        "The server requires TLS for this operation.", RFC5248),
    CodeRule::new(7, 11, "Encryption required for requested authentication mechanism", Some(TlsRequired),
        "This authentication mechanism is only allowed inside TLS.", RFC4954),
    CodeRule::new(7, 12, "A password transition is needed", Some(AuthFailed),
        "The account must change its password before it can authenticate.", RFC4954).at(AUTH),
    CodeRule::new(7, 13, "User account disabled", Some(AuthFailed),
        "The account used to authenticate is disabled.", RFC5248).at(AT_AUTH),
    CodeRule::new(7, 14, "Trust relationship required", Some(AuthRequired),
        "The server requires an established trust relationship (authentication) for this.", RFC5248),
    CodeRule::new(7, 15, "Priority level is too low", Some(PolicyOrTransportRule),
        "The server refused the message at its priority level.", RFC6710),
    CodeRule::new(7, 16, "Message is too big for the specified priority", Some(MessageTooLarge),
        "The message is too big for the priority it asked for.", RFC6710),
    CodeRule::new(7, 17, "Mailbox owner has changed", Some(RecipientUnknown),
        "The recipient address now belongs to someone else (require-recipient-valid-since).", RFC7293),
    CodeRule::new(7, 18, "Domain owner has changed", Some(RecipientUnknown),
        "The recipient domain now belongs to someone else (require-recipient-valid-since).", RFC7293),
    CodeRule::new(7, 19, "RRVS test cannot be completed", None, "", RFC7293).generic(),
    // A temporary failure of an authentication check is a failed lookup, not a failed check.
    CodeRule::new(7, 20, "Email authentication check failed temporarily", Some(DnsFailure),
        "A sender authentication check (SPF, DKIM or DMARC) could not be completed because a DNS lookup failed; it is retried.", RFC7208)
        .to(26).only(Classes::Transient).layer(Layer::Dns)
        .text(&["temporary", "temperror", "tempfail", "timeout", "timed out", "dns", "lookup"]),
    CodeRule::new(7, 20, "No passing DKIM signature found", Some(SpfDkimDmarcFailure),
        "The message has no DKIM signature the receiver accepts.", RFC7372),
    CodeRule::new(7, 21, "No acceptable DKIM signature found", Some(SpfDkimDmarcFailure),
        "The message has no DKIM signature the receiver accepts.", RFC7372),
    CodeRule::new(7, 22, "No valid author-matched DKIM signature found", Some(SpfDkimDmarcFailure),
        "The message has no valid DKIM signature aligned with the From domain.", RFC7372),
    CodeRule::new(7, 23, "SPF validation failed", Some(SpfDkimDmarcFailure),
        "The sending IP is not authorized by the sender domain's SPF record.", RFC7372),
    CodeRule::new(7, 24, "SPF validation error", Some(SpfDkimDmarcFailure),
        "The sender domain's SPF record could not be evaluated (syntax error or too many DNS lookups).", RFC7372),
    CodeRule::new(7, 25, "Reverse DNS validation failed", Some(DnsFailure),
        "The sending IP has no valid reverse DNS (PTR) record, or it does not resolve back.", RFC7372).layer(Layer::Dns),
    CodeRule::new(7, 26, "Multiple authentication checks failed", Some(SpfDkimDmarcFailure),
        "The message failed sender authentication: neither SPF nor DKIM passed (aligned), so DMARC or the receiver's authentication requirement failed.", RFC7372),
    CodeRule::new(7, 27, "Sender address has null MX", Some(SenderRejected),
        "The sender domain publishes a null MX.", RFC7505),
    CodeRule::new(7, 28, "Mail flood detected", Some(ReputationOrRateLimited),
        "The receiver detected a flood of mail (unusual rate) from this sender or IP.", IANA),
    CodeRule::new(7, 29, "ARC validation failure", Some(SpfDkimDmarcFailure),
        "The message's ARC chain failed validation.", RFC8617),
    CodeRule::new(7, 30, "REQUIRETLS support required", Some(TlsFailed),
        "The message requires TLS on every hop (REQUIRETLS) and the next hop could not provide it, so it was not relayed.", RFC8689),
];

/// The registry's meaning of `subject.detail`, whatever the class (for causes and for
/// removing a server's echo of it before the words are read).
pub fn meaning(subject: u16, detail: u16) -> Option<&'static CodeRule> {
    REGISTRY.iter().find(|r| {
        r.classes == Classes::Any
            && r.subject == subject
            && (r.detail_lo..=r.detail_hi).contains(&detail)
    })
}
