//! HS256 JSON Web Tokens, just the part we use. A general JWT library would
//! bring RSA and elliptic-curve code we never call; HS256 is an HMAC over
//! `header.payload`, checked in constant time.
//!
//! Keys have ids (`kid`), named in each token's header. A token is signed with
//! the current key and verified with the key its kid names, among the keys not
//! retired, so keys rotate without signing anyone out:
//!
//! - A configured secret is the one key, kid `config`.
//! - Otherwise the keys live in the database, shared by every node
//!   ([`TokenKeys::from_records`]). A new key starts signing
//!   [`TokenKeys::ACTIVATION`] after it was made, by when every node has
//!   loaded it (nodes reload every [`TokenKeys::REFRESH`]); until then it only
//!   verifies. A key is retired once its successor has signed for longer than
//!   the access-token lifetime (plus [`TokenKeys::RETIRE_SLACK`]), when no
//!   token it signed can still be unexpired ([`TokenKeys::retirable`]).
//! - A token without a kid (issued before kids existed) verifies against the
//!   legacy key: the configured secret, or else the oldest database key not
//!   retired (which is `data_dir/jwt.key` when that file was imported).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hearth_store::SigningKeyRecord;
use hmac::{Hmac, Mac};
use parking_lot::RwLock;
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

/// The kid of a configured secret.
pub const CONFIG_KID: &str = "config";

/// One key: its kid, its encoded header, and the HMAC keyed with its secret
/// (keyed once; each use clones it).
struct Key {
    kid: String,
    header: String,
    mac: Hmac<Sha256>,
}

impl Key {
    fn new(kid: &str, secret: &[u8]) -> Key {
        let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid});
        Key {
            kid: kid.to_string(),
            header: B64.encode(header.to_string()),
            mac: mac(secret),
        }
    }
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length")
}

struct Ring {
    /// Signs new tokens.
    signing: Key,
    /// Every key that verifies (the signing key among them).
    verifying: Vec<Key>,
    /// Verifies tokens without a kid.
    legacy: Option<Hmac<Sha256>>,
}

/// The signing and verifying keys. Clones share them: [`TokenKeys::replace`]
/// on one (the server's key refresher) changes what every clone uses.
#[derive(Clone)]
pub struct TokenKeys {
    ring: Arc<RwLock<Arc<Ring>>>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKeys(signing {}, <redacted>)", self.signing_kid())
    }
}

impl TokenKeys {
    /// How long after it is made a new database key starts signing.
    pub const ACTIVATION: Duration = Duration::from_secs(20);
    /// How often a server reloads the database keys (well within
    /// [`Self::ACTIVATION`], so every node knows a key before any signs with it).
    pub const REFRESH: Duration = Duration::from_secs(5);
    /// Margin before retiring a superseded key, beyond the access-token
    /// lifetime: a node that reloads late, clocks a little apart.
    pub const RETIRE_SLACK: Duration = Duration::from_secs(60);

    /// A configured secret: signs as kid `config`, and also verifies tokens
    /// without a kid.
    pub fn new(secret: Vec<u8>) -> Self {
        let key = Key::new(CONFIG_KID, &secret);
        let legacy = Some(key.mac.clone());
        Self::from_ring(Ring {
            signing: Key::new(CONFIG_KID, &secret),
            verifying: vec![key],
            legacy,
        })
    }

    /// The database's keys as of `now_ms`: every key not retired verifies; the
    /// newest that is older than [`Self::ACTIVATION`] signs (or, when none is,
    /// the oldest: a new database's first key signs at once). None if every
    /// key is retired.
    pub fn from_records(keys: &[SigningKeyRecord], now_ms: i64) -> Option<Self> {
        let mut live: Vec<&SigningKeyRecord> =
            keys.iter().filter(|k| k.retired_at.is_none()).collect();
        live.sort_by_key(|k| k.seq());
        let activation = Self::ACTIVATION.as_millis() as i64;
        let signing = live
            .iter()
            .rev()
            .find(|k| k.created_at <= now_ms - activation)
            .or_else(|| live.first())?;
        Some(Self::from_ring(Ring {
            signing: Key::new(&signing.kid, &signing.secret),
            verifying: live.iter().map(|k| Key::new(&k.kid, &k.secret)).collect(),
            legacy: live.first().map(|k| mac(&k.secret)),
        }))
    }

    /// The kids of keys due for retirement at `now_ms`: superseded by a newer
    /// key (not retired) that has signed for longer than `access_ttl` plus
    /// [`Self::RETIRE_SLACK`], so nothing they signed is still unexpired.
    pub fn retirable(keys: &[SigningKeyRecord], now_ms: i64, access_ttl: Duration) -> Vec<String> {
        let wait = (Self::ACTIVATION + access_ttl + Self::RETIRE_SLACK).as_millis() as i64;
        let live: Vec<&SigningKeyRecord> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
        live.iter()
            .filter(|old| {
                live.iter()
                    .any(|new| new.seq() > old.seq() && new.created_at + wait <= now_ms)
            })
            .map(|k| k.kid.clone())
            .collect()
    }

    fn from_ring(ring: Ring) -> Self {
        TokenKeys {
            ring: Arc::new(RwLock::new(Arc::new(ring))),
        }
    }

    fn current(&self) -> Arc<Ring> {
        self.ring.read().clone()
    }

    /// Uses `other`'s keys from now on (in every clone of `self`).
    pub fn replace(&self, other: &TokenKeys) {
        let next = other.current();
        *self.ring.write() = next;
    }

    /// The kid new tokens are signed with.
    pub fn signing_kid(&self) -> String {
        self.current().signing.kid.clone()
    }

    /// The kids that verify.
    pub fn verifying_kids(&self) -> Vec<String> {
        self.current()
            .verifying
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    /// True while another clone of these keys exists (a refresher holding the
    /// last one can stop).
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.ring) > 1
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let ring = self.current();
        let key = &ring.signing;
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = format!("{}.{}", key.header, B64.encode(payload));
        let mut mac = key.mac.clone();
        mac.update(token.as_bytes());
        let sig = mac.finalize().into_bytes();
        token.push('.');
        token.push_str(&B64.encode(sig));
        token
    }

    /// The claims of a well-formed, correctly signed, unexpired token whose
    /// kid names a key that verifies (or, without a kid, the legacy key).
    pub fn verify(&self, token: &str, now_secs: i64) -> Option<Claims> {
        if token.len() > 4096 {
            return None;
        }
        let (signed, sig) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        let sig = B64.decode(sig).ok()?;
        // The header is read before the signature is checked, but only to
        // choose one of our keys: a header changed in any way (another kid
        // included) fails the signature check under the key it names.
        let header: serde_json::Value = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "HS256" {
            return None;
        }
        let ring = self.current();
        let mut mac = match header.get("kid") {
            None => ring.legacy.clone()?,
            Some(kid) => {
                let kid = kid.as_str()?;
                ring.verifying.iter().find(|k| k.kid == kid)?.mac.clone()
            }
        };
        drop(ring);
        mac.update(signed.as_bytes());
        mac.verify_slice(&sig).ok()?;
        // Only after the signature holds do we look at what it says.
        let claims: Claims = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        (claims.exp > now_secs).then_some(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
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

    fn record(
        kid: &str,
        secret: &[u8],
        created_at: i64,
        retired_at: Option<i64>,
    ) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.into(),
            secret: secret.to_vec(),
            created_at,
            retired_at,
        }
    }

    fn header_of(token: &str) -> serde_json::Value {
        let head = token.split('.').next().unwrap();
        serde_json::from_slice(&B64.decode(head).unwrap()).unwrap()
    }

    /// `token` with its header replaced by `header` (signature kept).
    fn with_header(token: &str, header: serde_json::Value) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        format!(
            "{}.{}.{}",
            B64.encode(header.to_string()),
            parts[1],
            parts[2]
        )
    }

    /// A token as signed before kids: header without one.
    fn legacy_token(secret: &[u8], c: &Claims) -> String {
        let signed = format!(
            "{}.{}",
            B64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            B64.encode(serde_json::to_vec(c).unwrap())
        );
        let mut m = mac(secret);
        m.update(signed.as_bytes());
        format!("{signed}.{}", B64.encode(m.finalize().into_bytes()))
    }

    const MIN: i64 = 60_000;

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

    #[test]
    fn kid_round_trip() {
        let k = TokenKeys::new(b"a configured secret".to_vec());
        let t = k.sign(&claims(100));
        assert_eq!(header_of(&t)["kid"], CONFIG_KID);
        assert_eq!(header_of(&t)["alg"], "HS256");
        assert_eq!(k.verify(&t, 0), Some(claims(100)));

        let db = TokenKeys::from_records(&[record("k1", b"one", 0, None)], 0).unwrap();
        let t1 = db.sign(&claims(100));
        assert_eq!(header_of(&t1)["kid"], "k1");
        assert_eq!(db.verify(&t1, 0), Some(claims(100)));
        assert_eq!(db.signing_kid(), "k1");

        // Another node with the same records verifies it.
        let other = TokenKeys::from_records(&[record("k1", b"one", 0, None)], 5).unwrap();
        assert_eq!(other.verify(&t1, 0), Some(claims(100)));
    }

    #[test]
    fn unknown_kid_is_refused() {
        let a = TokenKeys::from_records(&[record("k1", b"same", 0, None)], 0).unwrap();
        // The same secret under another kid: the kid still has to be known.
        let b = TokenKeys::from_records(&[record("k2", b"same", 0, None)], 0).unwrap();
        let t = a.sign(&claims(100));
        assert_eq!(b.verify(&t, 0), None, "k1 is unknown to b");
        let t = with_header(
            &t,
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k9"}),
        );
        assert_eq!(a.verify(&t, 0), None, "k9 is unknown to a");
        let t = with_header(
            &a.sign(&claims(100)),
            serde_json::json!({"alg": "HS256", "kid": 1}),
        );
        assert_eq!(a.verify(&t, 0), None, "a kid that is not a string");
        // A configured secret knows only `config`.
        let c = TokenKeys::new(b"same".to_vec());
        assert_eq!(c.verify(&a.sign(&claims(100)), 0), None);
    }

    #[test]
    fn tampered_header_is_refused() {
        let keys = [
            record("k1", b"first", 0, None),
            record("k2", b"second", 0, None),
        ];
        let k = TokenKeys::from_records(&keys, 10 * MIN).unwrap();
        assert_eq!(k.signing_kid(), "k2");
        let t = k.sign(&claims(100));
        assert_eq!(k.verify(&t, 0), Some(claims(100)));
        for header in [
            // Pointing at the other, known key.
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
            // Dropping the kid (the legacy path, keyed with k1).
            serde_json::json!({"alg": "HS256", "typ": "JWT"}),
            // Same kid, anything else changed.
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k2", "x": 1}),
            serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k2"}),
            serde_json::json!({"alg": "HS512", "typ": "JWT", "kid": "k2"}),
        ] {
            assert_eq!(
                k.verify(&with_header(&t, header.clone()), 0),
                None,
                "{header}"
            );
        }
    }

    #[test]
    fn tokens_without_a_kid_verify_against_the_legacy_key() {
        let old = legacy_token(b"the configured secret", &claims(100));
        let k = TokenKeys::new(b"the configured secret".to_vec());
        assert_eq!(k.verify(&old, 0), Some(claims(100)));
        assert_eq!(TokenKeys::new(b"another".to_vec()).verify(&old, 0), None);

        // From the database: the oldest key not retired (an imported jwt.key).
        let imported = legacy_token(b"from jwt.key", &claims(100));
        let keys = [
            record("k1", b"from jwt.key", 0, None),
            record("k2", b"newer", 0, None),
        ];
        let db = TokenKeys::from_records(&keys, 10 * MIN).unwrap();
        assert_eq!(db.verify(&imported, 0), Some(claims(100)));
        let retired = [
            record("k1", b"from jwt.key", 0, Some(1)),
            record("k2", b"newer", 0, None),
        ];
        let db = TokenKeys::from_records(&retired, 10 * MIN).unwrap();
        assert_eq!(db.verify(&imported, 0), None, "not once k1 is retired");
    }

    #[test]
    fn rotation_keeps_old_tokens_and_retires_late() {
        let ttl = Duration::from_secs(900);
        let activation = TokenKeys::ACTIVATION.as_millis() as i64;
        let t0 = 100 * MIN;
        let before = TokenKeys::from_records(&[record("k1", b"one", 0, None)], t0).unwrap();
        let old_token = before.sign(&claims(i64::MAX));

        // Rotated at t0: k2 verifies at once but signs only after the activation delay.
        let keys = vec![
            record("k1", b"one", 0, None),
            record("k2", b"two", t0, None),
        ];
        let k = TokenKeys::from_records(&keys, t0).unwrap();
        assert_eq!(k.signing_kid(), "k1", "not before every node has k2");
        assert_eq!(k.verifying_kids(), ["k1", "k2"]);
        let k = TokenKeys::from_records(&keys, t0 + activation).unwrap();
        assert_eq!(k.signing_kid(), "k2");
        let new_token = k.sign(&claims(i64::MAX));
        assert_eq!(
            k.verify(&old_token, 0),
            Some(claims(i64::MAX)),
            "old tokens still work"
        );
        assert_eq!(k.verify(&new_token, 0), Some(claims(i64::MAX)));

        // Swapped in place: clones see the new keys.
        let shared = before.clone();
        assert!(before.is_shared());
        shared.replace(&k);
        assert_eq!(before.signing_kid(), "k2");
        assert_eq!(before.verify(&new_token, 0), Some(claims(i64::MAX)));

        // k1 retires once k2 has signed for a whole token lifetime (and the slack).
        let due =
            t0 + activation + ttl.as_millis() as i64 + TokenKeys::RETIRE_SLACK.as_millis() as i64;
        assert!(TokenKeys::retirable(&keys, due - 1, ttl).is_empty());
        assert_eq!(TokenKeys::retirable(&keys, due, ttl), ["k1"]);
        let retired = vec![
            record("k1", b"one", 0, Some(due)),
            record("k2", b"two", t0, None),
        ];
        let k = TokenKeys::from_records(&retired, due).unwrap();
        assert_eq!(
            k.verify(&old_token, 0),
            None,
            "a retired key verifies nothing"
        );
        assert_eq!(k.verify(&new_token, 0), Some(claims(i64::MAX)));
        assert!(
            TokenKeys::retirable(&retired, i64::MAX / 2, ttl).is_empty(),
            "the newest key is never retired"
        );

        // A new database's first key signs at once; with every key retired there is none.
        let first = TokenKeys::from_records(&[record("k1", b"x", t0, None)], t0).unwrap();
        assert_eq!(first.signing_kid(), "k1");
        assert!(TokenKeys::from_records(&[record("k1", b"x", 0, Some(1))], t0).is_none());
        // Kids order by number, not text: k10 is newer than k9.
        let many = [record("k9", b"9", 0, None), record("k10", b"10", 0, None)];
        assert_eq!(
            TokenKeys::from_records(&many, t0).unwrap().signing_kid(),
            "k10"
        );
    }
}
