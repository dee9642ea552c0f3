//! The real type of a file from its first bytes. Only the magic numbers count: names and
//! declared types are what a client claims, and a mismatch is the caller's to record.

/// How a type may be shown: only `Image`, `Video` and `Audio` are ever served inline.
/// SVG is `Document` (it can carry script), never `Image`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Video,
    Audio,
    Document,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: &'static str,
    pub kind: Kind,
}

impl Sniffed {
    const fn new(mime: &'static str, kind: Kind) -> Self {
        Self { mime, kind }
    }
    /// A raster type the image pipeline decodes.
    pub fn is_decodable_image(&self) -> bool {
        matches!(
            self.mime,
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        )
    }
}

pub const OCTET_STREAM: &str = "application/octet-stream";

/// How many leading bytes [`sniff`] looks at; give it at least this many when the file
/// is that long.
pub const SNIFF_LEN: usize = 512;

pub fn sniff(head: &[u8]) -> Sniffed {
    use Kind::*;
    let starts = |m: &[u8]| head.starts_with(m);
    let at = |off: usize, m: &[u8]| head.len() >= off + m.len() && &head[off..off + m.len()] == m;
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::new("image/png", Image);
    }
    if starts(b"\xff\xd8\xff") {
        return Sniffed::new("image/jpeg", Image);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Sniffed::new("image/gif", Image);
    }
    if starts(b"RIFF") && at(8, b"WEBP") {
        return Sniffed::new("image/webp", Image);
    }
    if starts(b"RIFF") && at(8, b"WAVE") {
        return Sniffed::new("audio/wav", Audio);
    }
    // ISO base media: `ftyp` box at offset 4, the brand after it.
    if at(4, b"ftyp") && head.len() >= 12 {
        let brand = &head[8..12];
        return match brand {
            b"avif" | b"avis" => Sniffed::new("image/avif", Image),
            b"heic" | b"heix" | b"mif1" | b"msf1" => Sniffed::new("image/heic", Image),
            b"M4A " => Sniffed::new("audio/mp4", Audio),
            b"qt  " => Sniffed::new("video/quicktime", Video),
            _ => Sniffed::new("video/mp4", Video),
        };
    }
    if starts(b"\x1a\x45\xdf\xa3") {
        return Sniffed::new("video/webm", Video);
    }
    if starts(b"OggS") {
        return Sniffed::new("audio/ogg", Audio);
    }
    if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xff && head[1] & 0xe0 == 0xe0) {
        return Sniffed::new("audio/mpeg", Audio);
    }
    if starts(b"fLaC") {
        return Sniffed::new("audio/flac", Audio);
    }
    if starts(b"%PDF-") {
        return Sniffed::new("application/pdf", Document);
    }
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        return Sniffed::new("application/zip", Document);
    }
    // Markup: what a browser would sniff as HTML or SVG, after a BOM and whitespace.
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let trimmed: Vec<u8> = text
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(256)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    if contains(&trimmed, b"<svg") {
        return Sniffed::new("image/svg+xml", Document);
    }
    for tag in [
        &b"<!doctype html"[..],
        b"<html",
        b"<head",
        b"<script",
        b"<body",
        b"<iframe",
    ] {
        if trimmed.starts_with(tag) {
            return Sniffed::new("text/html", Document);
        }
    }
    if std::str::from_utf8(text).is_ok() && !text.is_empty() && !text.contains(&0) {
        return Sniffed::new("text/plain", Document);
    }
    Sniffed::new(OCTET_STREAM, Document)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        let cases: &[(&[u8], &str, Kind)] = &[
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png", Kind::Image),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg", Kind::Image),
            (b"GIF89a\x01\0", "image/gif", Kind::Image),
            (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp", Kind::Image),
            (b"RIFF\0\0\0\0WAVEfmt ", "audio/wav", Kind::Audio),
            (b"\0\0\0\x1cftypavif", "image/avif", Kind::Image),
            (b"\0\0\0\x18ftypheic", "image/heic", Kind::Image),
            (b"\0\0\0\x18ftypisom", "video/mp4", Kind::Video),
            (b"\x1a\x45\xdf\xa3\x9f", "video/webm", Kind::Video),
            (b"OggS\0\x02", "audio/ogg", Kind::Audio),
            (b"ID3\x04\0", "audio/mpeg", Kind::Audio),
            (b"%PDF-1.7\n", "application/pdf", Kind::Document),
            (b"PK\x03\x04\x14\0", "application/zip", Kind::Document),
            (
                b"<?xml version=\"1.0\"?>\n<svg xmlns=",
                "image/svg+xml",
                Kind::Document,
            ),
            (b"  <!DOCTYPE html><html>", "text/html", Kind::Document),
            (b"hello, world\n", "text/plain", Kind::Document),
            (b"\0\x01\x02\x03", OCTET_STREAM, Kind::Document),
            (b"", OCTET_STREAM, Kind::Document),
        ];
        for (bytes, mime, kind) in cases {
            let s = sniff(bytes);
            assert_eq!((s.mime, s.kind), (*mime, *kind), "{bytes:?}");
        }
    }

    #[test]
    fn svg_is_never_an_image() {
        let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>";
        let s = sniff(svg);
        assert_eq!(s.kind, Kind::Document);
        assert!(!s.is_decodable_image());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = sniff(&bytes);
        }
    }
}
