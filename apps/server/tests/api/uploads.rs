//! Issue #11's upload work through real HTTP: resumable uploads (chunks,
//! interruptions, conflicts, cancel, expiry, on disk and S3, across two
//! nodes), the per-user quota, community icons, cropped avatars and icons,
//! and the hot-file cache (memory, and Redis in a cluster).

use std::path::{Path, PathBuf};
use std::time::Duration;

use image::ImageEncoder;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gateway::Gw;
use crate::media::eventually;
use crate::{Db, TestServer, User, assert_error};

const BOUNDARY: &str = "hearth-uploads-boundary-51c2";
const CHUNK_TYPE: &str = "application/offset+octet-stream";

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed as usize) % 251) as u8)
        .collect()
}

fn sha256(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn h<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `POST /channels/{ch}/uploads`.
pub async fn start_upload(
    s: &TestServer,
    who: &User,
    ch: &str,
    filename: &str,
    size: usize,
) -> (StatusCode, HeaderMap, Value) {
    let res = s
        .http
        .post(format!("{}/api/v1/channels/{ch}/uploads", s.base))
        .bearer_auth(&who.token)
        .json(&json!({"filename": filename, "size": size, "content_type": "application/octet-stream"}))
        .send()
        .await
        .expect("create upload");
    let (st, hd) = (res.status(), res.headers().clone());
    (st, hd, res.json().await.unwrap_or(Value::Null))
}

/// `PATCH /uploads/{id}` with `Upload-Offset: offset` and `bytes`.
pub async fn send_chunk(
    s: &TestServer,
    who: &User,
    id: &str,
    offset: usize,
    bytes: &[u8],
) -> (StatusCode, HeaderMap, Value) {
    let res = s
        .http
        .patch(format!("{}/api/v1/uploads/{id}", s.base))
        .bearer_auth(&who.token)
        .header(header::CONTENT_TYPE, CHUNK_TYPE)
        .header("upload-offset", offset.to_string())
        .body(bytes.to_vec())
        .send()
        .await
        .expect("chunk");
    let (st, hd) = (res.status(), res.headers().clone());
    (st, hd, res.json().await.unwrap_or(Value::Null))
}

async fn head_upload(s: &TestServer, who: &User, id: &str) -> (StatusCode, HeaderMap) {
    let res = s
        .http
        .head(format!("{}/api/v1/uploads/{id}", s.base))
        .bearer_auth(&who.token)
        .send()
        .await
        .expect("head");
    (res.status(), res.headers().clone())
}

async fn fetch(s: &TestServer, who: &User, url: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let res = s
        .http
        .get(format!("{}{url}", s.base))
        .bearer_auth(&who.token)
        .send()
        .await
        .expect("download");
    let (st, hd) = (res.status(), res.headers().clone());
    (st, hd, res.bytes().await.expect("body").to_vec())
}

/// A multipart body: `fields` (name, value) and then, or before them,
/// the file.
fn form(file: &[u8], fields: &[(&str, &str)], fields_first: bool) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = fields
        .iter()
        .map(|(k, v)| {
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .into_bytes()
        })
        .collect();
    let mut f = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"pic.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    f.extend_from_slice(file);
    f.extend_from_slice(b"\r\n");
    if fields_first {
        parts.push(f);
    } else {
        parts.insert(0, f);
    }
    let mut body = parts.concat();
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_form(s: &TestServer, who: &User, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let res = s
        .http
        .post(format!("{}{path}", s.base))
        .bearer_auth(&who.token)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}

const RED: image::Rgba<u8> = image::Rgba([255, 0, 0, 255]);
const BLUE: image::Rgba<u8> = image::Rgba([0, 0, 255, 255]);

/// A blue PNG with one red block.
fn png_with_block(w: u32, hgt: u32, block: (u32, u32, u32, u32)) -> Vec<u8> {
    let (bx, by, bw, bh) = block;
    let img = image::RgbaImage::from_fn(w, hgt, |x, y| {
        if (bx..bx + bw).contains(&x) && (by..by + bh).contains(&y) {
            RED
        } else {
            BLUE
        }
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), w, hgt, image::ExtendedColorType::Rgba8)
        .expect("png");
    out
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

/// A chunk whose request stops halfway: the headers promise `declared`
/// bytes, `sent` arrive, then the connection closes.
async fn cut_chunk(
    s: &TestServer,
    who: &User,
    id: &str,
    offset: usize,
    declared: usize,
    sent: &[u8],
) {
    let mut sock = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let head = format!(
        "PATCH /api/v1/uploads/{id} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {CHUNK_TYPE}\r\nUpload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n",
        s.addr, who.token
    );
    sock.write_all(head.as_bytes()).await.expect("head");
    sock.write_all(sent).await.expect("body");
    sock.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut answer)).await;
}

async fn metric(s: &TestServer, name_and_labels: &str) -> f64 {
    let (_, text) = s.call(Method::GET, "/metrics", None, None).await;
    let text = text
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| text.to_string());
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A file in three chunks with a repeated chunk, a chunk from the future, a
/// chunk cut halfway and a chunk running past the end, all refused without
/// harm; then completed, sent, and downloaded byte for byte. Cancelling and
/// other users; nothing left under `upl/` on disk.
pub async fn resumable_upload_in_chunks(db: Db) {
    let data = tempfile::tempdir().expect("dir");
    let data_dir = data.path().to_path_buf();
    let s = TestServer::start_with(db, |c| {
        c.data_dir = data_dir.clone();
        c.media.upload_chunk_max_bytes = 150_000;
    })
    .await;
    let owner = s.register("resumer").await;
    let member = s.register("resumemember").await;
    let (cid, ch) = s.community(&owner, "Resumable").await;
    s.join(&owner, &cid, &member).await;
    let file = pattern(300_000, 7);
    let (a, b, c) = (&file[..100_000], &file[100_000..200_000], &file[200_000..]);

    let (st, hd, up) = start_upload(&s, &owner, &ch, "../big file.bin", file.len()).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().expect("id").to_string();
    assert_eq!(up["offset"], 0);
    assert_eq!(up["size"], 300_000);
    assert_eq!(up["chunk_max_bytes"], 150_000);
    assert!(
        up["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{up}"
    );
    assert_eq!(h(&hd, "location"), format!("/api/v1/uploads/{id}"));
    assert_eq!(h(&hd, "upload-offset"), "0");

    // Bad requests change nothing.
    let (st, _, e) = send_chunk(&s, &owner, &id, 0, b"").await;
    assert_eq!(st, StatusCode::NO_CONTENT, "an empty chunk is a no-op: {e}");
    let res = s
        .http
        .patch(format!("{}/api/v1/uploads/{id}", s.base))
        .bearer_auth(&owner.token)
        .header(header::CONTENT_TYPE, CHUNK_TYPE)
        .body(a.to_vec())
        .send()
        .await
        .expect("no offset");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let e: Value = res.json().await.expect("json");
    assert!(
        e["error"]["details"]["fields"]["Upload-Offset"].is_string(),
        "{e}"
    );
    let res = s
        .http
        .patch(format!("{}/api/v1/uploads/{id}", s.base))
        .bearer_auth(&owner.token)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("upload-offset", "0")
        .body(a.to_vec())
        .send()
        .await
        .expect("wrong type");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Over the chunk limit (declared): 413 at once.
    let (st, _, e) = send_chunk(&s, &owner, &id, 0, &file[..150_001]).await;
    assert_error(st, &e, 413, "payload_too_large");

    // Chunk 1.
    let (st, hd, _) = send_chunk(&s, &owner, &id, 0, a).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(h(&hd, "upload-offset"), "100000");
    // The client lost that answer and sends chunk 1 again: 409 with where it stands.
    let (st, hd, e) = send_chunk(&s, &owner, &id, 0, a).await;
    assert_error(st, &e, 409, "conflict");
    assert_eq!(e["error"]["details"]["offset"], 100_000, "{e}");
    assert_eq!(h(&hd, "upload-offset"), "100000");
    // A chunk from the future is refused the same way.
    let (st, _, e) = send_chunk(&s, &owner, &id, 200_000, c).await;
    assert_error(st, &e, 409, "conflict");
    assert_eq!(e["error"]["details"]["offset"], 100_000);
    // Chunk 2 cut halfway (the connection drops): nothing of it is kept.
    cut_chunk(&s, &owner, &id, 100_000, b.len(), &b[..50_000]).await;
    let (st, hd) = head_upload(&s, &owner, &id).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (h(&hd, "upload-offset"), h(&hd, "upload-length")),
        ("100000", "300000")
    );
    let (st, state) = s.get(&format!("/api/v1/uploads/{id}"), &owner.token).await;
    assert_eq!(
        (st, state["offset"].as_u64()),
        (StatusCode::OK, Some(100_000))
    );

    // Nobody else sees or touches it.
    for (method, path) in [
        (Method::GET, format!("/api/v1/uploads/{id}")),
        (Method::DELETE, format!("/api/v1/uploads/{id}")),
    ] {
        let (st, e) = s.call(method, &path, Some(&member.token), None).await;
        assert_error(st, &e, 404, "not_found");
    }
    let (st, _) = head_upload(&s, &member, &id).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, e) = send_chunk(&s, &member, &id, 100_000, b).await;
    assert_error(st, &e, 404, "not_found");

    // Resume from the offset: chunk 2, then chunk 3 with bytes past the end
    // (refused whole), then chunk 3.
    let (st, hd, _) = send_chunk(&s, &owner, &id, 100_000, b).await;
    assert_eq!(
        (st, h(&hd, "upload-offset")),
        (StatusCode::NO_CONTENT, "200000")
    );
    let mut too_long = c.to_vec();
    too_long.push(0);
    let (st, _, e) = send_chunk(&s, &owner, &id, 200_000, &too_long).await;
    assert_error(st, &e, 413, "payload_too_large");
    assert_eq!(e["error"]["details"]["max_bytes"], 100_000);
    let (st, hd, done) = send_chunk(&s, &owner, &id, 200_000, c).await;
    assert_eq!(st, StatusCode::CREATED, "{done}");
    assert_eq!(h(&hd, "upload-offset"), "300000");
    assert_eq!(
        done["id"],
        id.as_str(),
        "the attachment keeps the upload's id"
    );
    assert_eq!(done["size"], 300_000);
    assert_eq!(done["filename"], "big file.bin");
    assert_eq!(done["content_type"], "application/octet-stream");
    // The upload itself is gone.
    let (st, _) = head_upload(&s, &owner, &id).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, _) = send_chunk(&s, &owner, &id, 300_000, b"").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Sent like any upload, downloaded byte for byte by a member.
    let (st, m) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &owner.token,
            json!({"content": "the big one", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["attachments"][0]["id"], id.as_str());
    let (st, _, body) = fetch(&s, &member, done["url"].as_str().expect("url")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sha256(&body), sha256(&file));
    let upl = data.path().join("blobs/upl");
    assert!(files_under(&upl).is_empty(), "{:?}", files_under(&upl));

    // Cancelling deletes what arrived.
    let (_, _, up2) = start_upload(&s, &owner, &ch, "x.bin", 1000).await;
    let id2 = up2["id"].as_str().expect("id").to_string();
    let (st, _, _) = send_chunk(&s, &owner, &id2, 0, &pattern(400, 1)).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(files_under(&upl).len(), 1);
    let (st, _) = s
        .delete(&format!("/api/v1/uploads/{id2}"), &owner.token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(files_under(&upl).is_empty());
    let (st, _) = head_upload(&s, &owner, &id2).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .delete(&format!("/api/v1/uploads/{id2}"), &owner.token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A cancelled upload cannot be sent.
    let (st, e) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &owner.token,
            json!({"content": "", "attachment_ids": [id2]}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");

    // Creation's rules: the attachment route's permissions and limits.
    let outsider = s.register("resumeoutsider").await;
    let (st, _, e) = start_upload(&s, &outsider, &ch, "x.bin", 10).await;
    assert_error(st, &e, 404, "not_found");
    let (st, _, e) = start_upload(&s, &owner, &ch, "x.bin", 0).await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, _, e) = start_upload(&s, &owner, &ch, "x.bin", 25 * 1024 * 1024 + 1).await;
    assert_error(st, &e, 413, "payload_too_large");
    s.stop().await;
}

/// Unfinished uploads expire: their parts and rows are collected.
pub async fn unfinished_uploads_expire(db: Db) {
    let data = tempfile::tempdir().expect("dir");
    let data_dir = data.path().to_path_buf();
    let s = TestServer::start_with(db, |c| {
        c.data_dir = data_dir.clone();
        c.media.upload_ttl_secs = 1;
    })
    .await;
    let owner = s.register("expirer").await;
    let (_, ch) = s.community(&owner, "Expiring").await;
    let (_, _, up) = start_upload(&s, &owner, &ch, "half.bin", 100).await;
    let id = up["id"].as_str().expect("id").to_string();
    let (st, _, _) = send_chunk(&s, &owner, &id, 0, &pattern(50, 3)).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let upl = data.path().join("blobs/upl");
    assert_eq!(files_under(&upl).len(), 1);
    eventually("the unfinished upload collected", || async {
        files_under(&upl).is_empty().then_some(())
    })
    .await;
    let (st, _, e) = send_chunk(&s, &owner, &id, 50, &pattern(50, 3)).await;
    assert_error(st, &e, 404, "not_found");
    s.stop().await;
}

/// The quota counts stored files and uploads in progress, refuses both
/// routes with the numbers, and frees what is deleted.
pub async fn quota_is_enforced_and_freed(db: Db) {
    let s = TestServer::start_with(db, |c| {
        c.media.user_quota_bytes = 1000;
        c.media.deleted_file_grace_secs = 3600;
    })
    .await;
    let me = s.register("quotaed").await;
    let other = s.register("unquotaed").await;
    let (_, ch) = s.community(&me, "Quota").await;
    let (st, kept) = crate::media::upload(
        &s,
        &me,
        &ch,
        "a.bin",
        "application/octet-stream",
        &pattern(600, 1),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{kept}");
    let (st, m) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &me.token,
            json!({"content": "", "attachment_ids": [kept["id"]]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");

    // 600 used: 500 more does not fit, by either route.
    let (st, _, e) = start_upload(&s, &me, &ch, "b.bin", 500).await;
    assert_error(st, &e, 413, "payload_too_large");
    let d = &e["error"]["details"];
    assert_eq!(
        (
            d["reason"].as_str(),
            d["quota_bytes"].as_u64(),
            d["used_bytes"].as_u64()
        ),
        (Some("quota_exceeded"), Some(1000), Some(600)),
        "{e}"
    );
    let (st, e) = crate::media::upload(
        &s,
        &me,
        &ch,
        "b.bin",
        "application/octet-stream",
        &pattern(500, 2),
    )
    .await;
    assert_error(st, &e, 413, "payload_too_large");
    assert_eq!(e["error"]["details"]["reason"], "quota_exceeded", "{e}");
    // Another user is not affected.
    let (_, och) = s.community(&other, "Other").await;
    let (st, _) = crate::media::upload(
        &s,
        &other,
        &och,
        "b.bin",
        "application/octet-stream",
        &pattern(900, 2),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);

    // An upload in progress counts its declared size at once.
    let (st, _, up) = start_upload(&s, &me, &ch, "c.bin", 400).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let (st, e) = crate::media::upload(&s, &me, &ch, "d.bin", "text/plain", b"x").await;
    assert_error(st, &e, 413, "payload_too_large");
    assert_eq!(e["error"]["details"]["used_bytes"], 1000);
    // Cancelled, it stops counting.
    let (st, _) = s
        .delete(
            &format!("/api/v1/uploads/{}", up["id"].as_str().expect("id")),
            &me.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, small) =
        crate::media::upload(&s, &me, &ch, "d.bin", "text/plain", &pattern(300, 4)).await;
    assert_eq!(st, StatusCode::CREATED, "{small}");
    let (st, _) = crate::media::upload(&s, &me, &ch, "e.bin", "text/plain", &pattern(500, 4)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);

    // Deleting the message frees its file's bytes (before it is collected).
    let (st, _) = s
        .delete(
            &format!(
                "/api/v1/channels/{ch}/messages/{}",
                m["id"].as_str().expect("id")
            ),
            &me.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, e) = crate::media::upload(&s, &me, &ch, "e.bin", "text/plain", &pattern(500, 4)).await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    let (st, _, e) = start_upload(&s, &me, &ch, "f.bin", 200).await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    s.stop().await;
}

/// Icons: MANAGE_COMMUNITY uploads (with a crop), PATCH sets and clears
/// `icon_url` with COMMUNITY_UPDATE, anyone signed in reads it.
pub async fn community_icons(s: &TestServer) {
    let owner = s.register("iconowner").await;
    let member = s.register("iconmember").await;
    let stranger = s.register("iconstranger").await;
    let (cid, _) = s.community(&owner, "Iconic").await;
    s.join(&owner, &cid, &member).await;
    let (mut gw, _) = Gw::identify(s, &member).await;
    let src = png_with_block(300, 200, (100, 50, 100, 100));
    let path = format!("/api/v1/communities/{cid}/icon");
    let crop = r#"{"x": 100, "y": 50, "width": 100, "height": 100}"#;

    let (st, e) = post_form(s, &member, &path, form(&src, &[("crop", crop)], false)).await;
    assert_error(st, &e, 403, "forbidden");
    // Refused before its bytes are read, a large upload still gets the 403,
    // not a connection reset halfway through writing it.
    let big = vec![7u8; 6 << 20];
    let (st, e) = post_form(s, &member, &path, form(&big, &[], false)).await;
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = post_form(s, &stranger, &path, form(&src, &[], false)).await;
    assert_error(st, &e, 404, "not_found");
    let (st, icon) = post_form(s, &owner, &path, form(&src, &[("crop", crop)], false)).await;
    assert_eq!(st, StatusCode::CREATED, "{icon}");
    assert_eq!(icon["content_type"], "image/webp");
    let icon_id = icon["id"].as_str().expect("id").to_string();

    // Only its uploader's icons, and only icons, can be set.
    let (st, avatar) = post_form(
        s,
        &member,
        "/api/v1/users/@me/avatar",
        form(&src, &[], false),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{avatar}");
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}"),
            &owner.token,
            json!({"icon_id": avatar["id"]}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    assert!(
        e["error"]["details"]["fields"]["icon_id"].is_string(),
        "{e}"
    );
    let (st, e) = s
        .patch(
            &format!("/api/v1/communities/{cid}"),
            &member.token,
            json!({"icon_id": icon_id}),
        )
        .await;
    assert_error(st, &e, 403, "forbidden");

    let (st, c) = s
        .patch(
            &format!("/api/v1/communities/{cid}"),
            &owner.token,
            json!({"icon_id": icon_id}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let url = format!("/api/v1/attachments/{icon_id}");
    assert_eq!(c["icon_url"], url.as_str());
    assert_eq!(c["name"], "Iconic", "the name is untouched");
    let update = gw.expect("COMMUNITY_UPDATE").await;
    assert_eq!(update["icon_url"], url.as_str(), "{update}");
    let (_, got) = s
        .get(&format!("/api/v1/communities/{cid}"), &member.token)
        .await;
    assert_eq!(got["icon_url"], url.as_str());

    // Served to anyone signed in: the cropped square, all red.
    let (st, hd, body) = fetch(s, &stranger, &url).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h(&hd, "content-type"), "image/webp");
    let img = image::load_from_memory(&body).expect("webp").to_rgba8();
    assert_eq!((img.width(), img.height()), (100, 100));
    assert!(img.pixels().all(|p| *p == RED));

    let (st, c) = s
        .patch(
            &format!("/api/v1/communities/{cid}"),
            &owner.token,
            json!({"icon_id": null}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert!(c["icon_url"].is_null());
    let update = gw.expect("COMMUNITY_UPDATE").await;
    assert!(update["icon_url"].is_null(), "{update}");
}

/// Avatars are cropped squares of at most 512 px, WebP, without metadata;
/// the crop may come before or after the file; bad crops are 400 naming it.
pub async fn cropped_avatars(s: &TestServer) {
    let me = s.register("cropper").await;
    let path = "/api/v1/users/@me/avatar";
    let src = png_with_block(300, 200, (100, 50, 100, 100));
    let crop = r#"{"x": 100, "y": 50, "width": 100, "height": 100}"#;
    for fields_first in [false, true] {
        let (st, up) = post_form(s, &me, path, form(&src, &[("crop", crop)], fields_first)).await;
        assert_eq!(st, StatusCode::CREATED, "{up}");
        assert_eq!(up["content_type"], "image/webp");
        let (_, _, body) = fetch(s, &me, up["url"].as_str().expect("url")).await;
        let img = image::load_from_memory(&body).expect("webp").to_rgba8();
        assert_eq!(
            (img.width(), img.height()),
            (100, 100),
            "crop first: {fields_first}"
        );
        assert!(img.pixels().all(|p| *p == RED));
    }
    // No crop: the centred square (red in the middle, blue corners).
    let (st, up) = post_form(s, &me, path, form(&src, &[], false)).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let (_, _, body) = fetch(s, &me, up["url"].as_str().expect("url")).await;
    let img = image::load_from_memory(&body).expect("webp").to_rgba8();
    assert_eq!((img.width(), img.height()), (200, 200));
    assert_eq!(
        (*img.get_pixel(100, 100), *img.get_pixel(0, 0)),
        (RED, BLUE)
    );
    // Large: at most 512 px; a non-square crop keeps its centred square.
    let big = png_with_block(1600, 1200, (0, 0, 800, 1200));
    let (st, up) = post_form(
        s,
        &me,
        path,
        form(
            &big,
            &[("crop", r#"{"x":0,"y":0,"width":1600,"height":1000}"#)],
            false,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let (_, _, body) = fetch(s, &me, up["url"].as_str().expect("url")).await;
    let img = image::load_from_memory(&body).expect("webp").to_rgba8();
    assert_eq!((img.width(), img.height()), (512, 512));
    // The square is x 300..1300: red up to 800, blue after.
    assert_eq!(
        (*img.get_pixel(100, 256), *img.get_pixel(400, 256)),
        (RED, BLUE)
    );
    assert!(body.len() < big.len());
    // Metadata never survives: a JPEG's EXIF is gone.
    let photo = {
        let img = image::RgbImage::from_pixel(64, 48, image::Rgb([20, 120, 220]));
        let mut plain = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut plain)
            .write_image(img.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
            .expect("jpeg");
        let payload = b"Exif\0\0GPS 48.8584N 2.2945E where-i-live";
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&plain[2..]);
        out
    };
    let (st, up) = post_form(s, &me, path, form(&photo, &[], false)).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let (_, hd, body) = fetch(s, &me, up["url"].as_str().expect("url")).await;
    assert_eq!(h(&hd, "content-type"), "image/webp");
    assert!(!body.windows(12).any(|w| w == b"where-i-live"));
    assert_eq!(image::load_from_memory(&body).expect("webp").width(), 48);

    // Bad crops: 400 naming `crop`.
    for bad in [
        r#"{"x": 250, "y": 0, "width": 100, "height": 100}"#,
        r#"{"x": 0, "y": 0, "width": 0, "height": 10}"#,
        r#"{"x": -1, "y": 0, "width": 10, "height": 10}"#,
        r#"{"x": 0, "y": 0, "width": 10}"#,
        r#"{"x": 0, "y": 0, "width": 10, "height": 10, "z": 1}"#,
        "not json",
    ] {
        let (st, e) = post_form(s, &me, path, form(&src, &[("crop", bad)], false)).await;
        assert_error(st, &e, 400, "invalid_request");
        assert!(
            e["error"]["details"]["fields"]["crop"].is_string(),
            "{bad}: {e}"
        );
    }
    // Not an image; no file.
    let (st, e) = post_form(s, &me, path, form(b"<svg></svg>", &[], false)).await;
    assert_error(st, &e, 400, "invalid_request");
    assert!(e["error"]["details"]["fields"]["file"].is_string(), "{e}");
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"crop\"\r\n\r\n{crop}\r\n--{BOUNDARY}--\r\n"
    );
    let (st, e) = post_form(s, &me, path, body.into_bytes()).await;
    assert_error(st, &e, 400, "invalid_request");
}

/// A second read of an avatar and of a preview comes from memory.
pub async fn hot_files_are_served_from_memory(s: &TestServer) {
    let me = s.register("hotreader").await;
    let other = s.register("hotother").await;
    let (st, up) = post_form(
        s,
        &me,
        "/api/v1/users/@me/avatar",
        form(&png_with_block(64, 64, (0, 0, 8, 8)), &[], false),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let url = up["url"].as_str().expect("url").to_string();
    let hit = r#"hearth_media_cache_total{result="hit",tier="memory"}"#;
    let before = metric(s, hit).await;
    let (st, _, first) = fetch(s, &other, &url).await;
    assert_eq!(st, StatusCode::OK);
    let (st, hd, second) = fetch(s, &other, &url).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(first, second);
    assert_eq!(h(&hd, "content-type"), "image/webp");
    assert!(h(&hd, "cache-control").contains("immutable"), "{hd:?}");
    assert!(
        metric(s, hit).await >= before + 1.0,
        "a memory hit was counted"
    );
    // Ranges work from memory too.
    let res = s
        .http
        .get(format!("{}{url}", s.base))
        .bearer_auth(&other.token)
        .header("range", "bytes=0-3")
        .send()
        .await
        .expect("range");
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.expect("body").as_ref(), &first[..4]);
    // Access is checked before the cache: a message file's preview stays
    // its readers'.
    let (_, ch) = s.community(&me, "Hot").await;
    let (_, f) = crate::media::upload(
        s,
        &me,
        &ch,
        "p.png",
        "image/png",
        &png_with_block(700, 100, (0, 0, 1, 1)),
    )
    .await;
    let fid = f["id"].as_str().expect("id").to_string();
    let (st, m) = s
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &me.token,
            json!({"content": "", "attachment_ids": [fid]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let mid = m["id"].as_str().expect("mid").to_string();
    let preview = eventually("the preview", || async {
        let (_, m) = s
            .get(&format!("/api/v1/channels/{ch}/messages/{mid}"), &me.token)
            .await;
        m["attachments"][0]["preview_url"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let before = metric(s, hit).await;
    for _ in 0..2 {
        let (st, _, _) = fetch(s, &me, &preview).await;
        assert_eq!(st, StatusCode::OK);
    }
    assert!(metric(s, hit).await >= before + 1.0);
    let (st, _, _) = fetch(s, &other, &preview).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "cached, but not theirs to read");
}

async fn s3_bucket() -> (String, String) {
    let url =
        std::env::var("HEARTH_TEST_S3_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".into());
    let bucket = format!("hearth-upl-{:016x}", rand::random::<u64>());
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
    (url, bucket)
}

fn s3_on(c: &mut hearth_server::config::Config, url: &str, bucket: &str) {
    c.media.blob_backend = "s3".into();
    c.media.s3_bucket = bucket.into();
    c.media.s3_endpoint = url.into();
    c.media.s3_access_key_id = "test".into();
    c.media.s3_secret_access_key = hearth_server::config::Secret("test".into());
    c.media.s3_allow_http = true;
}

/// Two nodes on one Postgres, NATS, Redis and S3 bucket: a resumable
/// upload's chunks go to either node (a repeated chunk on the other node is
/// a 409), the finished image goes through the pipeline; an avatar read on
/// one node is then a Redis hit on the other, whose memory cache is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_uploads_and_hot_files() {
    let (url, bucket) = s3_bucket().await;
    let (u2, b2) = (url.clone(), bucket.clone());
    let c = crate::cluster::Cluster::start_with(2, move |c| {
        s3_on(c, &u2, &b2);
        c.media.hot_cache_bytes = 0; // memory off: every hit is Redis's
    })
    .await;
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let owner = n1.register("clupl").await;
    let (_, ch) = n1.community(&owner, "Chunks").await;
    let picture = {
        let img = image::RgbaImage::from_fn(900, 300, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 7, 255])
        });
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), 900, 300, image::ExtendedColorType::Rgba8)
            .expect("png");
        out
    };
    let third = picture.len() / 3;
    let (st, _, up) = start_upload(n1, &owner, &ch, "wide.png", picture.len()).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    let id = up["id"].as_str().expect("id").to_string();
    let (st, _, _) = send_chunk(n1, &owner, &id, 0, &picture[..third]).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, e) = send_chunk(n2, &owner, &id, 0, &picture[..third]).await;
    assert_error(st, &e, 409, "conflict");
    assert_eq!(e["error"]["details"]["offset"], third);
    let (st, hd, _) = send_chunk(n2, &owner, &id, third, &picture[third..2 * third]).await;
    assert_eq!(
        (st, h(&hd, "upload-offset").to_string()),
        (StatusCode::NO_CONTENT, (2 * third).to_string())
    );
    let (st, _, done) = send_chunk(n1, &owner, &id, 2 * third, &picture[2 * third..]).await;
    assert_eq!(st, StatusCode::CREATED, "{done}");
    assert_eq!(done["content_type"], "image/png", "sniffed from the bytes");
    let (st, m) = n2
        .post(
            &format!("/api/v1/channels/{ch}/messages"),
            &owner.token,
            json!({"content": "", "attachment_ids": [id]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let mid = m["id"].as_str().expect("mid").to_string();
    let preview = eventually("the preview", || async {
        let (_, m) = n2
            .get(
                &format!("/api/v1/channels/{ch}/messages/{mid}"),
                &owner.token,
            )
            .await;
        m["attachments"][0]["preview_url"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let (st, _, body) = fetch(n2, &owner, done["url"].as_str().expect("url")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sha256(&body), sha256(&picture));
    let (st, _, prev) = fetch(n1, &owner, &preview).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(image::load_from_memory(&prev).expect("webp").width(), 640);
    // No part is left in the bucket.
    let listing = reqwest::get(format!("{url}/{bucket}?list-type=2&prefix=upl/"))
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert!(!listing.contains("<Key>upl/"), "{listing}");

    // The shared tier: node 1 reads an avatar (Redis miss, then stored),
    // node 2 reads it from Redis.
    let (st, av) = post_form(
        n1,
        &owner,
        "/api/v1/users/@me/avatar",
        form(&png_with_block(80, 80, (0, 0, 40, 40)), &[], false),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{av}");
    let av_url = av["url"].as_str().expect("url").to_string();
    let hit = r#"hearth_media_cache_total{result="hit",tier="redis"}"#;
    let before = metric(n2, hit).await;
    let (st, _, one) = fetch(n1, &owner, &av_url).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, two) = fetch(n2, &owner, &av_url).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(one, two);
    assert!(
        metric(n2, hit).await >= before + 1.0,
        "node 2 was served by Redis"
    );
    c.stop().await;
}

/// Each scenario on both backends: `server:` ones get a started server,
/// `db:` ones start their own.
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
    server: community_icons, cropped_avatars, hot_files_are_served_from_memory;
    db: resumable_upload_in_chunks, unfinished_uploads_expire, quota_is_enforced_and_freed,
);

/// The resumable path on the S3 backend (moto): parts are objects,
/// concatenated into the file and then deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_resumable_upload() {
    let (url, bucket) = s3_bucket().await;
    let (u2, b2) = (url.clone(), bucket.clone());
    let s = TestServer::start_with(Db::Sqlite, move |c| s3_on(c, &u2, &b2)).await;
    let owner = s.register("s3resumer").await;
    let (_, ch) = s.community(&owner, "S3 chunks").await;
    let file = pattern(250_000, 9);
    let (_, _, up) = start_upload(&s, &owner, &ch, "data.bin", file.len()).await;
    let id = up["id"].as_str().expect("id").to_string();
    for (at, part) in [(0, &file[..100_000]), (100_000, &file[100_000..200_000])] {
        let (st, _, e) = send_chunk(&s, &owner, &id, at, part).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{e}");
    }
    let listing = |prefix: &'static str| {
        let (url, bucket) = (url.clone(), bucket.clone());
        async move {
            reqwest::get(format!("{url}/{bucket}?list-type=2&prefix={prefix}"))
                .await
                .expect("list")
                .text()
                .await
                .expect("text")
        }
    };
    assert_eq!(listing("upl/").await.matches("<Key>upl/").count(), 2);
    let (st, _, done) = send_chunk(&s, &owner, &id, 200_000, &file[200_000..]).await;
    assert_eq!(st, StatusCode::CREATED, "{done}");
    let (st, _, body) = fetch(&s, &owner, done["url"].as_str().expect("url")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sha256(&body), sha256(&file));
    assert_eq!(listing("upl/").await.matches("<Key>upl/").count(), 0);
    assert!(
        listing("att/")
            .await
            .contains(&format!("<Key>att/{id}</Key>"))
    );
    // Cancel on S3.
    let (_, _, up2) = start_upload(&s, &owner, &ch, "gone.bin", 10).await;
    let id2 = up2["id"].as_str().expect("id").to_string();
    let (st, _, _) = send_chunk(&s, &owner, &id2, 0, b"12345").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(listing("upl/").await.matches("<Key>upl/").count(), 1);
    let (st, _) = s
        .delete(&format!("/api/v1/uploads/{id2}"), &owner.token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(listing("upl/").await.matches("<Key>upl/").count(), 0);
    s.stop().await;
}
