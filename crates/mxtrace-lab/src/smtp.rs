//! The lab's SMTP servers: one `RoleServer` per endpoint of the delivery scenarios (EOP front
//! end, on-premises Exchange, third-party Postfix), serving many connections at once with the
//! replies those systems really give, and with at most one fault of the runbooks' root-cause
//! table (ARCHITECTURE.md "Sources") switched on. The network-level faults (connector offline = refused,
//! firewall drop = connect timeout) are `refused_listener_addr` and `Blackhole`.
//!
//! Bounds, because clients are untrusted even in a lab: at most `Limits::max_sessions` sessions,
//! each command line at most 4 KiB and read within 30 s, a session at most 5 min, a message at
//! most 1 MiB (counted, never stored), at most 20 protocol errors. Only 127.0.0.0/8 is served.
//! Messages are not kept: a capped log of `SessionRecord`s is all that remains.

use crate::check_loopback;
use crate::pki::CertValidity;
use mxtrace_proto::smtp::line::{take_line, LineTooLong};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::TlsAcceptor;

/// Which system an endpoint plays; decides the wording of every reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Exchange Online Protection front end (`*.mail.protection.outlook.com`): scenario A hop 1,
    /// B hop 2.
    EopFrontEnd,
    /// On-premises Exchange 2016/2019 (Default Frontend receive connector): scenario B hop 1,
    /// D hop 1.
    OnPremExchange,
    /// A third-party Postfix MX: scenario C hop 1, D hop 2.
    ThirdPartyPostfix,
}

/// One root cause of stopped mail flow (ARCHITECTURE.md "Sources"),
/// played at the SMTP level. The reply texts and where they come from are in `FAULT_REPLIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// "Transport rule rejecting all": a rule with broad conditions and a reject action.
    /// Exchange/EOP reject at end of data (rules run on the message); Postfix's equivalent, an
    /// access(5) REJECT, at RCPT. A probe needs `--data` to see the Exchange form.
    TransportRuleRejectAll,
    /// "Mailbox not licensed/provisioned": configured recipients are unknown, with the
    /// role's unknown-recipient wording (EOP 5.4.1, Exchange 5.1.10, Postfix 5.1.1).
    RecipientNotProvisioned,
    /// "Directory sync stopped": on EOP the remote routing addresses
    /// (`user@tenant.mail.onmicrosoft.com`, scenario B hop 2) are unknown (5.4.1); on the other
    /// roles every configured recipient is.
    DirSyncStale,
    /// The sending IP is on the receiver's block list (scenario A troubleshooting step 3 of
    /// Microsoft's "Basic mail flow troubleshooting in Office 365"; EOP 5.7.606-649).
    IpBlocklisted,
    /// The receiver throttles the sending IP (EOP 4.7.500-699, Postfix anvil, Exchange
    /// MessageRateLimit).
    Throttling,
    /// "Hybrid connector auth errors": EOP cannot attribute the connection to a tenant
    /// (5.7.64 TenantAttribution ATTR36) at every RCPT; on the other roles the certificate/IP
    /// relay permission no longer matches, so relayed recipients get the relay-denied reply.
    AttributionFailure,
    /// "550 5.7.1 TLS required": MAIL before STARTTLS is refused (same as
    /// `RoleConfig::require_tls`).
    TlsRequired,
    /// "Connector certificate expiry": the server presents an expired certificate. Chooses
    /// the certificate only (`Fault::cert_validity`).
    CertExpired,
    /// The certificate does not carry the name the client (or connector) expects. Chooses the
    /// certificate only.
    CertWrongName,
}

impl Fault {
    /// The server certificate this fault calls for; the lab builder passes it to
    /// `LabPki::server_config`.
    pub fn cert_validity(fault: Option<Fault>) -> CertValidity {
        match fault {
            Some(Fault::CertExpired) => CertValidity::Expired,
            Some(Fault::CertWrongName) => CertValidity::WrongName,
            _ => CertValidity::Valid,
        }
    }
}

/// Resource bounds of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sessions served at once; more get a 421 and are closed.
    pub max_sessions: usize,
    /// Deadline for each command line (and each read inside DATA/BDAT, and the TLS handshake).
    pub command_timeout: Duration,
    /// Deadline for a whole session.
    pub session_cap: Duration,
    /// Longest command line, CRLF excluded.
    pub max_line: usize,
    /// Largest message; bigger ones are read, counted, discarded and refused with 552.
    pub max_message: u64,
    /// Recipients per transaction.
    pub max_recipients: usize,
    /// Protocol errors (5xx to bad commands) before the server closes the session.
    pub max_errors: u32,
    /// Entries kept in the session log.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 64,
            command_timeout: Duration::from_secs(30),
            session_cap: Duration::from_secs(300),
            max_line: 4096,
            max_message: 1024 * 1024,
            max_recipients: 100,
            max_errors: 20,
            max_records: 1000,
        }
    }
}

/// What one endpoint is and how it behaves.
#[derive(Debug, Clone)]
pub struct RoleConfig {
    pub role: Role,
    /// Where to listen: 127.0.0.0/8 only (port 0 picks one).
    pub addr: SocketAddr,
    /// The name in the banner and EHLO reply (for EOP, the front end's name, e.g.
    /// `DM3NAM03FT051.mail.protection.outlook.com`).
    pub hostname: String,
    /// Domains this server accepts mail for; anything else is relay.
    pub accepted_domains: Vec<String>,
    /// Valid recipients (`local@domain`); empty accepts every address of an accepted domain.
    pub recipients: Vec<String>,
    /// STARTTLS is offered when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// MAIL before STARTTLS is refused (a receive connector or partner connector forcing TLS).
    pub require_tls: bool,
    /// Relay is allowed for a client presenting a certificate (issued by the lab CA) with this
    /// name as CN or SAN: an inbound/receive connector that attributes by certificate. Needs a
    /// `tls` config built with `LabPki::server_config_with_client_auth`.
    pub relay_client_cert_name: Option<String>,
    /// Relay is allowed for these client addresses: a connector that attributes by IP.
    pub relay_allowed_ips: Vec<IpAddr>,
    pub fault: Option<Fault>,
    pub limits: Limits,
}

impl RoleConfig {
    /// A config with no domains, no TLS, no fault and default limits.
    pub fn new(role: Role, addr: SocketAddr, hostname: &str) -> RoleConfig {
        RoleConfig {
            role,
            addr,
            hostname: hostname.to_string(),
            accepted_domains: Vec::new(),
            recipients: Vec::new(),
            tls: None,
            require_tls: false,
            relay_client_cert_name: None,
            relay_allowed_ips: Vec::new(),
            fault: None,
            limits: Limits::default(),
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Quit,
    /// The client closed (or reset) the connection.
    ClientClosed,
    /// No complete command within `command_timeout`, or a write stalled.
    Timeout,
    /// The session reached `session_cap`.
    SessionCap,
    LineTooLong,
    TooManyErrors,
    /// Bytes pipelined after STARTTLS (a command-injection attempt): refused, closed.
    PipelinedAfterStartTls,
    TlsHandshakeFailed,
    /// The server closed it on purpose (a 421 fault, a malformed BDAT).
    ClosedByServer,
}

/// What the server remembers of one session (the message itself is never kept).
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub client: SocketAddr,
    pub ehlo: Option<String>,
    /// Reverse-path of the last transaction that got as far as MAIL.
    pub mail_from: Option<String>,
    /// Recipients accepted in that transaction.
    pub rcpts: Vec<String>,
    /// Bytes of the messages accepted (DATA or BDAT).
    pub data_bytes: u64,
    pub messages: u32,
    pub tls: bool,
    /// Subject of the client certificate presented in the TLS handshake.
    pub client_cert_subject: Option<String>,
    pub commands: u32,
    /// First line of the last reply sent.
    pub last_reply: Option<String>,
    pub end: SessionEnd,
}

// ---- Reply texts ------------------------------------------------------------------------------

/// Every reply a role gives outside faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Banner,
    Hello,
    SenderOk,
    RecipientOk,
    StartData,
    Queued,
    ChunkOk,
    Reset,
    Noop,
    Quit,
    StartTlsGo,
    Unknown,
    NeedEhlo,
    NeedMail,
    NeedRcpt,
    NestedMail,
    BadSyntax,
    BadAddress,
    RecipientUnknown,
    RelayDenied,
    TlsRequired,
    TooManyRecipients,
    TooLarge,
    LineTooLong,
    Timeout,
    TooManyErrors,
    Busy,
    PipelinedAfterStartTls,
}

struct Row {
    role: Role,
    text: Text,
    /// Placeholders: {host} {fe} (EOP front-end id) {ip} {date} {id} {internal} {rcpt}
    /// {bytes}.
    template: &'static str,
    source: &'static str,
}

const RFC5321: &str = "RFC 5321 4.2, 4.3.2 (reply codes and sequencing)";
const RFC3207: &str = "RFC 3207 section 4 (STARTTLS reply 220, refusals 501/454)";
const RFC3030: &str = "RFC 3030 (CHUNKING: BDAT replies)";
const MS_541: &str =
    "Microsoft Learn: Fix NDR error code 5.4.1 (Directory-Based Edge Blocking), AS(201806281) as in \
     EOP rejections reported by senders";
const MS_5764: &str =
    "Microsoft Learn: \"550 5.7.64 TenantAttribution; Relay Access Denied SMTP\" \
     (relay-access-denied-smtp, KB 3212877); ATTR36 token as EOP logs it";
const MS_DELIST: &str =
    "Microsoft Learn: delist portal (5.7.606-649 banned sending IP; text as EOP \
     sends it at RCPT, sender.office.com + LinkID=526655)";
const MS_THROTTLE: &str = "Microsoft Learn: NDRs in Exchange Online, 4.7.500-699 (sending IP \
     throttled); EOP text 'Server busy. Please try again later from [IP]. (S77719)'";
const MS_RULES: &str = "Microsoft Learn: mail flow rule actions (RejectMessage, default enhanced \
     code 5.7.1); reply text 'TRANSPORT.RULES.RejectMessage; the message was rejected by \
     organization policy' as Exchange returns it";
const MS_TLS: &str = "Exchange receive connector with RequireTLS: '451 5.7.3 STARTTLS is required \
     to send mail' (as reported in EXO queue errors, Microsoft Tech Community)";
const EXCHANGE: &str =
    "Exchange Server 2016/2019 SMTP receive protocol replies (telnet session as \
     in Basic mail flow troubleshooting in Office 365, C step 7)";
const EXCHANGE_NDR: &str = "Microsoft Learn: NDRs in Exchange Online/Server (5.1.10 \
     RESOLVER.ADR.RecipientNotFound, 5.7.54 unable to relay)";
const EXCHANGE_LIMITS: &str = "Exchange receive connector limits: MessageRateLimit ('Message \
     submission rate for this client has exceeded the configured limit'), \
     MaxInboundConnection ('maximum number of concurrent server connections')";
const EXCHANGE_BLOCKLIST: &str = "Microsoft Learn: Add-IPBlockListProvider -RejectionResponse \
     ('Source IP address is listed at the ... block list provider')";
const POSTFIX: &str = "Postfix smtpd(8) replies (postfix/src/smtpd/smtpd.c)";
const POSTFIX_ACCESS: &str =
    "Postfix smtpd_recipient_restrictions: reject_unverified/unlisted recipient, \
     reject_unauth_destination, access(5) REJECT (554 5.7.1 Access denied)";
const POSTFIX_RBL: &str = "Postfix postconf(5) default_rbl_reply with reject_rbl_client \
     zen.spamhaus.org";
const POSTFIX_ANVIL: &str = "Postfix anvil(8) smtpd_client_connection_count_limit reply at connect";
const POSTFIX_TLS: &str = "Postfix TLS_README smtpd_tls_security_level = encrypt";

use Role::{EopFrontEnd as Eop, OnPremExchange as Exch, ThirdPartyPostfix as Pfx};

#[rustfmt::skip]
static REPLIES: &[Row] = &[
    // EOP front end.
    Row { role: Eop, text: Text::Banner, template: "220 {host} Microsoft ESMTP MAIL Service ready at {date} [{id}]", source: EXCHANGE },
    Row { role: Eop, text: Text::Hello, template: "{host} Hello [{ip}]", source: EXCHANGE },
    Row { role: Eop, text: Text::SenderOk, template: "250 2.1.0 Sender OK", source: "Basic mail flow troubleshooting in Office 365, C step 7" },
    Row { role: Eop, text: Text::RecipientOk, template: "250 2.1.5 Recipient OK", source: "Basic mail flow troubleshooting in Office 365, C step 7" },
    Row { role: Eop, text: Text::StartData, template: "354 Start mail input; end with <CRLF>.<CRLF>", source: "Basic mail flow troubleshooting in Office 365, C step 7" },
    Row { role: Eop, text: Text::Queued, template: "250 2.6.0 <{id}@{host}> [InternalId={internal}, Hostname={host}] Queued mail for delivery", source: EXCHANGE },
    Row { role: Eop, text: Text::ChunkOk, template: "250 2.0.0 BDAT accepted", source: RFC3030 },
    Row { role: Eop, text: Text::Reset, template: "250 2.0.0 Resetting", source: EXCHANGE },
    Row { role: Eop, text: Text::Noop, template: "250 2.0.0 OK", source: EXCHANGE },
    Row { role: Eop, text: Text::Quit, template: "221 2.0.0 Service closing transmission channel", source: EXCHANGE },
    Row { role: Eop, text: Text::StartTlsGo, template: "220 2.0.0 SMTP server ready", source: EXCHANGE },
    Row { role: Eop, text: Text::Unknown, template: "500 5.3.3 Unrecognized command", source: EXCHANGE },
    Row { role: Eop, text: Text::NeedEhlo, template: "503 5.5.2 Send hello first", source: EXCHANGE },
    Row { role: Eop, text: Text::NeedMail, template: "503 5.5.2 Need mail command", source: EXCHANGE },
    Row { role: Eop, text: Text::NeedRcpt, template: "503 5.5.2 Need rcpt command", source: EXCHANGE },
    Row { role: Eop, text: Text::NestedMail, template: "503 5.5.2 Sender already specified", source: EXCHANGE },
    Row { role: Eop, text: Text::BadSyntax, template: "501 5.5.4 Invalid arguments", source: EXCHANGE },
    Row { role: Eop, text: Text::BadAddress, template: "501 5.1.3 Invalid address", source: EXCHANGE },
    Row { role: Eop, text: Text::RecipientUnknown, template: "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [{fe}]", source: MS_541 },
    Row { role: Eop, text: Text::RelayDenied, template: "550 5.7.64 TenantAttribution; Relay Access Denied [{fe}]", source: MS_5764 },
    Row { role: Eop, text: Text::TlsRequired, template: "451 5.7.3 STARTTLS is required to send mail [{fe}]", source: MS_TLS },
    Row { role: Eop, text: Text::TooManyRecipients, template: "452 4.5.3 Too many recipients", source: EXCHANGE },
    Row { role: Eop, text: Text::TooLarge, template: "552 5.3.4 Message size exceeds fixed maximum message size", source: EXCHANGE },
    Row { role: Eop, text: Text::LineTooLong, template: "500 5.5.0 Line too long", source: RFC5321 },
    Row { role: Eop, text: Text::Timeout, template: "451 4.7.0 Timeout waiting for client input [{fe}]", source: EXCHANGE },
    Row { role: Eop, text: Text::TooManyErrors, template: "421 4.7.0 Too many errors on this connection, closing transmission channel", source: EXCHANGE },
    Row { role: Eop, text: Text::Busy, template: "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel", source: EXCHANGE_LIMITS },
    Row { role: Eop, text: Text::PipelinedAfterStartTls, template: "554 5.5.1 Error: improper command pipelining after STARTTLS", source: RFC3207 },
    // On-premises Exchange 2016/2019.
    Row { role: Exch, text: Text::Banner, template: "220 {host} Microsoft ESMTP MAIL Service ready at {date}", source: EXCHANGE },
    Row { role: Exch, text: Text::Hello, template: "{host} Hello [{ip}]", source: EXCHANGE },
    Row { role: Exch, text: Text::SenderOk, template: "250 2.1.0 Sender OK", source: EXCHANGE },
    Row { role: Exch, text: Text::RecipientOk, template: "250 2.1.5 Recipient OK", source: EXCHANGE },
    Row { role: Exch, text: Text::StartData, template: "354 Start mail input; end with <CRLF>.<CRLF>", source: EXCHANGE },
    Row { role: Exch, text: Text::Queued, template: "250 2.6.0 <{id}@{host}> [InternalId={internal}, Hostname={host}] Queued mail for delivery", source: EXCHANGE },
    Row { role: Exch, text: Text::ChunkOk, template: "250 2.0.0 BDAT accepted", source: RFC3030 },
    Row { role: Exch, text: Text::Reset, template: "250 2.0.0 Resetting", source: EXCHANGE },
    Row { role: Exch, text: Text::Noop, template: "250 2.0.0 OK", source: EXCHANGE },
    Row { role: Exch, text: Text::Quit, template: "221 2.0.0 Service closing transmission channel", source: EXCHANGE },
    Row { role: Exch, text: Text::StartTlsGo, template: "220 2.0.0 SMTP server ready", source: EXCHANGE },
    Row { role: Exch, text: Text::Unknown, template: "500 5.3.3 Unrecognized command", source: EXCHANGE },
    Row { role: Exch, text: Text::NeedEhlo, template: "503 5.5.2 Send hello first", source: EXCHANGE },
    Row { role: Exch, text: Text::NeedMail, template: "503 5.5.2 Need mail command", source: EXCHANGE },
    Row { role: Exch, text: Text::NeedRcpt, template: "503 5.5.2 Need rcpt command", source: EXCHANGE },
    Row { role: Exch, text: Text::NestedMail, template: "503 5.5.2 Sender already specified", source: EXCHANGE },
    Row { role: Exch, text: Text::BadSyntax, template: "501 5.5.4 Invalid arguments", source: EXCHANGE },
    Row { role: Exch, text: Text::BadAddress, template: "501 5.1.3 Invalid address", source: EXCHANGE },
    Row { role: Exch, text: Text::RecipientUnknown, template: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", source: EXCHANGE_NDR },
    Row { role: Exch, text: Text::RelayDenied, template: "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain", source: EXCHANGE_NDR },
    Row { role: Exch, text: Text::TlsRequired, template: "451 5.7.3 STARTTLS is required to send mail", source: MS_TLS },
    Row { role: Exch, text: Text::TooManyRecipients, template: "452 4.5.3 Too many recipients", source: EXCHANGE },
    Row { role: Exch, text: Text::TooLarge, template: "552 5.3.4 Message size exceeds fixed maximum message size", source: EXCHANGE },
    Row { role: Exch, text: Text::LineTooLong, template: "500 5.5.0 Line too long", source: RFC5321 },
    Row { role: Exch, text: Text::Timeout, template: "451 4.7.0 Timeout waiting for client input", source: EXCHANGE },
    Row { role: Exch, text: Text::TooManyErrors, template: "421 4.7.0 Too many errors on this connection, closing transmission channel", source: EXCHANGE },
    Row { role: Exch, text: Text::Busy, template: "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel", source: EXCHANGE_LIMITS },
    Row { role: Exch, text: Text::PipelinedAfterStartTls, template: "554 5.5.1 Error: improper command pipelining after STARTTLS", source: RFC3207 },
    // Third-party Postfix.
    Row { role: Pfx, text: Text::Banner, template: "220 {host} ESMTP Postfix (Debian/GNU)", source: POSTFIX },
    Row { role: Pfx, text: Text::Hello, template: "{host}", source: POSTFIX },
    Row { role: Pfx, text: Text::SenderOk, template: "250 2.1.0 Ok", source: POSTFIX },
    Row { role: Pfx, text: Text::RecipientOk, template: "250 2.1.5 Ok", source: POSTFIX },
    Row { role: Pfx, text: Text::StartData, template: "354 End data with <CR><LF>.<CR><LF>", source: POSTFIX },
    Row { role: Pfx, text: Text::Queued, template: "250 2.0.0 Ok: queued as {id}", source: POSTFIX },
    Row { role: Pfx, text: Text::ChunkOk, template: "250 2.0.0 Ok: {bytes} bytes", source: POSTFIX },
    Row { role: Pfx, text: Text::Reset, template: "250 2.0.0 Ok", source: POSTFIX },
    Row { role: Pfx, text: Text::Noop, template: "250 2.0.0 Ok", source: POSTFIX },
    Row { role: Pfx, text: Text::Quit, template: "221 2.0.0 Bye", source: POSTFIX },
    Row { role: Pfx, text: Text::StartTlsGo, template: "220 2.0.0 Ready to start TLS", source: POSTFIX },
    Row { role: Pfx, text: Text::Unknown, template: "502 5.5.2 Error: command not recognized", source: POSTFIX },
    Row { role: Pfx, text: Text::NeedEhlo, template: "503 5.5.1 Error: send HELO/EHLO first", source: POSTFIX },
    Row { role: Pfx, text: Text::NeedMail, template: "503 5.5.1 Error: need MAIL command", source: POSTFIX },
    Row { role: Pfx, text: Text::NeedRcpt, template: "554 5.5.1 Error: no valid recipients", source: POSTFIX },
    Row { role: Pfx, text: Text::NestedMail, template: "503 5.5.1 Error: nested MAIL command", source: POSTFIX },
    Row { role: Pfx, text: Text::BadSyntax, template: "501 5.5.4 Syntax error in parameters or arguments", source: POSTFIX },
    Row { role: Pfx, text: Text::BadAddress, template: "501 5.1.3 Bad recipient address syntax", source: POSTFIX },
    Row { role: Pfx, text: Text::RecipientUnknown, template: "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table", source: POSTFIX_ACCESS },
    Row { role: Pfx, text: Text::RelayDenied, template: "554 5.7.1 <{rcpt}>: Relay access denied", source: POSTFIX_ACCESS },
    Row { role: Pfx, text: Text::TlsRequired, template: "530 5.7.0 Must issue a STARTTLS command first", source: POSTFIX_TLS },
    Row { role: Pfx, text: Text::TooManyRecipients, template: "452 4.5.3 Error: too many recipients", source: POSTFIX },
    Row { role: Pfx, text: Text::TooLarge, template: "552 5.3.4 Message size exceeds fixed limit", source: POSTFIX },
    Row { role: Pfx, text: Text::LineTooLong, template: "500 5.5.0 Line too long", source: RFC5321 },
    Row { role: Pfx, text: Text::Timeout, template: "421 4.4.2 {host} Error: timeout exceeded", source: POSTFIX },
    Row { role: Pfx, text: Text::TooManyErrors, template: "421 4.7.0 {host} Error: too many errors", source: POSTFIX },
    Row { role: Pfx, text: Text::Busy, template: "421 4.7.0 {host} Error: too many connections from {ip}", source: POSTFIX_ANVIL },
    Row { role: Pfx, text: Text::PipelinedAfterStartTls, template: "554 5.5.1 Error: improper command pipelining after STARTTLS", source: POSTFIX },
];

/// EHLO keywords per role (after the greeting line). STARTTLS is listed only when TLS is
/// configured and not yet active; SIZE is the real product's, not the lab's cap.
#[rustfmt::skip]
static EHLO_KEYWORDS: &[(Role, &[&str], &str)] = &[
    (Eop, &["SIZE 157286400", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "STARTTLS", "8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8"],
        "EHLO reply of *.mail.protection.outlook.com (Basic mail flow troubleshooting in Office 365, C step 7 lists the same keywords)"),
    (Exch, &["SIZE 37748736", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "STARTTLS", "8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8"],
        "Exchange 2016/2019 Default Frontend receive connector (AUTH/X-EXPS left out: the lab has no AUTH)"),
    (Pfx, &["PIPELINING", "SIZE 10240000", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"],
        "Postfix 3.x smtpd defaults (message_size_limit 10240000; VRFY/ETRN left out: not implemented)"),
];

/// Where in the session a fault's reply is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Instead of the greeting; the server then closes.
    Banner,
    Mail,
    Rcpt,
    EndOfData,
}

struct FaultRow {
    role: Role,
    fault: Fault,
    at: At,
    template: &'static str,
    source: &'static str,
}

#[rustfmt::skip]
static FAULT_REPLIES: &[FaultRow] = &[
    FaultRow { role: Eop, fault: Fault::TransportRuleRejectAll, at: At::EndOfData, template: "550 5.7.1 TRANSPORT.RULES.RejectMessage; the message was rejected by organization policy", source: MS_RULES },
    FaultRow { role: Eop, fault: Fault::IpBlocklisted, at: At::Rcpt, template: "550 5.7.606 Access denied, banned sending IP [{ip}]. To request removal from this list please visit https://sender.office.com/ and follow the directions. For more information please go to http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430) [{fe}]", source: MS_DELIST },
    FaultRow { role: Eop, fault: Fault::Throttling, at: At::Mail, template: "451 4.7.500 Server busy. Please try again later from [{ip}]. (S77719) [{fe}]", source: MS_THROTTLE },
    FaultRow { role: Eop, fault: Fault::AttributionFailure, at: At::Rcpt, template: "550 5.7.64 TenantAttribution; Relay Access Denied ATTR36 [{fe}]", source: MS_5764 },
    FaultRow { role: Exch, fault: Fault::TransportRuleRejectAll, at: At::EndOfData, template: "550 5.7.1 TRANSPORT.RULES.RejectMessage; the message was rejected by organization policy", source: MS_RULES },
    FaultRow { role: Exch, fault: Fault::IpBlocklisted, at: At::Rcpt, template: "550 5.7.1 Source IP address is listed at the zen.spamhaus.org block list provider", source: EXCHANGE_BLOCKLIST },
    FaultRow { role: Exch, fault: Fault::Throttling, at: At::Mail, template: "421 4.4.2 Message submission rate for this client has exceeded the configured limit", source: EXCHANGE_LIMITS },
    FaultRow { role: Pfx, fault: Fault::TransportRuleRejectAll, at: At::Rcpt, template: "554 5.7.1 <{rcpt}>: Recipient address rejected: Access denied", source: POSTFIX_ACCESS },
    FaultRow { role: Pfx, fault: Fault::IpBlocklisted, at: At::Rcpt, template: "554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/{ip}", source: POSTFIX_RBL },
    FaultRow { role: Pfx, fault: Fault::Throttling, at: At::Banner, template: "421 4.7.0 {host} Error: too many connections from {ip}", source: POSTFIX_ANVIL },
];

/// One row of the reply knowledge, for `lab serve` and documentation.
#[derive(Debug, Clone)]
pub struct ReplyInfo {
    pub role: Role,
    /// What the reply is for: a `Text` name, `EHLO keywords`, or `fault <Fault> at <stage>`.
    pub what: String,
    pub template: &'static str,
    pub source: &'static str,
}

/// The reply texts of every role with their sources.
pub fn reply_table() -> Vec<ReplyInfo> {
    let plain = REPLIES.iter().map(|r| ReplyInfo {
        role: r.role,
        what: format!("{:?}", r.text),
        template: r.template,
        source: r.source,
    });
    let faults = FAULT_REPLIES.iter().map(|r| ReplyInfo {
        role: r.role,
        what: format!("fault {:?} at {:?}", r.fault, r.at),
        template: r.template,
        source: r.source,
    });
    let ehlo = EHLO_KEYWORDS.iter().map(|(role, kw, source)| ReplyInfo {
        role: *role,
        what: format!("EHLO keywords: {}", kw.join(", ")),
        template: "",
        source,
    });
    plain.chain(faults).chain(ehlo).collect()
}

fn template(role: Role, text: Text) -> &'static str {
    REPLIES
        .iter()
        .find(|r| r.role == role && r.text == text)
        .map(|r| r.template)
        // Every pair is in the table (unit test); a generic reply keeps this total anyway.
        .unwrap_or("451 4.3.0 Local error in processing")
}

fn fault_row(role: Role, fault: Option<Fault>, at: At) -> Option<&'static FaultRow> {
    let fault = fault?;
    FAULT_REPLIES
        .iter()
        .find(|r| r.role == role && r.fault == fault && r.at == at)
}

/// Values for the placeholders of one reply.
struct Vars<'a> {
    host: &'a str,
    ip: IpAddr,
    id: &'a str,
    rcpt: &'a str,
    bytes: u64,
}

fn render(t: &str, v: &Vars<'_>) -> String {
    let mut s = t.to_string();
    if s.contains("{fe}") {
        s = s.replace("{fe}", &eop_frontend(v.host));
    }
    if s.contains("{date}") {
        s = s.replace("{date}", &mxtrace_proto::date::rfc5322(SystemTime::now()));
    }
    s.replace("{host}", v.host)
        .replace("{ip}", &v.ip.to_string())
        .replace("{internal}", &internal_id(v.id))
        .replace("{id}", v.id)
        .replace("{rcpt}", v.rcpt)
        .replace("{bytes}", &v.bytes.to_string())
}

/// The bracketed server name EOP appends to its rejections: `DM3NAM03FT051.mail.protection.
/// outlook.com` -> `DM3NAM03FT051.eop-NAM03.prod.protection.outlook.com`.
fn eop_frontend(host: &str) -> String {
    let label = host.split('.').next().unwrap_or(host);
    let region = label
        .get(3..8)
        .filter(|r| r.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("NAM03");
    format!("{label}.eop-{region}.prod.protection.outlook.com")
}

fn internal_id(id: &str) -> String {
    let n = u64::from_str_radix(id.get(..8).unwrap_or("1"), 16).unwrap_or(1);
    (n % 100_000_000_000 + 1).to_string()
}

/// A deterministic-looking hex id (queue ids, banner session ids): splitmix64 of a counter.
fn hex_id(seed: u64, len: usize) -> String {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let s = format!("{z:016X}");
    s.get(..len.min(16)).unwrap_or(&s).to_string()
}

// ---- Server -----------------------------------------------------------------------------------

/// Starts role servers.
pub struct RoleServer;

struct Shared {
    cfg: RoleConfig,
    accepted: Vec<String>,
    recipients: Vec<String>,
    acceptor: Option<TlsAcceptor>,
    records: Mutex<VecDeque<SessionRecord>>,
    finished: watch::Sender<u64>,
    seq: AtomicU64,
    seed: u64,
}

impl Shared {
    fn next_id(&self, len: usize) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        hex_id(self.seed ^ n.wrapping_mul(0x0100_0000_01B3), len)
    }

    fn push_record(&self, rec: SessionRecord) {
        {
            let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
            records.push_back(rec);
            while records.len() > self.cfg.limits.max_records {
                records.pop_front();
            }
        }
        self.finished.send_modify(|n| *n += 1);
    }
}

/// A server that runs until `shutdown` (or until it is dropped).
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl RoleServer {
    /// Binds `config.addr` (127.0.0.0/8 only) and serves until the returned handle is shut
    /// down or dropped.
    pub async fn start(config: RoleConfig) -> io::Result<RunningServer> {
        check_loopback(config.addr.ip())?;
        // The host name goes into every reply: no CR/LF/space (reply injection), not empty.
        if config.hostname.is_empty()
            || config.hostname.len() > 253
            || config
                .hostname
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad host name {:?}", config.hostname),
            ));
        }
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(addr.port());
        let shared = Arc::new(Shared {
            accepted: config
                .accepted_domains
                .iter()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            recipients: config
                .recipients
                .iter()
                .map(|r| r.to_ascii_lowercase())
                .collect(),
            acceptor: config.tls.clone().map(TlsAcceptor::from),
            records: Mutex::new(VecDeque::new()),
            finished: watch::channel(0).0,
            seq: AtomicU64::new(1),
            seed,
            cfg: config,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        Ok(RunningServer {
            addr,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The session log, oldest first (sessions still running are not in it yet).
    pub fn sessions(&self) -> Vec<SessionRecord> {
        let records = self
            .shared
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        records.iter().cloned().collect()
    }

    /// Sessions finished since start (the log keeps only the last `max_records`).
    pub fn finished_sessions(&self) -> u64 {
        *self.shared.finished.borrow()
    }

    /// Waits until `n` sessions have finished, at most `within`; true when they have.
    pub async fn wait_for_sessions(&self, n: u64, within: Duration) -> bool {
        let mut rx = self.shared.finished.subscribe();
        let done = matches!(timeout(within, rx.wait_for(|c| *c >= n)).await, Ok(Ok(_)));
        done
    }

    /// Stops accepting, ends the running sessions and waits (at most 5 s) for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(mut task) = self.task.take() {
            if timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.cfg.limits.max_sessions));
    // Dropping the set (when this task ends or is aborted) aborts every session.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let shared = shared.clone();
                        sessions.spawn(async move {
                            serve_session(shared, tcp, peer).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        // Full: say so without waiting (a non-blocking write) and close.
                        let vars = Vars { host: &shared.cfg.hostname, ip: peer.ip(), id: "", rcpt: "", bytes: 0 };
                        let line = render(template(shared.cfg.role, Text::Busy), &vars) + "\r\n";
                        let _ = tcp.try_write(line.as_bytes());
                    }
                },
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    sessions.abort_all();
}

async fn serve_session(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let cap = Instant::now() + shared.cfg.limits.session_cap;
    let mut s = Session::new(shared, peer);
    let end = match timeout_at(cap, s.run(tcp)).await {
        Ok(end) => end,
        Err(_) => SessionEnd::SessionCap,
    };
    s.record(end);
}

// ---- Connection I/O ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadErr {
    Eof,
    Timeout,
    TooLong,
    Io,
}

/// A stream with an input buffer (bounded by the line limit plus one read) and an output
/// buffer of replies, flushed before the server waits for input, so pipelined commands get
/// their replies in order and in one write (RFC 2920).
struct Conn<S> {
    io: S,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    limits: Limits,
}

const READ_CHUNK: usize = 4096;

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(io: S, limits: Limits) -> Self {
        Conn {
            io,
            inbuf: Vec::new(),
            out: Vec::new(),
            limits,
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.limits.command_timeout
    }

    async fn flush(&mut self) -> Result<(), ReadErr> {
        if self.out.is_empty() {
            return Ok(());
        }
        let deadline = self.deadline();
        let io = &mut self.io;
        let out = &self.out;
        let r = timeout_at(deadline, async move {
            io.write_all(out).await?;
            io.flush().await
        })
        .await;
        self.out.clear();
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ReadErr::Io),
            Err(_) => Err(ReadErr::Timeout),
        }
    }

    /// Flushes the replies, then reads more input.
    async fn fill(&mut self) -> Result<(), ReadErr> {
        self.flush().await?;
        let deadline = self.deadline();
        let mut chunk = [0u8; READ_CHUNK];
        match timeout_at(deadline, self.io.read(&mut chunk)).await {
            Err(_) => Err(ReadErr::Timeout),
            Ok(Err(_)) => Err(ReadErr::Io),
            Ok(Ok(0)) => Err(ReadErr::Eof),
            Ok(Ok(n)) => {
                self.inbuf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(())
            }
        }
    }

    /// One command line without its CRLF (a bare LF is accepted as the end of a command line).
    async fn read_line(&mut self) -> Result<String, ReadErr> {
        loop {
            match take_line(&mut self.inbuf, self.limits.max_line) {
                Ok(Some(line)) => return Ok(String::from_utf8_lossy(&line).into_owned()),
                Ok(None) => self.fill().await?,
                Err(LineTooLong) => return Err(ReadErr::TooLong),
            }
        }
    }

    /// A DATA body up to and including CRLF.CRLF, counted and discarded. Only CRLF.CRLF ends
    /// it (no bare-LF endings: SMTP smuggling). Returns the body size.
    async fn read_data(&mut self) -> Result<u64, ReadErr> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum St {
            LineStart,
            Mid,
            Cr,
            Dot,
            DotCr,
        }
        let mut st = St::LineStart;
        let mut count: u64 = 0;
        loop {
            let mut end = None;
            for (i, &b) in self.inbuf.iter().enumerate() {
                st = match (st, b) {
                    (St::DotCr, b'\n') => {
                        end = Some(i + 1);
                        break;
                    }
                    (St::LineStart, b'.') => St::Dot,
                    (St::Dot, b'\r') => St::DotCr,
                    (_, b'\r') => St::Cr,
                    (St::Cr, b'\n') => St::LineStart,
                    _ => St::Mid,
                };
            }
            match end {
                Some(n) => {
                    self.inbuf.drain(..n);
                    count += n as u64;
                    // The terminating ".\r\n" is not part of the message.
                    return Ok(count.saturating_sub(3));
                }
                None => {
                    count += self.inbuf.len() as u64;
                    self.inbuf.clear();
                    self.fill().await?;
                }
            }
        }
    }

    /// Sends the last replies and closes. When the server ends the session while the client
    /// may still be sending, closing with unread input would make the kernel send a RST that
    /// can destroy the final reply before the client reads it: so half-close, then drain
    /// (at most 1 MiB, 2 s) until the client closes too.
    async fn close(&mut self, end: SessionEnd) {
        if self.flush().await.is_err() {
            return;
        }
        if matches!(
            end,
            SessionEnd::ClientClosed | SessionEnd::Timeout | SessionEnd::SessionCap
        ) {
            return;
        }
        let _ = timeout(Duration::from_secs(1), self.io.shutdown()).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut chunk = [0u8; READ_CHUNK];
        let mut drained = 0usize;
        while drained < 1024 * 1024 {
            match timeout_at(deadline, self.io.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => break,
            }
        }
    }

    /// Reads and discards exactly `n` bytes (a BDAT chunk).
    async fn skip(&mut self, mut n: u64) -> Result<(), ReadErr> {
        loop {
            let take = n.min(self.inbuf.len() as u64) as usize;
            self.inbuf.drain(..take);
            n -= take as u64;
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }
}

// ---- Session ----------------------------------------------------------------------------------

enum Action {
    Continue,
    Close(SessionEnd),
    StartTls,
    Data,
    Bdat { size: u64, last: bool, ok: bool },
}

enum Flow {
    End(SessionEnd),
    StartTls,
}

struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    id: String,
    ehlo: Option<String>,
    tls: bool,
    cert_subject: Option<String>,
    cert_names: Vec<String>,
    mail_from: Option<String>,
    rcpts: Vec<String>,
    bdat_bytes: u64,
    // What the log keeps.
    last_mail_from: Option<String>,
    last_rcpts: Vec<String>,
    data_bytes: u64,
    messages: u32,
    commands: u32,
    errors: u32,
    last_reply: Option<String>,
    recorded: bool,
}

impl Session {
    fn new(shared: Arc<Shared>, peer: SocketAddr) -> Session {
        let id = shared.next_id(16);
        Session {
            shared,
            peer,
            id,
            ehlo: None,
            tls: false,
            cert_subject: None,
            cert_names: Vec::new(),
            mail_from: None,
            rcpts: Vec::new(),
            bdat_bytes: 0,
            last_mail_from: None,
            last_rcpts: Vec::new(),
            data_bytes: 0,
            messages: 0,
            commands: 0,
            errors: 0,
            last_reply: None,
            recorded: false,
        }
    }

    fn role(&self) -> Role {
        self.shared.cfg.role
    }

    fn record(&mut self, end: SessionEnd) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        self.shared.push_record(SessionRecord {
            client: self.peer,
            ehlo: self.ehlo.clone(),
            mail_from: self.last_mail_from.clone(),
            rcpts: self.last_rcpts.clone(),
            data_bytes: self.data_bytes,
            messages: self.messages,
            tls: self.tls,
            client_cert_subject: self.cert_subject.clone(),
            commands: self.commands,
            last_reply: self.last_reply.clone(),
            end,
        });
    }

    fn vars<'a>(&'a self, rcpt: &'a str, id: &'a str, bytes: u64) -> Vars<'a> {
        Vars {
            host: &self.shared.cfg.hostname,
            ip: self.peer.ip(),
            id,
            rcpt,
            bytes,
        }
    }

    /// Queues a rendered reply (CRLF added).
    fn say_raw(&mut self, out: &mut Vec<u8>, reply: String) {
        out.extend_from_slice(reply.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.last_reply = Some(reply);
    }

    fn say(&mut self, out: &mut Vec<u8>, text: Text) {
        let r = render(template(self.role(), text), &self.vars("", &self.id, 0));
        self.say_raw(out, r);
    }

    /// A reply to a command the client got wrong; too many of them end the session.
    fn say_error(&mut self, out: &mut Vec<u8>, text: Text) -> Action {
        self.say(out, text);
        self.errors += 1;
        if self.errors >= self.shared.cfg.limits.max_errors {
            self.say(out, Text::TooManyErrors);
            return Action::Close(SessionEnd::TooManyErrors);
        }
        Action::Continue
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpts.clear();
        self.bdat_bytes = 0;
    }

    async fn run(&mut self, tcp: TcpStream) -> SessionEnd {
        let limits = self.shared.cfg.limits;
        let mut conn = Conn::new(tcp, limits);
        if let Some(row) = fault_row(self.role(), self.shared.cfg.fault, At::Banner) {
            let r = render(row.template, &self.vars("", &self.id, 0));
            self.say_raw(&mut conn.out, r);
            conn.close(SessionEnd::ClosedByServer).await;
            return SessionEnd::ClosedByServer;
        }
        self.say(&mut conn.out, Text::Banner);
        match self.dialogue(&mut conn).await {
            Flow::End(end) => {
                conn.close(end).await;
                return end;
            }
            Flow::StartTls => {}
        }
        if conn.flush().await.is_err() {
            return SessionEnd::ClientClosed;
        }
        let Some(acceptor) = self.shared.acceptor.clone() else {
            return SessionEnd::ClosedByServer;
        };
        let handshake = timeout(limits.command_timeout, acceptor.accept(conn.io)).await;
        let Ok(Ok(stream)) = handshake else {
            return SessionEnd::TlsHandshakeFailed;
        };
        self.tls = true;
        if let Some(der) = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        {
            let (subject, names) = cert_identity(der);
            self.cert_subject = Some(subject);
            self.cert_names = names;
        }
        // RFC 3207 4.2: the client starts over with EHLO; nothing from before TLS counts.
        self.ehlo = None;
        self.reset_transaction();
        let mut conn = Conn::new(stream, limits);
        let end = match self.dialogue(&mut conn).await {
            Flow::End(end) => end,
            // Refused inside TLS (no STARTTLS offered there); unreachable in practice.
            Flow::StartTls => SessionEnd::ClosedByServer,
        };
        conn.close(end).await;
        end
    }

    async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(&mut self, conn: &mut Conn<S>) -> Flow {
        loop {
            let line = match conn.read_line().await {
                Ok(l) => l,
                Err(ReadErr::TooLong) => {
                    self.say(&mut conn.out, Text::LineTooLong);
                    return Flow::End(SessionEnd::LineTooLong);
                }
                Err(ReadErr::Timeout) => {
                    self.say(&mut conn.out, Text::Timeout);
                    return Flow::End(SessionEnd::Timeout);
                }
                Err(ReadErr::Eof | ReadErr::Io) => return Flow::End(SessionEnd::ClientClosed),
            };
            self.commands = self.commands.saturating_add(1);
            let buffered = !conn.inbuf.is_empty();
            match self.command(&line, buffered, &mut conn.out) {
                Action::Continue => {}
                Action::Close(end) => return Flow::End(end),
                Action::StartTls => return Flow::StartTls,
                Action::Data => {
                    if let Err(e) = conn
                        .read_data()
                        .await
                        .map(|n| self.end_of_data(n, &mut conn.out))
                    {
                        return Flow::End(read_end(e));
                    }
                }
                Action::Bdat { size, last, ok } => {
                    if let Err(e) = conn.skip(size).await {
                        return Flow::End(read_end(e));
                    }
                    if ok {
                        self.bdat_bytes = self.bdat_bytes.saturating_add(size);
                        if last {
                            self.end_of_data(self.bdat_bytes, &mut conn.out);
                        } else {
                            let r = render(
                                template(self.role(), Text::ChunkOk),
                                &self.vars("", &self.id, size),
                            );
                            self.say_raw(&mut conn.out, r);
                        }
                    }
                }
            }
        }
    }

    /// Handles one command line; replies go to `out`.
    fn command(&mut self, line: &str, buffered: bool, out: &mut Vec<u8>) -> Action {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, a.trim()),
            None => (line.trim(), ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.is_empty() => self.say_error(out, Text::BadSyntax),
            "EHLO" => self.ehlo(arg, out),
            "HELO" => {
                self.greet(arg);
                let hello = render(template(self.role(), Text::Hello), &self.vars("", "", 0));
                self.say_raw(out, format!("250 {hello}"));
                Action::Continue
            }
            "STARTTLS" => self.starttls(arg, buffered, out),
            "MAIL" => self.mail(arg, out),
            "RCPT" => self.rcpt(arg, out),
            "DATA" => self.data(arg, out),
            "BDAT" => self.bdat(arg, out),
            "RSET" => {
                self.reset_transaction();
                self.say(out, Text::Reset);
                Action::Continue
            }
            "NOOP" => {
                self.say(out, Text::Noop);
                Action::Continue
            }
            "QUIT" => {
                self.say(out, Text::Quit);
                // Logged before the 221 leaves, so a client that saw it finds the record.
                self.record(SessionEnd::Quit);
                Action::Close(SessionEnd::Quit)
            }
            _ => self.say_error(out, Text::Unknown),
        }
    }

    /// The role's EHLO keywords; STARTTLS only where TLS can still start.
    fn ehlo(&mut self, arg: &str, out: &mut Vec<u8>) -> Action {
        self.greet(arg);
        let hello = render(template(self.role(), Text::Hello), &self.vars("", "", 0));
        let mut lines = vec![hello];
        let offer_tls = self.shared.acceptor.is_some() && !self.tls;
        let keywords = EHLO_KEYWORDS
            .iter()
            .find(|(r, _, _)| *r == self.role())
            .map(|(_, k, _)| *k)
            .unwrap_or(&[]);
        lines.extend(
            keywords
                .iter()
                .filter(|k| offer_tls || **k != "STARTTLS")
                .map(|k| k.to_string()),
        );
        let n = lines.len();
        for (i, l) in lines.into_iter().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            self.say_raw(out, format!("250{sep}{l}"));
        }
        Action::Continue
    }

    fn starttls(&mut self, arg: &str, buffered: bool, out: &mut Vec<u8>) -> Action {
        if self.shared.acceptor.is_none() || self.tls {
            return self.say_error(out, Text::Unknown);
        }
        if !arg.is_empty() {
            return self.say_error(out, Text::BadSyntax);
        }
        if buffered {
            // Bytes after STARTTLS would be read as if they came inside TLS
            // (CVE-2011-0411 style injection): refuse and close.
            self.say(out, Text::PipelinedAfterStartTls);
            return Action::Close(SessionEnd::PipelinedAfterStartTls);
        }
        self.say(out, Text::StartTlsGo);
        Action::StartTls
    }

    fn data(&mut self, arg: &str, out: &mut Vec<u8>) -> Action {
        if self.mail_from.is_none() {
            return self.say_error(out, Text::NeedMail);
        }
        if self.rcpts.is_empty() {
            return self.say_error(out, Text::NeedRcpt);
        }
        if !arg.is_empty() {
            return self.say_error(out, Text::BadSyntax);
        }
        self.say(out, Text::StartData);
        Action::Data
    }

    fn greet(&mut self, name: &str) {
        let name: String = name.chars().take(255).collect();
        self.ehlo = Some(name);
        self.reset_transaction();
    }

    fn mail(&mut self, arg: &str, out: &mut Vec<u8>) -> Action {
        let cfg = &self.shared.cfg;
        if self.ehlo.is_none() {
            return self.say_error(out, Text::NeedEhlo);
        }
        if self.mail_from.is_some() {
            return self.say_error(out, Text::NestedMail);
        }
        let Some((from, params)) = parse_path(arg, "FROM") else {
            return self.say_error(out, Text::BadSyntax);
        };
        let tls_required = cfg.require_tls || cfg.fault == Some(Fault::TlsRequired);
        if tls_required && !self.tls {
            self.say(out, Text::TlsRequired);
            return Action::Continue;
        }
        if let Some(row) = fault_row(cfg.role, cfg.fault, At::Mail) {
            let r = render(row.template, &self.vars("", &self.id, 0));
            let closing = r.starts_with("421");
            self.say_raw(out, r);
            return if closing {
                Action::Close(SessionEnd::ClosedByServer)
            } else {
                Action::Continue
            };
        }
        let size = params.split_ascii_whitespace().find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.eq_ignore_ascii_case("SIZE")
                .then(|| v.parse::<u64>().ok())
                .flatten()
        });
        if size.is_some_and(|s| s > cfg.limits.max_message) {
            self.say(out, Text::TooLarge);
            return Action::Continue;
        }
        self.mail_from = Some(from.clone());
        self.last_mail_from = Some(from);
        self.last_rcpts.clear();
        self.say(out, Text::SenderOk);
        Action::Continue
    }

    fn rcpt(&mut self, arg: &str, out: &mut Vec<u8>) -> Action {
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        if self.mail_from.is_none() {
            return self.say_error(out, Text::NeedMail);
        }
        let Some((rcpt, _)) = parse_path(arg, "TO") else {
            return self.say_error(out, Text::BadSyntax);
        };
        let Some((_, domain)) = rcpt
            .rsplit_once('@')
            .filter(|(l, d)| !l.is_empty() && !d.is_empty())
        else {
            return self.say_error(out, Text::BadAddress);
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if self.rcpts.len() >= cfg.limits.max_recipients {
            self.say(out, Text::TooManyRecipients);
            return Action::Continue;
        }
        if let Some(row) = fault_row(cfg.role, cfg.fault, At::Rcpt) {
            let r = render(row.template, &self.vars(&rcpt, &self.id, 0));
            self.say_raw(out, r);
            return Action::Continue;
        }
        let reply = if shared.accepted.contains(&domain) {
            if self.recipient_known(&rcpt, &domain) {
                Text::RecipientOk
            } else {
                Text::RecipientUnknown
            }
        } else if self.relay_allowed() {
            Text::RecipientOk
        } else {
            Text::RelayDenied
        };
        let r = render(template(cfg.role, reply), &self.vars(&rcpt, &self.id, 0));
        self.say_raw(out, r);
        if reply == Text::RecipientOk {
            self.rcpts.push(rcpt.clone());
            self.last_rcpts.push(rcpt);
        }
        Action::Continue
    }

    fn recipient_known(&self, rcpt: &str, domain: &str) -> bool {
        let shared = &self.shared;
        match shared.cfg.fault {
            Some(Fault::RecipientNotProvisioned) => return false,
            // On EOP a stale sync shows as the remote routing addresses (B hop 2) missing.
            Some(Fault::DirSyncStale)
                if shared.cfg.role != Role::EopFrontEnd
                    || domain.ends_with(".mail.onmicrosoft.com") =>
            {
                return false
            }
            _ => {}
        }
        shared.recipients.is_empty() || shared.recipients.contains(&rcpt.to_ascii_lowercase())
    }

    /// Relay permission: a connector matching the client by IP or by certificate name.
    fn relay_allowed(&self) -> bool {
        let cfg = &self.shared.cfg;
        if cfg.fault == Some(Fault::AttributionFailure) {
            return false;
        }
        let by_ip = cfg.relay_allowed_ips.contains(&self.peer.ip());
        let by_cert = cfg
            .relay_client_cert_name
            .as_ref()
            .is_some_and(|want| self.cert_names.iter().any(|n| n.eq_ignore_ascii_case(want)));
        by_ip || by_cert
    }

    fn bdat(&mut self, arg: &str, out: &mut Vec<u8>) -> Action {
        let mut parts = arg.split_ascii_whitespace();
        let size = parts.next().and_then(|s| s.parse::<u64>().ok());
        let last = match parts.next() {
            None => false,
            Some(l) if l.eq_ignore_ascii_case("LAST") => true,
            Some(_) => false,
        };
        let Some(size) = size.filter(|_| parts.next().is_none()) else {
            // Without a valid size the chunk cannot be skipped: the session is lost.
            self.say(out, Text::BadSyntax);
            return Action::Close(SessionEnd::ClosedByServer);
        };
        // RFC 3030 2: the chunk is read (and dropped) even when the command fails.
        let ok = if self.mail_from.is_none() {
            self.say_error(out, Text::NeedMail);
            false
        } else if self.rcpts.is_empty() {
            self.say_error(out, Text::NeedRcpt);
            false
        } else {
            true
        };
        Action::Bdat { size, last, ok }
    }

    /// After a complete message of `bytes`: size cap, end-of-data faults, else queued.
    fn end_of_data(&mut self, bytes: u64, out: &mut Vec<u8>) {
        let cfg = &self.shared.cfg;
        let role = cfg.role;
        if bytes > cfg.limits.max_message {
            self.say(out, Text::TooLarge);
        } else if let Some(row) = fault_row(role, cfg.fault, At::EndOfData) {
            let r = render(row.template, &self.vars("", &self.id, 0));
            self.say_raw(out, r);
        } else {
            let qid = self.shared.next_id(match role {
                Role::ThirdPartyPostfix => 10,
                _ => 16,
            });
            let r = render(template(role, Text::Queued), &self.vars("", &qid, bytes));
            self.say_raw(out, r);
            self.messages = self.messages.saturating_add(1);
            self.data_bytes = self.data_bytes.saturating_add(bytes);
        }
        self.reset_transaction();
    }
}

fn read_end(e: ReadErr) -> SessionEnd {
    match e {
        ReadErr::Timeout => SessionEnd::Timeout,
        ReadErr::TooLong => SessionEnd::LineTooLong,
        ReadErr::Eof | ReadErr::Io => SessionEnd::ClientClosed,
    }
}

/// `FROM:<a@b> PARAMS` -> ("a@b", "PARAMS"). Brackets optional (Postfix is lenient too); the
/// address may not contain spaces, controls or brackets.
fn parse_path<'a>(arg: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = arg.get(..keyword.len() + 1)?;
    if !head.eq_ignore_ascii_case(&format!("{keyword}:")) {
        return None;
    }
    let rest = arg.get(keyword.len() + 1..)?.trim_start();
    let (addr, params) = if let Some(inner) = rest.strip_prefix('<') {
        let close = inner.find('>')?;
        (inner.get(..close)?, inner.get(close + 1..)?)
    } else {
        match rest.split_once(' ') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        }
    };
    if addr.len() > 320
        || addr
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<')
    {
        return None;
    }
    // The null reverse-path is fine for MAIL, not for RCPT.
    if addr.is_empty() && keyword == "TO" {
        return None;
    }
    Some((addr.to_string(), params.trim()))
}

/// Subject and names (CN, DNS SANs) of a client certificate.
fn cert_identity(der: &[u8]) -> (String, Vec<String>) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let subject = cert.subject().to_string();
            let mut names: Vec<String> = cert
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_string)
                .collect();
            if let Ok(Some(ext)) = cert.subject_alternative_name() {
                for gn in &ext.value.general_names {
                    if let x509_parser::extensions::GeneralName::DNSName(d) = gn {
                        names.push(d.to_string());
                    }
                }
            }
            (subject, names)
        }
        Err(_) => ("<unparsable certificate>".to_string(), Vec::new()),
    }
}

// ---- Network-level faults ---------------------------------------------------------------------

/// "Connector offline": an address on `ip` (127.0.0.0/8) where nothing listens, so a connect
/// is refused. The port was bound and released: another process could take it in between.
pub fn refused_listener_addr(ip: Ipv4Addr) -> io::Result<SocketAddr> {
    check_loopback(IpAddr::V4(ip))?;
    let l = std::net::TcpListener::bind((ip, 0))?;
    l.local_addr()
}

/// "Network/firewall block": an address where a TCP connect hangs until the client gives up,
/// as when a firewall drops SYNs. A listener with backlog 0 whose accept queue is filled by
/// connections never accepted; Linux then drops further SYNs (tcp_abort_on_overflow = 0, the
/// default). Kept working as long as this value lives.
pub struct Blackhole {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    /// Creates the blackhole on `ip` (127.0.0.0/8) and checks that a connect really hangs;
    /// errors on a kernel that does not drop SYNs on a full accept queue.
    pub async fn new(ip: Ipv4Addr) -> io::Result<Blackhole> {
        Blackhole::bind(SocketAddr::new(IpAddr::V4(ip), 0)).await
    }

    /// The same on a given address and port (the lab's endpoints share one port).
    pub async fn bind(addr: SocketAddr) -> io::Result<Blackhole> {
        check_loopback(addr.ip())?;
        let socket = TcpSocket::new_v4()?;
        socket.bind(addr)?;
        let listener = socket.listen(0)?;
        let addr = listener.local_addr()?;
        // Backlog 0 still admits one connection: connect until one hangs (200 ms is ages on
        // loopback), which proves the queue is full.
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fillers.push(s),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Ok(Blackhole {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    })
                }
            }
        }
        Err(io::Error::other(
            "blackhole: connects to a full backlog-0 listener still succeed; SYNs are not \
             dropped on this system",
        ))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_every_reply() {
        let texts = [
            Text::Banner,
            Text::Hello,
            Text::SenderOk,
            Text::RecipientOk,
            Text::StartData,
            Text::Queued,
            Text::ChunkOk,
            Text::Reset,
            Text::Noop,
            Text::Quit,
            Text::StartTlsGo,
            Text::Unknown,
            Text::NeedEhlo,
            Text::NeedMail,
            Text::NeedRcpt,
            Text::NestedMail,
            Text::BadSyntax,
            Text::BadAddress,
            Text::RecipientUnknown,
            Text::RelayDenied,
            Text::TlsRequired,
            Text::TooManyRecipients,
            Text::TooLarge,
            Text::LineTooLong,
            Text::Timeout,
            Text::TooManyErrors,
            Text::Busy,
            Text::PipelinedAfterStartTls,
        ];
        for role in [Eop, Exch, Pfx] {
            for t in texts {
                let n = REPLIES
                    .iter()
                    .filter(|r| r.role == role && r.text == t)
                    .count();
                assert_eq!(n, 1, "{role:?} {t:?}");
            }
            assert!(EHLO_KEYWORDS.iter().any(|(r, _, _)| *r == role));
        }
        for r in REPLIES {
            assert!(!r.source.is_empty());
        }
        for r in FAULT_REPLIES {
            assert!(!r.source.is_empty());
            assert!(r.template.starts_with('4') || r.template.starts_with('5'));
        }
    }

    #[test]
    fn placeholders_render() {
        let v = Vars {
            host: "DM3NAM03FT051.mail.protection.outlook.com",
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            id: "08DD2A1B3C4D5E6F",
            rcpt: "a@b.test",
            bytes: 12,
        };
        let r = render(template(Eop, Text::RecipientUnknown), &v);
        assert_eq!(r, "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DM3NAM03FT051.eop-NAM03.prod.protection.outlook.com]");
        let b = render(template(Eop, Text::Banner), &v);
        assert!(b.ends_with("+0000 [08DD2A1B3C4D5E6F]"), "{b}");
        for row in REPLIES
            .iter()
            .map(|r| r.template)
            .chain(FAULT_REPLIES.iter().map(|r| r.template))
        {
            assert!(!render(row, &v).contains('{'), "{row}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("FROM:<a@b>", "FROM"), Some(("a@b".into(), "")));
        assert_eq!(
            parse_path("from: <a@b> SIZE=10", "FROM"),
            Some(("a@b".into(), "SIZE=10"))
        );
        assert_eq!(parse_path("FROM:<>", "FROM"), Some(("".into(), "")));
        assert_eq!(parse_path("TO:<>", "TO"), None);
        assert_eq!(parse_path("TO:a@b", "TO"), Some(("a@b".into(), "")));
        assert_eq!(parse_path("TO", "TO"), None);
        assert_eq!(parse_path("TO:<a@b", "TO"), None);
        assert_eq!(parse_path("TÖ:<a@b>", "TO"), None);
    }

    #[test]
    fn eop_names() {
        assert_eq!(
            eop_frontend("DM3NAM03FT051.mail.protection.outlook.com"),
            "DM3NAM03FT051.eop-NAM03.prod.protection.outlook.com"
        );
        assert_eq!(eop_frontend("x"), "x.eop-NAM03.prod.protection.outlook.com");
        assert_eq!(hex_id(1, 10).len(), 10);
    }
}
