//! The exporter's HTTP connections, with the limits of the config (`HttpLimits`): a cap on
//! open connections, a deadline for each request's head, an idle timeout between requests and
//! a cap on the head's size. axum's own `serve` has none of these (a client that sends one
//! header line and stops is held for ever), so connections are accepted here and each is
//! served by hyper's HTTP/1 connection with the router as its service.
//!
//! The head deadline is kept here rather than by hyper's `header_read_timeout`: hyper starts
//! that timer again as soon as a response is written, so it would also be the idle timeout,
//! and the two are separate settings. What a connection is doing is known from two events:
//! bytes arriving (a request's head has started) and the service being called (its head is
//! complete; hyper calls it only then).

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use mxtrace_core::exporter::config::HttpLimits;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How long open requests may finish after a stop before their connections are dropped.
const DRAIN: Duration = Duration::from_secs(5);

/// What the front end tells the exporter's own metrics.
pub trait ConnEvents: Send + Sync + 'static {
    /// A connection was refused at accept: `max_connections` were open.
    fn refused(&self);
    /// The number of open connections changed by `delta`.
    fn open(&self, delta: i64);
    /// A connection was closed by a limit (`header_timeout` or `idle_timeout`).
    fn closed_by(&self, limit: &'static str);
}

/// Accepts and serves connections until `stop` completes, then lets open requests finish
/// (up to `DRAIN`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    events: Arc<dyn ConnEvents>,
    stop: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    eprintln!("mxtrace serve: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            events.refused();
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let state = Arc::new(Mutex::new(ConnState::Head(Instant::now())));
        let io = TokioIo::new(Watched {
            tcp,
            state: state.clone(),
        });
        let service = service(app.clone(), state.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .max_buf_size(limits.max_request_bytes)
            .serve_connection(io, service);
        let conn = graceful.watch(conn);
        let events = events.clone();
        tokio::spawn(async move {
            events.open(1);
            tokio::select! {
                _ = conn => {}
                limit = expired(&state, limits) => events.closed_by(limit),
            }
            events.open(-1);
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// The router as hyper's service, telling the connection's state when a request's head is
/// complete (the call) and when its response is ready.
fn service(
    app: Router,
    state: Arc<Mutex<ConnState>>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    use hyper::service::Service;
    let app = TowerToHyperService::new(app);
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        set(&state, ConnState::Busy);
        let state = state.clone();
        let answer = app.call(req);
        async move {
            let response = answer.await;
            set(&state, ConnState::Idle(Instant::now()));
            response
        }
    })
}

/// What a connection is doing, for its deadlines.
#[derive(Debug, Clone, Copy)]
enum ConnState {
    /// Waiting for a request's head since then (the accept, or its first byte).
    Head(Instant),
    /// A request is being answered: no deadline here (the probe has its own).
    Busy,
    /// The last response was ready then; no byte of another request yet.
    Idle(Instant),
}

fn set(state: &Mutex<ConnState>, to: ConnState) {
    match state.lock() {
        Ok(mut s) => *s = to,
        Err(poisoned) => *poisoned.into_inner() = to,
    }
}

fn get(state: &Mutex<ConnState>) -> ConnState {
    match state.lock() {
        Ok(s) => *s,
        Err(poisoned) => *poisoned.into_inner(),
    }
}

/// Completes when the connection passed a deadline; says which.
async fn expired(state: &Mutex<ConnState>, limits: HttpLimits) -> &'static str {
    loop {
        let (deadline, limit) = match get(state) {
            ConnState::Head(t) => (t + limits.header_timeout, "header_timeout"),
            ConnState::Idle(t) => (t + limits.idle_timeout, "idle_timeout"),
            // Looked at again later: the state changes only by the connection's own events.
            ConnState::Busy => (
                Instant::now() + limits.header_timeout.min(limits.idle_timeout),
                "",
            ),
        };
        tokio::time::sleep_until(deadline).await;
        let now = Instant::now();
        match get(state) {
            ConnState::Head(t) if t + limits.header_timeout <= now => return limit,
            ConnState::Idle(t) if t + limits.idle_timeout <= now => return limit,
            _ => {}
        }
    }
}

/// The TCP stream, marking the start of a request's head when a byte arrives while idle.
struct Watched {
    tcp: TcpStream,
    state: Arc<Mutex<ConnState>>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut me.tcp).poll_read(cx, buf);
        if buf.filled().len() > before && matches!(get(&me.state), ConnState::Idle(_)) {
            set(&me.state, ConnState::Head(Instant::now()));
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
