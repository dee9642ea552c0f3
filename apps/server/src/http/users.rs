//! `/users`: your profile, others' public profiles, two-factor sign-in.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_accounts::Accounts;
use hearth_store::UserPatch;
use hearth_types::UserId;

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::wire::*;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/users/@me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Me>> {
    Ok(Json((&state.accounts.user(p.user_id).await?).into()))
}

#[utoipa::path(patch, path = "/api/v1/users/@me", tag = "users", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = Me), (status = 400, body = ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<UpdateMeRequest>,
) -> ApiResult<Json<Me>> {
    let avatar_id = match req.avatar_id {
        Some(Some(raw)) => {
            let id: hearth_types::AttachmentId = super::extract::path_id("avatar_id", &raw)?;
            if !super::media::usable_avatar(&state, p.user_id, id).await? {
                // One answer for every refusal, so ids cannot be probed.
                return Err(ApiError::field(
                    "avatar_id",
                    "unknown attachment (upload an image with POST /users/@me/avatar)",
                ));
            }
            Some(Some(id))
        }
        Some(None) => Some(None),
        None => None,
    };
    let public_change = req.display_name.is_some() || avatar_id.is_some();
    let patch = UserPatch {
        display_name: req.display_name,
        avatar_id,
        allow_dms_from: req.allow_dms_from.map(Into::into),
    };
    let u = state.accounts.update_profile(p.user_id, patch).await?;
    state.chat.user_changed(p.user_id);
    let me: Me = (&u).into();
    let public = serde_json::to_value(&me.user).unwrap_or_default();
    state.publisher.publish(
        "USER_UPDATE",
        format!("chat.user.{}", p.user_id),
        public.clone(),
    );
    if public_change {
        // A new name or avatar shows live to everyone who shares a
        // community (clients keep a user cache): one event per community,
        // routed like the community's other events.
        match state.chat.communities(p.user_id).await {
            Ok(list) => {
                for c in list {
                    state.publisher.publish(
                        "USER_UPDATE",
                        format!("chat.community.{}", c.id),
                        public.clone(),
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "announcing a profile change to communities"),
        }
    }
    Ok(Json(me))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn user(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    let id: UserId = path_id("id", &id)?;
    Ok(Json((&state.accounts.user(id).await?).into()))
}

/// The users you have blocked.
#[utoipa::path(get, path = "/api/v1/users/@me/blocks", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [User]), (status = 401, body = ErrorBody)))]
pub async fn blocks(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<User>>> {
    let list = state.chat.blocked(p.user_id).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// Blocks a user: they can no longer open a DM or group DM with you, nor
/// send into your 1:1 DM. They are not told.
#[utoipa::path(put, path = "/api/v1/users/@me/blocks/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn block(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let target: UserId = path_id("user_id", &id)?;
    state.chat.block(p.user_id, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unblocks a user.
#[utoipa::path(delete, path = "/api/v1/users/@me/blocks/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unblock(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let target: UserId = path_id("user_id", &id)?;
    state.chat.unblock(p.user_id, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(B32[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(B32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unbase32(s: &str) -> Option<Vec<u8>> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s
        .trim_end_matches('=')
        .chars()
        .filter(|c| !c.is_whitespace())
    {
        let v = B32
            .iter()
            .position(|&x| x as char == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// A new secret to put in an authenticator app; nothing changes until confirmed.
#[utoipa::path(post, path = "/api/v1/users/@me/mfa/totp", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = TotpSetup)))]
pub async fn totp_setup(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<TotpSetup>> {
    let u = state.accounts.user(p.user_id).await?;
    let secret = base32(&Accounts::new_totp_secret());
    let otpauth_uri = format!(
        "otpauth://totp/Hearth:{}?secret={secret}&issuer=Hearth&digits=6&period=30",
        u.username
    );
    Ok(Json(TotpSetup {
        secret,
        otpauth_uri,
    }))
}

#[utoipa::path(put, path = "/api/v1/users/@me/mfa/totp", tag = "users", security(("bearer" = [])), request_body = TotpEnableRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "invalid_credentials or mfa_required")))]
pub async fn totp_enable(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<TotpEnableRequest>,
) -> ApiResult<StatusCode> {
    let secret = unbase32(&req.secret).ok_or_else(|| ApiError::field("secret", "not base32"))?;
    state
        .accounts
        .enable_totp(
            p.user_id,
            req.password,
            req.current_code.as_deref(),
            &secret,
            &req.code,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/users/@me/mfa/totp", tag = "users", security(("bearer" = [])), request_body = PasswordConfirm,
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn totp_disable(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<PasswordConfirm>,
) -> ApiResult<StatusCode> {
    state
        .accounts
        .disable_totp(p.user_id, req.password, req.code.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base32_round_trip() {
        let data = b"12345678901234567890";
        let enc = super::base32(data);
        assert_eq!(enc, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(super::unbase32(&enc.to_lowercase()).unwrap(), data);
        assert!(super::unbase32("01!").is_none());
    }
}
