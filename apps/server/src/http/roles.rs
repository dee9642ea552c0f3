//! `/communities/{id}/roles`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hearth_chat::{Permissions, RoleInput};
use hearth_types::{CommunityId, RoleId};

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::wire::*;
use crate::state::AppState;

pub fn parse_permissions(field: &str, names: &[String]) -> ApiResult<Permissions> {
    Permissions::from_names(names)
        .map_err(|e| ApiError::field(field, format!("unknown permission {:?}", e.0)))
}

fn input(req: RoleRequest) -> ApiResult<RoleInput> {
    Ok(RoleInput {
        name: req.name,
        permissions: req
            .permissions
            .as_deref()
            .map(|p| parse_permissions("permissions", p))
            .transpose()?,
        color: req.color,
        position: req.position,
    })
}

#[utoipa::path(post, path = "/api/v1/communities/{id}/roles", tag = "roles", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = RoleRequest, responses((status = 201, body = Role), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<RoleRequest>,
) -> ApiResult<Response> {
    let id: CommunityId = path_id("id", &id)?;
    if req.name.is_none() {
        return Err(ApiError::field("name", "required"));
    }
    let r = state.chat.create_role(id, p.user_id, input(req)?).await?;
    Ok((StatusCode::CREATED, Json(Role::from(&r))).into_response())
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/roles", tag = "roles", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [Role]), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Role>>> {
    let id: CommunityId = path_id("id", &id)?;
    Ok(Json(
        state
            .chat
            .roles(id, p.user_id)
            .await?
            .iter()
            .map(Role::from)
            .collect(),
    ))
}

#[utoipa::path(patch, path = "/api/v1/communities/{id}/roles/{role_id}", tag = "roles", security(("bearer" = [])),
    params(("id" = String, Path), ("role_id" = String, Path)), request_body = RoleRequest,
    responses((status = 200, body = Role), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, rid)): Path<(String, String)>,
    Body(req): Body<RoleRequest>,
) -> ApiResult<Json<Role>> {
    let id: CommunityId = path_id("id", &id)?;
    let rid: RoleId = path_id("role_id", &rid)?;
    Ok(Json(
        (&state
            .chat
            .update_role(id, p.user_id, rid, input(req)?)
            .await?)
            .into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/communities/{id}/roles/{role_id}", tag = "roles", security(("bearer" = [])),
    params(("id" = String, Path), ("role_id" = String, Path)), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, rid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: CommunityId = path_id("id", &id)?;
    let rid: RoleId = path_id("role_id", &rid)?;
    state.chat.delete_role(id, p.user_id, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}
