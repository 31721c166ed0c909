//! Every HTTPS request the engine makes (OAuth 2.0 token endpoints, MTA-STS policies): one
//! request per connection, with the same guarantees for all: the certificate verified strictly
//! against the probes' trust stores (`tls::client_config`: Mozilla's roots, `--tls-ca-file`,
//! the system's), redirects never followed (RFC 8461 3.3 forbids it for policies; a token
//! endpoint has no reason to redirect a POST carrying a client secret), the body capped, and
//! one deadline over everything from the DNS lookup to the last byte.
//!
//! The client is hyper's HTTP/1.1 connection API (`hyper::client::conn::http1`) over a
//! TCP + tokio-rustls stream opened here, rather than reqwest: hyper, hyper-util and
//! http-body-util are already in the binary (axum serves `serve` with them), so this adds only
//! hyper's client half (the `want` and `try-lock` crates) to the build; and opening the stream here keeps the TLS side the probe's own (the
//! recording verifier, so an untrusted certificate is named in the probe's words), which
//! reqwest would only take as an opaque preconfigured `ClientConfig`. hyper does the framing
//! (chunked bodies, keep-alive off), so no HTTP parsing is written by hand.

mod proxy;

pub use proxy::Proxy;

use crate::tls::{client_config, SharedRecord, TlsConfigError, TlsOptions, VerifyMode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How one request is made.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The whole request: DNS, connect, TLS, request and the complete body.
    pub timeout: Duration,
    /// The most body bytes read; a longer body is an error.
    pub max_body: usize,
    /// Extra trust anchors (PEM), as `--tls-ca-file` for the probes.
    pub ca_file: Option<PathBuf>,
    /// Connect here instead of resolving the URL's host with the system resolver (MTA-STS
    /// looks the policy host up with the trace's own resolver); the URL's host is still the
    /// TLS name and the Host header.
    pub connect_to: Option<SocketAddr>,
}

/// A request: GET, or POST of an `application/x-www-form-urlencoded` body (which may hold a
/// client secret: this type has no `Debug`, and errors never quote it).
pub struct Request<'a> {
    url: &'a str,
    form: Option<String>,
    headers: Vec<(&'static str, String)>,
}

impl<'a> Request<'a> {
    pub fn get(url: &'a str) -> Request<'a> {
        Request {
            url,
            form: None,
            headers: Vec::new(),
        }
    }

    /// POST `pairs`, form-encoded (WHATWG urlencoded, as RFC 6749 Appendix B asks).
    pub fn post_form(url: &'a str, pairs: &[(&str, &str)]) -> Request<'a> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Request {
            url,
            form: Some(body),
            headers: Vec::new(),
        }
    }

    /// HTTP Basic client authentication as RFC 6749 2.3.1 writes it: both parts form-encoded,
    /// then `id:secret` in base64.
    pub fn basic_auth(self, id: &str, secret: &str) -> Request<'a> {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", enc(id), enc(secret));
        let value = format!("Basic {}", STANDARD.encode(pair));
        self.header("authorization", value)
    }

    /// An extra header (`Accept`, `Authorization`).
    pub fn header(mut self, name: &'static str, value: String) -> Request<'a> {
        self.headers.push((name, value));
        self
    }
}

/// The answer: any status but a redirect, and the body, at most `max_body` bytes.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why a request got no usable answer. Never carries the request body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error("{url:?}: not a valid http(s) URL")]
    Url { url: String },
    #[error("{url:?}: http:// is used only to this machine (127.0.0.1, [::1], localhost)")]
    Insecure { url: String },
    #[error("cannot resolve {host}: {why}")]
    Resolve { host: String, why: String },
    #[error("cannot connect to {addr}: {kind}")]
    Connect {
        addr: SocketAddr,
        kind: std::io::ErrorKind,
    },
    #[error("TLS with {host} failed: {why}")]
    Tls { host: String, why: String },
    #[error(transparent)]
    Config(#[from] TlsConfigError),
    #[error("no complete answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("the answer is over the {} KiB size cap", .limit / 1024)]
    TooLarge { limit: usize },
    #[error("answered {status} with a redirect (to {location:?}), which is not followed")]
    Redirect { status: u16, location: String },
    #[error("HTTP: {0}")]
    Protocol(String),
    #[error("HTTPS_PROXY: {why}")]
    ProxyUrl { why: String },
    #[error("proxy {proxy} (HTTPS_PROXY): {why}")]
    Proxy { proxy: String, why: String },
}

/// Makes one request within `opts.timeout`.
pub async fn request(req: Request<'_>, opts: &HttpOptions) -> Result<Response, HttpError> {
    let target = Target::parse(req.url)?;
    match tokio::time::timeout(opts.timeout, exchange(&target, req, opts)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout(opts.timeout)),
    }
}

/// The parts of a URL a request needs.
struct Target {
    https: bool,
    /// Without brackets for IPv6: the TLS name and what is resolved.
    host: String,
    port: u16,
    /// `host[:port]` as written: the Host header.
    authority: String,
    path: String,
    url: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, HttpError> {
        let bad = || HttpError::Url {
            url: url.to_string(),
        };
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(bad());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Ok(Target {
            https,
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: authority.as_str().to_string(),
            path: uri
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string()),
            url: url.to_string(),
        })
    }

    fn loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

async fn exchange(t: &Target, req: Request<'_>, opts: &HttpOptions) -> Result<Response, HttpError> {
    // A secret must not cross a network in clear: plain HTTP only to this machine.
    if !t.https && !t.loopback() {
        return Err(HttpError::Insecure { url: t.url.clone() });
    }
    if !t.https {
        let tcp = connect(t, opts).await?;
        return send(TokioIo::new(tcp), t, req, opts.max_body).await;
    }
    // Through HTTPS_PROXY when one is set for this host (the proxy resolves the name).
    let tcp = match Proxy::from_env(&t.host)? {
        Some(p) => p.tunnel(&t.host, t.port).await?,
        None => connect(t, opts).await?,
    };
    let (config, record) = client_config(&TlsOptions {
        verify: VerifyMode::Strict,
        ca_file: opts.ca_file.clone(),
        client_cert: None,
        client_key: None,
        classic_groups: false,
        dane: Vec::new(),
    })?;
    let name =
        ServerName::try_from(t.host.clone()).map_err(|_| HttpError::Url { url: t.url.clone() })?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| HttpError::Tls {
            host: t.host.clone(),
            why: verify_error(&record).unwrap_or_else(|| e.to_string()),
        })?;
    send(TokioIo::new(stream), t, req, opts.max_body).await
}

/// The verifier's words for a certificate it refused (the probe's wording).
fn verify_error(record: &SharedRecord) -> Option<String> {
    let failure = record.lock().ok()?.result.clone()?.err()?;
    Some(failure.describe(mxtrace_proto::spec::Naming::Flag))
}

/// TCP to `connect_to`, else to each address of the host in turn.
async fn connect(t: &Target, opts: &HttpOptions) -> Result<TcpStream, HttpError> {
    let addrs: Vec<SocketAddr> = match opts.connect_to {
        Some(a) => vec![a],
        None => tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| HttpError::Resolve {
                host: t.host.clone(),
                why: e.to_string(),
            })?
            .collect(),
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => {
                last = Some(HttpError::Connect {
                    addr,
                    kind: e.kind(),
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| HttpError::Resolve {
        host: t.host.clone(),
        why: "no address".to_string(),
    }))
}

/// One HTTP/1.1 exchange on `io`; the connection is driven alongside and closes after it.
async fn send<S>(
    io: TokioIo<S>,
    t: &Target,
    req: Request<'_>,
    max_body: usize,
) -> Result<Response, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let proto = |e: hyper::Error| HttpError::Protocol(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(proto)?;
    let mut builder = hyper::Request::builder()
        .method(if req.form.is_some() { "POST" } else { "GET" })
        .uri(t.path.as_str())
        .header(HOST, t.authority.as_str())
        .header(USER_AGENT, concat!("mxtrace/", env!("CARGO_PKG_VERSION")))
        .header(CONNECTION, "close");
    if req.form.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    for (name, value) in &req.headers {
        builder = builder.header(*name, value.as_str());
    }
    let body = Full::new(Bytes::from(req.form.unwrap_or_default()));
    let request = builder
        .body(body)
        .map_err(|e| HttpError::Protocol(e.to_string()))?;
    let work = async move {
        let resp = sender.send_request(request).await.map_err(proto)?;
        read_response(resp, max_body).await
    };
    // The connection future ends once the answer is read and `sender` is gone.
    let (result, _) = tokio::join!(work, conn);
    result
}

async fn read_response(
    resp: hyper::Response<hyper::body::Incoming>,
    max_body: usize,
) -> Result<Response, HttpError> {
    let status = resp.status().as_u16();
    let header = |v: Option<&HeaderValue>| v.and_then(|v| v.to_str().ok()).map(str::to_string);
    if resp.status().is_redirection() {
        return Err(HttpError::Redirect {
            status,
            location: header(resp.headers().get(LOCATION)).unwrap_or_default(),
        });
    }
    let content_type = header(resp.headers().get(CONTENT_TYPE));
    let body = Limited::new(resp.into_body(), max_body)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                HttpError::TooLarge { limit: max_body }
            } else {
                HttpError::Protocol(e.to_string())
            }
        })?
        .to_bytes()
        .to_vec();
    Ok(Response {
        status,
        content_type,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn opts(timeout_ms: u64) -> HttpOptions {
        HttpOptions {
            timeout: Duration::from_millis(timeout_ms),
            max_body: 64,
            ca_file: None,
            connect_to: None,
        }
    }

    /// A loopback server that answers one connection with `answer` (None: never answers) and
    /// hands back what it read.
    async fn server(answer: Option<&'static [u8]>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token?x=1", l.local_addr().unwrap());
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            buf.truncate(n);
            match answer {
                Some(a) => s.write_all(a).await.unwrap(),
                None => tokio::time::sleep(Duration::from_secs(5)).await,
            }
            buf
        });
        (url, h)
    }

    #[tokio::test]
    async fn posts_a_form_and_reads_a_chunked_answer() {
        let (url, h) = server(Some(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n",
        ))
        .await;
        let r = request(
            Request::post_form(
                &url,
                &[("grant_type", "client_credentials"), ("scope", "a b&c")],
            ),
            &opts(2000),
        )
        .await
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"{\"a\": 1}"[..]));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let sent = String::from_utf8(h.await.unwrap()).unwrap();
        assert!(sent.starts_with("POST /token?x=1 HTTP/1.1\r\n"), "{sent}");
        assert!(
            sent.ends_with("\r\n\r\ngrant_type=client_credentials&scope=a+b%26c"),
            "{sent}"
        );
    }

    #[tokio::test]
    async fn redirects_caps_and_deadlines() {
        let (url, _h) = server(Some(
            b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere.test/\r\nContent-Length: 0\r\n\r\n",
        ))
        .await;
        let e = request(Request::get(&url), &opts(2000)).await.unwrap_err();
        assert!(matches!(e, HttpError::Redirect { status: 302, .. }), "{e}");
        let (url, _h) = server(Some(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")).await;
        let e = request(Request::get(&url), &opts(2000)).await.unwrap_err();
        assert!(matches!(e, HttpError::TooLarge { limit: 64 }), "{e}");
        let (url, _h) = server(None).await;
        let e = request(Request::get(&url), &opts(200)).await.unwrap_err();
        assert_eq!(e.to_string(), "no complete answer within 200ms");
        let e = request(Request::get("http://192.0.2.1/t"), &opts(200))
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Insecure { .. }), "{e}");
        let e = request(Request::get("ftp://a.test/"), &opts(200))
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Url { .. }), "{e}");
    }
}
