//! "Sign in with …" (OpenID Connect, issue #13 item 4): the browser's trip
//! to the provider and back, and the identities an account holds.
//!
//! A flow starts here (`/start`, or a link from settings after the password
//! is typed again), with a fresh `state`, `nonce` and PKCE verifier. Only
//! the state's SHA-256 is stored; the state itself goes to the provider and
//! into a short-lived `hearth_oidc` cookie, so a callback is accepted only
//! in the browser that started it (a link sent to someone else, or a login
//! forced on a victim, fails). The flow is spent on the first callback.
//!
//! Failures never show a bare error page: the browser is sent to
//! `/login?oidc_error=<reason>` (see docs/api.md for the reasons).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_accounts::AccountsError;
use hearth_accounts::oidc::{Identity, pkce_challenge, random_value};
use hearth_store::{IdentityRecord, OidcFlowRecord, StoreError};
use hearth_types::{UserId, format_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use utoipa::ToSchema;

use super::auth::{COOKIE_MAX_AGE, cookie, set_cookie, user_agent};
use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::wire::ErrorBody;
use crate::oidc::{OidcFailure, Provider};
use crate::state::AppState;

/// The cookie binding a flow to the browser that started it.
const FLOW_COOKIE: &str = "hearth_oidc";
/// How long a trip to the provider may take.
const FLOW_TTL_MS: i64 = 10 * 60 * 1000;

fn hash(state: &str) -> String {
    Sha256::digest(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn flow_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.cfg.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    // Lax: the provider's redirect back is a top-level navigation from
    // another site, which Strict would strip the cookie from.
    HeaderValue::from_str(&format!(
        "{FLOW_COOKIE}={value}; Path=/api/v1/auth/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("hearth_oidc=; Max-Age=0"))
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn failed(state: &AppState, reason: &str) -> Response {
    let mut r = redirect(&format!("/login?oidc_error={reason}"));
    r.headers_mut()
        .append(header::SET_COOKIE, flow_cookie(state, "", 0));
    r
}

/// A path of this site to return to; anything else (another origin,
/// `//host`, backslashes) becomes `/app`.
fn safe_redirect(r: Option<&String>) -> String {
    match r {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() <= 512
                && p.chars().all(|c| !c.is_control()) =>
        {
            p.clone()
        }
        _ => "/app".into(),
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OidcProviderView {
    pub name: String,
    pub display_name: String,
}

#[utoipa::path(get, path = "/api/v1/auth/oidc/providers", tag = "auth",
    responses((status = 200, body = [OidcProviderView])))]
pub async fn providers(State(state): State<AppState>) -> Json<Vec<OidcProviderView>> {
    Json(
        state
            .oidc
            .providers()
            .map(|p| OidcProviderView {
                name: p.cfg.name.clone(),
                display_name: p.cfg.display_name.clone(),
            })
            .collect(),
    )
}

fn host(h: &HeaderMap) -> Option<&str> {
    h.get(header::HOST).and_then(|v| v.to_str().ok())
}

/// A new flow: stored (by the state's hash), and the provider's URL.
async fn begin(
    state: &AppState,
    p: &Provider,
    link: Option<UserId>,
    after: String,
    headers: &HeaderMap,
) -> Result<(String, String), OidcFailure> {
    let (st, nonce, verifier) = (random_value(), random_value(), random_value());
    let back = state.oidc.redirect_uri(host(headers));
    let url = state
        .oidc
        .authorization_url(p, &st, &nonce, &pkce_challenge(&verifier), &back)
        .await?;
    let now = now_ms();
    state
        .store
        .create_oidc_flow(&OidcFlowRecord {
            state_hash: hash(&st),
            provider: p.cfg.name.clone(),
            nonce,
            verifier,
            link_user_id: link,
            redirect: after,
            created_at: now,
            expires_at: now + FLOW_TTL_MS,
        })
        .await
        .map_err(|e| OidcFailure::Provider(e.to_string()))?;
    // Spent or abandoned flows go with the next ones.
    let _ = state.store.prune_oidc_flows(now - FLOW_TTL_MS).await;
    Ok((st, url))
}

#[utoipa::path(get, path = "/api/v1/auth/oidc/{name}/start", tag = "auth",
    params(("name" = String, Path), ("redirect" = Option<String>, Query, description = "a path of this site to land on (default /app)")),
    responses((status = 302, description = "to the provider, or to /login?oidc_error=provider_error"), (status = 404, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let p = state.oidc.provider(&name).ok_or_else(ApiError::not_found)?;
    match begin(&state, p, None, safe_redirect(q.get("redirect")), &headers).await {
        Ok((st, url)) => {
            let mut r = redirect(&url);
            r.headers_mut().append(
                header::SET_COOKIE,
                flow_cookie(&state, &st, FLOW_TTL_MS / 1000),
            );
            Ok(r)
        }
        Err(e) => {
            tracing::warn!(provider = %name, error = %e, "OIDC sign-in could not start");
            Ok(failed(&state, "provider_error"))
        }
    }
}

#[utoipa::path(get, path = "/api/v1/auth/oidc/callback", tag = "auth",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query), ("iss" = Option<String>, Query)),
    responses((status = 302, description = "signed in (to the flow's redirect, with the refresh cookie) or to /login?oidc_error=<reason>")))]
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(st) = q.get("state") else {
        return failed(&state, "invalid_state");
    };
    // The browser that started the flow, and only once.
    if cookie(&headers, FLOW_COOKIE).as_deref() != Some(st.as_str()) {
        return failed(&state, "invalid_state");
    }
    let flow = match state.store.take_oidc_flow(&hash(st), now_ms()).await {
        Ok(Some(f)) => f,
        Ok(None) => return failed(&state, "invalid_state"),
        Err(e) => {
            tracing::warn!(error = %e, "reading an OIDC flow");
            return failed(&state, "provider_error");
        }
    };
    let Some(p) = state.oidc.provider(&flow.provider) else {
        return failed(&state, "invalid_state");
    };
    if let Some(err) = q.get("error") {
        tracing::info!(provider = %p.cfg.name, error = %err, "the provider refused the sign-in");
        return failed(&state, "provider_error");
    }
    // RFC 9207: a response naming another issuer is a mix-up.
    if q.get("iss").is_some_and(|iss| *iss != p.cfg.issuer) {
        return failed(&state, "provider_error");
    }
    let Some(code) = q.get("code") else {
        return failed(&state, "provider_error");
    };
    let who = match state
        .oidc
        .sign_in(
            p,
            code,
            &flow.verifier,
            &flow.nonce,
            &state.oidc.redirect_uri(host(&headers)),
        )
        .await
    {
        Ok(id) => id,
        Err(OidcFailure::Token(e)) => {
            tracing::warn!(provider = %p.cfg.name, error = %e, "an ID token was refused");
            return failed(&state, "invalid_token");
        }
        Err(e) => {
            tracing::warn!(provider = %p.cfg.name, error = %e, "OIDC sign-in failed");
            return failed(&state, "provider_error");
        }
    };
    if !email_allowed(p, &who) {
        return failed(&state, "email_domain_not_allowed");
    }
    match finish(&state, p, &flow, &who, &headers).await {
        Ok(r) => r,
        Err(reason) => failed(&state, reason),
    }
}

fn email_allowed(p: &Provider, who: &Identity) -> bool {
    let domains = &p.cfg.allowed_email_domains;
    if domains.is_empty() {
        return true;
    }
    // Only an address the provider vouches for can prove a domain.
    match (&who.email, who.email_verified) {
        (Some(e), true) => e
            .rsplit_once('@')
            .is_some_and(|(_, d)| domains.iter().any(|x| x.eq_ignore_ascii_case(d))),
        _ => false,
    }
}

/// Links, signs in, or signs up; the browser's next stop or a reason.
async fn finish(
    state: &AppState,
    p: &Provider,
    flow: &OidcFlowRecord,
    who: &Identity,
    headers: &HeaderMap,
) -> Result<Response, &'static str> {
    let store_err = |e: StoreError| {
        tracing::warn!(error = %e, "OIDC sign-in");
        "provider_error"
    };
    let held = state
        .store
        .identity(&p.cfg.name, &who.subject)
        .await
        .map_err(store_err)?;
    let record = |user: UserId| IdentityRecord {
        id: state.publisher.next_id(),
        user_id: user,
        provider: p.cfg.name.clone(),
        subject: who.subject.clone(),
        email: who.email.clone(),
        created_at: now_ms(),
    };
    if let Some(me) = flow.link_user_id {
        match held {
            Some(h) if h.user_id != me => return Err("already_linked"),
            Some(_) => {}
            None => match state.store.add_identity(&record(me)).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => return Err("already_linked"),
                Err(e) => return Err(store_err(e)),
            },
        }
        let mut r = redirect(&format!("/app?linked={}", p.cfg.name));
        r.headers_mut()
            .append(header::SET_COOKIE, flow_cookie(state, "", 0));
        return Ok(r);
    }
    let user = match held {
        Some(h) => state
            .accounts
            .user(h.user_id)
            .await
            .map_err(|_| "invalid_state")?,
        None => {
            if !p.cfg.allow_signup {
                return Err("signup_disabled");
            }
            // An unverified address proves nothing: not stored, not matched.
            let email = who.email.as_deref().filter(|_| who.email_verified);
            if let Some(e) = email
                && state
                    .accounts
                    .user_by_login(e)
                    .await
                    .map_err(|_| "provider_error")?
                    .is_some()
            {
                return Err("account_exists");
            }
            let hint = who
                .preferred_username
                .clone()
                .or_else(|| email.and_then(|e| e.split('@').next()).map(str::to_string))
                .or_else(|| who.name.clone())
                .unwrap_or_else(|| "user".into());
            let u = match state
                .accounts
                .create_external_user(&hint, email, email.is_some(), who.name.as_deref())
                .await
            {
                Ok(u) => u,
                Err(AccountsError::Taken("email")) => return Err("account_exists"),
                Err(e) => {
                    tracing::warn!(error = %e, "creating an account from an OIDC sign-in");
                    return Err("provider_error");
                }
            };
            match state.store.add_identity(&record(u.id)).await {
                Ok(()) => {}
                // Two first sign-ins at once: the other made the account.
                Err(StoreError::Conflict(_)) => return Err("invalid_state"),
                Err(e) => return Err(store_err(e)),
            }
            u
        }
    };
    let ok = match state.accounts.sign_in(user, user_agent(headers)).await {
        Ok(ok) => ok,
        Err(AccountsError::Suspended) => return Err("suspended"),
        Err(e) => {
            tracing::warn!(error = %e, "opening a session after an OIDC sign-in");
            return Err("provider_error");
        }
    };
    let mut r = redirect(&flow.redirect);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, &ok.tokens.refresh_token, COOKIE_MAX_AGE),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, flow_cookie(state, "", 0));
    Ok(r)
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub password: String,
    pub totp_code: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LinkStart {
    /// Where to send the browser (the provider).
    pub url: String,
}

// `{id}` names the provider here (the path shares its parameter with DELETE).
#[utoipa::path(post, path = "/api/v1/users/@me/identities/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "the provider's name")), request_body = LinkRequest,
    responses((status = 200, body = LinkStart), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Auth(me): Auth,
    Path(name): Path<String>,
    Body(req): Body<LinkRequest>,
) -> ApiResult<Response> {
    let p = state.oidc.provider(&name).ok_or_else(ApiError::not_found)?;
    state
        .accounts
        .reauthenticate(me.user_id, req.password, req.totp_code.as_deref())
        .await?;
    let (st, url) = begin(&state, p, Some(me.user_id), "/app".into(), &headers)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %name, error = %e, "OIDC link could not start");
            ApiError::unavailable("the identity provider")
        })?;
    let mut r = Json(LinkStart { url }).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        flow_cookie(&state, &st, FLOW_TTL_MS / 1000),
    );
    Ok(r)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IdentityView {
    pub id: String,
    pub provider: String,
    pub display_name: String,
    pub email: Option<String>,
    pub created_at: String,
}

#[utoipa::path(get, path = "/api/v1/users/@me/identities", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [IdentityView])))]
pub async fn identities(
    State(state): State<AppState>,
    Auth(me): Auth,
) -> ApiResult<Json<Vec<IdentityView>>> {
    let rows = state.store.identities(me.user_id).await?;
    Ok(Json(
        rows.iter()
            .map(|i| IdentityView {
                id: i.id.to_string(),
                provider: i.provider.clone(),
                display_name: state
                    .oidc
                    .provider(&i.provider)
                    .map_or_else(|| i.provider.clone(), |p| p.cfg.display_name.clone()),
                email: i.email.clone(),
                created_at: format_rfc3339(i.created_at),
            })
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/users/@me/identities/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn unlink(
    State(state): State<AppState>,
    Auth(me): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = path_id("id", &id)?;
    let mine = state.store.identities(me.user_id).await?;
    if !mine.iter().any(|i| i.id == id) {
        return Err(ApiError::not_found());
    }
    let user = state.accounts.user(me.user_id).await?;
    // Without a password, the last identity is the only way back in.
    if user.password_hash.starts_with('!') && mine.len() == 1 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "this is the only way to sign in to the account: set a password first",
        ));
    }
    state.store.delete_identity(me.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
