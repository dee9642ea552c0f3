//! Messages, reactions, pins, typing and read states.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hearth_chat::{NewMessageInput, SendOutcome};
use hearth_types::{AttachmentId, ChannelId, MessageId};

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, page, path_id};
use super::wire::*;
use crate::state::AppState;

fn ids(ch: &str, mid: &str) -> ApiResult<(ChannelId, MessageId)> {
    Ok((path_id("id", ch)?, path_id("message_id", mid)?))
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/messages", tag = "messages", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = CreateMessageRequest,
    responses((status = 201, body = Message), (status = 200, body = Message, description = "a repeated nonce: the first message"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "the message is saved but its event could not be stored in the log within 12 s (the log's servers failing); sending it again with the same nonce answers 200 once it is")))]
pub async fn send(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<CreateMessageRequest>,
) -> ApiResult<Response> {
    let id: ChannelId = path_id("id", &id)?;
    let input = NewMessageInput {
        content: req.content,
        nonce: req.nonce,
        reply_to_id: req
            .reply_to_id
            .as_deref()
            .map(|s| path_id("reply_to_id", s))
            .transpose()?,
        attachment_ids: req
            .attachment_ids
            .iter()
            .map(|s| path_id::<AttachmentId>("attachment_ids", s))
            .collect::<ApiResult<_>>()?,
    };
    // Answered once the event is in the bus log, so a client resuming on
    // any node after any crash still gets every message it saw acknowledged.
    // Not stored in time (the log's servers failing): 503, though the
    // message is saved and its event still being appended; the same send
    // again (its nonce) answers 200 once the event is stored.
    let (status, m) = match state.chat.send_message(id, p.user_id, input).await? {
        SendOutcome::Created(m) => (StatusCode::CREATED, m),
        SendOutcome::Duplicate(m) => {
            state.publisher.republish_message(&m);
            (StatusCode::OK, m)
        }
    };
    if !state.publisher.message_stored(m.record.id).await {
        return Err(ApiError::unavailable("the event log"));
    }
    Ok((status, Json(Message::from(&m))).into_response())
}

#[utoipa::path(get, path = "/api/v1/channels/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("before" = Option<String>, Query), ("after" = Option<String>, Query), ("around" = Option<String>, Query, description = "a message id: up to `limit` messages centred on it, newest first (the older half ends with it); not with `before` or `after`"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1-100, default 50")),
    responses((status = 200, body = [Message], description = "newest first (also with `around`), or oldest first with `after`"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<Message>>> {
    let id: ChannelId = path_id("id", &id)?;
    let pg = page::<MessageId>(&q)?;
    let views = match q.get("around") {
        None => state.chat.messages(id, p.user_id, pg).await?,
        Some(a) => {
            if pg.before.is_some() || pg.after.is_some() {
                return Err(ApiError::field(
                    "around",
                    "cannot be combined with before or after",
                ));
            }
            let around: MessageId = path_id("around", a)?;
            state
                .chat
                .messages_around(id, p.user_id, around, pg.limit)
                .await?
        }
    };
    Ok(Json(views.iter().map(Message::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/channels/{id}/messages/{message_id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("message_id" = String, Path)), responses((status = 200, body = Message), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((ch, mid)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    let (ch, mid) = ids(&ch, &mid)?;
    Ok(Json(
        (&state.chat.message(ch, p.user_id, mid).await?).into(),
    ))
}

#[utoipa::path(patch, path = "/api/v1/channels/{id}/messages/{message_id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("message_id" = String, Path)), request_body = EditMessageRequest,
    responses((status = 200, body = Message), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn edit(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((ch, mid)): Path<(String, String)>,
    Body(req): Body<EditMessageRequest>,
) -> ApiResult<Json<Message>> {
    let (ch, mid) = ids(&ch, &mid)?;
    Ok(Json(
        (&state
            .chat
            .edit_message(ch, p.user_id, mid, &req.content)
            .await?)
            .into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/channels/{id}/messages/{message_id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("message_id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((ch, mid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (ch, mid) = ids(&ch, &mid)?;
    state.chat.delete_message(ch, p.user_id, mid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("message_id" = String, Path), ("emoji" = String, Path, description = "URL-encoded Unicode emoji")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn react(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((ch, mid, emoji)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (ch, mid) = ids(&ch, &mid)?;
    state.chat.add_reaction(ch, p.user_id, mid, &emoji).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("message_id" = String, Path), ("emoji" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unreact(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((ch, mid, emoji)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (ch, mid) = ids(&ch, &mid)?;
    state
        .chat
        .remove_reaction(ch, p.user_id, mid, &emoji)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/channels/{id}/pins/{message_id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("message_id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn pin(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((ch, mid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (ch, mid) = ids(&ch, &mid)?;
    state.chat.set_pinned(ch, p.user_id, mid, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/channels/{id}/pins/{message_id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path), ("message_id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unpin(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((ch, mid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (ch, mid) = ids(&ch, &mid)?;
    state.chat.set_pinned(ch, p.user_id, mid, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/channels/{id}/pins", tag = "messages", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [Message]), (status = 404, body = ErrorBody)))]
pub async fn pins(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Message>>> {
    let id: ChannelId = path_id("id", &id)?;
    Ok(Json(
        state
            .chat
            .pins(id, p.user_id)
            .await?
            .iter()
            .map(Message::from)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/typing", tag = "messages", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn typing(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: ChannelId = path_id("id", &id)?;
    state.chat.typing(id, p.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/channels/{id}/read", tag = "messages", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = ReadRequest, responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<ReadRequest>,
) -> ApiResult<StatusCode> {
    let id: ChannelId = path_id("id", &id)?;
    let mid: MessageId = path_id("message_id", &req.message_id)?;
    state.chat.ack(id, p.user_id, mid).await?;
    super::notifications::channel_read(&state, p.user_id, id, mid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/read-states", tag = "messages", security(("bearer" = [])), responses((status = 200, body = [ReadState])))]
pub async fn read_states(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<Vec<ReadState>>> {
    Ok(Json(
        state
            .chat
            .read_states(p.user_id)
            .await?
            .iter()
            .map(ReadState::from)
            .collect(),
    ))
}
