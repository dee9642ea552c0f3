//! Operations: liveness, readiness, metrics, the OpenAPI document.

use axum::Json;
use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::wire::Health;
use crate::state::AppState;

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health, description = "the process is alive")))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        checks: None,
    })
}

/// How long readiness waits for a database ping through the pool.
const DB_PING_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// 200 when the database and the bus answer, else 503 naming what failed
/// (or `draining`: the node is restarting).
///
/// `scope=node` asks only whether this node can take traffic (it is not
/// draining); the shared parts are reported but do not fail it. That is the
/// readiness probe for an orchestrator that drops unready nodes from
/// rotation: when the database or Redis every node shares is down, failing
/// every node would leave the balancer nobody to send to, and clients would
/// get its bare error instead of the nodes' own 503 `unavailable` with
/// `Retry-After`.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    params(("scope" = Option<String>, Query, description = "`all` (default): the database, the bus and the cache answer and the node is not draining; `node`: only that the node is not draining (the shared parts are reported, not counted)")),
    responses((status = 200, body = Health), (status = 503, body = Health), (status = 400, body = super::wire::ErrorBody, description = "an unknown scope")))]
pub async fn readyz(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let node_only = match q.get("scope").map(String::as_str) {
        None | Some("all") => false,
        Some("node") => true,
        Some(_) => return ApiError::field("scope", "`all` or `node`").into_response(),
    };
    let timeout = std::time::Duration::from_secs(2);
    // Known down (the gate's probe): no need to wait out a ping. A ping
    // that waits on a busy pool is a loaded node, not a database that is
    // down (the gate's probe, on a connection of its own, would know): such
    // a node stays ready, or a load balancer would move its load onto the
    // others, which share the same database, and take them out in turn.
    let db_ok = !state.db_gate.is_down()
        && match tokio::time::timeout(DB_PING_WAIT, state.store.ping()).await {
            Ok(r) => r.is_ok(),
            Err(_) => true,
        };
    let bus = tokio::time::timeout(timeout, state.bus.ping()).await;
    let cache_ok = match &state.redis {
        None => true,
        Some(r) => matches!(tokio::time::timeout(timeout, r.ping()).await, Ok(Ok(()))),
    };
    // The bus answers and the gateway is following its log.
    let following = state
        .hub
        .following
        .load(std::sync::atomic::Ordering::Relaxed);
    let bus_ok = matches!(bus, Ok(Ok(()))) && following;
    // A draining node (rolling restart) is alive but takes no new work.
    let draining = state.hub.is_draining();
    let checks = json!({
        "draining": draining,
        "database": { "ok": db_ok, "backend": state.store.backend() },
        "bus": { "ok": bus_ok, "backend": state.bus.name(), "following_log": following },
        "cache": { "ok": cache_ok, "backend": if state.redis.is_some() { "redis" } else { "memory" } },
        "node_id": state.node_id,
        "scope": if node_only { "node" } else { "all" },
    });
    let ok = !draining && (node_only || (db_ok && bus_ok && cache_ok));
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ok { "ok" } else { "unavailable" }.into(),
            checks: Some(checks),
        }),
    )
        .into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
