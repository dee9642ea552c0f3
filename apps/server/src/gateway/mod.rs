//! The WebSocket gateway (`GET /api/v1/gateway`): connections (`conn`),
//! sessions and their recording (`hub`), routing of the bus log
//! (`route`), the recent window of the log every node keeps (`ring`), and
//! resume on this node or any other (`resume`).

pub mod conn;
pub mod hub;
pub mod inbound;
pub mod limits;
pub mod presence;
pub mod protocol;
pub mod ready;
pub mod resume;
pub mod ring;
pub mod route;
pub mod shards;
pub mod socket;
pub mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_types::UserId;
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::http::error::ApiError;
use crate::state::AppState;

/// Whether a browser page from `origin` may open the gateway: listed in
/// `allowed_origins`, or (with none listed) the server's own origin.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // not a browser: bots and mobile clients send no Origin
    };
    if !state.cfg.allowed_origins.is_empty() {
        return state
            .cfg
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split("://").nth(1).unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Upgrades to the gateway. The token travels in the first frame (identify),
/// never in the URL, so it stays out of logs and proxies. An address that
/// already has `gateway_max_connections_per_address` connections open here
/// is refused with 429 `rate_limited` before upgrading; a draining node
/// (rolling restart) with 503 `unavailable`, so a load balancer retries
/// another.
#[utoipa::path(get, path = "/api/v1/gateway", tag = "gateway",
    responses((status = 101, description = "Switching to the WebSocket gateway protocol"), (status = 400, body = crate::http::wire::ErrorBody, description = "not a WebSocket upgrade: details.field names the header at fault"), (status = 403, body = crate::http::wire::ErrorBody, description = "origin not allowed"), (status = 429, body = crate::http::wire::ErrorBody, description = "this address already has gateway_max_connections_per_address connections open here"), (status = 503, body = crate::http::wire::ErrorBody, description = "this node is draining (restarting): connect to another")))]
pub async fn upgrade(State(state): State<AppState>, mut req: Request) -> Response {
    if state.hub.is_draining() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node is restarting; connect to another",
        )
        .into_response();
    }
    if !origin_allowed(&state, req.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this origin may not open the gateway",
        )
        .details(json!({ "reason": "origin" }))
        .into_response();
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = crate::http::extract::client_ip(req.headers(), peer, state.cfg.trust_forwarded_for);
    let max = state.cfg.gateway_max_connections_per_address;
    let Some(counted) = state.hub.limits.open(&ip, max) else {
        let mut e = ApiError::rate_limited(5_000);
        e.message = format!("at most {max} gateway connections per address");
        return e
            .details(json!({ "retry_after_ms": 5_000, "reason": "connections_per_address", "limit": max }))
            .into_response();
    };
    let (response, on_upgrade) = match socket::accept(&mut req) {
        Ok(ok) => ok,
        Err(bad) => return *bad,
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = socket::Socket::new(TokioIo::new(upgraded));
                conn::run(ws, state).await;
            }
            Err(e) => tracing::debug!(error = %e, "gateway upgrade failed"),
        }
        drop(counted);
    });
    response
}

/// Records a user's status on this node and announces it (see [`presence`]).
pub fn presence(state: &AppState, user: UserId, status: &'static str) {
    presence::set(state, user, status);
}

/// Starts the gateway's background tasks: routing, the presence sweeper,
/// the renewal of session slots and the reaper of expired sessions. Each
/// stops when the gateway stops ([`hub::Hub::stop`], or the server being
/// dropped): none keeps the server alive.
pub fn start(state: AppState) {
    state
        .hub
        .views
        .set_threshold(state.cfg.gateway_presence_threshold);
    if !state.cfg.redis_url.0.is_empty() {
        // The per-user session count is shared by every node.
        let prefix = format!("{}:", state.cfg.nats_subject_root);
        match hearth_state::RedisSlots::new(&state.cfg.redis_url.0, &prefix) {
            Ok(slots) => state.hub.limits.share_slots(Arc::new(slots)),
            Err(e) => tracing::error!(error = %e, "session slots in Redis; counting per node"),
        }
    }
    let backlog = state.cfg.gateway_window_events as u64;
    tokio::spawn(route::run(state.clone(), backlog));
    presence::start_sweeper(&state);
    every(&state, limits::SLOT_RENEW, |state| async move {
        state.hub.limits.renew(state.hub.attached()).await;
    });
    every(&state, Duration::from_secs(5), |state| async move {
        let window = Duration::from_secs(state.cfg.gateway_resume_secs);
        for s in state.hub.reap(window) {
            if !state.hub.has_live_session(s.user) {
                presence(&state, s.user, "offline");
            }
        }
        // Views nobody here needs any more go too.
        state.hub.retain_views();
    });
}

/// Runs `f` every `period` until the gateway stops or the server is gone;
/// the loop holds the server only while `f` runs.
pub(crate) fn every<F, Fut>(state: &AppState, period: Duration, f: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let server = Arc::downgrade(&state.0);
    let stop = state.hub.stopping();
    tokio::spawn(async move {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {
                    let Some(state) = server.upgrade().map(AppState) else { return };
                    f(state).await;
                }
            }
        }
    });
}
