//! Command-line surface (DESIGN.md "Command surface"): clap definitions and their conversion
//! into the options the engine takes. Anything the user typed wrong is a `UsageError` (exit 2).

use crate::diagnose::{PathContext, Scenario};
use crate::probe::{AuthMech, AuthOptions, Family, ProbeOptions, StartTls};
use crate::secret::Secret;
use crate::tls::{TlsOptions, VerifyMode};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  the check passed
  1  the check ran and the target failed it (rejection, unreachable, expectation not met)
  2  usage or input error (bad flag, bad address, unreadable file)
  3  internal error";

#[derive(Debug, Parser)]
#[command(
    name = "mxtrace",
    version,
    about = "SMTP path tracer: probe a mail server stage by stage and explain every reply",
    long_about = "SMTP path tracer and synthetic transaction tool. Connects, negotiates EHLO and \
                  STARTTLS, steps through MAIL FROM and RCPT TO (DATA only when asked), records \
                  every reply with its timing, and explains each one.",
    after_help = EXIT_CODES,
    max_term_width = 100
)]
pub struct Cli {
    /// Output format: a transcript for people, or one JSON object per run.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Short for --format json.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe one SMTP endpoint, stage by stage: the "telnet host 25" replacement.
    #[command(after_help = PROBE_EXAMPLES)]
    Probe(Box<ProbeArgs>),
    /// Walk a domain's MX hosts as a sending MTA does: MX, addresses, reverse DNS, then SMTP.
    ///
    /// Looks up the MX records (or the implicit MX; a null MX means no mail), every A/AAAA of
    /// each host and its reverse DNS, then probes the addresses in order until one gives a
    /// definitive answer; --all probes every address.
    #[command(after_help = TRACE_EXAMPLES)]
    Trace(Box<TraceArgs>),
    /// Classify a pasted SMTP reply offline: class, category, layer, cause, next steps.
    #[command(after_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainArgs),
    /// Run a scenario file: every hop, every expectation; exit 1 if one is not met.
    ///
    /// A scenario file (TOML, see scenarios/) lists the hops of a delivery path, each a domain
    /// (its MX walked as by `trace`) or explicit hosts (each probed as by `probe`), and what
    /// must be true of each: MX names, reachability, STARTTLS, certificate name and days left,
    /// the reply at a stage, latency budgets, no open relay. Prints one line per expectation.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Compare two JSON results (`run`, `probe` or `trace --json`): what changed, and whether
    /// it is a regression.
    ///
    /// Compares per hop and address: reachability, TLS version and verification, certificate
    /// fingerprint and expiry, EHLO capabilities, the reply code and category at each stage,
    /// latency beyond --latency-threshold, and (for `run`) each expectation.
    #[command(after_help = DIFF_EXAMPLES)]
    Diff(DiffArgs),
    /// Read a delivered message or an NDR: hops, delays, TLS, authentication, Exchange
    /// anti-spam stamps, each failed recipient explained, and the commands to test the path.
    #[command(after_help = crate::headers_cli::HEADERS_EXAMPLES)]
    Headers(crate::headers_cli::HeadersArgs),
    /// See what mxtrace does, offline: start the lab on loopback, trace scenarios A-D through
    /// it, then each fault of the runbooks, and explain every failure.
    ///
    /// Every check is a real `trace` or `probe` run (the command is shown) against the lab's
    /// DNS and SMTP servers on 127.0.0.0/8; nothing else is contacted. Each fault runs in a
    /// lab of its own, and the demo verifies that mxtrace reports the category and layer the
    /// runbooks expect for it.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// The lab of the four delivery scenarios (DNS, EOP, on-premises Exchange, third party) on
    /// loopback.
    #[command(subcommand)]
    Lab(LabCommand),
}

const RUN_EXAMPLES: &str = "\
Examples:
  cp scenarios/b-hybrid-inbound.toml mycorp.toml && $EDITOR mycorp.toml
  mxtrace run mycorp.toml                        # one line per expectation
  mxtrace run mycorp.toml --junit report.xml     # CI: JUnit XML, one test case per expectation
  mxtrace run mycorp.toml --json > before.json   # before a firewall change; then diff
  mxtrace run mycorp.toml --resolver 127.0.0.1:5353 --port 2525   # the same file in a lab

The overrides replace the file's values in every hop. No DATA is ever sent by `run`.

Exit codes:
  0  every expectation was met
  1  at least one was not
  2  usage or input error: a bad scenario file (reported as FILE:LINE:COL), an unwritable
     --junit path, a missing password variable
  3  internal error";

const DIFF_EXAMPLES: &str = "\
Examples:
  mxtrace run mycorp.toml --json > before.json
  # ... the firewall or connector change ...
  mxtrace run mycorp.toml --json > after.json
  mxtrace diff before.json after.json
  mxtrace diff before.json after.json --latency-threshold 200ms --json

Exit codes:
  0  no regression (changes and improvements are listed)
  1  at least one regression: an address no longer reachable, TLS or STARTTLS lost, a
     certificate that no longer verifies or expires within 14 days, a stage now refused,
     latency beyond the threshold, an expectation now failing
  2  usage or input error (unreadable file, not mxtrace JSON)
  3  internal error";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    #[arg(value_name = "SCENARIO.toml")]
    pub file: PathBuf,
    /// Also write a JUnit XML report here (one test suite per hop, one test case per
    /// expectation). Checked for writability before anything runs.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// DNS server for every hop (labs, split DNS): IP, IP:PORT or [IPv6]:PORT.
    #[arg(long, value_name = "IP[:PORT]", help_heading = "Overrides")]
    pub resolver: Option<String>,
    /// SMTP port for every hop and host (labs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), help_heading = "Overrides")]
    pub port: Option<u16>,
    /// Time allowed for one DNS request.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Overrides")]
    pub dns_timeout: Option<Duration>,
    /// Time allowed for each TCP connection.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Overrides")]
    pub connect_timeout: Option<Duration>,
    /// Time allowed for each stage after connect.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Overrides")]
    pub stage_timeout: Option<Duration>,
    /// EHLO name for every hop.
    #[arg(long, value_name = "NAME", help_heading = "Overrides")]
    pub ehlo: Option<String>,
    /// CA certificates (PEM) to trust in every hop, besides the public roots.
    #[arg(long, value_name = "FILE", help_heading = "Overrides")]
    pub tls_ca_file: Option<PathBuf>,
    /// Local address to connect from.
    #[arg(long, value_name = "IP", help_heading = "Overrides")]
    pub source: Option<IpAddr>,
}

impl RunArgs {
    pub fn overrides(&self) -> crate::scenario::Overrides {
        crate::scenario::Overrides {
            resolver: self.resolver.clone(),
            port: self.port,
            dns_timeout: self.dns_timeout,
            connect_timeout: self.connect_timeout,
            stage_timeout: self.stage_timeout,
            ehlo: self.ehlo.clone(),
            tls_ca_file: self.tls_ca_file.clone(),
            source: self.source,
        }
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier result (JSON of `run`, `probe` or `trace`).
    #[arg(value_name = "BEFORE.json")]
    pub before: PathBuf,
    /// The later result.
    #[arg(value_name = "AFTER.json")]
    pub after: PathBuf,
    /// A stage slower by more than this is a regression (faster: an improvement): a
    /// percentage of the earlier time (changes under 10 ms are ignored) or a duration.
    #[arg(long, value_name = "PERCENT|DURATION", default_value = "100%", value_parser = crate::diff::parse_threshold)]
    pub latency_threshold: crate::diff::Threshold,
}

const DEMO_EXAMPLES: &str = "\
Examples:
  mxtrace demo                                  # scenarios A-D, then every fault
  mxtrace demo --scenario B --fault connector-offline
  mxtrace demo --scenario D --verbose           # full transcripts
  mxtrace demo --json

Exit codes:
  0  every scenario passed and every fault was diagnosed as expected
  1  a scenario failed or a fault was not diagnosed as expected
  2  usage error (a fault that is not played in the scenario named)
  3  internal error (the lab could not start)";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Only this scenario (A, B, C or D): its healthy path and the faults played in it.
    #[arg(long, value_parser = parse_scenario)]
    pub scenario: Option<Scenario>,
    /// Only this fault (and the healthy path of the scenarios it is played in).
    #[arg(long, value_enum, value_name = "NAME")]
    pub fault: Option<crate::lab::LabFault>,
    /// Show the full trace or probe output of every check, not just the failing stage.
    #[arg(long, short)]
    pub verbose: bool,
    /// First of the lab's four consecutive loopback addresses (127.0.0.0/8 only).
    #[arg(long, value_name = "IP", default_value_t = crate::lab::DEFAULT_BASE)]
    pub bind: std::net::Ipv4Addr,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab and keep it up until Ctrl-C or SIGTERM; prints its addresses and
    /// ready-to-paste mxtrace and swaks commands (--json: one JSON object).
    #[command(after_help = LAB_SERVE_EXAMPLES)]
    Serve(LabServeArgs),
}

const LAB_SERVE_EXAMPLES: &str = "\
Examples:
  mxtrace lab serve
  mxtrace lab serve --fault dirsync-stale --fault connector-offline
  mxtrace lab serve --bind 127.0.25.1 --port 2525 --dir /tmp/lab --json

Faults that change the same endpoint cannot be combined. The lab binds 127.0.0.0/8 only.
Exit codes: 0 stopped by Ctrl-C/SIGTERM, 2 usage error, 3 the lab could not start.";

#[derive(Debug, Args)]
pub struct LabServeArgs {
    /// A fault of the runbooks to play; repeatable.
    #[arg(long, value_enum, value_name = "NAME")]
    pub fault: Vec<crate::lab::LabFault>,
    /// First of the lab's four consecutive loopback addresses (127.0.0.0/8 only).
    #[arg(long, value_name = "IP", default_value_t = crate::lab::DEFAULT_BASE)]
    pub bind: std::net::Ipv4Addr,
    /// The port of every endpoint (DNS too); default: one free on all of them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Write the lab CA, EOP's client identity and lab.json here (default: a temporary
    /// directory removed on exit).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const PROBE_EXAMPLES: &str = "\
Examples:
  mxtrace probe mail.contoso.com
  mxtrace probe mail.contoso.com --from probe@fabrikam.com --rcpt user@contoso.com
  SMTP_PASSWORD=... mxtrace probe smtp.office365.com:587 --starttls require \\
      --auth-user me@contoso.com --auth-password-env SMTP_PASSWORD \\
      --from me@contoso.com --rcpt someone@fabrikam.com
  mxtrace probe mail.contoso.com:465 --tls-implicit
  mxtrace probe 192.0.2.10 --ehlo probe.fabrikam.com --json

Without --data the transaction ends with RSET and QUIT after RCPT: no mail is sent.

Exit codes:
  0  the check passed
  1  the check ran and the target failed it (rejection, unreachable, TLS required but missing)
  2  usage or input error
  3  internal error";

const TRACE_EXAMPLES: &str = "\
Examples:
  mxtrace trace contoso.com
  mxtrace trace contoso.com --from probe@fabrikam.com --rcpt user@contoso.com
  mxtrace trace contoso.com --all --json
  mxtrace trace contoso.com --resolver 192.0.2.53 -4

The walk: MX records by preference (equal preferences in random order, RFC 5321 5.1; the order
used is shown), the domain's own A/AAAA when it has no MX, every address of a host before the
next host; on to the next address after a connection failure, a 4xx or a 5xx greeting; stop at
the first definitive answer (the transaction completed, or a 5xx). --all probes every address,
at most 8 at once.

Exit codes:
  0  the path accepts: the probe that decided passed (with --all: every address passed)
  1  it does not: DNS failure (NXDOMAIN, no MX and no address, SERVFAIL, timeout), null MX,
     every address failed, or a rejection
  2  usage or input error (bad flag, bad --resolver)
  3  internal error";

const EXPLAIN_EXAMPLES: &str = "\
Examples:
  mxtrace explain \"550 5.4.1 Recipient address rejected: Access denied. AS(201806281)\" --stage rcpt
  mxtrace explain --json \"451 4.7.500 Server busy. Please try again later. (S77719)\"
  mxtrace explain $'550-5.7.26 Unauthenticated email\\n550 5.7.26 is not accepted'

Exit codes: 0 explained, 2 the text is not an SMTP reply or the stage is unknown.";

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The server: HOST, HOST:PORT, an IPv4 address, or [IPv6]:PORT. Port defaults to 25 (465
    /// with --tls-implicit).
    #[arg(value_name = "HOST[:PORT]")]
    pub target: String,
    /// Where this endpoint is in the delivery path, for the explanations: A (third party ->
    /// Office 365), B (-> hybrid, MX on-premises), C (Office 365 -> third party), D (hybrid,
    /// centralized mail flow). Detected as A for an Exchange Online host name.
    #[arg(long, value_parser = parse_scenario)]
    pub scenario: Option<Scenario>,
    /// The hop within the scenario: 1, or 2 for B (on-premises -> EOP) and D (on-premises ->
    /// third party).
    #[arg(long, requires = "scenario", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub hop: Option<u8>,
    #[command(flatten)]
    pub session: SessionArgs,
}

impl ProbeArgs {
    /// Validates the flags and builds the probe options (target, session, path context).
    pub fn to_options(&self) -> Result<ProbeOptions, UsageError> {
        let default_port = if self.session.tls_implicit { 465 } else { 25 };
        let (host, port) = parse_target(&self.target, default_port)?;
        let mut opts = self.session.to_options(host, port)?;
        opts.ctx = self.path_context()?;
        Ok(opts)
    }

    /// The path context the user named, checked: hop 2 exists only in B and D.
    pub fn path_context(&self) -> Result<PathContext, UsageError> {
        path_context(self.scenario, self.hop).map_err(|e| UsageError(format!("--hop {e}")))
    }
}

/// A scenario and hop, checked: hop 2 exists only in B and D. Shared by `probe --scenario/--hop`
/// and scenario files.
pub fn path_context(scenario: Option<Scenario>, hop: Option<u8>) -> Result<PathContext, String> {
    let Some(scenario) = scenario else {
        return Ok(PathContext::default());
    };
    let hop = hop.unwrap_or(1);
    match hop {
        1 => {}
        2 if matches!(scenario, Scenario::B | Scenario::D) => {}
        2 => {
            return Err(format!(
                "2: scenario {scenario} has one hop (B and D have two)"
            ))
        }
        _ => return Err(format!("{hop}: scenarios have hop 1 or 2")),
    }
    Ok(PathContext {
        scenario: Some(scenario),
        hop: Some(hop),
    })
}

pub fn parse_scenario(s: &str) -> Result<Scenario, String> {
    match s.trim().to_ascii_uppercase().as_str() {
        "A" => Ok(Scenario::A),
        "B" => Ok(Scenario::B),
        "C" => Ok(Scenario::C),
        "D" => Ok(Scenario::D),
        _ => Err("expected A, B, C or D".to_string()),
    }
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The mail domain: the part after @ in the recipient's address.
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// DNS server to ask (UDP, TCP for long answers): IP, IP:PORT or [IPv6]:PORT. Default: the
    /// system's (/etc/resolv.conf).
    #[arg(long, value_name = "IP[:PORT]", help_heading = "DNS")]
    pub resolver: Option<String>,
    /// Time allowed for one DNS request (one retry follows a timeout).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, help_heading = "DNS")]
    pub dns_timeout: Duration,
    /// Probe every MX host and address (at most 8 at once) instead of stopping at the first
    /// definitive answer: shows which front ends fail.
    #[arg(long)]
    pub all: bool,
    /// SMTP port of the MX hosts (25; other values for labs and tests).
    #[arg(long, value_name = "N", default_value_t = 25, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Use at most N MX hosts, in preference order. (Sending MTAs cap the walk too: Postfix
    /// tries at most 5 addresses and 2 sessions by default.)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_mx: Option<u16>,
    /// The delivery scenario, for the explanations: A, B, C or D. Detected when the MX says
    /// (EOP: A; on-premises with --tenant: B); C and D (outbound) are named.
    #[arg(long, value_parser = parse_scenario, help_heading = "Scenario")]
    pub scenario: Option<Scenario>,
    /// Microsoft 365 tenant (contoso, contoso.onmicrosoft.com or contoso.mail.onmicrosoft.com).
    /// With an on-premises MX this is scenario B, and hop 2 (on-premises -> EOP) walks the MX
    /// of <tenant>.mail.onmicrosoft.com with each --rcpt's remote routing address.
    #[arg(long, value_name = "TENANT", help_heading = "Scenario")]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub session: SessionArgs,
}

impl TraceArgs {
    /// Validates the flags and builds the trace options.
    pub fn to_options(&self) -> Result<crate::trace::TraceOptions, UsageError> {
        let walk = Walk {
            resolver: self.resolver.as_deref(),
            dns_timeout: self.dns_timeout,
            all: self.all,
            max_mx: self.max_mx,
            port: self.port,
            scenario: self.scenario,
            tenant: self.tenant.as_deref(),
        };
        trace_options(&self.domain, &walk, &self.session)
    }
}

/// How `trace` (and a scenario file's domain hop) walks a domain's MX hosts.
#[derive(Debug, Clone)]
pub struct Walk<'a> {
    pub resolver: Option<&'a str>,
    pub dns_timeout: Duration,
    pub all: bool,
    pub max_mx: Option<u16>,
    pub port: u16,
    /// `trace --scenario`; scenario files set the probe template's context instead.
    pub scenario: Option<Scenario>,
    /// `trace --tenant`: scenario B's hop 2.
    pub tenant: Option<&'a str>,
}

/// Validates a mail domain.
pub fn check_domain(domain: &str) -> Result<String, UsageError> {
    let d = domain.trim().trim_end_matches('.');
    if d.parse::<IpAddr>().is_ok() || !valid_hostname(d) {
        return Err(UsageError(format!(
            "invalid domain {domain:?}: expected a mail domain such as contoso.com"
        )));
    }
    Ok(d.to_string())
}

/// `--resolver`, or the system's.
pub fn resolver_choice(resolver: Option<&str>) -> Result<crate::dns::ResolverChoice, UsageError> {
    Ok(match resolver {
        None => crate::dns::ResolverChoice::System,
        Some(r) => {
            crate::dns::ResolverChoice::Server(crate::dns::parse_resolver(r).map_err(UsageError)?)
        }
    })
}

/// Validates the walk and session settings and builds the trace options for `domain`.
pub fn trace_options(
    domain: &str,
    walk: &Walk<'_>,
    session: &SessionArgs,
) -> Result<crate::trace::TraceOptions, UsageError> {
    let domain = check_domain(domain)?;
    let resolver = resolver_choice(walk.resolver)?;
    let probe = session.to_options(domain.clone(), walk.port)?;
    if let Some(t) = walk.tenant {
        if crate::diagnose::tenant_routing_domain(t).is_none() {
            return Err(UsageError(format!(
                "--tenant {t:?}: expected a tenant name such as contoso, \
                 contoso.onmicrosoft.com or contoso.mail.onmicrosoft.com"
            )));
        }
    }
    Ok(crate::trace::TraceOptions {
        scenario: walk.scenario,
        tenant: walk.tenant.map(str::to_string),
        domain,
        resolver,
        dns_timeout: walk.dns_timeout,
        all: walk.all,
        max_mx: walk.max_mx.map(usize::from),
        concurrency: crate::trace::DEFAULT_CONCURRENCY,
        probe,
    })
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The reply as the server sent it, code first; lines of a multi-line reply separated by
    /// newlines.
    #[arg(value_name = "REPLY")]
    pub reply: String,
    /// The stage the reply answered: connect (= banner), ehlo, helo, starttls, auth, mail,
    /// rcpt, data, eod (= end_of_data), rset, quit, or the JSON stage names.
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
}

/// How to talk to a server: shared by every subcommand that opens SMTP sessions.
#[derive(Debug, Args, Clone)]
pub struct SessionArgs {
    /// STARTTLS: auto (when offered), require (fail without it), never.
    #[arg(long, value_enum, default_value_t = StartTls::Auto, help_heading = "TLS")]
    pub starttls: StartTls,
    /// TLS from the first byte (SMTPS, port 465) instead of STARTTLS.
    #[arg(long, conflicts_with = "starttls", help_heading = "TLS")]
    pub tls_implicit: bool,
    /// Certificate checking: report (record why it failed and go on) or strict (fail).
    #[arg(long, value_enum, default_value_t = VerifyMode::Report, help_heading = "TLS")]
    pub tls_verify: VerifyMode,
    /// Name to send as SNI and to verify the certificate against (default: the host name).
    #[arg(long, value_name = "NAME", help_heading = "TLS")]
    pub tls_name: Option<String>,
    /// Also trust the CA certificates in this PEM file (a private or internal CA).
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) to present, as an on-premises server does to a hybrid
    /// connector.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_client_key",
        help_heading = "TLS"
    )]
    pub tls_client_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-client-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_client_cert",
        help_heading = "TLS"
    )]
    pub tls_client_key: Option<PathBuf>,
    /// Offer only classic key exchange groups (no post-quantum key share), for middleboxes
    /// that drop large ClientHellos.
    #[arg(long, help_heading = "TLS")]
    pub tls_classic_groups: bool,

    /// EHLO name (default: this machine's FQDN, else its address literal).
    #[arg(long, value_name = "NAME", help_heading = "SMTP")]
    pub ehlo: Option<String>,
    /// MAIL FROM address (default with --rcpt: the null sender <>).
    #[arg(long, value_name = "ADDRESS", help_heading = "SMTP")]
    pub from: Option<String>,
    /// RCPT TO address; repeat for several recipients.
    #[arg(long, value_name = "ADDRESS", help_heading = "SMTP")]
    pub rcpt: Vec<String>,
    /// Really send a small test message (DATA). Off by default.
    #[arg(long, help_heading = "SMTP")]
    pub data: bool,
    /// Extra header for the --data message, "Name: value"; repeatable.
    #[arg(long, value_name = "HEADER", requires = "data", help_heading = "SMTP")]
    pub header: Vec<String>,
    /// Do not pipeline MAIL and RCPT even when the server offers PIPELINING.
    #[arg(long, help_heading = "SMTP")]
    pub no_pipelining: bool,

    /// User name for SMTP AUTH (PLAIN or LOGIN).
    #[arg(long, value_name = "USER", help_heading = "AUTH")]
    pub auth_user: Option<String>,
    /// Read the password from this environment variable (passwords are never taken from the
    /// command line).
    #[arg(
        long,
        value_name = "VAR",
        requires = "auth_user",
        help_heading = "AUTH"
    )]
    pub auth_password_env: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "auth_user",
        conflicts_with = "auth_password_env",
        help_heading = "AUTH"
    )]
    pub auth_password_file: Option<PathBuf>,
    /// AUTH mechanism (default: PLAIN when offered, else LOGIN).
    #[arg(long, value_enum, requires = "auth_user", help_heading = "AUTH")]
    pub auth_mech: Option<AuthMech>,
    /// Allow sending credentials over an unencrypted connection.
    #[arg(long, requires = "auth_user", help_heading = "AUTH")]
    pub auth_plaintext: bool,

    /// Time allowed for the TCP connection (humantime: 500ms, 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, help_heading = "Network")]
    pub connect_timeout: Duration,
    /// Time allowed for each stage after connect (a reply, the TLS handshake).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, help_heading = "Network")]
    pub stage_timeout: Duration,
    /// Local address to connect from.
    #[arg(long, value_name = "IP", help_heading = "Network")]
    pub source: Option<IpAddr>,
    /// IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6", help_heading = "Network")]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6', help_heading = "Network")]
    pub ipv6: bool,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 10s, 1m)"))?;
    if d.is_zero() {
        return Err("must be more than zero".to_string());
    }
    Ok(d)
}

/// A mistake in what the user typed or named: exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `HOST`, `HOST:PORT`, `[v6]`, `[v6]:PORT` or a bare IPv6 address.
pub fn parse_target(s: &str, default_port: u16) -> Result<(String, u16), UsageError> {
    let s = s.trim();
    let bad = |why: &str| UsageError(format!("invalid target {s:?}: {why}"));
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if let Ok(ip) = s.parse::<std::net::Ipv6Addr>() {
        return Ok((ip.to_string(), default_port));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address inside [ ]"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected :PORT after ]"))?,
                ),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("port must be 1-65535"))?,
    };
    if host.parse::<IpAddr>().is_err() && !valid_hostname(host) {
        return Err(bad("not a host name or IP address"));
    }
    Ok((host.to_string(), port))
}

/// Letters, digits, hyphens and dots, labels of 1-63, 253 in all (RFC 1123), an optional
/// trailing dot; underscores are accepted because real MX targets have them.
fn valid_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An address for MAIL FROM / RCPT TO: no line breaks or spaces (they would inject commands),
/// at most 320 bytes (RFC 5321 4.5.3.1), `local@domain` (or empty for MAIL's null sender).
pub(crate) fn check_address(flag: &str, a: &str, allow_empty: bool) -> Result<(), UsageError> {
    let inner = a.trim().trim_start_matches('<').trim_end_matches('>');
    if inner.is_empty() && allow_empty {
        return Ok(());
    }
    if inner.len() > 320
        || inner
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'<' || b == b'>')
    {
        return Err(UsageError(format!(
            "{flag} {a:?}: not a valid mail address"
        )));
    }
    match inner.rsplit_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() => Ok(()),
        // RFC 5321 4.5.1: "postmaster" without a domain is valid for RCPT.
        None if inner.eq_ignore_ascii_case("postmaster") && flag == "--rcpt" => Ok(()),
        _ => Err(UsageError(format!(
            "{flag} {a:?}: not a valid mail address (expected local@domain)"
        ))),
    }
}

fn check_header(h: &str) -> Result<(), UsageError> {
    let (name, _) = h
        .split_once(':')
        .ok_or_else(|| UsageError(format!("--header {h:?}: expected \"Name: value\"")))?;
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !name_ok || h.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) || h.len() > 998 {
        return Err(UsageError(format!(
            "--header {h:?}: not a valid header line"
        )));
    }
    Ok(())
}

impl SessionArgs {
    /// Validates the flags and builds the options for one probe of `host:port`.
    pub fn to_options(&self, host: String, port: u16) -> Result<ProbeOptions, UsageError> {
        if let Some(f) = &self.from {
            check_address("--from", f, true)?;
        }
        for r in &self.rcpt {
            check_address("--rcpt", r, false)?;
        }
        for h in &self.header {
            check_header(h)?;
        }
        if let Some(e) = &self.ehlo {
            if e.is_empty() || e.len() > 255 || e.bytes().any(|b| b.is_ascii_control() || b == b' ')
            {
                return Err(UsageError(format!("--ehlo {e:?}: not a valid EHLO name")));
            }
        }
        if let Some(n) = &self.tls_name {
            if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
                return Err(UsageError(format!(
                    "--tls-name {n:?}: not a valid TLS server name"
                )));
            }
        }
        if self.data && self.rcpt.is_empty() {
            return Err(UsageError("--data needs at least one --rcpt".to_string()));
        }
        let family = match (self.ipv4, self.ipv6) {
            (true, _) => Some(Family::V4),
            (_, true) => Some(Family::V6),
            _ => None,
        };
        if let (Some(src), Some(f)) = (self.source, family) {
            if src.is_ipv4() != (f == Family::V4) {
                return Err(UsageError(format!("--source {src} does not match -4/-6")));
            }
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            let mismatch = match family {
                Some(Family::V4) => !ip.is_ipv4(),
                Some(Family::V6) => !ip.is_ipv6(),
                None => false,
            };
            if mismatch {
                return Err(UsageError(format!("{ip} does not match -4/-6")));
            }
        }
        let auth = match &self.auth_user {
            None => None,
            Some(user) => {
                if user.bytes().any(|b| b.is_ascii_control()) {
                    return Err(UsageError("--auth-user: control characters".to_string()));
                }
                let password = match (&self.auth_password_env, &self.auth_password_file) {
                    (Some(var), _) => Secret::from_env(var),
                    (None, Some(file)) => Secret::from_file(file),
                    (None, None) => Secret::prompt(user),
                }
                .map_err(UsageError)?;
                Some(AuthOptions {
                    user: user.clone(),
                    password,
                    mech: self.auth_mech,
                    allow_plaintext: self.auth_plaintext,
                })
            }
        };
        Ok(ProbeOptions {
            host,
            port,
            addrs: None,
            starttls: if self.tls_implicit {
                StartTls::Never
            } else {
                self.starttls
            },
            implicit_tls: self.tls_implicit,
            tls: TlsOptions {
                verify: self.tls_verify,
                ca_file: self.tls_ca_file.clone(),
                client_cert: self.tls_client_cert.clone(),
                client_key: self.tls_client_key.clone(),
                classic_groups: self.tls_classic_groups,
            },
            tls_name: self.tls_name.clone(),
            ehlo: self.ehlo.clone(),
            from: self.from.clone(),
            rcpts: self.rcpt.clone(),
            auth,
            data: self.data,
            headers: self.header.clone(),
            pipelining: !self.no_pipelining,
            connect_timeout: self.connect_timeout,
            stage_timeout: self.stage_timeout,
            source: self.source,
            family,
            ctx: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn targets() {
        let t = |s| parse_target(s, 25).map_err(|e| e.0);
        assert_eq!(t("mx.contoso.com").unwrap(), ("mx.contoso.com".into(), 25));
        assert_eq!(
            t("mx.contoso.com:587").unwrap(),
            ("mx.contoso.com".into(), 587)
        );
        assert_eq!(t("192.0.2.10").unwrap(), ("192.0.2.10".into(), 25));
        assert_eq!(t("192.0.2.10:2525").unwrap(), ("192.0.2.10".into(), 2525));
        assert_eq!(t("[2001:db8::1]:465").unwrap(), ("2001:db8::1".into(), 465));
        assert_eq!(t("2001:db8::1").unwrap(), ("2001:db8::1".into(), 25));
        assert_eq!(t("[::1]").unwrap(), ("::1".into(), 25));
        for bad in [
            "", "mx:0", "mx:99999", "mx:abc", "[::1", "[mx]:25", "a b", "-x.com", "a..b",
        ] {
            assert!(t(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn addresses_cannot_inject_commands() {
        assert!(check_address("--rcpt", "a@b\r\nRCPT TO:<c@d>", false).is_err());
        assert!(check_address("--rcpt", "a b@c", false).is_err());
        assert!(check_address("--rcpt", "nobody", false).is_err());
        assert!(check_address("--rcpt", "postmaster", false).is_ok());
        assert!(check_address("--rcpt", "<user@contoso.com>", false).is_ok());
        assert!(check_address("--from", "<>", true).is_ok());
        assert!(check_address("--from", "", true).is_ok());
        assert!(check_header("X-Test: a\r\nBcc: x@y").is_err());
        assert!(check_header("no colon").is_err());
        assert!(check_header("X-Test: fine").is_ok());
    }
}
