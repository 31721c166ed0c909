//! `mxtrace watch`: the front end of the engine's watch (crates/mxtrace-core/src/watch): flags,
//! targets turned into jobs (`job::Target`, `Job::new`), the live screen on a terminal
//! (`screen`), event lines or JSON lines otherwise (`lines`), and the change-window report at
//! the end (`--report`, `--html`).

mod lines;
mod screen;

use super::{duration, CliError, Format, HtmlArgs, HumanDuration, SessionArgs};
use clap::{Args, ValueEnum};
use mxtrace_core::job::{Job, Target};
use mxtrace_core::watch::{self, Control, TokioClock, Until, WatchOptions, WatchTarget};
use mxtrace_proto::exit;
use mxtrace_proto::model::watch::{WatchLine, WatchReport};
use mxtrace_proto::model::PathContext;
use mxtrace_proto::spec::Naming;
use mxtrace_render as report;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

pub const WATCH_EXAMPLES: &str = "\
Targets: HOST[:PORT] or an IP address is probed (as `probe`), a bare DOMAIN is traced (as
`trace`); `probe NAME` / `trace NAME` (quoted) say which. Each target has its own schedule: a
probe every --interval (default 5s, at least 1s: one session a second per target), a slow one
delays no other, and one that overruns its interval skips the ticks it covered.

On a terminal: a live screen (per-stage table with sparklines, status, event log). Keys: p
pause/resume, r reset the statistics, Tab/n and Shift-Tab/N switch target, q or Ctrl-C quit.
Otherwise (or --no-screen): one line per event (up, down, changed, recovered) and a summary at
the end; --json: one JSON object per probe and per event, then the report, one a line.

Exit: 0 the last probe of every target passed; 1 otherwise; 2 usage error.

Examples:
  mxtrace watch mx1.contoso.com mx2.contoso.com:2525 --rcpt postmaster@contoso.com
  mxtrace watch contoso.com --interval 10s --report window.json --html window.html
  mxtrace watch 192.0.2.25 --until pass --rcpt user@contoso.com | tee window.log
  mxtrace report window.json --html window.html";

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to watch: HOST[:PORT], an IP address or [IPv6]:PORT (probed), a DOMAIN (its MX
    /// walked as by `trace`).
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
    /// Time between the starts of two probes of one target (at least 1s).
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(watch::DEFAULT_INTERVAL), value_parser = duration)]
    pub interval: HumanDuration,
    /// Stop after N probes of every target.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop once the last probe of every target passed (pass), or at the first failed probe
    /// (fail).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub until: Option<CliUntil>,
    /// Write the change-window report (JSON: timeline, outage windows, statistics, events)
    /// here at the end; `mxtrace report FILE.json --html OUT` renders it.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub html: HtmlArgs,
    /// Event lines even on a terminal (no live screen).
    #[arg(long)]
    pub no_screen: bool,
    /// DNS server for traced domains: IP, IP:PORT or [IPv6]:PORT.
    #[arg(long, value_name = "IP[:PORT]", help_heading = "DNS")]
    pub resolver: Option<String>,
    /// Time allowed for one DNS request.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = "DNS")]
    pub dns_timeout: Option<HumanDuration>,
    /// SMTP port of traced domains' MX hosts (default 25).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// `--until` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CliUntil {
    /// The last probe of every target passed.
    Pass,
    /// A probe failed.
    Fail,
}

impl WatchArgs {
    /// Every target's job and the watch's options, checked before anything runs.
    fn prepare(&self) -> Result<(Vec<WatchTarget>, WatchOptions), CliError> {
        let mut spec = self.session.spec();
        spec.resolver = self.resolver.clone();
        spec.dns_timeout = self.dns_timeout.map(|d| d.0);
        spec.port = self.port;
        let default_port = spec.default_port();
        let mut targets = Vec::with_capacity(self.targets.len());
        for text in &self.targets {
            let target = Target::parse(text, default_port)?;
            let job = Job::new(&target, &spec, PathContext::default(), None, Naming::Flag)?;
            targets.push(WatchTarget { target, job });
        }
        let until = self.until.map(|u| match u {
            CliUntil::Pass => Until::Pass,
            CliUntil::Fail => Until::Fail,
        });
        let opts =
            WatchOptions::new(self.interval.0, self.count, until).map_err(CliError::Interval)?;
        Ok((targets, opts))
    }
}

/// How the watch is shown.
enum Mode {
    Screen,
    Lines,
    Json,
}

/// Runs the watch; the exit code follows the last probe of every target.
pub fn run(
    args: &WatchArgs,
    format: Format,
    html: Option<report::junit::Pending>,
) -> Result<u8, CliError> {
    let (targets, opts) = args.prepare()?;
    // Claimed before anything runs, as --html is: an unwritable path is a usage error.
    let json_file = match &args.report {
        Some(p) => Some(report::junit::Pending::open(p).map_err(CliError::ReportFile)?),
        None => None,
    };
    let terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let mode = match format {
        Format::Json => Mode::Json,
        _ if terminal && !args.no_screen => Mode::Screen,
        _ => Mode::Lines,
    };
    let rt = super::dispatch::runtime()?;
    let (control, rx) = mpsc::unbounded_channel();
    let stopper = control.clone();
    rt.spawn(async move {
        if super::dispatch::wait_for_stop().await.is_ok() {
            let _ = stopper.send(Control::Stop);
        }
    });
    let clock = Arc::new(TokioClock::new());
    let prober = Arc::new(watch::Engine);
    let mut screen_ok = true;
    let report = match mode {
        Mode::Screen => {
            let mut sink = screen::Screen::start(&targets, &opts, control)?;
            let r = rt.block_on(watch::run(targets, &opts, clock, prober, &mut sink, rx));
            screen_ok = sink.finish();
            let r = r?;
            super::dispatch::emit(lines::summary(&r).as_bytes())?;
            r
        }
        Mode::Lines | Mode::Json => {
            let mut sink = lines::Lines::new(matches!(mode, Mode::Json), control);
            let r = rt.block_on(watch::run(targets, &opts, clock, prober, &mut sink, rx))?;
            sink.finish(&r)?;
            r
        }
    };
    rt.shutdown_background();
    save(&report, json_file, html)?;
    if !screen_ok {
        return Err(CliError::ScreenPanicked);
    }
    Ok(if report.verdict.passed {
        exit::PASS
    } else {
        exit::FAIL
    })
}

/// `--report` (the report line of `--json`, pretty: one schema for both) and `--html`.
fn save(
    r: &WatchReport,
    json: Option<report::junit::Pending>,
    html: Option<report::junit::Pending>,
) -> Result<(), CliError> {
    if let Some(j) = json {
        j.commit(&report::json::render(
            "watch",
            &WatchLine::Report(r.clone()),
        )?)
        .map_err(CliError::Html)?;
    }
    if let Some(h) = html {
        h.commit(&report::html::render_watch(r))
            .map_err(CliError::Html)?;
    }
    Ok(())
}
