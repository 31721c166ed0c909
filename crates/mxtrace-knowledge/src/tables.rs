//! The diagnosis knowledge, as data: one table per kind of source, each row naming its
//! document. Causes are written here in our own words from the documented facts.
//!
//! Precedence (classify.rs, docs/diagnosis.md): MARKERS (a vendor's own wording or tag) >
//! MICROSOFT (Exchange Online / EOP enhanced codes) > the IANA registry (registry.rs) > word
//! families weighed by stage (families.rs) > RFC5321_TABLE (basic code and stage) > `other`,
//! with one conflict rule between the code and the words. Within a table the first matching
//! row wins, so specific rows come before general ones.

use super::advice::{
    AUTH_POSTURE, CONNECTORS, DELIST_MS, DELIST_PUBLIC, DIRSYNC, HCW, LICENSING, PTR,
    RECIPIENT_ADMIN, RELAY_WHICH_SIDE, RETRY, RULES,
};
use super::oauth;
use super::rules::{BasicRule, Classes, CodeRule, Stages, TextRule, AUTH, BANNER, MAIL, RCPT, TLS};
use super::Category::*;
use super::Layer;

// ---- Sources -------------------------------------------------------------------------------

pub const RFC5321: &str =
    "RFC 5321 section 4.2.2-4.2.3 (reply codes by function and in numeric order)";
pub const RFC3207: &str =
    "RFC 3207 section 4 (STARTTLS: 454 TLS not available, 530 must issue STARTTLS first)";
pub const RFC4954: &str =
    "RFC 4954 section 6 (SMTP AUTH status codes: 432, 454, 530, 534, 535, 538)";
pub const RFC7504: &str = "RFC 7504 (SMTP 521 and 556 reply codes)";
pub const RFC3463: &str = "RFC 3463 section 3 and the IANA SMTP Enhanced Status Codes registry (iana.org/assignments/smtp-enhanced-status-codes)";
pub const RFC7372: &str = "RFC 7372 / IANA SMTP Enhanced Status Codes registry (X.7.20-X.7.29 email authentication status codes)";
pub const MS_NDR: &str = "Microsoft Learn: Email non-delivery reports and SMTP errors in Exchange Online (learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online)";
pub const MS_5764: &str = "Microsoft Learn: \"550 5.7.64 TenantAttribution\" when sending mail externally in Microsoft 365 (learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/relay-access-denied-smtp); KB 3212877";
pub const MS_RELAY: &str = "Microsoft KB 2827473: \"Relay Access Denied\" NDR when sending from an on-premises Exchange organization through EOP";
pub const MS_541: &str = "Microsoft Learn: Fix NDR error code 5.4.1 in Exchange Online (Directory-Based Edge Blocking, Recipient address rejected: Access denied)";
pub const MS_5770X: &str =
    "Microsoft Learn: Fix NDR error codes 5.7.700 through 5.7.750 in Exchange Online";
pub const MS_DELIST: &str = "Microsoft Learn: Use the delist portal to remove yourself from the blocked senders list (5.7.511, 5.7.606-649)";
pub const MS_557: &str = "Microsoft Learn: Fix NDR error 5.7.57 in Exchange Online (client not authenticated to send anonymous mail during MAIL FROM)";
pub const MS_OUTLOOK_PM: &str = "Outlook.com Postmaster: troubleshooting and SMTP error codes (sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx)";
pub const GMAIL: &str = "Google Workspace Admin Help: Gmail SMTP errors and codes (support.google.com/a/answer/3726730)";
pub const YAHOO: &str = "Yahoo Sender Hub: SMTP error codes (senders.yahooinc.com/smtp-error-codes); Yahoo Help: 4xx SMTP error codes";
pub const POSTFIX: &str =
    "Postfix postconf(5) and SMTPD_ACCESS_README (smtpd restriction reply texts)";
pub const POSTFIX_TLS: &str = "Postfix TLS_README (smtpd_tls_security_level = encrypt)";
pub const POSTGREY: &str =
    "postgrey(8) and Postfix SMTPD_POLICY_README (greylisting policy servers)";
pub const EXIM: &str =
    "Exim specification, chapters on access control lists and SMTP processing (reply texts)";
pub const QMAIL: &str = "qmail-smtpd(8) (rcpthosts control file)";
pub const SENDMAIL: &str = "Sendmail reply texts (\"User unknown\", \"Relaying denied\", \"sendall: too many hops\" past MaxHopCount), as in helpdesk.umd.edu/documents/3/3025/";
pub const ATT: &str =
    "AT&T (prodigy.net) reply texts as published at smtp.codes/550 (\"Addressee unknown\")";
pub const POSTFIX_RBL: &str = "Postfix postconf(5) default_rbl_reply (\"Service unavailable; Client host [$rbl_what] blocked using $rbl_domain\"); Microsoft Learn: Fix NDR error 550 5.7.1 in Exchange Online (\"Client host [IP] blocked using Blocklist 1\")";
pub const MS_TRANSPORT_RULES: &str = "Microsoft Learn: Mail flow rule actions in Exchange Online (reject the message with an enhanced status code: 5.7.1 or 5.7.900 through 5.7.999)";
pub const MS_MAILBOX_BUSY: &str = "Microsoft Learn: \"554 4.3.2 mailbox busy\" when sending emails to a mailbox in Exchange Online (STOREDRV MapiExceptionMaxObjsExceeded: a folder reached its item limit)";
pub const MS_EXO_THROTTLE: &str = "Exchange Online replies as published at smtpfieldmanual.com/spamfilter/exchangeonline (421 4.3.2 maximum number of concurrent connections ... exceeded a limit)";
pub const MS_IPV6: &str = "Microsoft Learn: Add support for anonymous inbound email over IPv6 in Microsoft 365 (450 4.7.25 reverse DNS, 450 4.7.26 SPF or DKIM, 550 5.2.1 does not accept email over IPv6)";
pub const MS_TLS12: &str = "Exchange Online TLS 1.0/1.1 retirement for SMTP (421 4.7.66 TLS 1.0 and 1.1 are not supported; aka.ms/smtp_auth_tls)";
pub const OPENSMTPD: &str = "OpenSMTPD smtpd(8), usr.sbin/smtpd/smtp_session.c (RCPT TO: a recipient that does not expand, such as an unknown virtual user, gets 524 5.2.4 Mailing list expansion problem; unknown local users get 550 Invalid recipient)";
pub const MS_ATTR35: &str = "Microsoft Learn: ATTR35 response code when mail is sent to EOP/EXO (451 4.4.62 Mail sent to the wrong Office 365 region: an MX record or smart host points at a wrong Office 365 destination) (learn.microsoft.com/exchange/troubleshoot/email-delivery/wrong-office-365-region-exo)";
pub const MS_TEMP_ERROR: &str = "Exchange Online replies as published at smtp.codes/exchangeonline (451 4.7.0 Temporary server error. Please try again later. PRX4) and bentonow.com/smtp-errors/microsoft (451 4.4.4 Temporary server error. Please try again later ATTR5)";
pub const MS_STOREDRV: &str = "Exchange store driver (STOREDRV) exceptions: Microsoft KB 2686540 (554 5.2.0 STOREDRV.Deliver.Exception:PropertyErrorException), Microsoft Learn \"Failed to process message due to a transient exception\" (431 4.3.1 STOREDRV.Submit.Exception ... There is not enough space on the disk), tamingdns.com/bounce-decoder/microsoft (550 5.7.13 STOREDRV.Deliver.Exception:AccountDisabledException)";
pub const MS_DANE: &str = "Microsoft Learn: Email non-delivery reports and SMTP errors in Exchange Online, outbound SMTP DANE rows (5.7.321 starttls-not-supported, 5.7.322 certificate-expired, 5.7.323 tlsa-invalid, 5.7.324 dnssec-invalid)";
pub const SENDMAIL_PROTO: &str = "Sendmail cf/m4/proto.m4 relay checks (\"Relaying denied. IP name lookup failed\", \"Relaying denied. IP name possibly forged\", \"Relaying temporarily denied. Cannot resolve PTR record\") and Sendmail's \"Host unknown (Name server: host not found)\" (icglink.net helpdesk kb 73)";
pub const COURIER: &str = "Courier MTA courieresmtpd replies: github.com/svarshavchik/courier courier/module.esmtp/testesmtp.C (\"513 Relaying denied.\", \"517 Syntax error.\" for a bad envelope sender) and fail2ban config/filter.d/courier-smtp.conf (\"550 User unknown.\", \"535 Authentication failed.\")";
pub const ZOHO: &str = "Zoho Mail replies as published at smtp.codes/zoho (541 5.4.1 Mail rejected by destination domain; 452 Mailbox delivery restricted by policy error)";
pub const WEBDE: &str = "Web.de / GMX replies as listed at sitepackage.de (typische Fehlermeldungen bei Unzustellbarkeit): \"User has too many messages on the server\", \"User has exhausted allowed storage space\", Lycos \"Account Closed\"";
pub const RACKSPACE: &str = "Rackspace Email postmaster response codes (postmaster.emailsrvr.com/system-info/response-codes; smtp.codes/rackspace): G30 mailbox received too much email, G1E temporary DMARC DNS lookup failure";
pub const MAILCHANNELS: &str = "MailChannels sending policies (docs.mailchannels.com/email-api/sending-policies): \"550 5.7.1 This sender is not authorized to send from <domain>\" (Domain Lockdown)";
pub const URI_LISTS: &str = "SURBL (surbl.org: lists of domains found in message bodies), URIBL (uribl.com) and Spamhaus DBL (spamhaus.org/dbl: domains checked in URIs and sender domains); RFC 5782 section 2.3 (name-based lists)";
pub const SPAMHAUS: &str = "Spamhaus: ZEN, SBL, XBL, PBL DNSBL documentation (spamhaus.org/zen)";
pub const DNSBLS: &str = "Blocklist operators' documentation: Barracuda Reputation Block List (b.barracudacentral.org), SpamCop (bl.spamcop.net), SORBS, UCEPROTECT, PSBL";
pub const MS_RATE: &str = "Microsoft Learn: Message rate limits and throttling in Exchange Server (receive connector MessageRateLimit: 421 4.4.2 Message submission rate for this client has exceeded the configured limit)";
pub const POSTFIX_SMTPD: &str = "Postfix smtpd(8) and anvil(8) reply texts (\"send HELO/EHLO first\", \"too much mail from\", smtpd_client_message_rate_limit)";
pub const RFC7208: &str = "RFC 7208 section 2.6.6 (SPF temperror: a transient error, generally DNS) and RFC 6376 section 6.1.2 (DKIM key retrieval TEMPFAIL)";
pub const NETEASE: &str = "NetEase Mail reply codes (HL, MI, RP, DT, WM tags with their meanings), as listed at biecuoliao.com/pa/MBRrwEM.html";
pub const MS_STOREDRV_SUBMIT: &str = "Exchange store driver submission exceptions as reported in Microsoft Learn Q&A and MicrosoftDocs/OfficeDocs-Support issues (554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException, QuotaExceededException, ObjectNotFoundException)";
pub const TREND_MICRO: &str = "Trend Micro Email Security knowledge base: 1055758 (blocking an email address or domain: BLOCK-SEND-ER, BLOCK-RCPT) and 1120618 (outbound mail to TMEMS fails with 554 ... NO-DOMAIN), as published at smtpfieldmanual.com/code/554";
pub const MIMECAST: &str = "Mimecast: SMTP error codes (community.mimecast.com, \"451 Internal resource temporarily unavailable\": greylisting)";
pub const ONPREM: &str =
    "Microsoft Learn: Queues and messages in queues in Exchange Server (queue LastError texts such as 451 4.4.0 DNS query failed, 421 4.2.1 Unable to connect)";

const NOT_MAIL: Stages = Stages::ANY.except(MAIL);

// ---- Tier 1: vendor markers ------------------------------------------------------------------

pub static MARKERS: &[TextRule] = &[
    // Exchange mailbox-store submission exceptions name their cause in the exception.
    TextRule::new(
        &["sendasdenied", "send as denied", "sendasdeniedexception"],
        PolicyOrTransportRule,
        "The Exchange mailbox store refused to submit the message: the sending account has no Send As (or Send on Behalf) permission for the address in From, a permission the mailbox's administrator grants.",
        MS_STOREDRV_SUBMIT,
    )
    .steps(&[RULES]),
    TextRule::new(
        &["storedrv.submission.exception:quotaexceeded", "storedrv.submit.exception:quotaexceeded", "mapiexceptionquotaexceeded"],
        MailboxDisabledOrFull,
        "The sender's Exchange mailbox is over its storage quota (ProhibitSendQuota), so the store will not submit new mail from it until items are deleted or archived.",
        MS_STOREDRV_SUBMIT,
    ),
    TextRule::new(
        &["objectnotfound", "object not found"],
        RecipientUnknown,
        "The Exchange mailbox store could not find the mailbox object it was asked to deliver to or submit from (a deleted, moved or not yet provisioned mailbox).",
        MS_STOREDRV_SUBMIT,
    )
    .also(&["storedrv.submission", "storedrv.submit"]),
    // Exchange's recipient resolver refusing a sender the recipient does not accept
    // (RESOLVER.RST.AuthRequired, NotAuthorized, ...): a delivery restriction, not AUTH.
    TextRule::new(
        &["resolver.rst.authrequired", "resolver.rst.notauthorized", "resolver.rst.restricted", "resolver.rst.dlexpansionblocked"],
        PolicyOrTransportRule,
        "The recipient (a mailbox, group or public folder) accepts mail only from authenticated internal senders or from a list of senders, and this sender is not one of them (Exchange delivery restriction).",
        MS_NDR,
    )
    .steps(&[RECIPIENT_ADMIN]),
    // Hotmail names two causes in one reply; it is honest to say neither.
    TextRule::new(
        &["larger than the current system limit or the recipient's mailbox is full"],
        Other,
        "Outlook.com says the message is either larger than its limit or the recipient's mailbox is full, without saying which.",
        MS_OUTLOOK_PM,
    ),
    // Mimecast's greylisting reply does not say greylist.
    TextRule::new(
        &["internal resource temporarily unavailable"],
        Greylisted,
        "Mimecast is greylisting this sender: it defers the first attempt and accepts a retry after a few minutes.",
        MIMECAST,
    )
    .only(Classes::Transient),
    // A listed domain the message *contains* (a link in the body) is the content's: URI block
    // lists (SURBL, URIBL, the DBL used on URIs) judge what the message carries, not who sent it.
    TextRule::new(
        &["dbl.spamhaus", "#dbl", "uribl", "surbl", "rhsbl", "domain block list", "domain blocklist", "uri blocklist", "uri block list", "url blocklist", "url block list"],
        ContentRejected,
        "The message contains a link to a domain on a URI block list (SURBL, URIBL, Spamhaus DBL): the content was refused for the domains it links to, not the sending IP.",
        URI_LISTS,
    )
    .also(&["contains", "in the message", "in message", "message body", "in the body", "#url", "#uri", "#urls", "#uris", "#link", "#links"]),
    // Domain block lists before the Spamhaus row: the DBL lists domains, not IPs.
    TextRule::new(
        &["dbl.spamhaus", "#dbl", "uribl", "surbl", "rhsbl"],
        ReputationOrRateLimited,
        "A domain in the sender address or the message is on a domain block list (Spamhaus DBL, URIBL, SURBL), which the receiving server checks.",
        SPAMHAUS,
    ),
    // Exchange Online connector attribution (hybrid / relay through EOP).
    TextRule::new(
        &["#attr36", "tenantattribution"],
        RelayDenied,
        "Exchange Online could not attribute this connection to a tenant: the inbound connector for mail from on-premises (or a partner) is missing, disabled, or does not match the certificate name or IP address the sending server presents.",
        MS_5764,
    )
    .steps(&[HCW, CONNECTORS]),
    // ATTR35 is not attribution: the sender reached the wrong Office 365 region.
    TextRule::new(
        &["#attr35", "wrong office 365 region"],
        ConnectorOrRouting,
        "The message reached the wrong Office 365 region: the MX record or the smart host used (mail.messaging.microsoft.com, mail.global.frontbridge.com or an Office 365 IP) is not the tenant's own endpoint; use the domain's MX, for example <tenant>.mail.protection.outlook.com.",
        MS_ATTR35,
    )
    .steps(&[CONNECTORS]),
    // Sendmail words a client whose reverse DNS failed as a relay denial; the PTR is the fault.
    TextRule::new(
        &["ip name lookup failed", "ip name possibly forged", "cannot resolve ptr record"],
        DnsFailure,
        "The server looked up the sending IP's reverse DNS (PTR) and it failed or did not resolve back to the IP, so it would not accept or relay for this client.",
        SENDMAIL_PROTO,
    )
    .layer(Layer::Dns)
    .steps(&[PTR]),
    TextRule::new(
        &["host unknown (name server"],
        RecipientUnknown,
        "The recipient's domain does not resolve (the name server says host not found), so the address cannot be delivered.",
        SENDMAIL_PROTO,
    )
    .layer(Layer::Dns)
    .at(NOT_MAIL),
    // Courier: 513 for a recipient it will not relay to, 517 for a bad envelope sender.
    TextRule::new(
        &["relaying denied"],
        RelayDenied,
        "Courier refused to relay: the recipient domain is not in its acceptmailfor / hosteddomains and this client has no RELAYCLIENT permission.",
        COURIER,
    )
    .code(513)
    .steps(&[CONNECTORS]),
    TextRule::new(
        &["syntax error"],
        SenderRejected,
        "Courier refused the envelope sender: the MAIL FROM address is not a valid address.",
        COURIER,
    )
    .code(517)
    .at(MAIL),
    TextRule::new(
        &["user unknown."],
        RecipientUnknown,
        "The recipient address has no mailbox on the receiving server (Courier words it \"User unknown.\").",
        COURIER,
    )
    .code(550)
    .at(NOT_MAIL),
    TextRule::new(
        &["sender is not authorized to send from"],
        SenderRejected,
        "The relay does not let this account send with that sender domain (the domain has not authorized it).",
        MAILCHANNELS,
    ),
    TextRule::new(
        &["temporary server error"],
        ServiceUnavailable,
        "Exchange Online had a temporary internal error; it accepts the message on a later retry.",
        MS_TEMP_ERROR,
    )
    .only(Classes::Transient)
    .steps(&[RETRY]),
    TextRule::new(
        &["rejected by destination domain", "delivery restricted by policy"],
        PolicyOrTransportRule,
        "The recipient domain's own mail filters at Zoho refuse this message; only the recipient's administrator can change them.",
        ZOHO,
    )
    .steps(&[RECIPIENT_ADMIN]),
    TextRule::new(
        &["too many messages on the server", "exhausted allowed storage space"],
        MailboxDisabledOrFull,
        "The recipient mailbox is full (too much mail or too many messages stored).",
        WEBDE,
    ),
    TextRule::new(
        &["received too much email in a short period"],
        ReputationOrRateLimited,
        "The recipient mailbox is receiving mail faster than the provider allows, so it defers for a while.",
        RACKSPACE,
    )
    .steps(&[RETRY]),
    // Tenant allow/block list before the generic "block list" marker.
    TextRule::new(
        &["tenant allow block list", "tenant allow/block list"],
        PolicyOrTransportRule,
        "The sender's organization blocks this recipient or domain with its Tenant Allow/Block List.",
        MS_5770X,
    ),
    // OpenSMTPD answers a recipient its tables cannot expand (an unknown virtual user) with
    // the registry's words for X.2.4, which read as a mailing-list fault.
    TextRule::new(
        &["mailing list expansion problem"],
        RecipientUnknown,
        "The server could not expand the recipient: OpenSMTPD says this (524 5.2.4) for an address its virtual or alias table does not resolve, so the recipient is unknown there (or an alias points nowhere).",
        OPENSMTPD,
    )
    .at(RCPT)
    .only(Classes::Permanent),
    TextRule::new(
        &["addressee unknown"],
        RecipientUnknown,
        "The recipient address does not exist at the receiving server.",
        ATT,
    )
    .unless(&["sender"])
    .at(NOT_MAIL),
    TextRule::new(
        &["allowed rcpthosts"],
        RelayDenied,
        "The server does not accept mail for this recipient domain (not in its rcpthosts) and will not relay for this client.",
        QMAIL,
    ),
    // Public and provider blocklists.
    // Spamhaus also lists domains (the DBL): a sender or HELO *domain* "listed in Spamhaus" is
    // a domain listing (families.rs), not the client's IP.
    TextRule::new(
        &["spamhaus", "[bl21]", "[bl22]", "[bl23]"],
        IpBlocklisted,
        "The sending IP address is listed by Spamhaus (ZEN: SBL, XBL, PBL or CSS), which the receiving server checks, so it refuses the connection or the message.",
        SPAMHAUS,
    )
    .unless(&["domain is listed", "domain listed"])
    .steps(&[DELIST_PUBLIC, PTR]),
    // A DNSBL hit in the wording of Postfix's default_rbl_reply and of Exchange Online.
    TextRule::new(
        &["client host"],
        IpBlocklisted,
        "The receiving server refuses the sending IP (\"client host ... blocked\"): it is on a blocklist or the provider's own block list.",
        POSTFIX_RBL,
    )
    .also(&["blocked"])
    .steps(&[DELIST_PUBLIC, DELIST_MS, PTR]),
    TextRule::new(
        &["connections will not be accepted from"],
        IpBlocklisted,
        "Yahoo/AOL does not accept connections from this IP (blocked for its reputation or volume).",
        YAHOO,
    ),
    // Outlook.com / Hotmail consumer postmaster codes.
    TextRule::new(
        &["#dy-001", "#dy-002"],
        IpBlocklisted,
        "Outlook.com refuses mail from this IP because it looks like a dynamic or residential address that should send through its provider's relay.",
        MS_OUTLOOK_PM,
    ),
    TextRule::new(
        &["#rp-001", "#rp-002", "#rp-003", "#sc-001", "#sc-002", "#sc-003", "#sc-004", "#ou-001", "#ou-002"],
        ReputationOrRateLimited,
        "Outlook.com limits or blocks this IP because of its sending reputation (volume, complaints or policy).",
        MS_OUTLOOK_PM,
    )
    .unless(&["block list", "blocklist"]),
    // Exchange Server receive connector MessageRateLimit: the 4.4.2 code alone reads as a
    // dropped connection, the wording says rate limit.
    TextRule::new(
        &["submission rate for this client has exceeded", "message rate limit"],
        ReputationOrRateLimited,
        "The receiving Exchange server limits how many messages a client may submit per minute (receive connector MessageRateLimit); this sender exceeded it.",
        MS_RATE,
    )
    .steps(&[RETRY]),
    TextRule::new(
        &["too much mail from", "too many connections from", "too many messages from"],
        ReputationOrRateLimited,
        "The receiving server's per-client rate limit (Postfix anvil: smtpd_client_message_rate_limit / connection rate) was exceeded by this sending IP.",
        POSTFIX_SMTPD,
    )
    .steps(&[RETRY]),
    // Postfix's fixed reject_unauth_destination text (and Exchange's own wording of it).
    TextRule::new(
        &["relay access denied"],
        RelayDenied,
        "The server refused to relay: the recipient domain is not one it accepts mail for, and this connection is not authorized to relay (no matching connector, IP or authentication).",
        POSTFIX,
    )
    .steps(&[CONNECTORS, HCW]),
    TextRule::new(
        &["#s77719", "server busy. please try again later"],
        ReputationOrRateLimited,
        "Exchange Online is throttling this sending IP (server busy): it accepts mail again once the rate drops; new or low-reputation IPs are throttled first.",
        MS_NDR,
    )
    .only(Classes::Transient)
    .steps(&[RETRY]),
    // Yahoo / AOL.
    TextRule::new(
        &["[ts0", "[tss0", "[ts1", "unexpected volume or user complaints", "due to user complaints", "permanently deferred", "temporarily deferred - 4.16"],
        ReputationOrRateLimited,
        "Yahoo/AOL is deferring mail from this IP because of unusual volume or user complaints (reputation).",
        YAHOO,
    ),
    // PH01 is Yahoo's code for suspected phishing, worded as a policy refusal.
    TextRule::new(
        &["[ph01]"],
        ContentRejected,
        "Yahoo/AOL suspects the message of phishing (its links, images or sender) and refused it.",
        YAHOO,
    ),
    TextRule::new(
        &["not accepted for policy reasons"],
        PolicyOrTransportRule,
        "Yahoo/AOL refused the message under its content or sending policy.",
        YAHOO,
    ),
    // Gmail.
    TextRule::new(
        &["unresolvable rfc.5321 from", "unresolvable from domain"],
        SenderRejected,
        "The sender's domain (MAIL FROM) does not resolve, so the receiver defers or refuses it.",
        YAHOO,
    )
    .layer(Layer::Dns),
    TextRule::new(
        &["relay limit", "sending limit exceeded", "daily user sending limit", "sending quota"],
        ReputationOrRateLimited,
        "The sending account or relay customer exceeded the provider's sending limit.",
        GMAIL,
    ),
    TextRule::new(
        &["receiving mail at a rate", "receiving mail too quickly", "unusual rate", "rate of unsolicited mail"],
        ReputationOrRateLimited,
        "Gmail is limiting the rate: either this IP sent an unusual rate of (unsolicited) mail, or the recipient is receiving mail faster than allowed.",
        GMAIL,
    ),
    TextRule::new(
        &["likely unsolicited", "content presents a potential security issue"],
        ContentRejected,
        "Gmail's filter judged this message to be spam or dangerous.",
        GMAIL,
    ),
    TextRule::new(
        &["not authorized to send email directly"],
        IpBlocklisted,
        "The receiving provider does not accept direct delivery from this IP (typically a dynamic or residential range); mail must go through a proper relay.",
        GMAIL,
    ),
    TextRule::new(
        &["ip not in whitelist", "ip not in allowlist"],
        RelayDenied,
        "The relay service does not have this IP registered for the sending domain, so it refuses to relay.",
        GMAIL,
    ),
    TextRule::new(
        &["#gcdp"],
        PolicyOrTransportRule,
        "A custom policy set by the receiving Google Workspace admin rejected the message.",
        GMAIL,
    )
    .steps(&[RECIPIENT_ADMIN]),
    TextRule::new(
        &["sender verify failed", "sender verify", "sender address rejected: not owned by user"],
        SenderRejected,
        "The server could not verify the sender address, or the authenticated user may not send as it.",
        EXIM,
    ),
    TextRule::new(
        &["user unknown in"],
        RecipientUnknown,
        "The recipient address is not in the receiving server's recipient tables (local, virtual mailbox, virtual alias or relay recipients).",
        POSTFIX,
    )
    .unless(&["sender address rejected"]),
    TextRule::new(
        &["unrouteable address"],
        RecipientUnknown,
        "The receiving server has no route for the recipient address: it does not exist there, or the domain is not handled.",
        EXIM,
    )
    .unless(&["sender verify"]),
    TextRule::new(
        &["account that you tried to reach does not exist"],
        RecipientUnknown,
        "The recipient address does not exist at Gmail / Google Workspace.",
        GMAIL,
    ),
    TextRule::new(
        &["doesn't have a yahoo.com account", "does not have a yahoo.com account"],
        RecipientUnknown,
        "The recipient address does not exist at Yahoo.",
        YAHOO,
    ),
    TextRule::new(
        &["tls required for rcpt domain"],
        TlsRequired,
        "The recipient domain requires TLS for incoming mail and this session is not encrypted.",
        GMAIL,
    ),
    TextRule::new(
        &["synchronization error", "too many syntax or protocol errors"],
        ProtocolError,
        "The client broke SMTP: it sent commands before the server's reply (pipelining without support) or made too many protocol errors.",
        EXIM,
    ),
    TextRule::new(
        &["improper use of smtp command pipelining", "too many errors"],
        ProtocolError,
        "The client broke SMTP: it pipelined commands the server did not allow, or made too many protocol errors.",
        POSTFIX,
    ),
    // Trend Micro Email Security names the rule that refused the recipient in a token.
    TextRule::new(
        &["block-send-er", "block-sender", "block-rcpt"],
        PolicyOrTransportRule,
        "The recipient's organization blocks this sender or recipient with a Trend Micro Email Security block rule; only its administrator can change it.",
        TREND_MICRO,
    )
    .steps(&[RECIPIENT_ADMIN]),
    TextRule::new(
        &["no-domain."],
        RelayDenied,
        "Trend Micro Email Security does not accept mail for this recipient domain from this sender or IP: the domain is not (yet) routed through the service for this sender.",
        TREND_MICRO,
    ),
    TextRule::new(
        &["administrative prohibition"],
        PolicyOrTransportRule,
        "The receiving server's access rules refuse this message (administrative prohibition).",
        EXIM,
    ),
    // NetEase (163.com, 126.com, yeah.net) tags every refusal with a class:reason code; the
    // tag names the cause whatever words follow it.
    TextRule::new(
        &["dt:spm"],
        ContentRejected,
        "NetEase's filter (DT:SPM) judged the message spam by its content or sending pattern; NetEase asks to change the content or sending practice and retry later.",
        NETEASE,
    ),
    TextRule::new(
        &["dt:rbl"],
        IpBlocklisted,
        "NetEase (DT:RBL) refuses the sending IP because it is on one or more DNS blocklists.",
        NETEASE,
    )
    .steps(&[DELIST_PUBLIC]),
    TextRule::new(
        &["hl:rep", "hl:icc", "hl:ifc", "hl:mep", "mi:dmc", "mi:sfq", "mi:cel", "mi:ccl", "rp:drc", "rp:ccl", "rp:cel", "rp:qrc"],
        ReputationOrRateLimited,
        "NetEase is limiting this sending IP or sender (HL, MI, RP tags: too many connections, messages, recipients, errors or unknown recipients in a period, or a bad sending pattern).",
        NETEASE,
    )
    .steps(&[RETRY]),
];

// ---- Tier 2a: Microsoft Exchange Online / EOP enhanced codes ---------------------------------

pub static MICROSOFT: &[CodeRule] = &[
    CodeRule::new(7, 64, "TenantAttribution; Relay Access Denied", Some(RelayDenied),
        "Exchange Online could not attribute the connection to a tenant: the inbound connector for on-premises mail is missing or no longer matches the certificate (TlsSenderCertificateName) or IP the sending server presents, often after a certificate renewal or IP change.",
        MS_5764).steps(&[HCW, CONNECTORS]),
    CodeRule::new(7, 54, "Unable to relay recipient in non-accepted domain", Some(RelayDenied),
        "Exchange Online refused to relay to a domain that is not an accepted domain, because no connector authorizes this sending server to relay.",
        MS_NDR).steps(&[CONNECTORS, HCW]),
    // SMTP AUTH to Exchange Online, passwords and OAuth (issue 26): sources and steps in oauth.rs.
    CodeRule::new(7, 139, "Authentication unsuccessful, SmtpClientAuthentication is disabled for the tenant or mailbox", Some(AuthFailed),
        "SMTP AUTH (authenticated client submission) is turned off for this mailbox or for the whole tenant (SmtpClientAuthenticationDisabled): Exchange Online refuses every SMTP AUTH, a password or an OAuth token alike.",
        oauth::MS_SMTP_AUTH).text(&["smtpclientauthentication is disabled"]).steps(&[oauth::SMTP_AUTH_ENABLED]),
    CodeRule::new(7, 139, "Authentication unsuccessful, basic authentication is disabled", Some(AuthFailed),
        "Exchange Online no longer takes a password (basic authentication) for SMTP AUTH from this tenant (disabled by the tenant, by security defaults, or by Microsoft's retirement of basic authentication, MC786329): only OAuth 2.0 (XOAUTH2) works.",
        oauth::MS_BASIC_AUTH).text(&["basic authentication is disabled"]).steps(&[oauth::MOVE_TO_OAUTH, oauth::APP_PERMISSION, oauth::SERVICE_PRINCIPAL]),
    CodeRule::new(7, 139, "Authentication unsuccessful, the user credentials were incorrect", Some(AuthFailed),
        "Exchange Online refused the user name and password: a wrong password, an expired one, or a user name that is not the mailbox's sign-in name (UPN).",
        oauth::MS_SMTP_AUTH).text(&["credentials were incorrect"]).steps(&[oauth::MOVE_TO_OAUTH]),
    CodeRule::new(7, 139, "Authentication unsuccessful, the request did not meet the criteria (security defaults, Conditional Access)", Some(AuthFailed),
        "Security defaults or a Conditional Access policy of the tenant block this sign-in (legacy authentication is blocked, or the account is locked by security defaults).",
        oauth::MS_SMTP_AUTH).text(&["did not meet the criteria", "security defaults", "locked"]).steps(&[oauth::MOVE_TO_OAUTH]),
    CodeRule::new(7, 3, "Authentication unsuccessful", Some(AuthFailed),
        "Exchange Online refused the credentials. With a password: wrong user name or password. With an OAuth token: a token for another audience than https://outlook.office365.com, an expired token, an app without the SMTP.SendAsApp permission (or admin consent), a service principal not registered in Exchange Online, or no FullAccess for it on the mailbox named as the user.",
        oauth::MS_SMTP_OAUTH).text(&["authentication unsuccessful"]).at(AUTH).steps(&[oauth::SERVICE_PRINCIPAL, oauth::APP_PERMISSION, oauth::NEW_TOKEN, oauth::SMTP_AUTH_ENABLED]),
    CodeRule::new(7, 57, "Client not authenticated to send mail", Some(AuthRequired),
        "Exchange Online's submission endpoint (smtp.office365.com:587) takes mail only after SMTP AUTH: the client sent MAIL FROM without authenticating, or its AUTH failed before.",
        MS_557).text(&["not authenticated"]).steps(&[super::advice::AUTH_OR_CONNECTOR, oauth::SMTP_AUTH_ENABLED, oauth::MOVE_TO_OAUTH]),
    CodeRule::new(7, 60, "Client does not have permissions to send as this sender", Some(SenderRejected),
        "The authenticated mailbox (or, with an app-only OAuth token, the app's service principal) may not send as this sender address: it needs Send As on it, or the sender must be the authenticated mailbox.",
        oauth::MS_SMTP_OAUTH).layer(Layer::Auth).steps(&[oauth::SEND_AS, oauth::SERVICE_PRINCIPAL]),
    CodeRule::new(7, 57, "Client was not authenticated to send anonymous mail during MAIL FROM", Some(AuthRequired),
        "The client submitted mail (typically to smtp.office365.com on 587) without authenticating, or the recipient does not accept anonymous senders.",
        MS_557),
    CodeRule::new(7, 60, "Client does not have permissions to send as this sender", Some(SenderRejected),
        "The authenticated account has no Send As permission for the sender address it used.",
        MS_NDR).layer(Layer::Auth),
    CodeRule::new(7, 139, "Authentication unsuccessful", Some(AuthFailed),
        "Exchange Online refused SMTP AUTH: wrong credentials, or SMTP client authentication (basic auth) is disabled for the mailbox or tenant, or blocked by security defaults or conditional access.",
        MS_NDR),
    CodeRule::new(7, 12, "Sender was not authenticated by organization", Some(PolicyOrTransportRule),
        "The recipient only accepts mail from authenticated (internal) senders, and this sender is external.",
        MS_NDR).text(&["organization", "not authenticated", "resolver.rst"]),
    CodeRule::new(7, 124, "Sender not in allowed-senders list", Some(PolicyOrTransportRule),
        "The recipient group or mailbox accepts mail only from a list of senders that does not include this one.",
        MS_NDR),
    CodeRule::new(7, 133, "Sender not authenticated for group / mailbox / public folder / mail user", Some(PolicyOrTransportRule),
        "The recipient is set to accept mail only from authenticated internal senders (RequireSenderAuthenticationEnabled).",
        MS_NDR).to(136),
    CodeRule::new(7, 350, "Remote server returned message detected as spam", Some(ContentRejected),
        "The remote server judged the message to be spam and returned it.",
        MS_NDR),
    CodeRule::new(7, 501, "Access denied, spam abuse detected / banned sender", Some(ReputationOrRateLimited),
        "Exchange Online banned the sending account for detected spam; it usually means a compromised account.",
        MS_NDR).to(503),
    CodeRule::new(7, 504, "Recipient address rejected: Access denied", Some(RecipientUnknown),
        "The recipient address is not valid in the receiving Exchange Online organization.",
        MS_NDR),
    CodeRule::new(7, 505, "Access denied, banned recipient", Some(RecipientUnknown),
        "Exchange Online refuses this recipient address as not valid.",
        MS_NDR),
    CodeRule::new(7, 507, "Access denied, rejected by recipient", Some(IpBlocklisted),
        "The recipient's organization blocks the sending IP with its own block list; only that organization can lift it.",
        MS_NDR).steps(&[RECIPIENT_ADMIN]),
    CodeRule::new(7, 513, "Client host blocked using Customer Block list", Some(IpBlocklisted),
        "The recipient domain put the sending IP on its own custom block list in Exchange Online; only that organization can remove it.",
        MS_NDR).steps(&[RECIPIENT_ADMIN]),
    CodeRule::new(7, 506, "Access Denied, Bad HELO", Some(PolicyOrTransportRule),
        "Exchange Online refused the HELO/EHLO name the sending server presented.",
        MS_NDR).layer(Layer::SmtpSession),
    CodeRule::new(7, 508, "Access denied, sending IP has exceeded permitted limits", Some(ReputationOrRateLimited),
        "The sending IP (or its range) exceeded the volume Exchange Online permits.",
        MS_NDR),
    CodeRule::new(7, 509, "Access denied, sending domain does not pass DMARC verification (p=reject)", Some(SpfDkimDmarcFailure),
        "The sender's domain publishes DMARC p=reject and this message failed DMARC.",
        MS_NDR).steps(&[AUTH_POSTURE]),
    CodeRule::new(7, 510, "Access denied, domain does not accept email over IPv4", Some(PolicyOrTransportRule),
        "The recipient domain does not accept mail over the protocol family used.",
        MS_NDR),
    CodeRule::new(7, 511, "Access denied, banned sender", Some(IpBlocklisted),
        "The sending IP is on Microsoft 365's blocked senders list.",
        MS_DELIST).steps(&[DELIST_MS]),
    CodeRule::new(7, 512, "Access denied, message must be RFC 5322 section 3.6.2 compliant", Some(ContentRejected),
        "The message's From header is missing or malformed (RFC 5322 section 3.6.2).",
        MS_NDR),
    CodeRule::new(7, 515, "Access denied, sending domain does not meet the required authentication level", Some(SpfDkimDmarcFailure),
        "The sending domain lacks the SPF, DKIM and DMARC authentication required by Microsoft for this volume of mail.",
        MS_OUTLOOK_PM).steps(&[AUTH_POSTURE]),
    CodeRule::new(7, 520, "Access denied, your organization does not allow external forwarding", Some(PolicyOrTransportRule),
        "The sender's outbound spam policy blocks automatic forwarding to external recipients.",
        MS_NDR),
    CodeRule::new(7, 606, "Access denied, banned sending IP", Some(IpBlocklisted),
        "The sending IP is on Microsoft 365's blocked senders list (5.7.606-649).",
        MS_DELIST).to(649).steps(&[DELIST_MS]),
    CodeRule::new(7, 650, "Temporarily rate limited due to IP reputation", Some(ReputationOrRateLimited),
        "Exchange Online is rate limiting this IP because of its reputation.",
        MS_NDR).only(Classes::Transient),
    CodeRule::new(7, 500, "Server busy / access denied, please try again later (throttling)", Some(ReputationOrRateLimited),
        "Exchange Online is throttling or refusing this sending IP for its reputation or volume (the 4.7.500-699 / 5.7.500-699 family).",
        MS_NDR).to(699),
    CodeRule::new(7, 703, "Messages blocked by your organization using Tenant Allow Block List", Some(PolicyOrTransportRule),
        "The sender's organization blocks this recipient or domain with its Tenant Allow/Block List.",
        MS_5770X),
    CodeRule::new(7, 705, "Access denied, tenant has exceeded threshold", Some(ReputationOrRateLimited),
        "Exchange Online blocked outbound mail from the whole tenant for sending too much spam or bulk mail (often a compromised on-premises server or admin account), or while an expired subscription is renewed.",
        MS_5770X),
    CodeRule::new(7, 708, "Access denied, traffic not accepted from this IP", Some(ReputationOrRateLimited),
        "Exchange Online does not accept outbound traffic from this tenant's IP (low reputation, often a new tenant or after spam).",
        MS_5770X),
    CodeRule::new(7, 750, "Client blocked from sending from unregistered domains", Some(SenderRejected),
        "Mail relayed through Exchange Online uses a sender domain that is not an accepted domain of the tenant.",
        MS_5770X).layer(Layer::Connector).steps(&[CONNECTORS]),
    CodeRule::new(7, 900, "Rejected by a mail flow (transport) rule", Some(PolicyOrTransportRule),
        "An administrator's mail flow rule rejected the message with a custom code (Exchange lets rules reject with 5.7.1 or 5.7.900-5.7.999).",
        MS_TRANSPORT_RULES).to(999).steps(&[RULES]),
    CodeRule::new(7, 700, "Tenant-level sending restriction", Some(ReputationOrRateLimited),
        "Exchange Online restricts sending for this tenant (5.7.7xx family).",
        MS_5770X).to(749),
    CodeRule::new(7, 66, "TLS 1.0 and 1.1 are not supported", Some(TlsFailed),
        "The client negotiated TLS 1.0 or 1.1; Exchange Online accepts only TLS 1.2 or later, so the client (or its TLS library) must be upgraded to TLS 1.2.",
        MS_TLS12).layer(Layer::Tls),
    CodeRule::new(2, 1, "Does not accept email over IPv6", Some(PolicyOrTransportRule),
        "The recipient's Exchange Online organization has not opted in to anonymous inbound mail over IPv6, so mail must come over IPv4.",
        MS_IPV6).text(&["over ipv6"]),
    CodeRule::new(7, 321, "starttls-not-supported: destination mail server must support TLS", Some(TlsFailed),
        "Exchange Online requires TLS to this destination (DANE or a TLS connector), but the destination server did not offer STARTTLS or the TLS handshake failed.",
        MS_DANE).layer(Layer::Tls),
    CodeRule::new(7, 322, "certificate-expired: destination mail server's certificate is expired", Some(TlsFailed),
        "The destination server presented an expired certificate, so Exchange Online's DANE-validated delivery stops.",
        MS_DANE).layer(Layer::Tls),
    CodeRule::new(7, 323, "tlsa-invalid: the domain failed DANE validation", Some(TlsFailed),
        "The destination server's certificate does not match the domain's DNSSEC-signed TLSA record (or the record is wrong), so DANE validation failed.",
        MS_DANE).layer(Layer::Tls),
    CodeRule::new(7, 324, "dnssec-invalid: destination domain returned invalid DNSSEC records", Some(DnsFailure),
        "The destination domain's DNSSEC records did not validate, so Exchange Online will not deliver to it with DANE.",
        MS_DANE).layer(Layer::Dns),
    CodeRule::new(7, 13, "STOREDRV.Deliver: recipient account disabled", Some(MailboxDisabledOrFull),
        "The recipient's Exchange account is disabled (AccountDisabledException), so the store will not deliver to its mailbox.",
        MS_STOREDRV).text(&["accountdisabled", "userdisabled"]),
    CodeRule::new(7, 13, "Sender was not authenticated for public folder", Some(PolicyOrTransportRule),
        "The recipient is a public folder set to accept mail only from authenticated internal senders.",
        MS_NDR).text(&["public folder", "resolver.rst"]),
    CodeRule::new(4, 316, "Connection refused (socket error)", Some(ConnectorOrRouting),
        "Exchange Online could not connect to the destination server: it refused the connection (network problem at the receiving side).",
        MS_NDR).layer(Layer::Network),
    CodeRule::new(4, 7, "Message expired", Some(ConnectorOrRouting),
        "The message stayed in the queue until it expired: the next hop could not be reached or kept deferring it.",
        MS_NDR).layer(Layer::Network),
    CodeRule::new(4, 300, "Message expired", Some(ConnectorOrRouting),
        "The message expired in the queue before the next hop accepted it.",
        MS_NDR).layer(Layer::Network),
    CodeRule::new(4, 14, "Hop count exceeded - possible mail loop", Some(ConnectorOrRouting),
        "A mail loop: connectors or accepted-domain settings send the message back and forth (often an accepted domain set to Internal Relay on both sides of a hybrid).",
        MS_NDR),
    CodeRule::new(4, 1, "Relay Access Denied", Some(RelayDenied),
        "EOP refused to relay mail from the on-premises organization: the inbound connector is missing, disabled or wrong, or the on-premises send connector does not deliver to the EOP smart host.",
        MS_RELAY).text(&["relay"]).steps(&[CONNECTORS, HCW]),
    CodeRule::new(4, 1, "Recipient address rejected: Access denied (Directory-Based Edge Blocking)", Some(RecipientUnknown),
        "Exchange Online's Directory-Based Edge Blocking rejected the recipient: no mailbox, mail user, group or contact has this address in the tenant (not created, not synchronized, or the domain type is wrong).",
        MS_541).text(&["access denied", "as(201806281)"]).steps(&[LICENSING, DIRSYNC]),
    CodeRule::new(1, 10, "RESOLVER.ADR.RecipientNotFound; recipient not found by SMTP address lookup", Some(RecipientUnknown),
        "No recipient with this address exists in the Exchange organization (not created, removed, or not synchronized to the cloud directory).",
        MS_NDR).text(&["resolver", "recipient not found", "recipientnotfound"]).steps(&[LICENSING, DIRSYNC]),
    CodeRule::new(2, 1, "Unable to connect (queue LastError)", Some(ConnectorOrRouting),
        "The sending server could not connect to the destination: a firewall rule, the remote server being down, or an IP block.",
        ONPREM).text(&["unable to connect"]).layer(Layer::Network),
    CodeRule::new(1, 8, "Access denied, bad outbound sender", Some(SenderRejected),
        "Exchange Online blocked the sending account from sending, usually after detecting outbound spam (restricted entity; likely compromised).",
        MS_NDR).text(&["bad outbound sender"]).layer(Layer::Reputation),
    CodeRule::new(1, 90, "Reached the daily limit for message recipients", Some(ReputationOrRateLimited),
        "The sender reached Exchange Online's daily recipient limit.",
        MS_NDR),
    CodeRule::new(2, 2, "Submission quota exceeded", Some(ReputationOrRateLimited),
        "The sender exceeded Exchange Online's recipient rate or message rate limit.",
        MS_NDR).text(&["submission quota", "rate limit", "recipient rate", "message rate"]),
    CodeRule::new(2, 121, "Recipient's per-hour message receive limit exceeded", Some(ReputationOrRateLimited),
        "The recipient is receiving more messages per hour from this sender than Exchange Online allows.",
        MS_NDR).to(122),
    CodeRule::new(3, 2, "STOREDRV.Deliver; mailbox busy (folder item limit)", Some(MailboxDisabledOrFull),
        "A folder of the recipient mailbox holds the most items Exchange Online allows (one million), so delivery fails until items are moved or archived.",
        MS_MAILBOX_BUSY).text(&["maxobjsexceeded"]),
    CodeRule::new(3, 2, "Maximum number of concurrent connections exceeded", Some(ReputationOrRateLimited),
        "Exchange Online limits concurrent connections per sender; this one opened more than it allows. Fewer parallel connections and retries later get through.",
        MS_EXO_THROTTLE).text(&["concurrent connections"]).steps(&[RETRY]),
    CodeRule::new(3, 2, "STOREDRV.Deliver; recipient thread limit exceeded", Some(ReputationOrRateLimited),
        "The recipient mailbox is receiving too many messages at once; Exchange throttles it by design.",
        MS_NDR).text(&["thread limit", "storedrv"]),
    CodeRule::new(3, 1, "STOREDRV.Submit; disk is full", Some(ServiceUnavailable),
        "The Exchange server's disk (the system TMP folder) is full, so the store driver cannot submit the message; free disk space there.",
        MS_STOREDRV).text(&["storedrv"]),
    CodeRule::new(2, 0, "STOREDRV.Deliver exception", Some(Other),
        "Exchange's store driver failed while delivering into the recipient's mailbox (an exception on the receiving Exchange server, not a refusal of this sender); the exception name says which.",
        MS_STOREDRV).text(&["storedrv.deliver.exception"]),
    CodeRule::new(3, 190, "Journaling on-premises messages not supported when Journaling Archive disabled", Some(PolicyOrTransportRule),
        "On-premises journal reports are sent to Microsoft 365 while journaling archive is disabled.",
        MS_NDR),
];

// ---- Tier 4: RFC 5321 basic codes, with the stage --------------------------------------------

pub static RFC5321_TABLE: &[BasicRule] = &[
    BasicRule::new(211, "System status, or system help reply", Some(Accepted), "", RFC5321),
    BasicRule::new(214, "Help message", Some(Accepted), "", RFC5321),
    BasicRule::new(220, "<domain> Service ready", Some(Accepted), "", RFC5321),
    BasicRule::new(221, "<domain> Service closing transmission channel", Some(Accepted), "", RFC5321),
    BasicRule::new(235, "Authentication succeeded", Some(Accepted), "", RFC4954),
    BasicRule::new(250, "Requested mail action okay, completed", Some(Accepted), "", RFC5321),
    BasicRule::new(251, "User not local; will forward", Some(Accepted), "", RFC5321),
    BasicRule::new(252, "Cannot VRFY user, but will accept message and attempt delivery", Some(Accepted), "", RFC5321),
    BasicRule::new(334, "Server challenge (AUTH continues)", Some(Accepted), "", RFC4954),
    BasicRule::new(354, "Start mail input; end with <CRLF>.<CRLF>", Some(Accepted), "", RFC5321),
    BasicRule::new(200, "Positive completion", Some(Accepted), "", RFC5321).to(399),
    BasicRule::new(421, "<domain> Service not available, closing transmission channel", Some(ServiceUnavailable),
        "The server is closing the connection because it cannot provide service now (overload, shutdown, or a temporary refusal of this client).", RFC5321),
    // A server that answers STARTTLS with an error leaves the session unencrypted.
    BasicRule::new(454, "TLS not available due to temporary reason", Some(TlsFailed),
        "The server advertises or accepts STARTTLS but cannot start TLS now (certificate or TLS configuration problem on the server).", RFC3207)
        .at(TLS.or_unknown()),
    // A 503 to STARTTLS is a command out of sequence (STARTTLS before EHLO, or twice).
    BasicRule::new(503, "Bad sequence of commands", Some(ProtocolError),
        "STARTTLS came out of sequence (before EHLO, or inside TLS already).", RFC5321).at(TLS),
    BasicRule::new(400, "STARTTLS refused", Some(TlsFailed),
        "The server refused STARTTLS, so the session cannot be encrypted.", RFC3207)
        .to(599).at(TLS).sure(),
    BasicRule::new(454, "Temporary authentication failure", Some(AuthFailed),
        "Authentication failed for a temporary reason on the server (its directory or authentication back end).", RFC4954)
        .at(AUTH).sure(),
    BasicRule::new(432, "A password transition is needed", Some(AuthFailed),
        "The account must change its password before it can authenticate.", RFC4954).at(AUTH),
    // Not `sure`: RFC 3207 gives 530 to "Must issue a STARTTLS command first" too.
    BasicRule::new(530, "Authentication required", Some(AuthRequired),
        "The server requires authentication before this command.", RFC4954),
    BasicRule::new(534, "Authentication mechanism is too weak", Some(AuthFailed),
        "The server requires a stronger authentication mechanism.", RFC4954),
    // RFC 4954 defines 535 as an answer to AUTH; elsewhere it is a server's own use.
    BasicRule::new(535, "Authentication credentials invalid", Some(AuthFailed),
        "The server rejected the credentials.", RFC4954).at(AUTH.or_unknown()).sure(),
    BasicRule::new(535, "Authentication credentials invalid", Some(AuthFailed),
        "The server rejected the credentials.", RFC4954),
    BasicRule::new(538, "Encryption required for requested authentication mechanism", Some(TlsRequired),
        "This authentication mechanism is only allowed inside TLS.", RFC4954),
    BasicRule::new(503, "Bad sequence of commands", Some(ProtocolError),
        "A command came out of order (for example AUTH when already authenticated, or RCPT before MAIL).", RFC5321).sure(),
    // RFC 4954 section 4: a client response that is not valid base64 gets 501.
    BasicRule::new(500, "Authentication refused", Some(AuthFailed),
        "The server refused the authentication attempt.", RFC4954).to(599).at(AUTH).sure(),
    BasicRule::new(400, "Authentication temporarily refused", Some(AuthFailed),
        "The server could not authenticate the client now (a temporary failure of its authentication back end).", RFC4954).to(499).at(AUTH),
    BasicRule::new(450, "Requested mail action not taken: mailbox unavailable (busy or temporarily blocked for policy reasons)", None, "", RFC5321),
    BasicRule::new(451, "Requested action aborted: local error in processing", Some(ServiceUnavailable),
        "The receiving server hit a local error while processing the command; it is temporary by definition.", RFC5321),
    // At RCPT, 452 is also the documented reply for "too many recipients" (RFC 5321 4.5.3.1.10).
    BasicRule::new(452, "Requested action not taken: insufficient system storage", None, "", RFC5321).at(RCPT.or_unknown()),
    BasicRule::new(452, "Requested action not taken: insufficient system storage", Some(ServiceUnavailable),
        "The receiving server is short of storage and cannot take the message now.", RFC5321),
    BasicRule::new(455, "Server unable to accommodate parameters", Some(ProtocolError),
        "The server could not accept the MAIL or RCPT parameters.", RFC5321),
    BasicRule::new(500, "Syntax error, command unrecognized", Some(ProtocolError),
        "The server did not recognize the command.", RFC5321).sure(),
    BasicRule::new(501, "Syntax error in parameters or arguments", Some(ProtocolError),
        "The command's parameters were not valid.", RFC5321).sure(),
    BasicRule::new(502, "Command not implemented", Some(ProtocolError),
        "The server does not implement this command.", RFC5321).sure(),
    BasicRule::new(504, "Command parameter not implemented", Some(ProtocolError),
        "The server does not implement this command parameter.", RFC5321).sure(),
    BasicRule::new(521, "Host does not accept mail", Some(ServiceUnavailable),
        "This host does not accept mail at all.", RFC7504),
    BasicRule::new(550, "Requested action not taken: mailbox unavailable", None, "", RFC5321),
    BasicRule::new(551, "User not local; please try <forward-path>", Some(RecipientUnknown),
        "The recipient is not hosted here and the server will not forward.", RFC5321),
    BasicRule::new(552, "Requested mail action aborted: exceeded storage allocation", Some(MessageTooLarge),
        "The message exceeds the storage or size allowed by the receiving server.", RFC5321),
    BasicRule::new(553, "Requested action not taken: mailbox name not allowed", Some(SenderRejected),
        "The server does not accept this sender address.", RFC5321).at(MAIL),
    BasicRule::new(553, "Requested action not taken: mailbox name not allowed", None, "", RFC5321),
    BasicRule::new(554, "No SMTP service here (at connection)", Some(ServiceUnavailable),
        "The server refuses SMTP service to this client at the greeting; this is often an IP-based block, so check blocklists for the sending IP too.", RFC5321)
.at(BANNER).layer(Layer::Service).steps(&[DELIST_PUBLIC, PTR]),
    BasicRule::new(554, "Transaction failed", None, "", RFC5321),
    BasicRule::new(555, "MAIL FROM/RCPT TO parameters not recognized or not implemented", Some(ProtocolError),
        "The server did not accept the MAIL or RCPT parameters.", RFC5321).sure(),
    BasicRule::new(556, "Domain does not accept mail", Some(RecipientUnknown),
        "The recipient domain does not accept mail (null MX).", RFC7504),
    BasicRule::new(400, "Transient negative completion", None, "", RFC5321).to(499),
    BasicRule::new(500, "Permanent negative completion", None, "", RFC5321).to(599),
];

/// The reading `SessionFacts` gives a refusal at RCPT that says no clear reason, when the
/// server does not claim the recipient's domain (classify.rs `apply_facts`).
pub static RELAY_BY_FACTS: TextRule = TextRule::new(
    &[],
    RelayDenied,
    "The server does not claim the recipient's domain (not in its banner, EHLO or certificate names, nor the MX it was reached through), so a refusal at RCPT is most likely a refusal to relay for a domain it does not serve.",
    POSTFIX,
)
.steps(&[RELAY_WHICH_SIDE, CONNECTORS]);
