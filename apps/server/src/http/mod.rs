//! The HTTP API: routes, middleware and the OpenAPI document. The only
//! module that knows about axum, status codes and JSON shapes.

pub mod auth;
pub mod channels;
pub mod communities;
pub mod error;
pub mod extract;
pub mod messages;
pub mod middleware;
pub mod ops;
pub mod roles;
pub mod users;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Hearth API", version = "1", description = "The Hearth public API, v1. See the contract for guarantees."),
    modifiers(&BearerAuth),
    components(schemas(wire::ErrorBody, wire::ErrorDetail)),
    tags(
        (name = "auth"), (name = "users"), (name = "communities"), (name = "members"), (name = "invites"),
        (name = "roles"), (name = "channels"), (name = "dms"), (name = "messages"), (name = "gateway"), (name = "operations")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every route with its documentation, as a router and the OpenAPI document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::sessions, auth::revoke_other_sessions))
        .routes(routes!(auth::revoke_session))
        .routes(routes!(users::me, users::update_me))
        .routes(routes!(
            users::totp_setup,
            users::totp_enable,
            users::totp_disable
        ))
        .routes(routes!(users::user))
        .routes(routes!(users::blocks))
        .routes(routes!(users::block, users::unblock))
        .routes(routes!(communities::create, communities::list))
        .routes(routes!(
            communities::get,
            communities::update,
            communities::delete
        ))
        .routes(routes!(communities::members))
        .routes(routes!(communities::leave, communities::update_me))
        .routes(routes!(
            communities::member,
            communities::remove_member,
            communities::update_member
        ))
        .routes(routes!(
            communities::add_member_role,
            communities::remove_member_role
        ))
        .routes(routes!(communities::ban, communities::unban))
        .routes(routes!(communities::bans))
        .routes(routes!(communities::create_invite, communities::invites))
        .routes(routes!(
            communities::preview,
            communities::join,
            communities::delete_invite
        ))
        .routes(routes!(roles::create, roles::list))
        .routes(routes!(roles::update, roles::delete))
        .routes(routes!(channels::create, channels::list))
        .routes(routes!(channels::get, channels::update, channels::delete))
        .routes(routes!(channels::overwrites))
        .routes(routes!(channels::put_overwrite, channels::delete_overwrite))
        .routes(routes!(channels::open_dm, channels::dms))
        .routes(routes!(messages::send, messages::list))
        .routes(routes!(messages::get, messages::edit, messages::delete))
        .routes(routes!(messages::react, messages::unreact))
        .routes(routes!(messages::pin, messages::unpin))
        .routes(routes!(messages::pins))
        .routes(routes!(messages::typing))
        .routes(routes!(messages::read))
        .routes(routes!(messages::read_states))
        .routes(routes!(crate::gateway::upgrade))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts()
}

/// The OpenAPI document as served at `/api/v1/openapi.json`.
pub fn openapi_json() -> String {
    let (_, mut doc) = api();
    // utoipa names operations after their handler functions (`get`, `list`,
    // ...), which repeat across resources; generated clients need unique ids.
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .cloned()
                .unwrap_or_default();
            if let Some(id) = op.operation_id.as_mut()
                && !id.starts_with(&format!("{tag}_"))
            {
                *id = format!("{tag}_{id}");
            }
        }
    }
    doc.paths.paths.insert(
        "/api/v1/openapi.json".into(),
        utoipa::openapi::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .tag("operations")
                .summary(Some("This document"))
                .response(
                    "200",
                    utoipa::openapi::Response::new("The OpenAPI 3.1 document"),
                ),
        ),
    );
    doc.to_pretty_json().unwrap_or_default()
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api();
    let doc = Arc::new(openapi_json());
    let openapi = get(move || {
        let doc = doc.clone();
        async move {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                doc.as_str().to_owned(),
            )
                .into_response()
        }
    });
    api.route("/api/v1/openapi.json", openapi)
        .route("/api/v1", get(middleware::api_not_found))
        .route(
            "/api/v1/{*rest}",
            axum::routing::any(middleware::api_not_found),
        )
        .fallback(crate::web::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::limits,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        .with_state(state)
}
