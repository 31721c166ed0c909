//! SASL for OAuth 2.0 bearer tokens: the initial responses of XOAUTH2 and OAUTHBEARER
//! (RFC 7628) and the server's error challenge. Pure functions over strings, so SMTP AUTH
//! (RFC 4954) and IMAP AUTHENTICATE (RFC 9051 6.2.2, SASL-IR RFC 4959) send the same bytes.
//!
//! The responses carry the token: they are `Secret`s, base64 already, and what a transcript
//! shows in their place is `REDACTED`.

use crate::secret::Secret;
use crate::spec::AuthMech;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

/// A decoded challenge longer than this is cut (it is shown, and it came from the network).
const MAX_CHALLENGE: usize = 2048;

/// XOAUTH2 (Google's and Microsoft's documented format): `user=USER^Aauth=Bearer TOKEN^A^A`.
pub fn xoauth2(user: &str, token: &Secret) -> Secret {
    let raw = format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose());
    Secret::new(STANDARD.encode(raw))
}

/// OAUTHBEARER (RFC 7628 3.1): the GS2 header with the authorization identity (`,` and `=`
/// escaped as RFC 5801 4 says), then `host`, `port` and `auth` key/value pairs.
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    let authzid = user.replace('=', "=3D").replace(',', "=2C");
    let raw = format!(
        "n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    );
    Secret::new(STANDARD.encode(raw))
}

/// The initial response of an OAuth mechanism; None for PLAIN and LOGIN.
pub fn initial_response(
    mech: AuthMech,
    user: &str,
    host: &str,
    port: u16,
    token: &Secret,
) -> Option<Secret> {
    match mech {
        AuthMech::Xoauth2 => Some(xoauth2(user, token)),
        AuthMech::OAuthBearer => Some(oauthbearer(user, host, port, token)),
        AuthMech::Plain | AuthMech::Login => None,
    }
}

/// What the client answers to the server's error challenge, base64 as sent: XOAUTH2 wants an
/// empty response (Google's XOAUTH2 protocol page); OAUTHBEARER a single `^A` (RFC 7628
/// 3.2.3), `AQ==`. The server then ends the exchange with its failure reply.
pub fn error_response(mech: AuthMech) -> &'static str {
    match mech {
        AuthMech::OAuthBearer => "AQ==",
        _ => "",
    }
}

/// The server's error challenge (RFC 7628 3.2.2; XOAUTH2 sends the same JSON): the status
/// (`invalid_token`, `insufficient_scope`, or an HTTP status such as `401` for XOAUTH2), the
/// schemes and scope it wants, where its OpenID configuration is, and the JSON as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorChallenge {
    pub status: String,
    pub schemes: Option<String>,
    pub scope: Option<String>,
    pub openid_configuration: Option<String>,
    /// The decoded text, cut to 2 KiB.
    pub json: String,
}

#[derive(Deserialize)]
struct RawChallenge {
    status: serde_json::Value,
    schemes: Option<String>,
    scope: Option<String>,
    #[serde(rename = "openid-configuration")]
    openid_configuration: Option<String>,
}

/// Decodes the text of a 334 (SMTP) or `+` (IMAP) continuation as an error challenge: base64
/// of a JSON object with a `status`. None when it is not one.
pub fn decode_error_challenge(text: &str) -> Option<ErrorChallenge> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_CHALLENGE * 2 {
        return None;
    }
    let bytes = STANDARD.decode(text).ok()?;
    let raw: RawChallenge = serde_json::from_slice(&bytes).ok()?;
    let status = match raw.status {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut json = String::from_utf8_lossy(&bytes).into_owned();
    if json.len() > MAX_CHALLENGE {
        let mut end = MAX_CHALLENGE;
        while !json.is_char_boundary(end) {
            end -= 1;
        }
        json.truncate(end);
    }
    Some(ErrorChallenge {
        status,
        schemes: raw.schemes,
        scope: raw.scope,
        openid_configuration: raw.openid_configuration,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(s: &Secret) -> String {
        String::from_utf8(STANDARD.decode(s.expose()).unwrap()).unwrap()
    }

    #[test]
    fn initial_responses_are_the_documented_bytes() {
        let t = Secret::new("ya29.TOKEN".into());
        assert_eq!(
            decoded(&xoauth2("user@contoso.test", &t)),
            "user=user@contoso.test\x01auth=Bearer ya29.TOKEN\x01\x01"
        );
        assert_eq!(
            decoded(&oauthbearer("a,b=c@contoso.test", "mx.contoso.test", 587, &t)),
            "n,a=a=2Cb=3Dc@contoso.test,\x01host=mx.contoso.test\x01port=587\x01auth=Bearer ya29.TOKEN\x01\x01"
        );
        assert!(initial_response(AuthMech::Plain, "u", "h", 1, &t).is_none());
        assert_eq!(
            STANDARD
                .decode(error_response(AuthMech::OAuthBearer))
                .unwrap(),
            b"\x01"
        );
        assert_eq!(error_response(AuthMech::Xoauth2), "");
        assert_eq!(format!("{:?}", xoauth2("u", &t)), "<redacted>");
    }

    #[test]
    fn error_challenges_decode() {
        // Dovecot 2.3's XOAUTH2 and OAUTHBEARER challenges (tests/support/oauth/README.md).
        let c = decode_error_challenge(
            "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=",
        )
        .unwrap();
        assert_eq!(c.status, "401");
        assert_eq!(c.schemes.as_deref(), Some("bearer"));
        assert_eq!(c.scope.as_deref(), Some("mail"));
        assert_eq!(
            c.json,
            r#"{"status":"401","schemes":"bearer","scope":"mail"}"#
        );
        let c = decode_error_challenge("eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=").unwrap();
        assert_eq!((c.status.as_str(), c.scope), ("invalid_token", None));
        assert!(
            decode_error_challenge("VXNlcm5hbWU6").is_none(),
            "LOGIN's Username:"
        );
        assert!(decode_error_challenge("").is_none());
        assert!(decode_error_challenge("e30=").is_none(), "no status");
    }
}
