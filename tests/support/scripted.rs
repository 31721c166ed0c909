//! A scripted SMTP server on 127.0.0.1: accepts ONE connection and plays a list of `Step`s,
//! recording what the client sent and every deviation (as failures, never panics) in a
//! `ServerLog`. Hostile behaviours (endless lines, one byte at a time, resets, bad TLS) are
//! steps too. Plus `refused_addr()` and `blackhole()` for the connect-level errors.
//!
//! Bounds (so no fixture can hang a test): a line read is capped at 8 KiB and 10 s, a DATA
//! body or a read-until-close at 1 MiB, the whole connection at 60 s, waiting for the client to
//! connect at 60 s, and `finish` waits at most 30 s.
#![allow(dead_code)]

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mxtrace_proto::smtp::line::{take_line, trim_eol, LineTooLong};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::{timeout, Instant};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest line the server will read (the client under test must not send longer ones).
pub const MAX_LINE: usize = 8 * 1024;
/// Time limit for each line read.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);
/// Cap for a DATA body, a `ReadUntilClose` or a `Hang`.
pub const MAX_BULK: usize = 1024 * 1024;
/// Cap for one connection from accept to the end of the script.
pub const CONNECTION_CAP: Duration = Duration::from_secs(60);
/// How long `finish` waits for the script.
pub const FINISH_WAIT: Duration = Duration::from_secs(30);
/// How long `SendEndless` keeps writing.
pub const ENDLESS_CAP: Duration = Duration::from_secs(30);
/// After a graceful close, how long to wait for the client's FIN (see `Step::Close`).
pub const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// One action of the server script.
pub enum Step {
    /// Text sent as-is (use `line()` to append CRLF).
    Send(String),
    /// Arbitrary bytes (non-UTF-8, partial lines, several replies at once).
    SendRaw(Vec<u8>),
    /// Read one line and record it; it must start with this prefix (ASCII case-insensitive).
    /// A mismatch is a failure (the script goes on); EOF or timeout is a failure (it stops).
    Expect(String),
    /// Read and record one line, whatever it is.
    ReadLine,
    /// Read and record lines up to and including the lone ".".
    ReadData,
    /// Upgrade to TLS (server side) and continue inside it; handshake errors are failures.
    StartTls(Arc<rustls::ServerConfig>),
    /// Do nothing for a while.
    Sleep(Duration),
    /// Send one byte per `every`.
    SendSlowly { data: Vec<u8>, every: Duration },
    /// Write this chunk repeatedly until the write fails (client gone) or 30 s pass.
    SendEndless(Vec<u8>),
    /// Do nothing until the client closes (input is recorded; bounded by the 60 s cap).
    Hang,
    /// Close gracefully (close_notify inside TLS, then FIN) and stop the script.
    Close,
    /// Close with SO_LINGER 0 so the client sees a RST, and stop the script.
    Reset,
    /// Record everything until EOF.
    ReadUntilClose,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Send(s) => write!(f, "Send({s:?})"),
            Step::SendRaw(b) => write!(f, "SendRaw({} bytes)", b.len()),
            Step::Expect(p) => write!(f, "Expect({p:?})"),
            Step::ReadLine => f.write_str("ReadLine"),
            Step::ReadData => f.write_str("ReadData"),
            Step::StartTls(_) => f.write_str("StartTls"),
            Step::Sleep(d) => write!(f, "Sleep({d:?})"),
            Step::SendSlowly { data, every } => {
                write!(f, "SendSlowly({} bytes every {every:?})", data.len())
            }
            Step::SendEndless(b) => write!(f, "SendEndless({} bytes)", b.len()),
            Step::Hang => f.write_str("Hang"),
            Step::Close => f.write_str("Close"),
            Step::Reset => f.write_str("Reset"),
            Step::ReadUntilClose => f.write_str("ReadUntilClose"),
        }
    }
}

/// `Send` of `text` followed by CRLF.
pub fn line(text: &str) -> Step {
    Step::Send(format!("{text}\r\n"))
}

/// `Send` of `text` as-is.
pub fn send(text: &str) -> Step {
    Step::Send(text.to_string())
}

/// `Expect` of a prefix.
pub fn expect(prefix: &str) -> Step {
    Step::Expect(prefix.to_string())
}

/// A multi-line 250 EHLO reply: "250-name", then each capability, the last with "250 ".
pub fn ehlo_reply(name: &str, caps: &[&str]) -> Step {
    let mut lines = vec![name.to_string()];
    lines.extend(caps.iter().map(|c| c.to_string()));
    multiline(250, &lines)
}

/// A reply of several lines with the same code ("CODE-" on all but the last, "CODE " on it).
pub fn multiline(code: u16, lines: &[String]) -> Step {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{l}\r\n"));
    }
    Step::Send(out)
}

/// 220 banner, Expect EHLO, 250 reply with the given capabilities.
pub fn esmtp_greeting(name: &str, caps: &[&str]) -> Vec<Step> {
    vec![
        line(&format!("220 {name} ESMTP mxtrace-test")),
        expect("EHLO "),
        ehlo_reply(name, caps),
    ]
}

/// Greeting offering STARTTLS, then Expect STARTTLS, 220, handshake, Expect EHLO, 250 `caps_tls`.
pub fn starttls_dialogue(
    name: &str,
    caps: &[&str],
    config: Arc<rustls::ServerConfig>,
    caps_tls: &[&str],
) -> Vec<Step> {
    let mut steps = esmtp_greeting(name, caps);
    steps.extend([
        expect("STARTTLS"),
        line("220 2.0.0 Ready to start TLS"),
        Step::StartTls(config),
        expect("EHLO "),
        ehlo_reply(name, caps_tls),
    ]);
    steps
}

/// MAIL/RCPT accepted, then RSET or QUIT handled: the default transaction of `mxtrace probe`.
pub fn accept_envelope_then_quit(rcpts: usize) -> Vec<Step> {
    let mut steps = vec![expect("MAIL FROM:"), line("250 2.1.0 Sender OK")];
    for _ in 0..rcpts {
        steps.push(expect("RCPT TO:"));
        steps.push(line("250 2.1.5 Recipient OK"));
    }
    steps.extend(quit());
    steps
}

/// Expect QUIT, answer 221, close.
pub fn quit() -> Vec<Step> {
    vec![expect("QUIT"), line("221 2.0.0 Bye"), Step::Close]
}

/// What the server saw. `received` holds every line the client sent, CRLF stripped, in order
/// (a partial last line before EOF included).
#[derive(Clone, Debug, Default)]
pub struct ServerLog {
    /// Every line the client sent, CRLF stripped, in order (lossy UTF-8).
    pub received: Vec<String>,
    /// Deviations from the script (prefix mismatch, EOF during Expect, handshake failure, ...).
    pub failures: Vec<String>,
    /// A TLS handshake completed.
    pub tls_established: bool,
    /// The handshake error, if a handshake failed (also listed in `failures`).
    pub tls_error: Option<String>,
    /// The client presented a certificate (only with `server_config_with_client_auth`).
    pub client_cert_presented: bool,
    /// Subject of the client certificate, e.g. "CN=client.example.test".
    pub client_cert_subject: Option<String>,
    /// The client closed (or reset) the connection before the script ended.
    pub closed_by_client: bool,
    /// A client connected at all.
    pub connected: bool,
    /// Every step was played (false if the script stopped early for any reason).
    pub completed: bool,
    /// Number of steps played (started) before the script ended.
    pub steps_played: usize,
}

impl ServerLog {
    /// Panics listing the failures (and what was received), if there are any.
    pub fn assert_ok(&self) {
        if !self.failures.is_empty() {
            panic!(
                "scripted server recorded {} failure(s):\n  {}\nreceived:\n  {}",
                self.failures.len(),
                self.failures.join("\n  "),
                self.received.join("\n  ")
            );
        }
    }

    /// `assert_ok`, and every step was played (the client did not stop early).
    pub fn assert_completed(&self) {
        self.assert_ok();
        assert!(
            self.completed,
            "script stopped after {} steps (closed_by_client={}); received:\n  {}",
            self.steps_played,
            self.closed_by_client,
            self.received.join("\n  ")
        );
    }
}

/// A server playing one script on one connection; see the module doc.
pub struct ScriptedServer {
    /// Where to connect (127.0.0.1, ephemeral port).
    pub addr: SocketAddr,
    log: Arc<Mutex<ServerLog>>,
    /// Fires (or errs, if the task was aborted) when the script task is over.
    done: oneshot::Receiver<()>,
    abort: AbortHandle,
    /// Thread variant only: asks the server thread to enforce FINISH_WAIT on its own clock.
    finish_request: Option<oneshot::Sender<()>>,
}

impl ScriptedServer {
    /// Binds 127.0.0.1:0 and spawns the script on the current tokio runtime. Its deadlines
    /// use that runtime's clock: with `start_paused = true` use `spawn_thread` instead.
    pub async fn start(steps: Vec<Step>) -> ScriptedServer {
        let (server, _join) = launch(steps);
        server
    }

    /// Runs the script on its own thread with a current-thread runtime and a real clock (for
    /// tests that run the mxtrace binary as a subprocess, are not async, or pause time).
    pub fn spawn_thread(steps: Vec<Step>) -> ScriptedServer {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("scripted-smtp".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime for scripted server");
                rt.block_on(async move {
                    let (mut server, mut join) = launch(steps);
                    let (finish_tx, finish_rx) = oneshot::channel();
                    server.finish_request = Some(finish_tx);
                    let log = server.log.clone();
                    let abort = server.abort.clone();
                    let _ = tx.send(server);
                    // Keep the runtime alive until the script ends; once `finish` is called
                    // (or the server dropped), allow it FINISH_WAIT more.
                    tokio::select! {
                        _ = &mut join => {}
                        _ = finish_rx => {
                            if timeout(FINISH_WAIT, &mut join).await.is_err() {
                                record_overrun(&log);
                                abort.abort();
                            }
                        }
                    }
                });
            })
            .expect("spawn scripted server thread");
        rx.recv().expect("scripted server thread started")
    }

    /// The log so far, without waiting.
    pub fn snapshot(&self) -> ServerLog {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits (max 30 s) for the script to end and returns the log; on timeout the script is
    /// aborted and a failure recorded.
    pub async fn finish(mut self) -> ServerLog {
        if let Some(request) = self.finish_request.take() {
            // Thread variant: the server thread times itself, so a paused test clock is fine.
            let _ = request.send(());
            let _ = (&mut self.done).await;
        } else if timeout(FINISH_WAIT, &mut self.done).await.is_err() {
            record_overrun(&self.log);
            self.abort.abort();
        }
        self.snapshot()
    }

    /// Blocking `finish` for `spawn_thread` servers (not for `start`: it would block the
    /// runtime the script runs on). Must not be called from async code.
    pub fn finish_blocking(mut self) -> ServerLog {
        let request = self
            .finish_request
            .take()
            .expect("finish_blocking is for spawn_thread servers; use finish().await");
        let _ = request.send(());
        let done = std::mem::replace(&mut self.done, oneshot::channel().1);
        let _ = done.blocking_recv();
        self.snapshot()
    }
}

fn record_overrun(log: &Mutex<ServerLog>) {
    let mut log = log.lock().expect("log lock");
    let step = log.steps_played;
    log.failures.push(format!(
        "script still running after {FINISH_WAIT:?} (at step {step}); aborted"
    ));
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        // A test that panics before `finish` must not leave the script running.
        self.abort.abort();
    }
}

/// Binds synchronously (so `addr` is connectable at once) and spawns the script task.
fn launch(steps: Vec<Step>) -> (ScriptedServer, tokio::task::JoinHandle<()>) {
    let std_listener =
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("local addr");
    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
    let log = Arc::new(Mutex::new(ServerLog::default()));
    let (done_tx, done) = oneshot::channel();
    let task_log = log.clone();
    let join = tokio::spawn(async move {
        serve(listener, steps, &task_log).await;
        let _ = done_tx.send(());
    });
    let abort = join.abort_handle();
    (
        ScriptedServer {
            addr,
            log,
            done,
            abort,
            finish_request: None,
        },
        join,
    )
}

async fn serve(listener: TcpListener, steps: Vec<Step>, log: &Mutex<ServerLog>) {
    let stream = match timeout(CONNECTION_CAP, listener.accept()).await {
        Ok(Ok((stream, _peer))) => stream,
        Ok(Err(e)) => return fail(log, format!("accept failed: {e}")),
        Err(_) => {
            return fail(
                log,
                format!("no client connected within {CONNECTION_CAP:?}"),
            )
        }
    };
    // Exactly one connection: later connects are refused.
    drop(listener);
    play_connection(stream, steps, log).await;
}

/// Plays `steps` on one accepted connection, recording into `log`.
async fn play_connection(stream: TcpStream, steps: Vec<Step>, log: &Mutex<ServerLog>) {
    log.lock().expect("log lock").connected = true;
    let mut conn = Conn {
        io: Io::Plain(stream),
        buf: Vec::new(),
        log,
    };
    let total = steps.len();
    match timeout(CONNECTION_CAP, conn.play(steps)).await {
        Ok(Flow::Continue) => {
            // End of script: close as `Close` would.
            conn.close_gracefully().await;
            let mut l = log.lock().expect("log lock");
            l.completed = l.steps_played == total;
        }
        Ok(Flow::End) => {
            let mut l = log.lock().expect("log lock");
            l.completed = l.steps_played == total;
        }
        Ok(Flow::Stop) => {}
        Err(_) => fail(
            log,
            format!("connection exceeded the {CONNECTION_CAP:?} cap; aborted"),
        ),
    }
}

/// How long a `ScriptedPeer` accepts connections.
pub const PEER_CAP: Duration = Duration::from_secs(120);

/// A server on 127.0.0.1 for clients that come back (`watch`): connection N (0-based) plays
/// `script(N)`, so a test cues a failure and a recovery by connection number. Connections are
/// served at once, each on its own task with its own log; accepting stops after `max`
/// connections or 120 s, and when the peer is dropped (its own thread and runtime).
pub struct ScriptedPeer {
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<Arc<Mutex<ServerLog>>>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScriptedPeer {
    pub fn spawn_thread<F>(max: usize, script: F) -> ScriptedPeer
    where
        F: Fn(usize) -> Vec<Step> + Send + 'static,
    {
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let logs: Arc<Mutex<Vec<Arc<Mutex<ServerLog>>>>> = Arc::default();
        let (stop, stopped) = oneshot::channel();
        let task_logs = logs.clone();
        let thread = std::thread::Builder::new()
            .name("scripted-peer".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime for scripted peer");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    let accept = accept_loop(listener, max, script, task_logs);
                    tokio::select! {
                        _ = timeout(PEER_CAP, accept) => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("spawn scripted peer thread");
        ScriptedPeer {
            addr,
            logs,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every connection's log so far, in the order accepted.
    pub fn logs(&self) -> Vec<ServerLog> {
        let logs = self.logs.lock().expect("logs lock");
        logs.iter()
            .map(|l| l.lock().expect("log lock").clone())
            .collect()
    }
}

impl Drop for ScriptedPeer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop<F>(
    listener: TcpListener,
    max: usize,
    script: F,
    logs: Arc<Mutex<Vec<Arc<Mutex<ServerLog>>>>>,
) where
    F: Fn(usize) -> Vec<Step>,
{
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..max {
        let Ok((stream, _)) = listener.accept().await else {
            break;
        };
        let log = Arc::new(Mutex::new(ServerLog::default()));
        logs.lock().expect("logs lock").push(log.clone());
        let steps = script(n);
        tasks.spawn(async move { play_connection(stream, steps, &log).await });
    }
    while tasks.join_next().await.is_some() {}
}

fn fail(log: &Mutex<ServerLog>, msg: String) {
    log.lock().expect("log lock").failures.push(msg);
}

/// Whether the script goes on after a step.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// The script stopped early (client gone, read failure, handshake failure).
    Stop,
    /// The script closed the connection on purpose (`Close`, `Reset`).
    End,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Transient state during the STARTTLS upgrade (or after a failed one).
    Gone,
}

impl Io {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Io::Plain(s) => Some(s),
            Io::Tls(s) => Some(s.get_ref().0),
            Io::Gone => None,
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf).await,
            Io::Tls(s) => s.read(buf).await,
            Io::Gone => Ok(0),
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(s) => write_flush(s, data).await,
            Io::Tls(s) => write_flush(s.as_mut(), data).await,
            Io::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.shutdown().await,
            Io::Tls(s) => s.shutdown().await,
            Io::Gone => Ok(()),
        }
    }
}

async fn write_flush<S: AsyncWrite + Unpin>(s: &mut S, data: &[u8]) -> io::Result<()> {
    s.write_all(data).await?;
    s.flush().await
}

/// Why a line could not be read.
enum ReadErr {
    /// EOF; carries a partial line if there was one.
    Eof(Option<String>),
    TooLong,
    Timeout,
    Io(io::Error),
}

struct Conn<'a> {
    io: Io,
    /// Bytes read but not yet consumed as a line.
    buf: Vec<u8>,
    log: &'a Mutex<ServerLog>,
}

impl Conn<'_> {
    fn fail(&self, msg: String) {
        fail(self.log, msg);
    }

    fn record(&self, line: String) {
        self.log.lock().expect("log lock").received.push(line);
    }

    fn client_closed(&self) {
        self.log.lock().expect("log lock").closed_by_client = true;
    }

    async fn play(&mut self, steps: Vec<Step>) -> Flow {
        for (i, step) in steps.into_iter().enumerate() {
            self.log.lock().expect("log lock").steps_played = i + 1;
            let desc = format!("step {} {step:?}", i + 1);
            match self.step(step, &desc).await {
                Flow::Continue => {}
                other => return other,
            }
        }
        Flow::Continue
    }

    async fn step(&mut self, step: Step, desc: &str) -> Flow {
        match step {
            Step::Send(text) => self.send(text.as_bytes()).await,
            Step::SendRaw(bytes) => self.send(&bytes).await,
            Step::Expect(prefix) => match self.read_line(LINE_TIMEOUT).await {
                Ok(got) => {
                    let ok = got.len() >= prefix.len()
                        && got.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
                    if !ok {
                        self.fail(format!("{desc}: got {got:?}"));
                    }
                    self.record(got);
                    Flow::Continue
                }
                Err(e) => {
                    self.read_failed(e, desc, true);
                    Flow::Stop
                }
            },
            Step::ReadLine => match self.read_line(LINE_TIMEOUT).await {
                Ok(got) => {
                    self.record(got);
                    Flow::Continue
                }
                Err(e) => {
                    self.read_failed(e, desc, false);
                    Flow::Stop
                }
            },
            Step::ReadData => self.read_data(desc).await,
            Step::StartTls(config) => self.start_tls(config, desc).await,
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                Flow::Continue
            }
            Step::SendSlowly { data, every } => {
                for b in data {
                    if self.send(&[b]).await == Flow::Stop {
                        return Flow::Stop;
                    }
                    tokio::time::sleep(every).await;
                }
                Flow::Continue
            }
            Step::SendEndless(chunk) => {
                let end = Instant::now() + ENDLESS_CAP;
                // A client that neither reads nor closes blocks the write: the deadline ends it.
                while let Ok(flow) = tokio::time::timeout_at(end, self.send(&chunk)).await {
                    if flow == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            }
            Step::Hang | Step::ReadUntilClose => {
                self.read_until_close(desc).await;
                Flow::Stop
            }
            Step::Close => {
                self.close_gracefully().await;
                Flow::End
            }
            Step::Reset => {
                if let Some(tcp) = self.io.tcp() {
                    if let Err(e) = tcp.set_zero_linger() {
                        self.fail(format!("{desc}: set_zero_linger: {e}"));
                    }
                }
                self.io = Io::Gone;
                Flow::End
            }
        }
    }

    /// Writes; a failed write means the client went away (not a failure by itself).
    async fn send(&mut self, data: &[u8]) -> Flow {
        match self.io.write_all(data).await {
            Ok(()) => Flow::Continue,
            Err(_) => {
                self.client_closed();
                Flow::Stop
            }
        }
    }

    fn read_failed(&self, e: ReadErr, desc: &str, eof_is_failure: bool) {
        match e {
            ReadErr::Eof(partial) => {
                self.client_closed();
                if let Some(p) = &partial {
                    self.record(p.clone());
                }
                if eof_is_failure {
                    match partial {
                        Some(p) => self.fail(format!("{desc}: EOF after partial line {p:?}")),
                        None => self.fail(format!("{desc}: client closed the connection")),
                    }
                }
            }
            ReadErr::TooLong => self.fail(format!("{desc}: line longer than {MAX_LINE} bytes")),
            ReadErr::Timeout => self.fail(format!("{desc}: nothing within {LINE_TIMEOUT:?}")),
            ReadErr::Io(err) => {
                // A reset by the client is the client closing, abruptly.
                self.client_closed();
                if eof_is_failure {
                    self.fail(format!("{desc}: read error: {err}"));
                }
            }
        }
    }

    /// One line ending in LF (CRLF or LF stripped), at most MAX_LINE bytes, within `limit`.
    async fn read_line(&mut self, limit: Duration) -> Result<String, ReadErr> {
        let deadline = Instant::now() + limit;
        loop {
            match take_line(&mut self.buf, MAX_LINE) {
                Ok(Some(line)) => return Ok(String::from_utf8_lossy(&line).into_owned()),
                Ok(None) => {}
                Err(LineTooLong) => return Err(ReadErr::TooLong),
            }
            let mut chunk = [0u8; 4096];
            let n = match tokio::time::timeout_at(deadline, self.io.read(&mut chunk)).await {
                Err(_) => return Err(ReadErr::Timeout),
                Ok(Err(e)) => return Err(ReadErr::Io(e)),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                let partial = (!self.buf.is_empty())
                    .then(|| String::from_utf8_lossy(trim_eol(&self.buf)).into_owned());
                self.buf.clear();
                return Err(ReadErr::Eof(partial));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn read_data(&mut self, desc: &str) -> Flow {
        let mut total = 0usize;
        loop {
            match self.read_line(LINE_TIMEOUT).await {
                Ok(got) => {
                    total += got.len() + 2;
                    let end = got == ".";
                    self.record(got);
                    if end {
                        return Flow::Continue;
                    }
                    if total > MAX_BULK {
                        self.fail(format!("{desc}: DATA body over {MAX_BULK} bytes"));
                        return Flow::Stop;
                    }
                }
                Err(e) => {
                    // Closing in the middle of DATA is the client's choice, not a failure.
                    self.read_failed(e, desc, false);
                    return Flow::Stop;
                }
            }
        }
    }

    /// Records lines until EOF (bounded by MAX_BULK and the connection cap).
    async fn read_until_close(&mut self, desc: &str) {
        let mut total = 0usize;
        loop {
            // Long lines are split rather than refused: here we only record.
            match self.read_line(CONNECTION_CAP).await {
                Ok(got) => {
                    total += got.len() + 2;
                    self.record(got);
                }
                Err(ReadErr::TooLong) => {
                    let raw: Vec<u8> = self.buf.drain(..).collect();
                    total += raw.len();
                    self.record(String::from_utf8_lossy(&raw).into_owned());
                }
                Err(ReadErr::Eof(partial)) => {
                    if let Some(p) = partial {
                        self.record(p);
                    }
                    self.client_closed();
                    return;
                }
                Err(ReadErr::Io(_)) => {
                    self.client_closed();
                    return;
                }
                Err(ReadErr::Timeout) => {
                    self.fail(format!(
                        "{desc}: client still connected after {CONNECTION_CAP:?}"
                    ));
                    return;
                }
            }
            if total > MAX_BULK {
                self.fail(format!("{desc}: client sent over {MAX_BULK} bytes"));
                return;
            }
        }
    }

    async fn start_tls(&mut self, config: Arc<rustls::ServerConfig>, desc: &str) -> Flow {
        if !self.buf.is_empty() {
            // Bytes the client sent after STARTTLS but before the handshake would be lost (and
            // in a real server are the pipelining-injection attack): flag them.
            self.fail(format!(
                "{desc}: client sent {} bytes after STARTTLS before the handshake: {:?}",
                self.buf.len(),
                String::from_utf8_lossy(&self.buf)
            ));
            self.buf.clear();
        }
        let tcp = match std::mem::replace(&mut self.io, Io::Gone) {
            Io::Plain(tcp) => tcp,
            other => {
                self.io = other;
                self.fail(format!("{desc}: TLS is already active"));
                return Flow::Stop;
            }
        };
        let accept = TlsAcceptor::from(config).accept(tcp);
        let result = match timeout(LINE_TIMEOUT, accept).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no handshake within {LINE_TIMEOUT:?}")),
        };
        match result {
            Ok(tls) => {
                let subject = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|der| subject_of(der));
                {
                    let mut l = self.log.lock().expect("log lock");
                    l.tls_established = true;
                    l.client_cert_presented = subject.is_some();
                    l.client_cert_subject = subject;
                }
                self.io = Io::Tls(Box::new(tls));
                Flow::Continue
            }
            Err(e) => {
                self.fail(format!("{desc}: TLS handshake failed: {e}"));
                self.log.lock().expect("log lock").tls_error = Some(e);
                Flow::Stop
            }
        }
    }

    /// Sends close_notify/FIN, then waits briefly for the client's FIN: dropping a socket with
    /// unread input makes the kernel send a RST instead of a clean close.
    async fn close_gracefully(&mut self) {
        let _ = timeout(CLOSE_DRAIN, self.io.shutdown()).await;
        let deadline = Instant::now() + CLOSE_DRAIN;
        let mut total = 0usize;
        while total <= MAX_BULK {
            match tokio::time::timeout_at(deadline, self.read_line(CLOSE_DRAIN)).await {
                Ok(Ok(got)) => {
                    total += got.len() + 2;
                    self.record(got);
                }
                Ok(Err(ReadErr::Eof(partial))) => {
                    if let Some(p) = partial {
                        self.record(p);
                    }
                    break;
                }
                _ => break,
            }
        }
        self.io = Io::Gone;
    }
}

/// The subject DN of a DER certificate, or a placeholder if it does not parse.
fn subject_of(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert.subject().to_string(),
        Err(e) => format!("<unparsable certificate: {e}>"),
    }
}

/// A 127.0.0.1 address where nothing listens: connecting is refused. (Bound then released;
/// another process could in theory take the port in between.)
pub fn refused_addr() -> SocketAddr {
    mxtrace_lab::smtp::refused_listener_addr(Ipv4Addr::LOCALHOST).expect("bind 127.0.0.1:0")
}

/// A 127.0.0.1 address where a TCP connect hangs (SYN dropped) until the client gives up: the
/// lab's `Blackhole`, usable from synchronous and asynchronous tests alike.
pub struct Blackhole {
    /// The address whose connects hang.
    pub addr: SocketAddr,
    _hole: mxtrace_lab::smtp::Blackhole,
}

/// Creates a `Blackhole` (the lab checks that a connect really hangs); panics if this kernel
/// does not drop SYNs on a full accept queue.
pub fn blackhole() -> Blackhole {
    // Built on a scratch runtime so that a test inside a runtime can call it too; the sockets
    // outlive that runtime, and the kernel, not tokio, keeps dropping the SYNs.
    let hole = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("scratch runtime");
        rt.block_on(mxtrace_lab::smtp::Blackhole::new(Ipv4Addr::LOCALHOST))
    })
    .join()
    .expect("blackhole thread")
    .expect("blackhole");
    Blackhole {
        addr: hole.addr(),
        _hole: hole,
    }
}
