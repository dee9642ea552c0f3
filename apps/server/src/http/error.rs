//! The one place where domain errors become the contract's error shape:
//! `{"error": {"code", "message", "details"}}` with the fitting status.
//! Unexpected errors are logged with their cause and answer an opaque 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_accounts::AccountsError;
use hearth_chat::ChatError;
use hearth_store::StoreError;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: json!({}),
            retry_after_ms: None,
        }
    }

    pub fn details(mut self, d: Value) -> Self {
        self.details = d;
        self
    }

    /// 400 naming the field that is wrong.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field}: {reason}"),
        )
        .details(json!({ "fields": { field: reason } }))
    }

    pub fn bad_body(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("invalid JSON body: {reason}"),
        )
        .details(json!({ "fields": { "body": reason } }))
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid access token is required",
        )
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over {limit} bytes"),
        )
        .details(json!({ "max_bytes": limit }))
    }

    pub fn rate_limited(retry_after_ms: u64) -> Self {
        let retry_after_ms = retry_after_ms.max(1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        )
        .details(json!({ "retry_after_ms": retry_after_ms }));
        e.retry_after_ms = Some(retry_after_ms);
        e
    }

    pub fn unavailable(what: &str) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what} is unavailable; try again shortly"),
        )
    }

    /// Logs the real cause; the client learns nothing of it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(ms) = self.retry_after_ms {
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("conflict on {what}"),
            ),
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                ApiError::unavailable("the database")
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::NotFound => ApiError::not_found(),
            ChatError::Forbidden(missing) => {
                let names = missing.names();
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("missing permission: {}", names.join(", ")),
                )
                .details(json!({ "missing_permissions": names }))
            }
            ChatError::Refused(why) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", why)
                .details(json!({ "reason": why })),
            ChatError::Invalid(field, reason) => ApiError::field(field, reason),
            ChatError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, "conflict", why),
            ChatError::Limited {
                what,
                retry_after_ms,
            } => {
                let mut e = ApiError::rate_limited(retry_after_ms);
                e.message = what.to_string();
                e
            }
            ChatError::Store(s) => s.into(),
            ChatError::Unavailable(what) => ApiError::unavailable(what),
            ChatError::Blocked { rule_id, rule_name } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "automod_blocked",
                format!("this message was blocked by the rule \"{rule_name}\""),
            )
            .details(json!({ "rule_id": rule_id.to_string(), "rule_name": rule_name })),
        }
    }
}

impl From<hearth_moderation::ModerationError> for ApiError {
    fn from(e: hearth_moderation::ModerationError) -> Self {
        use hearth_moderation::ModerationError as M;
        let code = e.code();
        match &e {
            M::Store(_) | M::Engine(_) => ApiError::internal(e),
            // The contract's 403: code `forbidden`, details naming what is missing.
            M::Forbidden { object, action, .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
                    .details(json!({ "missing_permission": format!("{object}:{action}") }))
            }
            M::InvalidTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
                    .details(json!({ "reason": code }))
            }
            M::InvalidRule { rule, .. }
            | M::InvalidKeyword { rule, .. }
            | M::InvalidRegex { rule, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()).details(json!({
                    "rule_id": rule.id.to_string(),
                    "rule_name": rule.name.as_ref(),
                    "reason": e.to_string(),
                }))
            }
            // Staff policy edits: the contract's 400 naming the field, and
            // 409 for the one refusal that is about the policy's state.
            M::UnknownObject(_) | M::UnknownAction { .. } | M::BuiltInRole => {
                ApiError::field("permission", e.to_string())
            }
            M::InvalidRole(_) => ApiError::field("role", e.to_string()),
            M::LastAdmin(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            M::DuplicateRuleId(id) => ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
                .details(json!({ "rule_id": id.to_string() })),
            _ => ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()),
        }
    }
}

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> Self {
        match e {
            AccountsError::Invalid(field, reason) => ApiError::field(field, reason),
            AccountsError::Taken(field) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("that {field} is already taken"),
            )
            .details(json!({ "fields": { field: "already taken" } })),
            AccountsError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong login or password",
            ),
            AccountsError::MfaRequired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mfa_required",
                "this account needs a one-time code (totp_code)",
            ),
            AccountsError::TokenReused { .. } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_reused",
                "this refresh token was already used; the session has been signed out",
            ),
            AccountsError::Unauthorized => ApiError::unauthorized(),
            AccountsError::NotFound => ApiError::not_found(),
            AccountsError::Suspended => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this account is suspended",
            )
            .details(json!({ "reason": "account_suspended" })),
            // 400 invalid_request naming the field, with a code per problem
            // so clients can say "ask for a new link" or "check the link".
            AccountsError::Token(problem) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("token: {}", problem.reason()),
            )
            .details(json!({ "fields": { "token": problem.reason() }, "reason": problem.code() })),
            AccountsError::Store(s) => s.into(),
            AccountsError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
