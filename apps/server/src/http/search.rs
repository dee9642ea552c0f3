//! Message search: a community's channels, or the caller's DMs.
//!
//! The scope is decided here at query time from `hearth-chat`'s permission
//! checks (channels the caller may VIEW and READ_MESSAGE_HISTORY in, or
//! their DM channels); names in `from:`, `mentions:` and `in:` are resolved
//! within it; the index (`hearth-search`) matches, counts and snippets only
//! inside the scope. Each hit is then loaded from the database through the
//! chat service (permissions checked again, reactions for the caller), and
//! a message deleted meanwhile is left out.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures::future::join_all;
use hearth_chat::{ChatError, Permissions};
use hearth_search::{NameKind, Scope, SearchError, Sort};
use hearth_store::{ChannelRecord, UserRecord};
use hearth_types::{CommunityId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, path_id};
use super::wire::{ErrorBody, Message};
use crate::state::AppState;

/// Results per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 25;

/// One result: the message as everywhere else, plus its snippet.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    #[serde(flatten)]
    pub message: Message,
    /// At most 200 characters of the content around the first match,
    /// HTML-escaped, each matched word inside `<mark>…</mark>` (a cut end
    /// shows `…`). Safe to insert as HTML.
    pub highlight: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// Every matching message the caller may read (not only this page).
    pub total: u64,
    pub messages: Vec<SearchHit>,
    /// Pass as `cursor` with the same `q` and `sort` for the next page;
    /// `null` on the last one.
    pub next_cursor: Option<String>,
}

/// A search refusal as the contract's 400, naming the parameter and, in
/// `details.reason` and `details.token`, what was wrong.
fn refused(e: SearchError) -> ApiError {
    if !e.is_client_error() {
        return ApiError::internal(e);
    }
    let field = match &e {
        SearchError::BadLimit(_) => "limit",
        SearchError::BadCursor => "cursor",
        SearchError::BadValue(v) if v.starts_with("sort=") => "sort",
        _ => "q",
    };
    let token = match &e {
        SearchError::UnknownFilter(t)
        | SearchError::BadDate(t)
        | SearchError::BadValue(t)
        | SearchError::NegatedFilter(t)
        | SearchError::PrefixTooShort(t)
        | SearchError::Unresolved(t) => Some(t.clone()),
        _ => None,
    };
    let reason = e.to_string();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("{field}: {reason}"),
    )
    .details(json!({ "fields": { field: reason }, "reason": e.code(), "token": token }))
}

/// `q`, `limit`, `cursor` and `sort`, parsed into a query.
fn parse(params: &HashMap<String, String>) -> ApiResult<hearth_search::Query> {
    let q = params
        .get("q")
        .ok_or_else(|| ApiError::field("q", "required"))?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| ApiError::field("limit", "an integer from 1 to 100"))?,
    };
    let sort: Sort = match params.get("sort") {
        None => Sort::default(),
        Some(s) => s.parse().map_err(refused)?,
    };
    hearth_search::Query::parse(q, sort, limit, params.get("cursor").map(String::as_str))
        .map_err(refused)
}

/// Runs `query` in `scope` and loads the hits for `viewer`.
async fn run(
    state: &AppState,
    viewer: UserId,
    query: hearth_search::Query,
    scope: Scope,
) -> ApiResult<SearchResults> {
    let index = state
        .search
        .as_ref()
        .and_then(|s| s.index())
        .ok_or_else(|| ApiError::unavailable("search"))?;
    let page = tokio::task::spawn_blocking(move || index.search(&query, &scope))
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    let loaded = join_all(
        page.hits
            .iter()
            .map(|h| state.chat.message(h.channel_id, viewer, h.id)),
    )
    .await;
    let mut messages = Vec::with_capacity(page.hits.len());
    let mut gone = 0u64;
    for (hit, m) in page.hits.iter().zip(loaded) {
        match m {
            Ok(m) => messages.push(SearchHit {
                message: Message::from(&m),
                highlight: hit.highlight.to_html(),
            }),
            // Deleted (or no longer readable) since it was indexed.
            Err(ChatError::NotFound | ChatError::Forbidden(_)) => gone += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(SearchResults {
        total: (page.total as u64).saturating_sub(gone),
        messages,
        next_cursor: page.next_cursor,
    })
}

/// Resolves the query's names: users among `users`, channels among
/// `channels` (by name, ignoring case). An unknown name is a 400 naming it.
fn resolve(
    query: &mut hearth_search::Query,
    users: &HashMap<String, UserId>,
    channels: &[ChannelRecord],
) -> ApiResult<()> {
    query
        .resolve(|kind, name| match kind {
            NameKind::User => users.get(&name.to_lowercase()).map(|u| u.0),
            NameKind::Channel => channels
                .iter()
                .find(|c| {
                    c.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .map(|c| c.id.0),
        })
        .map_err(refused)
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/messages/search", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path),
        ("q" = String, Query, description = "the query: words, \"phrases\", prefix*, -excluded, from:@user, mentions:@user, in:#channel, has:link|file|image|video|embed, before:/after:/during:YYYY-MM-DD, pinned:true|false (at most 1000 characters and 32 terms)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1-100, default 25"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page (same `q` and `sort`)"),
        ("sort" = Option<String>, Query, description = "relevance (default), newest or oldest")),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody, description = "invalid_request naming the parameter; details.reason and details.token say what"),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody, description = "search is off on this node")))]
pub async fn community(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<SearchResults>> {
    let id: CommunityId = path_id("id", &id)?;
    let mut query = parse(&params)?;
    // The channels the caller may view (NotFound unless a member) and read.
    let mut readable = Vec::new();
    for ch in state.chat.channels(id, p.user_id).await? {
        if state
            .chat
            .channel_permissions(&ch, p.user_id)
            .await?
            .contains(Permissions::READ_MESSAGE_HISTORY)
        {
            readable.push(ch);
        }
    }
    let mut users = HashMap::new();
    for (kind, name) in query.names() {
        if kind == NameKind::User
            && let Some(u) = state.store.user_by_login(name).await?
            && u.username.eq_ignore_ascii_case(name)
            && state.store.member(id, u.id).await?.is_some()
        {
            users.insert(name.to_lowercase(), u.id);
        }
    }
    resolve(&mut query, &users, &readable)?;
    let scope = Scope::new(readable.iter().map(|c| c.id));
    Ok(Json(run(&state, p.user_id, query, scope).await?))
}

#[utoipa::path(get, path = "/api/v1/dms/messages/search", tag = "dms", operation_id = "search_messages", security(("bearer" = [])),
    params(
        ("q" = String, Query, description = "as for a community; `from:` and `mentions:` name DM participants, `in:` takes a DM channel id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1-100, default 25"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page (same `q` and `sort`)"),
        ("sort" = Option<String>, Query, description = "relevance (default), newest or oldest")),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody, description = "invalid_request naming the parameter; details.reason and details.token say what"),
        (status = 503, body = ErrorBody, description = "search is off on this node")))]
pub async fn dms(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<SearchResults>> {
    let mut query = parse(&params)?;
    let dms = state.chat.dms(p.user_id).await?;
    let users: HashMap<String, UserId> = dms
        .iter()
        .flat_map(|(_, users)| users.iter())
        .map(|u: &UserRecord| (u.username.to_lowercase(), u.id))
        .collect();
    let channels: Vec<ChannelRecord> = dms.into_iter().map(|(c, _)| c).collect();
    resolve(&mut query, &users, &channels)?;
    let scope = Scope::new(channels.iter().map(|c| c.id));
    Ok(Json(run(&state, p.user_id, query, scope).await?))
}
