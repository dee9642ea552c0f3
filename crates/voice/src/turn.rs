//! TURN REST credentials for coturn's `use-auth-secret` mode
//! (draft-uberti-behave-turn-rest): username `<expiry unix seconds>:<user id>`, password
//! `base64(HMAC-SHA1(secret, username))`.

use crate::types::ParticipantId;
use base64::Engine as _;
use ring::hmac;

/// A username and password coturn accepts until `expires_at` (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    /// `<expiry>:<user id>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub password: String,
    /// When coturn stops accepting them.
    pub expires_at: u64,
}

/// Credentials for `user`, valid until `now_unix + ttl_secs`.
pub fn turn_credentials(
    secret: &[u8],
    user: ParticipantId,
    now_unix: u64,
    ttl_secs: u64,
) -> TurnCredentials {
    let expires_at = now_unix.saturating_add(ttl_secs);
    let username = format!("{expires_at}:{}", user.0);
    TurnCredentials {
        password: turn_password(secret, &username),
        username,
        expires_at,
    }
}

/// base64(HMAC-SHA1(secret, username)), as coturn computes it.
pub fn turn_password(secret: &[u8], username: &str) -> String {
    // SHA-1 is what coturn's REST scheme uses; it is an HMAC, where SHA-1 is not broken.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2202_vector() {
        // RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?".
        // HMAC-SHA1 = effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        assert_eq!(
            turn_password(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn username_is_expiry_colon_user() {
        let c = turn_credentials(b"s3cret", ParticipantId(42), 1_700_000_000, 3600);
        assert_eq!(c.username, "1700003600:42");
        assert_eq!(c.expires_at, 1_700_003_600);
        assert_eq!(c.password, turn_password(b"s3cret", "1700003600:42"));
    }
}
