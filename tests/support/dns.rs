//! A DNS server for the tests, in process, on 127.0.0.1 (UDP and TCP on the same port): zones
//! from zone-file text, names that answer SERVFAIL, and a server that never answers (for
//! timeouts). Self-contained so a test file can include it with `#[path]`.

#![allow(dead_code)]

use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use hickory_server::Server;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// A running test DNS server; stops when dropped.
pub struct TestDns {
    pub addr: SocketAddr,
    _server: Server<Handler>,
}

impl TestDns {
    /// Serves `zones` (zone-file text, each with `$ORIGIN` and an SOA); queries for a name in
    /// `servfail` (any type) get SERVFAIL.
    pub async fn start(zones: &[&str], servfail: &[&str]) -> TestDns {
        let mut catalog = Catalog::new();
        for text in zones {
            let (origin, records) = Parser::new(*text, None, None)
                .parse()
                .unwrap_or_else(|e| panic!("zone does not parse: {e}\n{text}"));
            let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
                origin.clone(),
                records,
                ZoneType::Primary,
                AxfrPolicy::Deny,
            )
            .unwrap();
            catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);
        }
        let servfail = servfail
            .iter()
            .map(|n| LowerName::new(&Name::from_ascii(n).unwrap()))
            .collect();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).await.unwrap();
        let mut server = Server::new(Handler { catalog, servfail });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        TestDns {
            addr,
            _server: server,
        }
    }

    /// `--resolver` value for this server.
    pub fn resolver(&self) -> String {
        self.addr.to_string()
    }
}

pub struct Handler {
    catalog: Catalog,
    servfail: Vec<LowerName>,
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
/// connections are accepted and left silent. Kept open until dropped.
pub struct SilentDns {
    pub addr: SocketAddr,
    _udp: UdpSocket,
    task: tokio::task::JoinHandle<()>,
}

impl SilentDns {
    pub async fn start() -> SilentDns {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).await.unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = tcp.accept().await {
                held.push(s);
            }
        });
        SilentDns {
            addr,
            _udp: udp,
            task,
        }
    }

    pub fn resolver(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for SilentDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}
