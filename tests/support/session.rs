//! The probe engine's options and results as the scripted-server tests use them: one
//! endpoint named `NAME` on the scripted server's address, a Postfix-like greeting, QUIT.

use super::scripted::{ehlo_reply, line, Step};
use mxtrace_core::probe::{self, ProbeOptions, StartTls};
use mxtrace_knowledge::PathContext;
use mxtrace_net::tls::{TlsOptions, VerifyMode};
use mxtrace_proto::model::{ProbeReport, Stage, StageRecord};
use std::net::SocketAddr;
use std::time::Duration;

pub const NAME: &str = "mx.contoso.test";

pub fn opts(addr: SocketAddr) -> ProbeOptions {
    ProbeOptions {
        host: NAME.to_string(),
        port: addr.port(),
        addrs: Some(vec![addr.ip()]),
        starttls: StartTls::Auto,
        implicit_tls: false,
        tls: TlsOptions {
            verify: VerifyMode::Report,
            ca_file: None,
            client_cert: None,
            client_key: None,
            classic_groups: false,
            dane: Vec::new(),
        },
        tls_name: None,
        ehlo: Some("probe.fabrikam.test".to_string()),
        from: None,
        rcpts: Vec::new(),
        auth: None,
        data: false,
        headers: Vec::new(),
        pipelining: true,
        connect_timeout: Duration::from_secs(5),
        stage_timeout: Duration::from_secs(5),
        source: None,
        family: None,
        ctx: PathContext::default(),
        limits: None,
        probe_id: None,
        naming: mxtrace_proto::spec::Naming::Flag,
        tls_cache: None,
    }
}

pub async fn run(o: &ProbeOptions) -> ProbeReport {
    probe::probe(o).await.expect("tls config")
}

pub fn stages(r: &ProbeReport) -> Vec<Stage> {
    r.stages.iter().map(|s| s.stage).collect()
}

pub fn stage(r: &ProbeReport, st: Stage) -> &StageRecord {
    r.stages
        .iter()
        .find(|s| s.stage == st)
        .unwrap_or_else(|| panic!("no {st} stage in {:?}", stages(r)))
}

pub fn greeting(caps: &[&str]) -> Vec<Step> {
    vec![
        line(&format!("220 {NAME} ESMTP Postfix")),
        Step::Expect("EHLO probe.fabrikam.test".into()),
        ehlo_reply(NAME, caps),
    ]
}

pub fn quit() -> Vec<Step> {
    vec![
        Step::Expect("QUIT".into()),
        line("221 2.0.0 Bye"),
        Step::Close,
    ]
}
