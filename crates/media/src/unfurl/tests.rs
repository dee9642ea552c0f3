use super::*;

#[test]
fn urls_in_plain_text() {
    assert_eq!(
        extract_urls("see https://example.com/a and http://example.org."),
        vec!["https://example.com/a", "http://example.org"]
    );
    // Case-insensitive scheme, punctuation and brackets around the URL.
    assert_eq!(
        extract_urls("(HTTPS://Example.com/x_(y)), [link](https://a.example/b)!"),
        vec!["HTTPS://Example.com/x_(y)", "https://a.example/b"]
    );
    // Not links: other schemes, a scheme glued to a word, a bare scheme.
    assert!(
        extract_urls("ftp://x.example javascript:alert(1) xhttp://a.b http:// https://").is_empty()
    );
}

#[test]
fn angle_brackets_and_code_mean_no_preview() {
    assert!(extract_urls("<https://example.com/quiet>").is_empty());
    assert!(extract_urls("`https://example.com/code`").is_empty());
    assert!(extract_urls("```\nhttps://example.com/block\n```").is_empty());
    assert!(extract_urls("``a ` https://example.com/x ``").is_empty());
    // An unclosed backtick is literal text.
    assert_eq!(
        extract_urls("it's ` https://example.com/open"),
        vec!["https://example.com/open"]
    );
    // Only the bracketed one is quiet.
    assert_eq!(
        extract_urls("<https://a.example/> https://b.example/ <https://c.example/"),
        vec!["https://b.example/", "https://c.example/"]
    );
}

#[test]
fn at_most_five_distinct() {
    let content = (0..9)
        .map(|i| {
            format!(
                "https://example.com/{} https://example.com/{}",
                i % 7,
                i % 7
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let urls = extract_urls(&content);
    assert_eq!(
        urls,
        (0..5)
            .map(|i| format!("https://example.com/{i}"))
            .collect::<Vec<_>>()
    );
    let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
    assert!(extract_urls(&long).is_empty());
}

const OG_PAGE: &str = r#"<!doctype html>
<html><head>
<meta charset="utf-8">
<title>Plain title</title>
<meta property="og:title" content="Hearth &amp; friends">
<meta property="og:description" content="A chat server &#8212; self-hosted&#x21;">
<meta property="og:site_name" content='Example'>
<meta property="og:image" content="/img/cover.png">
<meta property="og:image:width" content="1200">
<meta property="og:image:height" content="630">
<meta name="twitter:title" content="Twitter title">
<meta name="description" content="Plain description">
<link rel="alternate" type="application/json+oembed" href="/oembed?url=x&amp;format=json">
</head><body><meta property="og:title" content="too late"></body></html>"#;

#[test]
fn opengraph_page() {
    let m = parse_html(OG_PAGE.as_bytes());
    assert_eq!(m.og_title.as_deref(), Some("Hearth & friends"));
    assert_eq!(
        m.og_description.as_deref(),
        Some("A chat server — self-hosted!")
    );
    assert_eq!(m.og_site_name.as_deref(), Some("Example"));
    assert_eq!(
        m.og_image,
        Some(ImageRef {
            url: "/img/cover.png".into(),
            width: Some(1200),
            height: Some(630)
        })
    );
    assert_eq!(m.title.as_deref(), Some("Plain title"));
    assert_eq!(m.twitter_title.as_deref(), Some("Twitter title"));
    assert_eq!(m.description.as_deref(), Some("Plain description"));
    assert_eq!(m.oembed_url.as_deref(), Some("/oembed?url=x&format=json"));
    let p = combine(&m, None).expect("preview");
    assert_eq!(p.provider, Provider::OpenGraph);
    assert_eq!(p.title.as_deref(), Some("Hearth & friends"));
    assert_eq!(p.site_name.as_deref(), Some("Example"));
    assert_eq!(p.author_name, None);
}

#[test]
fn fallbacks_twitter_then_html() {
    let twitter = parse_html(
        br#"<head><meta name="twitter:title" content="T"><meta name="twitter:image:src" content="https://cdn.example/t.jpg"></head>"#,
    );
    let p = combine(&twitter, None).expect("preview");
    assert_eq!(p.provider, Provider::Html);
    assert_eq!(p.title.as_deref(), Some("T"));
    assert_eq!(
        p.image.map(|i| i.url).as_deref(),
        Some("https://cdn.example/t.jpg")
    );

    let plain = parse_html(
        b"<HTML><HEAD><TITLE>\n  Just   a\tpage </TITLE><META NAME=Description CONTENT=\"Words\"></HEAD>",
    );
    let p = combine(&plain, None).expect("preview");
    assert_eq!(p.provider, Provider::Html);
    assert_eq!(p.title.as_deref(), Some("Just a page"));
    assert_eq!(p.description.as_deref(), Some("Words"));
    assert!(p.image.is_none());

    // Nothing to show: no preview.
    assert_eq!(
        combine(&parse_html(b"<html><body>hi</body></html>"), None),
        None
    );
}

#[test]
fn oembed_answer() {
    let o = parse_oembed(
        br#"{"type":"video","version":"1.0","title":"A video","author_name":"Someone",
            "provider_name":"Tube","thumbnail_url":"https://img.example/t.jpg",
            "thumbnail_width":"480","thumbnail_height":360,
            "html":"<iframe src=\"https://evil.example\"></iframe><script>alert(1)</script>"}"#,
    )
    .expect("parsed");
    assert_eq!(
        o,
        OEmbed {
            title: Some("A video".into()),
            author_name: Some("Someone".into()),
            provider_name: Some("Tube".into()),
            thumbnail: Some(ImageRef {
                url: "https://img.example/t.jpg".into(),
                width: Some(480),
                height: Some(360)
            }),
        }
    );
    let page = parse_html(OG_PAGE.as_bytes());
    let p = combine(&page, Some(&o)).expect("preview");
    assert_eq!(p.provider, Provider::OEmbed);
    assert_eq!(p.title.as_deref(), Some("A video"));
    assert_eq!(p.author_name.as_deref(), Some("Someone"));
    assert_eq!(p.site_name.as_deref(), Some("Tube"));
    // The page's description still describes it.
    assert_eq!(
        p.description.as_deref(),
        Some("A chat server — self-hosted!")
    );
    assert_eq!(
        p.image.map(|i| i.url).as_deref(),
        Some("https://img.example/t.jpg")
    );

    for bad in [&b"[]"[..], b"null", b"not json", b"{\"title\": 5", b""] {
        assert_eq!(parse_oembed(bad), None, "{bad:?}");
    }
    // Junk values are dropped, not trusted.
    let o = parse_oembed(br#"{"title":{"x":1},"thumbnail_url":"a b","thumbnail_width":-3}"#)
        .expect("object");
    assert_eq!(o, OEmbed::default());
}

#[test]
fn scripts_comments_and_styles_are_skipped() {
    let m = parse_html(
        br#"<head>
        <!-- <meta property="og:title" content="in a comment"> -->
        <script>var s = '<meta property="og:title" content="in a script">'; if (a < b) {}</script>
        <style>/* <title>in a style</title> */</style>
        <meta property="og:title" content="<script>alert(1)</script> real">
        <title>T</title></head>"#,
    );
    // Markup in a value is text: never interpreted, shown escaped by clients.
    assert_eq!(
        m.og_title.as_deref(),
        Some("<script>alert(1)</script> real")
    );
    assert_eq!(m.title.as_deref(), Some("T"));
}

#[test]
fn hostile_values_are_cleaned_and_bounded() {
    let long = "x".repeat(10_000);
    let page = format!(
        "<meta property=\"og:title\" content=\"{long}\">\
         <meta property=\"og:description\" content=\"a\u{202E}b\u{0}c\u{200B}d&#0;&#xD800;&#1114112;\">\
         <meta property=\"og:image\" content=\"javascript:alert(1) x\">\
         <meta property=\"og:image:width\" content=\"99999999999\">"
    );
    let m = parse_html(page.as_bytes());
    let title = m.og_title.expect("title");
    assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
    assert!(title.ends_with('…'));
    assert_eq!(
        m.og_description.as_deref(),
        Some("abcd\u{FFFD}\u{FFFD}\u{FFFD}")
    );
    assert_eq!(m.og_image, None);
    // Entities that are not entities stay as written.
    assert_eq!(
        decode_entities("a & b &unknown; &#xZZ; &"),
        "a & b &unknown; \u{FFFD} &"
    );
}

#[test]
fn malformed_and_huge_pages_do_not_hang_or_panic() {
    let cases: Vec<Vec<u8>> = vec![
        b"<".to_vec(),
        b"<meta".to_vec(),
        b"<meta property=\"og:title content=>".to_vec(),
        b"<!--".to_vec(),
        b"<script>never closed <meta property=\"og:title\" content=\"x\">".to_vec(),
        b"<title>unterminated".to_vec(),
        vec![
            0xff, 0xfe, b'<', 0xc3, b't', b'i', b't', b'l', b'e', b'>', 0x80,
        ],
        "<".repeat(1 << 20).into_bytes(),
        "&".repeat(1 << 20).into_bytes(),
        "<meta ".repeat(200_000).into_bytes(),
        "<a href='".repeat(100_000).into_bytes(),
        "`".repeat(100_000).into_bytes(),
    ];
    for c in &cases {
        let started = std::time::Instant::now();
        let _ = parse_html(c);
        let _ = extract_urls(&String::from_utf8_lossy(c));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{} bytes took {:?}",
            c.len(),
            started.elapsed()
        );
    }
    // A page with more than MAX_TAGS tags before its head's end gives up.
    let late = format!("{}<title>late</title>", "<i>".repeat(10_000));
    assert_eq!(parse_html(late.as_bytes()).title, None);
    assert_eq!(
        parse_html(b"<title>&lt;b&gt;bold&lt;/b&gt;</title>")
            .title
            .as_deref(),
        Some("<b>bold</b>")
    );
}

#[test]
fn providers_round_trip() {
    for p in [Provider::OEmbed, Provider::OpenGraph, Provider::Html] {
        assert_eq!(Provider::parse(p.as_str()), Some(p));
    }
    assert_eq!(Provider::parse("x"), None);
}
