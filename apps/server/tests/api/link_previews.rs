//! Link previews against a real local web site: one axum app served on two
//! loopback addresses with the same port, 127.0.0.2 (allow-listed with
//! `media.link_preview_allow_addresses`) and 127.0.0.1 (forbidden like any
//! private address). Previews come from the allowed one; every way of
//! reaching the forbidden one (literal, `localhost`, mapped IPv6, 0.0.0.0,
//! decimal/octal/hex forms, a redirect) gives no preview and never a request
//! there: its hit counter stays 0.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use image::ImageEncoder;
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::gateway::Gw;
use crate::media::{eventually, message};
use crate::{TestServer, User};

/// The web site's address, allowed for previews.
pub const ALLOWED: &str = "127.0.0.2";

/// What one listener of the site saw.
#[derive(Default)]
pub struct Hits {
    pub total: AtomicUsize,
    pub paths: Mutex<HashMap<String, usize>>,
}

impl Hits {
    pub fn path(&self, p: &str) -> usize {
        self.paths.lock().get(p).copied().unwrap_or(0)
    }
}

/// The local web site: the same pages on the allowed and the forbidden address.
pub struct Site {
    pub port: u16,
    pub allowed: Arc<Hits>,
    pub forbidden: Arc<Hits>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Site {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Site {
    /// `http://127.0.0.2:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{ALLOWED}:{}{path}", self.port)
    }
}

/// The server's configuration for these tests: the site's address allowed,
/// fetches limited to one second (the slow page takes three).
pub fn previews_on(c: &mut hearth_server::config::Config) {
    c.media.link_preview_allow_addresses = vec![ALLOWED.parse().expect("ip")];
    c.media.link_preview_timeout_ms = 1000;
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255])
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgba8)
        .expect("png");
    out
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn redirect(to: String) -> Response {
    (AxumStatus::FOUND, [(header::LOCATION, to)]).into_response()
}

#[derive(Clone)]
struct SiteState {
    hits: Arc<Hits>,
    port: u16,
    image: Arc<Vec<u8>>,
}

async fn page(State(st): State<SiteState>, Path(path): Path<String>) -> Response {
    st.hits.total.fetch_add(1, Ordering::SeqCst);
    *st.hits.paths.lock().entry(format!("/{path}")).or_insert(0) += 1;
    let og = |title: &str| {
        html(format!(
            "<!doctype html><html><head><title>Plain {title}</title>\
             <meta property=\"og:title\" content=\"{title} &amp; more\">\
             <meta property=\"og:description\" content=\"A page about {title}\">\
             <meta property=\"og:site_name\" content=\"Local Site\">\
             <meta property=\"og:image\" content=\"/image.png\">\
             <script>document.write('<meta property=\"og:title\" content=\"no\">')</script>\
             </head><body>hello</body></html>"
        ))
    };
    match path.as_str() {
        "og" | "cached" | "burst" | "sentinel" | "edited" => og(&path),
        "plain" => html(
            "<html><head><title>Just a page</title><meta name=\"description\" content=\"Plain words\"></head></html>".into(),
        ),
        "video" => html(
            "<html><head><meta property=\"og:title\" content=\"OG video title\">\
             <link rel=\"alternate\" type=\"application/json+oembed\" href=\"/oembed.json?u=1&amp;f=json\">\
             </head></html>"
                .into(),
        ),
        "oembed.json" => (
            [(header::CONTENT_TYPE, "application/json")],
            json!({
                "type": "video", "version": "1.0", "title": "A video",
                "author_name": "Someone", "provider_name": "Tube",
                "thumbnail_url": "/image.png", "thumbnail_width": 640, "thumbnail_height": 480,
                "html": "<iframe src=\"https://evil.example\"></iframe><script>alert(1)</script>"
            })
            .to_string(),
        )
            .into_response(),
        "image.png" => ([(header::CONTENT_TYPE, "image/png")], (*st.image).clone()).into_response(),
        "to-forbidden" => redirect(format!("http://127.0.0.1:{}/og", st.port)),
        "to-file" => redirect("file:///etc/passwd".into()),
        "big" => html(format!(
            "<html><head><title>big</title></head><body>{}</body></html>",
            "x".repeat(2 * 1024 * 1024)
        )),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            og("slow")
        }
        "not-html" => ([(header::CONTENT_TYPE, "application/octet-stream")], "<title>x</title>").into_response(),
        p if p.starts_with("hops/") => {
            let n: u32 = p["hops/".len()..].parse().unwrap_or(0);
            if n == 0 {
                og("hops")
            } else {
                redirect(format!("/hops/{}", n - 1))
            }
        }
        _ => (AxumStatus::NOT_FOUND, "no").into_response(),
    }
}

/// Starts the site on 127.0.0.2 and 127.0.0.1 with one port.
pub async fn start_site() -> Site {
    let image = Arc::new(png(800, 600));
    for _ in 0..50 {
        let a = tokio::net::TcpListener::bind((ALLOWED, 0))
            .await
            .expect("bind 127.0.0.2");
        let port = a.local_addr().expect("addr").port();
        let Ok(f) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await else {
            continue;
        };
        let allowed = Arc::new(Hits::default());
        let forbidden = Arc::new(Hits::default());
        let mut tasks = Vec::new();
        for (listener, hits) in [(a, allowed.clone()), (f, forbidden.clone())] {
            let app = axum::Router::new()
                .route("/{*path}", axum::routing::get(page))
                .with_state(SiteState {
                    hits,
                    port,
                    image: image.clone(),
                });
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        return Site {
            port,
            allowed,
            forbidden,
            tasks,
        };
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.1");
}

/// The value of a counter with these labels (in any order) in `/metrics`.
async fn counter(s: &TestServer, name: &str, labels: &[&str]) -> Option<u64> {
    s.metrics().await.value(name, labels).map(|v| v as u64)
}

/// The message's embeds once it has `n` of them.
pub async fn embeds_of(s: &TestServer, who: &User, channel: &str, id: &str, n: usize) -> Value {
    eventually(&format!("{n} embeds on {id}"), || async {
        let m = message(s, who, channel, id).await;
        (m["embeds"].as_array().map(Vec::len) == Some(n)).then(|| m["embeds"].clone())
    })
    .await
}

/// The dispatch of type `t` about message `id`, skipping others.
async fn dispatch_for(gw: &mut Gw, t: &str, id: &str) -> Value {
    loop {
        let d = gw.expect(t).await;
        if d["id"] == id {
            return d;
        }
    }
}

pub async fn previews_come_from_allowed_addresses(s: &TestServer) {
    let site = start_site().await;
    let owner = s.register("unfurlowner").await;
    let member = s.register("unfurlmember").await;
    let (cid, ch) = s.community(&owner, "Links").await;
    s.join(&owner, &cid, &member).await;
    let (mut gw, _) = Gw::identify(s, &member).await;

    // One previewed URL; a quiet one (<…>) and one in code are not fetched.
    let content = format!(
        "look {} and <{}> and `{}`",
        site.url("/og"),
        site.url("/quiet"),
        site.url("/code")
    );
    let m = s.send(&owner, &ch, &content).await;
    let mid = m["id"].as_str().expect("id").to_string();
    assert_eq!(m["embeds"], json!([]), "none yet when the send answers");
    let created = dispatch_for(&mut gw, "MESSAGE_CREATE", &mid).await;
    assert_eq!(created["embeds"], json!([]));
    let updated = dispatch_for(&mut gw, "MESSAGE_UPDATE", &mid).await;
    let e = &updated["embeds"];
    assert_eq!(e.as_array().map(Vec::len), Some(1), "{updated}");
    assert_eq!(e[0]["url"], site.url("/og"));
    assert_eq!(e[0]["title"], "og & more");
    assert_eq!(e[0]["description"], "A page about og");
    assert_eq!(e[0]["site_name"], "Local Site");
    assert_eq!(e[0]["author_name"], Value::Null);
    assert_eq!(e[0]["provider"], "opengraph");
    // The 800×600 image, made a WebP of at most 400 px and served by us.
    assert_eq!(e[0]["image"]["width"], 400);
    assert_eq!(e[0]["image"]["height"], 300);
    let image_url = e[0]["image"]["url"]
        .as_str()
        .expect("image url")
        .to_string();
    assert!(
        image_url.starts_with("/api/v1/embeds/") && image_url.ends_with("/image.webp"),
        "{image_url}"
    );
    assert_eq!(site.allowed.path("/quiet"), 0);
    assert_eq!(site.allowed.path("/code"), 0);
    assert_eq!(site.allowed.path("/og"), 1);
    assert_eq!(site.allowed.path("/image.png"), 1);

    // REST history carries them too.
    let (st, page) = s
        .get(&format!("/api/v1/channels/{ch}/messages"), &member.token)
        .await;
    assert_eq!(st, StatusCode::OK);
    let listed = page
        .as_array()
        .expect("page")
        .iter()
        .find(|x| x["id"] == mid.as_str())
        .expect("in history");
    assert_eq!(listed["embeds"], *e);

    // The image: signed-in users only, with the attachments' safe headers.
    let r = s
        .http
        .get(format!("{}{image_url}", s.base))
        .bearer_auth(&member.token)
        .send()
        .await
        .expect("image");
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h[header::CONTENT_TYPE.as_str()], "image/webp");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert!(
        h[header::CACHE_CONTROL.as_str()]
            .to_str()
            .expect("ascii")
            .contains("immutable")
    );
    let bytes = r.bytes().await.expect("bytes");
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).expect("webp");
    assert_eq!((img.width(), img.height()), (400, 300));
    let r = s
        .http
        .get(format!("{}{image_url}", s.base))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // oEmbed: its title, author and provider, the thumbnail; never its html.
    let m = s.send(&owner, &ch, &site.url("/video")).await;
    let vid = m["id"].as_str().expect("id").to_string();
    let e = embeds_of(s, &member, &ch, &vid, 1).await;
    assert_eq!(e[0]["provider"], "oembed");
    assert_eq!(e[0]["title"], "A video");
    assert_eq!(e[0]["author_name"], "Someone");
    assert_eq!(e[0]["site_name"], "Tube");
    assert!(e[0]["image"]["url"].is_string(), "{e}");
    assert!(e[0].get("html").is_none(), "{e}");
    assert!(
        !e.to_string().contains("iframe") && !e.to_string().contains("<script"),
        "{e}"
    );
    assert_eq!(site.allowed.path("/oembed.json"), 1);

    // Plain HTML, and three redirects (the most followed), in one message.
    let m = s
        .send(
            &owner,
            &ch,
            &format!("{} {}", site.url("/plain"), site.url("/hops/3")),
        )
        .await;
    let pid = m["id"].as_str().expect("id").to_string();
    let e = embeds_of(s, &member, &ch, &pid, 2).await;
    assert_eq!(e[0]["provider"], "html");
    assert_eq!(e[0]["title"], "Just a page");
    assert_eq!(e[0]["description"], "Plain words");
    assert_eq!(e[0]["image"], Value::Null);
    assert_eq!(e[1]["url"], site.url("/hops/3"));
    assert_eq!(e[1]["title"], "hops & more");

    // An edit that changes the URLs changes the previews; one that drops
    // them leaves none.
    let (st, _) = s
        .patch(
            &format!("/api/v1/channels/{ch}/messages/{pid}"),
            &owner.token,
            json!({"content": format!("now {}", site.url("/edited"))}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let e = eventually("the edited preview", || async {
        let m = message(s, &member, &ch, &pid).await;
        (m["embeds"][0]["url"] == site.url("/edited").as_str()).then(|| m["embeds"].clone())
    })
    .await;
    assert_eq!(e.as_array().map(Vec::len), Some(1));
    let (st, _) = s
        .patch(
            &format!("/api/v1/channels/{ch}/messages/{pid}"),
            &owner.token,
            json!({"content": "no links any more"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    embeds_of(s, &member, &ch, &pid, 0).await;

    // Deleting the message deletes its previews.
    let (st, _) = s
        .delete(
            &format!("/api/v1/channels/{ch}/messages/{mid}"),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let r = s
        .http
        .get(format!("{}{image_url}", s.base))
        .bearer_auth(&member.token)
        .send()
        .await
        .expect("image");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(site.forbidden.total.load(Ordering::SeqCst), 0);
}

pub async fn forbidden_addresses_are_never_reached(s: &TestServer) {
    let site = start_site().await;
    let owner = s.register("ssrfowner").await;
    let (_, ch) = s.community(&owner, "Forbidden").await;
    let port = site.port;
    let forbidden = [
        // A path each, so each is its own URL (not a cached refusal).
        format!("http://127.0.0.1:{port}/literal"),
        format!("http://localhost:{port}/name"),
        format!("http://LOCALHOST.:{port}/name-dot"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
        format!("http://[::1]:{port}/v6-loopback"),
        format!("http://0.0.0.0:{port}/unspecified"),
        format!("http://2130706433:{port}/decimal"),
        format!("http://0177.0.0.1:{port}/octal"),
        format!("http://0x7f.0.0.1:{port}/hex"),
        format!("http://127.1:{port}/short"),
        format!("http://user:secret@{ALLOWED}:{port}/creds"),
        site.url("/to-forbidden"),
        site.url("/to-file"),
        site.url("/hops/4"),
        site.url("/big"),
        site.url("/slow"),
        site.url("/not-html"),
        format!("ftp://{ALLOWED}:{port}/og"),
        "file:///etc/passwd".to_string(),
        format!("gopher://{ALLOWED}:{port}/og"),
    ];
    let mut ids = Vec::new();
    for url in &forbidden {
        let m = s.send(&owner, &ch, &format!("see {url}")).await;
        ids.push((url.clone(), m["id"].as_str().expect("id").to_string()));
    }
    // A good link after them: once its preview is there, so are theirs
    // (read in order, at most a second each).
    let m = s.send(&owner, &ch, &site.url("/sentinel")).await;
    let sentinel = m["id"].as_str().expect("id").to_string();
    embeds_of(s, &owner, &ch, &sentinel, 1).await;
    eventually("the slow page's request", || async {
        (site.allowed.path("/slow") == 1 && site.allowed.path("/big") == 1).then_some(())
    })
    .await;
    // The slow page's fetch gives up after a second; let it.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for (url, id) in &ids {
        let m = message(s, &owner, &ch, id).await;
        assert_eq!(m["embeds"], json!([]), "{url} must not be previewed");
    }
    assert_eq!(
        site.forbidden.total.load(Ordering::SeqCst),
        0,
        "nothing reached the forbidden address: {:?}",
        site.forbidden.paths.lock()
    );
    // On the allowed address: the redirects were followed to the fourth hop
    // and no further; the URL with credentials and the refused redirect's
    // target were never requested.
    for (p, n) in [
        ("/hops/4", 1),
        ("/hops/3", 1),
        ("/hops/2", 1),
        ("/hops/1", 1),
        ("/hops/0", 0),
        ("/creds", 0),
        ("/og", 0),
        ("/to-forbidden", 1),
        ("/to-file", 1),
    ] {
        assert_eq!(site.allowed.path(p), n, "requests for {p}");
    }
    // Counted by reason (`ftp:`, `file:` and `gopher:` are not links to a
    // message, so only the redirect to `file:` counts as a scheme refusal),
    // and the server is fine.
    for (reason, n) in [
        // Ten URLs and the redirect to 127.0.0.1.
        ("address", 11),
        ("credentials", 1),
        ("redirects", 1),
        ("scheme", 1),
    ] {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(
            counter(s, "hearth_link_preview_blocked_total", &[&label]).await,
            Some(n),
            "blocked for {reason}"
        );
    }
    for result in ["timeout", "too_large", "type"] {
        let label = format!("result=\"{result}\"");
        assert_eq!(
            counter(
                s,
                "hearth_link_preview_fetches_total",
                &["kind=\"page\"", &label]
            )
            .await,
            Some(1),
            "{result}"
        );
    }
    let (st, _) = s.get("/api/v1/users/@me", &owner.token).await;
    assert_eq!(st, StatusCode::OK);
}

pub async fn a_url_is_fetched_once(s: &TestServer) {
    let site = start_site().await;
    let owner = s.register("cacheowner").await;
    let (_, ch) = s.community(&owner, "Cache").await;
    let first = s.send(&owner, &ch, &site.url("/cached")).await;
    let first = first["id"].as_str().expect("id").to_string();
    let e1 = embeds_of(s, &owner, &ch, &first, 1).await;
    let second = s
        .send(&owner, &ch, &format!("again: {}", site.url("/cached")))
        .await;
    let second = second["id"].as_str().expect("id").to_string();
    let e2 = embeds_of(s, &owner, &ch, &second, 1).await;
    assert_eq!(e1[0]["title"], e2[0]["title"]);
    assert_eq!(site.allowed.path("/cached"), 1, "fetched once");

    // Ten messages at once with one new URL: still one fetch.
    let mut ids = Vec::new();
    for i in 0..10 {
        let m = s
            .send(&owner, &ch, &format!("{i} {}", site.url("/burst")))
            .await;
        ids.push(m["id"].as_str().expect("id").to_string());
    }
    for id in &ids {
        embeds_of(s, &owner, &ch, id, 1).await;
    }
    assert_eq!(site.allowed.path("/burst"), 1, "fetched once");
    // Both pages name the same image: fetched once per page's preview.
    assert_eq!(site.allowed.path("/image.png"), 2);
    let hits = counter(s, "hearth_link_preview_cache_total", &["result=\"hit\""])
        .await
        .expect("cache hits counted");
    assert!(hits >= 10, "{hits} cache hits");
}

/// With `media.link_previews` off nothing is fetched and messages carry
/// no previews.
pub async fn previews_can_be_turned_off(s: &TestServer) {
    let site = start_site().await;
    let owner = s.register("offowner").await;
    let (_, ch) = s.community(&owner, "Quiet").await;
    let m = s.send(&owner, &ch, &site.url("/og")).await;
    let id = m["id"].as_str().expect("id").to_string();
    // The consumers that do run (search, notifications) have long seen it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(message(s, &owner, &ch, &id).await["embeds"], json!([]));
    assert_eq!(site.allowed.total.load(Ordering::SeqCst), 0);
    assert_eq!(site.forbidden.total.load(Ordering::SeqCst), 0);
}

/// A site for other modules (the operations fixture) and the address it
/// serves a previewable page at.
pub async fn page_for_fixture() -> (Site, String) {
    let site = start_site().await;
    let url = site.url("/og");
    (site, url)
}
