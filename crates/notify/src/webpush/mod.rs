//! Web Push without HTTP: what a push carries and how it is sealed.
//! - [`ece`]: the payload encrypted for one browser (RFC 8291, `aes128gcm`
//!   of RFC 8188);
//! - [`vapid`]: the server's key and the `Authorization: vapid` header
//!   (RFC 8292) proving to the push service who sends.
//!
//! The server's push worker (`apps/server/src/notify/push.rs`) posts the
//! result to the subscription's endpoint.

pub mod ece;
pub mod vapid;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// Why keys or a payload were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    /// A field of a subscription is not what RFC 8291 needs.
    #[error("{0}: {1}")]
    BadKey(&'static str, &'static str),
    #[error("the payload is too large for one push ({0} bytes)")]
    TooLarge(usize),
    #[error("a cryptographic operation failed")]
    Crypto,
}

/// A browser's keys from `PushSubscription.toJSON().keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: [u8; 65],
    /// The shared authentication secret (16 bytes).
    pub auth: [u8; 16],
}

impl SubscriptionKeys {
    /// From the base64url text a browser gives (padding tolerated).
    pub fn parse(p256dh: &str, auth: &str) -> Result<SubscriptionKeys, PushError> {
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('='));
        let key = decode(p256dh).map_err(|_| PushError::BadKey("keys.p256dh", "not base64url"))?;
        let p256dh: [u8; 65] = key
            .try_into()
            .map_err(|_| PushError::BadKey("keys.p256dh", "not 65 bytes"))?;
        if p256dh[0] != 0x04 {
            return Err(PushError::BadKey(
                "keys.p256dh",
                "not an uncompressed P-256 point",
            ));
        }
        let secret = decode(auth).map_err(|_| PushError::BadKey("keys.auth", "not base64url"))?;
        let auth: [u8; 16] = secret
            .try_into()
            .map_err(|_| PushError::BadKey("keys.auth", "not 16 bytes"))?;
        Ok(SubscriptionKeys { p256dh, auth })
    }
}

/// What the service worker receives (JSON inside the encrypted body).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PushPayload {
    pub notification_id: String,
    /// The notification's reason (`mention`, `dm`, …).
    pub kind: String,
    pub channel_id: String,
    pub community_id: Option<String>,
    pub title: String,
    pub body: String,
    /// The channel id: the browser keeps one notification per tag.
    pub tag: String,
}

/// Characters of a message shown in a push.
pub const PREVIEW_CHARS: usize = 120;

/// The text a push shows for a message: its first [`PREVIEW_CHARS`]
/// characters (on one line) when the user allows previews.
pub fn preview(content: &str, allowed: bool) -> String {
    if !allowed || content.trim().is_empty() {
        return "New message".into();
    }
    let one_line: String = content.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(PREVIEW_CHARS).collect();
    if one_line.chars().count() > PREVIEW_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        let p = URL_SAFE_NO_PAD.encode([4u8; 65]);
        let a = URL_SAFE_NO_PAD.encode([7u8; 16]);
        assert!(SubscriptionKeys::parse(&p, &a).is_ok());
        assert!(SubscriptionKeys::parse(&format!("{p}="), &format!("{a}==")).is_ok());
        assert_eq!(
            SubscriptionKeys::parse(&URL_SAFE_NO_PAD.encode([4u8; 64]), &a),
            Err(PushError::BadKey("keys.p256dh", "not 65 bytes"))
        );
        assert_eq!(
            SubscriptionKeys::parse(&URL_SAFE_NO_PAD.encode([2u8; 65]), &a),
            Err(PushError::BadKey(
                "keys.p256dh",
                "not an uncompressed P-256 point"
            ))
        );
        assert_eq!(
            SubscriptionKeys::parse(&p, "!!"),
            Err(PushError::BadKey("keys.auth", "not base64url"))
        );
        assert_eq!(
            SubscriptionKeys::parse(&p, &URL_SAFE_NO_PAD.encode([1u8; 15])),
            Err(PushError::BadKey("keys.auth", "not 16 bytes"))
        );
    }

    #[test]
    fn previews_are_short_and_optional() {
        assert_eq!(preview("hi\n  there", true), "hi there");
        assert_eq!(preview("secret", false), "New message");
        assert_eq!(preview("   ", true), "New message");
        let long = "é".repeat(200);
        let p = preview(&long, true);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
    }
}
