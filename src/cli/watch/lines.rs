//! `watch` without a terminal: one line per event (not per probe) and the summary at the end;
//! with `--json`, one object per probe and per event, then the report, one a line. Each line
//! is flushed as it is written (a `tee` or a CI log shows it at once).

use super::super::CliError;
use mxtrace_core::watch::{Control, Sink, WatchState};
use mxtrace_proto::model::watch::{ProbeSample, WatchEvent, WatchLine, WatchReport};
use mxtrace_render as report;
use mxtrace_render::style::Style;
use std::io::Write;
use tokio::sync::mpsc::UnboundedSender;

pub struct Lines {
    json: bool,
    style: Style,
    /// A write that failed (a closed pipe) stops the watch: nobody reads it any more.
    control: UnboundedSender<Control>,
    error: Option<std::io::Error>,
}

impl Lines {
    pub fn new(json: bool, control: UnboundedSender<Control>) -> Lines {
        Lines {
            json,
            style: Style::new(report::use_color()),
            control,
            error: None,
        }
    }

    fn write(&mut self, text: &str) {
        if self.error.is_some() {
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            self.error = Some(e);
            let _ = self.control.send(Control::Stop);
        }
    }

    fn json_line(&mut self, line: &WatchLine) {
        match report::json::render_line("watch", line) {
            Ok(mut s) => {
                s.push('\n');
                self.write(&s);
            }
            Err(e) => self.error = Some(std::io::Error::other(e)),
        }
    }

    /// The summary (or the report line), and the first write error if there was one: a closed
    /// pipe is not worth a message; anything else is.
    pub fn finish(mut self, r: &WatchReport) -> Result<(), CliError> {
        if self.json {
            self.json_line(&WatchLine::Report(r.clone()));
        } else {
            let s = report::watch::summary(r, self.style);
            self.write(&s);
        }
        match self.error {
            Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io {
                what: "writing output",
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

impl Sink for Lines {
    fn probe(&mut self, sample: &ProbeSample, _: &WatchState, _: f64) {
        if self.json {
            self.json_line(&WatchLine::Probe(sample.clone()));
        }
    }

    fn event(&mut self, event: &WatchEvent, _: &WatchState, _: f64) {
        if self.json {
            self.json_line(&WatchLine::Event(event.clone()));
        } else {
            let s = report::watch::event_line(event, self.style);
            self.write(&s);
        }
    }
}

/// The summary printed after the live screen closes (no colour decisions of its own: the
/// terminal is stdout).
pub fn summary(r: &WatchReport) -> String {
    report::watch::summary(r, Style::new(report::use_color()))
}
