//! File names as users send them are untrusted text that ends up in headers, on screens
//! and (in some clients) on disks. Keep what a person would recognise; drop what can
//! climb directories, hide an extension (bidi overrides) or break a header.

/// Names are cut to this many bytes of UTF-8 (a common file-system limit), keeping the
/// extension.
pub const MAX_FILENAME_BYTES: usize = 255;

fn is_unsafe(c: char) -> bool {
    c.is_control()
        // Bidi embeddings, overrides and isolates, marks: "gnp.exe" shown as "exe.png".
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
        // Zero-width characters and the BOM hide text.
        || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
        // Header and shell trouble.
        || matches!(c, '"' | '<' | '>' | '|' | '*' | '?' | ':')
}

/// The last path component of `name` (either separator), without unsafe characters,
/// leading dots or surrounding spaces, at most [`MAX_FILENAME_BYTES`]; `file` when
/// nothing is left.
pub fn sanitize_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !is_unsafe(*c)).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        return "file".to_owned();
    }
    if cleaned.len() <= MAX_FILENAME_BYTES {
        return cleaned.to_owned();
    }
    // Keep a short extension; cut the stem on a character boundary.
    let (stem, ext) = match cleaned.rfind('.') {
        Some(i) if cleaned.len() - i <= 16 && i > 0 => (&cleaned[..i], &cleaned[i..]),
        _ => (cleaned, ""),
    };
    let mut cut = MAX_FILENAME_BYTES - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let out = format!("{}{}", stem[..cut].trim_end(), ext);
    // A stem of spaces leaves only ".ext": keep it visible and not a dot-file.
    if out.starts_with('.') {
        format!("file{ext}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_dots() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(sanitize_filename(".."), "file");
        assert_eq!(sanitize_filename(".htaccess"), "htaccess");
        assert_eq!(sanitize_filename("dir/"), "file");
        assert_eq!(sanitize_filename(""), "file");
    }

    #[test]
    fn control_and_bidi() {
        assert_eq!(sanitize_filename("evil\u{202e}gnp.exe"), "evilgnp.exe");
        assert_eq!(sanitize_filename("a\r\nb\0c.txt"), "abc.txt");
        assert_eq!(sanitize_filename("say \"hi\".txt"), "say hi.txt");
        assert_eq!(sanitize_filename("zero\u{200b}width.png"), "zerowidth.png");
        assert_eq!(
            sanitize_filename("日本語のファイル.pdf"),
            "日本語のファイル.pdf"
        );
    }

    #[test]
    fn long_names_keep_extension() {
        let long = format!("{}.png", "a".repeat(10_000));
        let s = sanitize_filename(&long);
        assert_eq!(s.len(), MAX_FILENAME_BYTES);
        assert!(s.ends_with(".png"));
        let wide = "é".repeat(10_000);
        let s = sanitize_filename(&wide);
        assert!(s.len() <= MAX_FILENAME_BYTES && s.chars().all(|c| c == 'é'));
    }

    proptest::proptest! {
        #[test]
        fn always_safe(name in "\\PC{0,400}") {
            let s = sanitize_filename(&name);
            proptest::prop_assert!(!s.is_empty() && s.len() <= MAX_FILENAME_BYTES);
            proptest::prop_assert!(!s.contains(['/', '\\']) && !s.starts_with('.'));
            proptest::prop_assert!(!s.chars().any(is_unsafe));
        }
    }
}
