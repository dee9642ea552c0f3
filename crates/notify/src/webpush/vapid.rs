//! VAPID (RFC 8292): the server's P-256 key, and the `Authorization`
//! header that proves a push comes from it.
//!
//! The header is `vapid t=<JWT>, k=<public key>`: a JWT signed with ES256
//! whose `aud` is the push service's origin (scheme, host and port of the
//! endpoint), `exp` at most 24 h ahead, and `sub` a contact for the
//! operator (`mailto:` or `https:`). Browsers bind a subscription to the
//! public key given at subscribe time, so the key must outlive restarts
//! and be the same on every node: the server stores it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

use super::PushError;

/// How long a signed header is valid (RFC 8292 allows at most 24 h).
pub const TOKEN_LIFETIME_SECS: i64 = 12 * 3600;

/// The server's signing key.
pub struct VapidKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl VapidKey {
    pub fn generate() -> Result<VapidKey, PushError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| PushError::Crypto)?;
        VapidKey::from_pkcs8(doc.as_ref())
    }

    /// From the PKCS#8 document [`VapidKey::pkcs8`] gave.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<VapidKey, PushError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| PushError::BadKey("vapid", "not a P-256 PKCS#8 key"))?;
        Ok(VapidKey {
            pair,
            pkcs8: pkcs8.to_vec(),
            rng,
        })
    }

    /// The private key, to store (base64url of PKCS#8).
    pub fn pkcs8(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.pkcs8)
    }

    /// The public key as browsers take it (`applicationServerKey`):
    /// base64url of the uncompressed point.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref())
    }

    /// The `Authorization` header value for a push service at `audience`
    /// (an origin such as `https://push.example.net`), valid until `exp`
    /// (seconds since the epoch).
    pub fn authorization(
        &self,
        audience: &str,
        subject: &str,
        exp: i64,
    ) -> Result<String, PushError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": exp, "sub": subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let sig = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| PushError::Crypto)?;
        Ok(format!(
            "vapid t={signing_input}.{}, k={}",
            URL_SAFE_NO_PAD.encode(sig.as_ref()),
            self.public_key()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    #[test]
    fn the_header_verifies_under_the_public_key() {
        let key = VapidKey::generate().expect("key");
        let h = key
            .authorization(
                "https://push.example.net",
                "mailto:ops@example.net",
                1_900_000_000,
            )
            .expect("sign");
        let rest = h.strip_prefix("vapid t=").expect("scheme");
        let (jwt, k) = rest.split_once(", k=").expect("k");
        assert_eq!(k, key.public_key());
        let (signed, sig) = jwt.rsplit_once('.').expect("signature");
        let public = URL_SAFE_NO_PAD.decode(k).expect("b64");
        assert_eq!(public.len(), 65);
        let sig = URL_SAFE_NO_PAD.decode(sig).expect("b64");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(signed.as_bytes(), &sig)
            .expect("valid signature");
        let claims = signed.split('.').nth(1).expect("claims");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("b64")).expect("json");
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["exp"], 1_900_000_000);
        assert_eq!(claims["sub"], "mailto:ops@example.net");
    }

    #[test]
    fn a_stored_key_signs_as_itself() {
        let key = VapidKey::generate().expect("key");
        let again = VapidKey::from_pkcs8(&URL_SAFE_NO_PAD.decode(key.pkcs8()).expect("b64"))
            .expect("reload");
        assert_eq!(again.public_key(), key.public_key());
        assert!(VapidKey::from_pkcs8(b"nonsense").is_err());
    }
}
