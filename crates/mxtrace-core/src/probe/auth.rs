//! AUTH (RFC 4954): PLAIN in one line, LOGIN over two 334 challenges, XOAUTH2 and OAUTHBEARER
//! (RFC 7628) with an OAuth 2.0 access token in one line. Credentials never leave in clear
//! unless asked, and never reach the transcript. A server that refuses a token answers with
//! an error challenge (334, base64 JSON): it is decoded into the transcript and the
//! diagnosis, and answered as the mechanism requires, after which the server sends its 5xx.

use super::expect::{self, Fit};
use super::session::{Answer, ProbeSession};
use super::{AuthMech, AuthOptions, Credential};
use base64::Engine;
use mxtrace_knowledge::Observation;
use mxtrace_net::conn::ConnError;
use mxtrace_proto::model::{ErrorKind, Stage};
use mxtrace_proto::sasl;
use mxtrace_proto::secret::REDACTED;
use mxtrace_proto::smtp::ehlo::Capabilities;
use mxtrace_proto::smtp::reply::Reply;
use mxtrace_proto::spec::Field;
use tokio::time::Instant;

/// Each step of an exchange: (on the wire, in the transcript).
type Steps = Vec<(String, String)>;

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
        let Some(steps) = self.steps(&auth, mech) else {
            return false;
        };
        let started = Instant::now();
        let (sent, challenges, result) = self.auth_exchange(steps).await;
        let answer = self.settle(Stage::Auth, sent, started, result);
        let idx = self.log.last();
        for c in challenges {
            let text = c.split_once(' ').map_or("", |(_, t)| t);
            match sasl::decode_error_challenge(text).filter(|_| mech.is_oauth()) {
                Some(e) => {
                    self.log.note(
                        idx,
                        format!("challenge: {c} (error status, decoded: {})", e.json),
                    );
                    self.log.challenges.push((idx, e));
                }
                None => self.log.note(idx, format!("challenge: {c}")),
            }
        }
        match answer {
            Answer::Expected(_) => {
                self.basic_auth_finding(mech, idx);
                true
            }
            Answer::Other(r) if expect::fit(Stage::Auth, &r) == Fit::Continue => {
                let msg = "the server asked for more than the mechanism sends".to_string();
                self.log.mark_error(idx, ErrorKind::Protocol, msg);
                false
            }
            _ => false,
        }
    }

    /// What each step sends and shows; None (the stage recorded) when there is no token.
    fn steps(&mut self, auth: &AuthOptions, mech: AuthMech) -> Option<Steps> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let password = match &auth.credential {
            Credential::Password(p) => Some(p),
            Credential::OAuth(_) => None,
        };
        match (mech, password) {
            (AuthMech::Plain, Some(p)) => Some(vec![(
                format!(
                    "AUTH PLAIN {}",
                    b64(&format!("\0{}\0{}", auth.user, p.expose()))
                ),
                format!("AUTH PLAIN {REDACTED}"),
            )]),
            // The LOGIN draft (draft-murchison-sasl-login): 334 for the user name, then for
            // the password.
            (AuthMech::Login, Some(p)) => Some(vec![
                ("AUTH LOGIN".to_string(), "AUTH LOGIN".to_string()),
                (b64(&auth.user), b64(&auth.user)),
                (b64(p.expose()), REDACTED.to_string()),
            ]),
            _ => self.oauth_steps(auth, mech),
        }
    }

    /// The initial response with the token, then the answer to an error challenge.
    fn oauth_steps(&mut self, auth: &AuthOptions, mech: AuthMech) -> Option<Steps> {
        let token = match self.token.take() {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                let msg = format!("no OAuth access token, so no AUTH was sent: {e}");
                self.fail_without_reply(Stage::Auth, Vec::new(), ErrorKind::Auth, msg);
                return None;
            }
            None => {
                let msg = format!("{} needs an OAuth access token", mech.sasl_name());
                self.fail_without_reply(Stage::Auth, Vec::new(), ErrorKind::Auth, msg);
                return None;
            }
        };
        let host = self
            .opts
            .sni_name()
            .unwrap_or_else(|| self.opts.host.clone());
        let ir = sasl::initial_response(mech, &auth.user, &host, self.opts.port, &token)?;
        let name = mech.sasl_name();
        let answer = sasl::error_response(mech).to_string();
        Some(vec![
            (
                format!("AUTH {name} {}", ir.expose()),
                format!("AUTH {name} {REDACTED}"),
            ),
            (answer.clone(), answer),
        ])
    }

    /// The mechanism to use: the one asked for, else for a password PLAIN when offered, else
    /// LOGIN; for a token XOAUTH2 when offered, else OAUTHBEARER.
    fn mechanism(&mut self, auth: &AuthOptions, caps: &Capabilities) -> Option<AuthMech> {
        let offered = &caps.auth;
        let oauth = matches!(auth.credential, Credential::OAuth(_));
        let preference: &[AuthMech] = if oauth {
            &[AuthMech::Xoauth2, AuthMech::OAuthBearer]
        } else {
            &[AuthMech::Plain, AuthMech::Login]
        };
        let found = auth.mech.or_else(|| {
            preference.iter().copied().find(|m| {
                offered
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(m.sasl_name()))
            })
        });
        if found.is_some() {
            return found;
        }
        let msg = if offered.is_empty() {
            let when = if !self.encrypted() && caps.starttls {
                "before STARTTLS"
            } else {
                "on this port"
            };
            format!("the server does not offer AUTH ({when}): no credentials were sent")
        } else {
            let supported: Vec<&str> = preference.iter().map(|m| m.sasl_name()).collect();
            format!(
                "the server offers no mechanism mxtrace supports for {} (offered: {}; \
                 supported: {})",
                if oauth {
                    "an OAuth token"
                } else {
                    "a password"
                },
                offered.join(" "),
                supported.join(", ")
            )
        };
        self.fail_without_reply(Stage::Auth, Vec::new(), ErrorKind::Auth, msg);
        None
    }

    /// A password accepted by Exchange Online: basic authentication for SMTP AUTH is being
    /// retired there (a finding and a warning, not a failure).
    fn basic_auth_finding(&mut self, mech: AuthMech, idx: usize) {
        if mech.is_oauth() {
            return;
        }
        let banner = self
            .log
            .stages
            .iter()
            .find(|s| s.stage == Stage::Banner)
            .and_then(|s| s.reply.as_ref());
        let ehlo = self
            .caps
            .after_tls
            .as_ref()
            .or(self.caps.before_tls.as_ref());
        if mxtrace_knowledge::is_exchange_online_submission(&self.opts.host, banner, ehlo) {
            let note = mxtrace_knowledge::BASIC_AUTH_RETIRING;
            self.log.observe(idx, Observation::BasicAuthRetiring, note);
            self.warnings.push(note.to_string());
        }
    }

    /// Sends each step while the server answers with a continuation; returns the lines as
    /// shown, the challenges, and the last reply.
    async fn auth_exchange(
        &mut self,
        steps: Steps,
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
