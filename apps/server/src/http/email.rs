//! Account mail: email verification, password reset, email change
//! (issue #13). Every mail goes through the outbox (`crate::mail`), so
//! these answer as soon as the mail is queued, whether or not the mail
//! server is up. With mail off (`smtp_url` empty) they answer 503.
//!
//! Password reset never tells whether an account exists: the request is
//! answered 202 before the account is even looked up (the lookup and the
//! mail happen in a task), and its rate limits key on the login as typed
//! and the address, never on the account.

use axum::extract::State;
use axum::http::StatusCode;
use hearth_accounts::{EMAIL_TOKEN_TTL, EmailConfirmed, TokenPurpose};
use hearth_mail::Template;
use hearth_state::{Decision, Quota};
use hearth_types::UserId;
use serde_json::json;
use std::sync::Arc;

use super::auth::{announce_revoked, auth_rate_limit};
use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, ClientIp};
use super::wire::*;
use crate::mail::Mail;
use crate::state::AppState;

fn mail(state: &AppState) -> ApiResult<Arc<Mail>> {
    state
        .mail
        .clone()
        .ok_or_else(|| ApiError::unavailable("mail (no smtp_url is configured)"))
}

/// Mails one person can cause: three, then one a minute, per key. Mail
/// costs the server's reputation with mail providers, so these are
/// tighter than the API's own limits.
async fn mail_rate_limit(state: &AppState, key: String) -> ApiResult<()> {
    if state.cfg.rate_limit.enabled {
        let q = Quota {
            per_second: 1.0 / 60.0,
            burst: 3,
        };
        if let Decision::Limited { retry_after } = state.limiter.check(&key, q).await {
            return Err(ApiError::rate_limited(retry_after.as_millis() as u64));
        }
    }
    Ok(())
}

fn name(u: &hearth_store::UserRecord) -> String {
    u.display_name.clone().unwrap_or_else(|| u.username.clone())
}

/// A dedupe key for a mail a request asks for: each request is one mail.
fn once(kind: &str) -> String {
    format!("{kind}:{:016x}", rand::random::<u64>())
}

/// # Send a verification mail
///
/// Mails a single-use link (24 hours) that proves your address; open it
/// (or post its token to `/auth/verify-email`) to verify. At most three,
/// then one a minute.
#[utoipa::path(post, path = "/api/v1/users/@me/email/verify", tag = "users", security(("bearer" = [])),
    responses((status = 202, description = "queued"), (status = 400, body = ErrorBody, description = "no address, or mail to it was refused (reason email_bounced)"),
        (status = 409, body = ErrorBody, description = "already verified")))]
pub async fn request_verification(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<StatusCode> {
    let mail = mail(&state)?;
    let u = state.accounts.user(p.user_id).await?;
    let Some(email) = u.email.clone() else {
        return Err(ApiError::field("email", "the account has no email address"));
    };
    if u.email_verified_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "your email address is verified already",
        ));
    }
    if u.email_bounced_at.is_some() {
        return Err(
            ApiError::field("email", "mail to this address was refused; change it")
                .details(json!({ "fields": { "email": "mail to this address was refused" }, "reason": "email_bounced" })),
        );
    }
    mail_rate_limit(&state, format!("mail-verify:{}", u.id)).await?;
    let token = state
        .accounts
        .issue_token(u.id, TokenPurpose::VerifyEmail, &email, EMAIL_TOKEN_TTL)
        .await?;
    let template = Template::VerifyEmail {
        username: name(&u),
        link: mail.link("verify-email", &token),
    };
    mail.enqueue(once("verify_email"), Some(u.id), &email, template)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// # Verify an email address
///
/// Redeems the token of a verification mail (the address is verified) or
/// of an email-change mail (the account's address becomes the new one,
/// verified). Needs no sign-in: the token is the proof. A token works
/// once; an unknown, used or expired one answers 400 `invalid_request`
/// with `details.reason` `token_invalid`, `token_used` or `token_expired`.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses((status = 204), (status = 400, body = ErrorBody, description = "details.reason: token_invalid, token_used or token_expired"),
        (status = 409, body = ErrorBody, description = "the new address was taken meanwhile")))]
pub async fn verify_email(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(req): Body<VerifyEmailRequest>,
) -> ApiResult<StatusCode> {
    // Token guessing is hopeless (256 bits), but keep it as slow as sign-in.
    auth_rate_limit(&state, &ip).await?;
    match state.accounts.confirm_email(&req.token).await? {
        EmailConfirmed::Verified(u) => tracing::info!(user = %u.id, "email verified"),
        EmailConfirmed::Changed { user, .. } => {
            tracing::info!(user = %user.id, "email changed");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// # Ask for a password reset
///
/// Always 202, whether or not an account has that username or email:
/// the answer never tells. If one does and its address is not known to
/// refuse mail, it gets a single-use link (valid `password_reset_ttl_secs`,
/// 30 minutes by default). Unverified addresses get it too (opening the
/// link verifies them); an account without an address cannot be reset.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, description = "a mail is queued if the account exists")))]
pub async fn password_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(req): Body<PasswordResetRequest>,
) -> ApiResult<StatusCode> {
    auth_rate_limit(&state, &ip).await?;
    let mail = mail(&state)?;
    let login: String = req.login.trim().to_lowercase().chars().take(254).collect();
    if login.is_empty() {
        return Err(ApiError::field("login", "must not be empty"));
    }
    mail_rate_limit(&state, format!("mail-reset:{login}")).await?;
    // Answered before the lookup, so the time taken tells nothing either.
    let st = state.clone();
    tokio::spawn(async move {
        if let Err(e) = send_reset(&st, &mail, &login).await {
            tracing::warn!(error = %e, "queueing a password-reset mail");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

async fn send_reset(
    state: &AppState,
    mail: &Mail,
    login: &str,
) -> Result<(), hearth_accounts::AccountsError> {
    let Some(u) = state.accounts.user_by_login(login).await? else {
        tracing::info!("password reset for an unknown login");
        return Ok(());
    };
    let Some(to) = Mail::mailable(&u) else {
        tracing::info!(user = %u.id, "password reset for an account without a mailable address");
        return Ok(());
    };
    let token = state
        .accounts
        .issue_token(u.id, TokenPurpose::PasswordReset, to, mail.reset_ttl)
        .await?;
    let template = Template::PasswordReset {
        username: name(&u),
        link: mail.link("reset-password", &token),
        valid_minutes: mail.reset_ttl.as_secs().div_ceil(60),
    };
    mail.enqueue(once("password_reset"), Some(u.id), to, template)
        .await?;
    Ok(())
}

/// # Set a new password with a reset token
///
/// The token works once. Every session of the account is revoked: its
/// tokens stop working on every node and its sockets close with 4010, as
/// a logout does. Other reset links of the account stop working too.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm,
    responses((status = 204), (status = 400, body = ErrorBody, description = "a bad password (fields.password), or details.reason token_invalid, token_used or token_expired")))]
pub async fn password_reset_confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(req): Body<PasswordResetConfirm>,
) -> ApiResult<StatusCode> {
    auth_rate_limit(&state, &ip).await?;
    let (user, revoked) = state
        .accounts
        .reset_password(&req.token, req.password)
        .await?;
    tracing::info!(%user, sessions = revoked.len(), "password reset; every session revoked");
    for sid in revoked {
        announce_revoked(&state, user, sid);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// # Change your email address
///
/// Needs your password (and a current code when two-factor sign-in is
/// on). The new address gets a single-use confirmation link (24 hours);
/// the change applies when it is opened. The current address, if any,
/// gets a notice.
#[utoipa::path(patch, path = "/api/v1/users/@me/email", tag = "users", security(("bearer" = [])), request_body = ChangeEmailRequest,
    responses((status = 202, description = "the confirmation is queued"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody, description = "invalid_credentials or mfa_required"), (status = 409, body = ErrorBody, description = "another account has that address")))]
pub async fn change_email(
    State(state): State<AppState>,
    Auth(p): Auth,
    Body(req): Body<ChangeEmailRequest>,
) -> ApiResult<StatusCode> {
    let mail = mail(&state)?;
    let (u, new_email) = state
        .accounts
        .check_email_change(
            p.user_id,
            req.password,
            req.totp_code.as_deref(),
            &req.email,
        )
        .await?;
    // Counted once the request would mail: only mails spend the budget.
    mail_rate_limit(&state, format!("mail-change:{}", p.user_id)).await?;
    let token = state
        .accounts
        .issue_token(u.id, TokenPurpose::EmailChange, &new_email, EMAIL_TOKEN_TTL)
        .await?;
    let confirm = Template::EmailChangeConfirm {
        username: name(&u),
        new_email: new_email.clone(),
        link: mail.link("verify-email", &token),
    };
    mail.enqueue(
        once("email_change_confirm"),
        Some(u.id),
        &new_email,
        confirm,
    )
    .await?;
    if let Some(old) = Mail::mailable(&u) {
        let notice = Template::EmailChangeNotice {
            username: name(&u),
            new_email,
        };
        mail.enqueue(once("email_change_notice"), Some(u.id), old, notice)
            .await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Announces a new account on the bus (`USER_CREATED` on
/// `chat.account.<id>`): the welcome mail's consumer picks it up.
pub fn announce_created(state: &AppState, user: UserId) {
    use crate::events::{EventKind, Subject};
    state.publisher.publish_event(
        EventKind::UserCreated,
        Subject::Account(user),
        json!({ "user_id": user.to_string() }),
    );
}
