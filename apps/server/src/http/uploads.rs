//! Resumable uploads over HTTP (tus-like; the rules are in
//! `crate::resumable`): create with the size, send chunks with
//! `Upload-Offset`, ask where it stands with `HEAD`, cancel with `DELETE`.
//! Only the uploader sees an upload; anyone else gets 404.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hearth_types::{AttachmentId, ChannelId};

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::wire::{CreateUploadRequest, ErrorBody, Upload, UploadedAttachment};
use crate::media::UploadError;
use crate::resumable::Chunk;
use crate::state::AppState;

/// The request header naming where a chunk starts, and the answer's
/// header naming where the upload now stands.
pub const UPLOAD_OFFSET: &str = "upload-offset";
/// The answer's header naming the declared size.
pub const UPLOAD_LENGTH: &str = "upload-length";
/// The only content type a chunk may be sent as.
pub const CHUNK_TYPE: &str = "application/offset+octet-stream";

fn progress_headers(offset: u64, size: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    h.insert(UPLOAD_LENGTH, HeaderValue::from(size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

/// Start a resumable upload to a channel.
///
/// Same permissions and size limit as `POST /channels/{id}/attachments`;
/// the declared size counts against the uploader's quota at once. Send the
/// bytes with `PATCH /uploads/{id}`.
#[utoipa::path(post, path = "/api/v1/channels/{id}/uploads", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CreateUploadRequest,
    responses((status = 201, body = Upload, description = "the upload, at offset 0 (also in `Location`, `Upload-Offset`, `Upload-Length`)"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "over `media.max_upload_bytes` (`details.max_bytes`) or the quota (`details.reason: quota_exceeded`, `quota_bytes`, `used_bytes`)")))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<CreateUploadRequest>,
) -> ApiResult<Response> {
    let channel: ChannelId = path_id("id", &id)?;
    state.chat.check_upload(channel, p.user_id).await?;
    if req.filename.trim().is_empty() {
        return Err(ApiError::field("filename", "required"));
    }
    let declared = req
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    let up = state
        .media
        .create_upload(
            &state,
            p.user_id,
            channel,
            &req.filename,
            declared,
            req.size,
        )
        .await?;
    let mut h = progress_headers(0, req.size);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/uploads/{}", up.id)) {
        h.insert(header::LOCATION, v);
    }
    Ok((
        StatusCode::CREATED,
        h,
        Json(Upload::from(&up, state.media.chunk_max_bytes)),
    )
        .into_response())
}

/// Where a resumable upload stands (`HEAD` gives the same headers, no body).
#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Upload, description = "also as `Upload-Offset` and `Upload-Length` headers"),
        (status = 404, body = ErrorBody, description = "not yours, unknown, expired, cancelled or finished")))]
pub async fn status(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id: AttachmentId = path_id("id", &id)?;
    let up = state.media.live_upload(&state, p.user_id, id).await?;
    Ok((
        progress_headers(up.received as u64, up.size as u64),
        Json(Upload::from(&up, state.media.chunk_max_bytes)),
    )
        .into_response())
}

/// Send the next chunk of a resumable upload.
///
/// Headers: `Upload-Offset` (the upload's current offset) and `Content-Type:
/// application/offset+octet-stream`; the body is the bytes from there, at
/// most `chunk_max_bytes` and never past the declared size. A chunk is
/// all-or-nothing: one that stops halfway is not kept (ask `HEAD` and send
/// it again). The last chunk answers 201 with the attachment.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("Upload-Offset" = u64, Header, description = "where this chunk starts: the upload's current offset")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses((status = 204, description = "stored; `Upload-Offset` is the new offset"),
        (status = 201, body = UploadedAttachment, description = "the last byte arrived: the file, usable in `attachment_ids`"),
        (status = 400, body = ErrorBody, description = "no or a bad `Upload-Offset`, or the chunk stopped before its end"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`Upload-Offset` is not the current offset: resume from `details.offset` (also the `Upload-Offset` header)"),
        (status = 413, body = ErrorBody, description = "more than `chunk_max_bytes`, or bytes past the declared size (`details.max_bytes`)"),
        (status = 415, body = ErrorBody)))]
pub async fn chunk(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    // A refusal before the body is read is answered after the rest of it
    // is read (`middleware::limits`), so a client still sending sees it.
    let (up, offset) = match check_chunk(&state, p.user_id, &id, &parts.headers).await {
        Ok(ok) => ok,
        Err(refusal) => return Ok(refusal),
    };
    let body = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    let size = up.size as u64;
    let mut res = match state.media.upload_chunk(&state, &up, offset, body).await {
        Ok(Chunk::Progress(at)) => {
            (StatusCode::NO_CONTENT, progress_headers(at, size)).into_response()
        }
        Ok(Chunk::Complete(a)) => (
            StatusCode::CREATED,
            progress_headers(size, size),
            Json(UploadedAttachment::from(&*a)),
        )
            .into_response(),
        Err(UploadError::Conflict { offset: at }) => (
            progress_headers(at, size),
            ApiError::from(UploadError::Conflict { offset: at }),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // Refused as it streamed: the rest of the body is unread.
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(res)
}

/// Everything a chunk needs before its body is read: its type, its offset
/// (the upload's current one), the upload (the caller's, live) and the
/// permission to upload there still. The refusal is a whole answer.
async fn check_chunk(
    state: &AppState,
    user: hearth_types::UserId,
    id: &str,
    headers: &HeaderMap,
) -> Result<(hearth_store::UploadRecord, u64), Response> {
    let id: AttachmentId = path_id("id", id).map_err(IntoResponse::into_response)?;
    let is_chunk = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(CHUNK_TYPE));
    if !is_chunk {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("a chunk is sent as {CHUNK_TYPE}"),
        )
        .into_response());
    }
    let offset: u64 = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::field("Upload-Offset", "required: a non-negative byte offset").into_response()
        })?;
    let up = state
        .media
        .live_upload(state, user, id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    // Still allowed to upload there (an overwrite or a kick since counts).
    state
        .chat
        .check_upload(up.channel_id, user)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let at = up.received as u64;
    if offset != at {
        // A chunk sent again (its answer was lost) or from the future.
        state
            .media
            .metrics
            .chunks
            .with_label_values(&["conflict"])
            .inc();
        return Err((
            progress_headers(at, up.size as u64),
            ApiError::from(UploadError::Conflict { offset: at }),
        )
            .into_response());
    }
    Ok((up, offset))
}

/// Cancel a resumable upload: the bytes received so far are deleted.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: AttachmentId = path_id("id", &id)?;
    let up = state.media.live_upload(&state, p.user_id, id).await?;
    state
        .media
        .discard_upload(&state, up.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}
