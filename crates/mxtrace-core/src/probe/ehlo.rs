//! EHLO, falling back to HELO when the server does not know EHLO (RFC 5321 4.1.4), before and
//! after TLS. The capabilities it returns drive STARTTLS, AUTH and pipelining.

use super::session::{Answer, ProbeSession};
use mxtrace_knowledge as knowledge;
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::ehlo::Capabilities;
use std::net::IpAddr;

impl ProbeSession<'_> {
    /// EHLO at `stage` (Ehlo or EhloTls). None when the session cannot go on (QUIT sent).
    pub(super) async fn ehlo(&mut self, stage: Stage) -> Option<Capabilities> {
        let name = self.ehlo_name();
        let cmd = format!("EHLO {name}");
        let reply = match self.command(stage, &cmd, &cmd).await {
            Answer::Expected(r) => r,
            Answer::Closed => return None,
            Answer::Other(r) => {
                // 500/502 (unknown command) or another 5xx: an old server.
                if r.first_digit() == 5 && stage == Stage::Ehlo {
                    return self.helo(&name).await;
                }
                self.quit().await;
                return None;
            }
        };
        let idx = self.log.last();
        let caps = Capabilities::parse(&reply);
        if let Some(obs) = knowledge::observe_ehlo(&reply) {
            let note = format!(
                "EHLO keywords masked ({}): a firewall inspecting SMTP (e.g. Cisco ASA/PIX \
                 'inspect esmtp') is removing extensions such as STARTTLS",
                caps.masked_keywords().join(", ")
            );
            self.log.observe(idx, obs, note);
        }
        if stage == Stage::Ehlo {
            self.caps.before_tls = Some(caps.clone());
        } else {
            self.caps.after_tls = Some(caps.clone());
        }
        Some(caps)
    }

    async fn helo(&mut self, name: &str) -> Option<Capabilities> {
        // Superseded by HELO; the verdict passes over it when HELO follows.
        let idx = self.log.last();
        self.log.note(idx, "EHLO refused: falling back to HELO");
        let cmd = format!("HELO {name}");
        match self.command(Stage::Helo, &cmd, &cmd).await {
            Answer::Expected(_) => {
                let caps = Capabilities::default();
                self.caps.before_tls = Some(caps.clone());
                Some(caps)
            }
            Answer::Other(_) => {
                self.quit().await;
                None
            }
            Answer::Closed => None,
        }
    }

    pub(super) fn ehlo_name(&self) -> String {
        if let Some(n) = &self.opts.ehlo {
            return n.clone();
        }
        if let Some(h) = local_fqdn() {
            return h;
        }
        // RFC 5321 4.1.4: without a domain name, the client sends its address literal.
        match self.local.map(|l| l.ip()) {
            Some(IpAddr::V4(ip)) => format!("[{ip}]"),
            Some(IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
            None => "[127.0.0.1]".to_string(),
        }
    }
}

/// This machine's name when it is a fully qualified domain name.
fn local_fqdn() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (name.contains('.') && !name.ends_with('.') && name.len() <= 253).then(|| name.to_string())
}
