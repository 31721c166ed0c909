//! The values of session settings, as the command line and scenario files write them.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    /// Use STARTTLS when the server offers it; go on unencrypted when it does not.
    Auto,
    /// Fail unless the session is encrypted before MAIL.
    Require,
    /// Never send STARTTLS.
    Never,
}

/// What to do with a certificate that does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// Record why verification failed and what was presented, then carry on.
    Report,
    /// A certificate that does not verify ends the probe.
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMech {
    Plain,
    Login,
    /// Google's and Microsoft's bearer-token mechanism (`user=...^Aauth=Bearer ...^A^A`).
    Xoauth2,
    /// RFC 7628: the standard bearer-token mechanism (GS2 header, then key/value pairs).
    OAuthBearer,
}

impl AuthMech {
    /// The SASL mechanism name, as EHLO's AUTH keyword and the AUTH command write it.
    pub fn sasl_name(self) -> &'static str {
        match self {
            AuthMech::Plain => "PLAIN",
            AuthMech::Login => "LOGIN",
            AuthMech::Xoauth2 => "XOAUTH2",
            AuthMech::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// True for the mechanisms that carry an OAuth 2.0 access token instead of a password.
    pub fn is_oauth(self) -> bool {
        matches!(self, AuthMech::Xoauth2 | AuthMech::OAuthBearer)
    }
}

/// How mxtrace obtains an OAuth 2.0 access token from an authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthGrant {
    /// RFC 6749 4.4: the application's own token, for unattended probes.
    ClientCredentials,
    /// RFC 8628: a person at a terminal approves the request in a browser.
    Device,
}

/// A name that is not one of a setting's values: the names it accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}")]
pub struct UnknownName {
    pub expected: &'static str,
}

/// Names as the command line and scenario files write them.
macro_rules! named {
    ($t:ty, $expected:literal, $($name:literal => $v:expr),+) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                $(if self == $v { return $name; })+
                ""
            }
        }
        impl FromStr for $t {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($name => Ok($v),)+
                    _ => Err(UnknownName { expected: $expected }),
                }
            }
        }
    };
}

named!(StartTls, "auto, require or never",
    "auto" => StartTls::Auto, "require" => StartTls::Require, "never" => StartTls::Never);
named!(VerifyMode, "report or strict",
    "report" => VerifyMode::Report, "strict" => VerifyMode::Strict);
named!(AuthMech, "plain, login, xoauth2 or oauthbearer",
    "plain" => AuthMech::Plain, "login" => AuthMech::Login,
    "xoauth2" => AuthMech::Xoauth2, "oauthbearer" => AuthMech::OAuthBearer);
named!(OAuthGrant, "client-credentials or device",
    "client-credentials" => OAuthGrant::ClientCredentials, "device" => OAuthGrant::Device);
