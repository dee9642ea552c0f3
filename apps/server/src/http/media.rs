//! Uploads and file serving.
//!
//! Files are served from the API's origin, so every answer is made unable to
//! run script there: `X-Content-Type-Options: nosniff` and
//! `Content-Security-Policy: sandbox` on every file, `Content-Disposition:
//! attachment` for anything but raster images, video and audio (SVG, HTML,
//! PDFs, an "image" that does not decode), and the type served is the sniffed
//! one, never the uploader's. Reads check access like messages do: a file in a
//! channel the caller cannot read is 404.

use std::ops::Range;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hearth_blobs::BlobError;
use hearth_store::AttachmentRecord;
use hearth_types::{AttachmentId, ChannelId, CommunityId, EmbedId, UserId};

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, FileAuth, path_id};
use super::wire::{
    Crop, ErrorBody, SquareUploadForm, UploadForm, UploadedAttachment, path_segment,
};
use crate::media::{Purpose, UploadError};
use crate::state::AppState;

/// Multipart framing allowed on top of the file itself.
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected multipart/form-data with a `file` field",
    )
}

/// The request's multipart body as a stream of fields (415 unless it is
/// `multipart/form-data` with a boundary).
fn multipart_of(req: Request) -> ApiResult<multer::Multipart<'static>> {
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(unsupported)?;
    Ok(multer::Multipart::new(
        req.into_body().into_data_stream(),
        boundary,
    ))
}

/// Streams the `file` field of a multipart body into the media service.
async fn upload_from(
    state: &AppState,
    user: UserId,
    purpose: Purpose,
    req: Request,
) -> ApiResult<AttachmentRecord> {
    let mut form = multipart_of(req)?;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Err(ApiError::field("file", "required")),
            Err(e) => return Err(multipart_error(e)),
        };
        if field.name() != Some("file") {
            continue; // other fields are ignored (and drained by the next call)
        }
        let filename = field.file_name().unwrap_or("file").to_owned();
        let declared = field
            .content_type()
            .map(|m| m.essence_str().to_owned())
            .unwrap_or_else(|| "application/octet-stream".into());
        let body = field
            .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())))
            .boxed();
        return Ok(state
            .media
            .upload(state, user, purpose, &filename, &declared, body)
            .await?);
    }
}

/// The largest `crop` field read.
const CROP_FIELD_MAX: usize = 1024;

/// Reads an avatar's or icon's multipart body: the `file` field whole (at
/// most `media.max_upload_bytes`: decoding needs all of it) and the
/// optional `crop` field, in either order; then stores the square.
async fn square_from(
    state: &AppState,
    user: UserId,
    purpose: Purpose,
    req: Request,
) -> ApiResult<AttachmentRecord> {
    let mut form = multipart_of(req)?;
    let max = state.media.max_upload_bytes;
    let mut file: Option<Vec<u8>> = None;
    let mut crop: Option<Crop> = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") if file.is_none() => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if (bytes.len() + chunk.len()) as u64 > max {
                        return Err(UploadError::TooLarge { limit: max }.into());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some(bytes);
            }
            Some("crop") if crop.is_none() => {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if text.len() + chunk.len() > CROP_FIELD_MAX {
                        return Err(ApiError::field("crop", "too long"));
                    }
                    text.extend_from_slice(&chunk);
                }
                crop = Some(serde_json::from_slice(&text).map_err(|e| {
                    ApiError::field(
                        "crop",
                        format!("expected {{x, y, width, height}} in pixels: {e}"),
                    )
                })?);
            }
            _ => {} // other fields are ignored (drained by the next call)
        }
    }
    let file = file.ok_or_else(|| ApiError::field("file", "required"))?;
    Ok(state
        .media
        .upload_square(state, user, purpose, file, crop.map(Into::into))
        .await?)
}

fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamReadFailed(_) | multer::Error::IncompleteStream => {
            ApiError::field("file", "the upload stopped before the end")
        }
        other => ApiError::field("file", format!("malformed multipart body: {other}")),
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::TooLarge { limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the file is over {limit} bytes"),
            )
            .details(serde_json::json!({ "max_bytes": limit })),
            UploadError::Stopped => ApiError::field("file", "the upload stopped before the end"),
            UploadError::Invalid(field, reason) => ApiError::field(field, reason),
            UploadError::Quota {
                quota_bytes,
                used_bytes,
            } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("over your storage quota of {quota_bytes} bytes ({used_bytes} used)"),
            )
            .details(serde_json::json!({
                "reason": "quota_exceeded",
                "quota_bytes": quota_bytes,
                "used_bytes": used_bytes,
            })),
            UploadError::Conflict { offset } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("the upload is at offset {offset}: resume from there"),
            )
            .details(serde_json::json!({ "offset": offset })),
            UploadError::Gone => ApiError::not_found(),
            UploadError::Store(s) => s.into(),
            UploadError::Blob(b) => ApiError::internal(b),
        }
    }
}

/// Upload a file to a channel, to send with a message (`attachment_ids`).
///
/// Needs VIEW_CHANNEL, SEND_MESSAGES and ATTACH_FILES. Streamed; at most
/// `media.max_upload_bytes` (25 MiB by default). Unsent uploads expire.
#[utoipa::path(post, path = "/api/v1/channels/{id}/attachments", tag = "messages", security(("bearer" = [])), params(("id" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = UploadedAttachment), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let channel: ChannelId = path_id("id", &id)?;
    state.chat.check_upload(channel, p.user_id).await?;
    let rec = upload_from(&state, p.user_id, Purpose::Message(channel), req).await?;
    Ok((StatusCode::CREATED, Json(UploadedAttachment::from(&rec))).into_response())
}

/// Upload an image to use as the caller's avatar (`PATCH /users/@me` `avatar_id`).
///
/// Stored as the square `crop` selects (the centred square without one), at
/// most 512 px a side, as WebP without the original's metadata.
#[utoipa::path(post, path = "/api/v1/users/@me/avatar", tag = "users", security(("bearer" = [])),
    request_body(content = SquareUploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = UploadedAttachment), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn upload_avatar(
    State(state): State<AppState>,
    Auth(p): Auth,
    req: Request,
) -> ApiResult<Response> {
    let rec = square_from(&state, p.user_id, Purpose::Avatar, req).await?;
    Ok((StatusCode::CREATED, Json(UploadedAttachment::from(&rec))).into_response())
}

/// Upload an image to use as the community's icon (`PATCH /communities/{id}` `icon_id`).
///
/// Needs MANAGE_COMMUNITY. Stored like an avatar: the square `crop` selects,
/// at most 512 px, WebP, no metadata.
#[utoipa::path(post, path = "/api/v1/communities/{id}/icon", tag = "communities", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body(content = SquareUploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = UploadedAttachment), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn upload_icon(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let community: CommunityId = path_id("id", &id)?;
    state.chat.check_icon_upload(community, p.user_id).await?;
    let rec = square_from(&state, p.user_id, Purpose::Icon, req).await?;
    Ok((StatusCode::CREATED, Json(UploadedAttachment::from(&rec))).into_response())
}

/// Whether `avatar_id` names an image `user` uploaded as an avatar.
pub async fn usable_avatar(state: &AppState, user: UserId, id: AttachmentId) -> ApiResult<bool> {
    Ok(state.store.attachment(id).await?.is_some_and(|a| {
        a.uploader_id == user
            && a.purpose == "avatar"
            && is_inline(&a)
            && a.content_type.starts_with("image/")
    }))
}

/// Raster images that decoded (or are not decoded here), video and audio.
fn is_inline(a: &AttachmentRecord) -> bool {
    let t = a.content_type.as_str();
    t.starts_with("video/")
        || t.starts_with("audio/")
        || (t.starts_with("image/") && t != "image/svg+xml" && !a.undecodable)
}

/// Avatars and community icons: shown to every signed-in user.
fn is_public(a: &AttachmentRecord) -> bool {
    a.purpose == "avatar" || a.purpose == "icon"
}

/// Whether the bytes under the file's key are final: anything but an
/// image the pipeline has not processed yet (its metadata may still be
/// stripped in place). Avatars and icons are settled when stored.
fn is_settled(a: &AttachmentRecord) -> bool {
    !(a.content_type.starts_with("image/") && is_inline(a) && a.width.is_none())
}

/// Whether `viewer` may read the file: avatars and icons are public to signed-in users;
/// a sent file follows its message (VIEW_CHANNEL + READ_MESSAGE_HISTORY); an
/// unsent one is its uploader's. Anything else is 404.
async fn check_read(state: &AppState, viewer: UserId, a: &AttachmentRecord) -> ApiResult<()> {
    if is_public(a) {
        return Ok(());
    }
    match (a.channel_id, a.message_id) {
        (Some(channel), Some(message)) => {
            let m = state.chat.message(channel, viewer, message).await?;
            if m.record.attachment_ids.contains(&a.id) {
                Ok(())
            } else {
                Err(ApiError::not_found())
            }
        }
        _ if a.uploader_id == viewer => Ok(()),
        _ => Err(ApiError::not_found()),
    }
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range; several are answered
/// whole, as RFC 9110 allows). `Err` when it cannot be satisfied.
fn parse_range(h: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(v) = h.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        size.saturating_sub(n)..size
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size
        } else {
            let last: u64 = b.parse().map_err(|_| ())?;
            if last < start {
                return Err(());
            }
            last.saturating_add(1).min(size)
        };
        start..end
    };
    if range.start >= size || range.is_empty() {
        return Err(());
    }
    Ok(Some(range))
}

/// The type a file is served as: its sniffed type when that is safe to
/// show, a few inert document types, otherwise an opaque download.
fn served_type(a: &AttachmentRecord) -> &str {
    if is_inline(a) {
        return &a.content_type;
    }
    match a.content_type.as_str() {
        t @ ("application/pdf" | "application/zip" | "text/plain") => t,
        _ => "application/octet-stream",
    }
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Answers a file. `cache`: the bytes under `key` never change and are
/// small enough to be worth keeping (previews, avatars, icons); they are
/// then served from the hot-file cache when there, and put there when not.
/// Access was checked before.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve(
    state: &AppState,
    headers: &HeaderMap,
    key: &str,
    etag: String,
    content_type: &str,
    disposition: String,
    immutable: bool,
    cache: bool,
) -> ApiResult<Response> {
    let mut out = HeaderMap::new();
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    out.insert(header::CONTENT_DISPOSITION, hv(&disposition));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::ETAG, hv(&etag));
    // Private: every read is access-checked, so no shared cache may keep it.
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "private, max-age=31536000, immutable"
        } else {
            "private, no-cache"
        }),
    );
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    if cache && let Some(bytes) = state.media.hot.get(key).await {
        return Ok(from_memory(out, headers, bytes, content_type));
    }
    let meta = match state.media.blobs.head(key).await {
        Ok(m) => m,
        Err(BlobError::NotFound(_)) => return Err(ApiError::not_found()),
        Err(e) => return Err(ApiError::internal(e)),
    };
    if cache && state.media.hot.fits(meta.size) {
        // Small: read it whole once, keep it, answer from memory.
        let blob = match state.media.blobs.get(key, None).await {
            Ok(b) => b,
            Err(BlobError::NotFound(_)) => return Err(ApiError::not_found()),
            Err(e) => return Err(ApiError::internal(e)),
        };
        let mut whole = Vec::with_capacity(blob.size as usize);
        let mut stream = blob.stream;
        while let Some(chunk) = stream.next().await {
            whole.extend_from_slice(&chunk.map_err(ApiError::internal)?);
        }
        let bytes = bytes::Bytes::from(whole);
        state.media.hot.put(key, bytes.clone()).await;
        return Ok(from_memory(out, headers, bytes, content_type));
    }
    let range = match parse_range(headers, meta.size) {
        Ok(r) => r,
        Err(()) => {
            out.insert(header::CONTENT_RANGE, hv(&format!("bytes */{}", meta.size)));
            let body = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid_request",
                format!("the range is outside the file's {} bytes", meta.size),
            );
            return Ok((out, body).into_response());
        }
    };
    let blob = match state.media.blobs.get(key, range.clone()).await {
        Ok(b) => b,
        Err(BlobError::NotFound(_)) => return Err(ApiError::not_found()),
        Err(e) => return Err(ApiError::internal(e)),
    };
    out.insert(header::CONTENT_TYPE, hv(content_type));
    out.insert(
        header::CONTENT_LENGTH,
        hv(&(blob.range.end - blob.range.start).to_string()),
    );
    let status = if range.is_some() {
        out.insert(
            header::CONTENT_RANGE,
            hv(&format!(
                "bytes {}-{}/{}",
                blob.range.start,
                blob.range.end - 1,
                blob.size
            )),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let body = Body::from_stream(
        blob.stream
            .map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))),
    );
    Ok((status, out, body).into_response())
}

/// Answers a file held in memory (the hot-file cache), with ranges.
fn from_memory(
    mut out: HeaderMap,
    headers: &HeaderMap,
    bytes: bytes::Bytes,
    content_type: &str,
) -> Response {
    let size = bytes.len() as u64;
    let range = match parse_range(headers, size) {
        Ok(r) => r,
        Err(()) => {
            out.insert(header::CONTENT_RANGE, hv(&format!("bytes */{size}")));
            let body = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid_request",
                format!("the range is outside the file's {size} bytes"),
            );
            return (out, body).into_response();
        }
    };
    out.insert(header::CONTENT_TYPE, hv(content_type));
    let (status, body) = match range {
        Some(r) => {
            out.insert(
                header::CONTENT_RANGE,
                hv(&format!("bytes {}-{}/{size}", r.start, r.end - 1)),
            );
            (
                StatusCode::PARTIAL_CONTENT,
                bytes.slice(r.start as usize..r.end as usize),
            )
        }
        None => (StatusCode::OK, bytes),
    };
    out.insert(header::CONTENT_LENGTH, hv(&body.len().to_string()));
    (status, out, Body::from(body)).into_response()
}

async fn download(
    state: AppState,
    viewer: UserId,
    id: &str,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id: AttachmentId = path_id("id", id)?;
    let a = state
        .store
        .attachment(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    check_read(&state, viewer, &a).await?;
    let inline = is_inline(&a);
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        path_segment(&a.filename)
    );
    // An image the pipeline has not seen yet may still be rewritten (its
    // metadata stripped): cache it only once that is settled.
    let settled = is_settled(&a);
    serve(
        &state,
        &headers,
        &a.blob_key,
        format!("\"{}\"", a.sha256),
        served_type(&a),
        disposition,
        settled,
        settled && is_public(&a),
    )
    .await
}

/// Download a file (`Range` and `If-None-Match` supported).
#[utoipa::path(get, path = "/api/v1/attachments/{id}/{filename}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("filename" = String, Path)),
    responses((status = 200, description = "the file, with its sniffed type (images, video and audio inline; anything else as a download)", content_type = "*/*"),
        (status = 206, description = "the requested range", content_type = "*/*"), (status = 304, description = "not modified"),
        (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn file(
    State(state): State<AppState>,
    FileAuth(p): FileAuth,
    Path((id, _filename)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    download(state, p.user_id, &id, headers).await
}

/// Download a file by id alone (avatars' `avatar_url`).
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"), (status = 304, description = "not modified"),
        (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn file_by_id(
    State(state): State<AppState>,
    FileAuth(p): FileAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    download(state, p.user_id, &id, headers).await
}

/// An image's WebP preview (at most 640 px a side), once processed.
#[utoipa::path(get, path = "/api/v1/attachments/{id}/previews/{name}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "the preview", content_type = "image/webp"),
        (status = 304, description = "not modified"), (status = 404, body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    FileAuth(p): FileAuth,
    Path((id, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id: AttachmentId = path_id("id", &id)?;
    let a = state
        .store
        .attachment(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    check_read(&state, p.user_id, &a).await?;
    let key = a.preview_key.clone().ok_or_else(ApiError::not_found)?;
    serve(
        &state,
        &headers,
        &key,
        format!("\"p-{}\"", a.sha256),
        "image/webp",
        "inline; filename=\"preview.webp\"".into(),
        true,
        true,
    )
    .await
}

/// A link preview's image: a WebP the server made of the page's image.
///
/// Any signed-in user (the page it came from is public).
#[utoipa::path(get, path = "/api/v1/embeds/{id}/image.webp", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "the image (at most 400 px a side)", content_type = "image/webp"),
        (status = 304, description = "not modified"), (status = 404, body = ErrorBody)))]
pub async fn embed_image(
    State(state): State<AppState>,
    FileAuth(_viewer): FileAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id: EmbedId = path_id("id", &id)?;
    let e = state
        .store
        .embed(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let image = e.preview.image.ok_or_else(ApiError::not_found)?;
    serve(
        &state,
        &headers,
        &image.key,
        format!("\"e-{id}\""),
        "image/webp",
        "inline; filename=\"image.webp\"".into(),
        true,
        true,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Result<Option<Range<u64>>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).expect("header"));
        parse_range(&h, size)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-1000", 100), Ok(Some(0..100)));
        assert_eq!(range("bytes=50-1000", 100), Ok(Some(50..100)));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=5-4", 100), Err(()));
        assert_eq!(range("bytes=-0", 100), Err(()));
        assert_eq!(range("bytes=x-", 100), Err(()));
    }
}
