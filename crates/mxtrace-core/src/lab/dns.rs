//! The lab's DNS server (hickory-server, in process): zones from zone-file text on UDP and TCP
//! of one 127.0.0.0/8 address and port, names that answer SERVFAIL, and a server that never
//! answers (`SilentDns`, for DNS timeouts). The lab and the integration tests use the same one.
//!
//! Bounds: at most `MAX_ZONES` zones of at most `MAX_ZONE_TEXT` bytes each; a TCP connection
//! that sends no request for 5 s is closed (hickory); the silent server holds at most
//! `MAX_SILENT_HELD` connections. Only 127.0.0.0/8 is served.

use crate::lab::check_loopback;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use hickory_server::Server;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

pub const MAX_ZONES: usize = 64;
pub const MAX_ZONE_TEXT: usize = 64 * 1024;
const MAX_SERVFAIL_NAMES: usize = 256;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(5);
const TCP_RESPONSE_BUFFER: usize = 64 * 1024;
const MAX_SILENT_HELD: usize = 64;

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// A running DNS server; stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    _server: Server<Handler>,
}

impl DnsServer {
    /// Serves `zones` (zone-file text, each with `$ORIGIN` and an SOA) on UDP and TCP of `bind`
    /// (127.0.0.0/8; port 0 picks one, the same for both). Queries for a name in `servfail`
    /// (any type) get SERVFAIL.
    pub async fn start(
        bind: SocketAddr,
        zones: &[String],
        servfail: &[String],
    ) -> io::Result<DnsServer> {
        check_loopback(bind.ip())?;
        let handler = Handler::new(zones, servfail)?;
        let (udp, tcp) = bind_pair(bind).await?;
        let addr = udp.local_addr()?;
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);
        Ok(DnsServer {
            addr,
            _server: server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The zones, and the names that fail.
pub struct Handler {
    catalog: Catalog,
    servfail: Vec<LowerName>,
}

impl Handler {
    fn new(zones: &[String], servfail: &[String]) -> io::Result<Handler> {
        if zones.len() > MAX_ZONES || servfail.len() > MAX_SERVFAIL_NAMES {
            return Err(bad(format!(
                "at most {MAX_ZONES} zones and {MAX_SERVFAIL_NAMES} SERVFAIL names"
            )));
        }
        let mut catalog = Catalog::new();
        for text in zones {
            if text.len() > MAX_ZONE_TEXT {
                return Err(bad(format!("a zone is over {MAX_ZONE_TEXT} bytes")));
            }
            let (origin, records) = Parser::new(text.as_str(), None, None)
                .parse()
                .map_err(|e| bad(format!("zone does not parse: {e}\n{text}")))?;
            let zone = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
                origin.clone(),
                records,
                ZoneType::Primary,
                AxfrPolicy::Deny,
            )
            .map_err(|e| bad(format!("zone {origin}: {e}")))?;
            catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
        }
        let servfail = servfail
            .iter()
            .map(|n| {
                Name::from_ascii(n)
                    .map(|n| LowerName::new(&n))
                    .map_err(|e| bad(format!("SERVFAIL name {n:?}: {e}")))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Handler { catalog, servfail })
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let fail = request
            .request_info()
            .is_ok_and(|info| self.servfail.contains(info.query.name()));
        if !fail {
            return self
                .catalog
                .handle_request::<R, T>(request, response_handle)
                .await;
        }
        let response = MessageResponseBuilder::from_message_request(request)
            .error_msg(&request.metadata, ResponseCode::ServFail);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// A "DNS server" that never answers: a UDP socket nobody reads and a TCP listener whose
/// connections are accepted and left silent (at most `MAX_SILENT_HELD`; more are closed).
/// Kept open until dropped.
pub struct SilentDns {
    addr: SocketAddr,
    _udp: UdpSocket,
    task: JoinHandle<()>,
}

impl SilentDns {
    pub async fn start(bind: SocketAddr) -> io::Result<SilentDns> {
        check_loopback(bind.ip())?;
        let (udp, tcp) = bind_pair(bind).await?;
        let addr = udp.local_addr()?;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = tcp.accept().await {
                if held.len() < MAX_SILENT_HELD {
                    held.push(s);
                }
            }
        });
        Ok(SilentDns {
            addr,
            _udp: udp,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for SilentDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A zone's text: `$ORIGIN`, `$TTL`, SOA and NS, then `body` (names relative to the origin
/// allowed).
pub fn zone_text(origin: &str, body: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 60\n\
         @ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n\
         @ IN NS ns.{origin}.\n{body}\n"
    )
}

/// A UDP socket and a TCP listener on the same address and port. With port 0 the UDP port is
/// the system's choice, and its TCP twin may already be taken (UDP and TCP ports are separate
/// spaces): try a few other UDP ports before giving up.
async fn bind_pair(bind: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    const ATTEMPTS: usize = 20;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let udp = UdpSocket::bind(bind).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if bind.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free port pair")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_and_bounded() {
        let z = zone_text("contoso.test", "@ MX 10 mx\nmx A 127.0.0.1");
        assert!(
            DnsServer::start("0.0.0.0:0".parse().unwrap(), std::slice::from_ref(&z), &[])
                .await
                .is_err()
        );
        assert!(SilentDns::start("[::1]:0".parse().unwrap()).await.is_err());
        let many = vec![z.clone(); MAX_ZONES + 1];
        assert!(DnsServer::start("127.0.0.1:0".parse().unwrap(), &many, &[])
            .await
            .is_err());
        assert!(DnsServer::start(
            "127.0.0.1:0".parse().unwrap(),
            &["not a zone".to_string()],
            &[]
        )
        .await
        .is_err());
        let s = DnsServer::start("127.0.0.1:0".parse().unwrap(), &[z], &[])
            .await
            .unwrap();
        assert_ne!(s.addr().port(), 0);
    }
}
