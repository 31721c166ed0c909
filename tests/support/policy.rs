//! An MTA-STS policy host for the tests: HTTPS on 127.0.0.1 with a certificate from the test
//! CA, answering every request with the same bytes. Include with `#[path]` beside certs.rs.
#![allow(dead_code)]

use super::certs;

/// A running policy host; stops when dropped.
pub struct PolicyServer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `answer` (status line, headers and body) for `name` on 127.0.0.1.
pub async fn policy_server(pki: &certs::TestPki, name: &str, answer: Vec<u8>) -> PolicyServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let acceptor =
        tokio_rustls::TlsAcceptor::from(pki.server_config(&certs::CertKind::Valid(name.into())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 4096 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(&answer).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    PolicyServer { port, task }
}

/// A 200 answer with `body`.
pub fn ok_policy(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A 404 answer: the fetch fails.
pub fn not_found() -> Vec<u8> {
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
}
