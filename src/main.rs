//! Thin entry point: parse, dispatch, exit code.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use clap::Parser;
use mxtrace::cli::{Cli, Command, Format, LabCommand, LabServeArgs, UsageError};
use mxtrace::exit;
use mxtrace::report::{self, human::Style};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error and 0 for --help/--version, as DESIGN.md wants.
    let cli = Cli::parse();
    match std::panic::catch_unwind(|| run(&cli)) {
        Ok(Ok(code)) => exit::code(code),
        Ok(Err(Failure::Usage(e))) => {
            eprintln!("mxtrace: {e}");
            exit::code(exit::USAGE)
        }
        Ok(Err(Failure::Internal(e))) => {
            eprintln!("mxtrace: internal error: {e}");
            exit::code(exit::INTERNAL)
        }
        Err(_) => {
            eprintln!("mxtrace: internal error (panic); please report it");
            exit::code(exit::INTERNAL)
        }
    }
}

enum Failure {
    Usage(String),
    Internal(String),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Failure {
        Failure::Usage(e.0)
    }
}

fn run(cli: &Cli) -> Result<u8, Failure> {
    let format = cli.format();
    match &cli.command {
        Command::Probe(args) => {
            let opts = args.to_options()?;
            let report = runtime()?
                .block_on(mxtrace::probe::probe(&opts))
                .map_err(|e| Failure::Usage(e.0))?;
            let passed = report.verdict.passed;
            output(format, "probe", &report, passed, |style| {
                report::human::render_probe(&report, style)
            })
        }
        Command::Trace(args) => {
            let opts = args.to_options()?;
            let report = runtime()?
                .block_on(mxtrace::trace::trace(&opts))
                .map_err(|e| Failure::Usage(e.0))?;
            let passed = report.verdict.passed;
            output(format, "trace", &report, passed, |style| {
                report::human::render_trace(&report, style)
            })
        }
        Command::Run(args) => {
            let file = mxtrace::scenario::load(&args.file, &args.overrides())
                .map_err(|e| Failure::Usage(e.to_string()))?;
            // Every hop's options (and passwords) before anything runs.
            let prepared = file
                .hops
                .iter()
                .map(mxtrace::scenario::prepare)
                .collect::<Result<Vec<_>, _>>()?;
            let junit = match &args.junit {
                Some(p) => Some(report::junit::Pending::open(p).map_err(Failure::Usage)?),
                None => None,
            };
            let rt = runtime()?;
            let report = rt.block_on(mxtrace::run::run(&file, prepared))?;
            if let Some(j) = junit {
                j.commit(&report::junit::render(&report, &file.stem()))
                    .map_err(Failure::Usage)?;
            }
            let passed = report.verdict.passed;
            output(format, "run", &report, passed, |style| {
                report::human::render_run(&report, style)
            })
        }
        Command::Diff(args) => {
            let before = mxtrace::diff::read(&args.before)?;
            let after = mxtrace::diff::read(&args.after)?;
            let report = mxtrace::diff::diff(
                &args.before,
                &before,
                &args.after,
                &after,
                args.latency_threshold,
            )?;
            let passed = report.verdict.passed;
            output(format, "diff", &report, passed, |style| {
                report::human::render_diff(&report, style)
            })
        }
        Command::Demo(args) => {
            let opts = mxtrace::demo::DemoOptions {
                scenario: args.scenario,
                fault: args.fault,
                base: args.bind,
            };
            let rt = runtime()?;
            let report = rt
                .block_on(mxtrace::demo::run(&opts))
                .map_err(|e| match e {
                    mxtrace::demo::DemoError::Usage(m) => Failure::Usage(m),
                    mxtrace::demo::DemoError::Internal(m) => Failure::Internal(m),
                })?;
            output(format, "demo", &report, report.passed, |style| {
                mxtrace::demo::render_human(&report, style, args.verbose)
            })
        }
        Command::Headers(args) => {
            use mxtrace::headers_cli::{run, HeadersRunError};
            let (text, code) =
                run(args, format == Format::Json, report::use_color()).map_err(|e| match e {
                    HeadersRunError::Input(e) => Failure::Usage(e.to_string()),
                    HeadersRunError::Internal(e) => Failure::Internal(e.to_string()),
                })?;
            emit(&text)?;
            Ok(code)
        }
        Command::Lab(LabCommand::Serve(args)) => {
            let rt = runtime()?;
            rt.block_on(lab_serve(args, format))
        }
        Command::Explain(args) => {
            let (reply, stage, e) =
                mxtrace::explain::explain_text(&args.reply, args.stage.as_deref())
                    .map_err(|e| Failure::Usage(e.to_string()))?;
            let text = match format {
                Format::Human => {
                    mxtrace::explain::render_human(&reply, stage, &e, report::use_color())
                }
                Format::Json => mxtrace::explain::render_json(&e)
                    .map_err(|e| Failure::Internal(e.to_string()))?,
            };
            emit(&text)?;
            Ok(exit::PASS)
        }
    }
}

/// Prints a report in the format asked for and turns its verdict into the exit code.
fn output<T: serde::Serialize>(
    format: Format,
    command: &str,
    report: &T,
    passed: bool,
    human: impl FnOnce(Style) -> String,
) -> Result<u8, Failure> {
    let text = match format {
        Format::Human => human(Style::new(report::use_color())),
        Format::Json => {
            report::json::render(command, report).map_err(|e| Failure::Internal(e.to_string()))?
        }
    };
    emit(&text)?;
    Ok(if passed { exit::PASS } else { exit::FAIL })
}

/// `lab serve`: start, describe, wait for Ctrl-C or SIGTERM (the one wait without a deadline:
/// serving until told to stop is the point), stop cleanly.
async fn lab_serve(args: &LabServeArgs, format: Format) -> Result<u8, Failure> {
    use mxtrace::lab::{Lab, LabOptions};
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
        std::io::ErrorKind::InvalidInput => Failure::Usage(e.to_string()),
        _ => Failure::Internal(format!("starting the lab: {e}")),
    })?;
    let json = serde_json::to_string(lab.info()).map_err(|e| Failure::Internal(e.to_string()))?;
    if let Some(dir) = &args.dir {
        // Written last, once everything listens: a readiness signal for scripts and compose.
        std::fs::write(dir.join("lab.json"), format!("{json}\n"))
            .map_err(|e| Failure::Internal(format!("writing lab.json: {e}")))?;
    }
    let text = match format {
        Format::Json => format!("{json}\n"),
        Format::Human => format!(
            "{}\nReady. Ctrl-C or SIGTERM stops the lab.\n",
            lab.info().render_human()
        ),
    };
    emit(&text)?;
    wait_for_stop().await?;
    if let Some(dir) = &args.dir {
        let _ = std::fs::remove_file(dir.join("lab.json"));
    }
    lab.shutdown().await;
    eprintln!("mxtrace: lab stopped");
    Ok(exit::PASS)
}

#[cfg(unix)]
async fn wait_for_stop() -> Result<(), Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Failure::Internal(format!("installing the SIGTERM handler: {e}")))?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(|e| Failure::Internal(e.to_string())),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_stop() -> Result<(), Failure> {
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::Internal(e.to_string()))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("starting the runtime: {e}")))
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Internal(format!("writing output: {e}"))),
    }
}
