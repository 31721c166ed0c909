//! The live screen of `watch` on a terminal (ratatui over crossterm, as trippy): status lines,
//! the selected target's per-stage table with sparklines, and the event log. It runs on its own
//! thread: the watch loop hands it snapshots and never waits for it, and it reads keys and
//! sends `Control`s back. The terminal is restored (main screen, cooked mode, cursor shown) on
//! every way out: quit, the end of the watch, Ctrl-C, SIGTERM and a panic (a panic hook).

use super::super::CliError;
use mxtrace_core::watch::{Control, Sink, WatchOptions, WatchState, WatchTarget as Job};
use mxtrace_proto::model::watch::{
    duration_words, EventKind, ProbeSample, StageStats, State, WatchEvent, WatchTarget,
};
use mxtrace_proto::model::Outcome;
use mxtrace_render::style::terminal_safe;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::{Frame, Terminal};
use std::io::Stdout;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Events kept for the log on screen.
const LOG_LINES: usize = 200;
/// How often the screen redraws without news (the "since" times move on).
const TICK: Duration = Duration::from_millis(250);

/// What the watch loop hands the screen after every probe.
struct View {
    targets: Vec<WatchTarget>,
    events: Vec<WatchEvent>,
}

/// The sink side: snapshots go to the screen thread.
pub struct Screen {
    tx: Option<Sender<View>>,
    thread: Option<JoinHandle<()>>,
    /// The screen thread panicked: the watch was stopped, the terminal given back.
    panicked: Arc<AtomicBool>,
}

impl Screen {
    /// Takes over the terminal and starts the screen thread.
    pub fn start(
        targets: &[Job],
        opts: &WatchOptions,
        control: UnboundedSender<Control>,
    ) -> Result<Screen, CliError> {
        let io = |source| CliError::Io {
            what: "setting up the terminal",
            source,
        };
        install_panic_hook();
        enter().map_err(io)?;
        let term = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
            Ok(t) => t,
            Err(e) => {
                leave();
                return Err(io(e));
            }
        };
        let (tx, rx) = mpsc::channel();
        let names: Vec<String> = targets.iter().map(|t| t.target.text()).collect();
        let mut ui = Ui {
            names,
            interval: opts.interval,
            view: None,
            selected: 0,
            paused: false,
            started: Instant::now(),
        };
        let panicked = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&panicked);
        let thread = std::thread::Builder::new()
            .name("watch-screen".into())
            .spawn(move || {
                // A panic here would leave the watch running blind: it stops the watch
                // instead, and `finish` reports it (the hook has printed it).
                let run =
                    std::panic::catch_unwind(AssertUnwindSafe(|| ui.run(term, &rx, &control)));
                leave();
                if run.is_err() {
                    flag.store(true, Ordering::SeqCst);
                    let _ = control.send(Control::Stop);
                }
            })
            .map_err(io)?;
        Ok(Screen {
            tx: Some(tx),
            thread: Some(thread),
            panicked,
        })
    }

    /// Closes the screen and gives the terminal back as it was; false when the screen
    /// panicked (an internal error, the watch's results still saved).
    pub fn finish(mut self) -> bool {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        !self.panicked.load(Ordering::SeqCst)
    }

    fn send(&mut self, state: &WatchState, now_ms: f64) {
        let events = state.events().rev().take(LOG_LINES).cloned().collect();
        let view = View {
            targets: state.targets(now_ms, false),
            events,
        };
        if let Some(tx) = &self.tx {
            let _ = tx.send(view);
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // An error path that never reached `finish` still leaves the terminal usable.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Sink for Screen {
    fn probe(&mut self, _: &ProbeSample, state: &WatchState, now_ms: f64) {
        self.send(state, now_ms);
    }

    fn event(&mut self, _: &WatchEvent, _: &WatchState, _: f64) {
        // The probe's snapshot (sent just before) already holds the event.
    }
}

/// Whether the terminal is ours: leaving twice would restore the cursor saved on entering
/// (DECSET 1049) a second time, over what was printed in between (a panic's message).
static ON_SCREEN: AtomicBool = AtomicBool::new(false);

fn enter() -> std::io::Result<()> {
    ON_SCREEN.store(true, Ordering::SeqCst);
    terminal::enable_raw_mode()?;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide
    )
}

/// Main screen, cursor shown, cooked mode. Safe to call twice: the second does nothing.
fn leave() {
    if !ON_SCREEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

/// A panic anywhere gives the terminal back before the message is printed.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        previous(info);
    }));
}

/// Debug builds only: `MXTRACE_TEST_SCREEN_PANIC=1` panics once a probe is on screen, so a
/// test can pin that a panic gives the terminal back (tests/watch_screen.rs).
#[allow(clippy::panic)]
fn forced_panic(drawn: bool) {
    if cfg!(debug_assertions) && drawn && std::env::var_os("MXTRACE_TEST_SCREEN_PANIC").is_some() {
        panic!("MXTRACE_TEST_SCREEN_PANIC: a panic forced by the test");
    }
}

struct Ui {
    names: Vec<String>,
    interval: Duration,
    view: Option<View>,
    selected: usize,
    paused: bool,
    started: Instant,
}

impl Ui {
    fn run(
        &mut self,
        mut term: Terminal<CrosstermBackend<Stdout>>,
        rx: &Receiver<View>,
        control: &UnboundedSender<Control>,
    ) {
        loop {
            if term.draw(|f| self.draw(f)).is_err() {
                return;
            }
            forced_panic(self.view.is_some());
            // Keys first, without waiting; then news from the watch, up to one tick.
            while event::poll(Duration::ZERO).unwrap_or(false) {
                if let Ok(Event::Key(k)) = event::read() {
                    if k.kind == KeyEventKind::Press {
                        self.key(k.code, k.modifiers, control);
                    }
                }
            }
            match rx.recv_timeout(TICK) {
                Ok(v) => self.view = Some(v),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn key(&mut self, code: KeyCode, mods: KeyModifiers, control: &UnboundedSender<Control>) {
        let n = self.names.len().max(1);
        match code {
            KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => {
                let _ = control.send(Control::Stop);
            }
            KeyCode::Char('q') | KeyCode::Esc => {
                let _ = control.send(Control::Stop);
            }
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                self.paused = !self.paused;
                let _ = control.send(Control::Pause(self.paused));
            }
            KeyCode::Char('r') => {
                let _ = control.send(Control::Reset);
            }
            KeyCode::Tab | KeyCode::Char('n') | KeyCode::Right | KeyCode::Down => {
                self.selected = (self.selected + 1) % n;
            }
            KeyCode::BackTab | KeyCode::Char('N') | KeyCode::Left | KeyCode::Up => {
                self.selected = (self.selected + n - 1) % n;
            }
            _ => {}
        }
    }

    fn draw(&self, f: &mut Frame<'_>) {
        let targets = self.view.as_ref().map_or(&[][..], |v| &v.targets[..]);
        let log = self.view.as_ref().map_or(&[][..], |v| &v.events[..]);
        let status_h = u16::try_from(self.names.len()).unwrap_or(u16::MAX);
        let [head, status, table, events] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(status_h.saturating_add(1)),
            Constraint::Min(6),
            Constraint::Length(9),
        ])
        .areas(f.area());
        f.render_widget(Paragraph::new(self.header()), head);
        self.status(f, status, targets);
        let selected = targets.get(self.selected);
        stage_table(f, table, selected, self.names.get(self.selected));
        event_log(f, events, log);
    }

    fn header(&self) -> Line<'static> {
        let mut spans = vec![
            Span::styled("mxtrace watch", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!(
                "  every {}  {} target(s)  ",
                humantime::format_duration(self.interval),
                self.names.len()
            )),
        ];
        if self.paused {
            spans.push(Span::styled(
                "PAUSED ",
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ));
        }
        spans.push(Span::styled(
            "q quit  p pause  r reset  Tab target",
            Style::new().fg(Color::DarkGray),
        ));
        Line::from(spans)
    }

    fn status(&self, f: &mut Frame<'_>, area: Rect, targets: &[WatchTarget]) {
        let now_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let lines: Vec<Line<'_>> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let t = targets.get(i);
                status_line(name, t, i == self.selected, now_ms)
            })
            .collect();
        let block = Block::default().borders(Borders::TOP).title(" targets ");
        f.render_widget(Paragraph::new(lines).block(block), area);
    }
}

fn status_line<'a>(
    name: &'a str,
    t: Option<&'a WatchTarget>,
    selected: bool,
    now_ms: f64,
) -> Line<'a> {
    let marker = if selected { "> " } else { "  " };
    let mut spans = vec![
        Span::raw(marker),
        Span::raw(format!("{:<28} ", terminal_safe(name))),
    ];
    let Some(t) = t.filter(|t| t.status.state != State::Unknown) else {
        spans.push(Span::styled(
            "waiting for the first probe",
            Style::new().fg(Color::DarkGray),
        ));
        return Line::from(spans);
    };
    let since = t
        .status
        .since_ms
        .map(|s| duration_words((now_ms - s).max(0.0)))
        .unwrap_or_default();
    let (word, color) = match t.status.state {
        State::Up => ("UP", Color::Green),
        _ => ("DOWN", Color::Red),
    };
    spans.push(Span::styled(
        format!("{word:<4} {since:<12} "),
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    ));
    let share = if t.probes == 0 {
        0.0
    } else {
        t.failed as f64 / t.probes as f64 * 100.0
    };
    spans.push(Span::raw(format!(
        "{} probes, {} failed ({share:.0}%)",
        t.probes, t.failed
    )));
    if let Some(last) = &t.last {
        spans.push(Span::raw(format!(", last {:.0} ms", last.elapsed_ms)));
    }
    if let Some(o) = t.outages.last().filter(|_| t.status.state == State::Down) {
        let stage = o.stage.map_or("dns", |s| s.as_str());
        spans.push(Span::styled(
            format!("  {stage} {}", terminal_safe(&o.reply)),
            Style::new().fg(Color::Red),
        ));
    }
    Line::from(spans)
}

fn stage_table(f: &mut Frame<'_>, area: Rect, t: Option<&WatchTarget>, name: Option<&String>) {
    let title = format!(" {} ", terminal_safe(name.map_or("", String::as_str)));
    let header = Row::new(
        [
            "Stage", "Reply", "Last", "Avg", "Best", "Wrst", "Jttr", "Fail%", "Recent",
        ]
        .map(|h| Cell::from(h).style(Style::new().add_modifier(Modifier::BOLD))),
    );
    let spark_w = usize::from(area.width.saturating_sub(84)).clamp(8, 60);
    let rows: Vec<Row<'_>> = t
        .map(|t| t.stages.iter().map(|s| stage_row(s, spark_w)).collect())
        .unwrap_or_default();
    let widths = [
        Constraint::Length(14),
        Constraint::Length(24),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Min(8),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::default().borders(Borders::TOP).title(title));
    f.render_widget(table, area);
}

fn stage_row(s: &StageStats, spark_w: usize) -> Row<'static> {
    let reply = match (s.code, &s.enhanced, s.outcome) {
        (Some(c), Some(e), o) if o != Outcome::Ok => format!("{c} {e}"),
        (Some(c), _, _) => c.to_string(),
        (None, _, o) => o.as_str().to_string(),
    };
    let reply = match s.category.filter(|_| s.outcome != Outcome::Ok) {
        Some(c) => format!("{reply} {c}"),
        None => reply,
    };
    let color = match s.outcome {
        Outcome::Ok => Color::Green,
        Outcome::Transient => Color::Yellow,
        Outcome::Permanent | Outcome::Error => Color::Red,
    };
    let ms = |v: f64| format!("{v:.1}");
    Row::new(vec![
        Cell::from(s.stage.as_str()),
        Cell::from(reply).style(Style::new().fg(color)),
        Cell::from(ms(s.last_ms)),
        Cell::from(ms(s.avg_ms)),
        Cell::from(ms(s.best_ms)),
        Cell::from(ms(s.worst_ms)),
        Cell::from(ms(s.jitter_ms)),
        Cell::from(format!("{:.0}", s.fail_share * 100.0)),
        Cell::from(sparkline(&s.recent_ms, spark_w)).style(Style::new().fg(Color::Cyan)),
    ])
}

/// The latest times as block characters, scaled to the largest. By hand: ratatui's Sparkline
/// widget fills a whole area and cannot sit in a table cell.
fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let start = values.len().saturating_sub(width);
    let shown = values.get(start..).unwrap_or(values);
    let max = shown.iter().copied().fold(0.0_f64, f64::max);
    shown
        .iter()
        .map(|v| {
            let level = if max > 0.0 {
                (v / max * 7.0).round()
            } else {
                0.0
            };
            BARS.get(level as usize).copied().unwrap_or('█')
        })
        .collect()
}

fn event_log(f: &mut Frame<'_>, area: Rect, events: &[WatchEvent]) {
    let room = usize::from(area.height.saturating_sub(1));
    // `events` is newest first; the log reads top to bottom, newest last.
    let lines: Vec<Line<'_>> = events
        .iter()
        .take(room)
        .rev()
        .map(|e| {
            let (word, color) = match e.kind {
                EventKind::Up => ("UP", Color::Green),
                EventKind::First if e.to.is_none() => ("UP", Color::Green),
                EventKind::Down | EventKind::First => ("DOWN", Color::Red),
                EventKind::Changed => ("CHANGED", Color::Yellow),
            };
            Line::from(vec![
                Span::raw(format!("{} ", e.at.get(11..19).unwrap_or(&e.at))),
                Span::raw(format!("{} ", terminal_safe(&e.target))),
                Span::styled(format!("{word} "), Style::new().fg(color)),
                Span::raw(terminal_safe(&e.message).into_owned()),
            ])
        })
        .collect();
    let block = Block::default().borders(Borders::TOP).title(" events ");
    f.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn sparklines_scale_to_the_largest_time() {
        assert_eq!(sparkline(&[1.0, 2.0, 4.0, 8.0], 10), "▂▃▅█");
        assert_eq!(sparkline(&[1.0, 2.0, 4.0, 8.0], 2), "▅█");
        assert_eq!(sparkline(&[], 5), "");
        assert_eq!(sparkline(&[0.0, 0.0], 5), "▁▁");
    }
}
