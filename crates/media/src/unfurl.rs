//! Link previews ("unfurling"), the pure half: which URLs of a message get a
//! preview ([`extract_urls`]), what a page's head says about itself
//! ([`parse_html`]: OpenGraph, Twitter cards, `<title>`, `<meta
//! name=description>`, oEmbed discovery), what an oEmbed answer says
//! ([`parse_oembed`]), and the preview made of both ([`combine`]).
//!
//! **No HTTP, no URL resolution, no I/O**: the server fetches (through its
//! SSRF guard), hands the bytes here, and resolves the relative URLs this
//! returns against the page's address. Every input is untrusted: the work is
//! linear in the input, nothing here panics, every value is entity-decoded,
//! stripped of control and bidi-override characters, whitespace-collapsed
//! and bounded. An oEmbed `html` is never kept: third-party markup is never
//! rendered.

use serde_json::Value;

/// The most URLs of one message that get a preview.
pub const MAX_URLS: usize = 5;
/// Longest URL considered (longer ones get no preview).
pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_TITLE_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
pub const MAX_NAME_CHARS: usize = 256;
/// Tags looked at in a page before giving up on its head.
const MAX_TAGS: usize = 4096;

/// Up to [`MAX_URLS`] distinct `http(s)` URLs of a message, in order of
/// appearance. Not previewed: URLs in `<…>` (the sender asked for no
/// preview), in code spans (`` `…` ``) and code blocks (```` ```…``` ````),
/// and URLs longer than [`MAX_URL_BYTES`]. Trailing punctuation and an
/// unbalanced closing bracket are not part of a URL (`(see https://a.b/c).`).
pub fn extract_urls(content: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in outside_code(content) {
        scan_text(text, &mut out);
        if out.len() >= MAX_URLS {
            break;
        }
    }
    out.truncate(MAX_URLS);
    out
}

/// The parts of `s` outside code spans and fenced blocks. A run of
/// backticks opens code only if the same run closes it later; otherwise it
/// is literal text (as in CommonMark).
fn outside_code(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < b.len() && b[i] == b'`' {
            i += 1;
        }
        let run = i - run_start;
        // The closing run: exactly `run` backticks.
        let mut j = i;
        let mut close = None;
        while j < b.len() {
            if b[j] == b'`' {
                let k = j;
                while j < b.len() && b[j] == b'`' {
                    j += 1;
                }
                if j - k == run {
                    close = Some(j);
                    break;
                }
            } else {
                j += 1;
            }
        }
        if let Some(end) = close {
            parts.push(&s[start..run_start]);
            start = end;
            i = end;
        }
    }
    parts.push(&s[start..]);
    parts
}

fn scan_text(text: &str, out: &mut Vec<String>) {
    let lower = text.to_ascii_lowercase();
    let b = text.as_bytes();
    let mut from = 0;
    while from < b.len() && out.len() < MAX_URLS {
        let Some(found) = lower[from..].find("http") else {
            return;
        };
        let at = from + found;
        let scheme_len = if lower[at..].starts_with("https://") {
            8
        } else if lower[at..].starts_with("http://") {
            7
        } else {
            from = at + 4;
            continue;
        };
        // A scheme glued to a word (`xhttp://`) is not a link.
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            from = at + scheme_len;
            continue;
        }
        let mut end = at + scheme_len;
        while end < b.len() {
            let c = b[end];
            if c.is_ascii_whitespace() || c.is_ascii_control() || matches!(c, b'<' | b'>' | b'"') {
                break;
            }
            end += 1;
        }
        let raw = trim_url(&text[at..end]);
        let suppressed = at > 0 && b[at - 1] == b'<' && b.get(at + raw.len()) == Some(&b'>');
        from = end.max(at + scheme_len);
        if suppressed || raw.len() <= scheme_len || raw.len() > MAX_URL_BYTES {
            continue;
        }
        if !out.iter().any(|u| u == raw) {
            out.push(raw.to_string());
        }
    }
}

/// Drops trailing punctuation and closing brackets that do not close one
/// opened inside the URL.
fn trim_url(mut u: &str) -> &str {
    loop {
        let Some(last) = u.chars().last() else {
            return u;
        };
        let drop = match last {
            '.' | ',' | ':' | ';' | '!' | '?' | '\'' | '*' | '_' | '~' => true,
            ')' => u.matches('(').count() < u.matches(')').count(),
            ']' => u.matches('[').count() < u.matches(']').count(),
            _ => false,
        };
        if !drop {
            return u;
        }
        u = &u[..u.len() - last.len_utf8()];
    }
}

/// An image a page or an oEmbed answer names (its URL as written: possibly
/// relative to the page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageRef {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// What a page's head says about it. Every field is cleaned and bounded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageMeta {
    pub og_title: Option<String>,
    pub og_description: Option<String>,
    pub og_site_name: Option<String>,
    pub og_image: Option<ImageRef>,
    pub twitter_title: Option<String>,
    pub twitter_description: Option<String>,
    pub twitter_image: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// `<link rel="alternate" type="application/json+oembed" href=…>`.
    pub oembed_url: Option<String>,
}

/// Reads a page's head: `<meta>`, `<link>` and `<title>` until `</head>` or
/// `<body>`, skipping comments and the contents of `<script>`, `<style>`,
/// `<template>` and `<textarea>`. The first of each property wins. Linear in
/// the input; malformed markup gives what could be read.
pub fn parse_html(html: &[u8]) -> PageMeta {
    let text = String::from_utf8_lossy(html);
    let s: &str = &text;
    let lower = s.to_ascii_lowercase();
    let mut meta = PageMeta::default();
    let mut og_width: Option<u32> = None;
    let mut og_height: Option<u32> = None;
    let mut i = 0;
    let mut tags = 0;
    while let Some(off) = lower[i..].find('<') {
        tags += 1;
        if tags > MAX_TAGS {
            break;
        }
        let at = i + off;
        let rest = &lower[at..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = match comment.find("-->") {
                Some(e) => at + 4 + e + 3,
                None => break,
            };
            continue;
        }
        let name = tag_name(&rest[1..]);
        if name == "/head" || name == "body" {
            break;
        }
        // The end of the tag itself (quotes respected).
        let Some(tag_end) = tag_end(s, at + 1) else {
            break;
        };
        match name {
            "script" | "style" | "template" | "textarea" | "noscript" => {
                let close = format!("</{name}");
                i = match lower[tag_end..].find(&close) {
                    Some(e) => tag_end + e,
                    None => break,
                };
                continue;
            }
            "title" => {
                let body_end = lower[tag_end..]
                    .find("</title")
                    .map_or(s.len(), |e| tag_end + e);
                if meta.title.is_none() {
                    meta.title = clean(&s[tag_end..body_end], MAX_TITLE_CHARS);
                }
                i = body_end;
                continue;
            }
            "meta" => {
                let attrs = attributes(&s[at + 1 + name.len()..tag_end - 1]);
                let key = attr(&attrs, "property")
                    .or_else(|| attr(&attrs, "name"))
                    .map(|k| k.trim().to_ascii_lowercase());
                let content = attr(&attrs, "content");
                if let (Some(key), Some(content)) = (key, content) {
                    apply_meta(&mut meta, &mut og_width, &mut og_height, &key, content);
                }
            }
            "link" => {
                let attrs = attributes(&s[at + 1 + name.len()..tag_end - 1]);
                let rel = attr(&attrs, "rel").unwrap_or_default().to_ascii_lowercase();
                let ty = attr(&attrs, "type")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if meta.oembed_url.is_none()
                    && rel.split_ascii_whitespace().any(|r| r == "alternate")
                    && ty.trim() == "application/json+oembed"
                {
                    meta.oembed_url = attr(&attrs, "href").and_then(|h| clean_url(&h));
                }
            }
            _ => {}
        }
        i = tag_end;
    }
    if let Some(img) = meta.og_image.as_mut() {
        img.width = og_width;
        img.height = og_height;
    }
    meta
}

fn apply_meta(
    meta: &mut PageMeta,
    og_width: &mut Option<u32>,
    og_height: &mut Option<u32>,
    key: &str,
    content: String,
) {
    fn first(slot: &mut Option<String>, v: Option<String>) {
        if slot.is_none() {
            *slot = v;
        }
    }
    match key {
        "og:title" => first(&mut meta.og_title, clean(&content, MAX_TITLE_CHARS)),
        "og:description" => first(
            &mut meta.og_description,
            clean(&content, MAX_DESCRIPTION_CHARS),
        ),
        "og:site_name" => first(&mut meta.og_site_name, clean(&content, MAX_NAME_CHARS)),
        "og:image" | "og:image:url" | "og:image:secure_url" if meta.og_image.is_none() => {
            meta.og_image = clean_url(&content).map(|url| ImageRef {
                url,
                width: None,
                height: None,
            });
        }
        "og:image:width" if og_width.is_none() => *og_width = dimension(&content),
        "og:image:height" if og_height.is_none() => *og_height = dimension(&content),
        "twitter:title" => first(&mut meta.twitter_title, clean(&content, MAX_TITLE_CHARS)),
        "twitter:description" => first(
            &mut meta.twitter_description,
            clean(&content, MAX_DESCRIPTION_CHARS),
        ),
        "twitter:image" | "twitter:image:src" => {
            first(&mut meta.twitter_image, clean_url(&content))
        }
        "description" => first(
            &mut meta.description,
            clean(&content, MAX_DESCRIPTION_CHARS),
        ),
        _ => {}
    }
}

/// The tag's name, lowercase (`/head` for a closing tag), from just after `<`.
fn tag_name(rest: &str) -> &str {
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphanumeric() || (i == 0 && c == '/') || c == '-'))
        .map_or(rest.len(), |(i, _)| i);
    &rest[..end]
}

/// The index just after the `>` that ends the tag starting at `from`,
/// skipping `>` inside quoted attribute values.
fn tag_end(s: &str, from: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = from;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return Some(i + 1),
            None => {}
        }
        i += 1;
    }
    None
}

/// A tag's attributes (names lowercase, values raw: decoded by [`clean`]).
fn attributes(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < 64 {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !(b[i].is_ascii_whitespace() || matches!(b[i], b'=' | b'/' | b'>')) {
            i += 1;
        }
        if i == start {
            i += 1;
            continue;
        }
        let name = s[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                let ve = s[vs..]
                    .bytes()
                    .position(|c| c == q)
                    .map_or(s.len(), |p| vs + p);
                value = s[vs..ve].to_string();
                i = ve + 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[vs..i].to_string();
            }
        }
        out.push((name, value));
    }
    out
}

fn attr(attrs: &[(String, String)], name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn dimension(s: &str) -> Option<u32> {
    let n: u32 = decode_entities(s).trim().parse().ok()?;
    (1..=100_000).contains(&n).then_some(n)
}

/// Decodes HTML character references: the numeric ones and the few named
/// ones pages use in titles. Unknown names stay as written; a reference to
/// NUL, a surrogate or beyond Unicode is U+FFFD.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        // A reference is short: look for its `;` in the next 32 bytes only,
        // so a page of `&`s costs linear time.
        let end = rest.as_bytes()[1..rest.len().min(33)]
            .iter()
            .position(|&c| c == b';')
            .map(|e| e + 1);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = if let Some(num) = name.strip_prefix('#') {
                let n = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    num.parse::<u32>().ok()
                };
                Some(
                    n.filter(|&n| n != 0)
                        .and_then(char::from_u32)
                        .unwrap_or('\u{FFFD}'),
                )
            } else {
                match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "nbsp" => Some('\u{A0}'),
                    "ndash" => Some('–'),
                    "mdash" => Some('—'),
                    "hellip" => Some('…'),
                    "laquo" => Some('«'),
                    "raquo" => Some('»'),
                    "lsquo" => Some('‘'),
                    "rsquo" => Some('’'),
                    "ldquo" => Some('“'),
                    "rdquo" => Some('”'),
                    "copy" => Some('©'),
                    "reg" => Some('®'),
                    "trade" => Some('™'),
                    _ => None,
                }
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Characters never kept in a preview's text: controls, bidi overrides and
/// isolates (which could make a title read as something else), zero-width
/// ones, and the byte-order mark.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Decoded, without hidden characters, whitespace collapsed, trimmed and
/// cut to `max` characters (an ellipsis marks a cut); `None` when empty.
pub fn clean(raw: &str, max: usize) -> Option<String> {
    let decoded = decode_entities(raw);
    let mut out = String::new();
    let mut n = 0;
    let mut space = false;
    for c in decoded.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if hidden(c) {
            continue;
        }
        if space {
            if n + 1 >= max {
                out.push('…');
                return Some(out);
            }
            out.push(' ');
            n += 1;
            space = false;
        }
        if n + 1 >= max {
            out.push('…');
            return Some(out);
        }
        out.push(c);
        n += 1;
    }
    (!out.is_empty()).then_some(out)
}

/// A URL as written in an attribute or JSON: decoded and trimmed, no
/// whitespace or controls inside, at most [`MAX_URL_BYTES`].
fn clean_url(raw: &str) -> Option<String> {
    let u = decode_entities(raw);
    let u = u.trim();
    if u.is_empty() || u.len() > MAX_URL_BYTES || u.chars().any(|c| c.is_whitespace() || hidden(c))
    {
        return None;
    }
    Some(u.to_string())
}

/// What an oEmbed answer says (the `html` of rich and video types is
/// deliberately not read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OEmbed {
    pub title: Option<String>,
    pub author_name: Option<String>,
    pub provider_name: Option<String>,
    pub thumbnail: Option<ImageRef>,
}

/// Parses an oEmbed JSON answer; `None` if it is not a JSON object. Widths
/// and heights may be numbers or numeric strings.
pub fn parse_oembed(json: &[u8]) -> Option<OEmbed> {
    let v: Value = serde_json::from_slice(json).ok()?;
    let o = v.as_object()?;
    let text = |k: &str, max: usize| o.get(k).and_then(Value::as_str).and_then(|s| clean(s, max));
    let number = |k: &str| match o.get(k) {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=100_000).contains(n)),
        Some(Value::String(s)) => dimension(s),
        _ => None,
    };
    let thumbnail = o
        .get("thumbnail_url")
        .and_then(Value::as_str)
        .and_then(clean_url)
        .map(|url| ImageRef {
            url,
            width: number("thumbnail_width"),
            height: number("thumbnail_height"),
        });
    Some(OEmbed {
        title: text("title", MAX_TITLE_CHARS),
        author_name: text("author_name", MAX_NAME_CHARS),
        provider_name: text("provider_name", MAX_NAME_CHARS),
        thumbnail,
    })
}

/// Where a preview's information came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    OEmbed,
    OpenGraph,
    Html,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OEmbed => "oembed",
            Provider::OpenGraph => "opengraph",
            Provider::Html => "html",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "oembed" => Some(Provider::OEmbed),
            "opengraph" => Some(Provider::OpenGraph),
            "html" => Some(Provider::Html),
            _ => None,
        }
    }
}

/// A link's preview, before its image is fetched (`image.url` may be
/// relative to the page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    pub title: Option<String>,
    pub description: Option<String>,
    pub site_name: Option<String>,
    pub author_name: Option<String>,
    pub provider: Provider,
    pub image: Option<ImageRef>,
}

/// The preview of a page and its oEmbed answer, if any: oEmbed first, then
/// OpenGraph, then Twitter cards, then plain HTML. `None` when there is
/// nothing to show (no title, description or image).
pub fn combine(page: &PageMeta, oembed: Option<&OEmbed>) -> Option<Preview> {
    let og = page.og_title.is_some()
        || page.og_description.is_some()
        || page.og_site_name.is_some()
        || page.og_image.is_some();
    let provider = if oembed.is_some() {
        Provider::OEmbed
    } else if og {
        Provider::OpenGraph
    } else {
        Provider::Html
    };
    let oe = oembed.cloned().unwrap_or_default();
    let title = oe
        .title
        .or_else(|| page.og_title.clone())
        .or_else(|| page.twitter_title.clone())
        .or_else(|| page.title.clone());
    let description = page
        .og_description
        .clone()
        .or_else(|| page.twitter_description.clone())
        .or_else(|| page.description.clone());
    let image = oe.thumbnail.or_else(|| page.og_image.clone()).or_else(|| {
        page.twitter_image.clone().map(|url| ImageRef {
            url,
            width: None,
            height: None,
        })
    });
    if title.is_none() && description.is_none() && image.is_none() {
        return None;
    }
    Some(Preview {
        title,
        description,
        site_name: oe.provider_name.or_else(|| page.og_site_name.clone()),
        author_name: oe.author_name,
        provider,
        image,
    })
}

#[cfg(test)]
mod tests;
