//! Cross-cutting request handling: request ids, tracing spans, metrics,
//! body-size and per-address rate limits, panics, security headers.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::{Body, BodyDataStream};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use hearth_state::{Decision, Quota};
use tokio::sync::oneshot;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::error::ApiError;
use super::extract::client_ip;
use crate::state::AppState;

/// Request id, span, latency histogram and counters by route; security headers.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/api/") {
                "unmatched".into()
            } else {
                "static".into()
            }
        });
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(String::from)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    let span = tracing::info_span!("request", %method, %route, request_id = %request_id, user_id = tracing::field::Empty, status = tracing::field::Empty);
    if req.headers().contains_key("traceparent") {
        // Continue the caller's W3C trace. Without trace export the propagator
        // is a no-op and there is no OpenTelemetry layer to set a parent in.
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&opentelemetry_http::HeaderExtractor(req.headers()))
        });
        let _ = span.set_parent(parent);
    }
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status();
    // i64: OpenTelemetry has no unsigned integers, and would export a u64 as text.
    span.record("status", i64::from(status.as_u16()));
    let elapsed = start.elapsed();
    state
        .metrics
        .http_requests
        .with_label_values(&[method.as_str(), &route, status.as_str()])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[method.as_str(), &route])
        .observe(elapsed.as_secs_f64());
    if status.is_server_error() {
        tracing::warn!(parent: &span, status = status.as_u16(), ms = elapsed.as_millis() as u64, "request failed");
    } else if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        // A refused attempt is the rules working, not a fault: info, with the
        // actor (the span's user_id) so abuse can be traced to an account.
        tracing::info!(parent: &span, status = status.as_u16(), ms = elapsed.as_millis() as u64, "request refused");
    } else {
        tracing::debug!(parent: &span, status = status.as_u16(), ms = elapsed.as_millis() as u64, "request");
    }
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// An upload's body left unread when its answer is ready (refused before or
/// while it streamed) is read and discarded up to this many bytes first;
/// past it the answer closes the connection.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// An upload's body as handlers see it. If whoever reads it stops before
/// its end (a refusal, an extractor's rejection, a type refused from the
/// first bytes), the rest comes back to [`limits`] when it is dropped.
struct Returning {
    body: Option<BodyDataStream>,
    back: Option<oneshot::Sender<BodyDataStream>>,
}

impl Stream for Returning {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let next = ready!(body.poll_next_unpin(cx));
        if next.is_none() {
            self.body = None;
        }
        Poll::Ready(next)
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        if let (Some(body), Some(back)) = (self.body.take(), self.back.take()) {
            let _ = back.send(body);
        }
    }
}

/// Answers `res` after reading and discarding what is left of a request's
/// body, up to [`DRAIN_LIMIT`] (past it the answer closes the connection): a
/// client still writing its body would otherwise see a broken pipe instead
/// of the answer.
async fn drain(mut body: BodyDataStream, res: Response) -> Response {
    let mut read = 0u64;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                read += bytes.len() as u64;
                if read > DRAIN_LIMIT {
                    return closing(res);
                }
            }
            Err(_) => return closing(res),
        }
    }
    res
}

fn closing(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// [`checks`], then, for uploads (multipart posts and resumable chunks),
/// the unread rest of the body is read before the answer goes (see
/// [`drain`]) unless the answer closes the connection anyway.
pub async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let kind = BodyKind::of(&req);
    if kind == BodyKind::Json {
        return checks(&state, req, next, kind).await;
    }
    let (back, mut rest) = oneshot::channel();
    let req = req.map(|b| {
        Body::from_stream(Returning {
            body: Some(b.into_data_stream()),
            back: Some(back),
        })
    });
    let res = checks(&state, req, next, kind).await;
    // The handler has returned: its request, and so the body, is dropped
    // unless it was handed to a task that still reads it.
    let closes = res
        .headers()
        .get(header::CONNECTION)
        .is_some_and(|v| v == "close");
    match rest.try_recv() {
        Ok(body) if !closes => drain(body, res).await,
        _ => res,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Upload,
    Chunk,
}

impl BodyKind {
    fn of(req: &Request) -> BodyKind {
        let path = req.uri().path();
        // Uploads stream past the JSON body limit; the media service enforces
        // theirs while the bytes arrive (a Content-Length may lie).
        if req.method() == Method::POST
            && path.starts_with("/api/")
            && (path.ends_with("/attachments")
                || path.ends_with("/icon")
                || path == "/api/v1/users/@me/avatar")
        {
            BodyKind::Upload
        } else if req.method() == Method::PATCH && path.starts_with("/api/v1/uploads/") {
            // A resumable upload's chunk: capped by its own limit (and, as it
            // streams, by what is left of the declared size).
            BodyKind::Chunk
        } else {
            BodyKind::Json
        }
    }
}

/// Refuses oversized bodies before parsing them, API calls while the database
/// is down (`db_gate`), and rate-limits API calls per client address.
async fn checks(state: &AppState, req: Request, next: Next, kind: BodyKind) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let max = match kind {
        BodyKind::Upload => state.cfg.media.max_upload_bytes + super::media::MULTIPART_OVERHEAD,
        BodyKind::Chunk => state.cfg.media.upload_chunk_max_bytes,
        BodyKind::Json => state.cfg.max_body_bytes as u64,
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        let res = ApiError::too_large(max as usize).into_response();
        if len > DRAIN_LIMIT {
            // Too big to be worth reading: answer and close the connection.
            return closing(res);
        }
        if kind == BodyKind::Json {
            return drain(req.into_body().into_data_stream(), res).await;
        }
        return res; // an upload's body is drained by `limits`
    }
    // The database is down: every API call needs it (the document does not).
    if is_api && state.db_gate.is_down() && req.uri().path() != "/api/v1/openapi.json" {
        let mut res = ApiError::unavailable("the database").into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return res;
    }
    let rl = &state.cfg.rate_limit;
    if is_api && rl.enabled && req.method() != Method::OPTIONS {
        let peer = req
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let ip = client_ip(req.headers(), peer, state.cfg.trust_forwarded_for);
        let q = Quota {
            per_second: rl.per_ip_per_second,
            burst: rl.per_ip_burst,
        };
        if let Decision::Limited { retry_after } = state.limiter.check(&format!("ip:{ip}"), q).await
        {
            return ApiError::rate_limited(retry_after.as_millis() as u64).into_response();
        }
    }
    next.run(req).await
}

pub async fn api_not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route").into_response()
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}
