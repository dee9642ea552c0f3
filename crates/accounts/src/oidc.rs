//! OpenID Connect sign-in, the parts that decide (issue #13 item 4): PKCE
//! and the one-time values a flow carries, and the ID token's verification
//! against the provider's JWKS. Fetching discovery documents, keys and
//! tokens is the server's (`apps/server`); nothing here does I/O.
//!
//! An ID token is accepted only if all of these hold (OpenID Connect Core
//! 1.0, section 3.1.3.7):
//! - it is a JWS signed with RS256 or ES256 (never `none`, never HMAC: a
//!   provider's public key must not double as a shared secret) by a key of
//!   the provider's JWKS, picked by `kid`;
//! - `iss` is exactly the configured issuer;
//! - `aud` is (or contains) our client id, and with several audiences
//!   `azp` is our client id;
//! - `exp` is in the future and `iat` not in the future (a minute of clock
//!   skew either way);
//! - `nonce` is the one this flow sent;
//! - `sub` is present.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY_SECS: i64 = 60;

/// Why an ID token was refused. Each names one check, so logs and tests
/// say which.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("not a JWS in compact form")]
    Malformed,
    #[error("signed with {0}, not RS256 or ES256")]
    UnsupportedAlgorithm(String),
    #[error("signed by a key the provider does not publish")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("issued by {0}, not the configured issuer")]
    WrongIssuer(String),
    #[error("issued for another client")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    NotYetValid,
    #[error("the nonce is not this sign-in's")]
    WrongNonce,
    #[error("the claim {0} is missing")]
    MissingClaim(&'static str),
}

/// A random URL-safe value (state, nonce, PKCE verifier): 32 bytes.
pub fn random_value() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The PKCE challenge of a verifier (RFC 7636, method S256).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// One key of a JWKS (the fields RS256 and ES256 need).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// What the flow expects of the token.
#[derive(Clone, Debug)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Seconds since the epoch.
    pub now: i64,
}

/// The identity a verified token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct IdClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    nonce: Option<String>,
    email: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    email_verified: bool,
    name: Option<String>,
    preferred_username: Option<String>,
}

/// Some providers send `"email_verified": "true"` as a string.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<B>::deserialize(d)? {
        Some(B::Bool(b)) => b,
        Some(B::Text(s)) => s == "true",
        None => false,
    })
}

fn decode(part: &str) -> Result<Vec<u8>, IdTokenError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| IdTokenError::Malformed)
}

/// Verifies `token` against the provider's keys and the flow's
/// expectations; the identity it names.
pub fn verify_id_token(
    token: &str,
    jwks: &Jwks,
    want: &Expected<'_>,
) -> Result<Identity, IdTokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    let header: Header =
        serde_json::from_slice(&decode(h)?).map_err(|_| IdTokenError::Malformed)?;
    let signature = decode(s)?;
    let signed = &token.as_bytes()[..h.len() + 1 + c.len()];
    let kty = match header.alg.as_str() {
        "RS256" => "RSA",
        "ES256" => "EC",
        other => return Err(IdTokenError::UnsupportedAlgorithm(other.to_string())),
    };
    // By kid; a provider with one key may leave kids out.
    let candidates: Vec<&Jwk> = jwks
        .keys
        .iter()
        .filter(|k| k.kty == kty && k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == header.alg))
        .filter(|k| match (&header.kid, &k.kid) {
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey);
    }
    if !candidates.iter().any(|k| verifies(k, signed, &signature)) {
        return Err(IdTokenError::BadSignature);
    }
    let claims: IdClaims =
        serde_json::from_slice(&decode(c)?).map_err(|_| IdTokenError::Malformed)?;
    let iss = claims.iss.ok_or(IdTokenError::MissingClaim("iss"))?;
    if iss != want.issuer {
        return Err(IdTokenError::WrongIssuer(iss));
    }
    let ours = match claims.aud.ok_or(IdTokenError::MissingClaim("aud"))? {
        Audience::One(a) => a == want.client_id,
        Audience::Many(list) => {
            list.iter().any(|a| a == want.client_id)
                && (list.len() == 1 || claims.azp.as_deref() == Some(want.client_id))
        }
    };
    if !ours {
        return Err(IdTokenError::WrongAudience);
    }
    let exp = claims.exp.ok_or(IdTokenError::MissingClaim("exp"))?;
    if exp + LEEWAY_SECS <= want.now {
        return Err(IdTokenError::Expired);
    }
    if claims.iat.is_some_and(|iat| iat > want.now + LEEWAY_SECS) {
        return Err(IdTokenError::NotYetValid);
    }
    if claims.nonce.as_deref() != Some(want.nonce) {
        return Err(IdTokenError::WrongNonce);
    }
    let subject = claims
        .sub
        .filter(|s| !s.is_empty())
        .ok_or(IdTokenError::MissingClaim("sub"))?;
    Ok(Identity {
        subject,
        email: claims.email,
        email_verified: claims.email_verified,
        name: claims.name,
        preferred_username: claims.preferred_username,
    })
}

fn verifies(k: &Jwk, signed: &[u8], signature: &[u8]) -> bool {
    let b64 = |v: &Option<String>| v.as_deref().and_then(|s| decode(s).ok());
    match k.kty.as_str() {
        "RSA" => {
            let (Some(n), Some(e)) = (b64(&k.n), b64(&k.e)) else {
                return false;
            };
            RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, signed, signature)
                .is_ok()
        }
        "EC" => {
            let (Some(x), Some(y)) = (b64(&k.x), b64(&k.y)) else {
                return false;
            };
            if k.crv.as_deref() != Some("P-256") || x.len() != 32 || y.len() != 32 {
                return false;
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, signature)
                .is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const ISS: &str = "https://id.example.org";
    const NOW: i64 = 1_900_000_000;

    /// An ES256 provider key (ring generates EC keys; RSA verification
    /// runs against the real provider in the API tests).
    struct Provider {
        pair: EcdsaKeyPair,
        rng: SystemRandom,
        kid: String,
    }

    impl Provider {
        fn new(kid: &str) -> Provider {
            let rng = SystemRandom::new();
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng)
                    .unwrap();
            Provider {
                pair,
                rng,
                kid: kid.into(),
            }
        }

        fn jwk(&self) -> Jwk {
            let p = self.pair.public_key().as_ref();
            Jwk {
                kty: "EC".into(),
                kid: Some(self.kid.clone()),
                alg: Some("ES256".into()),
                use_: Some("sig".into()),
                n: None,
                e: None,
                crv: Some("P-256".into()),
                x: Some(URL_SAFE_NO_PAD.encode(&p[1..33])),
                y: Some(URL_SAFE_NO_PAD.encode(&p[33..65])),
            }
        }

        fn sign(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self.pair.sign(&self.rng, input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn token(&self, claims: serde_json::Value) -> String {
            self.sign(json!({"alg": "ES256", "kid": self.kid}), claims)
        }
    }

    fn claims() -> serde_json::Value {
        json!({
            "iss": ISS, "sub": "alice", "aud": "hearth", "exp": NOW + 300, "iat": NOW,
            "nonce": "n-1", "email": "alice@example.org", "email_verified": true, "name": "Alice",
        })
    }

    fn want() -> Expected<'static> {
        Expected {
            issuer: ISS,
            client_id: "hearth",
            nonce: "n-1",
            now: NOW,
        }
    }

    fn with(mut c: serde_json::Value, k: &str, v: serde_json::Value) -> serde_json::Value {
        c[k] = v;
        c
    }

    #[test]
    fn a_good_token_names_its_user() {
        let p = Provider::new("k1");
        let jwks = Jwks {
            keys: vec![Provider::new("other").jwk(), p.jwk()],
        };
        let id = verify_id_token(&p.token(claims()), &jwks, &want()).unwrap();
        assert_eq!(
            id,
            Identity {
                subject: "alice".into(),
                email: Some("alice@example.org".into()),
                email_verified: true,
                name: Some("Alice".into()),
                preferred_username: None,
            }
        );
        // A string "true", and an audience list with azp.
        let c = with(claims(), "email_verified", json!("true"));
        let c = with(c, "aud", json!(["other", "hearth"]));
        let c = with(c, "azp", json!("hearth"));
        assert!(
            verify_id_token(&p.token(c), &jwks, &want())
                .unwrap()
                .email_verified
        );
    }

    #[test]
    fn every_defect_is_refused_by_its_own_check() {
        let p = Provider::new("k1");
        let jwks = Jwks {
            keys: vec![p.jwk()],
        };
        let check = |t: String| verify_id_token(&t, &jwks, &want()).unwrap_err();
        // Signature: another key, a flipped byte, a kid nobody publishes.
        let stranger = Provider::new("k1");
        assert_eq!(check(stranger.token(claims())), IdTokenError::BadSignature);
        let mut t = p.token(claims()).into_bytes();
        let at = t.len() - 5;
        t[at] = if t[at] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            check(String::from_utf8(t).unwrap()),
            IdTokenError::BadSignature
        );
        assert_eq!(
            check(p.sign(json!({"alg": "ES256", "kid": "k9"}), claims())),
            IdTokenError::UnknownKey
        );
        // Algorithms that are never accepted.
        for alg in ["none", "HS256", "RS384"] {
            assert_eq!(
                check(p.sign(json!({"alg": alg, "kid": "k1"}), claims())),
                IdTokenError::UnsupportedAlgorithm(alg.into())
            );
        }
        // Claims.
        assert_eq!(
            check(p.token(with(claims(), "iss", json!("https://evil.example")))),
            IdTokenError::WrongIssuer("https://evil.example".into())
        );
        assert_eq!(
            check(p.token(with(claims(), "aud", json!("other")))),
            IdTokenError::WrongAudience
        );
        assert_eq!(
            check(p.token(with(claims(), "aud", json!(["hearth", "other"])))),
            IdTokenError::WrongAudience,
            "several audiences need azp"
        );
        assert_eq!(
            check(p.token(with(claims(), "exp", json!(NOW - LEEWAY_SECS)))),
            IdTokenError::Expired
        );
        assert_eq!(
            check(p.token(with(claims(), "iat", json!(NOW + 3600)))),
            IdTokenError::NotYetValid
        );
        assert_eq!(
            check(p.token(with(claims(), "nonce", json!("n-2")))),
            IdTokenError::WrongNonce
        );
        let mut no_sub = claims();
        no_sub.as_object_mut().unwrap().remove("sub");
        assert_eq!(check(p.token(no_sub)), IdTokenError::MissingClaim("sub"));
        // Not a JWS at all.
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(check(junk.into()), IdTokenError::Malformed, "{junk}");
        }
        // Within the clock-skew allowance, still fine.
        assert!(
            verify_id_token(
                &p.token(with(claims(), "exp", json!(NOW - LEEWAY_SECS + 1))),
                &jwks,
                &want()
            )
            .is_ok()
        );
    }

    #[test]
    fn pkce_matches_rfc_7636() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (a, b) = (random_value(), random_value());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
