//! `/admin`: the instance's staff (platform administration). Every call
//! checks the staff policy (`crate::admin::require`) and is audited in the
//! instance's audit log, reads included. Separate from the per-community
//! permissions: a community's owner is nobody here.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use hearth_moderation::TargetKind;
use hearth_moderation::staff::{Actor, AdminOp, StaffRole};
use hearth_store::UserRecord;
use hearth_types::UserId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::moderation::AuditLogEntry;
use super::wire::{ErrorBody, User};
use crate::admin::{AdminError, audit, require};
use crate::state::AppState;

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Policy(e) => e.into(),
            AdminError::Accounts(e) => e.into(),
            AdminError::Store(e) => e.into(),
            AdminError::Chat(e) => e.into(),
            AdminError::NotFound => ApiError::not_found(),
            AdminError::OwnsCommunities(ids) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the account owns communities: transfer them or take them down first",
            )
            .details(json!({
                "reason": "owns_communities",
                "community_ids": ids.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>(),
                "communities": ids.iter().map(|(c, name)| json!({"id": c.to_string(), "name": name})).collect::<Vec<_>>(),
            })),
        }
    }
}

/// A suspension: when, by whom and why.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Suspension {
    pub reason: Option<String>,
    pub suspended_by: Option<String>,
    pub suspended_at: String,
}

/// A user as the instance's staff see them.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminUser {
    pub user: User,
    pub email: Option<String>,
    /// Made with `hearth admin create-user --admin`: every staff permission.
    pub is_admin: bool,
    /// Staff roles from the policy.
    pub staff_roles: Vec<String>,
    pub mfa_enabled: bool,
    /// Present while the account is suspended.
    pub suspended: Option<Suspension>,
    /// Present once the account is erased.
    pub erased: Option<Erasure>,
}

/// An erasure: when, by whom, and what became of the messages.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Erasure {
    pub erased_by: Option<String>,
    /// `keep` (shown as from a deleted user) or `remove` (deleted).
    pub messages: String,
    pub erased_at: String,
}

async fn admin_user(state: &AppState, u: &UserRecord) -> ApiResult<AdminUser> {
    let suspended = state.store.suspension(u.id).await?.map(|s| Suspension {
        reason: s.reason,
        suspended_by: s.suspended_by.map(|b| b.to_string()),
        suspended_at: hearth_types::format_rfc3339(s.suspended_at),
    });
    let erased = state.store.erasure(u.id).await?.map(|e| Erasure {
        erased_by: e.erased_by.map(|b| b.to_string()),
        messages: e.messages,
        erased_at: hearth_types::format_rfc3339(e.erased_at),
    });
    Ok(AdminUser {
        user: u.into(),
        email: u.email.clone(),
        is_admin: u.is_admin,
        staff_roles: state
            .admin
            .policy
            .roles_of(u.id)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        mfa_enabled: u.totp_secret.is_some(),
        suspended,
        erased,
    })
}

fn limit_of(q: &HashMap<String, String>) -> ApiResult<u32> {
    match q.get("limit") {
        None => Ok(50),
        Some(s) => match s.parse::<u32>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err(ApiError::field("limit", "an integer from 1 to 100")),
        },
    }
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    params(("q" = Option<String>, Query, description = "a username prefix or an exact email, ignoring case; empty: everyone"),
        ("after" = Option<String>, Query, description = "users after this id (the next page)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1-100, default 50")),
    responses((status = 200, body = [AdminUser], description = "by id"), (status = 403, body = ErrorBody, description = "needs users:read")))]
pub async fn find_users(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<AdminUser>>> {
    let limit = limit_of(&q)?;
    let query = q.get("q").map(String::as_str).unwrap_or("");
    if query.chars().count() > 254 {
        return Err(ApiError::field("q", "at most 254 characters"));
    }
    let after = match q.get("after") {
        Some(a) => path_id::<UserId>("after", a)?,
        None => UserId(0),
    };
    require(&state, p.user_id, AdminOp::FindUsers).await?;
    let found = state.store.find_users(query, after, limit).await?;
    let mut out = Vec::with_capacity(found.len());
    for u in &found {
        out.push(admin_user(&state, u).await?);
    }
    audit(
        &state,
        Some(p.user_id),
        AdminOp::FindUsers,
        (TargetKind::Instance, None),
        None,
        json!({ "query": query, "results": out.len() }),
    )
    .await;
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = AdminUser), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<AdminUser>> {
    let id: UserId = path_id("id", &id)?;
    require(&state, p.user_id, AdminOp::FindUsers).await?;
    let u = state.accounts.user(id).await?;
    audit(
        &state,
        Some(p.user_id),
        AdminOp::FindUsers,
        (TargetKind::User, Some(id.0)),
        None,
        json!({ "user": id.to_string() }),
    )
    .await;
    Ok(Json(admin_user(&state, &u).await?))
}

/// Why an account is suspended.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    /// Shown to staff and kept in the audit log (at most 512 characters).
    pub reason: Option<String>,
}

/// Staff may act on other staff only with the policy's own power
/// (`policy:edit`): support cannot suspend an admin.
async fn may_act_on(state: &AppState, actor: UserId, target: &UserRecord) -> ApiResult<()> {
    if actor == target.id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "staff cannot do this to their own account",
        )
        .details(json!({ "fields": { "id": "your own account" } })));
    }
    let staff = target.is_admin || !state.admin.policy.roles_of(target.id).is_empty();
    if staff {
        require(state, actor, AdminOp::EditPolicy).await?;
    }
    Ok(())
}

#[utoipa::path(put, path = "/api/v1/admin/users/{id}/suspension", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SuspendRequest,
    responses((status = 204, description = "suspended (or already was): no sign-in, every session revoked, sockets closed with 4010 on every node"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "needs users:suspend (and policy:edit for a staff account)"), (status = 404, body = ErrorBody)))]
pub async fn suspend(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<SuspendRequest>,
) -> ApiResult<StatusCode> {
    let id: UserId = path_id("id", &id)?;
    let reason = reason_of(req.reason)?;
    require(&state, p.user_id, AdminOp::SuspendUser).await?;
    let target = state.accounts.user(id).await?;
    may_act_on(&state, p.user_id, &target).await?;
    let fresh = crate::admin::suspend(&state, id, Some(p.user_id), reason.clone()).await?;
    if fresh {
        audit(
            &state,
            Some(p.user_id),
            AdminOp::SuspendUser,
            (TargetKind::User, Some(id.0)),
            reason.as_deref(),
            json!({ "suspended": true }),
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/suspension", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "the account may sign in again"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such user, or not suspended")))]
pub async fn unsuspend(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: UserId = path_id("id", &id)?;
    require(&state, p.user_id, AdminOp::UnsuspendUser).await?;
    if !state.store.unsuspend_user(id).await? {
        return Err(ApiError::not_found());
    }
    audit(
        &state,
        Some(p.user_id),
        AdminOp::UnsuspendUser,
        (TargetKind::User, Some(id.0)),
        None,
        json!({ "suspended": false }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/mfa", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "two-factor sign-in is off for the account (it signs in with its password alone)"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset_mfa(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: UserId = path_id("id", &id)?;
    require(&state, p.user_id, AdminOp::ResetMfa).await?;
    let target = state.accounts.user(id).await?;
    may_act_on(&state, p.user_id, &target).await?;
    state.accounts.reset_totp(id).await?;
    audit(
        &state,
        Some(p.user_id),
        AdminOp::ResetMfa,
        (TargetKind::User, Some(id.0)),
        None,
        json!({ "mfa_enabled": false }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// What to do with an erased account's messages, and why it is erased.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// `keep` (the default: kept, shown as from a deleted user) or `remove`
    /// (deleted everywhere, communities and DMs alike).
    pub messages: Option<String>,
    /// Kept in the audit log (at most 512 characters).
    pub reason: Option<String>,
}

/// What an erasure did.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EraseResult {
    pub messages_deleted: usize,
    pub communities_left: usize,
}

fn reason_of(r: Option<String>) -> ApiResult<Option<String>> {
    let reason = r.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 512) {
        return Err(ApiError::field("reason", "at most 512 characters"));
    }
    Ok(reason)
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/erasure", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = EraseRequest,
    responses((status = 200, body = EraseResult, description = "erased for good: every session revoked (sockets closed on every node), its communities left, its staff roles taken, and its email, names, avatar, password and two-factor secret removed; the account keeps only its id, under the username `deleted-<id>`"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "needs users:erase (and policy:edit for a staff account)"),
        (status = 404, body = ErrorBody, description = "no such account, or erased already"),
        (status = 409, body = ErrorBody, description = "`details.reason: \"owns_communities\"` with `details.community_ids`: transfer or take them down first")))]
pub async fn erase(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<EraseRequest>,
) -> ApiResult<Json<EraseResult>> {
    let id: UserId = path_id("id", &id)?;
    let messages = match req.messages.as_deref() {
        None => crate::admin::ErasedMessages::Keep,
        Some(m) => crate::admin::ErasedMessages::parse(m)
            .ok_or_else(|| ApiError::field("messages", "\"keep\" or \"remove\""))?,
    };
    let reason = reason_of(req.reason)?;
    require(&state, p.user_id, AdminOp::EraseUser).await?;
    let target = state.accounts.user(id).await?;
    may_act_on(&state, p.user_id, &target).await?;
    let done = crate::admin::erase(&state, id, Some(p.user_id), messages).await?;
    audit(
        &state,
        Some(p.user_id),
        AdminOp::EraseUser,
        (TargetKind::User, Some(id.0)),
        reason.as_deref(),
        json!({
            "erased": true,
            "messages": messages.as_str(),
            "messages_deleted": done.messages_deleted,
            "communities_left": done.communities_left,
        }),
    )
    .await;
    Ok(Json(EraseResult {
        messages_deleted: done.messages_deleted,
        communities_left: done.communities_left,
    }))
}

/// A community as the instance's staff see it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminCommunity {
    pub community: super::wire::Community,
    pub members: i64,
    pub channels: i64,
}

#[utoipa::path(get, path = "/api/v1/admin/communities", tag = "admin", security(("bearer" = [])),
    params(("q" = Option<String>, Query, description = "a name prefix (ignoring case) or an exact id; empty: every community"),
        ("after" = Option<String>, Query, description = "communities after this id (the next page)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1-100, default 50")),
    responses((status = 200, body = [AdminCommunity], description = "by id"), (status = 403, body = ErrorBody, description = "needs communities:read")))]
pub async fn communities(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<AdminCommunity>>> {
    let limit = limit_of(&q)?;
    let query = q.get("q").map(String::as_str).unwrap_or("");
    if query.chars().count() > 100 {
        return Err(ApiError::field("q", "at most 100 characters"));
    }
    let after = match q.get("after") {
        Some(a) => path_id::<hearth_types::CommunityId>("after", a)?,
        None => hearth_types::CommunityId(0),
    };
    require(&state, p.user_id, AdminOp::ListCommunities).await?;
    let found = state.store.admin_communities(query, after, limit).await?;
    let out: Vec<AdminCommunity> = found
        .iter()
        .map(|c| AdminCommunity {
            community: (&c.community).into(),
            members: c.members,
            channels: c.channels,
        })
        .collect();
    audit(
        &state,
        Some(p.user_id),
        AdminOp::ListCommunities,
        (TargetKind::Instance, None),
        None,
        json!({ "query": query, "results": out.len() }),
    )
    .await;
    Ok(Json(out))
}

/// Why a community is taken down.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakedownRequest {
    /// Kept in the audit log (at most 512 characters).
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/admin/communities/{id}/takedown", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = TakedownRequest,
    responses((status = 204, description = "deleted with everything in it, whoever owns it: its members get COMMUNITY_DELETE; the instance's audit log keeps its name, owner and size"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "needs communities:takedown"), (status = 404, body = ErrorBody)))]
pub async fn takedown(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<TakedownRequest>,
) -> ApiResult<StatusCode> {
    let id: hearth_types::CommunityId = path_id("id", &id)?;
    let reason = reason_of(req.reason)?;
    require(&state, p.user_id, AdminOp::TakedownCommunity).await?;
    let members = state.store.member_ids(id).await?.len();
    let c = crate::admin::take_down(&state, id).await?;
    audit(
        &state,
        Some(p.user_id),
        AdminOp::TakedownCommunity,
        (TargetKind::Community, Some(id.0)),
        reason.as_deref(),
        json!({
            "name": c.name,
            "owner_id": c.owner_id.to_string(),
            "members": members,
            "taken_down": true,
        }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Counts for the instance's operators.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceStats {
    pub users: i64,
    pub suspended_users: i64,
    pub communities: i64,
    pub channels: i64,
    pub messages: i64,
    /// Sessions not revoked and used within 30 days.
    pub live_sessions: i64,
    /// Gateway sessions held by the node that answered.
    pub gateway_sessions_here: usize,
    pub node_id: u16,
}

#[utoipa::path(get, path = "/api/v1/admin/stats", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = InstanceStats), (status = 403, body = ErrorBody, description = "needs stats:read")))]
pub async fn stats(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<InstanceStats>> {
    require(&state, p.user_id, AdminOp::Stats).await?;
    let s = state.store.instance_stats(hearth_types::now_ms()).await?;
    audit(
        &state,
        Some(p.user_id),
        AdminOp::Stats,
        (TargetKind::Instance, None),
        None,
        json!({}),
    )
    .await;
    Ok(Json(InstanceStats {
        users: s.users,
        suspended_users: s.suspended_users,
        communities: s.communities,
        channels: s.channels,
        messages: s.messages,
        live_sessions: s.live_sessions,
        gateway_sessions_here: state.hub.all().len(),
        node_id: state.node_id,
    }))
}

/// One staff role: what it may do and who holds it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StaffRoleView {
    pub role: String,
    /// `object:action` pairs (`*` for any).
    pub permissions: Vec<String>,
    pub members: Vec<String>,
}

/// The staff policy.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StaffPolicyView {
    pub roles: Vec<StaffRoleView>,
}

/// What the caller may do as staff (empty for everyone else).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MyStaff {
    pub is_admin: bool,
    pub roles: Vec<String>,
    /// `object:action` pairs the caller may do.
    pub permissions: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/admin/@me", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = MyStaff)))]
pub async fn me(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<MyStaff>> {
    let u = state.accounts.user(p.user_id).await?;
    let permissions = if u.is_admin {
        hearth_moderation::staff::all_pairs()
            .map(|(o, a)| format!("{}:{}", o.as_str(), a.as_str()))
            .collect()
    } else {
        state
            .admin
            .policy
            .permissions_of(p.user_id)
            .iter()
            .map(|(o, a)| format!("{}:{}", o.as_str(), a.as_str()))
            .collect()
    };
    Ok(Json(MyStaff {
        is_admin: u.is_admin,
        roles: state
            .admin
            .policy
            .roles_of(p.user_id)
            .iter()
            .map(|r| r.to_string())
            .collect(),
        permissions,
    }))
}

fn policy_view(state: &AppState) -> StaffPolicyView {
    use hearth_moderation::staff::PolicyRule;
    let mut roles: std::collections::BTreeMap<String, StaffRoleView> = Default::default();
    let entry = |roles: &mut std::collections::BTreeMap<String, StaffRoleView>, r: &StaffRole| {
        roles
            .entry(r.to_string())
            .or_insert_with(|| StaffRoleView {
                role: r.to_string(),
                permissions: if r.is_admin() {
                    vec!["*:*".into()]
                } else {
                    Vec::new()
                },
                members: Vec::new(),
            })
            .role
            .clone()
    };
    entry(&mut roles, &StaffRole::admin());
    for rule in state.admin.policy.rules() {
        match &rule {
            PolicyRule::Permission {
                role,
                object,
                action,
            } => {
                let k = entry(&mut roles, role);
                if let Some(v) = roles.get_mut(&k) {
                    v.permissions.push(format!("{object}:{action}"));
                }
            }
            PolicyRule::Member { user, role } => {
                let k = entry(&mut roles, role);
                if let Some(v) = roles.get_mut(&k) {
                    v.members.push(user.to_string());
                }
            }
        }
    }
    StaffPolicyView {
        roles: roles.into_values().collect(),
    }
}

#[utoipa::path(get, path = "/api/v1/admin/staff", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = StaffPolicyView), (status = 403, body = ErrorBody, description = "needs policy:read")))]
pub async fn staff(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<StaffPolicyView>> {
    require(&state, p.user_id, AdminOp::ReadPolicy).await?;
    audit(
        &state,
        Some(p.user_id),
        AdminOp::ReadPolicy,
        (TargetKind::StaffPolicy, None),
        None,
        json!({}),
    )
    .await;
    Ok(Json(policy_view(&state)))
}

fn role_of(s: &str) -> ApiResult<StaffRole> {
    StaffRole::new(s).map_err(|e| ApiError::field("role", e.to_string()))
}

/// The policy's actor for a caller: the `is_admin` flag acts as the
/// operator (it holds every permission whatever the policy says).
async fn actor(state: &AppState, user: UserId) -> ApiResult<Actor> {
    require(state, user, AdminOp::EditPolicy).await?;
    Ok(if state.accounts.user(user).await?.is_admin {
        Actor::Operator
    } else {
        Actor::Staff(user)
    })
}

async fn edited(state: &AppState, by: UserId, change: serde_json::Value) {
    crate::admin::announce_policy(state);
    audit(
        state,
        Some(by),
        AdminOp::EditPolicy,
        (TargetKind::StaffPolicy, None),
        None,
        change,
    )
    .await;
}

#[utoipa::path(put, path = "/api/v1/admin/staff/roles/{role}/members/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("role" = String, Path), ("user_id" = String, Path)),
    responses((status = 204, description = "the user holds the role (on every node within a second)"), (status = 400, body = ErrorBody, description = "no such role (give it a permission first)"), (status = 403, body = ErrorBody, description = "needs policy:edit, and every permission of the role"), (status = 404, body = ErrorBody)))]
pub async fn grant(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((role, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    edit_membership(&state, p.user_id, &role, &user, true).await
}

#[utoipa::path(delete, path = "/api/v1/admin/staff/roles/{role}/members/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("role" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 409, body = ErrorBody, description = "the last admin keeps the role"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "the user does not hold the role")))]
pub async fn revoke(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((role, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    edit_membership(&state, p.user_id, &role, &user, false).await
}

/// Gives (`grant`) or takes a staff role; taking one the user does not
/// hold is 404, giving one they hold changes nothing.
async fn edit_membership(
    state: &AppState,
    by: UserId,
    role: &str,
    user: &str,
    grant: bool,
) -> ApiResult<StatusCode> {
    let role = role_of(role)?;
    let user: UserId = path_id("user_id", user)?;
    let actor = actor(state, by).await?;
    let policy = &state.admin.policy;
    let changed = if grant {
        state.accounts.user(user).await?;
        policy.grant(actor, user, &role).await?
    } else {
        policy.revoke(actor, user, &role).await?
    };
    if changed {
        let key = if grant { "grant" } else { "revoke" };
        edited(
            state,
            by,
            json!({ key: { "role": role.to_string(), "user": user.to_string() } }),
        )
        .await;
    } else if !grant {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/admin/staff/roles/{role}/permissions/{object}/{action}", tag = "admin", security(("bearer" = [])),
    params(("role" = String, Path), ("object" = String, Path, description = "`users`, `communities`, `reports`, `stats`, `policy`, `audit` or `*`"), ("action" = String, Path, description = "an action of the object, or `*`")),
    responses((status = 204, description = "the role may do it (a new role is created)"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "needs policy:edit and the permission itself")))]
pub async fn add_permission(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((role, object, action)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    edit_permission(&state, p.user_id, &role, &object, &action, true).await
}

#[utoipa::path(delete, path = "/api/v1/admin/staff/roles/{role}/permissions/{object}/{action}", tag = "admin", security(("bearer" = [])),
    params(("role" = String, Path), ("object" = String, Path), ("action" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "the role has no such permission")))]
pub async fn remove_permission(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((role, object, action)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    edit_permission(&state, p.user_id, &role, &object, &action, false).await
}

/// Adds (`allow`) or removes a role's permission; removing one that is not
/// there is 404, adding one that is changes nothing.
async fn edit_permission(
    state: &AppState,
    by: UserId,
    role: &str,
    object: &str,
    action: &str,
    allow: bool,
) -> ApiResult<StatusCode> {
    let role = role_of(role)?;
    let actor = actor(state, by).await?;
    let policy = &state.admin.policy;
    let changed = if allow {
        policy.add_permission(actor, &role, object, action).await?
    } else {
        policy
            .remove_permission(actor, &role, object, action)
            .await?
    };
    if changed {
        let key = if allow { "allow" } else { "deny" };
        edited(
            state,
            by,
            json!({ key: { "role": role.to_string(), "permission": format!("{object}:{action}") } }),
        )
        .await;
    } else if !allow {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/admin/audit-log", tag = "admin", security(("bearer" = [])),
    params(("actor_id" = Option<String>, Query), ("action" = Option<String>, Query, description = "e.g. `admin_user_suspend`"),
        ("target_id" = Option<String>, Query), ("before" = Option<String>, Query), ("after" = Option<String>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = [AuditLogEntry], description = "the instance's entries (staff actions), newest first"), (status = 403, body = ErrorBody, description = "needs audit:read")))]
pub async fn audit_log(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<AuditLogEntry>>> {
    let (filter, limit) = super::moderation::audit_query(&q, None)?;
    require(&state, p.user_id, AdminOp::ReadAudit).await?;
    let entries = state
        .moderation
        .audit
        .list(&filter, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(entries.iter().map(AuditLogEntry::from).collect()))
}
