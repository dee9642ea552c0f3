//! Text rules shared by names, topics and messages.

use crate::ChatError;

/// Control characters (other than newline and tab) and bidi overrides are
/// refused in names: they hide or reorder what others see.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Trimmed, `min..=max` characters, no control or bidi-override characters.
pub fn name(field: &'static str, s: &str, min: usize, max: usize) -> Result<String, ChatError> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min || n > max {
        return Err(ChatError::Invalid(field, format!("{min}-{max} characters")));
    }
    if t.chars().any(is_forbidden_in_name) {
        return Err(ChatError::Invalid(
            field,
            "must not contain control or bidi-override characters".into(),
        ));
    }
    Ok(t.to_string())
}

/// Channel names: like Discord's, lower case with dashes for spaces.
pub fn channel_name(s: &str) -> Result<String, ChatError> {
    let n = name("name", s, 1, 100)?;
    Ok(n.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-"))
}

/// Free text (topics, messages): NUL is refused (Postgres cannot store it and
/// no client means it); everything else, bidi controls and emoji included, is
/// kept as typed — the client decides how to render it safely.
pub fn text(field: &'static str, s: &str, max: usize) -> Result<String, ChatError> {
    if s.contains('\0') {
        return Err(ChatError::Invalid(
            field,
            "must not contain NUL characters".into(),
        ));
    }
    let n = s.chars().count();
    if n > max {
        return Err(ChatError::Invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(channel_name("  Off Topic  ").unwrap(), "off-topic");
        assert!(channel_name("").is_err());
        assert!(name("name", "a\u{202E}b", 1, 10).is_err());
        assert!(text("content", "nul\0", 10).is_err());
        assert_eq!(
            text("content", "\u{202E}ok 👍", 10).unwrap(),
            "\u{202E}ok 👍"
        );
        assert!(text("content", &"x".repeat(11), 10).is_err());
    }
}
