//! The `mxtrace roundtrip` flags: the session flags of `probe` (TLS, AUTH, network) without
//! the message ones (it always sends one), one recipient, the mailbox, and the wait. The
//! engine (`mxtrace_core::roundtrip`) does the rest.

use super::{
    duration, scenario_letter, AuthArgs, CliError, HtmlArgs, HumanDuration, NetArgs, TlsArgs,
};
use clap::Args;
use mxtrace_core::job::{Job, Target};
use mxtrace_core::roundtrip::{self, MailboxOptions, RoundtripOptions};
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
  # Bounces to the sender's mailbox are read and explained:
  mxtrace roundtrip --via 127.0.0.1:25 --from ndr@contoso.test --rcpt bounce@contoso.test \\
      --mailbox imaps://user@contoso.test@127.0.0.1 --ndr-mailbox imaps://ndr@contoso.test@127.0.0.1

The mailboxes are logged in to before anything is sent, so a wrong password leaves no message
behind. The probe is found by its X-Mxtrace-Probe header in INBOX and Junk, and deleted by UID
(UID EXPUNGE, RFC 4315) unless --keep; nothing else in the mailbox is touched.

Exit codes:
  0  delivered to the inbox, no finding that would hurt real mail
  1  not delivered (not accepted, not seen in time, bounced), in Junk, or an error finding
  2  usage error, or the mailbox could not be logged in to (nothing was sent)
  3  internal error";

#[derive(Debug, Args)]
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
    /// Also trust the CA certificates in this PEM file for the IMAP servers (verification is
    /// always strict: a password goes only to a verified server).
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
        let mut job = self.job(session)?;
        roundtrip::prepare(&mut job, &probe_id);
        let mailbox = self.mailbox_options(
            &self.mailbox,
            "--mailbox",
            self.mailbox_password_env.as_deref(),
            self.mailbox_password_file.as_deref(),
        )?;
        let ndr_mailbox = match &self.ndr_mailbox {
            Some(url) => Some(self.mailbox_options(
                url,
                "--ndr-mailbox",
                self.ndr_mailbox_password_env.as_deref(),
                self.ndr_mailbox_password_file.as_deref(),
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
        flag: &'static str,
        env: Option<&str>,
        file: Option<&std::path::Path>,
    ) -> Result<MailboxOptions, CliError> {
        let url = MailboxUrl::parse(url).map_err(|source| CliError::MailboxUrl { flag, source })?;
        let password = match (env, file) {
            (Some(var), _) => Secret::from_env(var),
            (None, Some(f)) => Secret::from_file(f),
            (None, None) => Secret::prompt(&url.user),
        }
        .map_err(|e| match e {
            SecretError::NoTerminal => CliError::NoMailboxPassword { flag },
            e => CliError::MailboxPassword { flag, source: e },
        })?;
        Ok(MailboxOptions::with_password(
            url,
            password,
            self.mailbox_ca_file.clone(),
            self.mailbox_tls_name.clone(),
            self.mailbox_timeout.0,
        ))
    }
}
