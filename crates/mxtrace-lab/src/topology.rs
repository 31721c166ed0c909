//! The lab's topology: the four delivery scenarios (README "Scenarios") on consecutive loopback
//! addresses sharing one port (a trace takes one `--port`), the zones that route them, and the
//! common root causes of stopped mail flow (ARCHITECTURE.md "Sources") as faults,
//! each with the scenario and hop where the runbooks put it and what mxtrace must report there.
//!
//! | offset | endpoint | role | plays |
//! |---|---|---|---|
//! | +0 | DNS | hickory-server, UDP and TCP | every zone below |
//! | +1 | `DM3NAM03FT051.mail.protection.outlook.com` | EOP front end | A hop 1, B hop 2 |
//! | +2 | `mail.contoso-hybrid.test` | on-premises Exchange | B hop 1 (MX), D hop 1 (smart host) |
//! | +3 | `mx.fabrikam.test` | third-party Postfix | C hop 1, D hop 2 |
//!
//! The EOP names use the real suffix `.mail.protection.outlook.com` so that scenario detection
//! works as it does on the internet; they resolve only through the lab's own DNS, to 127/8.
//! No PTR zones: hickory's resolver answers every 127.0.0.0/8 PTR itself (`localhost.`,
//! RFC 6761), so a lab address always shows `PTR localhost`.

use crate::check_loopback;
use crate::dns::{zone_text, DnsServer};
use crate::pki::LabPki;
use crate::smtp::{Blackhole, Fault, Role, RoleConfig, RoleServer, RunningServer};
use mxtrace_knowledge::{tenant_routing_domain, Category, Layer, Scenario};
use mxtrace_proto::spec::{Field, Naming, RunSetting, Suggestion};
use serde::Serialize;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::net::TcpSocket;

/// The first address of the lab when none is given.
pub const DEFAULT_BASE: Ipv4Addr = Ipv4Addr::new(127, 0, 25, 1);
/// The Microsoft 365 tenant (`--tenant`): its routing domain is what
/// `diagnose::tenant_routing_domain` computes, `contoso.mail.onmicrosoft.com`.
pub const TENANT: &str = "contoso";
/// Scenario A: hosted in Office 365, MX on EOP.
pub const DOMAIN_CLOUD: &str = "contoso.test";
/// Scenarios B and D: hybrid, MX on-premises.
pub const DOMAIN_HYBRID: &str = "contoso-hybrid.test";
/// Scenarios C and D: the third party.
pub const DOMAIN_THIRD_PARTY: &str = "fabrikam.test";
pub const EOP_FRONT_END: &str = "DM3NAM03FT051.mail.protection.outlook.com";
pub const EOP_MX_CLOUD: &str = "contoso-test.mail.protection.outlook.com";
pub const ONPREM_HOST: &str = "mail.contoso-hybrid.test";
pub const THIRD_PARTY_HOST: &str = "mx.fabrikam.test";
/// The MX `wrong-mx` publishes for contoso.test: the on-premises server it was moved away from.
pub const STALE_MX: &str = "mail.contoso.test";
/// The certificate name EOP presents when it connects out; the on-premises receive connector
/// for Office 365 relays for it (scenario D hop 1).
pub const EOP_CLIENT_NAME: &str = "mail.protection.outlook.com";
/// EHLO names of the senders in each scenario.
pub const EOP_OUTBOUND_EHLO: &str = "NAM12-BN8-obe.outbound.protection.outlook.com";
pub const THIRD_PARTY_SENDER_EHLO: &str = "server.fabrikam.test";
/// The one mailbox of every domain.
pub const USER: &str = "user";

/// Attempts at finding a port free on every lab address.
const PORT_ATTEMPTS: usize = 50;

/// One address of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Dns,
    Eop,
    OnPrem,
    ThirdParty,
}

impl Endpoint {
    pub const ALL: [Endpoint; 4] = [
        Endpoint::Dns,
        Endpoint::Eop,
        Endpoint::OnPrem,
        Endpoint::ThirdParty,
    ];
    const SMTP: [Endpoint; 3] = [Endpoint::Eop, Endpoint::OnPrem, Endpoint::ThirdParty];

    fn offset(self) -> u32 {
        match self {
            Endpoint::Dns => 0,
            Endpoint::Eop => 1,
            Endpoint::OnPrem => 2,
            Endpoint::ThirdParty => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Dns => "DNS",
            Endpoint::Eop => "EOP front end",
            Endpoint::OnPrem => "on-premises Exchange",
            Endpoint::ThirdParty => "third-party Postfix",
        }
    }

    /// Where in the scenarios it sits.
    pub fn plays(self) -> &'static str {
        match self {
            Endpoint::Dns => "every zone of the lab",
            Endpoint::Eop => "A hop 1, B hop 2",
            Endpoint::OnPrem => "B hop 1 (MX), D hop 1 (smart host)",
            Endpoint::ThirdParty => "C hop 1, D hop 2",
        }
    }

    fn role(self) -> Option<Role> {
        match self {
            Endpoint::Dns => None,
            Endpoint::Eop => Some(Role::EopFrontEnd),
            Endpoint::OnPrem => Some(Role::OnPremExchange),
            Endpoint::ThirdParty => Some(Role::ThirdPartyPostfix),
        }
    }
}

/// The runbooks' root causes the lab can play, one flag each (`--fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabFault {
    ConnectorOffline,
    FirewallDrop,
    WrongMx,
    TransportRule,
    RecipientNotProvisioned,
    TlsRequired,
    CertExpired,
    CertWrongName,
    IpBlocklisted,
    Throttling,
    DirsyncStale,
    Attribution,
}

impl LabFault {
    /// The flag's name (`connector-offline`).
    pub fn name(self) -> &'static str {
        match self {
            LabFault::ConnectorOffline => "connector-offline",
            LabFault::FirewallDrop => "firewall-drop",
            LabFault::WrongMx => "wrong-mx",
            LabFault::TransportRule => "transport-rule",
            LabFault::RecipientNotProvisioned => "recipient-not-provisioned",
            LabFault::TlsRequired => "tls-required",
            LabFault::CertExpired => "cert-expired",
            LabFault::CertWrongName => "cert-wrong-name",
            LabFault::IpBlocklisted => "ip-blocklisted",
            LabFault::Throttling => "throttling",
            LabFault::DirsyncStale => "dirsync-stale",
            LabFault::Attribution => "attribution",
        }
    }

    pub fn spec(self) -> Option<&'static FaultSpec> {
        FAULTS.iter().find(|f| f.fault == self)
    }
}

impl std::fmt::Display for LabFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a fault changes in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing listens on the endpoint's address: connections are refused.
    Refused,
    /// SYNs to the endpoint are dropped: connections time out (`smtp::Blackhole`).
    Dropped,
    /// The endpoint's SMTP server plays this fault.
    Smtp(Fault),
    /// contoso.test's MX points at `STALE_MX` (the on-premises server), not at EOP.
    WrongMx,
}

/// How the client side of a case differs from the scenario's normal run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    Normal,
    /// `--data`: the fault shows only on the message (transport rules run at end of data).
    Data,
    /// `--starttls never`: a sender without TLS configured.
    NoStartTls,
}

/// Where a fault shows and what mxtrace must say about it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultCase {
    pub scenario: Scenario,
    pub hop: u8,
    pub client: Client,
    pub category: Category,
    pub layer: Layer,
}

/// One fault: the runbooks' name for it, what the lab does, and where it shows.
#[derive(Debug)]
pub struct FaultSpec {
    pub fault: LabFault,
    /// The root cause as mail-flow runbooks name it.
    pub runbook: &'static str,
    pub effects: &'static [(Endpoint, Effect)],
    /// What the lab does, in words (docs/lab.md, `lab serve`, the demo); `{setting}` stands
    /// for `setting`, worded as the demo's command line passes it (`lab_does()`).
    lab_does: &'static str,
    setting: Option<Suggestion>,
    pub cases: &'static [FaultCase],
}

impl FaultSpec {
    /// What the lab does, in words.
    pub fn lab_does(&self) -> String {
        match self.setting {
            Some(s) => self
                .lab_does
                .replace("{setting}", &s.word(Naming::Flag).to_string()),
            None => self.lab_does.to_string(),
        }
    }
}

const fn case(
    scenario: Scenario,
    hop: u8,
    client: Client,
    category: Category,
    layer: Layer,
) -> FaultCase {
    FaultCase {
        scenario,
        hop,
        client,
        category,
        layer,
    }
}

/// The sender that does not use TLS (`Client::NoStartTls`).
const NO_STARTTLS: Suggestion = Field::StartTls.set_to("never");

use Category as C;
use Client::{Data, NoStartTls, Normal};
use Endpoint::{Eop, OnPrem, ThirdParty};
use Layer as L;
use Scenario::{A, B, D};

/// The faults, where the runbooks put them, and the category and layer mxtrace reports
/// there (checked by `mxtrace demo` and tests/lab.rs).
#[rustfmt::skip]
pub static FAULTS: &[FaultSpec] = &[
    FaultSpec { fault: LabFault::ConnectorOffline, runbook: "Connector offline: the on-premises mail server is down",
        effects: &[(OnPrem, Effect::Refused)],
        setting: None, lab_does: "nothing listens on the on-premises Exchange address: connections are refused",
        cases: &[case(B, 1, Normal, C::ConnectorOrRouting, L::Network), case(D, 1, Normal, C::ConnectorOrRouting, L::Network)] },
    FaultSpec { fault: LabFault::FirewallDrop, runbook: "Network/firewall block: telnet to EOP on 25 fails from the hybrid server",
        effects: &[(Eop, Effect::Dropped)],
        setting: None, lab_does: "SYNs to the EOP front end are dropped: connections time out",
        cases: &[case(B, 2, Normal, C::ConnectorOrRouting, L::Network)] },
    FaultSpec { fault: LabFault::WrongMx, runbook: "Wrong MX records: MX not pointing to mail.protection.outlook.com",
        effects: &[(Endpoint::Dns, Effect::WrongMx)],
        setting: None, lab_does: "contoso.test's MX is mail.contoso.test, the on-premises server, which no longer accepts the domain",
        cases: &[case(A, 1, Normal, C::RelayDenied, L::Connector)] },
    FaultSpec { fault: LabFault::TransportRule, runbook: "Transport rule rejecting all",
        effects: &[(Eop, Effect::Smtp(Fault::TransportRuleRejectAll))],
        setting: Some(Field::Data.on()), lab_does: "EOP rejects every message at end of data (550 5.7.1 TRANSPORT.RULES.RejectMessage); seen with {setting}",
        cases: &[case(A, 1, Data, C::PolicyOrTransportRule, L::Policy)] },
    FaultSpec { fault: LabFault::RecipientNotProvisioned, runbook: "Mailbox not licensed/provisioned",
        effects: &[(Eop, Effect::Smtp(Fault::RecipientNotProvisioned)), (ThirdParty, Effect::Smtp(Fault::RecipientNotProvisioned))],
        setting: None, lab_does: "EOP answers 550 5.4.1 for the mailbox, the third party 550 5.1.1",
        cases: &[case(A, 1, Normal, C::RecipientUnknown, L::Recipient), case(Scenario::C, 1, Normal, C::RecipientUnknown, L::Recipient)] },
    FaultSpec { fault: LabFault::TlsRequired, runbook: "550 5.7.1 TLS required",
        effects: &[(ThirdParty, Effect::Smtp(Fault::TlsRequired))],
        setting: Some(NO_STARTTLS), lab_does: "the third party refuses MAIL before STARTTLS (530 5.7.0); the sender does not use TLS ({setting})",
        cases: &[case(Scenario::C, 1, NoStartTls, C::TlsRequired, L::Tls)] },
    FaultSpec { fault: LabFault::CertExpired, runbook: "Connector certificate expiry",
        effects: &[(OnPrem, Effect::Smtp(Fault::CertExpired))],
        setting: Some(Field::TlsVerify.set_to("strict")), lab_does: "the on-premises server presents an expired certificate; EOP's outbound connector verifies it ({setting})",
        cases: &[case(D, 1, Normal, C::TlsFailed, L::Tls)] },
    FaultSpec { fault: LabFault::CertWrongName, runbook: "The certificate name the outbound connector expects (scenario D hop 1)",
        effects: &[(OnPrem, Effect::Smtp(Fault::CertWrongName))],
        setting: None, lab_does: "the on-premises server presents a certificate for another name (mail.wrong-name.invalid)",
        cases: &[case(D, 1, Normal, C::TlsFailed, L::Tls)] },
    FaultSpec { fault: LabFault::IpBlocklisted, runbook: "Sending IP on a block list (scenario A step 3; D hop 2)",
        effects: &[(Eop, Effect::Smtp(Fault::IpBlocklisted)), (ThirdParty, Effect::Smtp(Fault::IpBlocklisted))],
        setting: None, lab_does: "EOP answers 550 5.7.606 banned sending IP; the third party rejects with a Spamhaus listing",
        cases: &[case(A, 1, Normal, C::IpBlocklisted, L::Reputation), case(D, 2, Normal, C::IpBlocklisted, L::Reputation)] },
    FaultSpec { fault: LabFault::Throttling, runbook: "Throttling (EOP 4.7.500-699)",
        effects: &[(Eop, Effect::Smtp(Fault::Throttling))],
        setting: None, lab_does: "EOP defers MAIL with 451 4.7.500 Server busy",
        cases: &[case(A, 1, Normal, C::ReputationOrRateLimited, L::Reputation)] },
    FaultSpec { fault: LabFault::DirsyncStale, runbook: "Directory sync stopped",
        effects: &[(Eop, Effect::Smtp(Fault::DirSyncStale))],
        setting: None, lab_does: "EOP does not know the remote routing address user@contoso.mail.onmicrosoft.com (550 5.4.1)",
        cases: &[case(B, 2, Normal, C::RecipientUnknown, L::Recipient)] },
    FaultSpec { fault: LabFault::Attribution, runbook: "Hybrid connector errors: 5.7.64 TenantAttribution",
        effects: &[(Eop, Effect::Smtp(Fault::AttributionFailure))],
        setting: None, lab_does: "EOP cannot attribute the on-premises connection to the tenant (550 5.7.64 ATTR36)",
        cases: &[case(B, 2, Normal, C::RelayDenied, L::Connector)] },
];

/// How to start a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The first of the lab's four consecutive addresses (127.0.0.0/8).
    pub base: Ipv4Addr,
    /// The port every endpoint uses; None finds one free on every address.
    pub port: Option<u16>,
    pub faults: Vec<LabFault>,
    /// Where to write the CA and client identity; None: a temporary directory removed when the
    /// lab stops.
    pub dir: Option<PathBuf>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            base: DEFAULT_BASE,
            port: None,
            faults: Vec::new(),
            dir: None,
        }
    }
}

/// What a running lab is: addresses, names, files. `lab serve --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct LabInfo {
    /// `--resolver` for the lab's DNS.
    pub dns: SocketAddr,
    /// `--port`: every SMTP endpoint listens on it.
    pub port: u16,
    pub tenant: String,
    pub tenant_routing_domain: String,
    /// `--tls-ca-file`: the lab CA.
    pub ca_file: PathBuf,
    /// EOP's outbound identity, for scenario D hop 1 (`--tls-client-cert/--tls-client-key`).
    pub eop_client_cert: PathBuf,
    pub eop_client_key: PathBuf,
    pub endpoints: Vec<EndpointInfo>,
    pub domains: Vec<DomainInfo>,
    pub faults: Vec<LabFault>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointInfo {
    pub endpoint: Endpoint,
    pub role: &'static str,
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
    pub plays: &'static str,
    /// `serving`, `refused` (nothing listens) or `dropped` (SYNs dropped).
    pub state: &'static str,
    pub faults: Vec<LabFault>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DomainInfo {
    pub domain: String,
    pub mx: String,
    pub scenarios: &'static str,
}

/// A running lab; stops (and removes its temporary files) when dropped or shut down.
pub struct Lab {
    info: LabInfo,
    running: Running,
    temp_dir: Option<PathBuf>,
}

/// What keeps the endpoints alive.
struct Running {
    _dns: DnsServer,
    servers: Vec<RunningServer>,
    _holes: Vec<Blackhole>,
    /// Bound, not listening: connections are refused and no one else can take the port.
    _reserved: Vec<TcpSocket>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The address of `ep` in a lab starting at `base`.
pub fn endpoint_ip(base: Ipv4Addr, ep: Endpoint) -> io::Result<Ipv4Addr> {
    let ip = u32::from(base)
        .checked_add(ep.offset())
        .map(Ipv4Addr::from)
        .ok_or_else(|| invalid(format!("no room for the lab after {base}")))?;
    check_loopback(IpAddr::V4(ip))?;
    Ok(ip)
}

/// The EOP MX name Microsoft derives from a domain (`contoso.mail.onmicrosoft.com` ->
/// `contoso-mail-onmicrosoft-com.mail.protection.outlook.com`).
fn eop_mx_for(domain: &str) -> String {
    format!("{}.mail.protection.outlook.com", domain.replace('.', "-"))
}

fn mailbox(domain: &str) -> String {
    format!("{USER}@{domain}")
}

/// The `trace` a scenario's sender runs: the domain, how the scenario is named (B by its
/// tenant), the sender's EHLO name, and the sender's and recipient's domains.
fn trace_args(scenario: Scenario) -> Vec<String> {
    let (domain, named, ehlo, from, rcpt) = match scenario {
        Scenario::A => (
            DOMAIN_CLOUD,
            [RunSetting::Scenario.flag(), "A"],
            THIRD_PARTY_SENDER_EHLO,
            DOMAIN_THIRD_PARTY,
            DOMAIN_CLOUD,
        ),
        Scenario::B => (
            DOMAIN_HYBRID,
            [RunSetting::Tenant.flag(), TENANT],
            THIRD_PARTY_SENDER_EHLO,
            DOMAIN_THIRD_PARTY,
            DOMAIN_HYBRID,
        ),
        Scenario::C => (
            DOMAIN_THIRD_PARTY,
            [RunSetting::Scenario.flag(), "C"],
            EOP_OUTBOUND_EHLO,
            DOMAIN_CLOUD,
            DOMAIN_THIRD_PARTY,
        ),
        Scenario::D => (
            DOMAIN_THIRD_PARTY,
            [RunSetting::Scenario.flag(), "D"],
            ONPREM_HOST,
            DOMAIN_HYBRID,
            DOMAIN_THIRD_PARTY,
        ),
    };
    let (from, rcpt) = (mailbox(from), mailbox(rcpt));
    let [flag, value] = named;
    strings(&[
        "trace",
        domain,
        flag,
        value,
        Field::Ehlo.flag(),
        ehlo,
        Field::From.flag(),
        &from,
        Field::Rcpt.flag(),
        &rcpt,
    ])
}

impl Lab {
    pub async fn start(opts: LabOptions) -> io::Result<Lab> {
        check_loopback(IpAddr::V4(opts.base))?;
        let mut ips = Vec::new();
        for ep in Endpoint::ALL {
            ips.push((ep, endpoint_ip(opts.base, ep)?));
        }
        let ip_of = |ep: Endpoint| {
            ips.iter()
                .find(|(e, _)| *e == ep)
                .map(|(_, ip)| *ip)
                .unwrap_or(opts.base)
        };
        let effects = effects(&opts.faults)?;
        let routing = tenant_routing_domain(TENANT)
            .ok_or_else(|| invalid(format!("tenant {TENANT:?} has no routing domain")))?;

        let pki = LabPki::new()?;
        let (dir, temp_dir) = match &opts.dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = temp_dir_path();
                (d.clone(), Some(d))
            }
        };
        let files = write_files(&dir, &pki);
        let files = match files {
            Ok(f) => f,
            Err(e) => {
                if let Some(t) = &temp_dir {
                    let _ = std::fs::remove_dir_all(t);
                }
                return Err(e);
            }
        };

        let wrong_mx = effects.iter().any(|(_, e, _)| matches!(e, Effect::WrongMx));
        let zones = zones(&routing, wrong_mx, &ip_of);
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = match opts.port {
                Some(p) => p,
                None => std::net::TcpListener::bind((ip_of(Endpoint::Dns), 0))?
                    .local_addr()?
                    .port(),
            };
            match bind_all(port, &zones, &effects, &ip_of, &pki, &routing).await {
                Ok(running) => {
                    let info = describe(port, &routing, &files, &effects, &ip_of, &opts);
                    return Ok(Lab {
                        info,
                        running,
                        temp_dir,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && opts.port.is_none() => {
                    last = Some(e)
                }
                Err(e) => {
                    if let Some(t) = &temp_dir {
                        let _ = std::fs::remove_dir_all(t);
                    }
                    return Err(e);
                }
            }
        }
        if let Some(t) = &temp_dir {
            let _ = std::fs::remove_dir_all(t);
        }
        Err(last.unwrap_or_else(|| io::Error::other("no port free on every lab address")))
    }

    pub fn info(&self) -> &LabInfo {
        &self.info
    }

    /// Stops every endpoint (waiting for the SMTP servers, at most 5 s each) and removes the
    /// temporary files.
    pub async fn shutdown(mut self) {
        for s in std::mem::take(&mut self.running.servers) {
            s.shutdown().await;
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(t) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

fn temp_dir_path() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "mxtrace-lab-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

struct Files {
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn write_files(dir: &Path, pki: &LabPki) -> io::Result<Files> {
    std::fs::create_dir_all(dir)?;
    let (chain, key) = pki.client_identity_pem(EOP_CLIENT_NAME)?;
    let files = Files {
        ca: dir.join("ca.pem"),
        client_cert: dir.join("eop-client.pem"),
        client_key: dir.join("eop-client.key"),
    };
    std::fs::write(&files.ca, pki.ca_pem())?;
    std::fs::write(&files.client_cert, chain)?;
    std::fs::write(&files.client_key, key)?;
    Ok(files)
}

type Effects = Vec<(Endpoint, Effect, LabFault)>;

/// Every fault's effects; two faults changing the same endpoint cannot both be played.
fn effects(faults: &[LabFault]) -> io::Result<Effects> {
    let mut out: Effects = Vec::new();
    for &f in faults {
        let Some(spec) = f.spec() else { continue };
        for &(ep, effect) in spec.effects {
            if let Some((_, _, other)) = out.iter().find(|(e, _, o)| *e == ep && *o != f) {
                return Err(invalid(format!(
                    "faults {other} and {f} both change the {} endpoint: run them one at a time",
                    ep.label()
                )));
            }
            if !out.iter().any(|(e, _, o)| *e == ep && *o == f) {
                out.push((ep, effect, f));
            }
        }
    }
    Ok(out)
}

fn zones(routing: &str, wrong_mx: bool, ip_of: &impl Fn(Endpoint) -> Ipv4Addr) -> Vec<String> {
    let eop = ip_of(Endpoint::Eop);
    let onprem = ip_of(Endpoint::OnPrem);
    let third = ip_of(Endpoint::ThirdParty);
    let cloud = if wrong_mx {
        format!("@ MX 10 {STALE_MX}.\nmail A {onprem}")
    } else {
        format!("@ MX 0 {EOP_MX_CLOUD}.")
    };
    let label = |host: &str| {
        host.strip_suffix(".mail.protection.outlook.com")
            .unwrap_or(host)
            .to_string()
    };
    vec![
        zone_text(
            DOMAIN_CLOUD,
            &format!("{cloud}\n@ TXT \"v=spf1 include:spf.protection.outlook.com -all\""),
        ),
        zone_text(
            DOMAIN_HYBRID,
            &format!("@ MX 10 {ONPREM_HOST}.\nmail A {onprem}"),
        ),
        zone_text(
            DOMAIN_THIRD_PARTY,
            &format!("@ MX 10 {THIRD_PARTY_HOST}.\nmx A {third}"),
        ),
        zone_text(routing, &format!("@ MX 0 {}.", eop_mx_for(routing))),
        zone_text(
            "mail.protection.outlook.com",
            &format!(
                "{} A {eop}\n{} A {eop}\n{} A {eop}",
                label(EOP_MX_CLOUD),
                label(&eop_mx_for(routing)),
                label(EOP_FRONT_END)
            ),
        ),
    ]
}

fn role_config(
    ep: Endpoint,
    role: Role,
    addr: SocketAddr,
    fault: Option<Fault>,
    pki: &LabPki,
    routing: &str,
) -> io::Result<RoleConfig> {
    let validity = Fault::cert_validity(fault);
    let (host, domains, tls) = match ep {
        Endpoint::Eop => (
            EOP_FRONT_END,
            vec![
                DOMAIN_CLOUD.to_string(),
                DOMAIN_HYBRID.to_string(),
                routing.to_string(),
            ],
            pki.server_config(
                &[
                    "*.mail.protection.outlook.com",
                    "mail.protection.outlook.com",
                ],
                validity,
            )?,
        ),
        Endpoint::OnPrem => (
            ONPREM_HOST,
            vec![DOMAIN_HYBRID.to_string()],
            // Optional client certificates: the receive connector for Office 365 attributes
            // EOP by its certificate.
            pki.server_config_with_client_auth(&[ONPREM_HOST], validity)?,
        ),
        Endpoint::Dns | Endpoint::ThirdParty => (
            THIRD_PARTY_HOST,
            vec![DOMAIN_THIRD_PARTY.to_string()],
            pki.server_config(&[THIRD_PARTY_HOST], validity)?,
        ),
    };
    let mut c = RoleConfig::new(role, addr, host);
    c.recipients = domains.iter().map(|d| mailbox(d)).collect();
    c.accepted_domains = domains;
    c.tls = Some(tls);
    if ep == Endpoint::OnPrem {
        c.relay_client_cert_name = Some(EOP_CLIENT_NAME.to_string());
    }
    c.fault = fault;
    Ok(c)
}

async fn bind_all(
    port: u16,
    zones: &[String],
    effects: &Effects,
    ip_of: &impl Fn(Endpoint) -> Ipv4Addr,
    pki: &LabPki,
    routing: &str,
) -> io::Result<Running> {
    let addr = |ep: Endpoint| SocketAddr::new(IpAddr::V4(ip_of(ep)), port);
    let dns = DnsServer::start(addr(Endpoint::Dns), zones, &[]).await?;
    let mut running = Running {
        _dns: dns,
        servers: Vec::new(),
        _holes: Vec::new(),
        _reserved: Vec::new(),
    };
    for ep in Endpoint::SMTP {
        let Some(role) = ep.role() else { continue };
        let effect = effects
            .iter()
            .find(|(e, _, _)| *e == ep)
            .map(|(_, eff, _)| *eff);
        match effect {
            Some(Effect::Refused) => {
                let s = TcpSocket::new_v4()?;
                s.bind(addr(ep))?;
                running._reserved.push(s);
            }
            Some(Effect::Dropped) => running._holes.push(Blackhole::bind(addr(ep)).await?),
            other => {
                let fault = match other {
                    Some(Effect::Smtp(f)) => Some(f),
                    _ => None,
                };
                let cfg = role_config(ep, role, addr(ep), fault, pki, routing)?;
                running.servers.push(RoleServer::start(cfg).await?);
            }
        }
    }
    Ok(running)
}

fn describe(
    port: u16,
    routing: &str,
    files: &Files,
    effects: &Effects,
    ip_of: &impl Fn(Endpoint) -> Ipv4Addr,
    opts: &LabOptions,
) -> LabInfo {
    let endpoints = endpoints(routing, effects, ip_of);
    let domains = domains(routing, effects);
    let mut faults = opts.faults.clone();
    faults.dedup();
    LabInfo {
        dns: SocketAddr::new(IpAddr::V4(ip_of(Endpoint::Dns)), port),
        port,
        tenant: TENANT.to_string(),
        tenant_routing_domain: routing.to_string(),
        ca_file: files.ca.clone(),
        eop_client_cert: files.client_cert.clone(),
        eop_client_key: files.client_key.clone(),
        endpoints,
        domains,
        faults,
    }
}

/// Each endpoint: where it listens, the names it answers for, and what its faults do to it.
fn endpoints(
    routing: &str,
    effects: &Effects,
    ip_of: &impl Fn(Endpoint) -> Ipv4Addr,
) -> Vec<EndpointInfo> {
    Endpoint::ALL
        .iter()
        .map(|&ep| {
            let mine: Vec<&(Endpoint, Effect, LabFault)> =
                effects.iter().filter(|(e, _, _)| *e == ep).collect();
            let state = match mine.first().map(|(_, e, _)| *e) {
                Some(Effect::Refused) => "refused",
                Some(Effect::Dropped) => "dropped",
                _ => "serving",
            };
            let names = match ep {
                Endpoint::Dns => vec![format!("{} (UDP and TCP)", ip_of(ep))],
                Endpoint::Eop => vec![
                    EOP_FRONT_END.to_string(),
                    EOP_MX_CLOUD.to_string(),
                    eop_mx_for(routing),
                ],
                Endpoint::OnPrem if effects.iter().any(|(_, e, _)| *e == Effect::WrongMx) => {
                    vec![ONPREM_HOST.to_string(), STALE_MX.to_string()]
                }
                Endpoint::OnPrem => vec![ONPREM_HOST.to_string()],
                Endpoint::ThirdParty => vec![THIRD_PARTY_HOST.to_string()],
            };
            EndpointInfo {
                endpoint: ep,
                role: ep.label(),
                ip: ip_of(ep),
                names,
                plays: ep.plays(),
                state,
                faults: mine.iter().map(|(_, _, f)| *f).collect(),
            }
        })
        .collect()
}

/// The lab's domains, their MX and the scenarios they play.
fn domains(routing: &str, effects: &Effects) -> Vec<DomainInfo> {
    let wrong_mx = effects.iter().any(|(_, e, _)| *e == Effect::WrongMx);
    vec![
        DomainInfo {
            domain: DOMAIN_CLOUD.to_string(),
            mx: if wrong_mx { STALE_MX } else { EOP_MX_CLOUD }.to_string(),
            scenarios: "A (third party -> Office 365)",
        },
        DomainInfo {
            domain: DOMAIN_HYBRID.to_string(),
            mx: ONPREM_HOST.to_string(),
            scenarios: "B hop 1 (third party -> hybrid); sender domain of D",
        },
        DomainInfo {
            domain: routing.to_string(),
            mx: eop_mx_for(routing),
            scenarios: "B hop 2 (on-premises -> EOP, remote routing addresses)",
        },
        DomainInfo {
            domain: DOMAIN_THIRD_PARTY.to_string(),
            mx: THIRD_PARTY_HOST.to_string(),
            scenarios: "C (Office 365 -> third party), D hop 2",
        },
    ]
}

/// A command line that runs one scenario hop against the lab: `args` say what is checked,
/// `lab_args` point mxtrace at the lab (resolver, port, CA, client identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invocation {
    pub args: Vec<String>,
    pub lab_args: Vec<String>,
}

impl Invocation {
    /// The whole command, `mxtrace` first (what clap parses).
    pub fn argv(&self) -> Vec<String> {
        std::iter::once("mxtrace".to_string())
            .chain(self.args.iter().cloned())
            .chain(self.lab_args.iter().cloned())
            .collect()
    }

    /// Ready to paste into a shell.
    pub fn shell(&self) -> String {
        self.argv()
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// What is checked, without the lab plumbing.
    pub fn short(&self) -> String {
        std::iter::once("mxtrace".to_string())
            .chain(self.args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl LabInfo {
    pub fn ip(&self, ep: Endpoint) -> Option<Ipv4Addr> {
        self.endpoints
            .iter()
            .find(|e| e.endpoint == ep)
            .map(|e| e.ip)
    }

    /// How to check `scenario` hop `hop` against this lab, as a sender in that position would.
    /// Scenario B's trace covers both hops; D hop 1 is a probe of the smart host.
    pub fn invocation(&self, scenario: Scenario, hop: u8, client: Client) -> Invocation {
        let ca = self.ca_file.display().to_string();
        let (mut args, lab_args) = match (scenario, hop) {
            (Scenario::D, 1) => (
                self.onprem_probe_args(),
                vec![
                    Field::TlsCaFile.flag().to_string(),
                    ca,
                    Field::TlsClientCert.flag().to_string(),
                    self.eop_client_cert.display().to_string(),
                    Field::TlsClientKey.flag().to_string(),
                    self.eop_client_key.display().to_string(),
                ],
            ),
            (scenario, _) => (
                trace_args(scenario),
                vec![
                    Field::Resolver.flag().to_string(),
                    self.dns.to_string(),
                    Field::Port.flag().to_string(),
                    self.port.to_string(),
                    Field::TlsCaFile.flag().to_string(),
                    ca,
                ],
            ),
        };
        let setting = match client {
            Client::Normal => None,
            Client::Data => Some(Field::Data.on()),
            Client::NoStartTls => Some(NO_STARTTLS),
        };
        if let Some(s) = setting {
            let words = s.word(Naming::Flag).to_string();
            args.extend(words.split(' ').map(str::to_string));
        }
        Invocation { args, lab_args }
    }

    /// Scenario D hop 1: EOP delivering to the on-premises server over the hybrid connector,
    /// TLS required and verified, with the connector's client certificate.
    fn onprem_probe_args(&self) -> Vec<String> {
        let target = self
            .ip(Endpoint::OnPrem)
            .map(|ip| format!("{ip}:{}", self.port))
            .unwrap_or_default();
        strings(&[
            "probe",
            &target,
            Field::TlsName.flag(),
            ONPREM_HOST,
            RunSetting::Scenario.flag(),
            "D",
            RunSetting::Hop.flag(),
            "1",
            Field::StartTls.flag(),
            "require",
            Field::TlsVerify.flag(),
            "strict",
            Field::Ehlo.flag(),
            EOP_OUTBOUND_EHLO,
            Field::From.flag(),
            &mailbox(DOMAIN_HYBRID),
            Field::Rcpt.flag(),
            &mailbox(DOMAIN_THIRD_PARTY),
        ])
    }

    /// The scenario hops to try against this lab, each once (B's trace covers both hops).
    pub fn suggested(&self) -> Vec<(Scenario, u8, Invocation)> {
        [
            (Scenario::A, 1),
            (Scenario::B, 1),
            (Scenario::C, 1),
            (Scenario::D, 1),
            (Scenario::D, 2),
        ]
        .into_iter()
        .map(|(s, h)| (s, h, self.invocation(s, h, Client::Normal)))
        .collect()
    }

    /// A swaks line for scenario A (swaks speaks to one server; DNS is not involved).
    pub fn swaks(&self) -> String {
        let eop = self
            .ip(Endpoint::Eop)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        format!(
            "swaks --server {eop}:{} --ehlo {THIRD_PARTY_SENDER_EHLO} --from {} --to {} --tls --quit-after RCPT",
            self.port,
            mailbox(DOMAIN_THIRD_PARTY),
            mailbox(DOMAIN_CLOUD)
        )
    }

    /// The human description `lab serve` prints.
    pub fn render_human(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "mxtrace lab: the four delivery scenarios on loopback (tenant {}, routing domain {})",
            self.tenant, self.tenant_routing_domain
        );
        let _ = writeln!(out, "  DNS        {} (UDP and TCP)", self.dns);
        let _ = writeln!(out, "  SMTP port  {} on every endpoint", self.port);
        let _ = writeln!(out, "  lab CA     {}", self.ca_file.display());
        let _ = writeln!(
            out,
            "  EOP client {} / {}",
            self.eop_client_cert.display(),
            self.eop_client_key.display()
        );
        let _ = writeln!(out, "\nEndpoints:");
        for e in &self.endpoints {
            let faults = if e.faults.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = e.faults.iter().map(|f| f.name()).collect();
                format!(" [fault: {}]", names.join(", "))
            };
            let _ = writeln!(
                out,
                "  {:<15} {:<21} {:<8} {}  ({}){faults}",
                e.ip.to_string(),
                e.role,
                e.state,
                e.names.join(", "),
                e.plays
            );
        }
        let _ = writeln!(out, "\nDomains:");
        for d in &self.domains {
            let _ = writeln!(out, "  {:<30} MX {:<58} {}", d.domain, d.mx, d.scenarios);
        }
        let _ = writeln!(out, "\nFaults:");
        if self.faults.is_empty() {
            let _ = writeln!(
                out,
                "  none (add --fault NAME; `mxtrace lab serve --help` lists them)"
            );
        }
        for f in &self.faults {
            if let Some(spec) = f.spec() {
                let _ = writeln!(out, "  {f}: {}", spec.lab_does());
            }
        }
        let _ = writeln!(out, "\nTry:");
        for (s, h, inv) in self.suggested() {
            let _ = writeln!(out, "  # scenario {s} hop {h}\n  {}", inv.shell());
        }
        let _ = writeln!(out, "  # the same with swaks\n  {}", self.swaks());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_a_spec_and_a_case() {
        for f in FAULTS.iter().map(|s| s.fault) {
            let spec = f.spec().unwrap();
            assert!(!spec.cases.is_empty() && !spec.effects.is_empty(), "{f}");
            assert_eq!(serde_json::to_value(f).unwrap(), f.name());
        }
    }

    #[test]
    fn faults_on_one_endpoint_conflict() {
        assert!(effects(&[LabFault::Throttling, LabFault::Attribution]).is_err());
        assert_eq!(
            effects(&[LabFault::Throttling, LabFault::ConnectorOffline])
                .unwrap()
                .len(),
            2
        );
        assert!(effects(&[LabFault::Throttling, LabFault::Throttling]).is_ok());
    }

    #[test]
    fn addresses_stay_in_loopback() {
        assert!(endpoint_ip(Ipv4Addr::new(127, 255, 255, 254), Endpoint::ThirdParty).is_err());
        assert!(endpoint_ip(Ipv4Addr::new(10, 0, 0, 1), Endpoint::Dns).is_err());
        assert_eq!(
            endpoint_ip(DEFAULT_BASE, Endpoint::ThirdParty).unwrap(),
            Ipv4Addr::new(127, 0, 25, 4)
        );
        assert_eq!(
            eop_mx_for("contoso.mail.onmicrosoft.com"),
            "contoso-mail-onmicrosoft-com.mail.protection.outlook.com"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("user@x.test"), "user@x.test");
    }
}
