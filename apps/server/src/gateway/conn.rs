//! One WebSocket connection: hello, identify or resume, heartbeats, limits,
//! and pumping the session's frames out.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt};
use hearth_accounts::Principal;
use serde_json::json;

use hearth_state::SessionMeta;

use super::hub::{Kind, Link, Session};
use super::protocol::{ClientOp, MAX_FRAME_BYTES, MAX_FRAMES_PER_MINUTE, close, decode, tail_of};
use super::ready;
use super::resume;
use crate::state::AppState;

struct Conn {
    session: Option<Arc<Session>>,
    link: Option<Arc<Link>>,
}

async fn send_close(ws: &mut WebSocket, code: u16, reason: &str) {
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason.to_string()),
        })))
        .await;
}

async fn send_json(ws: &mut WebSocket, v: serde_json::Value) -> bool {
    ws.send(Message::Text(Utf8Bytes::from(v.to_string())))
        .await
        .is_ok()
}

pub async fn run(mut ws: WebSocket, state: AppState) {
    let interval = Duration::from_millis(state.cfg.gateway_heartbeat_ms);
    if !send_json(
        &mut ws,
        json!({ "op": "hello", "d": { "heartbeat_interval_ms": interval.as_millis() as u64 } }),
    )
    .await
    {
        return;
    }
    let grace = interval + interval / 2;
    let mut deadline = tokio::time::Instant::now() + grace;
    let mut recent: VecDeque<Instant> = VecDeque::new();
    let mut conn = Conn {
        session: None,
        link: None,
    };
    let closing: Option<(u16, &'static str)> = loop {
        let out = async {
            match (&conn.link, &conn.session) {
                (Some(l), Some(s)) => {
                    l.woken().await;
                    s.take(l)
                }
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break Some((close::SESSION_TIMED_OUT, "no heartbeat")),
            o = out => match o {
                Ok(frames) => {
                    // Everything due goes out in as few writes as the
                    // socket takes: buffered, then one flush.
                    let mut failed = false;
                    for f in frames {
                        if ws.feed(Message::Text(Utf8Bytes::from(f))).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed || ws.flush().await.is_err() { break None; }
                }
                Err((code, why)) => break Some((code, why)),
            },
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => break Some((close::DECODE_ERROR, "binary frames are not accepted")),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(_)) => break Some((close::MESSAGE_TOO_BIG, "frame too large or malformed")),
                };
                let now = Instant::now();
                recent.push_back(now);
                while recent.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60)) {
                    recent.pop_front();
                }
                if recent.len() > MAX_FRAMES_PER_MINUTE {
                    break Some((close::RATE_LIMITED, "more than 120 frames a minute"));
                }
                if text.len() > MAX_FRAME_BYTES {
                    break Some((close::MESSAGE_TOO_BIG, "frame over 64 KiB"));
                }
                let op = match decode(text.as_str()) {
                    Ok(op) => op,
                    Err(r) => break Some((r.code, r.reason)),
                };
                // Boxed: identify and resume are large futures (READY, the
                // session record), and only live while handling; inline they
                // would grow every idle connection's task by their size.
                match Box::pin(handle(&state, &mut ws, &mut conn, op)).await {
                    Ok(Some(beat)) => if beat { deadline = tokio::time::Instant::now() + grace; },
                    Ok(None) => {}
                    Err((code, why)) => break Some((code, why)),
                }
            }
        }
    };
    if let Some((code, why)) = closing {
        send_close(&mut ws, code, why).await;
    }
    detach(&state, &conn, code_is_final(closing.map(|c| c.0)));
}

/// Revocations and explicit failures end the session; a dropped connection
/// or a slow reader leaves it resumable.
fn code_is_final(code: Option<u16>) -> bool {
    matches!(
        code,
        Some(close::SESSION_REVOKED | close::AUTHENTICATION_FAILED)
    )
}

fn detach(state: &AppState, conn: &Conn, finished: bool) {
    if let Some(s) = &conn.session {
        if let Some(l) = &conn.link {
            s.detach(l, finished);
        }
        // A finished session can never be resumed anywhere: drop its record.
        if finished && let Some(r) = state.hub.recorder.clone() {
            let id = s.id.clone();
            tokio::spawn(async move {
                let _ = r.log.remove(&id).await;
            });
        }
    }
}

async fn authenticate(state: &AppState, token: &str) -> Result<Principal, (u16, &'static str)> {
    state
        .accounts
        .authenticate(token)
        .await
        .map_err(|_| (close::AUTHENTICATION_FAILED, "authentication failed"))
}

/// Handles one op. `Ok(Some(true))` means it counts as a heartbeat.
async fn handle(
    state: &AppState,
    ws: &mut WebSocket,
    conn: &mut Conn,
    op: ClientOp,
) -> Result<Option<bool>, (u16, &'static str)> {
    match op {
        ClientOp::Heartbeat { s } => {
            if let (Some(seen), Some(sess)) = (s, &conn.session)
                && seen > sess.inner.lock().sent
            {
                return Err((
                    close::INVALID_SEQUENCE,
                    "heartbeat acknowledges a sequence never sent",
                ));
            }
            if let Some(sess) = &conn.session {
                sess.touch();
            }
            let _ = send_json(ws, json!({ "op": "heartbeat_ack", "d": {} })).await;
            Ok(Some(true))
        }
        ClientOp::Identify { token } => {
            if conn.session.is_some() {
                return Err((close::ALREADY_AUTHENTICATED, "already identified"));
            }
            let p = authenticate(state, &token).await?;
            let link = Arc::new(Link::default());
            let session = state.hub.new_session(
                format!("{:032x}", rand::random::<u128>()),
                p.user_id,
                p.session_id,
            );
            session.attach(link.clone(), 0);
            if let Some(r) = &state.hub.recorder {
                let meta = SessionMeta {
                    user: p.user_id.0,
                    auth_session: p.session_id.0,
                };
                match r.log.open(&session.id, &meta, 1, &[], r.ttl).await {
                    Ok(generation) => {
                        let mut g = session.inner.lock();
                        g.generation = generation;
                        g.record_first = 1;
                    }
                    // Still usable; only resuming on another node is lost.
                    Err(e) => tracing::warn!(error = %e, "opening a session record"),
                }
            }
            // Registered before READY is built, so nothing published meanwhile
            // is lost; it is sequenced right after READY.
            state.hub.insert(session.clone());
            let ready = match ready::build(state, &session).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "building READY");
                    session.close(close::UNKNOWN_ERROR, "could not build READY");
                    return Err((close::UNKNOWN_ERROR, "could not build READY"));
                }
            };
            let ev = json!({ "t": "READY", "d": ready }).to_string();
            let tail: Arc<str> = Arc::from(tail_of(&ev).unwrap_or("\"t\":\"READY\",\"d\":{}}"));
            session.finish(vec![(Kind::Marker, tail)], None);
            crate::gateway::presence(state, p.user_id, "online");
            conn.session = Some(session);
            conn.link = Some(link);
            Ok(Some(true))
        }
        ClientOp::Resume {
            token,
            session_id,
            s,
        } => {
            if conn.session.is_some() {
                return Err((close::ALREADY_AUTHENTICATED, "already identified"));
            }
            let p = authenticate(state, &token).await?;
            let link = Arc::new(Link::default());
            let (place, outcome) = match state.hub.get(&session_id) {
                Some(sess) if sess.user == p.user_id => (
                    "local",
                    resume::local(&sess, s, link.clone()).then_some(sess),
                ),
                Some(_) => ("local", None),
                None => (
                    "remote",
                    resume::remote(state, &p, &session_id, s, link.clone()).await,
                ),
            };
            state
                .metrics
                .gateway_resumes
                .with_label_values(&[
                    place,
                    if outcome.is_some() {
                        "resumed"
                    } else {
                        "invalid"
                    },
                ])
                .inc();
            let Some(session) = outcome else {
                let _ = send_json(
                    ws,
                    json!({ "op": "invalid_session", "d": { "resumable": false } }),
                )
                .await;
                return Ok(Some(true));
            };
            if state.hub.presence_of(p.user_id).is_none() {
                crate::gateway::presence(state, p.user_id, "online");
            }
            conn.session = Some(session);
            conn.link = Some(link);
            Ok(Some(true))
        }
        ClientOp::PresenceUpdate { status } => {
            let Some(sess) = &conn.session else {
                return Err((close::NOT_AUTHENTICATED, "identify first"));
            };
            crate::gateway::presence(state, sess.user, status.public());
            Ok(None)
        }
    }
}
