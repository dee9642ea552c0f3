//! Routing: the one task per node that takes every bus event, in log
//! order, and decides per session whether its user may see it now.
//!
//! Log events (everything under `chat.`) carry a position shared by all
//! nodes and enter the window ([`super::ring`]) before they are routed;
//! real-time events (presence, cache and session nudges) are routed as they
//! come and recorded inline. Permissions are checked at dispatch time
//! (VIEW_CHANNEL through `hearth-chat`'s cached permissions), so losing
//! access stops events at once. Each event is encoded once; only the
//! sequence number is written per connection.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use hearth_bus::{Delivery, Envelope};
use hearth_types::{ChannelId, CommunityId, SessionId, UserId};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::hub::{Adopt, Audience, Kind, Session};
use super::protocol::tail_of;
use super::ring::LogEvent;
use crate::state::AppState;

/// The real-time subjects the gateway listens to besides the log.
const LIVE_PREFIXES: [&str; 4] = ["presence.", "internal.", "auth.", "gateway."];

fn id_after(subject: &str, prefix: &str) -> Option<i64> {
    subject
        .strip_prefix(prefix)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn shared_tail(text: &str) -> Arc<str> {
    Arc::from(tail_of(text).unwrap_or("\"t\":\"UNKNOWN\",\"d\":{}}"))
}

/// Starts following the log (warming the window with `backlog` events)
/// and the real-time subjects, and routes until the bus closes.
pub async fn run(state: AppState, backlog: u64) {
    let mut log = match state.bus.follow(backlog).await {
        Ok((s, head)) => {
            // Sessions start after the head: the backlog before it only
            // fills the window (their READY already reflects it).
            state.hub.snapshot_at(head);
            s
        }
        Err(e) => {
            tracing::error!(error = %e, "gateway cannot follow the bus log");
            return;
        }
    };
    let (live_tx, mut live_rx) = mpsc::channel::<Delivery>(4096);
    for prefix in LIVE_PREFIXES {
        let mut sub = match state.bus.subscribe(prefix).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, prefix, "gateway cannot subscribe to the bus");
                return;
            }
        };
        let tx = live_tx.clone();
        tokio::spawn(async move {
            while let Some(d) = sub.next().await {
                if tx.send(d).await.is_err() {
                    break;
                }
            }
        });
    }
    let Some(mut adopt_rx) = state.hub.take_adopt_rx() else {
        return;
    };
    let (presence_tx, presence_rx) = mpsc::channel(65_536);
    tokio::spawn(presence_fanout(state.clone(), presence_rx));
    loop {
        tokio::select! {
            biased;
            a = adopt_rx.recv() => match a {
                Some(a) => adopt(&state, a).await,
                None => return,
            },
            d = live_rx.recv() => match d {
                Some(Delivery::Event(env)) => route_live(&state, &env, &presence_tx).await,
                Some(Delivery::Lagged(n)) => lagged(&state, n),
                Some(Delivery::Logged(..)) | None => {}
            },
            d = log.next() => match d {
                Some(Delivery::Logged(pos, env)) => route_logged(&state, pos, &env).await,
                Some(Delivery::Lagged(n)) => lagged(&state, n),
                Some(Delivery::Event(_)) => {}
                None => return,
            },
        }
    }
}

fn lagged(state: &AppState, n: u64) {
    // Sessions missed events they cannot get back: make them resync.
    tracing::error!(
        missed = n,
        "gateway fell behind the bus; closing sessions so clients resync"
    );
    for s in state.hub.all() {
        s.close(4000, "server overloaded; reconnect");
    }
}

async fn route_logged(state: &AppState, pos: u64, env: &Envelope) {
    let Ok(text) = std::str::from_utf8(&env.data) else {
        return;
    };
    let ev = Arc::new(LogEvent {
        pos,
        subject: env.subject.as_str().into(),
        t: env.ty.strip_prefix("hearth.").unwrap_or(&env.ty).into(),
        tail: shared_tail(text),
        at: Instant::now(),
    });
    state.hub.ring.lock().push(ev.clone());
    state.metrics.gateway_log_position.set(pos as i64);
    let audience = audience_of(&ev);
    let sessions = state.hub.audience_at(pos, &audience);
    // One permission answer per user and event: a user's sessions share it.
    let mut memo = Memo::default();
    for s in &sessions {
        deliver(state, s, &ev, &mut memo).await;
    }
}

/// Which sessions an event may concern (each is still checked).
fn audience_of(ev: &LogEvent) -> Audience {
    let subject = &*ev.subject;
    if let Some(c) = id_after(subject, "chat.community.") {
        return Audience::Community(CommunityId(c));
    }
    if let Some(u) = id_after(subject, "chat.user.") {
        return Audience::User(UserId(u));
    }
    match id_after(subject, "chat.private.") {
        // A new DM or group DM: its members do not know it yet.
        Some(_) if &*ev.t == "CHANNEL_CREATE" => Audience::Everyone,
        Some(ch) => Audience::Private(ChannelId(ch)),
        None => Audience::Everyone,
    }
}

async fn route_live(state: &AppState, env: &Envelope, presence: &mpsc::Sender<(UserId, Arc<str>)>) {
    let subject = env.subject.as_str();
    // Cache invalidations apply whether or not anyone is connected here: with
    // a cluster bus these arrive from the node where the change was made.
    if let Some(c) = id_after(subject, "internal.permissions.") {
        state.chat.invalidate_community(CommunityId(c));
        resync_visibility(state, CommunityId(c)).await;
        return;
    }
    if let Some(sid) = id_after(subject, "auth.session.") {
        state.accounts.note_revoked(SessionId(sid));
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
    if let Some(moved) = subject.strip_prefix("gateway.moved.") {
        // Resumed on another node (which now owns its record): let it go.
        if let Some(s) = state.hub.get(moved)
            && env.source != state.publisher.source()
        {
            state.hub.remove(moved);
            s.close(4000, "resumed elsewhere");
            if !state.hub.has_live_session(s.user) {
                super::presence(state, s.user, "offline");
            }
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(&env.data) else {
        return;
    };
    if let Some(u) = id_after(subject, "presence.") {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            state
                .watched
                .note(u, v["d"]["status"].as_str().unwrap_or("online"));
        }
        // Finding the audience reads the database: done aside, so a wave of
        // sign-ins never holds up messages.
        if presence.try_send((UserId(u), shared_tail(text))).is_err() {
            tracing::warn!("presence fan-out is behind; an update was dropped");
        }
    }
}

/// Sends presence updates to everyone sharing a community with the user,
/// wherever the user is connected (the user may have no session on this
/// node at all), each once.
async fn presence_fanout(state: AppState, mut rx: mpsc::Receiver<(UserId, Arc<str>)>) {
    while let Some((u, tail)) = rx.recv().await {
        let mut sessions: HashMap<String, Arc<Session>> = state
            .hub
            .of_user(u)
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        // The user's communities: known from their sessions here (the usual
        // case: they just signed in here), else from the database.
        let local: HashSet<CommunityId> = sessions
            .values()
            .flat_map(|s| s.inner.lock().communities.clone())
            .collect();
        let communities: Vec<CommunityId> = if sessions.is_empty() {
            match state.chat.communities(u).await {
                Ok(list) => list.into_iter().map(|c| c.id).collect(),
                Err(_) => Vec::new(),
            }
        } else {
            local.into_iter().collect()
        };
        for c in communities {
            for s in state.hub.in_community(c) {
                sessions.entry(s.id.clone()).or_insert(s);
            }
        }
        for s in sessions.values() {
            s.push(Kind::Inline, &tail);
        }
    }
}

/// Whether `ev` could change what this session may see. A session taken
/// over from another node cannot be trusted to follow such a change: its
/// view is rebuilt from the database *now*, and what the old node made of
/// the change (a CHANNEL_DELETE for a channel now hidden, say) may not have
/// been recorded yet. Such a resume answers `invalid_session` instead.
pub fn changes_view(ev: &LogEvent, s: &Session) -> bool {
    match id_after(&ev.subject, "chat.community.") {
        Some(c) => {
            changes_view_of(ev, s.user)
                && (s.in_community(CommunityId(c))
                    || matches!(&*ev.t, "COMMUNITY_DELETE" | "MEMBER_REMOVE"))
        }
        None => changes_view_of(ev, s.user),
    }
}

/// [`changes_view`] for an event the user was sent (so in their view).
pub fn changes_view_of(ev: &LogEvent, user: UserId) -> bool {
    let t = &*ev.t;
    if let Some(u) = id_after(&ev.subject, "chat.user.") {
        return u == user.0 && t == "COMMUNITY_CREATE";
    }
    if id_after(&ev.subject, "chat.community.").is_none() {
        return false;
    }
    matches!(
        t,
        "CHANNEL_CREATE"
            | "CHANNEL_UPDATE"
            | "CHANNEL_DELETE"
            | "MEMBER_UPDATE"
            | "MEMBER_REMOVE"
            | "ROLE_CREATE"
            | "ROLE_UPDATE"
            | "ROLE_DELETE"
            | "COMMUNITY_DELETE"
    )
}

/// Catches a resumed session up from the window, then routes it live.
async fn adopt(state: &AppState, a: Adopt) {
    let events = state.hub.ring.lock().after(a.from_pos);
    let Some(events) = events else {
        let _ = a.reply.send(false);
        return;
    };
    a.session.inner.lock().pos = a.from_pos;
    for ev in &events {
        if changes_view(ev, &a.session) {
            let _ = a.reply.send(false);
            return;
        }
        deliver(state, &a.session, ev, &mut Memo::default()).await;
    }
    // Nothing can be routed between the catch-up and the insert: this task
    // is the only router.
    state.hub.insert(a.session.clone());
    if let Some(last) = events.last() {
        a.session.inner.lock().pos = last.pos;
    }
    let _ = a.reply.send(true);
}

/// What one session gets of one log event, decided now; keeps the
/// session's view (communities, visible channels) current.
/// Whether each user may VIEW the event's channel, decided once per event.
#[derive(Default)]
pub struct Memo(HashMap<UserId, bool>);

pub async fn deliver(state: &AppState, s: &Arc<Session>, ev: &LogEvent, memo: &mut Memo) {
    {
        let mut g = s.inner.lock();
        if ev.pos <= g.pos {
            return; // already had it (caught up from the window)
        }
        g.pos = ev.pos;
    }
    let kind = Kind::Log(ev.pos);
    let t = &*ev.t;
    let subject = &*ev.subject;
    if let Some(u) = id_after(subject, "chat.user.") {
        if s.user.0 != u {
            return;
        }
        if t == "COMMUNITY_CREATE" {
            let data: Value =
                serde_json::from_str(&format!("{{{}", ev.tail)).unwrap_or(Value::Null);
            if let Some(c) = data["d"]["id"].as_str().and_then(|c| c.parse().ok()) {
                let c = CommunityId(c);
                let visible = visible_channels(state, c, s.user).await;
                {
                    let mut g = s.inner.lock();
                    g.communities.insert(c);
                    g.visible.insert(c, visible);
                }
                state.hub.join(s, c);
            }
        }
        s.push(kind, &ev.tail);
        return;
    }
    if let Some(ch) = id_after(subject, "chat.private.") {
        let ch = ChannelId(ch);
        let known = s.inner.lock().private.contains(&ch);
        if known || state.chat.is_participant(ch, s.user).await {
            if !known {
                s.inner.lock().private.insert(ch);
                state.hub.add_private(s, ch);
            }
            s.push(kind, &ev.tail);
        }
        return;
    }
    let Some(c) = id_after(subject, "chat.community.") else {
        return;
    };
    let c = CommunityId(c);
    if !s.in_community(c) {
        return;
    }
    let channel = subject
        .split(".channel.")
        .nth(1)
        .and_then(|x| x.parse::<i64>().ok())
        .map(ChannelId);
    match (t, channel) {
        ("CHANNEL_DELETE", Some(ch)) => {
            let was = s
                .inner
                .lock()
                .visible
                .get_mut(&c)
                .is_some_and(|v| v.remove(&ch));
            if was {
                s.push(kind, &ev.tail);
            }
        }
        (_, Some(ch)) => {
            let may = match memo.0.get(&s.user) {
                Some(m) => *m,
                None => {
                    let m = state.chat.can_view_in(c, ch, s.user).await;
                    memo.0.insert(s.user, m);
                    m
                }
            };
            // The channel's own events keep the session's view right by
            // themselves, whatever order the permission nudge arrives in: an
            // update that shows the channel is its CHANNEL_CREATE for this
            // session, one that hides it its CHANNEL_DELETE.
            let was = s
                .inner
                .lock()
                .visible
                .get(&c)
                .is_some_and(|v| v.contains(&ch));
            if may {
                if t == "CHANNEL_CREATE" || t == "CHANNEL_UPDATE" {
                    s.inner.lock().visible.entry(c).or_default().insert(ch);
                }
                match ev.tail.rfind("\"t\":\"CHANNEL_UPDATE\"") {
                    Some(at) if !was => {
                        let mut created = ev.tail.to_string();
                        created.replace_range(at..at + 20, "\"t\":\"CHANNEL_CREATE\"");
                        s.push(Kind::Inline, &Arc::from(created));
                    }
                    _ => s.push(kind, &ev.tail),
                }
            } else if was && t == "CHANNEL_UPDATE" {
                if let Some(v) = s.inner.lock().visible.get_mut(&c) {
                    v.remove(&ch);
                }
                let ev = json!({ "t": "CHANNEL_DELETE", "d": { "id": ch.to_string(), "community_id": c.to_string(), "reason": "permissions" } }).to_string();
                s.push(Kind::Inline, &shared_tail(&ev));
            }
        }
        ("MEMBER_REMOVE", None) => {
            let data: Value =
                serde_json::from_str(&format!("{{{}", ev.tail)).unwrap_or(Value::Null);
            s.push(kind, &ev.tail);
            if data["d"]["user_id"].as_str() == Some(&s.user.to_string()) {
                // The user left or was removed: tell them, then stop their events.
                let gone = json!({ "t": "COMMUNITY_DELETE", "d": { "id": c.to_string(), "unavailable": false, "removed": true } }).to_string();
                s.push(Kind::Inline, &shared_tail(&gone));
                {
                    let mut g = s.inner.lock();
                    g.communities.remove(&c);
                    g.visible.remove(&c);
                }
                state.hub.leave(s, c);
            }
        }
        ("COMMUNITY_DELETE", None) => {
            s.push(kind, &ev.tail);
            {
                let mut g = s.inner.lock();
                g.communities.remove(&c);
                g.visible.remove(&c);
            }
            state.hub.leave(s, c);
        }
        _ => s.push(kind, &ev.tail),
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
    for s in state
        .hub
        .in_community(c)
        .into_iter()
        .filter(|s| s.in_community(c))
    {
        // No longer a member (an error): MEMBER_REMOVE handles that.
        let now = state.chat.channels(c, s.user).await.unwrap_or_default();
        let now_ids: HashSet<ChannelId> = now.iter().map(|ch| ch.id).collect();
        let before = s.inner.lock().visible.get(&c).cloned().unwrap_or_default();
        for gone in before.difference(&now_ids) {
            let ev = json!({ "t": "CHANNEL_DELETE", "d": { "id": gone.to_string(), "community_id": c.to_string(), "reason": "permissions" } }).to_string();
            s.push(Kind::Inline, &shared_tail(&ev));
        }
        for ch in now.iter().filter(|ch| !before.contains(&ch.id)) {
            let ev = json!({ "t": "CHANNEL_CREATE", "d": crate::http::wire::Channel::from(ch) })
                .to_string();
            s.push(Kind::Inline, &shared_tail(&ev));
        }
        s.inner.lock().visible.insert(c, now_ids);
    }
}
