//! Runs a parsed command: the engine does the work, this decides the output format and turns
//! the verdict into the exit code.

use super::{job, Cli, CliError, Command, Format, LabCommand, LabServeArgs};
use clap::CommandFactory;
use mxtrace_core::job::execute;
use mxtrace_proto::exit;
use mxtrace_proto::model::JobReport;
use mxtrace_proto::spec::Naming;
use mxtrace_render as report;
use mxtrace_render::style::Style;
use std::io::Write;
use std::path::PathBuf;

pub fn run(cli: &Cli) -> Result<u8, CliError> {
    let format = cli.format();
    let thresholds = super::nagios::thresholds(cli)?;
    // Claimed before anything runs: an unwritable path is a usage error, found first.
    let html = match cli.command.html_file() {
        Some(p) => Some(report::junit::Pending::open(p).map_err(CliError::Html)?),
        None => None,
    };
    if let Some(j) = job(&cli.command)? {
        return run_job(&j, format, &thresholds, html);
    }
    match &cli.command {
        Command::Probe(_) | Command::Trace(_) => Ok(exit::INTERNAL),
        Command::Run(args) => run_file(args, format, &thresholds, html),
        Command::Report(args) => report_files(args, format, html),
        Command::Sweep(args) => super::sweep::run(args, format),
        Command::Watch(args) => super::watch::run(args, format, html),
        Command::Roundtrip(args) => roundtrip(args, format, html),
        Command::Diff(args) => diff(args, format, html),
        Command::Headers(args) => headers(args, format),
        Command::Dns(args) => {
            use mxtrace_core::posture::posture;
            use mxtrace_render::posture::render_human;
            let report = runtime()?.block_on(posture(&args.to_options()))?;
            output(format, "dns", &report, report.verdict.passed, |style| {
                render_human(&report, style)
            })
        }
        Command::Demo(args) => demo(args, format, html),
        Command::Lab(LabCommand::Serve(args)) => runtime()?.block_on(lab_serve(args, format)),
        Command::Serve(args) => runtime()?.block_on(super::serve::run(args)),
        Command::Explain(args) => explain(args, format),
        Command::Completions(args) => {
            // Into a buffer first: clap_complete panics when stdout is a closed pipe.
            let mut buf = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "mxtrace", &mut buf);
            emit(&buf)?;
            Ok(exit::PASS)
        }
        Command::Man => man(),
    }
}

/// `probe` and `trace`: the job, then its report in every format asked for.
fn run_job(
    j: &mxtrace_core::job::Job,
    format: Format,
    thresholds: &report::nagios::Thresholds,
    html: Option<report::junit::Pending>,
) -> Result<u8, CliError> {
    let report = one_job_runtime()?.block_on(execute(j))?;
    write_html(html, || match &report {
        JobReport::Probe(p) => report::html::render_probe(p),
        JobReport::Trace(t) => report::html::render_trace(t),
    })?;
    if format == Format::Nagios {
        let r = match &report {
            JobReport::Probe(p) => report::nagios::render_probe(p, thresholds),
            JobReport::Trace(t) => report::nagios::render_trace(t, thresholds),
        };
        return emit_nagios(&r);
    }
    output_job(format, &report)
}

fn roundtrip(
    args: &super::roundtrip::RoundtripArgs,
    format: Format,
    html: Option<report::junit::Pending>,
) -> Result<u8, CliError> {
    let opts = args.to_options()?;
    let report = runtime()?.block_on(mxtrace_core::roundtrip::roundtrip(&opts))?;
    write_html(html, || report::html::render_roundtrip(&report))?;
    output(
        format,
        "roundtrip",
        &report,
        report.verdict.passed,
        |style| report::roundtrip::render_human(&report, style),
    )
}

fn diff(
    args: &super::DiffArgs,
    format: Format,
    html: Option<report::junit::Pending>,
) -> Result<u8, CliError> {
    let before = mxtrace_core::diff::read(&args.before)?;
    let after = mxtrace_core::diff::read(&args.after)?;
    let report = mxtrace_core::diff::diff(
        &args.before,
        &before,
        &args.after,
        &after,
        args.latency_threshold,
    )?;
    write_html(html, || report::html::render_diff(&report, &before, &after))?;
    let passed = report.verdict.passed;
    output(format, "diff", &report, passed, |style| {
        report::human::render_diff(&report, style)
    })
}

fn headers(args: &super::headers::HeadersArgs, format: Format) -> Result<u8, CliError> {
    use mxtrace_core::headers::{analyze, read_input};
    use mxtrace_render::headers::render_human;
    let report = analyze(&args.file.display().to_string(), &read_input(&args.file)?)?;
    output(format, "headers", &report, report.verdict.passed, |style| {
        render_human(&report, style)
    })
}

fn demo(
    args: &super::DemoArgs,
    format: Format,
    html: Option<report::junit::Pending>,
) -> Result<u8, CliError> {
    let opts = crate::cli::demo::DemoOptions {
        scenario: args.scenario,
        fault: args.fault,
        base: args.bind,
    };
    let report = runtime()?.block_on(crate::cli::demo::run(&opts))?;
    write_html(html, || report::html::render_demo(&report))?;
    output(format, "demo", &report, report.passed, |style| {
        report::demo::render_human(&report, style, args.verbose)
    })
}

fn explain(args: &super::ExplainArgs, format: Format) -> Result<u8, CliError> {
    let (reply, stage, e) = mxtrace_core::explain::explain_text(
        &args.reply,
        args.stage.as_deref(),
        Some(args.peer.as_str()),
    )?;
    let text = match format {
        Format::Human => report::explain::render_human(&reply, stage, &e, report::use_color()),
        // --format nagios was refused above for every command but the checks.
        Format::Json | Format::Nagios => report::explain::render_json(&e)?,
    };
    emit(text.as_bytes())?;
    Ok(exit::PASS)
}

fn man() -> Result<u8, CliError> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|source| CliError::Io {
            what: "rendering the manual page",
            source,
        })?;
    emit(&buf)?;
    Ok(exit::PASS)
}

fn output_job(format: Format, report: &JobReport) -> Result<u8, CliError> {
    output(
        format,
        report.command(),
        report,
        report.passed(),
        |style| match report {
            JobReport::Probe(p) => report::human::render_probe(p, style),
            JobReport::Trace(t) => report::human::render_trace(t, style, Naming::Flag),
        },
    )
}

/// Writes the claimed `--html` file, if there is one.
fn write_html(
    html: Option<report::junit::Pending>,
    render: impl FnOnce() -> String,
) -> Result<(), CliError> {
    match html {
        Some(h) => h.commit(&render()).map_err(CliError::Html),
        None => Ok(()),
    }
}

fn run_file(
    args: &super::RunArgs,
    format: Format,
    thresholds: &report::nagios::Thresholds,
    html: Option<report::junit::Pending>,
) -> Result<u8, CliError> {
    let file = mxtrace_core::scenario_file::load(&args.file, &args.overrides())?;
    // Every hop's options (and passwords) before anything runs.
    let prepared = file
        .hops
        .iter()
        .map(mxtrace_core::scenario_file::prepare)
        .collect::<Result<Vec<_>, _>>()?;
    let junit = match &args.junit {
        Some(p) => Some(report::junit::Pending::open(p).map_err(CliError::Junit)?),
        None => None,
    };
    let report = runtime()?.block_on(mxtrace_core::run::run(&file, prepared))?;
    if let Some(j) = junit {
        j.commit(&report::junit::render(&report, &file.stem()))
            .map_err(CliError::Junit)?;
    }
    write_html(html, || report::html::render_run(&report))?;
    if format == Format::Nagios {
        return emit_nagios(&report::nagios::render_run(&report, thresholds));
    }
    let passed = report.verdict.passed;
    output(format, "run", &report, passed, |style| {
        report::human::render_run(&report, style)
    })
}

/// Prints a report in the format asked for and turns its verdict into the exit code.
fn output<T: serde::Serialize>(
    format: Format,
    command: &str,
    report: &T,
    passed: bool,
    human: impl FnOnce(Style) -> String,
) -> Result<u8, CliError> {
    let text = match format {
        Format::Human => human(Style::new(report::use_color())),
        Format::Json => report::json::render(command, report)?,
        Format::Nagios => return Err(super::nagios::NagiosUsage::NotACheck.into()),
    };
    emit(text.as_bytes())?;
    Ok(if passed { exit::PASS } else { exit::FAIL })
}

/// The Nagios status line; its state is the exit code.
fn emit_nagios(r: &report::nagios::Rendered) -> Result<u8, CliError> {
    emit(r.text.as_bytes())?;
    Ok(r.state.code())
}

/// `lab serve`: start, describe, wait for Ctrl-C or SIGTERM (the one wait without a deadline:
/// serving until told to stop is the point), stop cleanly.
async fn lab_serve(args: &LabServeArgs, format: Format) -> Result<u8, CliError> {
    use mxtrace_lab::{Lab, LabOptions};
    let opts = LabOptions {
        base: args.bind,
        port: args.port,
        faults: args.fault.clone(),
        dir: args.dir.clone(),
    };
    if let Some(dir) = &args.dir {
        // A lab.json left by a lab that was killed would announce this one too early.
        let _ = std::fs::remove_file(dir.join("lab.json"));
    }
    let lab = Lab::start(opts).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => CliError::LabOptions(e),
        _ => CliError::Io {
            what: "starting the lab",
            source: e,
        },
    })?;
    let json = serde_json::to_string(lab.info())?;
    if let Some(dir) = &args.dir {
        // Written last, once everything listens: a readiness signal for scripts and compose.
        std::fs::write(dir.join("lab.json"), format!("{json}\n")).map_err(|source| {
            CliError::Io {
                what: "writing lab.json",
                source,
            }
        })?;
    }
    let text = match format {
        Format::Json | Format::Nagios => format!("{json}\n"),
        Format::Human => format!(
            "{}\nReady. Ctrl-C or SIGTERM stops the lab.\n",
            lab.info().render_human()
        ),
    };
    emit(text.as_bytes())?;
    wait_for_stop().await?;
    if let Some(dir) = &args.dir {
        let _ = std::fs::remove_file(dir.join("lab.json"));
    }
    lab.shutdown().await;
    eprintln!("mxtrace: lab stopped");
    Ok(exit::PASS)
}

fn signal_error(source: std::io::Error) -> CliError {
    CliError::Io {
        what: "waiting for a signal",
        source,
    }
}

#[cfg(unix)]
pub(super) async fn wait_for_stop() -> Result<(), CliError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(signal_error),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
pub(super) async fn wait_for_stop() -> Result<(), CliError> {
    tokio::signal::ctrl_c().await.map_err(signal_error)
}

/// `mxtrace report`: a sweep's JSON lines give the fleet's summary (stdout) and table (--html);
/// a saved result its HTML report.
fn report_files(
    args: &super::ReportArgs,
    format: Format,
    html: Option<report::junit::Pending>,
) -> Result<u8, CliError> {
    use mxtrace_core::fleet;
    let first = args.files.first().map(PathBuf::as_path);
    if first.is_some_and(fleet::is_sweep_output) {
        let fleet = fleet::read(&args.files)?;
        write_html(html, || report::fleet::render_html(&fleet))?;
        return output(format, "report", &fleet, true, |style| {
            report::fleet::render_human(&fleet, style)
        });
    }
    let [file] = args.files.as_slice() else {
        return Err(CliError::ReportUsage(
            "report reads one saved result, or the JSON lines of `sweep --json` (any number of files)",
        ));
    };
    if html.is_none() {
        return Err(CliError::ReportUsage(
            "report of a saved result needs --html OUT",
        ));
    }
    let doc = mxtrace_core::diff::read(file)?;
    write_html(html, || report::html::render_document(&doc))?;
    Ok(exit::PASS)
}

/// One probe or trace: its sessions are a few sockets that wait on the network, so one thread
/// runs them. The worker threads of the multi-threaded runtime cost start-up time and a
/// cross-thread wake-up per event (`perf stat` on a probe: 38 context switches a run, see
/// docs/benchmarks.md).
fn one_job_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the runtime",
            source,
        })
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the runtime",
            source,
        })
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub(super) fn emit(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(CliError::Io {
            what: "writing output",
            source,
        }),
    }
}
