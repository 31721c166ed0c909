//! The client side of one SMTP connection: a socket (plain or TLS) with its own read buffer, so
//! that every reply is framed with the limits of `reply.rs`, every wait ends at a deadline, and
//! bytes a server sent ahead of time are seen (pipelining checks, STARTTLS injection).

use mxtrace_proto::smtp::reply::{Reply, ReplyAccumulator, ReplyError, MAX_LINE};
use mxtrace_proto::smtp::ErrorKind;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::client::TlsStream;

/// The TCP stream under TLS keeps the first bytes the server sent (crate::tls::Sniffed), so a
/// failed handshake can quote them.
type TlsTcp = TlsStream<crate::tls::Sniffed>;

/// Room made in the read buffer before a read; a reply line is at most `MAX_LINE`, so one read
/// can complete one or two lines. The buffer never holds more than a line's bound plus twice
/// this (`read_reply` refuses a longer line before reading again).
const READ_CHUNK: usize = 4096;

/// A stage-level failure: what kind, and a message for the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ConnError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ConnError {
        ConnError {
            kind,
            message: message.into(),
        }
    }

    pub fn timeout(what: &str) -> ConnError {
        ConnError::new(ErrorKind::Timeout, format!("timed out {what}"))
    }

    /// Classifies an OS-level socket error into the error kinds of the JSON output (docs/output-formats.md "JSON output").
    pub fn from_io(e: &io::Error, doing: &str) -> ConnError {
        use io::ErrorKind as K;
        let kind = match e.kind() {
            K::ConnectionRefused => ErrorKind::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                ErrorKind::Reset
            }
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                ErrorKind::Unreachable
            }
            K::TimedOut => ErrorKind::Timeout,
            // EACCES/EPERM on connect come from a local firewall rule (iptables REJECT with
            // admin-prohibited is reported as EHOSTUNREACH, a local OUTPUT DROP as EPERM).
            K::PermissionDenied => ErrorKind::Unreachable,
            _ => ErrorKind::Reset,
        };
        ConnError::new(kind, format!("{doing}: {e}"))
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl From<ReplyError> for ConnError {
    fn from(e: ReplyError) -> ConnError {
        ConnError::new(ErrorKind::Protocol, e.to_string())
    }
}

/// The byte stream under SMTP: plain TCP, or TLS after STARTTLS or on connect.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsTcp>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Transport {
    /// The TCP socket under the TLS layer, if any.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => s.get_ref().0.tcp(),
        }
    }

    /// Leaves delayed-ACK mode: an ACK the kernel is holding goes out now, and the next
    /// segments are acknowledged at once. Linux enters delayed-ACK ("pingpong") mode when we
    /// send soon after receiving, then holds the ACK of a reply for at least 40 ms
    /// (TCP_DELACK_MIN) hoping to piggyback it on data; a server with Nagle's algorithm on
    /// holds its next segment (a pipelined reply, a reply's next line) until that ACK (RFC 896,
    /// RFC 1122 4.2.3.2), so the stall lands in our timings. The kernel clears the flag by
    /// itself (tcp(7)). Elsewhere: a no-op.
    pub fn quick_ack(&self) {
        quick_ack(self.tcp());
    }
}

/// `Transport::quick_ack` on a bare socket (before a TLS handshake).
pub fn quick_ack(tcp: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tcp;
}

/// One SMTP connection with its read buffer.
pub struct SmtpConn {
    io: Transport,
    buf: Vec<u8>,
    /// Something arrived since our last write: waiting now for more means the server may be
    /// holding its next segment for our ACK (see `Transport::quick_ack`).
    received_since_send: bool,
}

impl SmtpConn {
    pub fn new(io: Transport) -> SmtpConn {
        SmtpConn {
            io,
            buf: Vec::with_capacity(READ_CHUNK),
            received_since_send: false,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.io, Transport::Tls(_))
    }

    pub fn transport(&self) -> &Transport {
        &self.io
    }

    /// Bytes received but not yet consumed by a reply.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes command lines (CRLF added) in one write, so a pipelined group goes out together.
    pub async fn send_lines(&mut self, lines: &[&str], deadline: Instant) -> Result<(), ConnError> {
        let mut out = Vec::new();
        for l in lines {
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.send_raw(&out, deadline).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), ConnError> {
        let io = &mut self.io;
        let write = async {
            io.write_all(bytes).await?;
            io.flush().await
        };
        match timeout_at(deadline, write).await {
            Ok(Ok(())) => {
                self.received_since_send = false;
                // rustls reads the segments of a record out of our sight: under TLS, every
                // segment of the reply is acknowledged at once. In plaintext the ACK is asked
                // for only when a reply (or a pipelined group) arrives in pieces, in
                // `read_reply`; otherwise it rides on our next command, as TCP intends, and a
                // session costs no extra packet per reply.
                if self.is_tls() {
                    self.io.quick_ack();
                }
                Ok(())
            }
            Ok(Err(e)) => Err(ConnError::from_io(&e, "sending")),
            Err(_) => Err(ConnError::timeout("sending the command")),
        }
    }

    /// Reads one complete reply. The deadline covers the whole reply, so a server dripping one
    /// byte at a time cannot stretch it.
    pub async fn read_reply(&mut self, deadline: Instant) -> Result<Reply, ConnError> {
        let mut acc = ReplyAccumulator::new();
        loop {
            while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if let Some(reply) = acc.push_line(&line)? {
                    return Ok(reply);
                }
            }
            if self.buf.len() > MAX_LINE + 1 {
                return Err(ReplyError::LineTooLong.into());
            }
            if self.received_since_send && !self.is_tls() {
                self.io.quick_ack();
            }
            // Straight into the buffer's spare room (at most READ_CHUNK more than a line's
            // bound): no per-read stack array, which would sit in every session's future.
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            let n = match timeout_at(deadline, self.io.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(ConnError::from_io(&e, "reading the reply")),
                Err(_) => {
                    let what = if acc.in_progress() || !self.buf.is_empty() {
                        "in the middle of a reply (the server sent part of it and stopped)"
                    } else {
                        "waiting for the reply"
                    };
                    return Err(ConnError::timeout(what));
                }
            };
            if n == 0 {
                let what = if acc.in_progress() || !self.buf.is_empty() {
                    "the server closed the connection in the middle of a reply"
                } else {
                    "the server closed the connection without replying"
                };
                return Err(ConnError::new(ErrorKind::Reset, what));
            }
            self.received_since_send = true;
        }
    }

    /// Hands the TCP stream over for the TLS handshake after `220` to STARTTLS. Any byte already
    /// received would be read as if it came over TLS: that is the STARTTLS command-injection
    /// attack (CVE-2011-0411 and kin), so it is refused.
    pub fn into_tcp_for_starttls(self) -> Result<TcpStream, (ConnError, SmtpConn)> {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            return Err((
                ConnError::new(
                    ErrorKind::Protocol,
                    format!(
                        "the server sent {n} byte(s) after its 220 reply to STARTTLS, before the \
                         TLS handshake: refusing to continue (plaintext injected into the TLS \
                         session)"
                    ),
                ),
                self,
            ));
        }
        match self.io {
            Transport::Plain(tcp) => Ok(tcp),
            io @ Transport::Tls(_) => Err((
                ConnError::new(ErrorKind::Protocol, "STARTTLS inside TLS"),
                SmtpConn::new(io),
            )),
        }
    }

    /// Ends the session politely: under TLS with a close_notify alert (RFC 8446 6.1). In
    /// plaintext there is nothing to add: dropping the socket sends the FIN that shutdown(2)
    /// would, one system call fewer a session. Errors do not matter at this point.
    pub async fn shutdown(&mut self, deadline: Instant) {
        if self.is_tls() {
            let _ = timeout_at(deadline, self.io.shutdown()).await;
        }
    }
}
