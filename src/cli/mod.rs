//! Command-line surface: clap definitions, and their conversion into the engine's
//! `SessionSpec` and jobs. Binary-only: the engine (the `mxtrace` library) does not know clap.
//! Anything the user typed wrong is a usage error (exit 2); `CliError::exit_code` decides.

mod deferred;
pub mod demo;
pub mod dispatch;
pub mod dns;
pub mod headers;
pub mod help;
pub mod nagios;
pub mod roundtrip;
pub mod serve;
mod serve_conn;
pub mod sweep;
pub mod watch;

pub use crate::cli::deferred::Deferred;
use crate::cli::demo::DemoError;
use clap::{Args, Parser, Subcommand, ValueEnum};
use mxtrace_core::job::{Job, Target};
use mxtrace_core::run::RunError;
use mxtrace_core::scenario_file::{FileError, PrepareError};
use mxtrace_core::trace::TraceError;
use mxtrace_lab::{LabFault, FAULTS};
use mxtrace_proto::model::{PathContext, Scenario};
use mxtrace_proto::spec::{self, Naming, SessionSpec, SpecError, TargetError, ValueError};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "mxtrace",
    version,
    about = "SMTP path tracer: probe a mail server stage by stage and explain every reply",
    long_about = "SMTP path tracer and synthetic transaction tool. Connects, negotiates EHLO and \
                  STARTTLS, steps through MAIL FROM and RCPT TO (DATA only when asked), records \
                  every reply with its timing, and explains each one.",
    after_help = help::EXIT_CODES,
    max_term_width = 100
)]
pub struct Cli {
    /// Output format: a transcript for people, one JSON object per run, or (probe, trace,
    /// run) a Nagios plugin status line with performance data and exit 0/1/2/3.
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
    Nagios,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe one SMTP endpoint, stage by stage: the "telnet host 25" replacement.
    #[command(after_help = help::PROBE_EXAMPLES)]
    Probe(Deferred<Box<ProbeArgs>>),
    /// Walk a domain's MX hosts as a sending MTA does: MX, addresses, reverse DNS, then SMTP.
    ///
    /// Looks up the MX records (or the implicit MX; a null MX means no mail), every A/AAAA of
    /// each host and its reverse DNS, then probes the addresses in order until one gives a
    /// definitive answer; --all probes every address.
    #[command(after_help = help::TRACE_EXAMPLES)]
    Trace(Deferred<Box<TraceArgs>>),
    /// Classify a pasted SMTP reply offline: class, category, layer, cause, next steps.
    #[command(after_help = help::EXPLAIN_EXAMPLES)]
    Explain(Deferred<ExplainArgs>),
    /// Run a scenario file: every hop, every expectation; exit 1 if one is not met.
    ///
    /// A scenario file (TOML, see scenarios/) lists the hops of a delivery path, each a domain
    /// (its MX walked as by `trace`) or explicit hosts (each probed as by `probe`), and what
    /// must be true of each: MX names, reachability, STARTTLS, certificate name and days left,
    /// the reply at a stage, latency budgets, no open relay. Prints one line per expectation.
    #[command(after_help = help::RUN_EXAMPLES)]
    Run(Deferred<Box<RunArgs>>),
    /// Compare two JSON results (`run`, `probe` or `trace --json`): what changed, and whether
    /// it is a regression.
    ///
    /// Compares per hop and address: reachability, TLS version and verification, certificate
    /// fingerprint and expiry, EHLO capabilities, the reply code and category at each stage,
    /// latency beyond --latency-threshold, and (for `run`) each expectation.
    #[command(after_help = help::DIFF_EXAMPLES)]
    Diff(Deferred<DiffArgs>),
    /// Turn a saved JSON result (`run`, `probe` or `trace --json`, a `watch --report`) into a
    /// self-contained HTML report: the path diagram, stage timings, certificates, diagnoses
    /// and transcripts (a watch: timelines, outage windows, statistics); or a sweep's JSON
    /// lines (`sweep --json`, any shards) into the fleet's summary and table.
    #[command(after_help = help::REPORT_EXAMPLES)]
    Report(Deferred<ReportArgs>),
    /// Read a delivered message or an NDR: hops, delays, TLS, authentication, Exchange
    /// anti-spam stamps, each failed recipient explained, and the commands to test the path.
    #[command(after_help = headers::HEADERS_EXAMPLES)]
    Headers(Deferred<headers::HeadersArgs>),
    /// A domain's mail posture: SPF, DMARC, DKIM, MTA-STS, TLS-RPT, DANE, reverse DNS and
    /// blocklists, each judged with next steps.
    #[command(after_help = dns::DNS_EXAMPLES)]
    Dns(Deferred<Box<dns::DnsArgs>>),
    /// See what mxtrace does, offline: start the lab on loopback, trace scenarios A-D through
    /// it, then each fault of the runbooks, and explain every failure.
    ///
    /// Every check is a real `trace` or `probe` run (the command is shown) against the lab's
    /// DNS and SMTP servers on 127.0.0.0/8; nothing else is contacted. Each fault runs in a
    /// lab of its own, and the demo verifies that mxtrace reports the category and layer the
    /// runbooks expect for it.
    #[command(after_help = help::DEMO_EXAMPLES)]
    Demo(Deferred<DemoArgs>),
    /// The lab of the four delivery scenarios (DNS, EOP, on-premises Exchange, third party) on
    /// loopback.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Prometheus exporter: each /probe scrape probes a host[:port] or traces a domain
    ///
    /// GET /probe?module=M&target=T runs one check with the module's settings (a
    /// blackbox_exporter for SMTP paths) and answers with Prometheus metrics. Listens on 127.0.0.1:9125 unless the config or --listen says otherwise. Targets must
    /// match the module's allowed_targets; at most max_concurrency probes run at once (more
    /// get 503). Also /metrics, /-/healthy, /-/ready, POST /-/reload; SIGHUP rereads the config.
    Serve(Deferred<serve::ServeArgs>),
    /// Send a probe message and confirm it arrived in a mailbox over IMAP: delivered or not,
    /// in the inbox or Junk, how long it took, the hops it took, what the receiver concluded.
    #[command(after_help = roundtrip::ROUNDTRIP_EXAMPLES)]
    Roundtrip(Deferred<Box<roundtrip::RoundtripArgs>>),
    /// Probe or trace many targets at once: streaming JSONL, bounded concurrency, limits per
    /// destination, shards, resume.
    #[command(after_help = sweep::SWEEP_EXAMPLES)]
    Sweep(Deferred<Box<sweep::SweepArgs>>),
    /// Probe or trace targets every few seconds through a change window: a live screen on a
    /// terminal, one line per event otherwise, and a report of the outages at the end.
    ///
    /// Each target is probed (or traced) every --interval with the session settings given,
    /// until Ctrl-C, --count or --until. Per target and stage: last, average, best and worst
    /// time, jitter, the share of probes that failed there, the current reply; every change
    /// (a reply that changed, a break, a recovery) is an event with its time; --report and
    /// --html keep the outage windows and the statistics before, during and after.
    #[command(after_help = watch::WATCH_EXAMPLES)]
    Watch(Deferred<Box<watch::WatchArgs>>),
    /// Print a shell completion script (bash, elvish, fish, powershell, zsh).
    Completions(Deferred<CompletionsArgs>),
    /// Print the manual page (roff): `mxtrace man | man -l -`.
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    #[arg(value_name = "SCENARIO.toml")]
    pub file: PathBuf,
    /// Also write a JUnit XML report here (one test suite per hop, one test case per
    /// expectation). Checked for writability before anything runs.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub html: HtmlArgs,
    /// DNS server for every hop (labs, split DNS): IP, IP:PORT or [IPv6]:PORT.
    #[arg(long, value_name = "IP[:PORT]", help_heading = "Overrides")]
    pub resolver: Option<String>,
    /// SMTP port for every hop and host (labs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), help_heading = "Overrides")]
    pub port: Option<u16>,
    /// Time allowed for one DNS request.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Overrides")]
    pub dns_timeout: Option<HumanDuration>,
    /// Time allowed for each TCP connection.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Overrides")]
    pub connect_timeout: Option<HumanDuration>,
    /// Time allowed for each stage after connect.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "Overrides")]
    pub stage_timeout: Option<HumanDuration>,
    /// EHLO name for every hop.
    #[arg(long, value_name = "NAME", help_heading = "Overrides")]
    pub ehlo: Option<String>,
    /// CA certificates (PEM) to trust in every hop, besides the public roots.
    #[arg(long, value_name = "FILE", help_heading = "Overrides")]
    pub tls_ca_file: Option<PathBuf>,
    /// Local address to connect from.
    #[arg(long, value_name = "IP", help_heading = "Overrides")]
    pub source: Option<IpAddr>,
    #[command(flatten)]
    pub nagios: nagios::NagiosArgs,
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
    #[arg(long, value_name = "PERCENT|DURATION", default_value = "100%", value_parser = mxtrace_proto::spec::parse_threshold)]
    pub latency_threshold: mxtrace_proto::model::diff::Threshold,
    #[command(flatten)]
    pub html: HtmlArgs,
}

/// `--html FILE` of trace, probe, run, diff and demo.
#[derive(Debug, Args, Clone)]
pub struct HtmlArgs {
    /// Also write a self-contained HTML report here (inline CSS and SVG; no script, nothing
    /// fetched). Checked for writability before anything runs.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A saved result (the JSON of `run`, `probe`, `trace` or `roundtrip`, or a `watch --report`
    /// file), or one or more files of a sweep's JSON lines (`sweep --json`: one shard's, or
    /// every shard's).
    #[arg(value_name = "RESULT.json|SWEEP.jsonl", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Write the HTML report here (required for a saved result; for a sweep, the fleet's
    /// table, its summary going to stdout either way).
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
}

impl Command {
    /// The `--html` file of the commands that have one (`report`'s is its output).
    pub fn html_file(&self) -> Option<&std::path::Path> {
        match self {
            Command::Probe(a) => a.html.html.as_deref(),
            Command::Trace(a) => a.html.html.as_deref(),
            Command::Run(a) => a.html.html.as_deref(),
            Command::Diff(a) => a.html.html.as_deref(),
            Command::Demo(a) => a.html.html.as_deref(),
            Command::Watch(a) => a.html.html.as_deref(),
            Command::Roundtrip(a) => a.html.html.as_deref(),
            Command::Report(a) => a.html.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Only this scenario (A, B, C or D): its healthy path and the faults played in it.
    #[arg(long, value_parser = scenario_letter)]
    pub scenario: Option<Scenario>,
    /// Only this fault (and the healthy path of the scenarios it is played in).
    #[arg(long, value_name = "NAME", value_parser = fault_parser())]
    pub fault: Option<LabFault>,
    /// Show the full trace or probe output of every check, not just the failing stage.
    #[arg(long, short)]
    pub verbose: bool,
    /// First of the lab's four consecutive loopback addresses (127.0.0.0/8 only).
    #[arg(long, value_name = "IP", default_value_t = mxtrace_lab::DEFAULT_BASE)]
    pub bind: std::net::Ipv4Addr,
    #[command(flatten)]
    pub html: HtmlArgs,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab and keep it up until Ctrl-C or SIGTERM; prints its addresses and
    /// ready-to-paste mxtrace and swaks commands (--json: one JSON object).
    #[command(after_help = help::LAB_SERVE_EXAMPLES)]
    Serve(Deferred<LabServeArgs>),
}

#[derive(Debug, Args)]
pub struct LabServeArgs {
    /// A fault of the runbooks to play; repeatable.
    #[arg(long, value_name = "NAME", value_parser = fault_parser())]
    pub fault: Vec<LabFault>,
    /// First of the lab's four consecutive loopback addresses (127.0.0.0/8 only).
    #[arg(long, value_name = "IP", default_value_t = mxtrace_lab::DEFAULT_BASE)]
    pub bind: std::net::Ipv4Addr,
    /// The port of every endpoint (DNS too); default: one free on all of them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Write the lab CA, EOP's client identity and lab.json here (default: a temporary
    /// directory removed on exit).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The server: HOST, HOST:PORT, an IPv4 address, or [IPv6]:PORT. Port defaults to 25 (465
    /// with --tls-implicit).
    #[arg(value_name = "HOST[:PORT]")]
    pub target: String,
    /// Where this endpoint is in the delivery path, for the explanations: A (third party ->
    /// Office 365), B (-> hybrid, MX on-premises), C (Office 365 -> third party), D (hybrid,
    /// centralized mail flow). Detected as A for an Exchange Online host name.
    #[arg(long, value_parser = scenario_letter)]
    pub scenario: Option<Scenario>,
    /// The hop within the scenario: 1, or 2 for B (on-premises -> EOP) and D (on-premises ->
    /// third party).
    #[arg(long, requires = "scenario", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub hop: Option<u8>,
    #[command(flatten)]
    pub session: SessionArgs,
    #[command(flatten)]
    pub nagios: nagios::NagiosArgs,
    #[command(flatten)]
    pub html: HtmlArgs,
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
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(spec::DEFAULT_DNS_TIMEOUT), value_parser = duration, help_heading = "DNS")]
    pub dns_timeout: HumanDuration,
    /// Validate DANE's DNSSEC answers from the DNSKEY records in FILE (zone-file form)
    /// instead of the IANA root keys.
    #[arg(long, value_name = "FILE", help_heading = "DNS")]
    pub dnssec_trust_anchor: Option<std::path::PathBuf>,
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
    #[arg(long, value_parser = scenario_letter, help_heading = "Scenario")]
    pub scenario: Option<Scenario>,
    /// Microsoft 365 tenant (contoso, contoso.onmicrosoft.com or contoso.mail.onmicrosoft.com).
    /// With an on-premises MX this is scenario B, and hop 2 (on-premises -> EOP) walks the MX
    /// of <tenant>.mail.onmicrosoft.com with each --rcpt's remote routing address.
    #[arg(long, value_name = "TENANT", help_heading = "Scenario")]
    pub tenant: Option<String>,
    /// Keep MTA-STS policies in this JSON file between runs, as a sending MTA does (RFC 8461
    /// 5.1): used while valid when the id is unchanged or the fetch fails.
    #[arg(long, value_name = "FILE", help_heading = "MTA-STS")]
    pub mta_sts_cache: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
    #[command(flatten)]
    pub nagios: nagios::NagiosArgs,
    #[command(flatten)]
    pub html: HtmlArgs,
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
    /// The kind of server that sent the reply: microsoft (Exchange Online or Exchange Server),
    /// other (any other MTA: no Exchange steps) or unknown (every step kept).
    #[arg(long, value_name = "PEER", default_value = "unknown",
          value_parser = ["microsoft", "other", "unknown"])]
    pub peer: String,
}

/// How to talk to a server: shared by every subcommand that opens SMTP sessions. In parts,
/// so `roundtrip` takes all but the message flags (it always sends one).
#[derive(Debug, Args, Clone)]
pub struct SessionArgs {
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub smtp: SmtpArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args, Clone)]
pub struct TlsArgs {
    /// STARTTLS: auto (when offered), require (fail without it), never.
    #[arg(long, value_enum, default_value_t = CliStartTls::Auto, help_heading = "TLS")]
    pub starttls: CliStartTls,
    /// TLS from the first byte (SMTPS, port 465) instead of STARTTLS.
    #[arg(long, conflicts_with = "starttls", help_heading = "TLS")]
    pub tls_implicit: bool,
    /// Certificate checking: report (record why it failed and go on) or strict (fail).
    #[arg(long, value_enum, default_value_t = CliVerify::Report, help_heading = "TLS")]
    pub tls_verify: CliVerify,
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
    /// Never offer the post-quantum hybrid group X25519MLKEM768 (by default it is listed, and
    /// its large key share sent only if the server asks for it); classic X25519, P-256, P-384.
    #[arg(long, help_heading = "TLS")]
    pub tls_classic_groups: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SmtpArgs {
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
}

#[derive(Debug, Args, Clone)]
pub struct AuthArgs {
    /// User name for SMTP AUTH: the mailbox (with an OAuth token, the account the token is for,
    /// or the mailbox an app sends as).
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
    /// AUTH mechanism (default with a password: PLAIN when offered, else LOGIN; with an OAuth
    /// token: XOAUTH2 when offered, else OAUTHBEARER).
    #[arg(long, value_enum, requires = "auth_user", help_heading = "AUTH")]
    pub auth_mech: Option<CliAuthMech>,
    /// Allow sending credentials over an unencrypted connection.
    #[arg(long, requires = "auth_user", help_heading = "AUTH")]
    pub auth_plaintext: bool,
    /// Read an OAuth 2.0 access token from this environment variable (tokens and secrets are
    /// never taken from the command line).
    #[arg(long, value_name = "VAR", help_heading = "OAuth")]
    pub oauth_token_env: Option<String>,
    /// Read an OAuth 2.0 access token from the first line of this file (read at each use).
    #[arg(long, value_name = "FILE", help_heading = "OAuth")]
    pub oauth_token_file: Option<PathBuf>,
    /// Get the token from Microsoft Entra ID for this tenant (ID or domain): the endpoints under
    /// login.microsoftonline.com, scope https://outlook.office365.com/.default.
    #[arg(long, value_name = "TENANT", help_heading = "OAuth")]
    pub oauth_tenant: Option<String>,
    /// Get the token from this token endpoint (another authorization server).
    #[arg(long, value_name = "URL", help_heading = "OAuth")]
    pub oauth_token_url: Option<String>,
    /// The device authorization endpoint, for --oauth-grant device with --oauth-token-url.
    #[arg(long, value_name = "URL", help_heading = "OAuth")]
    pub oauth_device_url: Option<String>,
    /// The grant: client-credentials (the application's own token, unattended) or device
    /// (a person signs in in a browser with the code shown on stderr).
    #[arg(long, value_enum, value_name = "GRANT", help_heading = "OAuth")]
    pub oauth_grant: Option<CliOAuthGrant>,
    /// The application (client) ID.
    #[arg(long, value_name = "ID", help_heading = "OAuth")]
    pub oauth_client_id: Option<String>,
    /// Read the client secret from this environment variable.
    #[arg(long, value_name = "VAR", help_heading = "OAuth")]
    pub oauth_client_secret_env: Option<String>,
    /// Read the client secret from the first line of this file.
    #[arg(long, value_name = "FILE", help_heading = "OAuth")]
    pub oauth_client_secret_file: Option<PathBuf>,
    /// Authenticate the client with a certificate (PEM) instead of a secret: a client assertion
    /// signed with --oauth-client-key (RSA), as Entra ID takes it.
    #[arg(
        long,
        value_name = "FILE",
        requires = "oauth_client_key",
        help_heading = "OAuth"
    )]
    pub oauth_client_cert: Option<PathBuf>,
    /// Private key (PEM) of --oauth-client-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "oauth_client_cert",
        help_heading = "OAuth"
    )]
    pub oauth_client_key: Option<PathBuf>,
    /// Scope to ask for (default with --oauth-tenant: https://outlook.office365.com/.default,
    /// or SMTP.Send and offline_access with the device grant).
    #[arg(long, value_name = "SCOPE", help_heading = "OAuth")]
    pub oauth_scope: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct NetArgs {
    /// Time allowed for the TCP connection (humantime: 500ms, 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(spec::DEFAULT_CONNECT_TIMEOUT), value_parser = duration, help_heading = "Network")]
    pub connect_timeout: HumanDuration,
    /// Time allowed for each stage after connect (a reply, the TLS handshake).
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(spec::DEFAULT_STAGE_TIMEOUT), value_parser = duration, help_heading = "Network")]
    pub stage_timeout: HumanDuration,
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

/// `--starttls` values (the engine's `StartTls`, with their help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CliStartTls {
    /// Use STARTTLS when the server offers it; go on unencrypted when it does not.
    Auto,
    /// Fail unless the session is encrypted before MAIL.
    Require,
    /// Never send STARTTLS.
    Never,
}

/// `--tls-verify` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CliVerify {
    /// Record why verification failed and what was presented, then carry on.
    Report,
    /// A certificate that does not verify ends the probe.
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CliAuthMech {
    /// A password in one line (RFC 4616).
    Plain,
    /// A password over two 334 challenges.
    Login,
    /// OAuth 2.0 bearer token, as Exchange Online and Gmail take it.
    Xoauth2,
    /// OAuth 2.0 bearer token, RFC 7628.
    Oauthbearer,
}

/// `--oauth-grant` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CliOAuthGrant {
    /// The application's own token (RFC 6749 4.4), for unattended probes.
    ClientCredentials,
    /// A person signs in in a browser (RFC 8628).
    Device,
}

/// The engine's value of the same name: both spell it the same (`auto`, `strict`, `plain`).
fn engine<T: std::str::FromStr>(v: impl ValueEnum) -> Option<T> {
    v.to_possible_value()?.get_name().parse().ok()
}

/// A duration as typed (humantime), shown the same way in `[default: 10s]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

fn duration(s: &str) -> Result<HumanDuration, spec::DurationError> {
    spec::parse_duration(s).map(HumanDuration)
}

fn scenario_letter(s: &str) -> Result<Scenario, spec::UnknownScenario> {
    spec::parse_scenario(s)
}

/// `--fault NAME`: the lab's fault table, by name.
fn fault_parser() -> impl clap::builder::TypedValueParser<Value = LabFault> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(FAULTS.iter().map(|f| f.fault.name())).try_map(
        |name: String| {
            FAULTS
                .iter()
                .map(|f| f.fault)
                .find(|f| f.name() == name)
                .ok_or("unknown fault")
        },
    )
}

impl SessionArgs {
    /// The command line's layer of session settings.
    pub fn spec(&self) -> SessionSpec {
        let mut spec = self.tls.spec().or(&self.auth.spec()).or(&self.net.spec());
        spec.ehlo = self.smtp.ehlo.clone();
        spec.from = self.smtp.from.clone();
        spec.rcpt = Some(self.smtp.rcpt.clone());
        spec.data = Some(self.smtp.data);
        spec.header = Some(self.smtp.header.clone());
        spec.pipelining = Some(!self.smtp.no_pipelining);
        spec
    }
}

impl TlsArgs {
    pub fn spec(&self) -> SessionSpec {
        SessionSpec {
            // clap rejects --starttls with --tls-implicit; its default is not a choice.
            starttls: engine(self.starttls).filter(|_| !self.tls_implicit),
            tls_implicit: Some(self.tls_implicit),
            tls_verify: engine(self.tls_verify),
            tls_name: self.tls_name.clone(),
            tls_ca_file: self.tls_ca_file.clone(),
            tls_client_cert: self.tls_client_cert.clone(),
            tls_client_key: self.tls_client_key.clone(),
            tls_classic_groups: Some(self.tls_classic_groups),
            ..SessionSpec::default()
        }
    }
}

impl AuthArgs {
    pub fn spec(&self) -> SessionSpec {
        SessionSpec {
            auth_user: self.auth_user.clone(),
            auth_password_env: self.auth_password_env.clone(),
            auth_password_file: self.auth_password_file.clone(),
            auth_mech: self.auth_mech.and_then(engine),
            auth_plaintext: Some(self.auth_plaintext),
            oauth_token_env: self.oauth_token_env.clone(),
            oauth_token_file: self.oauth_token_file.clone(),
            oauth_grant: self.oauth_grant.and_then(engine),
            oauth_tenant: self.oauth_tenant.clone(),
            oauth_token_url: self.oauth_token_url.clone(),
            oauth_device_url: self.oauth_device_url.clone(),
            oauth_client_id: self.oauth_client_id.clone(),
            oauth_client_secret_env: self.oauth_client_secret_env.clone(),
            oauth_client_secret_file: self.oauth_client_secret_file.clone(),
            oauth_client_cert: self.oauth_client_cert.clone(),
            oauth_client_key: self.oauth_client_key.clone(),
            oauth_scope: self.oauth_scope.clone(),
            ..SessionSpec::default()
        }
    }
}

impl NetArgs {
    pub fn spec(&self) -> SessionSpec {
        SessionSpec {
            connect_timeout: Some(self.connect_timeout.0),
            stage_timeout: Some(self.stage_timeout.0),
            source: self.source,
            ip_version: match (self.ipv4, self.ipv6) {
                (true, _) => Some(spec::Family::V4),
                (_, true) => Some(spec::Family::V6),
                _ => None,
            },
            ..SessionSpec::default()
        }
    }
}

impl ProbeArgs {
    /// Validates the flags and builds the probe (target, session, path context).
    pub fn to_job(&self) -> Result<Job, CliError> {
        let session = self.session.spec();
        let target = Target::probe(&self.target, session.default_port())?;
        let ctx = self.path_context()?;
        Ok(Job::new(&target, &session, ctx, None, Naming::Flag)?)
    }

    /// The path context the user named, checked: hop 2 exists only in B and D.
    pub fn path_context(&self) -> Result<PathContext, CliError> {
        spec::path_context(self.scenario, self.hop).map_err(CliError::Hop)
    }
}

impl TraceArgs {
    /// Validates the flags and builds the trace.
    pub fn to_job(&self) -> Result<Job, CliError> {
        let mut s = self.session.spec();
        s.resolver = self.resolver.clone();
        s.dns_timeout = Some(self.dns_timeout.0);
        s.all = Some(self.all);
        s.port = Some(self.port);
        s.max_mx = self.max_mx;
        let ctx = PathContext {
            scenario: self.scenario,
            hop: None,
        };
        let target = Target::trace(&self.domain)?;
        let mut job = Job::new(&target, &s, ctx, self.tenant.as_deref(), Naming::Flag)?;
        if let Job::Trace(o) = &mut job {
            o.mta_sts.cache.clone_from(&self.mta_sts_cache);
            o.dnssec_trust_anchor.clone_from(&self.dnssec_trust_anchor);
        }
        Ok(job)
    }
}

impl RunArgs {
    /// The values that replace the file's in every hop.
    pub fn overrides(&self) -> SessionSpec {
        SessionSpec {
            resolver: self.resolver.clone(),
            port: self.port,
            dns_timeout: self.dns_timeout.map(|d| d.0),
            connect_timeout: self.connect_timeout.map(|d| d.0),
            stage_timeout: self.stage_timeout.map(|d| d.0),
            ehlo: self.ehlo.clone(),
            tls_ca_file: self.tls_ca_file.clone(),
            source: self.source,
            ..SessionSpec::default()
        }
    }
}

/// The job a `probe` or `trace` command stands for; None for the other commands.
pub fn job(command: &Command) -> Result<Option<Job>, CliError> {
    Ok(match command {
        Command::Probe(a) => Some(a.to_job()?),
        Command::Trace(a) => Some(a.to_job()?),
        _ => None,
    })
}

/// Everything a command can fail with; the exit code is chosen here, from the type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("--hop {0}")]
    Hop(#[source] ValueError),
    #[error(transparent)]
    ScenarioFile(#[from] FileError),
    #[error(transparent)]
    ExporterConfig(#[from] mxtrace_core::exporter::config::ConfigError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Diff(#[from] mxtrace_core::diff::DiffError),
    #[error(transparent)]
    Demo(#[from] DemoError),
    #[error(transparent)]
    Explain(#[from] mxtrace_core::explain::ExplainInputError),
    #[error(transparent)]
    Headers(#[from] mxtrace_core::headers::HeadersError),
    #[error(transparent)]
    Dns(#[from] mxtrace_core::posture::PostureError),
    #[error("--junit {0}")]
    Junit(#[source] mxtrace_render::junit::PendingError),
    #[error("--html {0}")]
    Html(#[source] mxtrace_render::junit::PendingError),
    /// `watch --report`.
    #[error("--report {0}")]
    ReportFile(#[source] mxtrace_render::junit::PendingError),
    /// The lab refused its options (not loopback, conflicting faults).
    #[error("{0}")]
    LabOptions(#[source] std::io::Error),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Nagios(#[from] nagios::NagiosUsage),
    #[error(transparent)]
    Sweep(#[from] mxtrace_core::sweep::SweepError),
    #[error("reading the --resume file {path}: {source}")]
    Resume {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `watch --interval` under the floor.
    #[error("--interval {0}")]
    Interval(#[source] mxtrace_core::watch::IntervalTooShort),
    /// `sweep --module` names no module of the file.
    #[error("{}: no module {module:?} (modules: {})", .path.display(), .modules.join(", "))]
    SweepModule {
        path: std::path::PathBuf,
        module: String,
        modules: Vec<String>,
    },
    /// `report` of a saved result without `--html`, or of several saved results.
    #[error("{0}")]
    ReportUsage(&'static str),
    #[error(transparent)]
    Fleet(#[from] mxtrace_core::fleet::FleetError),
    /// `sweep --shard job-index/N` outside a pod of an indexed Job of N completions.
    #[error(
        "--shard job-index/{count}: {} must be 0 to {} (the pod's completion index), got {found:?}",
        sweep::JOB_INDEX_VAR,
        count - 1
    )]
    SweepJobIndex { count: u64, found: String },
    #[error("{flag}: {source}")]
    MailboxUrl {
        flag: &'static str,
        #[source]
        source: mxtrace_proto::mailbox::MailboxUrlError,
    },
    #[error("{flag} password: {source}")]
    MailboxPassword {
        flag: &'static str,
        #[source]
        source: mxtrace_proto::secret::SecretError,
    },
    #[error(
        "{flag}: no password given: use {flag}-password-env VAR or {flag}-password-file FILE, \
         or a token ({flag}-oauth, {flag}-oauth-token-env, {flag}-oauth-token-file) (no \
         terminal to prompt on)"
    )]
    NoMailboxPassword { flag: &'static str },
    #[error(
        "{flag}-oauth needs the OAuth settings to take the token from: --oauth-tenant or \
         --oauth-token-url (a grant), or --oauth-token-env / --oauth-token-file"
    )]
    MailboxOAuthSource { flag: &'static str },
    #[error(
        "--mailbox-auth-mech needs a token for the mailbox (--mailbox-oauth, \
         --mailbox-oauth-token-env or --mailbox-oauth-token-file)"
    )]
    MailboxMechWithoutToken,
    #[error(
        "{flag} is for SMTP AUTH (with --auth-user) or a mailbox's login (--mailbox-oauth, \
         --ndr-mailbox-oauth): give one of them"
    )]
    OAuthUnused { flag: &'static str },
    #[error("--rcpt {0:?}: expected an address, user@domain")]
    RcptAddress(String),
    /// Boxed: it carries an IMAP or OAuth error and its explanation.
    #[error(transparent)]
    Roundtrip(Box<mxtrace_core::roundtrip::RoundtripError>),
    #[error(
        "watch's live screen failed (the panic above); the watch was stopped, its report saved"
    )]
    ScreenPanicked,
}

impl From<mxtrace_core::roundtrip::RoundtripError> for CliError {
    fn from(e: mxtrace_core::roundtrip::RoundtripError) -> CliError {
        CliError::Roundtrip(Box::new(e))
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        use mxtrace_proto::exit::{INTERNAL, USAGE};
        match self {
            CliError::Demo(DemoError::FaultNotPlayed { .. }) => USAGE,
            CliError::Demo(_) | CliError::Io { .. } | CliError::Json(_) => INTERNAL,
            CliError::ScreenPanicked => INTERNAL,
            CliError::Sweep(mxtrace_core::sweep::SweepError::Output(_)) => INTERNAL,
            _ => USAGE,
        }
    }

    /// Internal errors are labelled as such.
    pub fn is_internal(&self) -> bool {
        self.exit_code() == mxtrace_proto::exit::INTERNAL
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
    fn value_enums_match_the_engine() {
        for v in CliStartTls::value_variants() {
            assert!(engine::<spec::StartTls>(*v).is_some(), "{v:?}");
        }
        for v in CliVerify::value_variants() {
            assert!(
                engine::<mxtrace_net::tls::VerifyMode>(*v).is_some(),
                "{v:?}"
            );
        }
        for v in CliOAuthGrant::value_variants() {
            assert!(engine::<spec::OAuthGrant>(*v).is_some(), "{v:?}");
        }
        for v in CliAuthMech::value_variants() {
            assert!(engine::<spec::AuthMech>(*v).is_some(), "{v:?}");
        }
        for v in roundtrip::TokenMech::value_variants() {
            let m = engine::<spec::AuthMech>(*v);
            assert!(m.is_some_and(spec::AuthMech::is_oauth), "{v:?}");
        }
    }
}
