//! Serves the built web app (a static export) on the same origin as the API,
//! with a strict Content-Security-Policy. Next.js puts its bootstrap data in
//! inline scripts; rather than allowing every inline script, each HTML file's
//! inline scripts are hashed once and exactly those hashes are allowed.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// One file of the web app compiled into the binary (`build.rs` writes the list; it is
/// empty unless the `embed-web` feature is on).
pub struct EmbeddedFile {
    /// From the app's root, `/`-separated: `index.html`, `_next/static/...`.
    pub path: &'static str,
    pub bytes: &'static [u8],
    /// The same bytes gzip-compressed, for text files where that saves something.
    pub gzip: Option<&'static [u8]>,
}

mod embedded {
    use super::EmbeddedFile;
    include!(concat!(env!("OUT_DIR"), "/embedded_web.rs"));
}

/// The built web app, served from a directory (development, `web_dir`) or from memory
/// (compiled in, or loaded by a test).
#[derive(Clone)]
pub struct WebAssets {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Dir {
        root: PathBuf,
        /// Each HTML file's policy, computed on first use.
        csp: Arc<Mutex<HashMap<PathBuf, HeaderValue>>>,
    },
    Memory(Arc<HashMap<String, MemoryFile>>),
}

/// A file held in memory, with everything a response needs worked out once.
struct MemoryFile {
    bytes: Bytes,
    gzip: Option<Bytes>,
    /// Strong validator: a digest of the bytes (the same for both encodings' content).
    etag: HeaderValue,
    content_type: &'static str,
    /// HTML only.
    csp: Option<HeaderValue>,
}

impl WebAssets {
    /// The web build at `dir`, if it holds an `index.html`.
    pub fn open(dir: &Path) -> Option<WebAssets> {
        dir.join("index.html").is_file().then(|| WebAssets {
            source: Source::Dir {
                root: dir.to_path_buf(),
                csp: Default::default(),
            },
        })
    }

    /// The app compiled into this binary, if it was built with `embed-web`.
    pub fn embedded() -> Option<WebAssets> {
        WebAssets::in_memory(embedded::FILES.iter().map(|f| {
            (
                f.path.to_string(),
                Bytes::from_static(f.bytes),
                f.gzip.map(Bytes::from_static),
            )
        }))
    }

    /// An app held in memory: (path from the root, bytes, gzip-compressed bytes if any).
    /// `None` without an `index.html`.
    pub fn in_memory(
        files: impl IntoIterator<Item = (String, Bytes, Option<Bytes>)>,
    ) -> Option<WebAssets> {
        let files: HashMap<String, MemoryFile> = files
            .into_iter()
            .map(|(path, bytes, gzip)| {
                let ct = content_type(Path::new(&path));
                let csp = ct.starts_with("text/html").then(|| csp_header(&bytes));
                let digest = Sha256::digest(&bytes);
                let etag = format!(
                    "\"{}\"",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
                );
                let file = MemoryFile {
                    etag: HeaderValue::from_str(&etag).expect("base64 is a valid header"),
                    content_type: ct,
                    csp,
                    bytes,
                    gzip,
                };
                (path, file)
            })
            .collect();
        files.contains_key("index.html").then(|| WebAssets {
            source: Source::Memory(Arc::new(files)),
        })
    }

    /// Where it is served from, for the log.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Dir { root, .. } => root.display().to_string(),
            Source::Memory(files) => format!("memory ({} files compiled in)", files.len()),
        }
    }

    /// The file a request path names, as a path from the root: the file itself, then
    /// `<path>.html`, then `<path>/index.html` (a path ending in `/`: only the last).
    fn resolve(&self, path: &str) -> Option<String> {
        let rel = path.trim_start_matches('/');
        if Path::new(rel)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let trimmed = rel.trim_end_matches('/');
        let mut candidates = Vec::with_capacity(3);
        if !path.ends_with('/') {
            candidates.push(rel.to_string());
            candidates.push(format!("{rel}.html"));
        }
        candidates.push(if trimmed.is_empty() {
            "index.html".to_string()
        } else {
            format!("{trimmed}/index.html")
        });
        candidates.into_iter().find(|c| match &self.source {
            Source::Dir { root, .. } => root.join(c).is_file(),
            Source::Memory(files) => files.contains_key(c),
        })
    }
}

/// The Content-Security-Policy for one HTML file: its inline scripts' hashes allowed.
fn csp_header(html: &[u8]) -> HeaderValue {
    HeaderValue::from_str(&policy(&inline_script_hashes(html)))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

/// `sha256-...` sources for every inline `<script>` (one without `src`).
pub fn inline_script_hashes(html: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(html);
    let mut out = Vec::new();
    let mut rest = &text[..];
    while let Some(start) = rest.find("<script") {
        rest = &rest[start..];
        let Some(tag_end) = rest.find('>') else { break };
        let tag = &rest[..tag_end];
        let body_start = tag_end + 1;
        let Some(close) = rest[body_start..].find("</script>") else {
            break;
        };
        let body = &rest[body_start..body_start + close];
        if !tag.contains(" src=") && !body.is_empty() {
            let digest = Sha256::digest(body.as_bytes());
            out.push(format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ));
        }
        rest = &rest[body_start + close..];
    }
    out.sort();
    out.dedup();
    out
}

pub fn policy(script_hashes: &[String]) -> String {
    format!(
        "default-src 'self'; script-src 'self' {}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
         font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        script_hashes.join(" ")
    )
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

pub async fn serve(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(web) = &state.web else {
        return (StatusCode::OK, Html(NOT_BUILT)).into_response();
    };
    let (file, status) = match web.resolve(uri.path()) {
        Some(f) => (f, StatusCode::OK),
        None => match web.resolve("/404") {
            Some(f) => (f, StatusCode::NOT_FOUND),
            None => return (StatusCode::NOT_FOUND, "not found").into_response(),
        },
    };
    let mut res = match &web.source {
        Source::Dir { root, csp } => {
            let path = root.join(&file);
            let Ok(bytes) = tokio::fs::read(&path).await else {
                return (StatusCode::NOT_FOUND, "not found").into_response();
            };
            let ct = content_type(&path);
            let policy = ct.starts_with("text/html").then(|| {
                csp.lock()
                    .entry(path.clone())
                    .or_insert_with(|| csp_header(&bytes))
                    .clone()
            });
            let mut res = (status, bytes).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            if let Some(p) = policy {
                h.insert(header::CONTENT_SECURITY_POLICY, p);
            }
            res
        }
        Source::Memory(files) => {
            let Some(f) = files.get(&file) else {
                return (StatusCode::NOT_FOUND, "not found").into_response();
            };
            memory_response(f, status, &headers)
        }
    };
    let h = res.headers_mut();
    let html = h
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if html {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else if uri.path().starts_with("/_next/static/") {
        // Content-hashed file names: safe to keep forever.
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    res
}

/// A file from memory: 304 when the client's copy is current, gzip when it accepts it.
fn memory_response(f: &MemoryFile, status: StatusCode, req: &HeaderMap) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(f.content_type),
    );
    h.insert(header::ETAG, f.etag.clone());
    if let Some(p) = &f.csp {
        h.insert(header::CONTENT_SECURITY_POLICY, p.clone());
    }
    if f.gzip.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if status == StatusCode::OK && etag_matches(req, &f.etag) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    let body = match &f.gzip {
        Some(gz) if accepts_gzip(req) => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gz.clone()
        }
        _ => f.bytes.clone(),
    };
    (status, h, body).into_response()
}

/// `If-None-Match` names this entity tag (or `*`).
fn etag_matches(req: &HeaderMap, etag: &HeaderValue) -> bool {
    let want = etag.as_bytes();
    req.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.trim_start_matches("W/").as_bytes() == want)
        })
    })
}

/// `Accept-Encoding` allows gzip (listed without `q=0`, or `*` allowed).
fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|item| {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=")
                        .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
                });
                (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
            })
        })
    })
}

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Hearth</title></head>\
<body><h1>Hearth is running</h1><p>The web app has not been built. Build it with \
<code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code> and restart, or use the API at \
<code>/api/v1</code> (<a href=\"/api/v1/openapi.json\">OpenAPI document</a>).</p></body></html>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_only_inline_scripts() {
        let html = br#"<html><script src="/a.js"></script><script>alert(1)</script><script id="x">b()</script></html>"#;
        let h = inline_script_hashes(html);
        assert_eq!(h.len(), 2);
        assert!(h.iter().all(|s| s.starts_with("'sha256-")));
        assert!(policy(&h).contains("object-src 'none'"));
    }

    #[test]
    fn refuses_path_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.path().join("login.html"), "<p>login</p>").unwrap();
        let w = WebAssets::open(dir.path()).unwrap();
        assert!(w.resolve("/../etc/passwd").is_none());
        assert_eq!(w.resolve("/login").unwrap(), "login.html");
        assert_eq!(w.resolve("/").unwrap(), "index.html");
    }

    fn memory(files: &[(&str, &str)]) -> WebAssets {
        WebAssets::in_memory(
            files
                .iter()
                .map(|(p, b)| (p.to_string(), Bytes::from(b.to_string()), None)),
        )
        .unwrap()
    }

    #[test]
    fn memory_resolves_like_a_directory() {
        let w = memory(&[
            ("index.html", "<p>home</p>"),
            ("login.html", "<p>login</p>"),
            ("app/index.html", "<p>app</p>"),
            ("_next/static/a.js", "x()"),
        ]);
        assert_eq!(w.resolve("/").unwrap(), "index.html");
        assert_eq!(w.resolve("/login").unwrap(), "login.html");
        assert_eq!(w.resolve("/app").unwrap(), "app/index.html");
        assert_eq!(w.resolve("/app/").unwrap(), "app/index.html");
        assert_eq!(
            w.resolve("/_next/static/a.js").unwrap(),
            "_next/static/a.js"
        );
        assert!(w.resolve("/_next/../index.html").is_none());
        assert!(w.resolve("/missing").is_none());
        // Without an index.html there is no app.
        assert!(WebAssets::in_memory([("a.js".to_string(), Bytes::new(), None)]).is_none());
    }

    #[test]
    fn content_negotiation_headers() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, br"),
        );
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("*"));
        assert!(accepts_gzip(&h));
        let tag = HeaderValue::from_static("\"abc\"");
        let mut h = HeaderMap::new();
        assert!(!etag_matches(&h, &tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(etag_matches(&h, &tag));
    }

    #[test]
    fn embedded_list_matches_the_feature() {
        // Built without embed-web the list is empty; with it, it holds the app.
        assert_eq!(WebAssets::embedded().is_some(), cfg!(feature = "embed-web"));
    }
}
