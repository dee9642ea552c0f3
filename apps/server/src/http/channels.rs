//! Channels, overwrites and DMs.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hearth_chat::{ChannelInput, OverwriteInput};
use hearth_store::{ChannelKind, OverwriteTargetKind};
use hearth_types::{ChannelId, CommunityId, UserId};

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::roles::parse_permissions;
use super::wire::*;
use crate::state::AppState;

fn kind(k: Option<&str>) -> ApiResult<Option<ChannelKind>> {
    match k {
        None => Ok(None),
        Some("text") => Ok(Some(ChannelKind::Text)),
        Some("voice") => Ok(Some(ChannelKind::Voice)),
        Some(_) => Err(ApiError::field("kind", "\"text\" or \"voice\"")),
    }
}

#[utoipa::path(post, path = "/api/v1/communities/{id}/channels", tag = "channels", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = CreateChannelRequest, responses((status = 201, body = Channel), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<CreateChannelRequest>,
) -> ApiResult<Response> {
    let id: CommunityId = path_id("id", &id)?;
    let input = ChannelInput {
        name: Some(req.name),
        kind: kind(req.kind.as_deref())?,
        topic: req.topic.map(Some),
        parent_id: req
            .parent_id
            .as_deref()
            .map(|s| path_id("parent_id", s).map(Some))
            .transpose()?,
        position: req.position,
        user_limit: req.user_limit,
        slowmode_secs: req.slowmode_secs,
        locked: req.locked,
    };
    let ch = state.chat.create_channel(id, p.user_id, input).await?;
    Ok((StatusCode::CREATED, Json(Channel::from(&ch))).into_response())
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/channels", tag = "channels", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [Channel], description = "only channels the caller can view"), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Channel>>> {
    let id: CommunityId = path_id("id", &id)?;
    Ok(Json(
        state
            .chat
            .channels(id, p.user_id)
            .await?
            .iter()
            .map(Channel::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Channel), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Channel>> {
    let id: ChannelId = path_id("id", &id)?;
    let (ch, recipients) = state.chat.channel(id, p.user_id).await?;
    let r = ch.kind.is_private().then_some(recipients.as_slice());
    Ok(Json(Channel::new(&ch, r)))
}

#[utoipa::path(patch, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = UpdateChannelRequest, responses((status = 200, body = Channel), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<UpdateChannelRequest>,
) -> ApiResult<Json<Channel>> {
    let id: ChannelId = path_id("id", &id)?;
    let parent_id = match req.parent_id {
        Some(Some(s)) => Some(Some(path_id("parent_id", &s)?)),
        Some(None) => Some(None),
        None => None,
    };
    let input = ChannelInput {
        name: req.name,
        kind: None,
        topic: req.topic,
        parent_id,
        position: req.position,
        user_limit: req.user_limit,
        slowmode_secs: req.slowmode_secs,
        locked: req.locked,
    };
    Ok(Json(
        (&state.chat.update_channel(id, p.user_id, input).await?).into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: ChannelId = path_id("id", &id)?;
    state.chat.delete_channel(id, p.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/channels/{id}/overwrites", tag = "channels", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [Overwrite]), (status = 404, body = ErrorBody)))]
pub async fn overwrites(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Overwrite>>> {
    let id: ChannelId = path_id("id", &id)?;
    Ok(Json(
        state
            .chat
            .overwrites(id, p.user_id)
            .await?
            .iter()
            .map(Overwrite::from)
            .collect(),
    ))
}

#[utoipa::path(put, path = "/api/v1/channels/{id}/overwrites/{target_id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path), ("target_id" = String, Path, description = "a role id or a user id")), request_body = OverwriteRequest,
    responses((status = 200, body = Overwrite), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_overwrite(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, target)): Path<(String, String)>,
    Body(req): Body<OverwriteRequest>,
) -> ApiResult<Json<Overwrite>> {
    let id: ChannelId = path_id("id", &id)?;
    let target: UserId = path_id("target_id", &target)?;
    let kind = match req.target_type.as_str() {
        "role" => OverwriteTargetKind::Role,
        "member" => OverwriteTargetKind::Member,
        _ => return Err(ApiError::field("target_type", "\"role\" or \"member\"")),
    };
    let o = OverwriteInput {
        target_id: target.0,
        kind,
        allow: parse_permissions("allow", &req.allow)?,
        deny: parse_permissions("deny", &req.deny)?,
    };
    Ok(Json(
        (&state.chat.put_overwrite(id, p.user_id, o).await?).into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/channels/{id}/overwrites/{target_id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path), ("target_id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_overwrite(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, target)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: ChannelId = path_id("id", &id)?;
    let target: UserId = path_id("target_id", &target)?;
    state.chat.delete_overwrite(id, p.user_id, target.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- DMs

#[utoipa::path(post, path = "/api/v1/dms", tag = "dms", security(("bearer" = [])), request_body = CreateDmRequest,
    responses((status = 200, body = Channel, description = "the DM or new group DM, with recipients"), (status = 400, body = ErrorBody)))]
pub async fn open_dm(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<CreateDmRequest>,
) -> ApiResult<Json<Channel>> {
    let ids = req
        .user_ids
        .iter()
        .map(|s| path_id::<UserId>("user_ids", s))
        .collect::<ApiResult<Vec<_>>>()?;
    let (ch, users) = state.chat.open_dm(p.user_id, &ids).await?;
    Ok(Json(Channel::new(&ch, Some(&users))))
}

#[utoipa::path(get, path = "/api/v1/dms", tag = "dms", security(("bearer" = [])), responses((status = 200, body = [Channel])))]
pub async fn dms(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<Channel>>> {
    let list = state.chat.dms(p.user_id).await?;
    Ok(Json(
        list.iter().map(|(c, u)| Channel::new(c, Some(u))).collect(),
    ))
}
