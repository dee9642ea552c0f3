//! The hub: every gateway session on this node, and the one task that routes
//! bus events to them.
//!
//! A session outlives its connection: while detached (for
//! `gateway_resume_secs`) it keeps sequencing the events its user may see into
//! a bounded replay buffer, so `resume` can deliver every missed dispatch in
//! order. The replay buffer holds at most [`REPLAY_FRAMES`]; a client further
//! behind gets `invalid_session` and catches up with `messages?after=`.
//!
//! Routing decides per event and per session, at dispatch time, whether the
//! user may see it (VIEW_CHANNEL through `hearth-chat`'s cached permissions),
//! so losing access stops events at once. Each event is encoded once; only the
//! sequence number is written per connection.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_bus::{Delivery, Envelope};
use hearth_types::{ChannelId, CommunityId, SessionId, UserId};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::protocol::{dispatch_frame, tail_of};
use crate::state::AppState;

/// Frames kept for resume per session.
pub const REPLAY_FRAMES: usize = 2048;
/// Frames queued for one connection before it counts as too slow.
pub const OUTBOUND_QUEUE: usize = 1024;

/// What the hub tells a connection task.
#[derive(Debug)]
pub enum Outbound {
    Frame(String),
    /// Close with this code and reason (e.g. 4010 when the session is revoked).
    Close(u16, &'static str),
}

pub struct Session {
    pub id: String,
    pub user: UserId,
    pub auth_session: SessionId,
    pub inner: Mutex<Inner>,
}

#[derive(Default)]
pub struct Inner {
    pub seq: u64,
    /// (sequence, shared event tail): the tail is encoded once per event and
    /// shared by every session that got it; the frame is rebuilt on replay.
    pub replay: VecDeque<(u64, Arc<str>)>,
    pub tx: Option<mpsc::Sender<Outbound>>,
    pub detached_at: Option<Instant>,
    /// Events that arrived while READY was being built: sequenced after it.
    pub pending: Option<Vec<Arc<str>>>,
    pub communities: HashSet<CommunityId>,
    /// Channels this session can see, per community (for live hide/show).
    pub visible: HashMap<CommunityId, HashSet<ChannelId>>,
    pub private: HashSet<ChannelId>,
    pub closed: bool,
}

impl Session {
    /// Sequences one dispatch (by its shared tail), keeps it for resume, and
    /// sends it to the attached connection. A full queue detaches the
    /// connection (it is told to close; the session stays resumable).
    pub fn push(&self, tail: &str) {
        self.push_shared(&Arc::from(tail));
    }

    /// Like [`Session::push`] with a tail already shared between sessions.
    pub fn push_shared(&self, tail: &Arc<str>) {
        let mut g = self.inner.lock();
        if let Some(p) = g.pending.as_mut() {
            p.push(tail.clone());
            return;
        }
        Self::push_locked(&mut g, tail);
    }

    fn push_locked(g: &mut Inner, tail: &Arc<str>) {
        g.seq += 1;
        g.replay.push_back((g.seq, tail.clone()));
        while g.replay.len() > REPLAY_FRAMES {
            g.replay.pop_front();
        }
        if let Some(tx) = &g.tx
            && tx
                .try_send(Outbound::Frame(dispatch_frame(g.seq, tail)))
                .is_err()
        {
            let tx = g.tx.take();
            g.detached_at = Some(Instant::now());
            if let Some(tx) = tx {
                let _ = tx.try_send(Outbound::Close(
                    4000,
                    "too slow to read; resume to continue",
                ));
            }
        }
    }

    /// Ends the "building READY" phase: READY first, then what queued meanwhile.
    pub fn finish_ready(&self, ready_tail: &str) {
        let mut g = self.inner.lock();
        let pending = g.pending.take().unwrap_or_default();
        Self::push_locked(&mut g, &Arc::from(ready_tail));
        // READY (always s = 1) is the largest frame a session gets and a resume
        // never needs it: a client that has not seen it identifies instead.
        g.replay.clear();
        for t in pending {
            Self::push_locked(&mut g, &t);
        }
    }

    pub fn close(&self, code: u16, reason: &'static str) {
        let mut g = self.inner.lock();
        g.closed = true;
        if let Some(tx) = g.tx.take() {
            let _ = tx.try_send(Outbound::Close(code, reason));
        }
    }

    pub fn in_community(&self, c: CommunityId) -> bool {
        self.inner.lock().communities.contains(&c)
    }
}

#[derive(Default)]
pub struct Hub {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// The last status each user announced on this node (absent: offline).
    presence: Mutex<HashMap<UserId, &'static str>>,
}

impl Hub {
    pub fn insert(&self, s: Arc<Session>) {
        self.sessions.lock().insert(s.id.clone(), s);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().get(id).cloned()
    }

    fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.lock().values().cloned().collect()
    }

    /// Records a status; returns whether it changed (only changes are announced).
    pub fn set_presence(&self, user: UserId, status: &'static str) -> bool {
        let mut p = self.presence.lock();
        if status == "offline" {
            p.remove(&user).is_some()
        } else {
            p.insert(user, status) != Some(status)
        }
    }

    pub fn presence_of(&self, user: UserId) -> Option<&'static str> {
        self.presence.lock().get(&user).copied()
    }

    /// Whether the user has a connected session on this node.
    pub fn has_live_session(&self, user: UserId) -> bool {
        self.sessions
            .lock()
            .values()
            .any(|s| s.user == user && s.inner.lock().tx.is_some())
    }

    pub fn count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Drops sessions detached for longer than the resume window.
    pub fn reap(&self, window: Duration) -> Vec<Arc<Session>> {
        let mut gone = Vec::new();
        self.sessions.lock().retain(|_, s| {
            let g = s.inner.lock();
            let expired = g.closed || g.detached_at.is_some_and(|t| t.elapsed() > window);
            if expired {
                gone.push(s.clone());
            }
            !expired
        });
        gone
    }
}

fn id_after(subject: &str, prefix: &str) -> Option<i64> {
    subject
        .strip_prefix(prefix)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Routes every bus event to the sessions allowed to see it. One task per
/// node, so events leave in bus order (per-channel order is the publish order).
pub async fn route_events(state: AppState) {
    let mut sub = match state.bus.subscribe("").await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "gateway cannot subscribe to the bus");
            return;
        }
    };
    while let Some(d) = sub.next().await {
        match d {
            Delivery::Event(env) => route(&state, &env).await,
            Delivery::Lagged(n) => {
                // Sessions missed events they cannot get back: make them resync.
                tracing::error!(
                    missed = n,
                    "gateway fell behind the bus; closing sessions so clients resync"
                );
                for s in state.hub.all() {
                    s.close(4000, "server overloaded; reconnect");
                }
            }
        }
    }
}

async fn route(state: &AppState, env: &Envelope) {
    // Cache invalidations apply whether or not anyone is connected here: with
    // a cluster bus these arrive from the node where the change was made.
    if let Some(c) = id_after(&env.subject, "internal.permissions.") {
        state.chat.invalidate_community(CommunityId(c));
    }
    if let Some(sid) = id_after(&env.subject, "auth.session.") {
        state.accounts.note_revoked(SessionId(sid));
    }
    if state.hub.count() == 0 {
        return;
    }
    let Ok(text) = std::str::from_utf8(&env.data) else {
        return;
    };
    let Some(tail) = tail_of(text) else { return };
    let shared: Arc<str> = Arc::from(tail);
    let t = env.ty.strip_prefix("hearth.").unwrap_or(&env.ty);
    let subject = env.subject.as_str();
    if let Some(sid) = id_after(subject, "auth.session.") {
        for s in state
            .hub
            .all()
            .into_iter()
            .filter(|s| s.auth_session.0 == sid)
        {
            s.close(super::protocol::close::SESSION_REVOKED, "session revoked");
        }
        return;
    }
    if let Some(c) = id_after(subject, "internal.permissions.") {
        resync_visibility(state, CommunityId(c)).await;
        return;
    }
    if subject.starts_with("internal.") {
        return;
    }
    // Only two event types need their payload read here; the rest pass as bytes.
    let data: Value = if matches!(t, "COMMUNITY_CREATE" | "MEMBER_REMOVE") {
        serde_json::from_str(text).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if let Some(u) = id_after(subject, "chat.user.") {
        for s in state.hub.all().into_iter().filter(|s| s.user.0 == u) {
            if t == "COMMUNITY_CREATE"
                && let Some(c) = data["d"]["id"].as_str().and_then(|c| c.parse().ok())
            {
                let c = CommunityId(c);
                let visible = visible_channels(state, c, s.user).await;
                let mut g = s.inner.lock();
                g.communities.insert(c);
                g.visible.insert(c, visible);
            }
            s.push(tail);
        }
        return;
    }
    if let Some(ch) = id_after(subject, "chat.private.") {
        let ch = ChannelId(ch);
        for s in state.hub.all() {
            let known = s.inner.lock().private.contains(&ch);
            if known || state.chat.is_participant(ch, s.user).await {
                s.inner.lock().private.insert(ch);
                s.push(tail);
            }
        }
        return;
    }
    if let Some(u) = id_after(subject, "presence.") {
        let communities: HashSet<CommunityId> = state
            .hub
            .all()
            .iter()
            .filter(|s| s.user.0 == u)
            .flat_map(|s| s.inner.lock().communities.clone())
            .collect();
        for s in state.hub.all() {
            if s.user.0 == u
                || s.inner
                    .lock()
                    .communities
                    .iter()
                    .any(|c| communities.contains(c))
            {
                s.push(tail);
            }
        }
        return;
    }
    let Some(c) = id_after(subject, "chat.community.") else {
        return;
    };
    let c = CommunityId(c);
    let channel = subject
        .split(".channel.")
        .nth(1)
        .and_then(|x| x.parse::<i64>().ok())
        .map(ChannelId);
    for s in state.hub.all() {
        if !s.in_community(c) {
            continue;
        }
        match (t, channel) {
            ("CHANNEL_DELETE", Some(ch)) => {
                let was = s
                    .inner
                    .lock()
                    .visible
                    .get_mut(&c)
                    .is_some_and(|v| v.remove(&ch));
                if was {
                    s.push(tail);
                }
            }
            (_, Some(ch)) => {
                if state.chat.can_view_in(c, ch, s.user).await {
                    if t == "CHANNEL_CREATE" || t == "CHANNEL_UPDATE" {
                        s.inner.lock().visible.entry(c).or_default().insert(ch);
                    }
                    s.push(tail);
                }
            }
            ("MEMBER_REMOVE", None)
                if data["d"]["user_id"].as_str() == Some(&s.user.to_string()) =>
            {
                // The user left or was removed: tell them, then stop their events.
                s.push(tail);
                let gone = json!({ "t": "COMMUNITY_DELETE", "d": { "id": c.to_string(), "unavailable": false, "removed": true } }).to_string();
                if let Some(tl) = tail_of(&gone) {
                    s.push(tl);
                }
                let mut g = s.inner.lock();
                g.communities.remove(&c);
                g.visible.remove(&c);
            }
            ("COMMUNITY_DELETE", None) => {
                s.push(tail);
                let mut g = s.inner.lock();
                g.communities.remove(&c);
                g.visible.remove(&c);
            }
            _ => s.push_shared(&shared),
        }
    }
}

/// The channels of `c` the user can VIEW now.
pub async fn visible_channels(
    state: &AppState,
    c: CommunityId,
    user: UserId,
) -> HashSet<ChannelId> {
    match state.chat.channels(c, user).await {
        Ok(list) => list.into_iter().map(|ch| ch.id).collect(),
        Err(_) => HashSet::new(),
    }
}

/// After a permission change in `c`, tells each session which channels
/// appeared (CHANNEL_CREATE) or disappeared (CHANNEL_DELETE) for its user.
async fn resync_visibility(state: &AppState, c: CommunityId) {
    for s in state.hub.all().into_iter().filter(|s| s.in_community(c)) {
        let now = match state.chat.channels(c, s.user).await {
            Ok(list) => list,
            Err(_) => Vec::new(), // no longer a member: MEMBER_REMOVE handles that
        };
        let now_ids: HashSet<ChannelId> = now.iter().map(|ch| ch.id).collect();
        let before = s.inner.lock().visible.get(&c).cloned().unwrap_or_default();
        for gone in before.difference(&now_ids) {
            let ev = json!({ "t": "CHANNEL_DELETE", "d": { "id": gone.to_string(), "community_id": c.to_string(), "reason": "permissions" } }).to_string();
            if let Some(t) = tail_of(&ev) {
                s.push(t);
            }
        }
        for ch in now.iter().filter(|ch| !before.contains(&ch.id)) {
            let ev = json!({ "t": "CHANNEL_CREATE", "d": crate::http::wire::Channel::from(ch) })
                .to_string();
            if let Some(t) = tail_of(&ev) {
                s.push(t);
            }
        }
        s.inner.lock().visible.insert(c, now_ids);
    }
}
