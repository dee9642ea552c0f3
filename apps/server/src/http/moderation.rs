//! Moderation endpoints: the audit log, automod rules and their dry run,
//! bulk deletion; and the `X-Audit-Log-Reason` header, which becomes the
//! reason of every audited change a request makes.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use hearth_chat::{ChatError, Permissions};
use hearth_moderation::{AuditAction, AuditEntryId, AuditFilter, RuleSpec, Verdict};
use hearth_types::{ChannelId, CommunityId, MessageId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::wire::ErrorBody;
use crate::events::{EventKind, Subject};
use crate::state::AppState;

/// The request header carrying an audit reason (URL-encoded UTF-8).
pub const REASON_HEADER: &str = "x-audit-log-reason";

/// Decodes `%XX` escapes (and nothing else: `+` stays a plus).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs the request with its `X-Audit-Log-Reason` (decoded, at most 512
/// characters kept) as the reason of the changes it makes.
pub async fn audit_reason(req: Request, next: Next) -> Response {
    let reason = req
        .headers()
        .get(REASON_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(percent_decode);
    match reason {
        Some(r) => hearth_chat::audit::with_reason(Some(r), next.run(req)).await,
        None => next.run(req).await,
    }
}

/// One changed field of an audit entry.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditChange {
    pub key: String,
    /// Any JSON value; absent or `null`: the field did not exist before.
    pub before: Option<Value>,
    /// Any JSON value; absent or `null`: the field does not exist after.
    pub after: Option<Value>,
}

/// One audit-log entry.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditLogEntry {
    pub id: String,
    pub actor_id: Option<String>,
    /// A stable name: `role_create`, `member_ban`, `channel_update`, …
    pub action: String,
    /// `user`, `community`, `channel`, `role`, `message`, `invite`, …
    pub target_kind: String,
    pub target_id: Option<String>,
    pub reason: Option<String>,
    pub changes: Vec<AuditChange>,
    pub created_at: String,
}

impl From<&hearth_moderation::AuditEntry> for AuditLogEntry {
    fn from(e: &hearth_moderation::AuditEntry) -> Self {
        AuditLogEntry {
            id: e.id.to_string(),
            actor_id: e.actor_id.map(|a| a.to_string()),
            action: e.action.as_str().to_string(),
            target_kind: e.target_kind.as_str().to_string(),
            target_id: e.target_id.map(|t| t.to_string()),
            reason: e.reason.clone(),
            changes: e
                .changes
                .iter()
                .map(|c| AuditChange {
                    key: c.key.clone(),
                    before: c.before.clone(),
                    after: c.after.clone(),
                })
                .collect(),
            created_at: hearth_types::format_rfc3339(e.created_at),
        }
    }
}

/// The caller's community permissions, refusing without `need`.
async fn require(
    state: &AppState,
    c: CommunityId,
    user: UserId,
    need: Permissions,
) -> ApiResult<()> {
    let p = state.chat.community_permissions(c, user).await?;
    if !p.contains(need) {
        return Err(ChatError::Forbidden(need - p).into());
    }
    Ok(())
}

fn query_id<T: std::str::FromStr>(q: &HashMap<String, String>, k: &str) -> ApiResult<Option<T>> {
    q.get(k).map(|v| path_id::<T>(k, v)).transpose()
}

/// An audit-log page's filter and size from its query (a community's, or
/// the instance's with `None`).
pub(crate) fn audit_query(
    q: &HashMap<String, String>,
    community: Option<CommunityId>,
) -> ApiResult<(AuditFilter, usize)> {
    let limit = match q.get("limit") {
        None => 50,
        Some(s) => match s.parse::<usize>() {
            Ok(n @ 1..=100) => n,
            _ => return Err(ApiError::field("limit", "an integer from 1 to 100")),
        },
    };
    let action = match q.get("action") {
        None => None,
        Some(a) => Some(
            a.parse::<AuditAction>()
                .map_err(|_| ApiError::field("action", format!("unknown action {a:?}")))?,
        ),
    };
    let filter = AuditFilter {
        community_id: community,
        actor_id: query_id::<UserId>(q, "actor_id")?,
        action,
        target_id: query_id::<UserId>(q, "target_id")?.map(|t| t.0),
        before: query_id::<AuditEntryId>(q, "before")?,
        after: query_id::<AuditEntryId>(q, "after")?,
    };
    Ok((filter, limit))
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/audit-log", tag = "moderation", security(("bearer" = [])),
    params(("id" = String, Path),
        ("actor_id" = Option<String>, Query, description = "only this actor's entries"),
        ("action" = Option<String>, Query, description = "only this action (e.g. `member_ban`)"),
        ("target_id" = Option<String>, Query, description = "only entries about this target"),
        ("before" = Option<String>, Query, description = "entries older than this entry id (the next page)"),
        ("after" = Option<String>, Query, description = "entries newer than this entry id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1-100, default 50")),
    responses((status = 200, body = [AuditLogEntry], description = "newest first"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<AuditLogEntry>>> {
    let c: CommunityId = path_id("id", &id)?;
    let (filter, limit) = audit_query(&q, Some(c))?;
    require(&state, c, p.user_id, Permissions::VIEW_AUDIT_LOG).await?;
    let entries = state
        .moderation
        .audit
        .list(&filter, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(entries.iter().map(AuditLogEntry::from).collect()))
}

/// A community's automod rules.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AutomodRules {
    /// Rule objects: `{id, name, enabled, trigger: {type, …}, actions: [{type, …}],
    /// exempt_channels, exempt_roles}` (see docs/api.md). On PUT a rule
    /// without `id` gets one.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Value>,
}

fn rules_json(specs: &[RuleSpec]) -> Vec<Value> {
    specs
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .collect()
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/automod/rules", tag = "moderation", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = AutomodRules), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn automod_rules(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<AutomodRules>> {
    let c: CommunityId = path_id("id", &id)?;
    require(&state, c, p.user_id, Permissions::MANAGE_COMMUNITY).await?;
    let specs = state.moderation.automod.specs(c).await?;
    Ok(Json(AutomodRules {
        rules: rules_json(&specs),
    }))
}

#[utoipa::path(put, path = "/api/v1/communities/{id}/automod/rules", tag = "moderation", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = AutomodRules,
    responses((status = 200, body = AutomodRules), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_automod_rules(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<AutomodRules>,
) -> ApiResult<Json<AutomodRules>> {
    let c: CommunityId = path_id("id", &id)?;
    require(&state, c, p.user_id, Permissions::MANAGE_COMMUNITY).await?;
    if req.rules.len() > hearth_moderation::automod::MAX_RULES {
        return Err(hearth_moderation::ModerationError::TooManyRules {
            count: req.rules.len(),
            max: hearth_moderation::automod::MAX_RULES,
        }
        .into());
    }
    // A rule without an id gets the next one after every id given.
    let mut next_id = req
        .rules
        .iter()
        .filter_map(|r| r["id"].as_str()?.parse::<i64>().ok())
        .max()
        .unwrap_or(0);
    let mut specs = Vec::with_capacity(req.rules.len());
    for (i, mut r) in req.rules.into_iter().enumerate() {
        if let Some(o) = r.as_object_mut()
            && o.get("id").is_none_or(Value::is_null)
        {
            next_id += 1;
            o.insert("id".into(), json!(next_id.to_string()));
        }
        let spec: RuleSpec = serde_json::from_value(r)
            .map_err(|e| ApiError::field(&format!("rules[{i}]"), e.to_string()))?;
        specs.push(spec);
    }
    let before = state.moderation.automod.specs(c).await?;
    state
        .moderation
        .automod
        .replace(c, &specs)
        .await
        .map_err(|e| match e {
            crate::moderation::ReplaceError::Invalid(e) => ApiError::from(e),
            crate::moderation::ReplaceError::Store(e) => ApiError::from(e),
            crate::moderation::ReplaceError::Internal(e) => ApiError::internal(e),
        })?;
    // Other nodes drop their compiled copy.
    state.publisher.publish_event(
        EventKind::AutomodRulesChanged,
        Subject::Automod(c),
        json!({ "community_id": c.to_string() }),
    );
    audit_rule_changes(&state, c, p.user_id, &before, &specs);
    Ok(Json(AutomodRules {
        rules: rules_json(&specs),
    }))
}

/// One audit entry per rule created, changed or deleted.
fn audit_rule_changes(
    state: &AppState,
    c: CommunityId,
    actor: UserId,
    before: &[RuleSpec],
    after: &[RuleSpec],
) {
    let reason = hearth_chat::audit::current_reason();
    let find = |list: &[RuleSpec], id| list.iter().find(|r| r.id == id).cloned();
    let mut ids: Vec<_> = before.iter().chain(after).map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        let (b, a) = (find(before, id), find(after, id));
        let action = match (&b, &a) {
            (None, Some(_)) => AuditAction::AutomodRuleCreate,
            (Some(_), None) => AuditAction::AutomodRuleDelete,
            (Some(x), Some(y)) if x != y => AuditAction::AutomodRuleUpdate,
            _ => continue,
        };
        let v = |r: Option<RuleSpec>| r.map(|r| serde_json::to_value(r).unwrap_or(Value::Null));
        state.publisher.publish_event(
            EventKind::AuditLogEntry,
            Subject::Audit(c),
            json!({
                "community_id": c.to_string(),
                "actor_id": actor.to_string(),
                "action": action.as_str(),
                "target_kind": "automod_rule",
                "target_id": id.to_string(),
                "reason": reason,
                "before": v(b),
                "after": v(a),
                "at": hearth_types::now_ms(),
            }),
        );
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomodTestRequest {
    pub content: String,
    /// The channel to test it in (exempt channels); none: no channel.
    pub channel_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RuleRefWire {
    pub rule_id: String,
    pub rule_name: String,
}

/// What the rules would do with a message.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AutomodVerdict {
    pub blocked: bool,
    pub blocked_by: Option<RuleRefWire>,
    /// Rules that would post a notice: `{rule_id, rule_name, channel_id}`.
    #[schema(value_type = Vec<Object>)]
    pub flags: Vec<Value>,
    /// Rules that would time the author out: `{rule_id, rule_name, secs}`.
    #[schema(value_type = Vec<Object>)]
    pub timeouts: Vec<Value>,
    /// Rules that would delete the author's recent messages: `{rule_id, rule_name, secs}`.
    #[schema(value_type = Vec<Object>)]
    pub deletes: Vec<Value>,
}

fn rule_ref(r: &hearth_moderation::RuleRef) -> RuleRefWire {
    RuleRefWire {
        rule_id: r.id.to_string(),
        rule_name: r.name.to_string(),
    }
}

impl From<&Verdict> for AutomodVerdict {
    fn from(v: &Verdict) -> Self {
        let with = |r: &hearth_moderation::RuleRef, k: &str, x: Value| json!({ "rule_id": r.id.to_string(), "rule_name": r.name.as_ref(), k: x });
        AutomodVerdict {
            blocked: v.blocked_by.is_some(),
            blocked_by: v.blocked_by.as_ref().map(rule_ref),
            flags: v
                .flags
                .iter()
                .map(|f| with(&f.rule, "channel_id", json!(f.channel_id.to_string())))
                .collect(),
            timeouts: v
                .timeouts
                .iter()
                .map(|t| with(&t.rule, "secs", json!(t.secs)))
                .collect(),
            deletes: v
                .deletes
                .iter()
                .map(|d| with(&d.rule, "secs", json!(d.secs)))
                .collect(),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/communities/{id}/automod/test", tag = "moderation", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = AutomodTestRequest,
    responses((status = 200, body = AutomodVerdict, description = "what the rules would do with this message from the caller; nothing is sent"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn automod_test(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<AutomodTestRequest>,
) -> ApiResult<Json<AutomodVerdict>> {
    let c: CommunityId = path_id("id", &id)?;
    let channel: ChannelId = match &req.channel_id {
        Some(ch) => path_id("channel_id", ch)?,
        None => ChannelId(0),
    };
    if req.content.chars().count() > 4000 {
        return Err(ApiError::field("content", "at most 4000 characters"));
    }
    require(&state, c, p.user_id, Permissions::MANAGE_COMMUNITY).await?;
    let author = state
        .store
        .user(p.user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let parsed = hearth_chat::parse_mentions(&req.content);
    let mentions = hearth_store::Mentions {
        users: parsed.users,
        roles: parsed.roles,
        everyone: parsed.everyone,
    };
    let msg = hearth_chat::Outgoing {
        community_id: c,
        channel_id: channel,
        author: &author,
        permissions: Permissions::EMPTY,
        content: &req.content,
        mentions: &mentions,
    };
    let set = state.moderation.automod.rules(c).await?;
    let verdict = state.moderation.automod.verdict(&set, &msg, false).await?;
    Ok(Json((&verdict).into()))
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteRequest {
    /// 2 to 100 message ids of this channel.
    pub message_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/channels/{id}/messages/bulk-delete", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = BulkDeleteRequest,
    responses((status = 204, description = "deleted (ids not in the channel are skipped)"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn bulk_delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<BulkDeleteRequest>,
) -> ApiResult<StatusCode> {
    let ch: ChannelId = path_id("id", &id)?;
    if !(2..=100).contains(&req.message_ids.len()) {
        return Err(ApiError::field("message_ids", "2 to 100 message ids"));
    }
    let ids = req
        .message_ids
        .iter()
        .map(|m| path_id::<MessageId>("message_ids", m))
        .collect::<ApiResult<Vec<_>>>()?;
    state.chat.bulk_delete_messages(ch, p.user_id, &ids).await?;
    Ok(StatusCode::NO_CONTENT)
}
