//! The HTTP API: routes, middleware and the OpenAPI document. The only
//! module that knows about axum, status codes and JSON shapes.

pub mod admin;
pub mod auth;
pub mod channels;
pub mod communities;
pub mod email;
pub mod error;
pub mod extract;
pub mod media;
pub mod messages;
pub mod middleware;
pub mod moderation;
pub mod notifications;
pub mod oidc;
pub mod ops;
pub mod reports;
pub mod roles;
pub mod search;
pub mod uploads;
pub mod users;
pub mod voice;
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
    components(schemas(
        wire::ErrorBody, wire::ErrorDetail,
        voice::VoiceJoinOp, voice::VoiceStateOp, voice::VoiceSignalOp, voice::VoiceTrackLabel,
        voice::VoiceLayerOp, voice::VoiceServerDispatch, voice::VoiceIceServer
    )),
    tags(
        (name = "auth"), (name = "users"), (name = "communities"), (name = "members"), (name = "invites"),
        (name = "roles"), (name = "channels"), (name = "dms"), (name = "messages"), (name = "moderation"), (name = "voice"), (name = "notifications"), (name = "admin"), (name = "gateway"), (name = "operations")
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
        .routes(routes!(email::verify_email))
        .routes(routes!(email::password_reset))
        .routes(routes!(email::password_reset_confirm))
        .routes(routes!(email::request_verification))
        .routes(routes!(email::change_email))
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
        .routes(routes!(media::upload))
        .routes(routes!(media::upload_avatar))
        .routes(routes!(media::upload_icon))
        .routes(routes!(uploads::create))
        .routes(routes!(uploads::status, uploads::chunk, uploads::cancel))
        .routes(routes!(media::file))
        .routes(routes!(media::file_by_id))
        .routes(routes!(media::preview))
        .routes(routes!(media::embed_image))
        .routes(routes!(search::community))
        .routes(routes!(search::dms))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::read_one))
        .routes(routes!(notifications::read_all))
        .routes(routes!(
            notifications::get_settings,
            notifications::patch_settings
        ))
        .routes(routes!(
            notifications::put_community,
            notifications::delete_community
        ))
        .routes(routes!(
            notifications::put_channel,
            notifications::delete_channel
        ))
        .routes(routes!(notifications::vapid_key))
        .routes(routes!(
            notifications::subscribe,
            notifications::subscriptions
        ))
        .routes(routes!(notifications::unsubscribe))
        .routes(routes!(oidc::providers))
        .routes(routes!(oidc::start))
        .routes(routes!(oidc::callback))
        .routes(routes!(oidc::link, oidc::unlink))
        .routes(routes!(oidc::identities))
        .routes(routes!(messages::typing))
        .routes(routes!(messages::read))
        .routes(routes!(messages::read_states))
        .routes(routes!(moderation::bulk_delete))
        .routes(routes!(moderation::audit_log))
        .routes(routes!(
            moderation::automod_rules,
            moderation::put_automod_rules
        ))
        .routes(routes!(moderation::automod_test))
        .routes(routes!(admin::find_users))
        .routes(routes!(admin::get_user))
        .routes(routes!(admin::suspend, admin::unsuspend))
        .routes(routes!(admin::reset_mfa))
        .routes(routes!(admin::erase))
        .routes(routes!(admin::communities))
        .routes(routes!(admin::takedown))
        .routes(routes!(admin::stats))
        .routes(routes!(admin::me))
        .routes(routes!(admin::staff))
        .routes(routes!(admin::grant, admin::revoke))
        .routes(routes!(admin::add_permission, admin::remove_permission))
        .routes(routes!(admin::audit_log))
        .routes(routes!(reports::file))
        .routes(routes!(reports::get, reports::update))
        .routes(routes!(reports::community_queue))
        .routes(routes!(reports::instance_queue))
        .routes(routes!(voice::list))
        .routes(routes!(voice::update, voice::disconnect))
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
    add_common_responses(&mut doc);
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

/// The answers every operation can give whatever it does, from the shared
/// extractors, middleware and domain rules rather than its handler: 400 for
/// a malformed id, cursor or body, 401 without a valid token, 404 for an id
/// in the path that does not exist or may not be seen, 413 and 415 for
/// bodies, 429 from the per-address and per-user limits, 503 when the
/// database is unavailable. Documented once as components and referenced from each
/// operation that can give them, unless it documents that status itself.
fn add_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        ContentBuilder, Ref, RefOr, ResponseBuilder, header::HeaderBuilder, schema::Type,
    };
    let error = |description: &str| {
        ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
    };
    let retry_after = HeaderBuilder::new()
        .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some("seconds to wait"))
        .build();
    let common = [
        (
            "400",
            "BadRequest",
            error("invalid_request: a malformed id, query or body"),
        ),
        (
            "401",
            "Unauthorized",
            error("unauthorized: no valid access token"),
        ),
        (
            "404",
            "NotFound",
            error("not_found: absent, or not visible to the caller"),
        ),
        (
            "413",
            "PayloadTooLarge",
            error("payload_too_large: the body is too big"),
        ),
        (
            "415",
            "UnsupportedMediaType",
            error("unsupported_media_type: not JSON"),
        ),
        (
            "429",
            "RateLimited",
            error("rate_limited: too many requests").header("Retry-After", retry_after),
        ),
        (
            "503",
            "Unavailable",
            error("unavailable: the database; try again shortly"),
        ),
    ]
    .map(|(status, name, response)| (status, name, response.build()));
    let components = doc.components.get_or_insert_with(Default::default);
    for (_, name, response) in &common {
        components
            .responses
            .insert((*name).to_string(), RefOr::T(response.clone()));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let upgrade = path == "/api/v1/gateway";
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
            let has_body = op.request_body.is_some();
            let params = op.parameters.as_deref().unwrap_or_default();
            let has_params = !params.is_empty();
            let has_path_params = params
                .iter()
                .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path);
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            for (status, name, _) in &common {
                let applies = match *status {
                    "400" => has_body || has_params,
                    "401" => secured,
                    "404" => has_path_params,
                    "413" | "415" => has_body,
                    "429" => true,
                    _ => !upgrade,
                };
                if applies {
                    op.responses
                        .responses
                        .entry((*status).to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
                }
            }
        }
    }
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
        .layer(axum::middleware::from_fn(moderation::audit_reason))
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
