//! Uploads, attachments on messages, safe serving and the image pipeline,
//! through real HTTP (and raw sockets for clients that lie or stop), on both
//! database backends; the S3 blob backend against a real moto server once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use image::ImageEncoder;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gateway::Gw;
use crate::{Db, TestServer, User, assert_error};

const BOUNDARY: &str = "hearth-test-boundary-7d1f";

fn form(filename: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(bytes);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

async fn upload_to(
    s: &TestServer,
    who: &User,
    path: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let res = s
        .http
        .post(format!("{}{path}", s.base))
        .bearer_auth(&who.token)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form(filename, content_type, bytes))
        .send()
        .await
        .expect("upload");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Uploads `bytes` as the multipart field `file` to `channel`.
pub async fn upload(
    s: &TestServer,
    who: &User,
    channel: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    upload_to(
        s,
        who,
        &format!("/api/v1/channels/{channel}/attachments"),
        filename,
        content_type,
        bytes,
    )
    .await
}

async fn fetch(
    s: &TestServer,
    who: &User,
    url: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = s
        .http
        .get(format!("{}{url}", s.base))
        .bearer_auth(&who.token);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("download");
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.bytes().await.expect("body").to_vec())
}

fn h<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
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

/// A JPEG carrying an EXIF block with a recognisable "GPS" payload.
fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([20, 120, 220]));
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut plain)
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .expect("jpeg");
    let payload = b"Exif\0\0GPS 48.8584N 2.2945E where-i-live";
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&plain[2..]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

async fn send_files(
    s: &TestServer,
    who: &User,
    channel: &str,
    ids: &[&str],
) -> (StatusCode, Value) {
    s.post(
        &format!("/api/v1/channels/{channel}/messages"),
        &who.token,
        json!({"content": "", "attachment_ids": ids}),
    )
    .await
}

/// Polls `f` every 50 ms for up to 10 s until it returns Some.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn message(s: &TestServer, who: &User, channel: &str, id: &str) -> Value {
    let (st, m) = s
        .get(
            &format!("/api/v1/channels/{channel}/messages/{id}"),
            &who.token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{m}");
    m
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub async fn upload_send_fetch_download(s: &TestServer) {
    let owner = s.register("mediaowner").await;
    let member = s.register("mediamember").await;
    let (cid, ch) = s.community(&owner, "Pictures").await;
    s.join(&owner, &cid, &member).await;
    let (mut gw, _) = Gw::identify(s, &member).await;

    let picture = png(800, 600);
    let (st, up) = upload(s, &owner, &ch, "holiday.png", "image/png", &picture).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().expect("id").to_string();
    assert_eq!(up["filename"], "holiday.png");
    assert_eq!(up["content_type"], "image/png");
    assert_eq!(up["size"], picture.len());
    assert_eq!(up["url"], format!("/api/v1/attachments/{id}/holiday.png"));

    let (st, m) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &owner.token,
            json!({"content": "look", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let mid = m["id"].as_str().expect("mid").to_string();
    assert_eq!(m["attachments"][0]["id"], id.as_str());
    assert_eq!(m["attachments"][0]["filename"], "holiday.png");
    assert_eq!(m["attachments"][0]["url"], up["url"]);

    // The gateway shows the preview: in MESSAGE_CREATE if the pipeline was
    // first, else in the MESSAGE_UPDATE it announces.
    let created = gw.expect("MESSAGE_CREATE").await;
    assert_eq!(created["attachments"][0]["id"], id.as_str());
    if created["attachments"][0]["preview_url"].is_null() {
        let updated = gw.expect("MESSAGE_UPDATE").await;
        assert_eq!(updated["id"], mid.as_str());
        assert!(
            updated["attachments"][0]["preview_url"].is_string(),
            "{updated}"
        );
    }

    let done = eventually("the preview", || async {
        let m = message(s, &member, &ch, &mid).await;
        m["attachments"][0]["preview_url"].is_string().then_some(m)
    })
    .await;
    let a = &done["attachments"][0];
    assert_eq!(
        (a["width"].as_i64(), a["height"].as_i64()),
        (Some(800), Some(600))
    );
    assert_eq!(a["blurhash"].as_str().map(str::len), Some(28));
    // Lists show it too.
    let (_, list) = s
        .get(&format!("/api/v1/channels/{ch}/messages"), &member.token)
        .await;
    assert_eq!(list[0]["attachments"][0]["id"], id.as_str());

    // The member downloads it: the same bytes, inline, safe headers, cacheable.
    let url = a["url"].as_str().expect("url");
    let (st, hd, body) = fetch(s, &member, url, &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body == picture, "downloaded bytes differ");
    assert_eq!(h(&hd, "content-type"), "image/png");
    assert_eq!(h(&hd, "x-content-type-options"), "nosniff");
    assert_eq!(h(&hd, "content-security-policy"), "sandbox");
    assert!(
        h(&hd, "content-disposition").starts_with("inline"),
        "{hd:?}"
    );
    assert!(h(&hd, "cache-control").contains("immutable"), "{hd:?}");
    assert!(h(&hd, "etag").len() > 60);
    // The preview is a WebP within 640 px.
    let (st, hd, prev) = fetch(s, &member, a["preview_url"].as_str().expect("preview"), &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h(&hd, "content-type"), "image/webp");
    let decoded = image::load_from_memory(&prev).expect("preview decodes");
    assert_eq!((decoded.width(), decoded.height()), (640, 480));

    // Metadata goes: a photo's EXIF GPS is not in what is served.
    let photo = jpeg_with_gps(64, 48);
    let (st, up2) = upload(s, &owner, &ch, "photo.jpg", "image/jpeg", &photo).await;
    assert_eq!(st, StatusCode::CREATED, "{up2}");
    let id2 = up2["id"].as_str().expect("id").to_string();
    let (st, m2) = send_files(s, &owner, &ch, &[&id2]).await;
    assert_eq!(st, StatusCode::CREATED, "{m2}");
    let mid2 = m2["id"].as_str().expect("mid").to_string();
    eventually("the photo's preview", || async {
        message(s, &owner, &ch, &mid2).await["attachments"][0]["preview_url"]
            .as_str()
            .map(|_| ())
    })
    .await;
    let (st, _, served) = fetch(s, &member, up2["url"].as_str().expect("url"), &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(contains(&photo, b"where-i-live") && !contains(&served, b"where-i-live"));
    assert!(image::load_from_memory(&served).is_ok(), "still a JPEG");

    // An id is sent once, by its uploader, in its channel; at most 10 a message.
    let (st, e) = send_files(s, &owner, &ch, &[&id]).await;
    assert_error(st, &e, 400, "invalid_request");
    let (_, up3) = upload(s, &owner, &ch, "a.txt", "text/plain", b"hello").await;
    let id3 = up3["id"].as_str().expect("id").to_string();
    let (st, e) = send_files(s, &member, &ch, &[&id3]).await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = send_files(s, &owner, &ch, &[&id3, &id3]).await;
    assert_error(st, &e, 400, "invalid_request");
    let mut many = Vec::new();
    for i in 0..11 {
        let (_, u) = upload(s, &owner, &ch, &format!("{i}.txt"), "text/plain", b"x").await;
        many.push(u["id"].as_str().expect("id").to_string());
    }
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let (st, e) = send_files(s, &owner, &ch, &refs).await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, m10) = send_files(s, &owner, &ch, &refs[..10]).await;
    assert_eq!(st, StatusCode::CREATED, "{m10}");
    assert_eq!(m10["attachments"].as_array().map(Vec::len), Some(10));
}

pub async fn permissions_are_checked(s: &TestServer) {
    let owner = s.register("permowner").await;
    let member = s.register("permmember").await;
    let outsider = s.register("permoutsider").await;
    let (cid, ch) = s.community(&owner, "Closed").await;
    s.join(&owner, &cid, &member).await;

    let (st, up) = upload(s, &owner, &ch, "plan.txt", "text/plain", b"the plan").await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let url = up["url"].as_str().expect("url").to_string();
    // Unsent: only the uploader sees it.
    assert_eq!(fetch(s, &owner, &url, &[]).await.0, StatusCode::OK);
    let (st, _, body) = fetch(s, &member, &url, &[]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(
        st,
        &serde_json::from_slice(&body).expect("json"),
        404,
        "not_found",
    );
    let id = up["id"].as_str().expect("id").to_string();
    let (st, _) = send_files(s, &owner, &ch, &[&id]).await;
    assert_eq!(st, StatusCode::CREATED);
    // Sent: members see it, outsiders do not (404, never 403).
    assert_eq!(fetch(s, &member, &url, &[]).await.0, StatusCode::OK);
    assert_eq!(
        fetch(s, &outsider, &url, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    // No token: 401.
    let res = s
        .http
        .get(format!("{}{url}", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // An outsider cannot upload into the channel (it does not exist for them).
    let (st, e) = upload(s, &outsider, &ch, "x.txt", "text/plain", b"x").await;
    assert_error(st, &e, 404, "not_found");
    // Without ATTACH_FILES: 403 naming it.
    let (st, o) = s
        .put(
            &format!("/api/v1/channels/{ch}/overwrites/{cid}"),
            &owner.token,
            Some(json!({"target_type": "role", "deny": ["ATTACH_FILES"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{o}");
    let (st, e) = upload(s, &member, &ch, "x.txt", "text/plain", b"x").await;
    assert_error(st, &e, 403, "forbidden");
    assert_eq!(
        e["error"]["details"]["missing_permissions"],
        json!(["ATTACH_FILES"])
    );

    // A channel the member cannot see: its files are 404 for them.
    let (st, secret) = s
        .post(
            &format!("/api/v1/communities/{cid}/channels"),
            &owner.token,
            json!({"name": "secret"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{secret}");
    let secret = secret["id"].as_str().expect("id").to_string();
    let (st, _) = s
        .put(
            &format!("/api/v1/channels/{secret}/overwrites/{cid}"),
            &owner.token,
            Some(json!({"target_type": "role", "deny": ["VIEW_CHANNEL"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, hidden) = upload(s, &owner, &secret, "hidden.txt", "text/plain", b"hidden").await;
    let hid = hidden["id"].as_str().expect("id").to_string();
    let (st, _) = send_files(s, &owner, &secret, &[&hid]).await;
    assert_eq!(st, StatusCode::CREATED);
    let hurl = hidden["url"].as_str().expect("url");
    assert_eq!(fetch(s, &owner, hurl, &[]).await.0, StatusCode::OK);
    assert_eq!(fetch(s, &member, hurl, &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        fetch(s, &member, &format!("/api/v1/attachments/{hid}"), &[])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

pub async fn bad_input_is_refused_or_served_safely(s: &TestServer) {
    let owner = s.register("badowner").await;
    let (_, ch) = s.community(&owner, "Bad input").await;

    // Zero bytes: 400.
    let (st, e) = upload(s, &owner, &ch, "empty.txt", "text/plain", b"").await;
    assert_error(st, &e, 400, "invalid_request");
    // No `file` field, or not multipart.
    let res = s
        .http
        .post(format!("{}/api/v1/channels/{ch}/attachments", s.base))
        .bearer_auth(&owner.token)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_error(
        StatusCode::BAD_REQUEST,
        &res.json().await.expect("json"),
        400,
        "invalid_request",
    );
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{ch}/attachments"),
            &owner.token,
            json!({}),
        )
        .await;
    assert_error(st, &e, 415, "unsupported_media_type");

    // Names: separators, control and bidi characters go; 10,000 characters are cut.
    let (st, a) = upload(s, &owner, &ch, "../../etc/passwd", "text/plain", b"root").await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    assert_eq!(a["filename"], "passwd");
    let (_, a) = upload(s, &owner, &ch, "..\\..\\boot.ini", "text/plain", b"x").await;
    assert_eq!(a["filename"], "boot.ini");
    let (_, a) = upload(
        s,
        &owner,
        &ch,
        "invoice\u{202e}fdp.exe",
        "application/pdf",
        b"MZ",
    )
    .await;
    assert_eq!(a["filename"], "invoicefdp.exe");
    assert_eq!(a["content_type"], "text/plain", "sniffed, not declared");
    let long = format!("{}.txt", "n".repeat(10_000));
    let (st, a) = upload(s, &owner, &ch, &long, "text/plain", b"x").await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let name = a["filename"].as_str().expect("name");
    assert!(name.len() <= 255 && name.ends_with(".txt"), "{name}");
    let (st, hd, _) = fetch(s, &owner, a["url"].as_str().expect("url"), &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h(&hd, "content-disposition").starts_with("attachment; filename*=UTF-8''nnn"));

    // SVG with script: stored, never inline, never as SVG.
    let svg =
        br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>"#;
    let (st, a) = upload(s, &owner, &ch, "cat.svg", "image/svg+xml", svg).await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    assert_eq!(a["content_type"], "image/svg+xml");
    let (st, hd, body) = fetch(s, &owner, a["url"].as_str().expect("url"), &[]).await;
    assert_eq!((st, body.as_slice()), (StatusCode::OK, &svg[..]));
    assert_eq!(h(&hd, "content-type"), "application/octet-stream");
    assert!(h(&hd, "content-disposition").starts_with("attachment"));
    assert_eq!(h(&hd, "content-security-policy"), "sandbox");
    assert_eq!(h(&hd, "x-content-type-options"), "nosniff");

    // HTML declared as a PNG: the bytes decide; a download.
    let html = b"<!doctype html><script>alert(1)</script>";
    let (_, a) = upload(s, &owner, &ch, "innocent.png", "image/png", html).await;
    assert_eq!(a["content_type"], "text/html");
    let (_, hd, _) = fetch(s, &owner, a["url"].as_str().expect("url"), &[]).await;
    assert_eq!(h(&hd, "content-type"), "application/octet-stream");
    assert!(h(&hd, "content-disposition").starts_with("attachment"));

    // A polyglot (PNG magic, then HTML): the pipeline refuses to decode it,
    // and from then on it is served as a download, not an image.
    let mut poly = b"\x89PNG\r\n\x1a\n".to_vec();
    poly.extend_from_slice(b"<html><script>alert(1)</script></html>");
    let (st, a) = upload(s, &owner, &ch, "poly.png", "image/png", &poly).await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    assert_eq!(a["content_type"], "image/png");
    let url = a["url"].as_str().expect("url").to_string();
    let hd = eventually("the polyglot marked undecodable", || async {
        let (_, hd, _) = fetch(s, &owner, &url, &[]).await;
        (h(&hd, "content-type") == "application/octet-stream").then_some(hd)
    })
    .await;
    assert!(h(&hd, "content-disposition").starts_with("attachment"));

    // A decompression bomb: a tiny PNG claiming 100,000 × 100,000 pixels.
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let (st, a) = upload(s, &owner, &ch, "bomb.png", "image/png", &bomb).await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let burl = a["url"].as_str().expect("url").to_string();
    eventually("the bomb marked undecodable", || async {
        let (_, hd, _) = fetch(s, &owner, &burl, &[]).await;
        (h(&hd, "content-type") == "application/octet-stream").then_some(())
    })
    .await;
    // Truncated: half a PNG.
    let half = png(300, 300);
    let (st, _) = upload(
        s,
        &owner,
        &ch,
        "half.png",
        "image/png",
        &half[..half.len() / 2],
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    // The server is fine afterwards.
    let (st, _) = upload(s, &owner, &ch, "ok.png", "image/png", &png(10, 10)).await;
    assert_eq!(st, StatusCode::CREATED);
}

/// Writes a raw HTTP request whose body is `sent` of a declared `declared`
/// bytes, then closes the writing half; returns the status line, if any.
async fn raw_upload(
    s: &TestServer,
    who: &User,
    ch: &str,
    declared: usize,
    sent: &[u8],
    close_all: bool,
) -> String {
    let mut sock = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/channels/{ch}/attachments HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {declared}\r\n\r\n",
        s.addr, who.token
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    sock.write_all(sent).await.expect("body");
    if close_all {
        drop(sock);
        return String::new();
    }
    sock.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

pub async fn limits_and_broken_uploads(db: Db) {
    let data = tempfile::tempdir().expect("dir");
    let data_dir = data.path().to_path_buf();
    let s = TestServer::start_with(db, |c| {
        c.data_dir = data_dir.clone();
        c.media.max_upload_bytes = 64 * 1024;
    })
    .await;
    let owner = s.register("limitowner").await;
    let (_, ch) = s.community(&owner, "Limits").await;
    let blobs = data.path().join("blobs");

    // Over the cap, with an honest Content-Length: refused before reading.
    let (st, e) = upload(
        &s,
        &owner,
        &ch,
        "big.bin",
        "application/octet-stream",
        &pattern(200 * 1024),
    )
    .await;
    assert_error(st, &e, 413, "payload_too_large");
    // Over the cap but under the multipart allowance: refused while streaming.
    let (st, e) = upload(
        &s,
        &owner,
        &ch,
        "big.bin",
        "application/octet-stream",
        &pattern(64 * 1024 + 1),
    )
    .await;
    assert_error(st, &e, 413, "payload_too_large");
    assert_eq!(e["error"]["details"]["max_bytes"], 64 * 1024);
    // Exactly at the cap is fine.
    let (st, _) = upload(
        &s,
        &owner,
        &ch,
        "fits.bin",
        "application/octet-stream",
        &pattern(64 * 1024),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);

    // A lying Content-Length (more than is sent, then the client half-closes):
    // a 400, and nothing stored.
    let body = form("liar.bin", "application/octet-stream", &pattern(10_000));
    let status = raw_upload(
        &s,
        &owner,
        &ch,
        body.len() + 5_000,
        &body[..body.len() - 100],
        false,
    )
    .await;
    assert!(status.contains(" 400 "), "{status:?}");
    // An upload that stops halfway (the connection drops).
    let body = form("gone.bin", "application/octet-stream", &pattern(50_000));
    raw_upload(&s, &owner, &ch, body.len(), &body[..body.len() / 2], true).await;
    // Neither left a blob or a temp file: only the one that fit is there.
    eventually("temp files cleared", || async {
        let files = files_under(&blobs);
        (files.len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        std::fs::metadata(files_under(&blobs.join("att"))[0].clone())
            .expect("meta")
            .len(),
        64 * 1024
    );
    // The server still works.
    let (st, _) = upload(&s, &owner, &ch, "after.txt", "text/plain", b"still here").await;
    assert_eq!(st, StatusCode::CREATED);
    s.stop().await;
}

pub async fn ranges_and_etags(s: &TestServer) {
    let owner = s.register("rangeowner").await;
    let (_, ch) = s.community(&owner, "Ranges").await;
    let data = pattern(100_000);
    let (st, up) = upload(
        s,
        &owner,
        &ch,
        "data.bin",
        "application/octet-stream",
        &data,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let url = up["url"].as_str().expect("url").to_string();

    let (st, hd, body) = fetch(s, &owner, &url, &[("range", "bytes=100-199")]).await;
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h(&hd, "content-range"), "bytes 100-199/100000");
    assert_eq!(body, data[100..200]);
    let (st, _, body) = fetch(s, &owner, &url, &[("range", "bytes=-10")]).await;
    assert_eq!(
        (st, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &data[99_990..])
    );
    let (st, _, body) = fetch(s, &owner, &url, &[("range", "bytes=99000-")]).await;
    assert_eq!(
        (st, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &data[99_000..])
    );
    let (st, hd, body) = fetch(s, &owner, &url, &[("range", "bytes=200000-")]).await;
    assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h(&hd, "content-range"), "bytes */100000");
    assert_error(
        st,
        &serde_json::from_slice(&body).expect("json"),
        416,
        "invalid_request",
    );

    let (st, hd, body) = fetch(s, &owner, &url, &[]).await;
    assert_eq!((st, body.len()), (StatusCode::OK, 100_000));
    assert_eq!(h(&hd, "accept-ranges"), "bytes");
    assert!(h(&hd, "content-disposition").starts_with("attachment"));
    let etag = h(&hd, "etag").to_string();
    use sha2::Digest;
    assert_eq!(
        etag,
        format!("\"{}\"", hex_lower(&sha2::Sha256::digest(&data)))
    );
    assert_eq!(
        h(&hd, "cache-control"),
        "private, max-age=31536000, immutable"
    );
    let (st, hd, body) = fetch(s, &owner, &url, &[("if-none-match", &etag)]).await;
    assert_eq!((st, body.len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!(h(&hd, "etag"), etag);
    let (st, _, _) = fetch(s, &owner, &url, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(st, StatusCode::OK);
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub async fn avatars(s: &TestServer) {
    let me = s.register("avatarme").await;
    let other = s.register("avatarother").await;
    // A member of a community `me` is in sees the new avatar live.
    let (cid, _) = s.community(&me, "Faces").await;
    s.join(&me, &cid, &other).await;
    let (mut gw, _) = Gw::identify(s, &other).await;
    let (st, up) = upload_to(
        s,
        &me,
        "/api/v1/users/@me/avatar",
        "me.png",
        "image/png",
        &png(64, 64),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().expect("id").to_string();
    let (st, e) = s
        .patch("/api/v1/users/@me", &other.token, json!({"avatar_id": id}))
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, u) = s
        .patch("/api/v1/users/@me", &me.token, json!({"avatar_id": id}))
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    let url = format!("/api/v1/attachments/{id}");
    assert_eq!(
        u["user"]["avatar_url"]
            .as_str()
            .or(u["avatar_url"].as_str()),
        Some(url.as_str()),
        "{u}"
    );
    let seen = loop {
        let d = gw.expect("USER_UPDATE").await;
        if d["id"] == me.id.as_str() {
            break d;
        }
    };
    assert_eq!(seen["avatar_url"], url.as_str(), "{seen}");
    assert!(seen.get("email").is_none(), "public fields only: {seen}");
    let (st, hd, body) = fetch(s, &other, &url, &[]).await;
    assert_eq!(st, StatusCode::OK);
    // Stored as a square WebP (tests/api/uploads.rs checks the crop).
    assert_eq!(h(&hd, "content-type"), "image/webp");
    assert!(image::load_from_memory(&body).is_ok());
    // Not an image: refused.
    let (st, e) = upload_to(
        s,
        &me,
        "/api/v1/users/@me/avatar",
        "me.svg",
        "image/svg+xml",
        b"<svg></svg>",
    )
    .await;
    assert_error(st, &e, 400, "invalid_request");
    // A message upload is not an avatar.
    let (_, ch) = s.community(&me, "Avatars").await;
    let (_, file) = upload(s, &me, &ch, "x.png", "image/png", &png(8, 8)).await;
    let (st, e) = s
        .patch(
            "/api/v1/users/@me",
            &me.token,
            json!({"avatar_id": file["id"]}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    // Clearing it.
    let (st, u) = s
        .patch("/api/v1/users/@me", &me.token, json!({"avatar_id": null}))
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
}

pub async fn unsent_uploads_expire(db: Db) {
    let data = tempfile::tempdir().expect("dir");
    let data_dir = data.path().to_path_buf();
    let s = TestServer::start_with(db, |c| {
        c.data_dir = data_dir.clone();
        c.media.upload_ttl_secs = 1;
    })
    .await;
    let owner = s.register("expireowner").await;
    let (_, ch) = s.community(&owner, "Expiry").await;
    let (_, kept) = upload(&s, &owner, &ch, "kept.txt", "text/plain", b"kept").await;
    let kid = kept["id"].as_str().expect("id").to_string();
    let (st, _) = send_files(&s, &owner, &ch, &[&kid]).await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, gone) = upload(&s, &owner, &ch, "gone.txt", "text/plain", b"gone").await;
    let gurl = gone["url"].as_str().expect("url").to_string();
    let att = data.path().join("blobs/att");
    eventually("the unsent upload collected", || async {
        (fetch(&s, &owner, &gurl, &[]).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert_eq!(
        files_under(&att).len(),
        1,
        "only the sent file's blob remains"
    );
    assert_eq!(
        fetch(&s, &owner, kept["url"].as_str().expect("url"), &[])
            .await
            .0,
        StatusCode::OK
    );
    let (st, e) = send_files(&s, &owner, &ch, &[gone["id"].as_str().expect("id")]).await;
    assert_error(st, &e, 400, "invalid_request");
    s.stop().await;
}

pub async fn deleted_messages_lose_their_files(db: Db) {
    let data = tempfile::tempdir().expect("dir");
    let data_dir = data.path().to_path_buf();
    let s = TestServer::start_with(db, |c| {
        c.data_dir = data_dir.clone();
        c.media.upload_ttl_secs = 60;
        c.media.deleted_file_grace_secs = 1;
    })
    .await;
    let owner = s.register("orphanowner").await;
    let (_, ch) = s.community(&owner, "Orphans").await;
    let mut sent = Vec::new();
    for name in ["a.txt", "b.txt"] {
        let (_, f) = upload(&s, &owner, &ch, name, "text/plain", name.as_bytes()).await;
        let id = f["id"].as_str().expect("id").to_string();
        let (st, m) = send_files(&s, &owner, &ch, &[&id]).await;
        assert_eq!(st, StatusCode::CREATED, "{m}");
        sent.push((m["id"].as_str().expect("id").to_string(), f));
    }
    let (other, other_ch) = s.community(&owner, "Doomed").await;
    let (_, c) = upload(&s, &owner, &other_ch, "c.txt", "text/plain", b"c").await;
    let (st, _) = send_files(&s, &owner, &other_ch, &[c["id"].as_str().expect("id")]).await;
    assert_eq!(st, StatusCode::CREATED);
    let att = data.path().join("blobs/att");
    assert_eq!(files_under(&att).len(), 3);

    // A deleted message's file goes after the grace period; the other stays.
    let (st, _) = s
        .delete(
            &format!("/api/v1/channels/{ch}/messages/{}", sent[0].0),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    eventually("the deleted message's file collected", || async {
        (files_under(&att).len() == 2).then_some(())
    })
    .await;
    let url = |f: &Value| f["url"].as_str().expect("url").to_string();
    assert_eq!(
        fetch(&s, &owner, &url(&sent[0].1), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&s, &owner, &url(&sent[1].1), &[]).await.0,
        StatusCode::OK
    );

    // A deleted community's files go too, and nothing else.
    let (st, _) = s
        .delete(&format!("/api/v1/communities/{other}"), &owner.token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    eventually("the deleted community's file collected", || async {
        (files_under(&att).len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        fetch(&s, &owner, &url(&sent[1].1), &[]).await.0,
        StatusCode::OK
    );
    s.stop().await;
}

/// A server whose blob store is S3 (a real moto, `scripts/moto.sh`).
pub async fn s3_backend_serves_files() {
    let url =
        std::env::var("HEARTH_TEST_S3_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".into());
    let bucket = format!("hearth-api-{:016x}", rand::random::<u64>());
    let res = reqwest::Client::new()
        .put(format!("{url}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no S3 server at {url} (run scripts/moto.sh): {e}"));
    assert!(
        res.status().is_success(),
        "creating the bucket: {}",
        res.status()
    );
    let (endpoint, b) = (url.clone(), bucket.clone());
    let s = TestServer::start_with(Db::Sqlite, move |c| {
        c.media.blob_backend = "s3".into();
        c.media.s3_bucket = b;
        c.media.s3_endpoint = endpoint;
        c.media.s3_access_key_id = "test".into();
        c.media.s3_secret_access_key = hearth_server::config::Secret("test".into());
        c.media.s3_allow_http = true;
    })
    .await;
    let owner = s.register("s3owner").await;
    let (_, ch) = s.community(&owner, "S3").await;
    let picture = png(700, 100);
    let (st, up) = upload(&s, &owner, &ch, "wide.png", "image/png", &picture).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().expect("id").to_string();
    let (st, m) = send_files(&s, &owner, &ch, &[&id]).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let mid = m["id"].as_str().expect("mid").to_string();
    let done = eventually("the preview on S3", || async {
        let m = message(&s, &owner, &ch, &mid).await;
        m["attachments"][0]["preview_url"].is_string().then_some(m)
    })
    .await;
    let (st, _, body) = fetch(&s, &owner, up["url"].as_str().expect("url"), &[]).await;
    assert!(st == StatusCode::OK && body == picture);
    let (st, _, body) = fetch(
        &s,
        &owner,
        up["url"].as_str().expect("url"),
        &[("range", "bytes=0-7")],
    )
    .await;
    assert_eq!(
        (st, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"\x89PNG\r\n\x1a\n"[..])
    );
    let (st, _, prev) = fetch(
        &s,
        &owner,
        done["attachments"][0]["preview_url"].as_str().expect("p"),
        &[],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let decoded =
        image::load_from_memory_with_format(&prev, image::ImageFormat::WebP).expect("webp");
    assert_eq!((decoded.width(), decoded.height()), (640, 91));
    // The bytes really are in the bucket.
    let listing = reqwest::get(format!("{url}/{bucket}?list-type=2"))
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert!(
        listing.contains(&format!("att/{id}")) && listing.contains(&format!("prev/{id}.webp")),
        "{listing}"
    );
    s.stop().await;
}

/// A clip made by Debian's ffmpeg (the test command installs it; without
/// it this fails rather than skips).
fn ffmpeg_clip(args: &[&str], ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join(format!("clip.{ext}"));
    let st = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg is installed (scripts/test.sh installs it)");
    assert!(st.success(), "ffmpeg made {ext}");
    std::fs::read(out).expect("clip")
}

/// Video gets its duration and a poster frame as its preview; audio its
/// duration; something that only starts like a video stays a plain file
/// and the pipeline goes on.
pub async fn video_and_audio(s: &TestServer) {
    let owner = s.register("avowner").await;
    let member = s.register("avmember").await;
    let (cid, ch) = s.community(&owner, "Clips").await;
    s.join(&owner, &cid, &member).await;
    let webm = ffmpeg_clip(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10",
            "-t",
            "2",
            "-c:v",
            "libvpx",
            "-b:v",
            "200k",
        ],
        "webm",
    );
    let wav = ffmpeg_clip(
        &["-f", "lavfi", "-i", "sine=frequency=440:duration=3"],
        "wav",
    );
    // WebM's magic, then nothing a demuxer can use.
    let mut broken = webm[..64.min(webm.len())].to_vec();
    broken.extend(std::iter::repeat_n(0x5a, 4096));

    let mut ids = Vec::new();
    for (name, mime, bytes) in [
        ("clip.webm", "video/webm", &webm),
        ("tone.wav", "audio/wav", &wav),
        ("broken.webm", "video/webm", &broken),
    ] {
        let (st, up) = upload(s, &owner, &ch, name, mime, bytes).await;
        assert_eq!(st, StatusCode::CREATED, "{up}");
        ids.push(up["id"].as_str().expect("id").to_string());
    }
    let mut mids = Vec::new();
    for id in &ids {
        let (st, m) = send_files(s, &owner, &ch, &[id]).await;
        assert_eq!(st, StatusCode::CREATED, "{m}");
        mids.push(m["id"].as_str().expect("mid").to_string());
    }
    let video = eventually("the video's poster", || async {
        let m = message(s, &member, &ch, &mids[0]).await;
        m["attachments"][0]["preview_url"].is_string().then_some(m)
    })
    .await;
    let v = &video["attachments"][0];
    assert_eq!(v["content_type"], "video/webm");
    assert_eq!(v["duration_secs"].as_f64(), Some(2.0));
    assert_eq!(
        (v["width"].as_i64(), v["height"].as_i64()),
        (Some(320), Some(240))
    );
    assert_eq!(v["blurhash"].as_str().map(str::len), Some(28));
    let (st, hd, poster) = fetch(s, &member, v["preview_url"].as_str().expect("poster"), &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h(&hd, "content-type"), "image/webp");
    let frame = image::load_from_memory(&poster).expect("the poster decodes");
    assert_eq!((frame.width(), frame.height()), (320, 240));
    // The video itself is served inline, with ranges, for a <video> to seek.
    let (st, hd, part) = fetch(
        s,
        &member,
        v["url"].as_str().expect("url"),
        &[("range", "bytes=0-99")],
    )
    .await;
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert!(h(&hd, "content-disposition").starts_with("inline"));
    assert_eq!(part, webm[..100]);

    let audio = eventually("the audio's duration", || async {
        let m = message(s, &member, &ch, &mids[1]).await;
        m["attachments"][0]["duration_secs"]
            .is_number()
            .then_some(m)
    })
    .await;
    let a = &audio["attachments"][0];
    assert_eq!(a["content_type"], "audio/wav");
    assert_eq!(a["duration_secs"].as_f64(), Some(3.0));
    assert!(a["preview_url"].is_null() && a["width"].is_null());

    // The broken one: the pipeline goes on after it (it handles the log in
    // order, so a later image's preview means the clip was dealt with), and
    // it has no poster or duration but is still downloadable.
    let (st, up) = upload(s, &owner, &ch, "after.png", "image/png", &png(40, 30)).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().expect("id").to_string();
    let (_, m) = send_files(s, &owner, &ch, &[&id]).await;
    let mid = m["id"].as_str().expect("mid").to_string();
    eventually("a preview after the broken clip", || async {
        message(s, &owner, &ch, &mid).await["attachments"][0]["preview_url"]
            .as_str()
            .map(|_| ())
    })
    .await;
    let b = message(s, &member, &ch, &mids[2]).await;
    let b = &b["attachments"][0];
    assert!(
        b["preview_url"].is_null() && b["duration_secs"].is_null(),
        "{b}"
    );
    let (st, _, body) = fetch(s, &member, b["url"].as_str().expect("url"), &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, broken);
}

/// Signs in as the web app does (`X-Hearth-Client: web`) and returns the
/// `hearth_files` cookie's value and attributes.
async fn web_login(s: &TestServer, username: &str) -> (String, String) {
    let res = s
        .http
        .post(format!("{}/api/v1/auth/login", s.base))
        .header("x-hearth-client", "web")
        .json(&json!({"login": username, "password": "correct horse battery"}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), StatusCode::OK);
    let set = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hearth_files="))
        .expect("a hearth_files cookie")
        .to_string();
    let value = set
        .trim_start_matches("hearth_files=")
        .split(';')
        .next()
        .expect("value")
        .to_string();
    (value, set)
}

async fn with_cookie(s: &TestServer, url: &str, cookie: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let res = s
        .http
        .get(format!("{}{url}", s.base))
        .header(header::COOKIE, format!("hearth_files={cookie}"))
        .send()
        .await
        .expect("get");
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.bytes().await.expect("body").to_vec())
}

/// The browser cannot put a bearer header on `<img src>`: the web app's
/// sign-in also sets `hearth_files`, which file reads (and nothing else)
/// accept, with the same access checks.
pub async fn web_file_cookie(s: &TestServer) {
    let owner = s.register("cookieowner").await;
    let outsider = s.register("cookieoutsider").await;
    let (_cid, ch) = s.community(&owner, "Cookies").await;
    let picture = png(64, 48);
    let (st, up) = upload(s, &owner, &ch, "c.png", "image/png", &picture).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let url = up["url"].as_str().expect("url").to_string();

    let (cookie, attrs) = web_login(s, "cookieowner").await;
    for want in ["HttpOnly", "SameSite=Strict", "Path=/api/v1;", "Max-Age="] {
        assert!(attrs.contains(want), "{want} in {attrs}");
    }
    let (st, headers, body) = with_cookie(s, &url, &cookie).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, picture);
    assert_eq!(h(&headers, "content-security-policy"), "sandbox");

    // Another account's cookie reads by that account's rights: not this unsent upload.
    let (other, _) = web_login(s, "cookieoutsider").await;
    let (st, _, _) = with_cookie(s, &url, &other).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let _ = outsider;
    // A made-up cookie is no one.
    let (st, _, _) = with_cookie(s, &url, "not-a-token").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Nothing but file reads looks at the cookie.
    let (st, _, _) = with_cookie(s, "/api/v1/users/@me", &cookie).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // A refresh renews it; signing out clears it.
    let res = s
        .http
        .post(format!("{}/api/v1/auth/logout", s.base))
        .bearer_auth(&cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(
        res.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.starts_with("hearth_files=;") && v.contains("Max-Age=0")),
        "logout clears hearth_files"
    );
    let (st, _, _) = with_cookie(s, &url, &cookie).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "a signed-out session's cookie"
    );
}

/// Each scenario on both backends (`media::sqlite::…`, `media::postgres::…`):
/// `server:` ones get a started server, `db:` ones start their own.
macro_rules! on_both {
    (server: $($s:ident),*; db: $($d:ident),* $(,)?) => {
        on_both!(@one sqlite, Sqlite, [$($s),*], [$($d),*]);
        on_both!(@one postgres, Postgres, [$($s),*], [$($d),*]);
    };
    (@one $m:ident, $db:ident, [$($s:ident),*], [$($d:ident),*]) => {
        mod $m {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $s() {
                let s = crate::TestServer::start(crate::Db::$db).await;
                super::$s(&s).await;
                s.stop().await;
            })*
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $d() {
                super::$d(crate::Db::$db).await;
            })*
        }
    };
}

on_both!(
    server: upload_send_fetch_download, permissions_are_checked,
        bad_input_is_refused_or_served_safely, ranges_and_etags, avatars, web_file_cookie, video_and_audio;
    db: limits_and_broken_uploads, unsent_uploads_expire, deleted_messages_lose_their_files,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend() {
    s3_backend_serves_files().await;
}
