//! The streaming runner: lines in, one `Record` out per target as it completes.

use super::target::{parse_line, stable_hash, LineError, MAX_LINE};
use super::SweepOptions;
use crate::job::{execute, Job, Target};
use crate::limits::Limits;
use mxtrace_net::tls::ConfigCache;
use mxtrace_proto::model::sweep::{Record, RecordBody, RecordError, RecordErrorKind};
use mxtrace_proto::model::PathContext;
use mxtrace_proto::spec::Naming;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::io::{self, BufRead};
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Lines read ahead of the running targets: bounded, so a huge input is not loaded.
const READ_AHEAD: usize = 64;
/// Slowest targets kept for the summary.
const SLOWEST: usize = 5;

/// What the sweep did, for the summary and the exit code.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    /// Lines that are not targets, and targets the settings do not fit.
    pub invalid: usize,
    pub duplicates: usize,
    pub other_shards: usize,
    pub resumed: usize,
    pub failed_by_category: BTreeMap<String, usize>,
    /// (input, elapsed ms), slowest first.
    pub slowest: Vec<(String, f64)>,
    /// Ctrl-C: the targets still running were abandoned, those not started not read.
    pub interrupted: bool,
}

impl Summary {
    pub fn done(&self) -> usize {
        self.passed + self.failed + self.invalid
    }

    fn count(&mut self, rec: &Record) {
        let report = match &rec.body {
            RecordBody::Error { .. } => {
                self.invalid += 1;
                return;
            }
            RecordBody::Report(r) => r,
        };
        if report.passed() {
            self.passed += 1;
        } else {
            self.failed += 1;
            *self
                .failed_by_category
                .entry(report.failure_category().to_string())
                .or_insert(0) += 1;
        }
        let elapsed = report.elapsed_ms();
        self.slowest.push((rec.input.clone(), elapsed));
        self.slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
        self.slowest.truncate(SLOWEST);
    }
}

/// Failures of the sweep itself (not of a target).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    #[error("reading the targets: {0}")]
    Input(#[source] io::Error),
    #[error("writing a result: {0}")]
    Output(#[source] io::Error),
}

/// What the reader hands the runner.
enum Item {
    Run(Target),
    Invalid(String, LineError),
    Skipped(Skip),
    Failed(io::Error),
}

enum Skip {
    Duplicate,
    OtherShard,
    Resumed,
}

/// Runs every target of `input`; `emit` gets each record as it completes (it writes and
/// flushes), `progress` the running summary. Ends when the input is done and every target
/// ran, or when `stop` completes (Ctrl-C): then the records of targets already finished are
/// still emitted, and the rest abandoned.
pub async fn sweep<R, S>(
    input: R,
    opts: &SweepOptions,
    stop: S,
    mut emit: impl FnMut(&Record) -> io::Result<()>,
    mut progress: impl FnMut(&Summary),
) -> Result<Summary, SweepError>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    S: Future<Output = ()>,
{
    let mut summary = Summary::default();
    let (tx, mut rx) = mpsc::channel(READ_AHEAD);
    let reader = tokio::spawn(read_targets(input, opts.clone(), tx));
    // Shared, not cloned per target: `done` holds a hash per line of a --resume file.
    let starter = Starter {
        opts: Arc::new(opts.clone()),
        limits: Limits::new(opts.per_ip, opts.per_subnet),
        // Every target has the same TLS settings: one configuration, built at the first.
        tls: Arc::new(ConfigCache::default()),
    };
    let width = opts.concurrency.max(1);
    let mut running = JoinSet::new();
    let mut input_done = false;
    tokio::pin!(stop);
    let mut record = |rec: Record, summary: &mut Summary| -> Result<(), SweepError> {
        summary.count(&rec);
        emit(&rec).map_err(SweepError::Output)?;
        progress(summary);
        Ok(())
    };
    loop {
        if input_done && running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            () = &mut stop => {
                summary.interrupted = true;
                break;
            }
            Some(done) = running.join_next(), if !running.is_empty() => {
                // The next targets start before this one is written out: with few sessions
                // at once, the write would otherwise sit between two of them.
                while !input_done && running.len() < width {
                    match rx.try_recv() {
                        Ok(item) => starter.take(item, &mut running, &mut summary, &mut record)?,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => input_done = true,
                    }
                }
                if let Ok(rec) = done {
                    record(rec, &mut summary)?;
                }
            }
            item = rx.recv(), if !input_done && running.len() < width => match item {
                None => input_done = true,
                Some(item) => starter.take(item, &mut running, &mut summary, &mut record)?,
            },
        }
    }
    reader.abort();
    if summary.interrupted {
        // Abandon what is still running; what already finished is written.
        running.abort_all();
        while let Some(done) = running.join_next().await {
            if let Ok(rec) = done {
                record(rec, &mut summary)?;
            }
        }
    }
    Ok(summary)
}

fn error_record(input: String, kind: RecordErrorKind, message: String) -> Record {
    Record {
        input,
        body: RecordBody::Error {
            error: RecordError { kind, message },
        },
    }
}

/// What every target of a sweep shares, and how a line read becomes a running target.
struct Starter {
    opts: Arc<SweepOptions>,
    limits: Arc<Limits>,
    tls: Arc<ConfigCache>,
}

impl Starter {
    fn take(
        &self,
        item: Item,
        running: &mut JoinSet<Record>,
        summary: &mut Summary,
        record: &mut impl FnMut(Record, &mut Summary) -> Result<(), SweepError>,
    ) -> Result<(), SweepError> {
        match item {
            Item::Run(t) => {
                let shared = (self.limits.clone(), self.tls.clone());
                running.spawn(run_one(t, self.opts.clone(), shared));
            }
            Item::Invalid(line, e) => {
                record(
                    error_record(line, RecordErrorKind::Input, e.to_string()),
                    summary,
                )?;
            }
            Item::Skipped(Skip::Duplicate) => summary.duplicates += 1,
            Item::Skipped(Skip::OtherShard) => summary.other_shards += 1,
            Item::Skipped(Skip::Resumed) => summary.resumed += 1,
            Item::Failed(e) => {
                running.abort_all();
                return Err(SweepError::Input(e));
            }
        }
        Ok(())
    }
}

/// One target, as `probe` or `trace` would run it with the sweep's session settings, its
/// sessions held to the sweep's per-destination `limits`.
async fn run_one(
    target: Target,
    opts: Arc<SweepOptions>,
    (limits, tls): (Arc<Limits>, Arc<ConfigCache>),
) -> Record {
    let key = target.key();
    let (job, naming) = match &opts.module {
        Some(m) => (
            m.job_for(&target, None).map_err(|e| e.to_string()),
            Naming::Key,
        ),
        None => {
            let ctx = PathContext {
                scenario: opts.scenario,
                hop: None,
            };
            let tenant = opts.tenant.as_deref();
            let job = Job::new(&target, &opts.spec, ctx, tenant, Naming::Flag);
            (job.map_err(|e| e.describe(Naming::Flag)), Naming::Flag)
        }
    };
    let job = match job {
        Ok(j) => j.with_limits(limits).with_tls_cache(tls),
        Err(e) => return error_record(key, RecordErrorKind::Input, e),
    };
    match execute(&job).await {
        Ok(report) => Record {
            input: key,
            body: RecordBody::Report(report),
        },
        // The record is output: its message is the error in the words of the front end.
        Err(source) => error_record(key, RecordErrorKind::Config, source.describe(naming)),
    }
}

/// Reads the input a line at a time (each at most `MAX_LINE` bytes), normalises, collapses
/// repeats and applies the shard and `--resume`, feeding the runner through a bounded channel.
async fn read_targets<R: AsyncBufRead + Unpin>(
    mut input: R,
    opts: SweepOptions,
    tx: mpsc::Sender<Item>,
) {
    let default_port = opts.spec.port_or_default();
    // 8 bytes per distinct target: the only state that grows with the input.
    let mut seen: HashSet<u64> = HashSet::new();
    loop {
        let item = match read_line(&mut input).await {
            Ok(None) => return,
            Err(e) => Item::Failed(e),
            Ok(Some(Err(e))) => Item::Invalid(String::new(), e),
            Ok(Some(Ok(line))) => match parse_line(&line, default_port) {
                None => continue,
                Some(Err(e)) => Item::Invalid(line.trim().to_string(), e),
                Some(Ok(t)) => {
                    let key = t.key();
                    let h = stable_hash(&key);
                    if !seen.insert(h) {
                        Item::Skipped(Skip::Duplicate)
                    } else if opts.shard.is_some_and(|s| !s.owns(&key)) {
                        Item::Skipped(Skip::OtherShard)
                    } else if opts.done.contains(&h) {
                        Item::Skipped(Skip::Resumed)
                    } else {
                        Item::Run(t)
                    }
                }
            },
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// One line without its end; a line over `MAX_LINE` bytes is skipped to its end and reported.
async fn read_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
) -> io::Result<Option<Result<String, LineError>>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (chunk, used, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (buf.get(..i).unwrap_or_default(), i + 1, true),
            None => (buf, buf.len(), false),
        };
        if line.len() + chunk.len() > MAX_LINE {
            too_long = true;
        } else {
            line.extend_from_slice(chunk);
        }
        input.consume(used);
        if end {
            break;
        }
    }
    if too_long {
        return Ok(Some(Err(LineError::TooLong { max: MAX_LINE })));
    }
    Ok(Some(
        String::from_utf8(line).map_err(|_| LineError::NotText),
    ))
}

/// The keys (hashed) of the targets a previous, possibly interrupted, run wrote: every line
/// that is a complete JSON object with an `input`. A torn last line does not count, so that
/// target runs again. The front end opens the `--resume` file.
pub fn resume_keys(file: impl BufRead) -> io::Result<HashSet<u64>> {
    let mut keys = HashSet::new();
    for line in file.split(b'\n') {
        let line = line?;
        #[derive(serde::Deserialize)]
        struct Input {
            input: String,
        }
        if let Ok(rec) = serde_json::from_slice::<Input>(&line) {
            keys.insert(stable_hash(&rec.input));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_reported_and_skipped() {
        let long = "a".repeat(MAX_LINE + 10);
        let text = format!("{long}\nmx.contoso.test:25\r\nlast");
        let mut input = tokio::io::BufReader::with_capacity(16, text.as_bytes());
        let first = read_line(&mut input).await.unwrap().unwrap();
        assert!(matches!(first, Err(LineError::TooLong { .. })));
        let second = read_line(&mut input).await.unwrap().unwrap().unwrap();
        assert_eq!(second.trim(), "mx.contoso.test:25");
        assert_eq!(
            read_line(&mut input).await.unwrap().unwrap().unwrap(),
            "last"
        );
        assert!(read_line(&mut input).await.unwrap().is_none());
    }
}
