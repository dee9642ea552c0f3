//! HS256 JSON Web Tokens, just the part we use. A general JWT library would
//! bring RSA and elliptic-curve code we never call; HS256 is an HMAC over
//! `header.payload`, checked in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What an access token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, decimal.
    pub sub: String,
    /// The session id, decimal.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

/// The signing secret. Never printed.
#[derive(Clone)]
pub struct TokenKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(<redacted>)")
    }
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl TokenKeys {
    pub fn new(secret: Vec<u8>) -> Self {
        TokenKeys { secret }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = format!("{}.{}", B64.encode(HEADER), B64.encode(payload));
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let sig = mac.finalize().into_bytes();
        token.push('.');
        token.push_str(&B64.encode(sig));
        token
    }

    /// The claims of a well-formed, correctly signed, unexpired token.
    pub fn verify(&self, token: &str, now_secs: i64) -> Option<Claims> {
        if token.len() > 4096 {
            return None;
        }
        let (signed, sig) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        let sig = B64.decode(sig).ok()?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&sig).ok()?;
        // Only after the signature holds do we look at what it says.
        let header: serde_json::Value = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "HS256" {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        (claims.exp > now_secs).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "1".into(),
            sid: "2".into(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn sign_verify_expire_tamper() {
        let k = TokenKeys::new(b"secret".to_vec());
        let t = k.sign(&claims(100));
        assert_eq!(k.verify(&t, 99), Some(claims(100)));
        assert_eq!(k.verify(&t, 100), None, "expired");
        assert_eq!(
            TokenKeys::new(b"other".to_vec()).verify(&t, 0),
            None,
            "wrong key"
        );
        let (head, _) = t.rsplit_once('.').unwrap();
        let forged_payload = B64.encode(serde_json::to_vec(&claims(i64::MAX)).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(
            k.verify(&format!("{}.{}.{}", parts[0], forged_payload, parts[2]), 0),
            None,
            "tampered"
        );
        assert_eq!(k.verify(head, 0), None);
        assert_eq!(k.verify("", 0), None);
        assert_eq!(k.verify("a.b.c", 0), None);
        let none_alg = format!("{}.{}.", B64.encode(r#"{"alg":"none"}"#), parts[1]);
        assert_eq!(k.verify(&none_alg, 0), None, "alg=none is refused");
    }
}
