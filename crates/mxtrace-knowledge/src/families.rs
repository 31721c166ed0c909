//! Word families: the words servers use for one cause, whatever the server (spam and content,
//! header format, loops, quotas, authentication, relaying, unknown users, DNS, TLS, rates ...),
//! each weighed by the stage the reply answered. Two tables:
//!
//! - `PHRASES`: phrases that name exactly one cause ("user unknown", "mailbox full", "hop
//!   count"). They decide and override a code (docs/diagnosis.md "Conflicts"); they are
//!   sure only when a code says the same (classify.rs `corroborate`).
//! - `WORDS`: single words that lean one way ("quota", "policy", "unknown"). They decide only
//!   where the code is generic or absent, and then with medium confidence ("probably").
//!
//! The first matching row of a table wins, so the rows that must beat a broader family come
//! first (a header-format rule before the size family, "send EHLO first" before the TLS
//! family, "without authentication" before the relay family). Needles are lower-case; a
//! leading `#` asks for a whole word (rules.rs).

use super::advice::{
    AUTH_POSTURE, CONNECTORS, DELIST_MS, DELIST_PUBLIC, HCW, PTR, RECIPIENT_ADMIN, RETRY, RULES,
    SERVICE_HEALTH,
};
use super::rules::{Classes, Stages, TextRule, AUTH, BANNER, DATA, HELO, MAIL, RCPT, TLS};
use super::tables::{
    DNSBLS, EXIM, ONPREM, POSTFIX, POSTFIX_SMTPD, POSTFIX_TLS, POSTGREY, RFC3207, RFC3463, RFC4954,
    RFC5321, RFC7208, RFC7372, SENDMAIL,
};
use super::Category::*;
use super::Layer;
use mxtrace_proto::model::Stage;

const RFC5322: &str = "RFC 5322 section 3.6 (header fields: exactly one From and Date, required and unique fields) and RFC 5321 section 2.3.8 (lines end in CRLF; a bare LF is not allowed)";
const RFC6531: &str =
    "RFC 6531 (SMTPUTF8) and RFC 6152 (8BITMIME): non-ASCII addresses or data need the extension";
const RFC5321_QUOTA: &str = "RFC 3463 X.2.2 (mailbox full) and X.4.5/X.7.28 (system congestion, mail flood): a quota on the recipient's mailbox is a full mailbox; a quota on the sender's queue or submissions is a rate limit";
const RFC4954_AUTH: &str = "RFC 4954 sections 4 and 6 (530 authentication required; 535 credentials invalid; 501 for a response that is not valid base64)";
const DNSBL: &str = "RFC 5782 (DNS blacklists and whitelists): IP lists (DNSBL) name the client's address; domain lists (RHSBL, URIBL, Spamhaus DBL) name a domain in the sender or the message";
const HELO_DNS: &str = "RFC 5321 section 4.1.4 (the EHLO argument is the client's fully qualified name or an address literal) and Postfix reject_unknown_helo_hostname / reject_unknown_client_hostname (the name must resolve)";

const RESERVED_NAMES: &str = "RFC 2606 and RFC 6761 (reserved and special-use names: .test, .example, .invalid, .localhost never resolve in the public DNS) and the IANA root zone (a name under a TLD that does not exist cannot resolve)";
const ACCESS_LISTS: &str = "Postfix access(5) and Sendmail's access database (an administrator's REJECT entries keyed on the client, the sender or the recipient address); RFC 5782 for the IP lists";

const OPENSMTPD_MTA: &str = "OpenSMTPD usr.sbin/smtpd/mta.c (relay failure strings: \"Network error on destination MXs\", \"No valid route to remote MX\"); sisimai Lhost/OpenSMTPD.pm lists them as network errors";
const GATEWAY_UNKNOWN: &str = "sisimai Lhost/IMailServer.pm (\"Invalid final delivery userid\": unknown user) and Lhost/InterScanMSS.pm with set-of-emails lhost-interscanmss-02 (\"Unable to deliver message to <address> ... Please check if address is correct.\")";
const NOT_MAIL: Stages = Stages::ANY.except(MAIL);
/// Where a recipient can be judged: not at MAIL (the sender's) nor AUTH/STARTTLS (the client's
/// credentials or TLS), where "unknown user" or "quota" mean something else.
const RECIPIENT_STAGES: Stages = Stages::ANY.except(MAIL).except(AUTH).except(TLS);
const NOT_AUTH: Stages = Stages::ANY.except(AUTH);
const CONTENT_STAGES: Stages = DATA.or_unknown();
const SESSION: Stages = BANNER.and(HELO).and(MAIL).and(RCPT).and(TLS);

// ---- Phrases that name one cause -------------------------------------------------------------

pub static PHRASES: &[TextRule] = &[
    // The client's own sequence or syntax, wherever it happens (STARTTLS before EHLO is not a
    // TLS failure).
    TextRule::new(
        &["send ehlo first", "send helo first", "send helo/ehlo first", "send hello first", "say helo first", "ehlo first", "helo first", "need mail command", "need rcpt command", "mail first", "need mail before", "bad sequence", "out of sequence", "nested mail command", "introduce yourself", "use ehlo", "use helo", "before mail", "before rcpt", "needed first", "rcpt first", "already given", "already specified", "already established", "talk too soon", "talked too soon", "early talker", "pregreet", "before smtp greeting", "before greeting", "before the greeting", "before the banner", "transmitting before", "no mail transaction", "transaction in progress", "not in a transaction", "no transaction", "not allowed during", "not permitted during", "during a mail transaction", "at this point", "in this state", "duplicate helo", "duplicate ehlo", "already authenticated", "already logged in", "already secured", "already active", "already running", "already in tls", "tls already", "already started", "can break rules, too"],
        ProtocolError,
        "The server received a command out of sequence (RFC 5321 section 4.1.4): the client did not greet first, repeated a command, or skipped MAIL or RCPT.",
        POSTFIX_SMTPD,
    )
    // "Must issue a STARTTLS command before MAIL" is the TLS requirement, not a sequence error.
    .unless(&["must issue a starttls", "must use starttls", "starttls required", "starttls is required", "authentication required", "authentication is required", "must authenticate"])
    .layer(Layer::SmtpSession),
    TextRule::new(
        &["not offered", "not advertised", "was not advertised"],
        ProtocolError,
        "The client used an extension the server did not advertise in its EHLO reply.",
        RFC5321,
    )
    .at(TLS.and(AUTH))
    .layer(Layer::SmtpSession),
    // At STARTTLS, a server that does not know or enable the command cannot do TLS.
    TextRule::new(
        &["not enabled", "not supported", "not available", "not implemented", "unrecognized", "unknown command", "command not", "disabled"],
        TlsFailed,
        "The server refused the STARTTLS command (not supported or not enabled), so the session cannot be encrypted.",
        RFC3207,
    )
    .at(TLS)
    .names()
    .layer(Layer::Tls),
    TextRule::new(
        &["non-ssl", "non-tls", "ssl attempted", "tls attempted", "tls handshake on a plain", "ssl/tls on a plain"],
        ProtocolError,
        "The client spoke TLS to a port that expects plaintext SMTP (implicit TLS against a STARTTLS or plain port).",
        RFC3207,
    )
    .layer(Layer::SmtpSession),
    TextRule::new(
        &["too many errors", "too many syntax", "too many bad commands", "too many invalid commands", "too many unrecognized", "too many unknown commands", "too many protocol errors", "synchronization error", "improper use of smtp command pipelining"],
        ProtocolError,
        "The client broke SMTP: it pipelined commands the server did not allow, or made too many protocol errors.",
        POSTFIX,
    ),
    // A server that waited for the client and gave up: the client's pace, not the server's health.
    TextRule::new(
        &["timeout waiting", "waiting for data", "data timeout", "command timeout", "idle timeout", "input timeout"],
        ProtocolError,
        "The server closed the session because the client was too slow to send the next command or the message data (RFC 5321 section 4.5.3.2 timeouts).",
        RFC5321,
    )
    .layer(Layer::SmtpSession),
    TextRule::new(
        &["malformed", "syntactically invalid", "invalid address literal", "invalid domain literal", "in smtp commands", "invalid syntax", "syntax should be"],
        ProtocolError,
        "The server refused the command's argument as malformed (an EHLO argument must be a fully qualified name or an address literal, RFC 5321 section 4.1.4).",
        HELO_DNS,
    )
    .unless(&["header", "sender", "recipient", "address"])
    .layer(Layer::SmtpSession),
    TextRule::new(
        &["smtputf8", "8bitmime", "8-bit mime", "non-us-ascii", "unicode", "utf-8 address", "utf8 address", "international", "#ascii"],
        ProtocolError,
        "The message or an address needs an SMTP extension (SMTPUTF8 or 8BITMIME) that one side did not announce or does not support.",
        RFC6531,
    )
    .unless(&["header"]),
    // Header format is content (RFC 5322); header size is size.
    TextRule::new(
        &["header", " field", "resent-"],
        ContentRejected,
        "The message's header does not follow RFC 5322 (a required field missing, a field that must be unique repeated, or a malformed field), so the server refused it.",
        RFC5322,
    )
    .also(&["missing", "require", "valid", "duplicate", "only one", "multiple", "more than one", "invalid", "malformed", "required", "future", "in the past", "too far", "line is too long", "line too long", "not allowed", "bad ", "syntax", "non-compliant", "not compliant", "rfc 5322", "rfc5322", "rfc 2822", "rfc2822", "rfc 822", "rfc822", "8-bit", "8bit", "8 bit", "specify no", " no ", "must ", "empty", "forged", "broken", "not valid", "unparsable", "non-ascii", "given", "without"])
    .unless(&["too large", "too big", "size", "exceeds", "ridiculously", "too many headers"]),
    // The message format RFCs by number: RFC 821/5321 name the protocol, 822/2822/5322 the
    // message, so "not RFC 5322 compliant" is content.
    TextRule::new(
        &["rfc 5322", "rfc5322", "rfc 2822", "rfc2822", "rfc 822", "rfc822", "rfc-5322", "rfc-2822"],
        ContentRejected,
        "The message does not follow the Internet Message Format (RFC 5322), so the server refused it.",
        RFC5322,
    )
    .also(&["complian", "conform", "violat", "invalid", "malformed", "format", "not valid", "does not"])
    .at(CONTENT_STAGES),
    TextRule::new(
        &["smtplf", "barelf", "bare lf", "line delimiter", "must be crlf", "invalid line ending", "line endings", "line ending", "bare line", "bare cr", "bare <lf>", "bare newline", "line feed", "line-feed", "linefeed", "lone lf", "lone cr"],
        ContentRejected,
        "The message data has line endings that are not CRLF (a bare LF or CR, RFC 5321 section 2.3.8), which the server refuses.",
        RFC5322,
    )
    .at(CONTENT_STAGES),
    // Email authentication: a temporary failure of the check is a DNS failure (its lookups).
    TextRule::new(
        &["#spf", "#dkim", "#dmarc", "sender policy framework"],
        DnsFailure,
        "A sender authentication check (SPF, DKIM or DMARC) could not be completed because a DNS lookup failed; the sender retries.",
        RFC7208,
    )
    .also(&["temporary", "temperror", "tempfail", "no response", "no answer", "try again", "dns error", "lookup failed", "dns failure", "timeout", "timed out", "servfail"])
    .unless(&["too many", "limit"])
    .only(Classes::Transient)
    .layer(Layer::Dns),
    TextRule::new(
        &["#spf", "#dkim", "#dmarc", "sender policy framework", "domainkeys", "unauthenticated email", "sender is unauthenticated", "authentication checks", "purported responsible address", "#pra", "sender id", "senderid", "arc validation", "#arc", "not authorized by", "not designated", "not permitted sender", "not allowed to send mail from", "not allowed to send from", "not permitted to send mail from"],
        SpfDkimDmarcFailure,
        "The message failed sender authentication (SPF, DKIM or DMARC) at the receiving server.",
        RFC7372,
    )
    // Signing is the server's own step (a failure there is its fault), checking is the message's.
    .unless(&["signing failed", "failed to sign"])
    .names()
    .steps(&[AUTH_POSTURE]),
    // Authentication asked for before relaying: MessageLabs and Postfix word it with "relay".
    TextRule::new(
        &["authentication required", "authentication is required", "auth required", "must authenticate", "authenticate first", "not authenticated", "requires authentication", "please authenticate", "login required", "not logged in", "must log in", "must login", "must be logged in", "log in to send", "login to send", "unauthenticated sender", "unauthenticated relay", "unauthenticated user", "unauthenticated client", "unauthenticated mail", "smtp authentication", "without authentication", "smtp auth", "authentication needed", "must be authenticated", "need to authenticate", "needs authentication", "auth first", "authorization required", "access requires authentication", "sender not authenticated", "must issue an auth", "issue an auth command"],
        AuthRequired,
        "The server requires SMTP authentication (AUTH) before it accepts this command or relays for this client.",
        RFC4954_AUTH,
    )
    .unless(&["relaying denied", "relay access denied", "relay denied"])
    .at(NOT_AUTH)
    .layer(Layer::Auth),
    TextRule::new(
        &["authentication failed", "authentication failure", "authentication unsuccessful", "auth failed", "authentication error", "invalid credentials", "bad credentials", "credentials invalid", "incorrect credentials", "wrong credentials", "login failed", "logon failure", "invalid login", "incorrect login", "bad login", "username and password", "username or password", "user or password", "password incorrect", "incorrect password", "invalid password", "wrong password", "password not accepted", "decode base64", "invalid base64", "base64", "channel binding", "authentication aborted", "auth aborted", "authentication cancelled", "auth cancelled", "authentication mechanism", "unrecognized authentication", "unsupported authentication", "authentication type", "mechanism not supported", "unknown mechanism", "too many login attempts", "too many authentication", "too many auth", "unable to authenticate", "authorization failed", "exchange cancelled", "cancelled", "canceled"],
        AuthFailed,
        "The server rejected the authentication attempt (credentials, mechanism or the exchange itself).",
        RFC4954_AUTH,
    )
    // Every needle is about the AUTH exchange ("base64" included), so each names the cause.
    .names()
    .at(AUTH.or_unknown()),
    TextRule::new(
        &["not supported", "not available", "not enabled", "not implemented", "not advertised"],
        ProtocolError,
        "The server does not offer SMTP AUTH here (not advertised or not enabled), so the AUTH command is out of place.",
        RFC4954_AUTH,
    )
    .at(AUTH)
    .layer(Layer::SmtpSession),
    // Loops before rates and sizes ("maximum number of hops").
    TextRule::new(
        &["#loop", "loops back", "looping", "mail loop", "routing loop", "loop detected", "hop count", "too many hops", "hop limit", "max hop", "maximum hop", "number of hops", "too many received", "received headers", "received header fields", "recursive forward", "too many forwards"],
        ConnectorOrRouting,
        "A mail loop: the message passed through more hops than the server allows, or came back to a server it had already passed (forwarding, connectors or MX records pointing at each other).",
        SENDMAIL,
    ),
    // OpenSMTPD's relay failures (usr.sbin/smtpd/mta.c `relay->failstr`): no MX of the
    // destination could be reached, in a delay notice that also says "temporary failure".
    TextRule::new(
        &["network error on destination mx", "no valid route to remote mx", "no valid route to destination", "all routes to destination blocked"],
        ConnectorOrRouting,
        "The sending server could not connect to any MX host of the destination (network errors or no usable route).",
        OPENSMTPD_MTA,
    ),
    // Sizes (a size "limit exceeded" before the rate family).
    TextRule::new(
        &["too large", "too big", "data size", "size exceeded", "too much mail data", "too much data", "message size", "size limit", "exceeds size", "maximum size", "size exceeds", "exceeds maximum", "exceeds the maximum allowed size", "message length exceeds", "message file too big", "exceeded storage allocation", "header size", "ridiculously long", "oversize", "max message size", "maximum message size", "larger than", "message is too long", "message too long", "attachment is too long", "attachment too long", "attachment too large"],
        MessageTooLarge,
        "The message is larger than a size limit on the receiving side.",
        RFC5321,
    )
    .unless(&["mailbox is full", "mailbox full", "mailbox size", "quota"]),
    // Quotas: the sender's queue or submissions is a rate limit, the recipient's mailbox is
    // full.
    TextRule::new(
        &["queue quota", "submission quota", "outmail quota", "outgoing quota", "sending quota", "send quota", "message quota", "sender quota", "quota for sending", "daily quota", "hourly quota"],
        ReputationOrRateLimited,
        "The sender (its account, queue or organization) exceeded a sending quota of the receiving service.",
        RFC5321_QUOTA,
    )
    .steps(&[RETRY]),
    TextRule::new(
        &["mailbox full", "mailbox is full", "mail box full", "mail box is full", "mail box space", "mailbox space", "mailbox has exceeded", "full mailbox", "over quota", "overquota", "quota exceeded", "quotaexceeded", "exceeded quota", "exceeds quota", "exceeded its quota", "exceeded the quota", "quota exceed", "disk quota", "storage quota", "mailbox quota", "out of storage", "mailbox exceeds", "mailbox exceeded", "is over its", "account is full", "inbox is full", "exceeded storage", "over the allowed quota", "exceeded the storage", "mailbox size limit", "mailbox size exceeded", "mailbox storage", "insufficient storage", "not enough storage", "boite pleine", "boîte pleine", "destinataire pleine", "postfach voll", "buzón lleno", "casella piena"],
        MailboxDisabledOrFull,
        "The mailbox is full (over its storage quota).",
        RFC5321_QUOTA,
    )
    .unless(&["system storage", "insufficient system"])
    .names()
    .at(RECIPIENT_STAGES),
    // A quota said of the recipient, in whatever words ("recipient rejected - extended quota
    // violation"): the mailbox's quota, not the sender's.
    TextRule::new(
        &["quota"],
        MailboxDisabledOrFull,
        "The recipient's mailbox is over its storage quota.",
        RFC5321_QUOTA,
    )
    .also(&["recipient", "mailbox", "#user", "account", "inbox", "destinataire"])
    .unless(&["sender", "sending", "submission", "outgoing", "queue", "organization", "system"])
    .at(RECIPIENT_STAGES),
    // Rates and volume.
    TextRule::new(
        &["rate limit", "ratelimit", "rate-limit", "rate limited", "throttl", "too many connections", "too many concurrent", "concurrent connections", "too many sessions", "too many messages", "too many recipients", "too many recipient", "too many mails", "too many emails", "too many tls", "too many new tls", "too many times", "sent too many", "too many transactions", "too many rcpt", "too many mail", "too many attempts", "connection limit", "limit exceeded", "limit reached", "exceeded the maximum number", "exceeded the limit", "max connections", "maximum connections", "per hour", "per minute", "per day", "per connection", "per session", "slow down", "too fast", "too quickly", "mail flood", "#flood", "too much mail", "unusual traffic", "unusual volume", "excessive", "sending limit", "send limit", "sending rate", "message rate", "rate exceeded", "rate too high", "rate is too high", "daily limit", "hourly limit", "daily sending", "message limit", "messages limit", "recipient limit", "recipients limit", "frequency limit", "sending frequency", "high volume", "volume limit", "too much traffic", "too many requests", "request limit"],
        ReputationOrRateLimited,
        "The receiving server is limiting this sender or IP (too many messages, recipients or connections in a period).",
        RFC3463,
    )
    // "Quota limit exceeded" is a quota: the quota rules and the code say whose.
    .unless(&["quota"])
    .steps(&[RETRY]),
    // TLS: failure of the negotiation before the requirement.
    TextRule::new(
        &["lack of security", "certificate", "tls negotiation failed", "tls handshake", "ssl handshake", "handshake failed", "tlsa", "#dane", "mta-sts", "certificate verif", "certificate has expired", "certificate expired", "self-signed", "self signed", "unknown ca", "no shared cipher", "security subsystem", "tls not available", "tls is not available", "tls unavailable", "tls is unavailable", "unavailable or failed", "starttls failed", "tls failed", "tls error", "cannot start tls", "can't start tls", "unable to start tls", "unable to initialize tls", "tls support required", "tls it not available", "tls not supported", "starttls not supported", "tls currently unavailable", "security failure"],
        TlsFailed,
        "TLS could not be established (handshake, certificate or TLS policy such as DANE or MTA-STS failed, or TLS is unavailable).",
        RFC3207,
    )
    .names()
    .layer(Layer::Tls),
    TextRule::new(
        &["must issue a starttls", "issue starttls first", "starttls first", "starttls is required", "starttls required", "must use starttls", "must encrypt", "encryption required", "encryption is required", "encryption needed", "tls required", "tls is required", "requires tls", "tls encryption required", "secure connection required", "requires a secure connection", "must use tls", "only over tls", "only with tls", "plaintext", "cleartext", "unencrypted", "encryption too weak", "encryption is too weak", "cipher too weak", "insufficient encryption", "weak encryption", "encryption strength", "not encrypted"],
        TlsRequired,
        "The server accepts this command only inside TLS: the client must issue STARTTLS first.",
        POSTFIX_TLS,
    )
    .layer(Layer::Tls),
    // A list is about whatever it lists: a black list said of a recipient address is the
    // receiving side's rule for that recipient, one said of a sender address refuses the sender;
    // only a list of clients (IPs, hosts, a DNSBL) is an IP list.
    TextRule::new(
        &["black listed", "blacklisted", "blocklisted", "black list", "blacklist", "blocklist", "block list", "denylist", "deny list", "denylisted"],
        PolicyOrTransportRule,
        "The receiving side's access list refuses this recipient (or this sender and recipient pair): an administrator's rule, not a verdict on the sending IP.",
        ACCESS_LISTS,
    )
    .also(&["#recipient", "#rcpt"])
    .unless(&["#ip", "client host", "connecting host", "using", "dnsbl", "#rbl", "spamhaus"])
    .steps(&[RULES, RECIPIENT_ADMIN]),
    TextRule::new(
        &["black listed", "blacklisted", "blocklisted", "black list", "blacklist", "blocklist", "denylist", "deny list", "denylisted"],
        SenderRejected,
        "The receiving side lists this sender address (or its domain) as refused.",
        ACCESS_LISTS,
    )
    .also(&["#sender"])
    .unless(&["#ip", "client host", "connecting host", "using", "dnsbl", "#rbl", "spamhaus", "reputation"]),
    // Domain lists are about a domain, IP lists about the client's address.
    TextRule::new(
        &["#dbl", "uribl", "surbl", "rhsbl", "domain blocklist", "domain block list", "domain blacklist", "domain is blacklisted", "domain is listed", "domain listed", "domain reputation", "url blocklist", "uri blocklist"],
        ReputationOrRateLimited,
        "A domain in the sender address or the message is on a domain block list (RHSBL/URIBL such as the Spamhaus DBL), which the receiving server checks.",
        DNSBL,
    )
    .names(),
    TextRule::new(
        &["barracudacentral", "barracuda reputation", "spamcop", "csi.mimecast", "csi.cloudmark", "#sorbs", "uceprotect", "abuseat", "psbl", "#dnsbl", "dnsbls", "#rbl", "blocked using", "black ip", "blacklist", "blocklist", "blocklisted", "black list", "block list", "denylist", "deny list", "is listed", "listed at", "listed on", "listed in", "listed by", "found on one", "dynamic ip", "dynamic address", "residential", "dial-up", "dialup", "server of your isp", "use your isp", "your isp's mail server", "your isp's smtp"],
        IpBlocklisted,
        "The sending IP address is on a blocklist (DNSBL or the provider's own list) the receiving server checks, so it refuses the connection or the message.",
        DNSBLS,
    )
    // "Sender is blacklisted" is a recipient's list of sender addresses, not of IPs.
    .unless(&["tenant allow", "not listed", "sender is blacklisted", "sender is blocklisted", "sender is on", "#url", "#uri", "#urls", "#uris", "#link", "#links"])
    .names()
    .steps(&[DELIST_PUBLIC, DELIST_MS, PTR]),
    TextRule::new(
        &["your ip", "ip address", "client ip", "sending ip", "connecting ip", "source ip", "#your host", "your server", "client address", "sending host", "connecting host", "your network", "ip blocked", "ip is blocked", "ip banned"],
        IpBlocklisted,
        "The receiving server blocks the sending IP (or its network).",
        DNSBL,
    )
    .also(&["blocked", "banned", "blacklisted", "blocklisted", "listed", "not welcome", "refused", "rejected", "denied", "not allowed"])
    .unless(&["ehlo", "helo", "reverse", "ptr", "dns"])
    .steps(&[DELIST_PUBLIC, PTR]),
    // Reputation, named as such.
    TextRule::new(
        &["reputation", "complaints", "#spammer", "#karma", "spam sender", "spam source", "source of spam", "spam trap", "spamtrap", "sender score", "senderscore", "suspicious activity", "unusual activity", "abusive", "permanently deferred", "unexpected volume", "sending practices", "sending behavior", "sending behaviour", "sending pattern", "sending history"],
        ReputationOrRateLimited,
        "The receiving server is limiting or refusing this sender for its reputation.",
        RFC3463,
    )
    .names(),
    // A content filter that could not run is the receiving service's failure, not a verdict
    // on the content: the retry will be scanned.
    TextRule::new(
        &["virus scanner", "virus scan", "antivirus", "anti-virus", "content filter", "spam filter", "content scanner", "#scanner", "#milter", "spamassassin", "#spamd", "#rspamd", "#clamav", "#clamd", "#amavis"],
        ServiceUnavailable,
        "The receiving server's content scanner (antivirus or spam filter) failed or timed out, so it deferred the message; the retry is usually accepted.",
        RFC5321,
    )
    .also(&["error", "timed out", "timeout", "unavailable", "not available", "not responding", "connecting", "failure", "failed"])
    .only(Classes::Transient)
    .steps(&[SERVICE_HEALTH, RETRY]),
    // Content and spam.
    TextRule::new(
        &["#virus", "malware", "infected", "#phish", "phishing", "trojan", "banned attachment", "attachment", "password-protected", "encrypted archive", "#zip", "executable", "banned file", "prohibited file", "file extension", "file_extension", "dangerous", "credential leak", "impersonat", "blacklisted url", "blocklisted url", "blacklisted link", "listed url", "malicious url", "malicious link", "phishing url", "phishing link", "suspicious url", "suspicious link", "spam url", "spam link"],
        ContentRejected,
        "The receiving filter refused the message content (malware, phishing or a forbidden attachment).",
        RFC3463,
    )
    .names(),
    TextRule::new(
        &["identified as spam", "classified as spam", "detected as spam", "marked as spam", "considered spam", "#spam", "spamassassin", "spammy", "unsolicited", "#junk", "#uce", "bulk mail", "spam score", "content filter", "content policy", "message content", "too many mime parts", "mime parts", "mime structure", "#mime", "likely unsolicited", "objectionable", "inappropriate content", "prohibited content", "banned content", "blocked content", "forbidden content", "restricted content", "content violation", "content rejected", "content not accepted", "banned word", "banned phrase", "prohibited word", "offensive", "profanity", "adult content", "#bayes", "#bayesian", "suspicious content", "message looks suspicious"],
        ContentRejected,
        "The receiving filter classified the message as spam, or refused its content.",
        RFC3463,
    )
    .names()
    .at(CONTENT_STAGES),
    TextRule::new(
        &["bounce message", "bounce return path", "bogus bounce", "backscatter", "a bounce", "this bounce"],
        ContentRejected,
        "The receiving filter judged the message a bogus bounce (backscatter): a real bounce has an empty return path and one recipient (RFC 3834).",
        RFC3463,
    )
    .names()
    .at(CONTENT_STAGES),
    TextRule::new(
        &["spoof", "spoofed"],
        SenderRejected,
        "The server believes the sender address is forged (spoofed) for this connection.",
        RFC5321,
    )
    .at(MAIL.or_unknown()),
    TextRule::new(
        &["greylist", "graylist", "grey-list", "gray-list", "grey list", "gray list", "postgrey"],
        Greylisted,
        "The server is greylisting: it defers the first delivery attempt from an unknown sender and IP, expecting a real MTA to retry.",
        POSTGREY,
    )
    .names()
    .only(Classes::Transient),
    // DNS: the client's reverse DNS and EHLO name, a domain that does not resolve.
    TextRule::new(
        &["reverse dns", "rdns", "#ptr", "ptr record", "cannot find your hostname", "cannot find your reverse hostname", "reverse hostname", "fcrdns", "forward-confirmed", "does not resolve", "doesn't resolve", "did not resolve", "could not resolve", "cannot resolve", "can't resolve", "can not resolve", "can not be resolved", "could not be resolved", "unable to resolve", "not resolvable", "unresolvable", "host not found", "host unknown", "unknown host", "unrouteable mail domain", "unroutable mail domain", "unrouteable domain", "unroutable domain", "nonexistent domain", "non-existent domain", "domain not found", "no such domain", "domain does not exist", "domain doesn't exist", "nxdomain", "servfail", "domain name not found", "name server", "nameserver", "lookup fail", "lookup error", "temporary lookup", "name service error", "dns query", "dns lookup", "dns error", "dns failure", "no mx", "mx lookup", "domain is not reachable", "domain not reachable", "valid sender domain", "not the same as the actual client", "helo command rejected", "invalid helo", "bad helo", "helo name", "ehlo name", "helo host name", "fully-qualified hostname", "fully qualified hostname", "fqdn"],
        DnsFailure,
        "A DNS check failed: the sending IP's reverse DNS, the EHLO name, or the sender or recipient domain does not resolve (or the lookup itself failed).",
        HELO_DNS,
    )
    .layer(Layer::Dns)
    .steps(&[PTR]),
    // A client name under a reserved or unknown TLD cannot resolve; a sender's is the sender's.
    TextRule::new(
        &["unknown tld", "invalid tld", "reserved domain", "reserved tld", "rfc2606", "rfc 2606", "rfc6761", "rfc 6761", "special-use domain"],
        DnsFailure,
        "The client's name (its reverse DNS or EHLO name) is under a reserved or non-existent top-level domain, so it cannot resolve.",
        RESERVED_NAMES,
    )
    .unless(&["#sender", "mail from", "#recipient"])
    .layer(Layer::Dns)
    .steps(&[PTR]),
    // A HELO that claims localhost or someone else's address literal.
    TextRule::new(
        &["not localhost", "forged", "plain ip", "ip literal"],
        DnsFailure,
        "The EHLO name is not this client's: it claims localhost, a bare IP or an address the connection does not come from (RFC 5321 section 4.1.4).",
        HELO_DNS,
    )
    .at(HELO)
    .names()
    .layer(Layer::Dns),
    // The recipient's own rules.
    TextRule::new(
        &["recipient preferences", "recipient's preferences", "blocked by recipient", "blocked by the recipient", "recipient has blocked", "user has blocked", "rejected by recipient", "recipient does not accept mail from", "restricted by policy", "rejected by policy", "policy violation", "violates policy", "transport rule", "mail flow rule", "sieve", "administratively denied", "administrative prohibition", "envelope blocked", "client host rejected: access denied", "recipient address rejected: access denied", "local policy", "due to policy", "policy reasons", "not authorized to receive", "not allowed to receive", "only accepts mail from", "blocked senders", "blocked sender list", "denied by policy", "blocked by policy", "against policy", "policy rejection", "by policy", "blocked by administrator", "blocked by the administrator", "blocked by your administrator", "administrator has blocked", "helo command rejected: access denied", "not in the allowed", "not on the allowed", "not in allowed", "allowed senders", "allowed sender list", "not whitelisted", "not in whitelist", "not in the whitelist", "not on the whitelist", "not in allowlist", "not in the allowlist", "not on the allowlist", "accepts mail only from", "only accept mail from", "accepts messages only from", "only accepts messages", "only accept messages", "people in its organization", "outside the organization", "outside your organization", "outside of the organization", "outside of your organization", "external senders", "external forwarding", "internal senders", "moderator", "moderation", "geoip", "geo-ip", "geo ip", "geographic", "geoblock", "geo-block", "from your country", "country is blocked", "country blocked", "from this country", "#dlp", "data loss prevention", "compliance policy", "compliance rule", "information barrier", "ethical wall", "delivery restriction", "receive restriction", "restricted recipient", "recipient is restricted", "recipient does not wish", "does not wish to receive", "has chosen not to", "recipient's block", "user's block", "personal block", "blocked by user", "blocked by the user", "rejected by rule", "blocked by rule", "by a rule", "matched a rule", "rule matched", "filter rule", "mail rule", "mailflow rule", "not allowed to send to", "not authorized to send to", "not permitted to send to", "not allowed to email", "not permitted to email"],
        PolicyOrTransportRule,
        "A policy of the recipient or its organization (a mail flow rule, a sender restriction or the recipient's own block settings) refused this message.",
        RFC3463,
    )
    .steps(&[RULES, RECIPIENT_ADMIN]),
    // "policy" with a verb of refusal, whoever's policy it is (security, email, anti-spoofing,
    // local); the email-authentication, content, size and TLS families above come first.
    TextRule::new(
        &["policy", "policies"],
        PolicyOrTransportRule,
        "A policy of the receiving organization (an access, security or mail flow rule) refused this message.",
        RFC3463,
    )
    .also(&["reject", "violat", "due to", "blocked", "denied", "refus", "not accepted", "not allowed", "prohibit"])
    .unless(&["#dmarc", "#spf", "#dkim", "sender policy framework", "#spam", "#tls", "encrypt", "password", "quota", "#rate"])
    .steps(&[RULES, RECIPIENT_ADMIN]),
    // Disabled accounts before unknown users: "invalid mailbox ... account is disabled" names
    // the more specific cause.
    TextRule::new(
        &["account is disabled", "account disabled", "due to inactivity", "mailbox has expired", "mailbox expired", "account has expired", "por falta de uso", "casilla ha expirado", "cuenta ha expirado", "casilla inactiva", "cuenta inactiva", "cuenta desactivada", "conta desativada", "accountdisabled", "mailbox is disabled", "mailbox disabled", "account has been disabled", "account is inactive", "mailbox is inactive", "account has been suspended", "account suspended", "no longer active", "is not active", "account closed", "account is locked", "temporary locked", "temporarily locked", "mailbox unavailable for", "mailbox is unavailable", "not accepting mail", "relay address has been disabled"],
        MailboxDisabledOrFull,
        "The recipient account exists but is disabled, locked or not accepting mail.",
        RFC3463,
    )
    .at(RCPT.and(DATA).or_unknown()),
    // Unknown recipients.
    TextRule::new(
        &["user unknown", "unknown user", "no valid recipient", "no such user", "no such recipient", "no such mailbox", "no such address", "unknown recipient", "recipient unknown", "recipient not found", "invalid recipient", "recipient invalid", "mailbox not found", "mailbox unknown", "mailbox does not exist", "user does not exist", "user not exist", "mailbox not exist", "recipient not exist", "account not exist", "address does not exist", "account does not exist", "does not exist", "doesn't exist", "nonexistent", "non-existent", "no mailbox", "unknown address", "address unknown", "address not found", "invalid mailbox", "bad destination", "undeliverable address", "not our customer", "no longer valid", "addressee unknown", "unknown local", "marked as invalid", "not a valid recipient", "not a valid mailbox", "not a valid address", "invalid email address", "no such account", "no such alias", "unknown alias", "unknown local part", "not unique", "several matches", "ambiguous", "not a known user", "user not found", "no valid recipients", "unrouteable address", "unroutable address", "user invalid", "invalid user", "recipient address must", "address must contain", "bad recipient", "recipient address syntax", "not listed in", "address book", "no such person", "invalid address", "invalid-recipient", "not in recipient list", "not in the recipient list", "unallocated", "unknown or illegal", "illegal alias", "destinataire inconnu", "adresse inconnue", "empfaenger unbekannt", "empfänger unbekannt", "usuario desconocido", "utente sconosciuto", "no existe"],
        RecipientUnknown,
        "The recipient address is not known to the receiving server.",
        RFC3463,
    )
    .unless(&["sender", "absender"])
    .at(RECIPIENT_STAGES),
    // "This user doesn't have a <domain> account" (Yahoo and others).
    TextRule::new(
        &["doesn't have a", "does not have a", "does not have an", "doesn't have an", "has no account"],
        RecipientUnknown,
        "The recipient address has no account at the receiving provider.",
        RFC3463,
    )
    .also(&["account", "mailbox"])
    .unless(&["sender", "permission"])
    .at(RECIPIENT_STAGES),
    // Gateways' own words for an address that does not exist: Ipswitch IMail's "Invalid final
    // delivery userid", InterScan MSS's "Please check if address is correct".
    TextRule::new(
        &["invalid final delivery userid", "check if address is correct", "check if the address is correct"],
        RecipientUnknown,
        "The receiving gateway does not know the recipient address.",
        GATEWAY_UNKNOWN,
    )
    .at(RECIPIENT_STAGES),
    // Relaying, with and without the word ("Insecure Mail Relay": old Sendmail, listed as a
    // relay refusal by sisimai's Reason::NoRelaying).
    TextRule::new(
        &["relay access denied", "insecure mail relay", "relaying denied", "relay denied", "relaying not allowed", "relay not allowed", "relay prohibited", "unable to relay", "not permitted to relay", "relaying mail to", "we do not relay", "relay traffic prohibited", "relay not permitted", "relaying is not", "not allowed to relay", "no relaying", "cannot relay", "can't relay", "open relay", "not in my list of allowed", "list of allowed hosts", "not accepting email for", "not accepting mail for", "not accept mail for", "cannot deliver mail for", "not handled here", "not hosted here", "not a local domain", "domain isn't in my list", "rcpthosts", "we do not serve", "not our domain", "not a domain we", "no such domain here", "#not local", "allowed to be relayed", "be relayed", "relaying disallowed", "relay disallowed", "relaying is disallowed", "relaying not permitted", "relay not authorized", "relaying not authorized"],
        RelayDenied,
        "The server refused to relay: the recipient domain is not one it accepts mail for, and this connection is not authorized to relay (no matching connector, IP or authentication).",
        POSTFIX,
    )
    .steps(&[CONNECTORS, HCW]),
    // Senders.
    TextRule::new(
        &["sender address rejected", "sender rejected", "sender verify", "sender denied", "invalid sender", "bad sender", "sender not allowed", "sender is not allowed", "sender blocked", "sender unknown", "unknown sender", "envelope sender", "must match authenticated", "does not match authenticated", "not owned by", "not authorized to send as", "send as", "sendas", "address is not verified", "identities failed", "is not verified", "sender domain", "reverse path", "return path", "return-path", "from address", "mail from address", "null sender", "empty sender", "null reverse-path", "must match"],
        SenderRejected,
        "The receiving server refused the sender address.",
        EXIM,
    ),
    // Bounces come from the null sender (RFC 5321 section 4.5.5); refusing them refuses that sender.
    TextRule::new(
        &["no bounces", "bounces not accepted", "bounces are not accepted", "bounces not allowed", "null sender", "empty sender", "empty envelope sender", "null reverse-path", "null reverse path"],
        SenderRejected,
        "The server refuses the null sender (MAIL FROM:<>) that bounces and delivery reports use.",
        RFC5321,
    )
    .at(MAIL.or_unknown()),
    TextRule::new(
        &["sender"],
        SenderRejected,
        "The receiving server refused the sender address.",
        EXIM,
    )
    .also(&["rejected", "denied", "invalid", "not valid", "not allowed", "not authorized", "not permitted", "refused", "unknown", "verification", "spoof", "blacklist", "blocklist", "reserved", "invalid tld"]),
    TextRule::new(
        &["i/o error", "io error", "no space left on device", "signing failed", "failed to queue", "internal error", "server error", "system error", "local error", "local problem", "system problem", "temporary failure", "temporary problem", "mail system full", "system full", "disk full", "out of memory", "error in processing", "command died", "command failed", "write error", "error writing", "database error", "backend not running", "backend error", "backend unavailable", "service unavailable", "service not available", "service currently unavailable", "service is unavailable", "service is not available", "service is currently unavailable", "currently unavailable", "out of service", "temporarily unavailable", "server busy", "too busy", "overloaded", "high load", "maintenance", "shutting down", "insufficient system storage", "resources temporarily", "configuration error", "configuration problem", "error processing", "processing error", "unexpected failure", "internal failure", "backend failure", "unexpected error", "storage error", "license expired", "licence expired", "license has expired", "licence has expired", "could not be saved", "could not save", "unable to save", "failed to save", "no data saved"],
        ServiceUnavailable,
        "The receiving server reports a temporary inability to provide service (load, maintenance or an internal error).",
        RFC5321,
    )
    .steps(&[SERVICE_HEALTH, RETRY]),
    // The server's own fault, in whatever words ("internal delivery error", "internal server
    // failure").
    TextRule::new(
        &["#internal"],
        ServiceUnavailable,
        "The receiving server reports an internal error of its own; the message itself was not judged.",
        RFC5321,
    )
    .also(&["error", "failure", "fault", "problem"])
    .steps(&[SERVICE_HEALTH, RETRY]),
    // A permission the sending account lacks is the receiving side's rule.
    TextRule::new(
        &["do not have permission", "don't have permission", "not have permission", "no permission to", "without permission", "not permitted to send", "not allowed to send"],
        PolicyOrTransportRule,
        "The receiving side's rules do not give this sender or account permission for this kind of mail (a per-user or per-group restriction).",
        RFC3463,
    )
    .steps(&[RULES, RECIPIENT_ADMIN]),
];

// ---- Words that lean one way -----------------------------------------------------------------

pub static WORDS: &[TextRule] = &[
    TextRule::new(
        &["#spam", "unsolicited", "#junk", "#uce", "bulk"],
        ReputationOrRateLimited,
        "The receiving server treats this sender or IP as a spam source (reputation).",
        RFC3463,
    )
    .at(SESSION),
    TextRule::new(
        &["reputation", "complaint", "suspicious", "abuse", "poor", "naughty"],
        ReputationOrRateLimited,
        "The receiving server is limiting or refusing this sender for its reputation.",
        RFC3463,
    ),
    TextRule::new(
        &["quota", "storage"],
        ReputationOrRateLimited,
        "A sending quota of the receiving service was exceeded.",
        RFC5321_QUOTA,
    )
    .at(MAIL),
    TextRule::new(
        &["quota", "storage", "#full"],
        MailboxDisabledOrFull,
        "The mailbox is over its storage quota.",
        RFC5321_QUOTA,
    )
    .unless(&["system storage", "submission", "system full"])
    .at(NOT_MAIL),
    TextRule::new(
        &["disabled", "inactive", "suspended", "deactivated", "#locked", "frozen"],
        MailboxDisabledOrFull,
        "The recipient mailbox is disabled or not accepting mail.",
        RFC3463,
    )
    .unless(&["auth", "tls", "login", "#ip", "command", "extension"])
    .at(RCPT.and(DATA).or_unknown()),
    TextRule::new(
        &["relay"],
        RelayDenied,
        "The server refused to relay for this connection.",
        POSTFIX,
    )
    .also(&["denied", "denies", "not ", "prohibit", "unable", "refus", "reject", "forbidden", "permission", "disallow"]),
    TextRule::new(
        &["starttls", "#tls", "#ssl", "encrypt", "secure"],
        TlsRequired,
        "The server requires TLS before this command.",
        RFC3207,
    )
    .also(&["required", "must", "first", "mandatory", "need"]),
    TextRule::new(
        &["certificate", "#tls", "#ssl", "cipher"],
        TlsFailed,
        "TLS could not be started on the server side (certificate or TLS configuration problem, or TLS unavailable).",
        RFC3207,
    ),
    TextRule::new(
        &["password", "credential", "login", "#auth"],
        AuthFailed,
        "The server rejected the authentication attempt.",
        RFC4954,
    )
    .at(AUTH.or_unknown()),
    TextRule::new(
        &["authenticat"],
        AuthRequired,
        "The server probably requires SMTP authentication for this.",
        RFC4954,
    )
    .at(NOT_AUTH),
    TextRule::new(
        &["too many", "limit", "exceeded", "rate"],
        ReputationOrRateLimited,
        "The receiving server is limiting this sender (rate or volume).",
        RFC3463,
    ),
    TextRule::new(
        &["#dns", "lookup", "#resolve", "unresolved", "resolution", "mx record"],
        DnsFailure,
        "A DNS lookup on the receiving side failed or found no record.",
        ONPREM,
    )
    .layer(Layer::Dns),
    TextRule::new(
        &["#virus", "content", "#mime", "message rejected", "message refused", "#mail rejected", "#mail refused", "not accepted", "filter", "message body", "body contains", "message format", "malicious", "#url", "rfc compliant", "rfc-compliant", "invalid message", "malformed message"],
        ContentRejected,
        "The receiving filter refused the message content.",
        RFC3463,
    )
    .unless(&["recipients"])
    .at(CONTENT_STAGES),
    TextRule::new(
        &["does not exist", "not exist", "unknown", "not found", "invalid", "no such", "not valid", "undeliverable"],
        RecipientUnknown,
        "The recipient address is probably not known to the receiving server.",
        RFC3463,
    )
    .at(RCPT),
    TextRule::new(
        &["sender", "does not exist", "not exist", "unknown", "not found", "invalid", "no such", "not valid", "not allowed", "denied", "rejected"],
        SenderRejected,
        "The receiving server refused the sender address given at MAIL FROM.",
        RFC5321,
    )
    .at(MAIL),
    TextRule::new(
        &["#loop", "unable to route", "no route", "routing", "connector", "next hop", "unable to connect", "connection refused", "connection timed out", "connection dropped", "connection was dropped", "dropped by remote", "connection reset", "lost connection", "timed out", "could not connect", "unreachable", "expired"],
        ConnectorOrRouting,
        "The message could not be routed or delivered to the next hop.",
        RFC3463,
    ),
    TextRule::new(
        &["blocked", "banned", "blacklisted"],
        IpBlocklisted,
        "At the greeting the server knows only the client's address, so a block there is a block of the sending IP.",
        DNSBL,
    )
    .unless(&["sender", "domain", "recipient"])
    .at(BANNER)
    .steps(&[DELIST_PUBLIC, PTR]),
    TextRule::new(
        &["policy", "does not accept", "not authorized", "not authorised", "prohibited", "not permitted", "restricted", "administrative", "forbidden", "#rule", "not welcome", "preferences", "refused by", "rejected by", "does not want", "doesn't want"],
        PolicyOrTransportRule,
        "A policy on the receiving side refused the message (access rule, transport rule or restriction).",
        RFC3463,
    )
    .steps(&[RULES, RECIPIENT_ADMIN]),
    TextRule::new(
        &["temporarily denied", "temporarily rejected", "temporarily refused", "temporary rejected"],
        Greylisted,
        "A transient refusal of the envelope without a reason: most often greylisting, which accepts a retry after a few minutes.",
        POSTGREY,
    )
    // Any word of another cause keeps it out: the refusal is then that cause's.
    .unless(&["quota", "rate", "too many", "limit", "volume", "excessive", "spam", "policy", "dns", "lookup", "resolv", "spf", "dkim", "dmarc", "error", "fail", "unavailable", "busy", "load", "disk", "storage", "resource", "full", "connection", "mailbox", "relay", "auth", "tls", "block", "listed", "reputation", "not found", "unknown", "invalid"])
    .only(Classes::Transient)
    .at(MAIL.and(RCPT)),
    TextRule::new(
        &["not allowed", "denied", "rejected", "refused", "not accepted", "blocked"],
        PolicyOrTransportRule,
        "The server refused the greeting by an access rule (the client's name or address is on its deny list).",
        RFC3463,
    )
    .at(HELO)
    .steps(&[RULES]),
    TextRule::new(
        &["try again", "try later", "retry", "temporar", "not available", "unavailable", "busy", "closing transmission channel"],
        ServiceUnavailable,
        "The receiving server reports a temporary inability to provide service.",
        RFC5321,
    )
    .only(Classes::Transient)
    .steps(&[SERVICE_HEALTH, RETRY]),
    TextRule::new(
        &["syntax", "incomplete data", "unrecognized", "unrecognised", "not recognized", "not implemented", "unimplemented", "not supported", "unsupported", "line too long", "pipelining", "protocol", "invalid command", "unknown command", "command not", "parameter", "argument", "expected", "#bdat", "chunking", "binarymime", "xclient", "xforward", "#notify", "orcpt", "envid", "#dsn"],
        ProtocolError,
        "The server did not accept the command as valid SMTP at this point.",
        RFC5321,
    ),
];

/// Bare refusal words: they say the server refused, not why. They never decide; they only
/// name the most common reading as the runner-up of an `other`.
pub static VAGUE: &[TextRule] = &[TextRule::new(
    &[
        "denied",
        "rejected",
        "refused",
        "not allowed",
        "blocked",
        "access",
        "failure",
        "failed",
    ],
    PolicyOrTransportRule,
    "The server refused without saying why; an access rule or policy is the most common reason.",
    RFC3463,
)
.steps(&[RULES, RECIPIENT_ADMIN])];

/// Where each cause is answered: the stages at which a server that has that reason says so
/// (RFC 5321 section 3.3: recipients are judged at RCPT, the message at end of data, the
/// sender at MAIL; RFC 3207 and RFC 4954 for STARTTLS and AUTH). A single word there is
/// "probably" its cause; elsewhere, or with the stage unknown, it is a guess.
pub static HOME: &[(super::Category, Stages)] = &[
    (RecipientUnknown, RCPT.and(DATA)),
    (MailboxDisabledOrFull, RCPT.and(DATA)),
    (SenderRejected, MAIL),
    (RelayDenied, RCPT),
    (AuthRequired, MAIL.and(RCPT).and(AUTH).and(DATA)),
    (AuthFailed, AUTH),
    (TlsRequired, HELO.and(MAIL).and(RCPT).and(AUTH).and(DATA)),
    (TlsFailed, TLS),
    (IpBlocklisted, SESSION.and(DATA)),
    (ReputationOrRateLimited, SESSION.and(DATA)),
    (Greylisted, MAIL.and(RCPT).and(DATA)),
    (PolicyOrTransportRule, SESSION.and(DATA)),
    (SpfDkimDmarcFailure, MAIL.and(RCPT).and(DATA)),
    (MessageTooLarge, MAIL.and(DATA)),
    (ContentRejected, DATA),
    (DnsFailure, SESSION.and(DATA)),
    (ConnectorOrRouting, SESSION.and(DATA)),
    (ServiceUnavailable, Stages::ANY),
    (ProtocolError, Stages::ANY),
];

/// True when `stage` is one where `category` is normally answered (see `HOME`).
pub fn at_home(category: super::Category, stage: Option<Stage>) -> bool {
    HOME.iter()
        .find(|(c, _)| *c == category)
        .is_some_and(|(_, stages)| stage.is_some() && stages.contains(stage))
}
