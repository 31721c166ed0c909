//! `mxtrace sweep`: the front end of the engine's sweep (crates/mxtrace-core/src/sweep):
//! flags, JSONL on stdout flushed per result, a progress line on stderr when it is a
//! terminal, and the summary on stderr at the end.

use super::{scenario_letter, CliError, SessionArgs};
use clap::builder::TypedValueParser;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mxtrace_core::sweep::{self, Record, RecordBody, Shard, Summary, SweepError, SweepOptions};
use mxtrace_knowledge::Scenario;
use mxtrace_render as report;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const SWEEP_EXAMPLES: &str = "\
Target lines: HOST[:PORT] or an IP address is probed (as `probe`), a bare DOMAIN is traced (as
`trace`); `probe NAME` / `trace NAME` say which. Blank lines and # comments are skipped;
repeats are collapsed. Each result is one line on stdout, written as it completes: readable
(PASS/FAIL, the normalised target, its time and summary), or with --json one JSON object with
the normalised target in `input` (what --resume and `mxtrace report` read); the summary goes
to stderr.

Exit: 0 every target passed; 1 a target failed, or the sweep was interrupted (Ctrl-C: the
results already finished are written); 2 a line is not a target (the others still run).

Examples:
  mxtrace sweep mx-hosts.txt --rcpt postmaster@contoso.com
  cat domains.txt | mxtrace sweep - --json --concurrency 64 --per-ip 2 >> results.jsonl
  mxtrace sweep fleet.txt --json --shard 2/8 > shard2.jsonl
  mxtrace sweep fleet.txt --json --shard job-index/8 > shard.jsonl   # Kubernetes indexed Job
  mxtrace sweep fleet.txt --json --resume shard2.jsonl >> shard2.jsonl
  mxtrace report shard*.jsonl --html fleet.html
  mxtrace sweep hosts.txt --config exporter.toml --module eop";

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// File of targets, one a line; - reads stdin.
    #[arg(value_name = "TARGETS")]
    pub targets: PathBuf,
    /// Targets in flight at once.
    #[arg(long, value_name = "N", default_value_t = sweep::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    pub concurrency: usize,
    /// At most N sessions at once to one IP address (receivers throttle bursts: 421 4.7.x).
    #[arg(long, value_name = "N", default_value_t = sweep::DEFAULT_PER_IP, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    pub per_ip: usize,
    /// At most N sessions at once to one /24 (IPv4) or /48 (IPv6).
    #[arg(long, value_name = "N", default_value_t = sweep::DEFAULT_PER_SUBNET, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    pub per_subnet: usize,
    /// Threads that drive the sessions. One drives thousands (each waits on the network, as
    /// smtp-source's one process does, with no wake-up crossing threads); more help only a
    /// STARTTLS sweep whose handshakes fill a core.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64).map(usize::from))]
    pub threads: usize,
    /// Run only the targets of shard I of N (1-based; a stable hash of the normalised
    /// target), so that N jobs split one list. `job-index/N` takes I from a Kubernetes indexed
    /// Job's JOB_COMPLETION_INDEX (0-based: index 0 runs shard 1).
    #[arg(long, value_name = "I/N|job-index/N")]
    pub shard: Option<ShardArg>,
    /// Skip the targets already in this JSONL output of an earlier, partial run.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Exporter config (`serve --config`) whose --module supplies the session settings and
    /// allowed_targets instead of the session flags.
    #[arg(long, value_name = "FILE", requires = "module")]
    pub config: Option<PathBuf>,
    /// The module of --config to use.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub module: Option<String>,
    /// DNS server for traced domains: IP, IP:PORT or [IPv6]:PORT.
    #[arg(long, value_name = "IP[:PORT]", help_heading = "DNS")]
    pub resolver: Option<String>,
    /// Time allowed for one DNS request.
    #[arg(long, value_name = "DURATION", value_parser = super::duration, help_heading = "DNS")]
    pub dns_timeout: Option<super::HumanDuration>,
    /// Port of host lines without one, and of traced domains' MX hosts (default 25).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Delivery scenario for the explanations (A, B, C or D).
    #[arg(long, value_parser = scenario_letter, help_heading = "Scenario")]
    pub scenario: Option<Scenario>,
    /// Microsoft 365 tenant, as `trace --tenant`.
    #[arg(long, value_name = "TENANT", help_heading = "Scenario")]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub session: SessionArgs,
}

impl SweepArgs {
    /// The engine's options; every setting checked before anything runs.
    fn options(&self) -> Result<SweepOptions, CliError> {
        let mut spec = self.session.spec();
        spec.resolver = self.resolver.clone();
        spec.dns_timeout = self.dns_timeout.map(|d| d.0);
        spec.port = self.port;
        let module = match (&self.config, &self.module) {
            (Some(path), Some(name)) => {
                let config = mxtrace_core::exporter::config::ExporterConfig::read(path)?;
                let m = config
                    .module(name)
                    .cloned()
                    .ok_or_else(|| CliError::SweepModule {
                        path: path.clone(),
                        module: name.clone(),
                        modules: config.modules.keys().cloned().collect(),
                    })?;
                spec = m.spec().clone();
                Some(Arc::new(m))
            }
            _ => None,
        };
        spec.validate(None)?;
        let done = match &self.resume {
            Some(p) => std::fs::File::open(p)
                .map(std::io::BufReader::new)
                .and_then(sweep::resume_keys)
                .map_err(|source| CliError::Resume {
                    path: p.display().to_string(),
                    source,
                })?,
            None => Default::default(),
        };
        Ok(SweepOptions {
            spec,
            scenario: self.scenario,
            tenant: self.tenant.clone(),
            module,
            concurrency: self.concurrency,
            per_ip: self.per_ip,
            per_subnet: self.per_subnet,
            shard: self.shard.map(ShardArg::resolve).transpose()?,
            done,
        })
    }
}

/// One thread (current-thread runtime) or `threads` workers.
fn sweep_runtime(threads: usize) -> Result<tokio::runtime::Runtime, CliError> {
    let mut b = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    b.enable_all().build().map_err(|source| CliError::Io {
        what: "starting the runtime",
        source,
    })
}

/// Runs the sweep; the exit code follows the summary.
pub fn run(args: &SweepArgs, format: super::Format) -> Result<u8, CliError> {
    let opts = args.options()?;
    let json = format == super::Format::Json;
    let style = report::style::Style::new(report::use_color());
    let rt = sweep_runtime(args.threads)?;
    let targets = args.targets.clone();
    // The sweep runs as a task, not on the thread that blocks on it: with workers, each
    // finished target then wakes it on a worker (often the same one), not across threads
    // (docs/benchmarks.md).
    let task = rt.spawn(async move {
        let input = open(&targets).await?;
        let bar = progress_bar();
        let out = std::io::stdout();
        let mut line = Vec::with_capacity(8192);
        let emit = |rec: &Record| -> std::io::Result<()> {
            line.clear();
            match &rec.body {
                _ if json => report::json::write_line(&mut line, rec.command(), rec)?,
                RecordBody::Report(r) => line
                    .extend_from_slice(report::sweep::render_line(&rec.input, r, style).as_bytes()),
                RecordBody::Error { error } => line.extend_from_slice(
                    report::sweep::render_error_line(
                        &rec.input,
                        error.kind.as_str(),
                        &error.message,
                        style,
                    )
                    .as_bytes(),
                ),
            }
            line.push(b'\n');
            // One write, flushed per result: a reader (or a Ctrl-C) sees every finished one.
            let mut out = out.lock();
            out.write_all(&line)?;
            out.flush()
        };
        let progress = |s: &Summary| {
            if let Some(b) = &bar {
                b.set_message(format!(
                    "{} done: {} passed, {} failed, {} invalid",
                    s.done(),
                    s.passed,
                    s.failed,
                    s.invalid
                ));
            }
        };
        let r = sweep::sweep(input, &opts, stop(), emit, progress).await;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        r
    });
    let summary = rt.block_on(task).map_err(|e| CliError::Io {
        what: "running the sweep",
        source: std::io::Error::other(e),
    })?;
    let summary = match summary {
        Ok(s) => s,
        // `| head`: the reader has gone, so the rest of the sweep has no one to go to. Not an
        // internal error, and not a pass: the sweep did not finish.
        Err(SweepError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(mxtrace_proto::exit::FAIL)
        }
        Err(e) => return Err(e.into()),
    };
    eprint!("{}", render_summary(&summary));
    Ok(exit_code(&summary))
}

/// 0 every target passed; 1 a target failed, or the sweep was interrupted; 2 a line was not a
/// target (the others still ran).
fn exit_code(summary: &Summary) -> u8 {
    use mxtrace_proto::exit::{FAIL, PASS, USAGE};
    if summary.invalid > 0 {
        USAGE
    } else if summary.failed > 0 || summary.interrupted {
        FAIL
    } else {
        PASS
    }
}

/// `--shard`: a fixed shard, or the one a Kubernetes indexed Job's pod is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    /// `job-index/N`: shard JOB_COMPLETION_INDEX + 1 of N, read when the sweep starts.
    JobIndex(u64),
}

/// The variable Kubernetes sets in each pod of an indexed Job (`completionMode: Indexed`).
pub const JOB_INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

impl std::str::FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<ShardArg, String> {
        if let Some(n) = s.strip_prefix("job-index/") {
            return match n.trim().parse::<u64>() {
                Ok(count) if count >= 1 => Ok(ShardArg::JobIndex(count)),
                _ => Err(format!("expected job-index/N with N >= 1, got {s:?}")),
            };
        }
        s.parse()
            .map(ShardArg::Fixed)
            .map_err(|e: sweep::ShardError| e.to_string())
    }
}

impl ShardArg {
    fn resolve(self) -> Result<Shard, CliError> {
        let count = match self {
            ShardArg::Fixed(s) => return Ok(s),
            ShardArg::JobIndex(count) => count,
        };
        let raw = std::env::var(JOB_INDEX_VAR).unwrap_or_default();
        raw.trim()
            .parse::<u64>()
            .ok()
            .and_then(|i| Shard::new(i.checked_add(1)?, count))
            .ok_or(CliError::SweepJobIndex { count, found: raw })
    }
}

type Input = Box<dyn tokio::io::AsyncBufRead + Unpin + Send>;

async fn open(path: &std::path::Path) -> Result<Input, SweepError> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(tokio::io::BufReader::new(tokio::io::stdin())));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(SweepError::Input)?;
    Ok(Box::new(tokio::io::BufReader::new(file)))
}

/// Ctrl-C or SIGTERM; if signals cannot be watched, never (the sweep runs to its end).
async fn stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A spinner with the counts, on stderr, only when stderr is a terminal (the input is a
/// stream: its length is unknown).
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").ok()?);
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// The end-of-run summary (stderr).
pub fn render_summary(s: &Summary) -> String {
    let mut out = format!(
        "mxtrace sweep: {} target(s): {} passed, {} failed, {} invalid",
        s.done(),
        s.passed,
        s.failed,
        s.invalid
    );
    let skipped = [
        (s.duplicates, "duplicate(s) collapsed"),
        (s.other_shards, "in other shards"),
        (s.resumed, "already done (--resume)"),
    ];
    for (n, what) in skipped.iter().filter(|(n, _)| *n > 0) {
        out.push_str(&format!("; {n} {what}"));
    }
    out.push('\n');
    if s.interrupted {
        out.push_str("interrupted: targets still running were abandoned\n");
    }
    let cats = s.failed_by_category.iter().map(|(c, n)| format!("{c} {n}"));
    list(&mut out, "failed by category", cats);
    let slow = s.slowest.iter().map(|(t, ms)| format!("{t} ({ms:.0} ms)"));
    list(&mut out, "slowest", slow);
    out
}

/// `label: a, b, c` on a line of its own, when there is anything to list.
fn list(out: &mut String, label: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if !items.is_empty() {
        out.push_str(&format!("{label}: {}\n", items.join(", ")));
    }
}
