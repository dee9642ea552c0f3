//! Message encryption for Web Push (RFC 8291) in the `aes128gcm` content
//! coding (RFC 8188), as one record.
//!
//! Each push uses a fresh ephemeral P-256 key and a random salt, so two
//! pushes of the same text never look alike. The body is
//! `salt(16) ‖ rs(4, big-endian) ‖ idlen(1) ‖ keyid(65: our ephemeral
//! public key) ‖ AES-128-GCM(plaintext ‖ 0x02)`, with the content key and
//! nonce derived by HKDF-SHA-256 from the ECDH secret and the browser's
//! auth secret as RFC 8291 section 3.4 lays out.

use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral};
use ring::hkdf::{HKDF_SHA256, KeyType, Salt};
use ring::rand::{SecureRandom, SystemRandom};

use super::{PushError, SubscriptionKeys};

/// The record size we declare: the whole message fits one record.
pub const RECORD_SIZE: u32 = 4096;
/// Header: salt, record size, key id length, key id.
const HEADER: usize = 16 + 4 + 1 + 65;
/// The AEAD tag and the one-byte padding delimiter.
const OVERHEAD: usize = 16 + 1;
/// The most plaintext one push may carry (a push service takes 4096 bytes
/// of body; the header comes off that).
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - HEADER - OVERHEAD;

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<(), PushError> {
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| PushError::Crypto)
}

/// The content key and nonce for a message (RFC 8291 section 3.3-3.4).
fn derive(
    ecdh_secret: &[u8],
    auth: &[u8; 16],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8; 16],
) -> Result<([u8; 16], [u8; 12]), PushError> {
    let mut ikm = [0u8; 32];
    hkdf(
        auth,
        ecdh_secret,
        &[b"WebPush: info\0", ua_public, as_public],
        &mut ikm,
    )?;
    let mut cek = [0u8; 16];
    hkdf(salt, &ikm, &[b"Content-Encoding: aes128gcm\0"], &mut cek)?;
    let mut nonce = [0u8; 12];
    hkdf(salt, &ikm, &[b"Content-Encoding: nonce\0"], &mut nonce)?;
    Ok((cek, nonce))
}

/// Encrypts `plaintext` for the browser holding `keys`.
pub fn encrypt(keys: &SubscriptionKeys, plaintext: &[u8]) -> Result<Vec<u8>, PushError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(PushError::TooLarge(plaintext.len()));
    }
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).map_err(|_| PushError::Crypto)?;
    let ours = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| PushError::Crypto)?;
    let as_public = ours.compute_public_key().map_err(|_| PushError::Crypto)?;
    let as_public = as_public.as_ref().to_vec();
    let theirs = UnparsedPublicKey::new(&ECDH_P256, keys.p256dh);
    let (cek, nonce) = agree_ephemeral(ours, &theirs, |secret| {
        derive(secret, &keys.auth, &keys.p256dh, &as_public, &salt)
    })
    .map_err(|_| PushError::BadKey("keys.p256dh", "not a point on P-256"))??;
    seal(&salt, &as_public, &cek, &nonce, plaintext)
}

fn seal(
    salt: &[u8; 16],
    as_public: &[u8],
    cek: &[u8; 16],
    nonce: &[u8; 12],
    plaintext: &[u8],
) -> Result<Vec<u8>, PushError> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, cek).map_err(|_| PushError::Crypto)?);
    let mut record = Vec::with_capacity(plaintext.len() + OVERHEAD);
    record.extend_from_slice(plaintext);
    // The last (and only) record's delimiter; no further padding.
    record.push(2);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(*nonce),
        Aad::empty(),
        &mut record,
    )
    .map_err(|_| PushError::Crypto)?;
    let mut body = Vec::with_capacity(HEADER + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(u8::try_from(as_public.len()).map_err(|_| PushError::Crypto)?);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

/// Decrypts a one-record body as the browser would, given the browser's
/// key (consumed: ring's ECDH keys are single-use) and public key. For
/// tests and tools: the server never decrypts.
pub fn decrypt(
    browser_key: EphemeralPrivateKey,
    browser_public: &[u8],
    auth: &[u8; 16],
    body: &[u8],
) -> Result<Vec<u8>, PushError> {
    if body.len() < HEADER + 16 {
        return Err(PushError::Crypto);
    }
    let salt: [u8; 16] = body[..16].try_into().map_err(|_| PushError::Crypto)?;
    let idlen = usize::from(body[20]);
    let as_public = body.get(21..21 + idlen).ok_or(PushError::Crypto)?;
    let theirs = UnparsedPublicKey::new(&ECDH_P256, as_public);
    let (cek, nonce) = agree_ephemeral(browser_key, &theirs, |secret| {
        derive(secret, auth, browser_public, as_public, &salt)
    })
    .map_err(|_| PushError::Crypto)??;
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).map_err(|_| PushError::Crypto)?);
    let mut record = body[21 + idlen..].to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut record,
        )
        .map_err(|_| PushError::Crypto)?;
    // Strip the padding: zeros, then the delimiter.
    let end = plain
        .iter()
        .rposition(|b| *b != 0)
        .ok_or(PushError::Crypto)?;
    if plain[end] != 2 {
        return Err(PushError::Crypto);
    }
    Ok(plain[..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn browser() -> (EphemeralPrivateKey, SubscriptionKeys) {
        let rng = SystemRandom::new();
        let key = EphemeralPrivateKey::generate(&ECDH_P256, &rng).expect("key");
        let public = key.compute_public_key().expect("public");
        let mut auth = [0u8; 16];
        rng.fill(&mut auth).expect("auth");
        let p256dh: [u8; 65] = public.as_ref().try_into().expect("65 bytes");
        (key, SubscriptionKeys { p256dh, auth })
    }

    #[test]
    fn a_browser_reads_what_was_sealed_for_it() {
        let (key, keys) = browser();
        let body = encrypt(&keys, b"{\"title\":\"hi\"}").expect("encrypt");
        assert_eq!(&body[16..20], &RECORD_SIZE.to_be_bytes());
        assert_eq!(body[20], 65);
        let plain = decrypt(key, &keys.p256dh, &keys.auth, &body).expect("decrypt");
        assert_eq!(plain, b"{\"title\":\"hi\"}");
    }

    #[test]
    fn another_browser_cannot() {
        let (_, keys) = browser();
        let (other, other_keys) = browser();
        let body = encrypt(&keys, b"secret").expect("encrypt");
        assert!(decrypt(other, &other_keys.p256dh, &other_keys.auth, &body).is_err());
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let (key, keys) = browser();
        let mut body = encrypt(&keys, b"secret").expect("encrypt");
        let last = body.len() - 1;
        body[last] ^= 1;
        assert!(decrypt(key, &keys.p256dh, &keys.auth, &body).is_err());
    }

    #[test]
    fn every_push_looks_different() {
        let (_, keys) = browser();
        assert_ne!(encrypt(&keys, b"same").ok(), encrypt(&keys, b"same").ok());
    }

    #[test]
    fn limits() {
        let (_, keys) = browser();
        assert!(encrypt(&keys, &vec![b'a'; MAX_PLAINTEXT]).is_ok());
        assert_eq!(
            encrypt(&keys, &vec![b'a'; MAX_PLAINTEXT + 1]),
            Err(PushError::TooLarge(MAX_PLAINTEXT + 1))
        );
        let bad = SubscriptionKeys {
            p256dh: [4u8; 65],
            auth: [0; 16],
        };
        assert!(matches!(encrypt(&bad, b"x"), Err(PushError::BadKey(..))));
    }
}
