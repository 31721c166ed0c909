//! The client assertion (RFC 7523 2.2, RFC 7521 4.2): a JWT the application signs with its
//! certificate's key instead of sending a secret. Entra ID's format (Microsoft Learn:
//! Microsoft identity platform certificate credentials): header `alg` PS256, `typ` JWT and the
//! certificate's SHA-256 thumbprint `x5t#S256` (its SHA-1 `x5t` too, which older
//! registrations match); claims `aud` = the token endpoint, `iss` = `sub` = the client ID, a
//! unique `jti`, `nbf`, `iat` and `exp` (ten minutes). Signed with aws-lc-rs (RSASSA-PSS,
//! SHA-256, RFC 7518 3.5), the crypto provider already in the build: a JWT library would add a
//! second one for three base64url segments.

use super::grant::OAuthError;
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{RsaKeyPair, RSA_PSS_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microsoft's limit is ten minutes from `nbf`.
const VALIDITY: Duration = Duration::from_secs(600);

/// A signed client assertion for `client_id` at `audience` (the token endpoint's URL).
pub(super) fn client_assertion(
    cert: &Path,
    key: &Path,
    client_id: &str,
    audience: &str,
) -> Result<String, OAuthError> {
    let fail = |path: &Path, why: &str| OAuthError::Certificate {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let der = CertificateDer::from_pem_file(cert)
        .map_err(|_| fail(cert, "no readable PEM certificate"))?;
    // The key's own error text can quote the file: only the file is named.
    let pair = match PrivateKeyDer::from_pem_file(key) {
        Ok(PrivateKeyDer::Pkcs8(k)) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        Ok(PrivateKeyDer::Pkcs1(k)) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        Ok(_) => {
            return Err(fail(
                key,
                "not an RSA key (Entra ID signs client assertions with RSA, PS256)",
            ))
        }
        Err(_) => return Err(fail(key, "no readable PEM private key")),
    }
    .map_err(|_| fail(key, "not a usable RSA private key (2048 bits or more)"))?;
    let header = serde_json::json!({
        "alg": "PS256",
        "typ": "JWT",
        "x5t": b64(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref()).as_ref()),
        "x5t#S256": b64(digest::digest(&digest::SHA256, der.as_ref()).as_ref()),
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let rng = SystemRandom::new();
    let mut jti = [0u8; 16];
    rng.fill(&mut jti)
        .map_err(|_| fail(key, "no random numbers for the assertion's jti"))?;
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "nbf": now,
        "iat": now,
        "exp": now + VALIDITY.as_secs(),
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PSS_SHA256, &rng, input.as_bytes(), &mut sig)
        .map_err(|_| fail(key, "signing the assertion failed"))?;
    Ok(format!("{input}.{}", b64(&sig)))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, UnparsedPublicKey, RSA_PSS_2048_8192_SHA256};
    use base64::engine::general_purpose::STANDARD;

    fn pem(label: &str, der: &[u8]) -> String {
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            STANDARD.encode(der)
        )
    }

    #[test]
    fn the_assertion_is_a_ps256_jwt_that_verifies() {
        let dir = std::env::temp_dir().join(format!("mxtrace-assertion-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let key = dir.join("key.pem");
        std::fs::write(&key, pem("PRIVATE KEY", pair.as_der().unwrap().as_ref())).unwrap();
        // Only hashed: any DER will do for the thumbprints.
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, pem("CERTIFICATE", b"0123456789")).unwrap();
        let aud = "https://login.microsoftonline.com/contoso/oauth2/v2.0/token";
        let jwt = client_assertion(&cert, &key, "app-id", aud).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "PS256");
        let sha256 = digest::digest(&digest::SHA256, b"0123456789");
        assert_eq!(header["x5t#S256"], b64(sha256.as_ref()));
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            (claims["aud"].as_str(), claims["iss"].as_str()),
            (Some(aud), Some("app-id"))
        );
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
            600
        );
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, pair.public_key().as_ref())
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        let e = client_assertion(&cert, &cert, "app-id", aud).unwrap_err();
        assert!(e.to_string().contains("no readable PEM private key"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
