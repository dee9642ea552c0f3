//! The one normalization keywords, regexes, links and flood hashes all see.
//!
//! NFKC (so fullwidth `ｂａｄ` and ligatures become plain letters), then
//! lowercase, with invisible characters (zero-width spaces and joiners, soft
//! hyphens, bidi controls, variation selectors, tag characters) removed, so
//! `b\u{200B}a\u{00AD}d` is `bad`. Rule keywords go through the same
//! function when compiled, so both sides always agree. Not covered:
//! look-alike letters from other scripts (Cyrillic `а`), leetspeak and
//! spaced-out letters.

use unicode_normalization::UnicodeNormalization;

/// Writes the normalized form of `input` into `out` (cleared first).
pub fn normalize_into(input: &str, out: &mut String) {
    out.clear();
    out.reserve(input.len());
    if input.is_ascii() {
        // NFKC is the identity on ASCII and no ASCII character is invisible.
        out.extend(input.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        return;
    }
    for c in input.chars().filter(|&c| !is_invisible(c)).nfkc() {
        match c {
            // Ideographic full stops, so `example。com` is a domain too.
            '\u{3002}' | '\u{FF61}' => out.push('.'),
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c => out.extend(c.to_lowercase()),
        }
    }
}

/// The normalized form as a new string (compile time; the send path reuses a buffer).
pub fn normalize(input: &str) -> String {
    let mut s = String::new();
    normalize_into(input, &mut s);
    s
}

/// Characters that render as nothing and are only ever used, in chat, to
/// split a word so that filters miss it.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                  // soft hyphen
        | '\u{034F}'                // combining grapheme joiner
        | '\u{061C}'                // Arabic letter mark
        | '\u{115F}' | '\u{1160}'   // Hangul fillers
        | '\u{17B4}' | '\u{17B5}'   // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'   // Mongolian selectors and vowel separator
        | '\u{200B}'..='\u{200F}'   // zero-width space, non-joiner, joiner, LRM, RLM
        | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, bidi isolates
        | '\u{3164}' | '\u{FFA0}'   // Hangul fillers
        | '\u{FE00}'..='\u{FE0F}'   // variation selectors
        | '\u{FEFF}'                // zero-width no-break space
        | '\u{1D173}'..='\u{1D17A}' // musical formatting
        | '\u{E0000}'..='\u{E0FFF}' // tags and variation selectors supplement
    )
}

/// Whether `c` is part of a word, for whole-word keywords. Letters of
/// scripts written without spaces (CJK, kana, Thai, Lao, Khmer, Myanmar)
/// are *not*: a keyword in those scripts matches anywhere in the text.
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    c.is_alphanumeric() && !is_unspaced_script(c)
}

fn is_unspaced_script(c: char) -> bool {
    matches!(c,
        '\u{0E00}'..='\u{0EFF}'     // Thai, Lao
        | '\u{1000}'..='\u{109F}'   // Myanmar
        | '\u{1780}'..='\u{17FF}'   // Khmer
        | '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}'   // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'   // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}'   // CJK compatibility ideographs
        | '\u{FF66}'..='\u{FF9F}'   // halfwidth Katakana
        | '\u{20000}'..='\u{3FFFF}' // CJK extensions B and later
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_width_and_invisibles() {
        assert_eq!(normalize("HeLLo"), "hello");
        assert_eq!(normalize("ＢＡＤ"), "bad");
        assert_eq!(normalize("b\u{200B}a\u{00AD}d\u{FEFF}"), "bad");
        assert_eq!(normalize("ﬁne"), "fine");
        assert_eq!(normalize("ÉCOLE"), "école");
        assert_eq!(normalize("example。com"), "example.com");
    }

    #[test]
    fn word_chars() {
        assert!(is_word_char('a') && is_word_char('_') && is_word_char('é'));
        assert!(!is_word_char(' ') && !is_word_char('-') && !is_word_char('漢'));
    }
}
