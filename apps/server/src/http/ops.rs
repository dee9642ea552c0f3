//! Operations: liveness, readiness, metrics, the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::wire::Health;
use crate::state::AppState;

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health, description = "the process is alive")))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        checks: None,
    })
}

/// 200 when the database and the bus answer, else 503 naming what failed
/// (or `draining`: the node is restarting).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let timeout = std::time::Duration::from_secs(2);
    // Known down (the gate's probe): no need to wait out a ping.
    let db = if state.db_gate.is_down() {
        Ok(Err(hearth_store::StoreError::Unavailable(
            "unreachable".into(),
        )))
    } else {
        tokio::time::timeout(timeout, state.store.ping()).await
    };
    let bus = tokio::time::timeout(timeout, state.bus.ping()).await;
    let cache_ok = match &state.redis {
        None => true,
        Some(r) => matches!(tokio::time::timeout(timeout, r.ping()).await, Ok(Ok(()))),
    };
    let db_ok = matches!(db, Ok(Ok(())));
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
    });
    let ok = db_ok && bus_ok && cache_ok && !draining;
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
