//! Tests of the test fixtures themselves (scripted SMTP server, test PKI, refused/blackhole
//! addresses), driven by a small raw tokio client.

mod support;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::CertificateError;
use support::certs::{CertKind, TestPki, WRONG_NAME};
use support::scripted::*;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

const T: Duration = Duration::from_secs(10);
const HOST: &str = "mx.example.test";

/// A raw line-oriented client, generic over plain TCP and TLS.
struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(s: S) -> Self {
        Client {
            io: BufReader::new(s),
        }
    }

    async fn send(&mut self, text: &str) {
        let s = self.io.get_mut();
        timeout(T, async {
            s.write_all(text.as_bytes()).await?;
            s.flush().await
        })
        .await
        .expect("write timed out")
        .expect("write");
    }

    /// One line, CRLF stripped; "" at EOF.
    async fn line(&mut self) -> String {
        let mut l = String::new();
        timeout(T, self.io.read_line(&mut l))
            .await
            .expect("read timed out")
            .expect("read");
        l.trim_end_matches(['\r', '\n']).to_string()
    }

    /// Lines of one (possibly multi-line) reply.
    async fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            assert!(!l.is_empty(), "EOF inside a reply after {lines:?}");
            let last = l.as_bytes().get(3) != Some(&b'-');
            lines.push(l);
            if last {
                return lines;
            }
        }
    }

    /// Reads until EOF (bounded by T).
    async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        timeout(T, self.io.read_to_end(&mut v))
            .await
            .expect("read_to_end timed out")?;
        Ok(v)
    }
}

async fn connect(server: &ScriptedServer) -> Client<TcpStream> {
    Client::new(TcpStream::connect(server.addr).await.expect("connect"))
}

/// Client side of STARTTLS: the buffer must be empty, then handshake for `name`.
async fn upgrade(
    c: Client<TcpStream>,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> io::Result<Client<tokio_rustls::client::TlsStream<TcpStream>>> {
    assert!(c.io.buffer().is_empty(), "bytes pipelined before handshake");
    let tcp = c.io.into_inner();
    let name = ServerName::try_from(name.to_string()).expect("server name");
    let tls = timeout(T, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("handshake timed out")?;
    Ok(Client::new(tls))
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

#[tokio::test]
async fn dialogue_expect_readline_readdata() {
    let mut steps = esmtp_greeting(HOST, &["PIPELINING", "SIZE 1000", "8BITMIME"]);
    steps.extend([
        expect("mail from:"), // case-insensitive prefix
        line("250 ok"),
        Step::ReadLine,
        line("250 ok"),
        expect("DATA"),
        line("354 go"),
        Step::ReadData,
        line("250 queued"),
    ]);
    steps.extend(quit());
    let server = ScriptedServer::start(steps).await;
    let mut c = connect(&server).await;
    assert!(c.reply().await[0].starts_with("220 mx.example.test"));
    c.send("EHLO client.test\r\n").await;
    assert_eq!(
        c.reply().await,
        [
            "250-mx.example.test",
            "250-PIPELINING",
            "250-SIZE 1000",
            "250 8BITMIME"
        ]
    );
    c.send("MAIL FROM:<a@b.test>\r\n").await;
    assert_eq!(c.line().await, "250 ok");
    c.send("RCPT TO:<c@d.test>\r\n").await;
    assert_eq!(c.line().await, "250 ok");
    c.send("DATA\r\n").await;
    assert_eq!(c.line().await, "354 go");
    c.send("Subject: x\r\n\r\nbody\r\n..dot\r\n.\r\n").await;
    assert_eq!(c.line().await, "250 queued");
    c.send("QUIT\r\n").await;
    assert_eq!(c.line().await, "221 2.0.0 Bye");
    assert_eq!(c.read_to_end().await.expect("clean EOF"), b"");
    drop(c);
    let log = server.finish().await;
    log.assert_completed();
    assert_eq!(
        log.received,
        [
            "EHLO client.test",
            "MAIL FROM:<a@b.test>",
            "RCPT TO:<c@d.test>",
            "DATA",
            "Subject: x",
            "",
            "body",
            "..dot",
            ".",
            "QUIT"
        ]
    );
    assert!(!log.tls_established && !log.closed_by_client && log.connected);
}

#[tokio::test]
async fn expect_mismatch_is_recorded_and_script_goes_on() {
    let server =
        ScriptedServer::start(vec![expect("EHLO"), line("500 what"), Step::ReadLine]).await;
    let mut c = connect(&server).await;
    c.send("HELO x\r\n").await;
    assert_eq!(c.line().await, "500 what");
    c.send("NOOP\r\n").await;
    let log = server.finish().await;
    assert_eq!(log.received, ["HELO x", "NOOP"]);
    assert_eq!(log.failures.len(), 1, "{:?}", log.failures);
    assert!(log.failures[0].contains("HELO x"));
    let panic = std::panic::catch_unwind(|| log.assert_ok());
    assert!(panic.is_err());
}

#[tokio::test]
async fn expect_eof_is_a_failure_readline_eof_is_not() {
    let server = ScriptedServer::start(vec![line("220 x"), expect("EHLO")]).await;
    let mut c = connect(&server).await;
    assert_eq!(c.line().await, "220 x");
    c.send("EHL").await; // partial line, then close
    drop(c);
    let log = server.finish().await;
    assert!(log.closed_by_client && !log.completed);
    assert_eq!(log.received, ["EHL"]);
    assert_eq!(log.failures.len(), 1, "{:?}", log.failures);

    let server = ScriptedServer::start(vec![line("220 x"), Step::ReadLine, line("never")]).await;
    let mut c = connect(&server).await;
    assert_eq!(c.line().await, "220 x");
    drop(c);
    let log = server.finish().await;
    log.assert_ok();
    assert!(log.closed_by_client && !log.completed);
    assert!(log.received.is_empty());
}

#[tokio::test]
async fn overlong_line_is_a_failure() {
    let server = ScriptedServer::start(vec![expect("EHLO")]).await;
    let mut c = connect(&server).await;
    let long = format!("EHLO {}\r\n", "a".repeat(MAX_LINE + 10));
    // The server may stop reading and close while we write: ignore write errors.
    let _ = c.io.get_mut().write_all(long.as_bytes()).await;
    let log = server.finish().await;
    assert_eq!(log.failures.len(), 1, "{:?}", log.failures);
    assert!(log.failures[0].contains("longer than"));
}

#[tokio::test]
async fn send_raw_bytes_and_partial_lines() {
    let server = ScriptedServer::start(vec![
        Step::SendRaw(vec![b'2', b'2', b'0', b' ', 0xff, 0xfe, b'\r', b'\n']),
        Step::SendRaw(b"250 partial".to_vec()),
        Step::Close,
    ])
    .await;
    let mut c = connect(&server).await;
    let all = c.read_to_end().await.expect("read");
    assert_eq!(all, b"220 \xff\xfe\r\n250 partial");
    drop(c);
    server.finish().await.assert_completed();
}

#[tokio::test]
async fn sleep_delays_the_next_step() {
    let server =
        ScriptedServer::start(vec![Step::Sleep(Duration::from_secs(2)), line("220 late")]).await;
    let mut c = connect(&server).await;
    let mut l = String::new();
    assert!(
        timeout(Duration::from_millis(300), c.io.read_line(&mut l))
            .await
            .is_err(),
        "reply came before the sleep ended"
    );
    // The cancelled read_line may have buffered nothing (nothing was sent yet).
    assert_eq!(c.line().await, "220 late");
    drop(c);
    server.finish().await.assert_completed();
}

#[tokio::test]
async fn send_slowly_sends_byte_by_byte() {
    let server = ScriptedServer::start(vec![Step::SendSlowly {
        data: b"220 slow\r\n".to_vec(),
        every: Duration::from_millis(50),
    }])
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut got = Vec::new();
    let mut reads = 0;
    while !got.ends_with(b"\n") {
        let mut b = [0u8; 64];
        let n = timeout(T, tcp.read(&mut b))
            .await
            .expect("timeout")
            .expect("read");
        assert!(n > 0, "EOF");
        got.extend_from_slice(&b[..n]);
        reads += 1;
    }
    assert_eq!(got, b"220 slow\r\n");
    // Ten bytes 50 ms apart cannot all arrive in one read.
    assert!(reads >= 2, "reads = {reads}");
    drop(tcp);
    server.finish().await.assert_ok();
}

#[tokio::test]
async fn send_endless_stops_when_client_leaves() {
    let server = ScriptedServer::start(vec![
        line("220 x"),
        Step::SendEndless(b"250-".iter().chain([b'a'; 1000].iter()).copied().collect()),
    ])
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut total = 0usize;
    let mut b = [0u8; 16 * 1024];
    while total < 4 * 1024 * 1024 {
        let n = timeout(T, tcp.read(&mut b))
            .await
            .expect("timeout")
            .expect("read");
        assert!(n > 0, "server stopped sending");
        total += n;
    }
    drop(tcp);
    let log = server.finish().await;
    log.assert_ok();
    assert!(log.closed_by_client);
}

#[tokio::test]
async fn hang_waits_for_client_close_and_records_input() {
    let server = ScriptedServer::start(vec![Step::Hang]).await;
    let mut c = connect(&server).await;
    c.send("EHLO x\r\n").await;
    let mut l = String::new();
    assert!(timeout(Duration::from_millis(500), c.io.read_line(&mut l))
        .await
        .is_err());
    drop(c);
    let log = server.finish().await;
    log.assert_ok();
    assert!(log.closed_by_client);
    assert_eq!(log.received, ["EHLO x"]);
}

#[tokio::test]
async fn close_gives_eof_and_reset_gives_rst() {
    let server = ScriptedServer::start(vec![line("421 bye"), Step::Close]).await;
    let mut c = connect(&server).await;
    assert_eq!(c.read_to_end().await.expect("clean EOF"), b"421 bye\r\n");
    drop(c);
    server.finish().await.assert_completed();

    let server = ScriptedServer::start(vec![Step::ReadLine, Step::Reset]).await;
    let mut c = connect(&server).await;
    c.send("EHLO x\r\n").await;
    let err = c.read_to_end().await.expect_err("expected a reset");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    let log = server.finish().await;
    log.assert_ok();
    assert!(!log.closed_by_client);
}

#[tokio::test]
async fn read_until_close_records_everything() {
    let server = ScriptedServer::start(vec![Step::ReadUntilClose]).await;
    let mut c = connect(&server).await;
    c.send("one\r\ntwo\nthree-partial").await;
    c.io.get_mut().shutdown().await.expect("shutdown");
    assert_eq!(c.read_to_end().await.expect("EOF"), b"");
    let log = server.finish().await;
    log.assert_ok();
    assert_eq!(log.received, ["one", "two", "three-partial"]);
    assert!(log.closed_by_client);
}

#[tokio::test]
async fn only_one_connection_is_accepted() {
    let server = ScriptedServer::start(vec![line("220 x"), Step::Hang]).await;
    let mut c = connect(&server).await;
    assert_eq!(c.line().await, "220 x");
    let err = TcpStream::connect(server.addr)
        .await
        .expect_err("second connect");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    drop(c);
    server.finish().await.assert_ok();
}

#[tokio::test]
async fn starttls_valid_certificate_verifies() {
    let pki = TestPki::new();
    let kind = CertKind::Valid(HOST.into());
    let mut steps = starttls_dialogue(
        HOST,
        &["STARTTLS"],
        pki.server_config(&kind),
        &["AUTH PLAIN"],
    );
    steps.extend(quit());
    let server = ScriptedServer::start(steps).await;
    let mut c = connect(&server).await;
    c.reply().await;
    c.send("EHLO c\r\n").await;
    assert_eq!(c.reply().await, ["250-mx.example.test", "250 STARTTLS"]);
    c.send("STARTTLS\r\n").await;
    assert!(c.line().await.starts_with("220 "));
    let mut t = upgrade(c, pki.client_config(), HOST)
        .await
        .expect("handshake");
    let (_, conn) = t.io.get_ref().get_ref();
    assert_eq!(
        conn.peer_certificates().map(|c| c.len()),
        Some(2),
        "leaf + CA"
    );
    t.send("EHLO c\r\n").await;
    assert_eq!(t.reply().await, ["250-mx.example.test", "250 AUTH PLAIN"]);
    t.send("QUIT\r\n").await;
    assert_eq!(t.line().await, "221 2.0.0 Bye");
    drop(t);
    let log = server.finish().await;
    log.assert_completed();
    assert!(log.tls_established && !log.client_cert_presented);
    assert_eq!(log.received, ["EHLO c", "STARTTLS", "EHLO c", "QUIT"]);
}

/// Handshake with an implicit-TLS script; returns the client's rustls error and the server log.
async fn handshake_error(pki: &TestPki, kind: CertKind) -> (rustls::Error, ServerLog) {
    let server = ScriptedServer::start(vec![
        Step::StartTls(pki.server_config(&kind)),
        line("220 x"),
    ])
    .await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let err = upgrade(Client::new(tcp), pki.client_config(), kind.name())
        .await
        .err()
        .unwrap_or_else(|| panic!("{kind:?} verified"));
    let rerr = rustls_error(&err)
        .unwrap_or_else(|| panic!("not a rustls error: {err}"))
        .clone();
    (rerr, server.finish().await)
}

#[tokio::test]
async fn bad_certificates_fail_verification() {
    let pki = TestPki::new();
    for kind in [
        CertKind::Expired(HOST.into()),
        CertKind::NotYetValid(HOST.into()),
        CertKind::WrongName(HOST.into()),
        CertKind::SelfSigned(HOST.into()),
    ] {
        let (err, log) = handshake_error(&pki, kind.clone()).await;
        let rustls::Error::InvalidCertificate(cert_err) = &err else {
            panic!("{kind:?}: unexpected error {err:?}");
        };
        let expected = match kind {
            CertKind::Expired(_) => matches!(
                cert_err,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
            CertKind::NotYetValid(_) => matches!(
                cert_err,
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
            ),
            CertKind::WrongName(_) => matches!(
                cert_err,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            CertKind::SelfSigned(_) => matches!(cert_err, CertificateError::UnknownIssuer),
            CertKind::Valid(_) => unreachable!(),
        };
        assert!(expected, "{kind:?}: unexpected error {cert_err:?}");
        assert!(!log.tls_established, "{kind:?}");
        assert!(log.tls_error.is_some(), "{kind:?}: {log:?}");
        assert!(!log.failures.is_empty());
    }
}

#[tokio::test]
async fn wrong_name_certificate_is_valid_for_wrong_name() {
    let pki = TestPki::new();
    let server = ScriptedServer::start(vec![
        Step::StartTls(pki.server_config(&CertKind::WrongName(HOST.into()))),
        line("220 x"),
    ])
    .await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut t = upgrade(Client::new(tcp), pki.client_config(), WRONG_NAME)
        .await
        .expect("valid for wrong.example.test");
    assert_eq!(t.line().await, "220 x");
    drop(t);
    server.finish().await.assert_completed();
}

#[tokio::test]
async fn tls12_is_offered() {
    let pki = TestPki::new();
    let server = ScriptedServer::start(vec![
        Step::StartTls(pki.server_config(&CertKind::Valid(HOST.into()))),
        line("220 x"),
    ])
    .await;
    let config = rustls::ClientConfig::builder_with_provider(support::certs::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("versions")
        .with_root_certificates(pki.root_store())
        .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut t = upgrade(Client::new(tcp), Arc::new(config), HOST)
        .await
        .expect("TLS 1.2 handshake");
    assert_eq!(
        t.io.get_ref().get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(t.line().await, "220 x");
    drop(t);
    server.finish().await.assert_completed();
}

#[tokio::test]
async fn client_certificate_is_recorded() {
    let pki = TestPki::new();
    let kind = CertKind::Valid(HOST.into());
    for with_cert in [true, false] {
        let server = ScriptedServer::start(vec![
            Step::StartTls(pki.server_config_with_client_auth(&kind)),
            line("220 x"),
        ])
        .await;
        let config = if with_cert {
            pki.client_config_with_cert("client.example.test")
        } else {
            pki.client_config()
        };
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let mut t = upgrade(Client::new(tcp), config, HOST)
            .await
            .expect("handshake");
        assert_eq!(t.line().await, "220 x");
        drop(t);
        let log = server.finish().await;
        log.assert_completed();
        assert_eq!(log.client_cert_presented, with_cert);
        if with_cert {
            assert_eq!(
                log.client_cert_subject.as_deref(),
                Some("CN=client.example.test")
            );
        }
    }
}

#[tokio::test]
async fn bytes_pipelined_before_handshake_are_flagged() {
    let pki = TestPki::new();
    let server = ScriptedServer::start(vec![
        expect("STARTTLS"),
        line("220 go"),
        Step::StartTls(pki.server_config(&CertKind::Valid(HOST.into()))),
    ])
    .await;
    let mut c = connect(&server).await;
    c.send("STARTTLS\r\nEHLO injected\r\n").await;
    assert_eq!(c.line().await, "220 go");
    drop(c);
    let log = server.finish().await;
    assert!(
        log.failures
            .iter()
            .any(|f| f.contains("before the handshake")),
        "{:?}",
        log.failures
    );
}

#[test]
fn pki_files_exist_and_are_removed_on_drop() {
    let pki = TestPki::new();
    let ca = std::fs::read_to_string(pki.ca_file()).expect("CA file");
    assert_eq!(ca, pki.ca_pem());
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    let (cert, key) = pki.client_cert("client.example.test");
    let cert_pem = std::fs::read_to_string(&cert).expect("client cert");
    assert_eq!(
        cert_pem.matches("BEGIN CERTIFICATE").count(),
        2,
        "leaf + CA"
    );
    assert!(std::fs::read_to_string(&key)
        .expect("client key")
        .contains("PRIVATE KEY"));
    let extra = pki.write_pem("extra.pem", "x");
    assert!(extra.starts_with(pki.dir()));
    let dir = pki.dir().to_path_buf();
    assert!(dir.starts_with(std::env::temp_dir()));
    drop(pki);
    assert!(!dir.exists());
}

#[test]
fn spawn_thread_and_finish_blocking() {
    let server = ScriptedServer::spawn_thread(vec![line("220 x"), expect("QUIT"), line("221 bye")]);
    let mut tcp = std::net::TcpStream::connect(server.addr).expect("connect");
    tcp.set_read_timeout(Some(T)).expect("timeout");
    use std::io::{Read, Write};
    tcp.write_all(b"QUIT\r\n").expect("write");
    let mut got = Vec::new();
    tcp.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"220 x\r\n221 bye\r\n");
    drop(tcp);
    let log = server.finish_blocking();
    log.assert_completed();
    assert_eq!(log.received, ["QUIT"]);
}

#[tokio::test]
async fn refused_addr_refuses() {
    let addr = refused_addr();
    assert!(addr.ip().is_loopback());
    let err = timeout(T, TcpStream::connect(addr))
        .await
        .expect("refusal is immediate")
        .expect_err("nothing listens");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn blackhole_connect_hangs() {
    let hole = blackhole();
    assert!(hole.addr.ip().is_loopback());
    for _ in 0..2 {
        let r = timeout(Duration::from_millis(1500), TcpStream::connect(hole.addr)).await;
        assert!(r.is_err(), "connect to the blackhole finished: {r:?}");
    }
}

#[test]
fn blackhole_works_outside_a_runtime_and_for_std_clients() {
    let hole = blackhole();
    let err = std::net::TcpStream::connect_timeout(&hole.addr, Duration::from_millis(2000))
        .expect_err("connect must hang");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
}

/// A paused test clock must not fire the fixture's deadlines: the thread variant keeps time
/// on its own runtime, and `finish` uses no timer of the caller's runtime.
#[tokio::test(start_paused = true)]
async fn spawn_thread_works_with_a_paused_clock() {
    let server = ScriptedServer::spawn_thread(vec![
        Step::Sleep(Duration::from_millis(300)),
        line("220 x"),
        expect("QUIT"),
        Step::Sleep(Duration::from_millis(300)),
        line("221 bye"),
    ]);
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut io = BufReader::new(tcp);
    let mut l = String::new();
    io.read_line(&mut l).await.expect("read");
    assert_eq!(l, "220 x\r\n");
    io.get_mut().write_all(b"QUIT\r\n").await.expect("write");
    let log = server.finish().await;
    log.assert_completed();
    let mut rest = Vec::new();
    io.read_to_end(&mut rest).await.expect("read");
    assert_eq!(rest, b"221 bye\r\n");
}
