//! Reports: any member reports a message or a user to the community's
//! moderators; anyone reports a message, a user or a community to the
//! instance's staff. Moderators (members with MANAGE_MESSAGES,
//! KICK_MEMBERS, BAN_MEMBERS or MODERATE_MEMBERS) work their community's
//! queue; staff with `reports:read` / `reports:handle` the instance's.
//!
//! The rules of a report (who may file what, the evidence copied from the
//! message, open → actioned or dismissed once, notes) are
//! `hearth-moderation`'s `Report`; this module finds what is reported, checks
//! who is asking, and keeps the report (`reports`, version-checked so two
//! moderators acting at once never overwrite each other).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use hearth_chat::Permissions;
use hearth_moderation::staff::AdminOp;
use hearth_moderation::{
    AuditAction, AuditEntry, AuditEntryId, ModerationError, Report, ReportId, ReportScope,
    ReportState, ReportSubject, TargetKind,
};
use hearth_store::ReportRecord;
use hearth_types::{ChannelId, CommunityId, MessageId, UserId, format_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::wire::ErrorBody;
use crate::state::AppState;

/// What a community's moderator holds (any of these).
const MODERATOR: Permissions = Permissions::from_bits_truncate(
    Permissions::MANAGE_MESSAGES.bits()
        | Permissions::KICK_MEMBERS.bits()
        | Permissions::BAN_MEMBERS.bits()
        | Permissions::MODERATE_MEMBERS.bits(),
);

/// A new report.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// `community` (its moderators) or `instance` (the instance's staff).
    pub to: String,
    /// A message: with its `channel_id`.
    pub message_id: Option<String>,
    pub channel_id: Option<String>,
    /// A user (to a community: with `community_id`, where both are members).
    pub user_id: Option<String>,
    /// The community a user is reported to, or (to the instance) the
    /// community reported.
    pub community_id: Option<String>,
    /// Why (1-2,000 characters).
    pub reason: String,
}

/// A note on a report.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportNote {
    pub author_id: String,
    pub body: String,
    pub created_at: String,
}

/// A report.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportView {
    pub id: String,
    /// `community` or `instance`.
    pub to: String,
    pub community_id: Option<String>,
    pub reporter_id: String,
    /// `{kind: "message", message_id, channel_id, author_id, evidence}` (the
    /// content when it was reported), `{kind: "user", user_id}` or
    /// `{kind: "community", community_id}`.
    #[schema(value_type = Object)]
    pub subject: serde_json::Value,
    pub reason: String,
    /// `open`, `actioned` or `dismissed`.
    pub state: String,
    /// Only for those who handle it (the reporter sees none).
    pub notes: Vec<ReportNote>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<String>,
    pub created_at: String,
}

fn view(r: &Report, handler: bool) -> ReportView {
    let (to, community_id) = match r.scope {
        ReportScope::Community { community_id } => ("community", Some(community_id.to_string())),
        ReportScope::Instance => ("instance", None),
    };
    ReportView {
        id: r.id.to_string(),
        to: to.into(),
        community_id,
        reporter_id: r.reporter_id.to_string(),
        subject: serde_json::to_value(&r.subject).unwrap_or_default(),
        reason: r.reason.clone(),
        state: r.state.to_string(),
        notes: if handler {
            r.notes
                .iter()
                .map(|n| ReportNote {
                    author_id: n.author_id.to_string(),
                    body: n.body.clone(),
                    created_at: format_rfc3339(n.created_at),
                })
                .collect()
        } else {
            Vec::new()
        },
        resolved_by: r.resolved_by.map(|u| u.to_string()),
        resolved_at: r.resolved_at.map(format_rfc3339),
        created_at: format_rfc3339(r.created_at),
    }
}

fn record(r: &Report, version: i64) -> ApiResult<ReportRecord> {
    Ok(ReportRecord {
        id: r.id.0,
        community_id: match r.scope {
            ReportScope::Community { community_id } => Some(community_id),
            ReportScope::Instance => None,
        },
        reporter_id: r.reporter_id,
        state: r.state.to_string(),
        report: serde_json::to_string(r).map_err(ApiError::internal)?,
        version,
        created_at: r.created_at,
    })
}

fn invalid(e: ModerationError) -> ApiError {
    match e {
        ModerationError::InvalidReport(why) => ApiError::field("report", why),
        other => other.into(),
    }
}

fn opt_id<T: std::str::FromStr>(name: &str, v: &Option<String>) -> ApiResult<Option<T>> {
    v.as_deref().map(|s| path_id::<T>(name, s)).transpose()
}

/// What is reported, found as the reporter may see it (404 otherwise).
async fn subject(
    state: &AppState,
    who: UserId,
    req: &ReportRequest,
    to_community: bool,
) -> ApiResult<(ReportSubject, Option<CommunityId>)> {
    let message: Option<MessageId> = opt_id("message_id", &req.message_id)?;
    let channel: Option<ChannelId> = opt_id("channel_id", &req.channel_id)?;
    let user: Option<UserId> = opt_id("user_id", &req.user_id)?;
    let community: Option<CommunityId> = opt_id("community_id", &req.community_id)?;
    match (message, channel, user) {
        (Some(m), Some(ch), None) => {
            // Deleted, or in a channel the reporter cannot read: not found.
            let v = state.chat.message(ch, who, m).await?;
            if community.is_some_and(|c| Some(c) != v.community_id) {
                return Err(ApiError::field(
                    "community_id",
                    "not the message's community (leave it out)",
                ));
            }
            Ok((
                ReportSubject::Message {
                    message_id: m,
                    channel_id: ch,
                    author_id: v.record.author.id,
                    evidence: v.record.content.clone(),
                },
                v.community_id,
            ))
        }
        (None, None, Some(u)) => {
            if to_community {
                let c = community.ok_or_else(|| {
                    ApiError::field("community_id", "the community to report the user to")
                })?;
                // Both must be members: a stranger's community is not found.
                if state.chat.membership(c, who).await?.is_none()
                    || state.chat.membership(c, u).await?.is_none()
                {
                    return Err(ApiError::not_found());
                }
                Ok((ReportSubject::User { user_id: u }, Some(c)))
            } else {
                state.accounts.user(u).await?;
                Ok((ReportSubject::User { user_id: u }, None))
            }
        }
        (None, None, None) if !to_community => {
            let c = community.ok_or_else(|| {
                ApiError::field("message_id", "a message, a user or a community to report")
            })?;
            if state.chat.membership(c, who).await?.is_none() {
                return Err(ApiError::not_found());
            }
            Ok((ReportSubject::Community { community_id: c }, None))
        }
        _ => Err(ApiError::field(
            "message_id",
            "one of: message_id with channel_id, user_id, or (to the instance) community_id",
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/reports", tag = "moderation", security(("bearer" = [])), request_body = ReportRequest,
    responses((status = 201, body = ReportView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "what is reported does not exist or is not visible to you")))]
pub async fn file(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<ReportRequest>,
) -> ApiResult<(StatusCode, Json<ReportView>)> {
    let to_community = match req.to.as_str() {
        "community" => true,
        "instance" => false,
        _ => return Err(ApiError::field("to", "`community` or `instance`")),
    };
    let (subject, community) = subject(&state, p.user_id, &req, to_community).await?;
    let scope = if to_community {
        let c = community
            .ok_or_else(|| ApiError::field("to", "a DM's messages are reported to the instance"))?;
        ReportScope::Community { community_id: c }
    } else {
        ReportScope::Instance
    };
    let report = Report::file(
        ReportId(state.publisher.next_id()),
        scope,
        p.user_id,
        subject,
        &req.reason,
        now_ms(),
    )
    .map_err(invalid)?;
    state.store.insert_report(&record(&report, 1)?).await?;
    Ok((StatusCode::CREATED, Json(view(&report, false))))
}

/// Whether `user` handles reports of `scope` (`handle`: may close them).
async fn handles(
    state: &AppState,
    user: UserId,
    scope: ReportScope,
    handle: bool,
) -> ApiResult<bool> {
    Ok(match scope {
        ReportScope::Community { community_id } => {
            match state.chat.community_permissions(community_id, user).await {
                Ok(p) => p.intersects(MODERATOR),
                Err(hearth_chat::ChatError::NotFound) => false,
                Err(e) => return Err(e.into()),
            }
        }
        ReportScope::Instance => {
            let op = if handle {
                AdminOp::ActionReport
            } else {
                AdminOp::ListReports
            };
            crate::admin::require(state, user, op).await.is_ok()
        }
    })
}

fn query_limit(q: &HashMap<String, String>) -> ApiResult<u32> {
    match q.get("limit") {
        None => Ok(50),
        Some(s) => match s.parse::<u32>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err(ApiError::field("limit", "an integer from 1 to 100")),
        },
    }
}

async fn queue(
    state: &AppState,
    community: Option<CommunityId>,
    q: &HashMap<String, String>,
) -> ApiResult<Vec<ReportView>> {
    let limit = query_limit(q)?;
    let st = match q.get("state").map(String::as_str) {
        None => None,
        Some(s @ ("open" | "actioned" | "dismissed")) => Some(s),
        Some(_) => {
            return Err(ApiError::field(
                "state",
                "`open`, `actioned` or `dismissed`",
            ));
        }
    };
    let before = match q.get("before") {
        Some(b) => path_id::<UserId>("before", b)?.0,
        None => i64::MAX,
    };
    let rows = state.store.reports(community, st, before, limit).await?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str::<Report>(&r.report).ok())
        .map(|r| view(&r, true))
        .collect())
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/reports", tag = "moderation", security(("bearer" = [])),
    params(("id" = String, Path), ("state" = Option<String>, Query, description = "`open`, `actioned` or `dismissed`"),
        ("before" = Option<String>, Query, description = "reports older than this id (the next page)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = [ReportView], description = "newest first"), (status = 403, body = ErrorBody, description = "not a moderator"), (status = 404, body = ErrorBody)))]
pub async fn community_queue(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<ReportView>>> {
    let c: CommunityId = path_id("id", &id)?;
    let perms = state.chat.community_permissions(c, p.user_id).await?;
    if !perms.intersects(MODERATOR) {
        return Err(hearth_chat::ChatError::Forbidden(Permissions::MODERATE_MEMBERS).into());
    }
    Ok(Json(queue(&state, Some(c), &q).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/reports", tag = "admin", security(("bearer" = [])),
    params(("state" = Option<String>, Query), ("before" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = [ReportView], description = "the instance's queue, newest first"), (status = 403, body = ErrorBody, description = "needs reports:read")))]
pub async fn instance_queue(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<ReportView>>> {
    crate::admin::require(&state, p.user_id, AdminOp::ListReports).await?;
    let out = queue(&state, None, &q).await?;
    crate::admin::audit(
        &state,
        Some(p.user_id),
        AdminOp::ListReports,
        (TargetKind::Instance, None),
        None,
        json!({ "results": out.len() }),
    )
    .await;
    Ok(Json(out))
}

async fn load(state: &AppState, id: &str) -> ApiResult<(Report, i64)> {
    let id: ReportId = path_id("id", id)?;
    let row = state
        .store
        .report(id.0)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let r: Report = serde_json::from_str(&row.report).map_err(ApiError::internal)?;
    Ok((r, row.version))
}

#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "moderation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ReportView, description = "to its reporter (without notes) and to those who handle it"), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ReportView>> {
    let (r, _) = load(&state, &id).await?;
    if handles(&state, p.user_id, r.scope, false).await? {
        return Ok(Json(view(&r, true)));
    }
    if r.reporter_id == p.user_id {
        return Ok(Json(view(&r, false)));
    }
    Err(ApiError::not_found())
}

/// Handling a report.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportUpdate {
    /// `actioned` or `dismissed` (from `open`, once).
    pub state: Option<String>,
    /// A note for the other handlers (1-2,000 characters).
    pub note: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/reports/{id}", tag = "moderation", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ReportUpdate,
    responses((status = 200, body = ReportView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such report, or you do not handle it"),
        (status = 409, body = ErrorBody, description = "already closed (or changed by someone else at the same moment: read it again)")))]
pub async fn update(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<ReportUpdate>,
) -> ApiResult<Json<ReportView>> {
    let to = match req.state.as_deref() {
        None => None,
        Some("actioned") => Some(ReportState::Actioned),
        Some("dismissed") => Some(ReportState::Dismissed),
        Some(_) => return Err(ApiError::field("state", "`actioned` or `dismissed`")),
    };
    if to.is_none() && req.note.is_none() {
        return Err(ApiError::field("state", "a new state, a note, or both"));
    }
    let (mut r, version) = load(&state, &id).await?;
    if !handles(&state, p.user_id, r.scope, true).await? {
        // Staff who may read the queue but not act learn why; others
        // learn nothing of the report.
        if handles(&state, p.user_id, r.scope, false).await? {
            crate::admin::require(&state, p.user_id, AdminOp::ActionReport).await?;
        }
        return Err(ApiError::not_found());
    }
    apply(&state, &mut r, version, p.user_id, to, req.note.as_deref()).await?;
    Ok(Json(view(&r, true)))
}

/// Adds a handler's note and/or closes the report (the caller checked that
/// `by` may), written only over the version read, and audits a closing.
async fn apply(
    state: &AppState,
    r: &mut Report,
    version: i64,
    by: UserId,
    to: Option<ReportState>,
    note: Option<&str>,
) -> ApiResult<()> {
    let now = now_ms();
    if let Some(note) = note {
        r.add_note(by, note, now).map_err(invalid)?;
    }
    match to {
        Some(ReportState::Actioned) => r.action(by, now)?,
        Some(ReportState::Dismissed) => r.dismiss(by, now)?,
        _ => {}
    }
    // Written only over the version read: a moderator acting at the same
    // moment wins, and this one is told to look again.
    if !state
        .store
        .update_report(&record(r, version + 1)?, version)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the report changed meanwhile; read it again",
        ));
    }
    if let Some(to) = to {
        audit_closed(state, r, by, to).await;
    }
    Ok(())
}

/// `hearth admin report`: the operator closes (or annotates) an instance
/// report in the name of the account `by`. Community reports stay with
/// their community's moderators. The answer says what it did, or why not.
pub async fn handle_from_shell(
    state: &AppState,
    id: &str,
    by: UserId,
    to: Option<&str>,
    note: Option<&str>,
) -> Result<String, String> {
    let to = match to {
        None => None,
        Some("actioned") => Some(ReportState::Actioned),
        Some("dismissed") => Some(ReportState::Dismissed),
        Some(other) => {
            return Err(format!(
                "--state must be actioned or dismissed, not {other:?}"
            ));
        }
    };
    if to.is_none() && note.is_none() {
        return Err("give --state, --note or both".into());
    }
    let (mut r, version) = load(state, id).await.map_err(|e| e.message)?;
    if r.scope != ReportScope::Instance {
        return Err(format!(
            "report {id} is to a community's moderators, not to the instance's staff"
        ));
    }
    apply(state, &mut r, version, by, to, note)
        .await
        .map_err(|e| e.message)?;
    Ok(format!("report {id} is {}", r.state))
}

async fn audit_closed(state: &AppState, r: &Report, by: UserId, to: ReportState) {
    let target = (TargetKind::Report, Some(r.id.0));
    let change = json!({ "state": to.to_string() });
    match r.scope {
        ReportScope::Instance => {
            let op = if to == ReportState::Actioned {
                AdminOp::ActionReport
            } else {
                AdminOp::DismissReport
            };
            crate::admin::audit(state, Some(by), op, target, None, change).await;
        }
        ReportScope::Community { community_id } => {
            let entry = AuditEntry {
                id: AuditEntryId(state.publisher.next_id()),
                community_id: Some(community_id),
                actor_id: Some(by),
                action: if to == ReportState::Actioned {
                    AuditAction::ReportActioned
                } else {
                    AuditAction::ReportDismissed
                },
                target_kind: target.0,
                target_id: target.1,
                reason: None,
                changes: hearth_moderation::audit::diff(&json!(null), &change),
                created_at: now_ms(),
            };
            if let Err(e) = state.moderation.audit.record(&entry).await {
                tracing::error!(error = %e, "could not record a report's handling in the audit log");
            }
        }
    }
}
