//! `/communities`: the communities themselves, their members, bans and invites.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hearth_types::{CommunityId, RoleId, UserId, parse_rfc3339};

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, MaybeAuth, OptionalBody, path_id};
use super::wire::*;
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v1/communities", tag = "communities", security(("bearer" = [])), request_body = CreateCommunityRequest,
    responses((status = 201, body = Community), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<CreateCommunityRequest>,
) -> ApiResult<Response> {
    let c = state.chat.create_community(p.user_id, &req.name).await?;
    Ok((StatusCode::CREATED, Json(Community::from(&c))).into_response())
}

#[utoipa::path(get, path = "/api/v1/communities", tag = "communities", security(("bearer" = [])),
    responses((status = 200, body = [Community])))]
pub async fn list(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<Community>>> {
    Ok(Json(
        state
            .chat
            .communities(p.user_id)
            .await?
            .iter()
            .map(Community::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/communities/{id}", tag = "communities", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Community), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Community>> {
    let id: CommunityId = path_id("id", &id)?;
    Ok(Json((&state.chat.community(id, p.user_id).await?).into()))
}

/// Rename the community or set its icon (MANAGE_COMMUNITY); announced as COMMUNITY_UPDATE.
#[utoipa::path(patch, path = "/api/v1/communities/{id}", tag = "communities", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = UpdateCommunityRequest, responses((status = 200, body = Community), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<UpdateCommunityRequest>,
) -> ApiResult<Json<Community>> {
    let id: CommunityId = path_id("id", &id)?;
    let icon = match req.icon_id {
        Some(Some(raw)) => Some(Some(path_id::<hearth_types::AttachmentId>(
            "icon_id", &raw,
        )?)),
        Some(None) => Some(None),
        None => None,
    };
    Ok(Json(
        (&state
            .chat
            .update_community(id, p.user_id, req.name.as_deref(), icon)
            .await?)
            .into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/communities/{id}", tag = "communities", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: CommunityId = path_id("id", &id)?;
    state.chat.delete_community(id, p.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- members

#[utoipa::path(get, path = "/api/v1/communities/{id}/members", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path), ("after" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1-100, default 50")),
    responses((status = 200, body = [Member]), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<Member>>> {
    let id: CommunityId = path_id("id", &id)?;
    let page = super::extract::page::<UserId>(&q)?;
    let list = state
        .chat
        .members(id, p.user_id, page.after, page.limit)
        .await?;
    Ok(Json(list.iter().map(Member::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)), responses((status = 200, body = Member), (status = 404, body = ErrorBody)))]
pub async fn member(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult<Json<Member>> {
    let (id, uid): (CommunityId, UserId) = (path_id("id", &id)?, member_id(&uid, p.user_id)?);
    Ok(Json((&state.chat.member(id, p.user_id, uid).await?).into()))
}

fn member_id(raw: &str, me: UserId) -> ApiResult<UserId> {
    if raw == "@me" {
        Ok(me)
    } else {
        path_id("user_id", raw)
    }
}

/// Leave the community (the owner cannot: delete it instead).
#[utoipa::path(delete, path = "/api/v1/communities/{id}/members/@me", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: CommunityId = path_id("id", &id)?;
    state.chat.leave(id, p.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your own membership: nickname (timeouts are for moderators).
#[utoipa::path(patch, path = "/api/v1/communities/{id}/members/@me", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdateMemberRequest,
    responses((status = 200, body = Member), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "a timeout of yourself, or a change you may not make"), (status = 404, body = ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Body<UpdateMemberRequest>,
) -> ApiResult<Json<Member>> {
    update_member(State(state), auth, Path((id, "@me".to_string())), body).await
}

/// `DELETE .../members/@me` leaves; any other id kicks (KICK_MEMBERS).
#[utoipa::path(delete, path = "/api/v1/communities/{id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path, description = "a user id, or @me to leave")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: CommunityId = path_id("id", &id)?;
    if uid == "@me" {
        state.chat.leave(id, p.user_id).await?;
    } else {
        let target: UserId = path_id("user_id", &uid)?;
        if target == p.user_id {
            state.chat.leave(id, p.user_id).await?;
        } else {
            state.chat.kick(id, p.user_id, target).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(patch, path = "/api/v1/communities/{id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)), request_body = UpdateMemberRequest,
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_member(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, uid)): Path<(String, String)>,
    Body(req): Body<UpdateMemberRequest>,
) -> ApiResult<Json<Member>> {
    let id: CommunityId = path_id("id", &id)?;
    let target = member_id(&uid, p.user_id)?;
    let timeout = match req.timed_out_until {
        Some(Some(s)) => {
            Some(Some(parse_rfc3339(&s).ok_or_else(|| {
                ApiError::field("timed_out_until", "an RFC 3339 time")
            })?))
        }
        Some(None) => Some(None),
        None => None,
    };
    let m = state
        .chat
        .update_member(id, p.user_id, target, req.nickname, timeout)
        .await?;
    Ok(Json((&m).into()))
}

#[utoipa::path(put, path = "/api/v1/communities/{id}/members/{user_id}/roles/{role_id}", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path), ("role_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_member_role(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, uid, rid)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    set_role(&state, p.user_id, &id, &uid, &rid, true).await
}

#[utoipa::path(delete, path = "/api/v1/communities/{id}/members/{user_id}/roles/{role_id}", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path), ("role_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_member_role(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, uid, rid)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    set_role(&state, p.user_id, &id, &uid, &rid, false).await
}

async fn set_role(
    state: &AppState,
    actor: UserId,
    id: &str,
    uid: &str,
    rid: &str,
    on: bool,
) -> ApiResult<StatusCode> {
    let id: CommunityId = path_id("id", id)?;
    let target = member_id(uid, actor)?;
    let role: RoleId = path_id("role_id", rid)?;
    state
        .chat
        .set_member_role(id, actor, target, role, on)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- bans

#[utoipa::path(put, path = "/api/v1/communities/{id}/bans/{user_id}", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)), request_body = Option<BanRequest>,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ban(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, uid)): Path<(String, String)>,
    OptionalBody(req): OptionalBody<BanRequest>,
) -> ApiResult<StatusCode> {
    let id: CommunityId = path_id("id", &id)?;
    let target: UserId = path_id("user_id", &uid)?;
    let delete_secs = match req.delete_message_seconds {
        None => 0,
        Some(n @ 0..=604_800) => n as u32,
        Some(_) => {
            return Err(ApiError::field(
                "delete_message_seconds",
                "0 to 604800 (7 days)",
            ));
        }
    };
    state
        .chat
        .ban_deleting(id, p.user_id, target, req.reason.as_deref(), delete_secs)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/communities/{id}/bans/{user_id}", tag = "members", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unban(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: CommunityId = path_id("id", &id)?;
    let target: UserId = path_id("user_id", &uid)?;
    state.chat.unban(id, p.user_id, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/bans", tag = "members", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [Ban]), (status = 403, body = ErrorBody)))]
pub async fn bans(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Ban>>> {
    let id: CommunityId = path_id("id", &id)?;
    Ok(Json(
        state
            .chat
            .bans(id, p.user_id)
            .await?
            .iter()
            .map(Ban::from)
            .collect(),
    ))
}

// ---- invites

#[utoipa::path(post, path = "/api/v1/communities/{id}/invites", tag = "invites", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = Option<CreateInviteRequest>, responses((status = 201, body = Invite), (status = 403, body = ErrorBody)))]
pub async fn create_invite(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    OptionalBody(req): OptionalBody<CreateInviteRequest>,
) -> ApiResult<Response> {
    let id: CommunityId = path_id("id", &id)?;
    let inv = state
        .chat
        .create_invite(id, p.user_id, req.max_uses, req.max_age_seconds)
        .await?;
    Ok((StatusCode::CREATED, Json(Invite::from(&inv))).into_response())
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/invites", tag = "invites", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [Invite]), (status = 403, body = ErrorBody)))]
pub async fn invites(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Invite>>> {
    let id: CommunityId = path_id("id", &id)?;
    Ok(Json(
        state
            .chat
            .invites(id, p.user_id)
            .await?
            .iter()
            .map(Invite::from)
            .collect(),
    ))
}

/// Public: what an invite link leads to.
#[utoipa::path(get, path = "/api/v1/invites/{code}", tag = "invites", params(("code" = String, Path)),
    responses((status = 200, body = InvitePreview), (status = 404, body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    _auth: MaybeAuth,
    Path(code): Path<String>,
) -> ApiResult<Json<InvitePreview>> {
    let pv = state.chat.invite_preview(&code).await?;
    Ok(Json(InvitePreview {
        code: pv.invite.code.clone(),
        community: (&pv.community).into(),
        member_count: pv.member_count,
        expires_at: pv.invite.expires_at.map(hearth_types::format_rfc3339),
    }))
}

#[utoipa::path(post, path = "/api/v1/invites/{code}", tag = "invites", security(("bearer" = [])), params(("code" = String, Path)),
    responses((status = 200, body = Community), (status = 403, body = ErrorBody, description = "banned"), (status = 404, body = ErrorBody)))]
pub async fn join(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(code): Path<String>,
) -> ApiResult<Json<Community>> {
    Ok(Json((&state.chat.join(&code, p.user_id).await?).into()))
}

#[utoipa::path(delete, path = "/api/v1/invites/{code}", tag = "invites", security(("bearer" = [])), params(("code" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_invite(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    state.chat.delete_invite(&code, p.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
