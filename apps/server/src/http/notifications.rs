//! The notifications API (issue #13): the inbox, settings per account,
//! community and channel, the VAPID key and browsers' push subscriptions.
//! Deciding who is notified happens behind the log (`crate::notify`);
//! here the user reads and tunes what they get. Every listing shows only
//! what the caller may see now: a notification of a channel they lost
//! access to, or a message gone, is left out.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use hearth_notify::Level;
use hearth_notify::webpush::SubscriptionKeys;
use hearth_store::{
    ACCOUNT_SCOPE, NotificationRecord, NotifySettingRecord, PushSubscriptionRecord,
};
use hearth_types::{
    ChannelId, CommunityId, MessageId, UserId, format_rfc3339, now_ms, parse_rfc3339,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, OptionalBody, path_id};
use super::wire::{ErrorBody, Message};
use crate::events::{EventKind, Subject};
use crate::notify::{MAX_SUBSCRIPTIONS, Notify};
use crate::state::AppState;

/// The longest mute (a year); longer is 400.
const MAX_MUTE_MS: i64 = 366 * 86_400_000;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Notification {
    pub id: String,
    /// `mention`, `role_mention`, `reply`, `everyone`, `dm` or `message`.
    pub kind: String,
    pub channel_id: String,
    pub community_id: Option<String>,
    /// The message in the contract's shape.
    pub message: Option<Message>,
    pub created_at: String,
    pub read: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// Newest first.
    pub notifications: Vec<Notification>,
    /// Unread notifications the caller may see, in all.
    pub unread_count: i64,
    /// `before` for the next page; `null` on the last.
    pub next_before: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(("before" = Option<String>, Query, description = "a notification id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1-100, default 25"),
        ("unread" = Option<bool>, Query, description = "only unread ones")),
    responses((status = 200, body = NotificationPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<NotificationPage>> {
    let before = match q.get("before") {
        Some(b) => Some(path_id::<i64>("before", b)?),
        None => None,
    };
    let limit = match q.get("limit") {
        None => 25,
        Some(l) => match l.parse::<u32>() {
            Ok(n @ 1..=100) => n,
            _ => return Err(ApiError::field("limit", "an integer from 1 to 100")),
        },
    };
    let unread = match q.get("unread").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::field("unread", "true or false")),
    };
    // Hidden ones are skipped, so read a little more than a page at a time.
    let mut out = Vec::new();
    let mut cursor = before;
    let mut exhausted = false;
    while out.len() < limit as usize {
        let batch = state
            .store
            .notifications(p.user_id, cursor, limit + 1, unread)
            .await?;
        exhausted = batch.len() <= limit as usize;
        let Some(last) = batch.last() else {
            exhausted = true;
            break;
        };
        cursor = Some(last.id);
        for n in batch {
            if out.len() == limit as usize {
                exhausted = false;
                break;
            }
            if let Some(v) = view(&state, p.user_id, &n).await {
                out.push(v);
            }
        }
        if exhausted {
            break;
        }
    }
    let next_before = if exhausted {
        None
    } else {
        out.last().map(|n| n.id.clone())
    };
    Ok(Json(NotificationPage {
        notifications: out,
        unread_count: crate::notify::unread_count(&state, p.user_id).await?,
        next_before,
    }))
}

/// The notification with its message, if the user may still read it.
async fn view(state: &AppState, user: UserId, n: &NotificationRecord) -> Option<Notification> {
    let message = state
        .chat
        .message(n.channel_id, user, n.message_id)
        .await
        .ok()?;
    Some(Notification {
        id: n.id.to_string(),
        kind: n.kind.clone(),
        channel_id: n.channel_id.to_string(),
        community_id: n.community_id.map(|c| c.to_string()),
        message: Some(Message::from(&message)),
        created_at: format_rfc3339(n.created_at),
        read: n.read_at.is_some(),
    })
}

/// NOTIFICATION_READ to the user's sessions (other tabs clear their badge).
pub async fn announce_read(
    state: &AppState,
    user: UserId,
    ids: &[i64],
    channel: Option<ChannelId>,
    all: bool,
) -> ApiResult<()> {
    let unread = crate::notify::unread_count(state, user).await?;
    state.publisher.publish_event(
        EventKind::NotificationRead,
        Subject::User(user),
        json!({
            "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "channel_id": channel.map(|c| c.to_string()),
            "all": all,
            "unread_count": unread,
        }),
    );
    Ok(())
}

#[utoipa::path(put, path = "/api/v1/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn read_one(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = path_id("id", &id)?;
    let n = state
        .store
        .read_notification(p.user_id, id, now_ms())
        .await?
        .ok_or_else(ApiError::not_found)?;
    announce_read(&state, p.user_id, &[n.id], None, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadAllRequest {
    /// Only this channel's notifications.
    pub channel_id: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/notifications/read", tag = "notifications", security(("bearer" = [])),
    request_body = Option<ReadAllRequest>, responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn read_all(
    State(state): State<AppState>,
    Auth(p): Auth,
    OptionalBody(req): OptionalBody<ReadAllRequest>,
) -> ApiResult<StatusCode> {
    let channel: Option<ChannelId> = req
        .channel_id
        .as_deref()
        .map(|c| path_id("channel_id", c))
        .transpose()?;
    let ids = state
        .store
        .read_notifications(p.user_id, channel, None, now_ms())
        .await?;
    announce_read(&state, p.user_id, &ids, channel, channel.is_none()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reading a channel (`PUT /channels/{id}/read`) reads its notifications up
/// to that message.
pub async fn channel_read(
    state: &AppState,
    user: UserId,
    channel: ChannelId,
    up_to: MessageId,
) -> ApiResult<()> {
    let ids = state
        .store
        .read_notifications(user, Some(channel), Some(up_to), now_ms())
        .await?;
    if !ids.is_empty() {
        announce_read(state, user, &ids, Some(channel), false).await?;
    }
    Ok(())
}

// ---- settings ----

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CommunityNotificationSetting {
    pub community_id: String,
    /// `all`, `mentions`, `nothing`, or `null` (the account's).
    pub level: Option<String>,
    pub muted_until: Option<String>,
    pub suppress_everyone: Option<bool>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChannelNotificationSetting {
    pub channel_id: String,
    pub level: Option<String>,
    pub muted_until: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NotificationSettings {
    /// For community channels: `all`, `mentions` (default) or `nothing`.
    pub level: String,
    pub suppress_everyone: bool,
    /// Whether pushes show the message's text.
    pub push_previews: bool,
    /// Whether unread mentions are mailed after a while away.
    pub email_digest: bool,
    pub communities: Vec<CommunityNotificationSetting>,
    pub channels: Vec<ChannelNotificationSetting>,
}

async fn settings_of(state: &AppState, user: UserId) -> ApiResult<NotificationSettings> {
    let rows = state.store.notify_settings(user).await?;
    let account = Notify::account_settings(rows.iter().find(|r| r.scope_id == ACCOUNT_SCOPE));
    let mut out = NotificationSettings {
        level: account.level.as_str().into(),
        suppress_everyone: account.suppress_everyone,
        push_previews: account.push_previews,
        email_digest: account.email_digest,
        communities: Vec::new(),
        channels: Vec::new(),
    };
    for r in &rows {
        match r.scope.as_str() {
            "community" => out.communities.push(CommunityNotificationSetting {
                community_id: r.scope_id.to_string(),
                level: r.level.clone(),
                muted_until: r.muted_until.map(format_rfc3339),
                suppress_everyone: r.suppress_everyone,
            }),
            "channel" => out.channels.push(ChannelNotificationSetting {
                channel_id: r.scope_id.to_string(),
                level: r.level.clone(),
                muted_until: r.muted_until.map(format_rfc3339),
            }),
            _ => {}
        }
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/users/@me/notification-settings", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = NotificationSettings)))]
pub async fn get_settings(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<NotificationSettings>> {
    Ok(Json(settings_of(&state, p.user_id).await?))
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountSettingsRequest {
    pub level: Option<String>,
    pub suppress_everyone: Option<bool>,
    pub push_previews: Option<bool>,
    pub email_digest: Option<bool>,
}

fn level(field: &str, v: Option<&str>) -> ApiResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(s) => Level::parse(s)
            .map(|l| Some(l.as_str().to_string()))
            .ok_or_else(|| ApiError::field(field, "\"all\", \"mentions\" or \"nothing\"")),
    }
}

#[utoipa::path(patch, path = "/api/v1/users/@me/notification-settings", tag = "notifications", security(("bearer" = [])),
    request_body = AccountSettingsRequest, responses((status = 200, body = NotificationSettings), (status = 400, body = ErrorBody)))]
pub async fn patch_settings(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<AccountSettingsRequest>,
) -> ApiResult<Json<NotificationSettings>> {
    let new_level = level("level", req.level.as_deref())?;
    let rows = state.store.notify_settings(p.user_id).await?;
    let mut row = rows
        .into_iter()
        .find(|r| r.scope_id == ACCOUNT_SCOPE)
        .unwrap_or_else(|| NotifySettingRecord {
            user_id: p.user_id,
            scope_id: ACCOUNT_SCOPE,
            scope: "account".into(),
            ..NotifySettingRecord::default()
        });
    if new_level.is_some() {
        row.level = new_level;
    }
    if req.suppress_everyone.is_some() {
        row.suppress_everyone = req.suppress_everyone;
    }
    if req.push_previews.is_some() {
        row.push_previews = req.push_previews;
    }
    if req.email_digest.is_some() {
        row.email_digest = req.email_digest;
    }
    state.store.put_notify_setting(&row).await?;
    Ok(Json(settings_of(&state, p.user_id).await?))
}

/// A scope's settings; an absent or `null` field inherits.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeSettingsRequest {
    pub level: Option<String>,
    /// RFC 3339, at most a year ahead; a past time means not muted.
    pub muted_until: Option<String>,
    /// Communities only.
    pub suppress_everyone: Option<bool>,
}

fn mute(v: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(s) = v else { return Ok(None) };
    let t = parse_rfc3339(s).ok_or_else(|| ApiError::field("muted_until", "an RFC 3339 time"))?;
    if t - now_ms() > MAX_MUTE_MS {
        return Err(ApiError::field("muted_until", "at most a year ahead"));
    }
    Ok(Some(t))
}

#[utoipa::path(put, path = "/api/v1/users/@me/notification-settings/communities/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ScopeSettingsRequest,
    responses((status = 200, body = CommunityNotificationSetting), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_community(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<ScopeSettingsRequest>,
) -> ApiResult<Json<CommunityNotificationSetting>> {
    let c: CommunityId = path_id("id", &id)?;
    let row = NotifySettingRecord {
        user_id: p.user_id,
        scope_id: c.0,
        scope: "community".into(),
        level: level("level", req.level.as_deref())?,
        muted_until: mute(req.muted_until.as_deref())?,
        suppress_everyone: req.suppress_everyone,
        push_previews: None,
        email_digest: None,
    };
    if state.chat.membership(c, p.user_id).await?.is_none() {
        return Err(ApiError::not_found());
    }
    state.store.put_notify_setting(&row).await?;
    Ok(Json(CommunityNotificationSetting {
        community_id: c.to_string(),
        level: row.level,
        muted_until: row.muted_until.map(format_rfc3339),
        suppress_everyone: row.suppress_everyone,
    }))
}

#[utoipa::path(delete, path = "/api/v1/users/@me/notification-settings/communities/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_community(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let c: CommunityId = path_id("id", &id)?;
    state.store.delete_notify_setting(p.user_id, c.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/users/@me/notification-settings/channels/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ScopeSettingsRequest,
    responses((status = 200, body = ChannelNotificationSetting), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_channel(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(req): Body<ScopeSettingsRequest>,
) -> ApiResult<Json<ChannelNotificationSetting>> {
    let ch: ChannelId = path_id("id", &id)?;
    if req.suppress_everyone.is_some() {
        return Err(ApiError::field(
            "suppress_everyone",
            "set on the community, not a channel",
        ));
    }
    let row = NotifySettingRecord {
        user_id: p.user_id,
        scope_id: ch.0,
        scope: "channel".into(),
        level: level("level", req.level.as_deref())?,
        muted_until: mute(req.muted_until.as_deref())?,
        ..NotifySettingRecord::default()
    };
    // 404 unless the caller may see it (a DM: is in it).
    state.chat.visible_channel(ch, p.user_id).await?;
    state.store.put_notify_setting(&row).await?;
    Ok(Json(ChannelNotificationSetting {
        channel_id: ch.to_string(),
        level: row.level,
        muted_until: row.muted_until.map(format_rfc3339),
    }))
}

#[utoipa::path(delete, path = "/api/v1/users/@me/notification-settings/channels/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_channel(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let ch: ChannelId = path_id("id", &id)?;
    state.store.delete_notify_setting(p.user_id, ch.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- Web Push ----

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VapidPublicKey {
    /// The uncompressed P-256 point, base64url: `applicationServerKey`.
    pub public_key: String,
}

#[utoipa::path(get, path = "/api/v1/push/vapid-public-key", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = VapidPublicKey)))]
pub async fn vapid_key(State(state): State<AppState>, Auth(_p): Auth) -> Json<VapidPublicKey> {
    Json(VapidPublicKey {
        public_key: state.notify.vapid.public_key(),
    })
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// `PushSubscription.toJSON()`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSubscriptionRequest {
    pub endpoint: String,
    pub keys: PushKeys,
    /// Sent by browsers; not used.
    #[serde(rename = "expirationTime")]
    #[schema(value_type = Option<i64>)]
    pub expiration_time: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PushSubscriptionView {
    pub id: String,
    pub endpoint: String,
    pub created_at: String,
}

impl From<&PushSubscriptionRecord> for PushSubscriptionView {
    fn from(s: &PushSubscriptionRecord) -> Self {
        PushSubscriptionView {
            id: s.id.to_string(),
            endpoint: s.endpoint.clone(),
            created_at: format_rfc3339(s.created_at),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/users/@me/push-subscriptions", tag = "notifications", security(("bearer" = [])),
    request_body = PushSubscriptionRequest,
    responses((status = 201, body = PushSubscriptionView), (status = 200, body = PushSubscriptionView, description = "already registered"), (status = 400, body = ErrorBody)))]
pub async fn subscribe(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<PushSubscriptionRequest>,
) -> ApiResult<(StatusCode, Json<PushSubscriptionView>)> {
    if req.endpoint.len() > 2048 {
        return Err(ApiError::field("endpoint", "at most 2048 characters"));
    }
    crate::netguard::check_url(&req.endpoint, state.notify.cfg.push_allow_private)
        .map_err(|e| ApiError::field("endpoint", e.to_string()))?;
    SubscriptionKeys::parse(&req.keys.p256dh, &req.keys.auth).map_err(|e| match e {
        hearth_notify::webpush::PushError::BadKey(field, why) => ApiError::field(field, why),
        other => ApiError::field("keys", other.to_string()),
    })?;
    let rec = PushSubscriptionRecord {
        id: state.publisher.next_id(),
        user_id: p.user_id,
        endpoint: req.endpoint,
        p256dh: req.keys.p256dh.trim_end_matches('=').to_string(),
        auth: req.keys.auth.trim_end_matches('=').to_string(),
        created_at: now_ms(),
    };
    let (row, created) = state
        .store
        .put_push_subscription(&rec, MAX_SUBSCRIPTIONS)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json((&row).into())))
}

#[utoipa::path(get, path = "/api/v1/users/@me/push-subscriptions", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = [PushSubscriptionView])))]
pub async fn subscriptions(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<Vec<PushSubscriptionView>>> {
    let subs = state.store.push_subscriptions(p.user_id).await?;
    Ok(Json(subs.iter().map(Into::into).collect()))
}

#[utoipa::path(delete, path = "/api/v1/users/@me/push-subscriptions/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = path_id("id", &id)?;
    if !state
        .store
        .delete_push_subscription(Some(p.user_id), id)
        .await?
    {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}
