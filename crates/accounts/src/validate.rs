//! Field rules from the contract, shared by registration and the admin CLI.

use crate::AccountsError;

/// 2-32 of `a-z0-9_.`; uniqueness ignores case, so upper case is folded away here.
///
/// Contract v1.1: the compared form is the NFKC case fold, and it must be
/// ASCII `a-z0-9_.`. Anything outside ASCII is refused before folding, so a
/// look-alike (U+212A KELVIN SIGN folds to `k`, fullwidth letters fold to
/// ASCII under NFKC) can never become another user's name: for ASCII input
/// NFKC is the identity and case folding is `to_ascii_lowercase`.
pub fn validate_username(s: &str) -> Result<String, AccountsError> {
    if !s.is_ascii() {
        return Err(AccountsError::Invalid(
            "username",
            "2-32 characters of a-z, 0-9, _ and . (ASCII only; look-alike letters are refused)"
                .into(),
        ));
    }
    let lower = s.to_ascii_lowercase();
    let ok_chars = lower
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if !(2..=32).contains(&lower.chars().count()) || !ok_chars {
        return Err(AccountsError::Invalid(
            "username",
            "2-32 characters of a-z, 0-9, _ and .".into(),
        ));
    }
    Ok(lower)
}

pub fn validate_password(s: &str) -> Result<(), AccountsError> {
    let n = s.chars().count();
    if !(8..=256).contains(&n) {
        return Err(AccountsError::Invalid(
            "password",
            "8-256 characters".into(),
        ));
    }
    if s.contains('\0') {
        return Err(AccountsError::Invalid(
            "password",
            "must not contain NUL".into(),
        ));
    }
    Ok(())
}

/// A deliberately small check: one `@`, something on each side, no spaces or
/// control characters, at most 254 bytes. Deliverability is not ours to judge.
pub fn validate_email(s: &str) -> Result<String, AccountsError> {
    let bad = || AccountsError::Invalid("email", "not an email address".into());
    let s = s.trim();
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    match s.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(s.to_string())
        }
        _ => Err(bad()),
    }
}

/// 1-32 visible characters after trimming; no control or bidi-override characters.
pub fn validate_display_name(s: &str) -> Result<String, AccountsError> {
    let t = s.trim();
    let n = t.chars().count();
    if !(1..=32).contains(&n) || t.chars().any(is_forbidden_char) {
        return Err(AccountsError::Invalid(
            "display_name",
            "1-32 characters, no control characters".into(),
        ));
    }
    Ok(t.to_string())
}

/// Control characters and the bidi overrides/isolates that can disguise a name.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(validate_username("Alice.B_2").unwrap(), "alice.b_2");
        for bad in [
            "a",
            "",
            "has space",
            "ünï",
            "x".repeat(33).as_str(),
            "semi;colon",
            "a\0b",
            // Look-alikes that NFKC and case folding would turn into ASCII.
            "\u{212A}evin",
            "ａdmin",
            "\u{017F}am",
            "admın",
        ] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_emails_names() {
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password(&"x".repeat(257)).is_err());
        assert!(validate_email("a@b.co").is_ok());
        for bad in ["a@b", "@b.co", "a b@c.de", "a@@b.co", "a@.co"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_display_name("  Zoë 👩‍🚀 ").unwrap(), "Zoë 👩‍🚀");
        assert!(validate_display_name("evil\u{202E}txt").is_err());
        assert!(validate_display_name("   ").is_err());
    }
}
