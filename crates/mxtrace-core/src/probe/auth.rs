//! AUTH (RFC 4954): PLAIN in one line, LOGIN over two 334 challenges. Credentials never leave
//! in clear unless asked, and never reach the transcript.

use super::expect::{self, Fit};
use super::session::{Answer, ProbeSession};
use super::{AuthMech, AuthOptions};
use base64::Engine;
use mxtrace_net::conn::ConnError;
use mxtrace_proto::model::{ErrorKind, Stage};
use mxtrace_proto::secret::REDACTED;
use mxtrace_proto::smtp::ehlo::Capabilities;
use mxtrace_proto::smtp::reply::Reply;
use mxtrace_proto::spec::Field;
use tokio::time::Instant;

impl ProbeSession<'_> {
    pub(super) async fn auth(&mut self, caps: &Capabilities) -> bool {
        let Some(auth) = self.opts.auth.clone() else {
            return true;
        };
        if !self.encrypted() && !auth.allow_plaintext {
            let n = self.opts.naming;
            let msg = format!(
                "refusing to send credentials over an unencrypted connection (use {} or {}; {} \
                 overrides)",
                Field::StartTls.set_to("require").word(n),
                Field::TlsImplicit.on().word(n),
                Field::AuthPlaintext.on().word(n)
            );
            self.fail_without_reply(Stage::Auth, Vec::new(), ErrorKind::Tls, msg);
            return false;
        }
        let Some(mech) = self.mechanism(&auth, caps) else {
            return false;
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        // (on the wire, in the transcript) for each step of the exchange.
        let steps = match mech {
            AuthMech::Plain => vec![(
                format!(
                    "AUTH PLAIN {}",
                    b64(&format!("\0{}\0{}", auth.user, auth.password.expose()))
                ),
                format!("AUTH PLAIN {REDACTED}"),
            )],
            // The LOGIN draft (draft-murchison-sasl-login): 334 for the user name, then for
            // the password.
            AuthMech::Login => vec![
                ("AUTH LOGIN".to_string(), "AUTH LOGIN".to_string()),
                (b64(&auth.user), b64(&auth.user)),
                (b64(auth.password.expose()), REDACTED.to_string()),
            ],
        };
        let started = Instant::now();
        let (sent, challenges, result) = self.auth_exchange(steps).await;
        let answer = self.settle(Stage::Auth, sent, started, result);
        let idx = self.log.last();
        for c in challenges {
            self.log.note(idx, format!("challenge: {c}"));
        }
        match answer {
            Answer::Expected(_) => true,
            Answer::Other(r) if expect::fit(Stage::Auth, &r) == Fit::Continue => {
                let msg = "the server asked for more than user name and password".to_string();
                self.log.mark_error(idx, ErrorKind::Protocol, msg);
                false
            }
            _ => false,
        }
    }

    /// The mechanism to use: the one asked for, else PLAIN when offered, else LOGIN.
    fn mechanism(&mut self, auth: &AuthOptions, caps: &Capabilities) -> Option<AuthMech> {
        let offered = &caps.auth;
        let mech = match auth.mech {
            Some(m) => m,
            None if offered.iter().any(|m| m == "PLAIN") => AuthMech::Plain,
            None if offered.iter().any(|m| m == "LOGIN") => AuthMech::Login,
            None => {
                let msg = if offered.is_empty() {
                    let when = if !self.encrypted() && caps.starttls {
                        "before STARTTLS"
                    } else {
                        "on this port"
                    };
                    format!("the server does not offer AUTH ({when}): no credentials were sent")
                } else {
                    format!(
                        "the server offers no mechanism mxtrace supports (offered: {}; \
                         supported: PLAIN, LOGIN)",
                        offered.join(" ")
                    )
                };
                self.fail_without_reply(Stage::Auth, Vec::new(), ErrorKind::Auth, msg);
                return None;
            }
        };
        Some(mech)
    }

    /// Sends each step while the server answers with a continuation; returns the lines as
    /// shown, the challenges, and the last reply.
    async fn auth_exchange(
        &mut self,
        steps: Vec<(String, String)>,
    ) -> (Vec<String>, Vec<String>, Result<Reply, ConnError>) {
        let deadline = self.stage_deadline();
        let mut sent = Vec::new();
        let mut challenges = Vec::new();
        let mut result = Err(ConnError::new(ErrorKind::Protocol, "no reply"));
        for (wire, shown) in steps {
            sent.push(shown);
            result = self.exchange(&[&wire], deadline).await;
            match &result {
                Ok(r) if expect::fit(Stage::Auth, r) == Fit::Continue => {
                    challenges.push(r.lines.join(" "))
                }
                _ => break,
            }
        }
        (sent, challenges, result)
    }
}
