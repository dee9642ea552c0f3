//! Request extractors that answer in the contract's error shape: JSON bodies
//! (415 without a JSON content type, 413 over the limit, 400 naming the bad
//! field, unknown fields included), bearer auth with the per-user rate
//! limit, IDs in paths and list cursors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use hearth_accounts::Principal;
use hearth_state::{Decision, Quota};
use hearth_store::Page;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A JSON body; unknown fields are refused by the types' `deny_unknown_fields`.
pub struct Body<T>(pub T);

/// A JSON body that may be absent (empty, or `null`), in which case `T::default()`.
pub struct OptionalBody<T>(pub T);

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn read_bytes(req: Request, state: &AppState) -> ApiResult<bytes::Bytes> {
    bytes::Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(state.cfg.max_body_bytes)
        } else {
            ApiError::bad_body("could not read the body")
        }
    })
}

/// Every body is a JSON object: serde would also fill a struct from an
/// array (`[null, null]` setting its fields in order), which no client means.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::bad_body("expected a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::bad_body(inner.to_string())
        } else {
            ApiError::field(&path, inner.to_string())
        }
    })?;
    Ok(value)
}

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        if !is_json(&req) {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = read_bytes(req, state).await?;
        parse_json(&bytes).map(Body)
    }
}

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        let json = is_json(&req);
        let bytes = read_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
            return Ok(OptionalBody(T::default()));
        }
        if !json {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        parse_json(&bytes).map(OptionalBody)
    }
}

/// The authenticated caller. Also counts the request against the per-user limit.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(ApiError::unauthorized)?;
        authenticate(state, token.trim()).await.map(Auth)
    }
}

/// Checks an access token and counts the request against the per-user limit.
async fn authenticate(state: &AppState, token: &str) -> ApiResult<Principal> {
    let p = state.accounts.authenticate(token).await?;
    tracing::Span::current().record("user_id", p.user_id.0);
    let rl = &state.cfg.rate_limit;
    if rl.enabled {
        let quota = Quota {
            per_second: rl.per_user_per_second,
            burst: rl.per_user_burst,
        };
        if let Decision::Limited { retry_after } = state
            .limiter
            .check(&format!("user:{}", p.user_id), quota)
            .await
        {
            return Err(ApiError::rate_limited(retry_after.as_millis() as u64));
        }
    }
    Ok(p)
}

/// The caller of a file route: a bearer token, or else the web app's
/// `hearth_files` cookie (the access token again, `HttpOnly`,
/// `SameSite=Strict`), so `<img>`, `<video>` and downloads in the browser can
/// fetch files that are access-checked like messages. Only file reads accept
/// the cookie: they change nothing, so a cookie riding along cannot be used
/// to act as the user.
pub struct FileAuth(pub Principal);

impl FromRequestParts<AppState> for FileAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Auth::from_request_parts(parts, state)
                .await
                .map(|a| FileAuth(a.0));
        }
        let token = super::auth::cookie(&parts.headers, super::auth::FILES_COOKIE)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        authenticate(state, token.trim()).await.map(FileAuth)
    }
}

/// The caller if a valid token was sent, else nobody (for public previews).
pub struct MaybeAuth(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            Auth::from_request_parts(parts, state)
                .await
                .map(|a| MaybeAuth(Some(a.0)))
        } else {
            Ok(MaybeAuth(None))
        }
    }
}

/// The client address: the socket peer, or the first `X-Forwarded-For` hop
/// when configured to trust a proxy.
pub fn client_ip(
    parts_headers: &axum::http::HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded: bool,
) -> String {
    if trust_forwarded
        && let Some(ip) = parts_headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    {
        return match ip.parse::<std::net::IpAddr>() {
            Ok(addr) => address_key(addr),
            Err(_) => ip.chars().take(64).collect(),
        };
    }
    peer.map_or_else(|| "unknown".into(), |p| address_key(p.ip()))
}

/// The "address" limits are kept per: an IPv4 address, or an IPv6 /64 (one
/// host usually holds a whole /64, so per-address limits on single IPv6
/// addresses would be no limit at all). IPv4-mapped IPv6 is the IPv4 address.
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod address_tests {
    use super::address_key;

    #[test]
    fn ipv6_is_kept_per_64() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        let c = address_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(address_key("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(address_key("10.1.2.3".parse().unwrap()), "10.1.2.3");
    }
}

pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(ClientIp(client_ip(
            &parts.headers,
            peer,
            state.cfg.trust_forwarded_for,
        )))
    }
}

/// Parses an ID from a path segment; a malformed one names the parameter.
pub fn path_id<T: FromStr>(name: &str, raw: &str) -> ApiResult<T> {
    raw.parse()
        .map_err(|_| ApiError::field(name, "not an ID (a positive decimal number)"))
}

/// `?limit=&before=&after=` as the contract defines them.
pub fn page<I: FromStr + Copy>(q: &HashMap<String, String>) -> ApiResult<Page<I>> {
    let limit = match q.get("limit") {
        None => 50,
        Some(s) => match s.parse::<u32>() {
            Ok(n @ 1..=100) => n,
            _ => return Err(ApiError::field("limit", "an integer from 1 to 100")),
        },
    };
    let cursor = |k: &str| q.get(k).map(|v| path_id::<I>(k, v)).transpose();
    Ok(Page {
        before: cursor("before")?,
        after: cursor("after")?,
        limit,
    })
}

/// For PATCH fields where `null` means "clear" and absence means "leave":
/// use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
