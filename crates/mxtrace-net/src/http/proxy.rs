//! An explicit HTTP proxy for https:// requests, as curl and most tools take it: `HTTPS_PROXY`
//! (or `https_proxy`) names it, `NO_PROXY` (or `no_proxy`) lists the hosts reached directly.
//! The request goes through a CONNECT tunnel (RFC 9110 9.3.6), so TLS stays end to end and the
//! token endpoint's certificate is verified as without a proxy.
//!
//! The CONNECT exchange is written here: one request line and one bounded response head, where
//! hyper-util's tunnel would bring its tower-based connector stack for the same few lines.

use super::HttpError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::Uri;
use std::net::IpAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest CONNECT response head read.
const MAX_HEAD: usize = 8 * 1024;

/// A proxy to tunnel through.
#[derive(Clone)]
pub struct Proxy {
    host: String,
    port: u16,
    /// `Basic ...` from the URL's user information.
    authorization: Option<String>,
}

impl std::fmt::Debug for Proxy {
    // The credentials stay out of any debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({})", self.shown())
    }
}

impl Proxy {
    /// The proxy `HTTPS_PROXY` names for `host`, unless `NO_PROXY` exempts it (as curl: a
    /// loopback host too is exempt only when listed, `NO_PROXY=localhost,127.0.0.1`).
    pub fn from_env(host: &str) -> Result<Option<Proxy>, HttpError> {
        let var = |names: [&str; 2]| names.iter().find_map(|n| std::env::var(n).ok());
        let Some(url) = var(["HTTPS_PROXY", "https_proxy"]).filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let no_proxy = var(["NO_PROXY", "no_proxy"]).unwrap_or_default();
        if exempt(&no_proxy, host) {
            return Ok(None);
        }
        Proxy::parse(&url).map(Some)
    }

    /// `http://[user:password@]host[:port]` (the scheme may be left out; port 80 by default).
    pub fn parse(url: &str) -> Result<Proxy, HttpError> {
        let bad = |why: &str| HttpError::ProxyUrl {
            why: why.to_string(),
        };
        let url = url.trim();
        let with_scheme = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = with_scheme.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad(
                "only http:// proxies are supported (the tunnel carries TLS)",
            ));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let (userinfo, hostport) = match authority.as_str().rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority.as_str()),
        };
        let hp: hyper::http::uri::Authority = hostport.parse().map_err(|_| bad("no host"))?;
        // `%XX` escapes decoded: a password with `@` or `:` in it.
        let authorization = userinfo.map(|u| {
            let decoded: Vec<u8> = percent_encoding::percent_decode_str(u).collect();
            format!("Basic {}", STANDARD.encode(decoded))
        });
        Ok(Proxy {
            host: hp
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: hp.port_u16().unwrap_or(80),
            authorization,
        })
    }

    /// `host:port`, without credentials: what errors show.
    pub fn shown(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// A TCP stream to `host:port` through the proxy, once it answered the CONNECT with 2xx.
    pub async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream, HttpError> {
        let fail = |why: String| HttpError::Proxy {
            proxy: self.shown(),
            why,
        };
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let target = match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(a) = &self.authorization {
            head.push_str(&format!("Proxy-Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        tcp.write_all(head.as_bytes())
            .await
            .map_err(|e| fail(format!("writing CONNECT: {e}")))?;
        let status = read_head(&mut tcp).await.map_err(fail)?;
        match status.split_whitespace().nth(1) {
            Some(code) if code.starts_with('2') => Ok(tcp),
            _ => Err(fail(format!("refused the tunnel to {target}: {status}"))),
        }
    }
}

/// The status line of the proxy's answer, its head read up to the blank line (and no further:
/// what follows is the tunnel's).
async fn read_head(tcp: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(format!("its answer's head is over {MAX_HEAD} bytes"));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => return Err("closed the connection before answering the CONNECT".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("reading its answer: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

/// Whether `NO_PROXY` (comma- or space-separated: `*`, host names matching themselves and
/// their subdomains, with or without a leading dot, IP addresses) exempts `host`.
fn exempt(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    no_proxy
        .split([',', ' '])
        .map(|e| e.trim().trim_start_matches("*.").trim_start_matches('.'))
        .map(|e| e.split_once(':').map_or(e, |(h, _)| h).to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .any(|e| e == "*" || host == e || host.ends_with(&format!(".{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://proxy.corp:3128").unwrap();
        assert_eq!(
            (p.shown(), p.authorization.is_none()),
            ("proxy.corp:3128".into(), true)
        );
        assert_eq!(Proxy::parse("10.0.0.1").unwrap().shown(), "10.0.0.1:80");
        let p = Proxy::parse("http://me:p%40ss@[::1]:8080/").unwrap();
        assert_eq!(p.shown(), "[::1]:8080");
        let want = format!("Basic {}", STANDARD.encode("me:p@ss"));
        assert_eq!(p.authorization.as_deref(), Some(want.as_str()));
        assert!(!format!("{p:?}").contains("p@ss"));
        for bad in ["https://proxy:443", "socks5://proxy:1080", "http://", "::"] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }

    /// A proxy that refuses the tunnel: its status line is the error; what it was asked is a
    /// CONNECT with the credentials of its URL.
    #[tokio::test]
    async fn a_refused_tunnel_is_named() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = vec![0u8; 512];
            let n = s.read(&mut got).await.unwrap();
            s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(got.get(..n).unwrap_or_default()).into_owned()
        });
        let p = Proxy::parse(&format!("http://u:pw@127.0.0.1:{port}")).unwrap();
        let e = p
            .tunnel("login.example", 443)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refused the tunnel to login.example:443: HTTP/1.1 403 Forbidden"),
            "{e}"
        );
        assert!(!e.contains("pw"), "{e}");
        let asked = server.await.unwrap();
        assert!(
            asked.starts_with("CONNECT login.example:443 HTTP/1.1\r\n"),
            "{asked}"
        );
        let basic = format!("Proxy-Authorization: Basic {}", STANDARD.encode("u:pw"));
        assert!(asked.contains(&basic), "{asked}");
    }

    #[test]
    fn no_proxy_exempts_hosts_and_their_subdomains() {
        let list = "localhost, .corp.example,login.microsoftonline.com:443 10.1.2.3";
        assert!(exempt(list, "auth.corp.example"));
        assert!(exempt(list, "corp.example"));
        assert!(exempt(list, "LOGIN.microsoftonline.com."));
        assert!(exempt(list, "10.1.2.3"));
        assert!(!exempt(list, "evilcorp.example"));
        assert!(!exempt(list, "microsoftonline.com"));
        assert!(exempt("*", "anything.test"));
        assert!(!exempt("", "anything.test"));
    }
}
