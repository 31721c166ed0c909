//! The `mxtrace roundtrip` flags: the session flags of `probe` (TLS, AUTH, network) without
//! the message ones (it always sends one), one recipient, the mailbox, and the wait. The
//! engine (`mxtrace_core::roundtrip`) does the rest.

use super::{
    duration, engine, scenario_letter, AuthArgs, CliError, HtmlArgs, HumanDuration, NetArgs,
    TlsArgs,
};
use clap::{Args, ValueEnum};
use mxtrace_core::job::{Job, Target};
use mxtrace_core::oauth::TokenSource;
use mxtrace_core::roundtrip::{self, MailboxLogin, MailboxOptions, RoundtripOptions};
use mxtrace_proto::mailbox::MailboxUrl;
use mxtrace_proto::model::{PathContext, Scenario};
use mxtrace_proto::secret::{Secret, SecretError};
use mxtrace_proto::spec::Naming;
use mxtrace_proto::spec::SessionSpec;
use std::path::PathBuf;

pub const ROUNDTRIP_EXAMPLES: &str = "\
Examples:
  # Send through a given server, confirm over IMAPS (password in a variable):
  MBOX_PW=... mxtrace roundtrip --via mx.contoso.com --from probe@fabrikam.com \\
      --rcpt probe@contoso.com --mailbox imaps://probe@contoso.com@outlook.office365.com \\
      --mailbox-password-env MBOX_PW
  # Without --via: the recipient domain's MX, walked as `trace` walks it; expect scenario A:
  mxtrace roundtrip --rcpt probe@contoso.com --mailbox imaps://probe@contoso.com@imap.contoso.com \\
      --scenario A --within 2m --json
  # Microsoft 365: the mailbox over IMAP with an app's token (IMAP.AccessAsApp), no password:
  SECRET=... mxtrace roundtrip --from probe@fabrikam.com --rcpt probe@contoso.com \\
      --mailbox imaps://probe@contoso.com@outlook.office365.com --mailbox-oauth \\
      --oauth-tenant contoso.onmicrosoft.com --oauth-client-id ID --oauth-client-secret-env SECRET
  # Bounces to the sender's mailbox are read and explained:
  mxtrace roundtrip --via 127.0.0.1:25 --from ndr@contoso.test --rcpt bounce@contoso.test \\
      --mailbox imaps://user@contoso.test@127.0.0.1 --ndr-mailbox imaps://ndr@contoso.test@127.0.0.1

The mailboxes are logged in to before anything is sent, so a wrong password or token leaves no
message behind. --mailbox-oauth takes the token from the --oauth-* settings (one app with
SMTP.SendAsApp and IMAP.AccessAsApp gets one token for both); without --auth-user they are the
mailbox's only and the message is sent without AUTH. The probe is found by its X-Mxtrace-Probe header in INBOX and Junk, and deleted by UID
(UID EXPUNGE, RFC 4315) unless --keep; nothing else in the mailbox is touched.

Exit codes:
  0  delivered to the inbox, no finding that would hurt real mail
  1  not delivered (not accepted, not seen in time, bounced), in Junk, or an error finding
  2  usage error, or the mailbox could not be logged in to, or no token for it (nothing was sent)
  3  internal error";

/// `--mailbox-auth-mech` values: the SASL mechanisms of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenMech {
    /// Google's and Microsoft's bearer-token mechanism.
    Xoauth2,
    /// RFC 7628.
    Oauthbearer,
}

/// One mailbox's login flags, as given.
struct LoginFlags<'a> {
    flag: &'static str,
    password_env: Option<&'a str>,
    password_file: Option<&'a std::path::Path>,
    oauth: bool,
    token_env: Option<&'a str>,
    token_file: Option<&'a std::path::Path>,
    mech: Option<TokenMech>,
}

/// Each mailbox logs in one way: a password or a token, from one place.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mailbox_login").multiple(false).args([
    "mailbox_password_env", "mailbox_password_file", "mailbox_oauth",
    "mailbox_oauth_token_env", "mailbox_oauth_token_file",
])))]
#[command(group(clap::ArgGroup::new("ndr_mailbox_login").multiple(false).args([
    "ndr_mailbox_password_env", "ndr_mailbox_password_file", "ndr_mailbox_oauth",
    "ndr_mailbox_oauth_token_env", "ndr_mailbox_oauth_token_file",
])))]
pub struct RoundtripArgs {
    /// The recipient: its mailbox is the one --mailbox opens.
    #[arg(long, value_name = "ADDRESS", help_heading = "SMTP")]
    pub rcpt: String,
    /// MAIL FROM address (default: the null sender <>, which cannot receive a bounce).
    #[arg(long, value_name = "ADDRESS", help_heading = "SMTP")]
    pub from: Option<String>,
    /// Send to this server; without it, to the recipient domain's MX as `trace` walks it.
    #[arg(long, value_name = "HOST[:PORT]", help_heading = "SMTP")]
    pub via: Option<String>,
    /// EHLO name (default: this machine's FQDN, else its address literal).
    #[arg(long, value_name = "NAME", help_heading = "SMTP")]
    pub ehlo: Option<String>,
    /// Extra header for the message, "Name: value"; repeatable.
    #[arg(long, value_name = "HEADER", help_heading = "SMTP")]
    pub header: Vec<String>,
    /// Do not pipeline MAIL and RCPT even when the server offers PIPELINING.
    #[arg(long, help_heading = "SMTP")]
    pub no_pipelining: bool,

    /// The mailbox to look in: imaps://USER@HOST[:PORT] (TLS, 993) or imap://USER@HOST[:PORT]
    /// (STARTTLS, 143).
    #[arg(long, value_name = "URL", help_heading = "Mailbox")]
    pub mailbox: String,
    /// Read the mailbox password from this environment variable (never from the command line;
    /// without this or the file, it is asked for on the terminal).
    #[arg(long, value_name = "VAR", help_heading = "Mailbox")]
    pub mailbox_password_env: Option<String>,
    /// Read the mailbox password from the first line of this file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "mailbox_password_env",
        help_heading = "Mailbox"
    )]
    pub mailbox_password_file: Option<PathBuf>,
    /// Log in to the mailbox with an OAuth 2.0 token from the --oauth-* settings (XOAUTH2 or
    /// OAUTHBEARER), the same token request as SMTP AUTH's; without --auth-user they are the
    /// mailbox's only.
    #[arg(long, help_heading = "Mailbox")]
    pub mailbox_oauth: bool,
    /// Log in to the mailbox with the OAuth 2.0 access token in this environment variable.
    #[arg(long, value_name = "VAR", help_heading = "Mailbox")]
    pub mailbox_oauth_token_env: Option<String>,
    /// Log in to the mailbox with the OAuth 2.0 access token on the first line of this file.
    #[arg(long, value_name = "FILE", help_heading = "Mailbox")]
    pub mailbox_oauth_token_file: Option<PathBuf>,
    /// The mailbox's SASL mechanism for a token (default: XOAUTH2 when offered, else
    /// OAUTHBEARER).
    #[arg(long, value_enum, value_name = "MECH", help_heading = "Mailbox")]
    pub mailbox_auth_mech: Option<TokenMech>,
    /// Also trust the CA certificates in this PEM file for the IMAP servers (verification is
    /// always strict: a password or token goes only to a verified server).
    #[arg(long, value_name = "FILE", help_heading = "Mailbox")]
    pub mailbox_ca_file: Option<PathBuf>,
    /// Name to verify the IMAP server's certificate against (default: the URL's host).
    #[arg(long, value_name = "NAME", help_heading = "Mailbox")]
    pub mailbox_tls_name: Option<String>,
    /// Time allowed for each IMAP command.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(roundtrip::DEFAULT_IMAP_TIMEOUT), value_parser = duration, help_heading = "Mailbox")]
    pub mailbox_timeout: HumanDuration,
    /// The sender's mailbox, where a bounce would arrive: read and explained when one does.
    #[arg(long, value_name = "URL", help_heading = "Mailbox")]
    pub ndr_mailbox: Option<String>,
    /// Read the NDR mailbox password from this environment variable.
    #[arg(
        long,
        value_name = "VAR",
        requires = "ndr_mailbox",
        help_heading = "Mailbox"
    )]
    pub ndr_mailbox_password_env: Option<String>,
    /// Read the NDR mailbox password from the first line of this file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "ndr_mailbox",
        conflicts_with = "ndr_mailbox_password_env",
        help_heading = "Mailbox"
    )]
    pub ndr_mailbox_password_file: Option<PathBuf>,
    /// Log in to the NDR mailbox with a token from the --oauth-* settings.
    #[arg(long, requires = "ndr_mailbox", help_heading = "Mailbox")]
    pub ndr_mailbox_oauth: bool,
    /// Log in to the NDR mailbox with the OAuth 2.0 access token in this environment variable.
    #[arg(
        long,
        value_name = "VAR",
        requires = "ndr_mailbox",
        help_heading = "Mailbox"
    )]
    pub ndr_mailbox_oauth_token_env: Option<String>,
    /// Log in to the NDR mailbox with the OAuth 2.0 access token on the first line of this file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "ndr_mailbox",
        help_heading = "Mailbox"
    )]
    pub ndr_mailbox_oauth_token_file: Option<PathBuf>,

    /// How long to wait for the message.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(roundtrip::DEFAULT_WITHIN), value_parser = duration, help_heading = "Round trip")]
    pub within: HumanDuration,
    /// Leave the probe message (and a bounce) in the mailbox.
    #[arg(long, help_heading = "Round trip")]
    pub keep: bool,
    /// A hop slower than this is a finding.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(roundtrip::DEFAULT_SLOW_HOP), value_parser = duration, help_heading = "Round trip")]
    pub slow_hop: HumanDuration,
    /// The delivery scenario the path should show: A, B, C or D.
    #[arg(long, value_parser = scenario_letter, help_heading = "Round trip")]
    pub scenario: Option<Scenario>,

    /// Without --via: the DNS server to ask for the MX (IP, IP:PORT or [IPv6]:PORT).
    #[arg(
        long,
        value_name = "IP[:PORT]",
        conflicts_with = "via",
        help_heading = "DNS"
    )]
    pub resolver: Option<String>,
    /// Without --via: the SMTP port of the MX hosts.
    #[arg(long, value_name = "N", conflicts_with = "via", value_parser = clap::value_parser!(u16).range(1..), help_heading = "DNS")]
    pub port: Option<u16>,

    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub html: HtmlArgs,
}

impl RoundtripArgs {
    /// Every flag checked and every password read, before anything connects.
    pub fn to_options(&self) -> Result<RoundtripOptions, CliError> {
        let probe_id = mxtrace_core::probe::new_probe_id();
        let mut session = self.tls.spec().or(&self.auth.spec()).or(&self.net.spec());
        session.ehlo = self.ehlo.clone();
        session.from = self.from.clone();
        session.rcpt = Some(vec![self.rcpt.clone()]);
        session.data = Some(true);
        session.header = Some(self.header.clone());
        session.pipelining = Some(!self.no_pipelining);
        let shared = self.mailbox_oauth || self.ndr_mailbox_oauth;
        if let Some(field) = session.oauth_source() {
            if session.auth_user.is_none() && !shared {
                return Err(CliError::OAuthUnused { flag: field.flag() });
            }
        }
        let mut job = self.job(roundtrip::sending_session(session.clone(), shared))?;
        roundtrip::prepare(&mut job, &probe_id);
        let mailbox = self.mailbox_options(
            &self.mailbox,
            &session,
            LoginFlags {
                flag: "--mailbox",
                password_env: self.mailbox_password_env.as_deref(),
                password_file: self.mailbox_password_file.as_deref(),
                oauth: self.mailbox_oauth,
                token_env: self.mailbox_oauth_token_env.as_deref(),
                token_file: self.mailbox_oauth_token_file.as_deref(),
                mech: self.mailbox_auth_mech,
            },
        )?;
        let ndr_mailbox = match &self.ndr_mailbox {
            Some(url) => Some(self.mailbox_options(
                url,
                &session,
                LoginFlags {
                    flag: "--ndr-mailbox",
                    password_env: self.ndr_mailbox_password_env.as_deref(),
                    password_file: self.ndr_mailbox_password_file.as_deref(),
                    oauth: self.ndr_mailbox_oauth,
                    token_env: self.ndr_mailbox_oauth_token_env.as_deref(),
                    token_file: self.ndr_mailbox_oauth_token_file.as_deref(),
                    mech: None,
                },
            )?),
            None => None,
        };
        Ok(RoundtripOptions {
            send: job,
            rcpt: self.rcpt.clone(),
            from: self.from.clone(),
            probe_id,
            mailbox,
            ndr_mailbox,
            within: self.within.0,
            keep: self.keep,
            expected_scenario: self.scenario,
            slow_hop: self.slow_hop.0,
        })
    }

    fn job(&self, mut session: SessionSpec) -> Result<Job, CliError> {
        let ctx = PathContext::default();
        match &self.via {
            Some(via) => {
                let target = Target::probe(via, session.default_port())?;
                Ok(Job::new(&target, &session, ctx, None, Naming::Flag)?)
            }
            None => {
                let domain = self
                    .rcpt
                    .rsplit_once('@')
                    .map(|(_, d)| d)
                    .ok_or_else(|| CliError::RcptAddress(self.rcpt.clone()))?;
                session.resolver = self.resolver.clone();
                session.port = self.port;
                let target = Target::trace(domain)?;
                Ok(Job::new(&target, &session, ctx, None, Naming::Flag)?)
            }
        }
    }

    fn mailbox_options(
        &self,
        url: &str,
        session: &SessionSpec,
        f: LoginFlags<'_>,
    ) -> Result<MailboxOptions, CliError> {
        let flag = f.flag;
        let url = MailboxUrl::parse(url).map_err(|source| CliError::MailboxUrl { flag, source })?;
        let login = mailbox_login(&url, session, &f)?;
        Ok(MailboxOptions::new(
            url,
            login,
            self.mailbox_ca_file.clone(),
            self.mailbox_tls_name.clone(),
            self.mailbox_timeout.0,
        ))
    }
}

/// A mailbox's login: a token (the shared settings', a variable's or a file's), else the
/// password from a variable, a file or the terminal.
fn mailbox_login(
    url: &MailboxUrl,
    session: &SessionSpec,
    f: &LoginFlags<'_>,
) -> Result<MailboxLogin, CliError> {
    let flag = f.flag;
    let mech = f.mech.and_then(engine);
    if f.oauth {
        return MailboxLogin::shared(session, &url.user, mech)?
            .ok_or(CliError::MailboxOAuthSource { flag });
    }
    let source = match (f.token_env, f.token_file) {
        (Some(var), _) => Some(TokenSource::Env(var.to_string())),
        (None, Some(path)) => Some(TokenSource::File(path.to_path_buf())),
        (None, None) => None,
    };
    if let Some(source) = source {
        return Ok(MailboxLogin::token(source, mech, session)?);
    }
    if f.mech.is_some() {
        return Err(CliError::MailboxMechWithoutToken);
    }
    let password = match (f.password_env, f.password_file) {
        (Some(var), _) => Secret::from_env(var),
        (None, Some(file)) => Secret::from_file(file),
        (None, None) => Secret::prompt(&url.user),
    }
    .map_err(|e| match e {
        SecretError::NoTerminal => CliError::NoMailboxPassword { flag },
        e => CliError::MailboxPassword { flag, source: e },
    })?;
    Ok(MailboxLogin::Password(password))
}
