//! The lab's DNS server (hickory-server, in process): zones from zone-file text on UDP and TCP
//! of one 127.0.0.0/8 address and port, names that answer SERVFAIL, and a server that never
//! answers (`SilentDns`, for DNS timeouts). The lab and the integration tests use the same one.
//!
//! Bounds: at most `MAX_ZONES` zones of at most `MAX_ZONE_TEXT` bytes each; a TCP connection
//! that sends no request for 5 s is closed (hickory); the silent server holds at most
//! `MAX_SILENT_HELD` connections. Only 127.0.0.0/8 is served.

use crate::check_loopback;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::dnssec::crypto::Ed25519SigningKey;
use hickory_server::proto::dnssec::rdata::DNSKEY;
use hickory_server::proto::dnssec::{DnssecSigner, SigningKey};
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
        let zones: Vec<(String, Signing)> = zones
            .iter()
            .map(|z| (z.clone(), Signing::Unsigned))
            .collect();
        DnsServer::serve(bind, Handler::new(&zones, servfail, None)?).await
    }

    /// Serves `zones` as `start` does, each signed as its `Signing` says with one Ed25519 key
    /// made now. Returns the server and its trust anchor: a DNSKEY line (zone-file form) per
    /// signed zone, the form `--dnssec-trust-anchor` reads.
    pub async fn start_signed(
        bind: SocketAddr,
        zones: &[(String, Signing)],
    ) -> io::Result<(DnsServer, String)> {
        let keys = LabKeys::new()?;
        let handler = Handler::new(zones, &[], Some(&keys))?;
        let anchor = handler.anchor.clone();
        Ok((DnsServer::serve(bind, handler).await?, anchor))
    }

    async fn serve(bind: SocketAddr, handler: Handler) -> io::Result<DnsServer> {
        check_loopback(bind.ip())?;
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

/// How `DnsServer::start_signed` publishes a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// No DNSKEY, no RRSIG: DNSSEC-insecure once the validator sees no key (RFC 4033 5).
    Unsigned,
    /// Signed with the lab key, which the trust anchor names: secure.
    Signed,
    /// Signed with another key while the trust anchor names the lab key for this zone: every
    /// signature fails to chain to the anchor, so the answers are bogus (RFC 4033 5).
    WrongKey,
}

/// The anchored key and the wrong one, as PKCS#8 (a signer is made per zone from them).
struct LabKeys {
    good: Vec<u8>,
    wrong: Vec<u8>,
}

impl LabKeys {
    fn new() -> io::Result<LabKeys> {
        let make = || {
            Ed25519SigningKey::generate_pkcs8()
                .map(|k| k.secret_pkcs8_der().to_vec())
                .map_err(|e| bad(format!("DNSSEC key: {e}")))
        };
        Ok(LabKeys {
            good: make()?,
            wrong: make()?,
        })
    }

    fn key(pkcs8: &[u8]) -> io::Result<Ed25519SigningKey> {
        Ed25519SigningKey::from_pkcs8(&pkcs8.to_vec().into())
            .map_err(|e| bad(format!("DNSSEC key: {e}")))
    }

    fn dnskey(pkcs8: &[u8]) -> io::Result<DNSKEY> {
        let public = Self::key(pkcs8)?
            .to_public_key()
            .map_err(|e| bad(format!("DNSSEC key: {e}")))?;
        Ok(DNSKEY::from_key(&public))
    }

    /// Adds the key `signing` chooses to `zone` and signs it (NSEC for denials).
    fn sign(
        &self,
        zone: &mut InMemoryZoneHandler,
        origin: &Name,
        signing: Signing,
    ) -> io::Result<()> {
        let pkcs8 = match signing {
            Signing::Unsigned => return Ok(()),
            Signing::Signed => &self.good,
            Signing::WrongKey => &self.wrong,
        };
        let signer = DnssecSigner::new(
            Self::dnskey(pkcs8)?,
            Box::new(Self::key(pkcs8)?),
            origin.clone(),
            SIGNATURE_VALIDITY,
        );
        zone.add_zone_signing_key_mut(signer)
            .and_then(|()| zone.secure_zone_mut())
            .map_err(|e| bad(format!("signing {origin}: {e}")))
    }

    /// The trust-anchor line for `origin`: always the good key.
    fn anchor(&self, origin: &Name) -> io::Result<String> {
        Ok(format!(
            "{origin} IN DNSKEY {}\n",
            Self::dnskey(&self.good)?
        ))
    }
}

/// RRSIG validity of the lab's signatures (a test is over long before).
const SIGNATURE_VALIDITY: Duration = Duration::from_secs(86400);

/// The zones, and the names that fail.
pub struct Handler {
    catalog: Catalog,
    servfail: Vec<LowerName>,
    /// The trust anchor of the signed zones (empty when none is).
    anchor: String,
}

impl Handler {
    fn new(
        zones: &[(String, Signing)],
        servfail: &[String],
        keys: Option<&LabKeys>,
    ) -> io::Result<Handler> {
        if zones.len() > MAX_ZONES || servfail.len() > MAX_SERVFAIL_NAMES {
            return Err(bad(format!(
                "at most {MAX_ZONES} zones and {MAX_SERVFAIL_NAMES} SERVFAIL names"
            )));
        }
        let mut catalog = Catalog::new();
        let mut anchor = String::new();
        for (text, signing) in zones {
            if text.len() > MAX_ZONE_TEXT {
                return Err(bad(format!("a zone is over {MAX_ZONE_TEXT} bytes")));
            }
            let (origin, records) = Parser::new(text.as_str(), None, None)
                .parse()
                .map_err(|e| bad(format!("zone does not parse: {e}\n{text}")))?;
            let signed = *signing != Signing::Unsigned;
            let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
                origin.clone(),
                records,
                ZoneType::Primary,
                AxfrPolicy::Deny,
                signed.then_some(NxProofKind::Nsec),
            )
            .map_err(|e| bad(format!("zone {origin}: {e}")))?;
            if let (Some(keys), true) = (keys, signed) {
                keys.sign(&mut zone, &origin, *signing)?;
                anchor.push_str(&keys.anchor(&origin)?);
            }
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
        Ok(Handler {
            catalog,
            servfail,
            anchor,
        })
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
