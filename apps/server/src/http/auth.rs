//! `/auth`: register, login, refresh, logout, sessions.
//!
//! Web clients send `X-Hearth-Client: web`: their refresh token then travels
//! only in an httpOnly, SameSite=Strict cookie scoped to `/api/v1/auth`, so
//! page scripts can never read it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_accounts::{AccountsError, AuthSuccess, NewAccount, TokenPair};
use hearth_state::{Decision, Quota};
use hearth_types::SessionId;

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, ClientIp, OptionalBody, path_id};
use super::wire::*;
use crate::state::AppState;

pub const REFRESH_COOKIE: &str = "hearth_refresh";
/// The web app's access token again, for file reads only (`FileAuth`): a
/// browser's `<img>` and `<video>` cannot send a bearer header.
pub const FILES_COOKIE: &str = "hearth_files";

fn is_web(h: &HeaderMap) -> bool {
    h.get("x-hearth-client")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("web"))
}

pub(crate) fn user_agent(h: &HeaderMap) -> Option<String> {
    h.get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

pub(crate) fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub(crate) fn set_cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.cfg.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{REFRESH_COOKIE}={value}; Path=/api/v1/auth; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&v)
        .unwrap_or_else(|_| HeaderValue::from_static("hearth_refresh=; Max-Age=0"))
}

/// `hearth_files`: lives as long as the access token in it, and goes to
/// `/api/v1` because files are served from several routes under it (only
/// file reads look at it).
pub(crate) fn files_cookie(state: &AppState, access_token: &str, max_age: u64) -> HeaderValue {
    let secure = if state.cfg.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{FILES_COOKIE}={access_token}; Path=/api/v1; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&v)
        .unwrap_or_else(|_| HeaderValue::from_static("hearth_files=; Max-Age=0"))
}

pub(crate) const COOKIE_MAX_AGE: u64 = 30 * 24 * 3600;

pub(crate) async fn auth_rate_limit(state: &AppState, ip: &str) -> ApiResult<()> {
    let rl = &state.cfg.rate_limit;
    if rl.enabled {
        let q = Quota {
            per_second: rl.auth_per_ip_per_second,
            burst: rl.auth_per_ip_burst,
        };
        if let Decision::Limited { retry_after } =
            state.limiter.check(&format!("auth:{ip}"), q).await
        {
            return Err(ApiError::rate_limited(retry_after.as_millis() as u64));
        }
    }
    Ok(())
}

/// Sign-in attempts per account (contract v1.1), whatever the address: a
/// guesser spreading attempts over many addresses still meets this.
async fn account_rate_limit(state: &AppState, login: &str) -> ApiResult<()> {
    let rl = &state.cfg.rate_limit;
    if rl.enabled {
        let q = Quota {
            per_second: rl.auth_per_account_per_second,
            burst: rl.auth_per_account_burst,
        };
        let key: String = login.trim().to_lowercase().chars().take(254).collect();
        if let Decision::Limited { retry_after } =
            state.limiter.check(&format!("auth-account:{key}"), q).await
        {
            tracing::info!(login = %key, "sign-in attempts limited for this account");
            return Err(ApiError::rate_limited(retry_after.as_millis() as u64));
        }
    }
    Ok(())
}

fn auth_response(state: &AppState, web: bool, status: StatusCode, ok: AuthSuccess) -> Response {
    let TokenPair {
        access_token,
        refresh_token,
        expires_in,
        ..
    } = ok.tokens;
    let body = AuthResponse {
        user: (&ok.user).into(),
        access_token,
        refresh_token: (!web).then(|| refresh_token.clone()),
        expires_in,
    };
    let files = files_cookie(state, &body.access_token, expires_in);
    let mut res = (status, axum::Json(body)).into_response();
    if web {
        res.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie(state, &refresh_token, COOKIE_MAX_AGE),
        );
        res.headers_mut().append(header::SET_COOKIE, files);
    }
    res
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Body(req): Body<RegisterRequest>,
) -> ApiResult<Response> {
    auth_rate_limit(&state, &ip).await?;
    let input = NewAccount {
        username: req.username,
        password: req.password,
        email: req.email,
        display_name: req.display_name,
    };
    let ok = state.accounts.register(input, user_agent(&headers)).await?;
    super::email::announce_created(&state, ok.user.id);
    Ok(auth_response(
        &state,
        is_web(&headers),
        StatusCode::CREATED,
        ok,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = ErrorBody, description = "invalid_credentials or mfa_required"), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Body(req): Body<LoginRequest>,
) -> ApiResult<Response> {
    auth_rate_limit(&state, &ip).await?;
    account_rate_limit(&state, &req.login).await?;
    let ok = state
        .accounts
        .login(
            &req.login,
            req.password,
            req.totp_code.as_deref(),
            user_agent(&headers),
        )
        .await?;
    Ok(auth_response(&state, is_web(&headers), StatusCode::OK, ok))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = Option<RefreshRequest>,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody, description = "unauthorized or token_reused"), (status = 403, body = ErrorBody, description = "cookie refresh without X-Hearth-Client: web")))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    OptionalBody(req): OptionalBody<RefreshRequest>,
) -> ApiResult<Response> {
    let web = is_web(&headers);
    // The cookie is for the web app only (contract v1.1): without the client
    // header a cookie refresh is refused, so a page that merely rides the
    // browser's cookie can never read a refresh token out of a response body.
    let (token, from_cookie) = match req.refresh_token {
        Some(t) => (t, false),
        None => match cookie(&headers, REFRESH_COOKIE) {
            Some(t) if web => (t, true),
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "a refresh through the cookie needs the header X-Hearth-Client: web",
                ));
            }
            None => return Err(ApiError::unauthorized()),
        },
    };
    let pair = match state.accounts.refresh(&token).await {
        Ok(p) => p,
        Err(e) => {
            if let AccountsError::TokenReused {
                session,
                user: Some(user),
            } = &e
            {
                // A spent token came back: someone holds a copy. Close the
                // session's sockets everywhere, exactly as a logout does.
                tracing::info!(%session, %user, "refresh token reused; session revoked");
                announce_revoked(&state, *user, *session);
            }
            let mut res = ApiError::from(e).into_response();
            if web || from_cookie {
                res.headers_mut()
                    .insert(header::SET_COOKIE, set_cookie(&state, "", 0));
                res.headers_mut()
                    .append(header::SET_COOKIE, files_cookie(&state, "", 0));
            }
            return Ok(res);
        }
    };
    // A web client's refresh token only ever travels in the cookie.
    let in_cookie = web || from_cookie;
    let body = TokenResponse {
        access_token: pair.access_token,
        refresh_token: (!in_cookie).then(|| pair.refresh_token.clone()),
        expires_in: pair.expires_in,
    };
    let files = files_cookie(&state, &body.access_token, body.expires_in);
    let mut res = axum::Json(body).into_response();
    if in_cookie {
        res.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie(&state, &pair.refresh_token, COOKIE_MAX_AGE),
        );
        res.headers_mut().append(header::SET_COOKIE, files);
    }
    Ok(res)
}

pub(crate) fn announce_revoked(state: &AppState, user: hearth_types::UserId, sid: SessionId) {
    state.publisher.publish(
        "SESSION_REVOKED",
        format!("auth.session.{sid}"),
        serde_json::json!({ "session_id": sid.to_string(), "user_id": user.to_string() }),
    );
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Response> {
    state.accounts.logout(p).await?;
    announce_revoked(&state, p.user_id, p.session_id);
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, "", 0));
    res.headers_mut()
        .append(header::SET_COOKIE, files_cookie(&state, "", 0));
    Ok(res)
}

#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [Session]), (status = 401, body = ErrorBody)))]
pub async fn sessions(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<axum::Json<Vec<Session>>> {
    let list = state.accounts.sessions(p.user_id).await?;
    Ok(axum::Json(
        list.iter()
            .map(|s| Session::from_record(s, p.session_id))
            .collect(),
    ))
}

/// Signs out every other session ("sign out everywhere else").
#[utoipa::path(delete, path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<StatusCode> {
    for sid in state
        .accounts
        .revoke_others(p.user_id, p.session_id)
        .await?
    {
        announce_revoked(&state, p.user_id, sid);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let sid: SessionId = path_id("id", &id)?;
    state.accounts.revoke(p.user_id, sid).await?;
    announce_revoked(&state, p.user_id, sid);
    Ok(StatusCode::NO_CONTENT)
}
