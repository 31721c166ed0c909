//! Setting values checked while they deserialize, so the TOML parser reports the value's
//! position with the message.

use super::check::parse_duration;
use super::options::{AuthMech, Family, OAuthGrant, StartTls, UnknownName, VerifyMode};
use serde::de::Error;
use serde::{Deserialize, Deserializer};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

fn named<'de, D, T>(d: D, key: &str) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = UnknownName>,
{
    let s = String::deserialize(d)?;
    s.parse()
        .map(Some)
        .map_err(|e| D::Error::custom(format!("{key} {s:?}: {e}")))
}

pub fn starttls<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StartTls>, D::Error> {
    named(d, "starttls")
}

pub fn tls_verify<'de, D: Deserializer<'de>>(d: D) -> Result<Option<VerifyMode>, D::Error> {
    named(d, "tls_verify")
}

pub fn auth_mech<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AuthMech>, D::Error> {
    named(d, "auth_mech")
}

pub fn oauth_grant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OAuthGrant>, D::Error> {
    named(d, "oauth_grant")
}

pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s)
        .map(Some)
        .map_err(|e| D::Error::custom(format!("invalid duration {s:?}: {e}")))
}

fn nonzero_u16<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Option<u16>, D::Error> {
    let n = i64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{key} {n}: must be 1-65535")))
}

pub fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    nonzero_u16(d, "port")
}

pub fn max_mx<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    nonzero_u16(d, "max_mx")
}

pub fn source<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map(Some)
        .map_err(|_| D::Error::custom(format!("source {s:?}: expected an IP address")))
}

pub fn ip_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Family>, D::Error> {
    match i64::deserialize(d)? {
        4 => Ok(Some(Family::V4)),
        6 => Ok(Some(Family::V6)),
        n => Err(D::Error::custom(format!("ip_version {n}: 4 or 6"))),
    }
}
