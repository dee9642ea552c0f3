//! Serves the built web app (a static export) on the same origin as the API,
//! with a strict Content-Security-Policy. Next.js puts its bootstrap data in
//! inline scripts; rather than allowing every inline script, each HTML file's
//! inline scripts are hashed once and exactly those hashes are allowed.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::state::AppState;

#[derive(Clone)]
pub struct WebAssets {
    root: PathBuf,
    csp: Arc<Mutex<HashMap<PathBuf, HeaderValue>>>,
}

impl WebAssets {
    /// The web build at `dir`, if it holds an `index.html`.
    pub fn open(dir: &Path) -> Option<WebAssets> {
        dir.join("index.html").is_file().then(|| WebAssets {
            root: dir.to_path_buf(),
            csp: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let rel = Path::new(path.trim_start_matches('/'));
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return None;
        }
        let base = self.root.join(rel);
        let mut candidates = vec![base.join("index.html")];
        if !path.ends_with('/') {
            candidates.insert(0, base.clone());
            candidates.insert(1, base.with_extension("html"));
        }
        candidates.into_iter().find(|p| p.is_file())
    }

    fn csp_for(&self, file: &Path, html: &[u8]) -> HeaderValue {
        if let Some(v) = self.csp.lock().get(file) {
            return v.clone();
        }
        let v = HeaderValue::from_str(&policy(&inline_script_hashes(html)))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        self.csp.lock().insert(file.to_path_buf(), v.clone());
        v
    }
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

pub async fn serve(State(state): State<AppState>, uri: Uri) -> Response {
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
    let bytes = match tokio::fs::read(&file).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let ct = content_type(&file);
    let mut res = (status, bytes.clone()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if ct.starts_with("text/html") {
        h.insert(header::CONTENT_SECURITY_POLICY, web.csp_for(&file, &bytes));
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
        assert_eq!(w.resolve("/login").unwrap(), dir.path().join("login.html"));
        assert_eq!(w.resolve("/").unwrap(), dir.path().join("index.html"));
    }
}
