//! RFC 6238 time-based one-time codes (SHA-1, 6 digits, 30 s), as every
//! authenticator app makes them. A code from the step before or after is
//! accepted to allow for clock drift.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The 6-digit code for `secret` at Unix time `unix_secs`.
pub fn totp_at(secret: &[u8], unix_secs: i64) -> String {
    let counter = (unix_secs.max(0) / 30) as u64;
    #[allow(clippy::expect_used)] // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off]) & 0x7f) << 24
        | u32::from(h[off + 1]) << 16
        | u32::from(h[off + 2]) << 8
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

pub fn verify_totp(secret: &[u8], code: &str, unix_secs: i64) -> bool {
    matching_step(secret, code, unix_secs).is_some()
}

/// The 30-second step (Unix seconds / 30) whose code `code` is, within one
/// step of clock drift either way. The caller records the step so that a
/// code, once accepted, is spent (RFC 6238 section 5.2).
pub fn matching_step(secret: &[u8], code: &str, unix_secs: i64) -> Option<i64> {
    let code = code.trim();
    [-30, 0, 30].iter().find_map(|d| {
        let t = unix_secs + d;
        let same: bool = totp_at(secret, t).as_bytes().ct_eq(code.as_bytes()).into();
        same.then_some(t.div_euclid(30))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors() {
        // RFC 6238 appendix B, SHA-1 secret, last 6 digits.
        let secret = b"12345678901234567890";
        assert_eq!(totp_at(secret, 59), "287082");
        assert_eq!(totp_at(secret, 1_111_111_109), "081804");
        assert_eq!(totp_at(secret, 2_000_000_000), "279037");
        assert!(verify_totp(secret, "287082", 59 + 25));
        assert!(!verify_totp(secret, "287082", 59 + 95));
        assert_eq!(matching_step(secret, "287082", 59 + 25), Some(1));
        assert_eq!(matching_step(secret, "000000", 59), None);
    }
}
