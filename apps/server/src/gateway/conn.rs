//! One WebSocket connection: hello, identify or resume, heartbeats, limits,
//! and pumping the session's frames out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_accounts::Principal;
use serde_json::json;

use hearth_state::SessionMeta;
use hearth_types::{CommunityId, UserId};

use super::hub::{Kind, Link, Session};
use super::inbound::{FrameError, Incoming};
use super::limits::FrameWindow;
use super::protocol::{ClientOp, MAX_FRAME_BYTES, MAX_FRAMES_PER_MINUTE, close, decode, tail_of};
use super::ready;
use super::resume;
use super::socket::Socket;
use crate::http::wire;
use crate::state::AppState;
use crate::voice::Voice;

struct Conn {
    session: Option<Arc<Session>>,
    link: Option<Arc<Link>>,
}

/// Sends a close frame, then reads (and drops) what the client still sends
/// until its own close, for at most [`CLOSE_WAIT`]: the closing handshake.
/// Dropping the socket with the client's frames unread would make the
/// kernel answer with a reset, which can destroy the close frame (and its
/// code) before the client reads it: a client flooding frames would see
/// its connection reset instead of 4008.
async fn send_close(ws: &mut Socket, code: u16, reason: &str) {
    if ws.close(code, reason).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            if m == Incoming::Close {
                break;
            }
        }
    })
    .await;
}

/// The longest a closing connection waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

async fn send_json(ws: &mut Socket, v: serde_json::Value) -> bool {
    ws.text(&v.to_string()).await.is_ok()
}

pub async fn run(mut ws: Socket, state: AppState) {
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
    let mut window = FrameWindow::new(MAX_FRAMES_PER_MINUTE, Duration::from_secs(60));
    let mut conn = Conn {
        session: None,
        link: None,
    };
    let closing: Option<Closing> = loop {
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
                    // socket takes, straight from the shared bytes. A
                    // reader that takes nothing for a while fails the
                    // write (see `socket::STALL`): the connection drops and
                    // the session stays resumable.
                    if ws.dispatches(&frames).await.is_err() { break None; }
                }
                Err((code, why)) => break Some((code, why)),
            },
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Incoming::Text(t))) => t,
                    Some(Ok(Incoming::Binary)) => break Some((close::DECODE_ERROR, "binary frames are not accepted")),
                    Some(Ok(Incoming::Ping(p))) => {
                        if ws.pong(&p).await.is_err() { break None; }
                        continue;
                    }
                    Some(Ok(Incoming::Pong)) => continue,
                    Some(Ok(Incoming::Close)) | None => break None,
                    Some(Err(FrameError::TooBig)) => break Some((close::MESSAGE_TOO_BIG, "frame over 1 MiB")),
                    Some(Err(e)) => break Some((close::DECODE_ERROR, e.reason())),
                };
                if !window.admit(Instant::now()) {
                    break Some((close::RATE_LIMITED, "more than 120 frames a minute"));
                }
                if text.len() > MAX_FRAME_BYTES {
                    break Some((close::MESSAGE_TOO_BIG, "frame over 64 KiB"));
                }
                let op = match decode(&text) {
                    Ok(op) => op,
                    Err(r) => break Some((r.code, r.reason)),
                };
                // Boxed: identify and resume are large futures (READY, the
                // session record), and only live while handling; inline they
                // would grow every idle connection's task by their size.
                match Box::pin(handle(&state, &mut ws, &mut conn, op)).await {
                    Ok(Beat::Yes) => deadline = tokio::time::Instant::now() + grace,
                    Ok(Beat::No) => {}
                    Err((code, why)) => break Some((code, why)),
                }
            }
        }
    };
    if let Some((code, why)) = closing {
        if code == close::RECONNECT {
            // The node drains: resume elsewhere (the socket closes next, so
            // a client that ignores the op still reconnects).
            let _ = send_json(&mut ws, json!({ "op": "reconnect", "d": {} })).await;
        }
        send_close(&mut ws, code, why).await;
    }
    detach(&state, &conn, code_is_final(closing.map(|c| c.0))).await;
}

/// Revocations and explicit failures end the session; a dropped connection
/// or a slow reader leaves it resumable.
fn code_is_final(code: Option<u16>) -> bool {
    matches!(
        code,
        Some(close::SESSION_REVOKED | close::AUTHENTICATION_FAILED)
    )
}

async fn detach(state: &AppState, conn: &Conn, finished: bool) {
    if let Some(s) = &conn.session {
        if let Some(l) = &conn.link {
            s.detach(l, finished);
        }
        // No connection attached any more (a resume elsewhere may already
        // hold it again): the user's slot is free, and the user keeps a
        // bounded number of resumable sessions here.
        if s.inner.lock().link.is_none() {
            state.hub.limits.give_slot(s.user, &s.id).await;
            state
                .hub
                .trim_detached(s.user, state.cfg.gateway_max_sessions_per_user);
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

async fn authenticate(state: &AppState, token: &str) -> Result<Principal, Closing> {
    state
        .accounts
        .authenticate(token)
        .await
        .map_err(|_| (close::AUTHENTICATION_FAILED, "authentication failed"))
}

/// Why a connection closes: a contract code and a reason.
type Closing = (u16, &'static str);

/// What an op means for the connection's heartbeat deadline.
#[derive(Debug, PartialEq, Eq)]
enum Beat {
    /// Counts as a heartbeat (the deadline moves).
    Yes,
    No,
}

/// Handles one op: one function per op, below.
async fn handle(
    state: &AppState,
    ws: &mut Socket,
    conn: &mut Conn,
    op: ClientOp,
) -> Result<Beat, Closing> {
    match op {
        ClientOp::Heartbeat { s } => heartbeat(ws, conn, s).await,
        ClientOp::Identify { token } => identify(state, conn, &token).await,
        ClientOp::Resume {
            token,
            session_id,
            s,
        } => resume(state, ws, conn, &token, &session_id, s).await,
        ClientOp::PresenceUpdate { status } => {
            let sess = identified(conn)?;
            crate::gateway::presence(state, sess.user, status.public());
            Ok(Beat::No)
        }
        ClientOp::RequestMembers {
            community_id,
            after,
            limit,
        } => request_members(state, identified(conn)?, community_id, after, limit).await,
        ClientOp::SubscribePresence { user_ids } => {
            // Only users sharing a community with this session are ever
            // sent (checked at fan-out), so subscribing to strangers
            // reveals nothing.
            let sess = identified(conn)?;
            state.hub.watch(sess, user_ids.into_iter().collect());
            Ok(Beat::No)
        }
        ClientOp::VoiceJoin {
            channel_id,
            self_mute,
            self_deaf,
        } => {
            Voice::join(state, identified(conn)?, channel_id, self_mute, self_deaf).await;
            Ok(Beat::No)
        }
        ClientOp::VoiceLeave => {
            Voice::leave(state, identified(conn)?).await;
            Ok(Beat::No)
        }
        ClientOp::VoiceState(flags) => {
            Voice::update(state, identified(conn)?, flags).await;
            Ok(Beat::No)
        }
        ClientOp::VoiceSignal(signal) => {
            Voice::signal(state, identified(conn)?, signal).await;
            Ok(Beat::No)
        }
        ClientOp::VoiceLayer { user_id, layer } => {
            Voice::layer(state, identified(conn)?, user_id, layer);
            Ok(Beat::No)
        }
    }
}

/// `request_members {community_id, after?, limit?}`: one page of members
/// (by user id, after the cursor) with their statuses, as a `MEMBERS_CHUNK`
/// dispatch. A community the user is not in answers an empty chunk with
/// `not_found: true`, as REST would answer 404.
async fn request_members(
    state: &AppState,
    session: &Arc<Session>,
    community: CommunityId,
    after: Option<UserId>,
    limit: u32,
) -> Result<Beat, Closing> {
    let d = match state
        .chat
        .members(community, session.user, after, limit)
        .await
    {
        Ok(members) => {
            let ids: Vec<i64> = members.iter().map(|m| m.user.id.0).collect();
            let presences = super::presence::of(state, &ids).await;
            let next = (members.len() as u32 == limit)
                .then(|| members.last().map(|m| m.user.id.to_string()))
                .flatten();
            json!({
                "community_id": community.to_string(),
                "members": members.iter().map(wire::Member::from).collect::<Vec<_>>(),
                "presences": presences.iter().map(|(u, st)| json!({ "user_id": u.to_string(), "status": st })).collect::<Vec<_>>(),
                "next_after": next,
            })
        }
        Err(hearth_chat::ChatError::NotFound) => json!({
            "community_id": community.to_string(),
            "members": [],
            "presences": [],
            "next_after": null,
            "not_found": true,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "loading members for a gateway request");
            return Err((close::UNKNOWN_ERROR, "could not load members"));
        }
    };
    let ev = json!({ "t": "MEMBERS_CHUNK", "d": d }).to_string();
    if let Some(tail) = tail_of(&ev) {
        session.push(Kind::Inline, &Arc::from(tail));
    }
    Ok(Beat::No)
}

fn identified(conn: &Conn) -> Result<&Arc<Session>, Closing> {
    conn.session
        .as_ref()
        .ok_or((close::NOT_AUTHENTICATED, "identify first"))
}

fn not_yet_identified(conn: &Conn) -> Result<(), Closing> {
    if conn.session.is_some() {
        return Err((close::ALREADY_AUTHENTICATED, "already identified"));
    }
    Ok(())
}

/// The reason an identify or resume beyond the per-user limit closes with.
pub const TOO_MANY_SESSIONS: &str = "too many sessions for this user";

/// `heartbeat {s}`: `s` beyond what was sent closes with 4007.
async fn heartbeat(ws: &mut Socket, conn: &Conn, s: Option<u64>) -> Result<Beat, Closing> {
    if let Some(sess) = &conn.session {
        if s.is_some_and(|seen| seen > sess.inner.lock().sent) {
            return Err((
                close::INVALID_SEQUENCE,
                "heartbeat acknowledges a sequence never sent",
            ));
        }
        if let Some(seen) = s {
            sess.acked(seen);
        }
        sess.touch();
    }
    let _ = send_json(ws, json!({ "op": "heartbeat_ack", "d": {} })).await;
    Ok(Beat::Yes)
}

/// `identify {token}`: a new session (if the user has a slot left), READY.
async fn identify(state: &AppState, conn: &mut Conn, token: &str) -> Result<Beat, Closing> {
    not_yet_identified(conn)?;
    not_draining(state)?;
    let p = authenticate(state, token).await?;
    let id = format!("{:032x}", rand::random::<u128>());
    let max = state.cfg.gateway_max_sessions_per_user;
    if !state.hub.limits.take_slot(p.user_id, &id, max).await {
        return Err((close::RATE_LIMITED, TOO_MANY_SESSIONS));
    }
    let link = Arc::new(Link::default());
    let session = state.hub.new_session(id, p.user_id, p.session_id);
    session.attach(link.clone(), 0);
    // From here the connection owns the session (and gives its slot back
    // when it ends, whatever happens next).
    conn.session = Some(session.clone());
    conn.link = Some(link);
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
    caught_up(state).await;
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
    Ok(Beat::Yes)
}

/// A draining node starts no session: the client goes to another node.
fn not_draining(state: &AppState) -> Result<(), Closing> {
    if state.hub.is_draining() {
        return Err((
            close::RECONNECT,
            "this node is restarting: connect to another",
        ));
    }
    Ok(())
}

/// Waits (briefly) until routing has reached the log's head as it is now.
/// A change answered just before this identify (a join, a new channel) is
/// in the log but may not be routed yet: READY reads the store, which has
/// it, and the node's views, which get it when it is routed; a session
/// registered before then would be sent it again after READY. If the head
/// cannot be read or routing is slow, the session starts anyway (a repeat
/// at worst, never a loss).
async fn caught_up(state: &AppState) {
    const WAIT: Duration = Duration::from_millis(500);
    let deadline = Instant::now() + WAIT;
    let Ok(Ok(Some(head))) = tokio::time::timeout(WAIT, state.bus.log_head()).await else {
        return;
    };
    while state.hub.routed() < head && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `resume {token, session_id, s}`: every missed dispatch then RESUMED, or
/// `invalid_session`.
async fn resume(
    state: &AppState,
    ws: &mut Socket,
    conn: &mut Conn,
    token: &str,
    session_id: &str,
    s: u64,
) -> Result<Beat, Closing> {
    not_yet_identified(conn)?;
    not_draining(state)?;
    let p = authenticate(state, token).await?;
    // What was published before this resume belongs in its replay, not
    // after RESUMED: let routing reach the log's head first.
    caught_up(state).await;
    let local = state.hub.get(session_id);
    let mine = local.as_ref().is_none_or(|sess| sess.user == p.user_id);
    let max = state.cfg.gateway_max_sessions_per_user;
    if mine && !state.hub.limits.take_slot(p.user_id, session_id, max).await {
        return Err((close::RATE_LIMITED, TOO_MANY_SESSIONS));
    }
    let link = Arc::new(Link::default());
    let (place, outcome) = match local {
        Some(sess) if sess.user == p.user_id => (
            "local",
            resume::local(&sess, s, link.clone()).then_some(sess),
        ),
        Some(_) => ("local", None),
        None => (
            "remote",
            resume::remote(state, &p, session_id, s, link.clone()).await,
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
        if mine {
            state.hub.limits.give_slot(p.user_id, session_id).await;
        }
        let _ = send_json(
            ws,
            json!({ "op": "invalid_session", "d": { "resumable": false } }),
        )
        .await;
        return Ok(Beat::Yes);
    };
    if state.hub.presence_of(p.user_id).is_none() {
        crate::gateway::presence(state, p.user_id, "online");
    }
    conn.session = Some(session);
    conn.link = Some(link);
    Ok(Beat::Yes)
}
