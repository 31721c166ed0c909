//! OAuth 2.0 for SMTP AUTH, as data: what an authorization server's refusal means (Microsoft
//! Entra ID's AADSTS codes; RFC 6749 5.2 error codes), what a SASL error challenge's status
//! means (RFC 7628 3.2.2, RFC 6750 3.1), and the finding for a password sent to Exchange
//! Online, whose basic authentication for SMTP AUTH is being retired. Each row names its
//! public source. Exchange Online's AUTH replies themselves (535 5.7.139, 5.7.3...) are rows
//! of the MICROSOFT table in tables.rs.

use super::{Category, Layer};
use mxtrace_proto::smtp::ehlo::Capabilities;
use mxtrace_proto::smtp::reply::Reply;

pub const MS_ERROR_CODES: &str = "Microsoft Learn: Microsoft Entra authentication and authorization error codes (learn.microsoft.com/entra/identity-platform/reference-error-codes)";
pub const MS_SMTP_OAUTH: &str = "Microsoft Learn: Authenticate an IMAP, POP or SMTP connection using OAuth (learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth)";
pub const MS_SMTP_AUTH: &str = "Microsoft Learn: Enable or disable SMTP AUTH in Exchange Online (learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission)";
pub const MS_BASIC_AUTH: &str = "Microsoft 365 message center MC786329: Exchange Online to retire Basic Auth for Client Submission (SMTP AUTH), updated January 27, 2026; Microsoft Learn: Deprecation of Basic authentication in Exchange Online";
pub const RFC6749: &str = "RFC 6749 section 5.2 (OAuth 2.0 token endpoint error response)";
pub const RFC7628: &str = "RFC 7628 section 3.2.2 (OAUTHBEARER server error response) and RFC 6750 section 3.1 (bearer token error codes); Google: OAuth 2.0 for IMAP and SMTP, the XOAUTH2 mechanism (developers.google.com/workspace/gmail/imap/xoauth2-protocol)";

// Steps in Microsoft's terms (MS_SMTP_OAUTH, MS_SMTP_AUTH).
pub const APP_PERMISSION: &str = "In the Entra admin center, App registrations > your app > API permissions: add Office 365 Exchange Online > Application permissions > SMTP.SendAsApp, then Grant admin consent for the tenant.";
pub const SERVICE_PRINCIPAL: &str = "In Exchange Online PowerShell, register the app's service principal (New-ServicePrincipal -AppId <client id> -ObjectId <object id of the Enterprise application>) and give it the mailbox (Add-MailboxPermission -Identity <mailbox> -User <service principal id> -AccessRights FullAccess).";
pub const SMTP_AUTH_ENABLED: &str = "Let the mailbox use SMTP AUTH: Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false (and, tenant-wide, Set-TransportConfig -SmtpClientAuthenticationDisabled $false, or leave it on and enable only this mailbox).";
pub const SEND_AS: &str = "Give the authenticated mailbox (or the app's service principal) Send As on the sender: Add-RecipientPermission -Identity <sender> -Trustee <mailbox or service principal> -AccessRights SendAs; or use the authenticated mailbox as {setting:from}.";
pub const CLIENT_SECRET: &str = "In App registrations > your app > Certificates & secrets, create a new client secret (or upload a certificate) and give mxtrace the secret's Value, not its Secret ID.";
pub const APP_AND_TENANT: &str = "Check {setting:oauth_client_id} against the app's Application (client) ID and {setting:oauth_tenant} against the tenant it is registered in (Overview page of the app registration).";
pub const NEW_TOKEN: &str = "Get a new access token (a cached or pasted one may have expired) and check it was issued for this server: for Exchange Online the audience is https://outlook.office365.com.";
pub const SCOPE_STEP: &str = "Ask for the scope the server names: for Exchange Online https://outlook.office365.com/.default with client credentials, https://outlook.office365.com/SMTP.Send for a user's token.";
// The same for a mailbox read over IMAP (MS_SMTP_OAUTH covers IMAP; Google's XOAUTH2 page the
// Gmail scope).
pub const IMAP_APP_PERMISSION: &str = "In the Entra admin center, App registrations > your app > API permissions: add Office 365 Exchange Online > Application permissions > IMAP.AccessAsApp, then Grant admin consent for the tenant.";
pub const IMAP_SCOPE_STEP: &str = "Ask for the scope the server names: for Exchange Online https://outlook.office365.com/.default with client credentials, https://outlook.office365.com/IMAP.AccessAsUser.All for a user's token; for Gmail https://mail.google.com/.";
pub const IMAP_MAILBOX: &str = "Check the mailbox's user (the USER of its imaps://USER@HOST): the mailbox the token may open (for an app's token, the mailbox its service principal has FullAccess on), with IMAP on for it (Exchange Online: Set-CASMailbox -Identity <mailbox> -ImapEnabled $true).";
pub const MOVE_TO_OAUTH: &str = "Move this sender to OAuth: register an app in Entra ID with SMTP.SendAsApp (or SMTP.Send for a user), then probe with {setting:auth_mech=xoauth2} and {setting:oauth_tenant}/{setting:oauth_client_id} (docs/oauth.md); or send through a connector or Azure Communication Services instead.";
const ENDPOINT_REACH: &str = "Check that this machine reaches the token endpoint over HTTPS (login.microsoftonline.com for Entra ID): proxy, firewall, DNS; raise {setting:stage_timeout} for a slow one.";
const PROXY: &str = "Check HTTPS_PROXY: the proxy must be reachable from this machine and allow CONNECT to the token endpoint on port 443 (login.microsoftonline.com for Entra ID); a proxy that wants a login takes it in the URL (http://user:password@proxy:3128); hosts reached without it go in NO_PROXY.";
const ENDPOINT_CERT: &str = "The token endpoint's certificate must verify: add an internal CA with {setting:tls_ca_file}, or install it in the system store (SSL_CERT_FILE / SSL_CERT_DIR); a TLS-inspecting proxy needs its CA there too.";

/// The finding for a password accepted by Exchange Online.
pub const BASIC_AUTH_RETIRING: &str = "basic authentication (a password) to Exchange Online SMTP AUTH: Microsoft disables it by default for existing tenants at the end of December 2026 and new tenants created after that do not have it (MC786329); move this sender to OAuth (XOAUTH2 with an Entra ID app and SMTP.SendAsApp)";

/// One AADSTS code of Entra ID's token endpoint.
pub struct AadRow {
    pub code: u64,
    pub meaning: &'static str,
    pub cause: &'static str,
    pub steps: &'static [&'static str],
    pub source: &'static str,
}

pub static AADSTS: &[AadRow] = &[
    AadRow { code: 700016, meaning: "application not found in the directory",
        cause: "Entra ID has no application with this client ID in this tenant: a wrong {setting:oauth_client_id}, the app registered in another tenant, or no admin of this tenant consented to it.",
        steps: &[APP_AND_TENANT, APP_PERMISSION], source: MS_ERROR_CODES },
    AadRow { code: 7000215, meaning: "invalid client secret provided",
        cause: "The client secret is wrong: often the secret's ID was copied instead of its Value, or the secret belongs to another app.",
        steps: &[CLIENT_SECRET], source: MS_ERROR_CODES },
    AadRow { code: 7000222, meaning: "the client secret (or certificate) has expired",
        cause: "The app's client secret or certificate expired; Entra ID no longer accepts it.",
        steps: &[CLIENT_SECRET], source: MS_ERROR_CODES },
    AadRow { code: 65001, meaning: "consent missing",
        cause: "The tenant has not consented to the permissions the app asks for, so Entra ID issues no token for them.",
        steps: &[APP_PERMISSION], source: MS_ERROR_CODES },
    AadRow { code: 90002, meaning: "tenant not found",
        cause: "No Entra ID tenant has this name or ID: a typo in {setting:oauth_tenant}, or a tenant with no active subscription.",
        steps: &[APP_AND_TENANT], source: MS_ERROR_CODES },
    AadRow { code: 900023, meaning: "tenant identifier neither a DNS name nor a GUID",
        cause: "The tenant is neither a domain of the tenant (contoso.onmicrosoft.com) nor its tenant ID (a GUID).",
        steps: &[APP_AND_TENANT], source: MS_ERROR_CODES },
    AadRow { code: 70011, meaning: "invalid scope",
        cause: "The scope is not valid for this grant: the client-credentials grant takes only a resource's /.default scope.",
        steps: &[SCOPE_STEP], source: MS_ERROR_CODES },
    AadRow { code: 700027, meaning: "client assertion failed signature validation",
        cause: "The client assertion's signature did not verify: the certificate whose key signed it is not the one uploaded to the app registration.",
        steps: &["Upload the certificate (public part) under App registrations > your app > Certificates & secrets > Certificates, and sign with its private key ({setting:oauth_client_cert}, {setting:oauth_client_key})."], source: MS_ERROR_CODES },
    AadRow { code: 700024, meaning: "client assertion is not within its valid time range",
        cause: "The client assertion's time claims are outside what Entra ID accepts: this machine's clock is wrong.",
        steps: &["Synchronize this machine's clock (NTP); assertions are valid for ten minutes."], source: MS_ERROR_CODES },
    AadRow { code: 7000218, meaning: "the request body must contain client_assertion or client_secret",
        cause: "The app is a confidential client but no secret or certificate was sent (or public client flows are off for the device grant).",
        steps: &[CLIENT_SECRET, "For the device grant without a secret, enable Allow public client flows under App registrations > your app > Authentication."], source: MS_ERROR_CODES },
    AadRow { code: 50059, meaning: "no tenant-identifying information found",
        cause: "The request names no tenant (common or organizations do not work with client credentials).",
        steps: &[APP_AND_TENANT], source: MS_ERROR_CODES },
    AadRow { code: 53003, meaning: "access has been blocked by Conditional Access policies",
        cause: "A Conditional Access policy blocks this sign-in (location, device or app conditions).",
        steps: &["Review the sign-in in Entra ID > Sign-in logs (Conditional Access tab) and exclude or satisfy the policy that blocked it."], source: MS_ERROR_CODES },
    AadRow { code: 50076, meaning: "multifactor authentication required",
        cause: "The sign-in needs multifactor authentication, which this grant cannot do.",
        steps: &["Use the device grant ({setting:oauth_grant=device}) so the person completes MFA in a browser, or client credentials for an unattended probe."], source: MS_ERROR_CODES },
    AadRow { code: 50126, meaning: "invalid username or password",
        cause: "The user's sign-in failed: wrong user name or password.",
        steps: &["Sign in again with the right account in the device flow."], source: MS_ERROR_CODES },
];

/// RFC 6749 5.2 codes (source RFC6749), for servers without AADSTS numbers.
const OAUTH_ERRORS: &[(&str, &str, &[&str])] = &[
    ("invalid_client", "The authorization server did not accept the client: unknown client ID, wrong secret or assertion.", &[APP_AND_TENANT, CLIENT_SECRET]),
    ("unauthorized_client", "The client is not allowed to use this grant type.", &[APP_PERMISSION]),
    ("invalid_scope", "The scope asked for is unknown, malformed or more than the client may have.", &[SCOPE_STEP]),
    ("invalid_grant", "The grant (a device code or refresh token) is invalid, expired or revoked.", &[NEW_TOKEN]),
    ("unsupported_grant_type", "The authorization server does not support this grant type.", &[]),
    ("invalid_request", "The token request lacks a parameter or is malformed.", &[]),
];

/// Explains a failure to get a token (the auth stage's error message).
pub(crate) fn explain_token_error(d: &str) -> (Category, Layer, String, Vec<&'static str>) {
    let (cause, steps) = token_error(d, "SMTP AUTH");
    (Category::AuthFailed, Layer::Auth, cause, steps)
}

/// Explains a failure to get the token a mailbox logs in with (the round trip's IMAP login):
/// (cause, steps).
pub fn explain_mailbox_token_error(detail: &str) -> (String, Vec<&'static str>) {
    let (cause, steps) = token_error(&detail.to_ascii_lowercase(), "IMAP login");
    // The same rows, with IMAP's permission and scope.
    let steps = steps
        .into_iter()
        .map(|s| match s {
            APP_PERMISSION => IMAP_APP_PERMISSION,
            SCOPE_STEP => IMAP_SCOPE_STEP,
            s => s,
        })
        .collect();
    (cause, steps)
}

/// Why no token was had (`d` lower-case), and that `what` was therefore not attempted.
fn token_error(d: &str, what: &str) -> (String, Vec<&'static str>) {
    if let Some(row) = aadsts(d) {
        (format!("Microsoft Entra ID refused the token request with AADSTS{} ({}): {} No {what} was attempted.", row.code, row.meaning, row.cause), row.steps.to_vec())
    } else if let Some((code, cause, steps)) = OAUTH_ERRORS.iter().find(|(c, _, _)| d.contains(c)) {
        (format!("The authorization server refused the token request ({code}, {RFC6749}): {cause} No {what} was attempted."), steps.to_vec())
    } else if d.contains("https_proxy") {
        (format!("The proxy named by HTTPS_PROXY could not be used to reach the token endpoint (unreachable, or it refused the CONNECT tunnel), so there was no token and no {what} was attempted."), vec![PROXY])
    } else if d.contains("tls with") {
        ("The token endpoint's TLS certificate did not verify, so no token was requested (mxtrace verifies token endpoints strictly, against the same trust stores as SMTP).".to_string(), vec![ENDPOINT_CERT])
    } else if d.contains("no complete answer within")
        || d.contains("cannot connect")
        || d.contains("cannot resolve")
    {
        ("The token endpoint could not be reached or did not answer in time, so there was no token to authenticate with.".to_string(), vec![ENDPOINT_REACH])
    } else if d.contains("answered 401") || d.contains("answered 403") {
        // RFC 6749 5.2: a client that fails to authenticate may get 401; Glewlwyd answers a
        // wrong secret with a bare 403.
        (format!("The token endpoint refused the client without an OAuth error (HTTP 401/403): a wrong client ID or secret, or a client not allowed this grant or scope. No {what} was attempted."), vec![APP_AND_TENANT, CLIENT_SECRET])
    } else if d.contains("answered 5") {
        ("The token endpoint failed on its side (a 5xx answer): the authorization server is down or overloaded.".to_string(), vec!["Retry later; for Entra ID check Microsoft 365 Service Health."])
    } else if d.contains("device code") || d.contains("declined") {
        ("The device sign-in was not completed: the code expired or the person declined.".to_string(), vec!["Run the probe again and complete the sign-in at the address shown, within the time given."])
    } else if d.contains("token file") || d.contains("environment variable") {
        (
            "The access token could not be read from where it was said to be.".to_string(),
            vec![NEW_TOKEN],
        )
    } else {
        (
            format!("No OAuth access token could be had, so no {what} was attempted."),
            vec![NEW_TOKEN],
        )
    }
}

/// The AADSTS row a message names (`AADSTS7000215: ...` in Entra's error description).
pub fn aadsts(d: &str) -> Option<&'static AadRow> {
    let lower = d.to_ascii_lowercase();
    let at = lower.find("aadsts")? + 6;
    let digits: String = lower
        .get(at..)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let code: u64 = digits.parse().ok()?;
    AADSTS.iter().find(|r| r.code == code)
}

/// A SASL error challenge's status: (statuses, what it means, steps for SMTP AUTH, steps
/// for an IMAP login, source).
type ChallengeRow = (
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
);

static CHALLENGES: &[ChallengeRow] = &[
    (&["invalid_token", "401"], "the token is expired, revoked, or not valid for this server or this user (a token issued to another account or audience)", &[NEW_TOKEN, SERVICE_PRINCIPAL], &[NEW_TOKEN, SERVICE_PRINCIPAL, IMAP_MAILBOX], RFC7628),
    (&["insufficient_scope", "403"], "the token is valid but lacks the scope or permission this server needs", &[SCOPE_STEP, APP_PERMISSION], &[IMAP_SCOPE_STEP, IMAP_APP_PERMISSION], RFC7628),
    (&["invalid_request", "400"], "the request was malformed: the user name and the token's account differ, or the token is not a bearer token", &[NEW_TOKEN], &[NEW_TOKEN, IMAP_MAILBOX], RFC7628),
];

/// Which login a token was refused at: the steps name its permission and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    SmtpAuth,
    Imap,
}

/// What a SASL error challenge's status means at SMTP AUTH: (sentence, steps).
pub fn explain_challenge(status: &str, scope: Option<&str>) -> (String, Vec<&'static str>) {
    explain_challenge_for(TokenUse::SmtpAuth, status, scope)
}

/// What an IMAP server's refusal of a token means, with the error challenge it sent when it
/// sent one (status, scope): (sentence, steps). Exchange Online sends none (`NO AUTHENTICATE
/// failed.`), so without one every usual cause is a step.
pub fn explain_imap_token_refusal(
    challenge: Option<(&str, Option<&str>)>,
) -> (String, Vec<&'static str>) {
    match challenge {
        Some((status, scope)) => explain_challenge_for(TokenUse::Imap, status, scope),
        None => (
            "The IMAP server refused the OAuth token without an error challenge that says why: the token may be expired or for another audience, the app may lack IMAP.AccessAsApp, its service principal may not be registered or lack FullAccess on the mailbox, or IMAP may be off for the mailbox.".to_string(),
            vec![NEW_TOKEN, IMAP_APP_PERMISSION, SERVICE_PRINCIPAL, IMAP_MAILBOX],
        ),
    }
}

/// What a SASL error challenge's status means: (sentence, steps for `at`).
pub fn explain_challenge_for(
    at: TokenUse,
    status: &str,
    scope: Option<&str>,
) -> (String, Vec<&'static str>) {
    let (what, steps) = CHALLENGES
        .iter()
        .find(|(names, ..)| names.contains(&status))
        .map_or(
            ("the server refused the token", &[NEW_TOKEN][..]),
            |(_, w, smtp, imap, _)| match at {
                TokenUse::SmtpAuth => (*w, *smtp),
                TokenUse::Imap => (*w, *imap),
            },
        );
    let clean = |s: &str| {
        s.chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
    };
    let wants = scope
        .map(|s| format!(" It asks for scope \"{}\".", clean(s)))
        .unwrap_or_default();
    (
        format!(
            "The server's OAuth error challenge says {}: {what} (RFC 7628 3.2.2).{wants}",
            clean(status)
        ),
        steps.to_vec(),
    )
}

/// True for Exchange Online's client submission: smtp.office365.com and its front ends
/// (`*.outlook.office365.com`, `*.prod.outlook.com`), by name or by what the banner or EHLO
/// says (MS_SMTP_AUTH).
pub fn is_exchange_online_submission(
    host: &str,
    banner: Option<&Reply>,
    ehlo: Option<&Capabilities>,
) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let exo = |name: &str| {
        let n = name.trim_end_matches('.').to_ascii_lowercase();
        n == "smtp.office365.com"
            || n.ends_with(".outlook.office365.com")
            || n.ends_with(".prod.outlook.com")
    };
    let first_word = |r: &Reply| {
        r.lines
            .first()
            .and_then(|l| l.get(4..))
            .and_then(|t| t.split_whitespace().next())
            .map(str::to_string)
    };
    exo(&h)
        || banner.and_then(first_word).is_some_and(|n| exo(&n))
        || ehlo
            .and_then(|c| c.server_name.clone())
            .is_some_and(|n| exo(&n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{classify_reply, explain_error, Tier};
    use mxtrace_proto::model::{ErrorKind, Stage};

    fn at_auth(text: &str) -> crate::Finding {
        classify_reply(Some(Stage::Auth), &Reply::parse_text(text).unwrap())
    }

    #[test]
    fn exchange_online_auth_replies_in_microsofts_terms() {
        // Reply texts as Microsoft Learn quotes them (MS_SMTP_AUTH, MS_SMTP_OAUTH).
        for (text, words, step) in [
            ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [AM0PR02CA0012.eurprd02.prod.outlook.com]", "SmtpClientAuthenticationDisabled", "Set-CASMailbox"),
            ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.", "for this mailbox or for the whole tenant", "Set-CASMailbox"),
            ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [BN9PR03CA0123.namprd03.prod.outlook.com]", "only OAuth 2.0", "SMTP.SendAsApp"),
            ("535 5.7.139 Authentication unsuccessful, the user credentials were incorrect. [x.prod.outlook.com]", "wrong password", "OAuth"),
            ("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator. [x]", "Conditional Access", "OAuth"),
            ("535 5.7.3 Authentication unsuccessful [YQZPR01CA0021.CANPRD01.PROD.OUTLOOK.COM 2024-04-13T15:44:48.786Z 08DC5BA2C153C1D0]", "SMTP.SendAsApp", "New-ServicePrincipal"),
        ] {
            let f = at_auth(text);
            assert_eq!((f.category, f.tier), (Category::AuthFailed, Tier::Microsoft), "{text}");
            assert!(f.cause.contains(words), "{text}: {}", f.cause);
            assert!(f.next_steps.iter().any(|s| s.contains(step)), "{text}: {:?}", f.next_steps);
        }
        let f = classify_reply(
            Some(Stage::MailFrom),
            &Reply::parse_text(
                "530 5.7.57 Client not authenticated to send mail. [x.prod.outlook.com]",
            )
            .unwrap(),
        );
        assert_eq!(f.category, Category::AuthRequired);
        assert!(f
            .next_steps
            .iter()
            .any(|s| s.contains("SmtpClientAuthenticationDisabled")));
        let f = classify_reply(
            Some(Stage::MailFrom),
            &Reply::parse_text(
                "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
            )
            .unwrap(),
        );
        assert_eq!(
            (f.category, f.layer),
            (Category::SenderRejected, Layer::Auth)
        );
        assert!(f
            .next_steps
            .iter()
            .any(|s| s.contains("Add-RecipientPermission")));
    }

    #[test]
    fn token_endpoint_errors_are_explained() {
        let e = explain_error(Stage::Auth, ErrorKind::Auth, "no OAuth access token, so no AUTH was sent: token endpoint https://login.microsoftonline.com/contoso/oauth2/v2.0/token answered 400 invalid_request: AADSTS90002: Tenant 'contoso' not found.");
        assert_eq!(e.category, Category::AuthFailed);
        assert!(
            e.cause.contains("AADSTS90002 (tenant not found)"),
            "{}",
            e.cause
        );
        let e = explain_error(Stage::Auth, ErrorKind::Auth, "no OAuth access token, so no AUTH was sent: token endpoint https://a.test/t answered 400 invalid_scope");
        assert!(e.cause.contains("(invalid_scope, RFC 6749"), "{}", e.cause);
        for row in AADSTS {
            assert!(
                !row.steps.is_empty() && row.source == MS_ERROR_CODES,
                "{}",
                row.code
            );
            assert_eq!(
                aadsts(&format!("AADSTS{}: x", row.code)).map(|r| r.code),
                Some(row.code)
            );
        }
        assert!(aadsts("AADSTS1: unknown").is_none());
    }

    #[test]
    fn exchange_online_submission_by_name_banner_or_ehlo() {
        assert!(is_exchange_online_submission(
            "smtp.office365.com.",
            None,
            None
        ));
        assert!(!is_exchange_online_submission("smtp.gmail.com", None, None));
        let banner = Reply::parse_text(
            "220 AM0PR02CA0012.outlook.office365.com Microsoft ESMTP MAIL Service ready",
        )
        .unwrap();
        assert!(is_exchange_online_submission(
            "192.0.2.1",
            Some(&banner),
            None
        ));
        let (s, _) = explain_challenge(
            "insufficient_scope",
            Some("https://outlook.office365.com/.default\u{1b}"),
        );
        assert!(
            s.contains("lacks the scope") && !s.contains('\u{1b}'),
            "{s}"
        );
    }
}
