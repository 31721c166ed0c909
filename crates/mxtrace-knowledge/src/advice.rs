//! What to do next, per category: the usual mail-flow decision tree (message trace,
//! connectors, telnet to EOP on 25, MX, transport rules, licensing, directory sync, then
//! escalation with evidence; DNS posture and queues for on-premises servers), and the
//! default layer of each category (README "Layers").

use super::{Category, Layer};
use mxtrace_proto::model::Stage;

// Steps shared by several categories; each is one concrete action.
pub const TRACE: &str = "Run a message trace (Exchange admin center > Mail flow > Message trace, or Get-MessageTrace) for this sender and recipient: no entry at all means the sending side never reached Exchange Online; a Failed entry gives the rejecting stage and reason.";
pub const CONNECTORS: &str = "Check Mail flow > Connectors: the connector for this path must be enabled, and its validation (Test-InboundConnector / Test-OutboundConnector) must pass.";
pub const TELNET_EOP: &str = "From the sending server, test TCP 25 to EOP (mxtrace probe <domain-com>.mail.protection.outlook.com): a timeout or refusal is a firewall or ISP block of port 25, not Exchange.";
pub const MX_CHECK: &str = "Check the domain's MX (nslookup -type=MX domain): for Exchange Online it must be a single <domain-com>.mail.protection.outlook.com record.";
pub const RULES: &str = "Review Mail flow > Rules (transport rules) for a rule with broad conditions and a reject or block action; test with the rule scoped down or disabled.";
pub const LICENSING: &str = "Check the recipient under Recipients > Mailboxes (Get-Recipient / Get-Mailbox): it must exist with the expected RecipientTypeDetails and an Exchange Online license.";
pub const DIRSYNC: &str = "In hybrid, check directory synchronization (Microsoft Entra Connect): last success within the hour; after fixing the object run Start-ADSyncSyncCycle -PolicyType Delta.";
pub const DELIST_PUBLIC: &str = "Look up the sending public IP on the blocklist the reply names (Spamhaus, Barracuda, SpamCop, SORBS...), remove the cause (compromised account, open relay, infected host), then use that list's removal procedure.";
pub const DELIST_MS: &str = "If Microsoft 365 names a banned or blocked sending IP, request removal at the Office 365 delist portal (https://sender.office.com) after fixing the cause.";
pub const SERVICE_HEALTH: &str = "Check Microsoft 365 Service Health (or the remote provider's status page) for an incident before changing configuration.";
pub const RETRY: &str = "This is a temporary (4xx) reply: a sending MTA keeps the message queued and retries; act only if the deferral persists for hours.";
pub const AUTH_POSTURE: &str = "Check the sending domain's SPF (every sending source listed, include:spf.protection.outlook.com for Exchange Online, under 10 DNS lookups), DKIM (signing enabled, selectors published) and DMARC (policy and alignment).";
pub const PTR: &str = "Check reverse DNS of the sending public IP: a PTR record whose name resolves back to the same IP (forward-confirmed), ideally matching the EHLO name.";
pub const ESCALATE: &str = "If every check above is clean, escalate (Microsoft support, or the receiving domain's admin) with evidence: the full reply text, the time in UTC, the sending IP, the mxtrace transcript (--json) and the message trace.";
pub const HCW: &str = "Re-run the Hybrid Configuration Wizard (or fix the inbound connector by hand) so the on-premises connector's certificate name (TlsSenderCertificateName) or sender IP addresses match what the on-premises server presents.";
pub const DBEB: &str = "If every recipient of an Exchange Online domain fails, check the accepted domain type (Authoritative vs Internal Relay) and Directory-Based Edge Blocking.";
pub const RECIPIENT_ADMIN: &str = "The receiving organization decides this: send them the full reply text and time so their admin can check their policy or allow list.";
pub const SERVER_TLS_VERSIONS: &str = "Enable TLS 1.2 (and 1.3) with modern cipher suites on the server; on Windows/Exchange check the SCHANNEL protocol and cipher settings.";
pub const ENABLE_STARTTLS: &str = "Enable STARTTLS on the receive connector or MTA (on Exchange, a valid certificate enabled for SMTP).";
pub const SMTP_CERT_BOUND: &str = "Check the certificate bound to SMTP on the server (Exchange: Get-ExchangeCertificate, the transport certificate and its private key).";
pub const SENDER_CHECK: &str = "Check the sender address: its domain must exist and resolve (MX or A) and the address must be allowed to send from this server or tenant.";
pub const EXO_SMTP_AUTH: &str = "For Exchange Online SMTP AUTH, the mailbox must allow it (Set-CASMailbox -SmtpClientAuthenticationDisabled $false) and security defaults must not block it.";
pub const EXCHANGE_CERT: &str = "After replacing the certificate on Exchange, bind it to SMTP (Enable-ExchangeCertificate -Services SMTP) and update the connectors that name it (re-run the Hybrid Configuration Wizard in hybrid).";
pub const CIPHERS: &str = "Compare the TLS versions and ciphers both ends offer: TLS 1.2 or later is required by Exchange Online and by mxtrace.";
pub const SERVER_CERT: &str = "Check the server certificate: chain complete, not expired, name matching the host (and the TlsCertificateName / TlsDomain a hybrid connector expects).";
pub const SENDER_TLS: &str =
    "Enable STARTTLS on the sending side (send connector or MTA TLS policy) with TLS 1.2 or later.";
pub const RELAY_WHICH_SIDE: &str = "Decide which side is wrong: is the recipient domain one this server accepts (MX, accepted domains), and is this connection entitled to relay (connector by IP or certificate, or SMTP AUTH)?";
pub const MAILBOX_STATE: &str = "Check the mailbox state: quota used, disabled or soft-deleted account, license removed, or a hold that stops delivery.";
pub const SIZE_LIMITS: &str = "Compare the message size with the limits on the path: the remote SIZE in its EHLO reply, mailbox MaxSendSize/MaxReceiveSize, connector and organization limits.";
pub const QUARANTINE: &str =
    "Check quarantine and the anti-spam/anti-malware policy verdicts in the message trace details.";
pub const DELIVERY_RESTRICTIONS: &str = "Check the recipient's delivery restrictions (accept messages only from, require sender authentication) and the tenant allow/block list.";
pub const ROUTING: &str = "Check the send connector's smart host and address space, and for a mail loop, the accepted domain types on both sides.";
pub const REPUTATION_WATCH: &str = "Watch the IP's reputation (Microsoft SNDS, Google Postmaster Tools, the provider's sender pages).";
pub const COMPROMISE: &str = "Check for a compromised account or host sending spam through this IP or tenant (outbound spam report, queue contents).";
pub const AUTH_OR_CONNECTOR: &str = "Authenticate before MAIL FROM (SMTP AUTH over STARTTLS on port 587), or send through a connector that accepts your IP or certificate.";

/// Default layer of a category; `accepted` and `other` take the stage's layer.
pub fn layer_of(category: Category, stage: Option<Stage>) -> Layer {
    match category {
        Category::Accepted => accepted_layer(stage),
        Category::RecipientUnknown | Category::MailboxDisabledOrFull => Layer::Recipient,
        Category::SenderRejected
        | Category::PolicyOrTransportRule
        | Category::SpfDkimDmarcFailure
        | Category::MessageTooLarge
        | Category::ContentRejected => Layer::Policy,
        Category::RelayDenied | Category::ConnectorOrRouting => Layer::Connector,
        Category::AuthRequired | Category::AuthFailed => Layer::Auth,
        Category::TlsRequired | Category::TlsFailed => Layer::Tls,
        Category::IpBlocklisted | Category::ReputationOrRateLimited | Category::Greylisted => {
            Layer::Reputation
        }
        Category::DnsFailure => Layer::Dns,
        Category::ServiceUnavailable => Layer::Service,
        Category::ProtocolError => Layer::SmtpSession,
        Category::Other => other_layer(stage),
    }
}

/// The layer a stage tests when it succeeds (each stage maps to one layer).
fn accepted_layer(stage: Option<Stage>) -> Layer {
    match stage {
        Some(Stage::Starttls | Stage::TlsHandshake) => Layer::Tls,
        Some(Stage::Auth) => Layer::Auth,
        Some(Stage::RcptTo) => Layer::Recipient,
        _ => Layer::SmtpSession,
    }
}

/// An unexplained rejection says nothing about the layer beyond where it happened.
fn other_layer(stage: Option<Stage>) -> Layer {
    match stage {
        Some(Stage::Starttls | Stage::TlsHandshake) => Layer::Tls,
        Some(Stage::Auth) => Layer::Auth,
        _ => Layer::SmtpSession,
    }
}

/// The category's default next steps, most decisive first.
pub fn steps_of(category: Category) -> &'static [&'static str] {
    match category {
        Category::Accepted => &["Nothing to fix at this stage: the server accepted it."],
        Category::RecipientUnknown => &[
            "Check the recipient address for typos, and whether every recipient of the domain fails or only this one.",
            LICENSING,
            DIRSYNC,
            DBEB,
            TRACE,
        ],
        Category::MailboxDisabledOrFull => &[
            MAILBOX_STATE,
            LICENSING,
            "A full mailbox clears when the owner frees space or the quota is raised; resend afterwards.",
        ],
        Category::SenderRejected => &[
            SENDER_CHECK,
            AUTH_POSTURE,
            RECIPIENT_ADMIN,
        ],
        Category::RelayDenied => &[
            RELAY_WHICH_SIDE,
            CONNECTORS,
            HCW,
            MX_CHECK,
        ],
        Category::AuthRequired => &[
            AUTH_OR_CONNECTOR,
            EXO_SMTP_AUTH,
        ],
        Category::AuthFailed => &[
            "Check the credentials and the account: password, lock-out, MFA or conditional access that blocks basic SMTP AUTH, app password if required.",
            "Use a mechanism the server offers in its EHLO AUTH list, over TLS.",
        ],
        Category::TlsRequired => &[
            SENDER_TLS,
            "If the sender did offer TLS, look for a firewall with SMTP/ESMTP inspection that strips STARTTLS from the EHLO reply.",
            CONNECTORS,
        ],
        Category::TlsFailed => &[
            CIPHERS,
            SERVER_CERT,
            "Rule out a middlebox: SMTP/ESMTP inspection on a firewall often breaks STARTTLS.",
        ],
        Category::IpBlocklisted => &[
            "Identify the sending public IP (the reply usually names it) and confirm it is the expected egress address.",
            DELIST_PUBLIC,
            DELIST_MS,
            PTR,
        ],
        Category::ReputationOrRateLimited => &[
            "Reduce the sending rate and concurrency toward this destination and let the queue retry.",
            COMPROMISE,
            REPUTATION_WATCH,
        ],
        Category::Greylisted => &[
            "Nothing to fix: greylisting defers the first attempt from an unknown sender and IP; a compliant MTA retries after a few minutes and is accepted.",
            "Act only if retries keep failing: retries must come from the same IP (a pool that rotates IPs can be deferred repeatedly).",
        ],
        Category::PolicyOrTransportRule => &[
            RULES,
            DELIVERY_RESTRICTIONS,
            RECIPIENT_ADMIN,
        ],
        Category::SpfDkimDmarcFailure => &[
            AUTH_POSTURE,
            "Read the Authentication-Results header of a delivered test message to see which check failed and which domain was evaluated.",
            "For mail sent by a third-party service on your domain, authorize it in SPF and have it DKIM-sign with your domain.",
        ],
        Category::MessageTooLarge => &[
            SIZE_LIMITS,
            "Send large files as links instead of attachments.",
        ],
        Category::ContentRejected => &[
            "Check what the content filter objected to: attachment types, malware, malformed headers (RFC 5322), bare line feeds, links with bad reputation.",
            QUARANTINE,
        ],
        Category::DnsFailure => &[
            "Check DNS resolution from the sending server (resolver reachable, MX/A answers, no SERVFAIL).",
            PTR,
            MX_CHECK,
        ],
        Category::ConnectorOrRouting => &[
            CONNECTORS,
            MX_CHECK,
            TELNET_EOP,
            ROUTING,
        ],
        Category::ServiceUnavailable => &[SERVICE_HEALTH, RETRY],
        Category::ProtocolError => &[
            "The two ends disagree on SMTP itself: check the client (pipelining, line endings CRLF, command syntax) and any firewall doing SMTP/ESMTP inspection that rewrites commands.",
        ],
        Category::Other => &[
            "The reply gives no documented clue: read its full text and any reference link or tag it carries.",
            TRACE,
        ],
    }
}

/// The cause used when no table row gave a more specific one.
pub fn generic_cause(category: Category) -> &'static str {
    match category {
        Category::Accepted => "The server accepted this stage.",
        Category::RecipientUnknown => "The receiving server does not know the recipient address.",
        Category::MailboxDisabledOrFull => "The recipient mailbox exists but cannot take mail now: it is full, disabled or not provisioned.",
        Category::SenderRejected => "The receiving server refused the sender address.",
        Category::RelayDenied => "The server refused to relay: it neither hosts the recipient domain nor recognizes this connection as entitled to relay.",
        Category::AuthRequired => "The server requires authentication before it accepts this command.",
        Category::AuthFailed => "Authentication was refused.",
        Category::TlsRequired => "The server requires TLS (STARTTLS) before it accepts this command.",
        Category::TlsFailed => "TLS could not be established or is not available.",
        Category::IpBlocklisted => "The sending IP address is on a blocklist the receiving server uses.",
        Category::ReputationOrRateLimited => "The receiving server is limiting this sender or IP because of volume or reputation.",
        Category::Greylisted => "The receiving server deferred the message on purpose (greylisting); a retry is expected to succeed.",
        Category::PolicyOrTransportRule => "A policy on the receiving side (transport rule, access list or delivery restriction) refused the message.",
        Category::SpfDkimDmarcFailure => "The message failed sender authentication (SPF, DKIM or DMARC) at the receiving server.",
        Category::MessageTooLarge => "The message is larger than a limit on the path.",
        Category::ContentRejected => "The receiving server refused the message content.",
        Category::DnsFailure => "A DNS lookup failed or returned no usable answer.",
        Category::ConnectorOrRouting => "The message could not be routed to its next hop (connector, routing or connection problem).",
        Category::ServiceUnavailable => "The server is not providing service right now (outage, overload or shutdown).",
        Category::ProtocolError => "The SMTP dialogue broke: a command or reply was not valid at this point.",
        Category::Other => "The reply does not say why; its cause cannot be determined from the code and text alone.",
    }
}
