//! Routing: the one task per node that takes every bus event, in log
//! order, and decides per session whether its user may see it now.
//!
//! Log events (everything under `chat.`) carry a position shared by all
//! nodes and enter the window ([`super::ring`]) before they are routed;
//! real-time events (presence, cache and session nudges) are routed as they
//! come and recorded inline. Each event is parsed once ([`Subject`],
//! [`EventKind`], and for the few kinds that change who may see what, the
//! [`Change`]) and encoded once; only the sequence number is written per
//! connection.
//!
//! Visibility comes from [`super::views`]: one resolved view per (user,
//! community), shared by the user's sessions. Nothing on this task waits
//! for the database: reloads after a permission nudge and the view of a
//! member who just joined are loaded beside it (`loads`) and applied here,
//! in order with everything else. So the work an event costs is
//! proportional to the sessions it concerns: a join costs the joiner's
//! sessions one member load (and everyone one reload of the community's
//! rules, which changes nothing when access did not change), a new group
//! DM costs only its participants' sessions.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hearth_bus::{Delivery, Envelope};
use hearth_types::{ChannelId, CommunityId, SessionId, UserId};
use serde_json::json;
use tokio::sync::mpsc;

use super::hub::{Adopt, Audience, Kind, Session};
use super::protocol::{close, tail_of};
use super::ring::LogEvent;
use super::shards::Shards;
use super::views::{Access, Diff, Fresh, Loaded};
use crate::events::{Change, EventKind, LIVE_PREFIXES, Subject, decode_change};
use crate::http::wire;
use crate::state::{AppState, Inner};

fn shared_tail(text: &str) -> Arc<str> {
    Arc::from(tail_of(text).unwrap_or("\"t\":\"UNKNOWN\",\"d\":{}}"))
}

/// A frame made up for one session (not in the log).
fn made_up(kind: EventKind, d: serde_json::Value) -> Arc<str> {
    shared_tail(&json!({ "t": kind.as_str(), "d": d }).to_string())
}

/// The routing task's handle on the server: it holds the server only while
/// handling something, so it never keeps a stopped server alive.
struct Router {
    state: Weak<Inner>,
    loads: mpsc::UnboundedSender<Loaded>,
    presence: mpsc::Sender<(UserId, Arc<str>)>,
    /// Where frames are sequenced (see `shards.rs`); every frame this task
    /// sends goes through it, which keeps each session's frames in order.
    shards: Shards,
}

impl Router {
    fn state(&self) -> Option<AppState> {
        self.state.upgrade().map(AppState)
    }
}

/// Starts following the log (warming the window with `backlog` events)
/// and the real-time subjects, and routes until the gateway stops or the
/// bus closes.
pub async fn run(state: AppState, backlog: u64) {
    let mut log = match state.bus.follow(backlog).await {
        Ok((s, head)) => {
            // Sessions start after the head: the backlog before it only
            // fills the window (their READY already reflects it).
            state.hub.mark_routed(head);
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
    tokio::spawn(super::presence::fanout(
        Arc::downgrade(&state.0),
        presence_rx,
    ));
    let (loads, mut loads_rx) = mpsc::unbounded_channel();
    let stop = state.hub.stopping();
    let router = Router {
        state: Arc::downgrade(&state.0),
        loads,
        presence: presence_tx,
        shards: Shards::start(),
    };
    drop(state);
    tokio::pin!(stop);
    let mut quiet_since = Instant::now();
    let mut check = tokio::time::interval(STALL / 2);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return,
            a = adopt_rx.recv() => match (a, router.state()) {
                (Some(a), Some(state)) => adopt(&state, a),
                _ => return,
            },
            l = loads_rx.recv() => match (l, router.state()) {
                (Some(l), Some(state)) => loaded(&state, &router, l),
                _ => return,
            },
            d = live_rx.recv() => {
                let Some(state) = router.state() else { return };
                match d {
                    Some(Delivery::Event(env)) => route_live(&state, &router, &env),
                    Some(Delivery::Lagged(n)) => lagged(&state, n),
                    Some(Delivery::Logged(..)) | None => {}
                }
            }
            d = log.next() => {
                let Some(state) = router.state() else { return };
                match d {
                    Some(Delivery::Logged(pos, env)) => {
                        quiet_since = Instant::now();
                        route_logged(&state, &router, pos, &env)
                    }
                    Some(Delivery::Lagged(n)) => lagged(&state, n),
                    Some(Delivery::Event(_)) => {}
                    None => {
                        // The bus ended the log's subscription (its server
                        // went away): follow again from the last position
                        // routed, so nothing in between is skipped.
                        tracing::error!("gateway lost the bus log; following it again");
                        log = match refollow(&state).await {
                            Some(l) => l,
                            None => return,
                        };
                        quiet_since = Instant::now();
                    }
                }
            }
            _ = check.tick() => {
                let Some(state) = router.state() else { return };
                // A subscription can also stall without ending: if the log
                // grew past what was routed and nothing came for a while,
                // follow it again.
                if quiet_since.elapsed() > STALL
                    && let Ok(Some(head)) = state.bus.log_head().await
                    && head > state.hub.routed()
                {
                    tracing::error!(head, routed = state.hub.routed(), "gateway's log subscription stalled; following it again");
                    log = match refollow(&state).await {
                        Some(l) => l,
                        None => return,
                    };
                    quiet_since = Instant::now();
                }
            }
        }
        // What this turn queued for the shards goes to them now.
        router.shards.flush();
    }
}

/// How long the log may go quiet while its head moves on before routing
/// follows it again.
const STALL: Duration = Duration::from_secs(5);

/// Follows the log again after the last routed position, retrying until the
/// bus answers (or the gateway stops); not ready meanwhile.
async fn refollow(state: &AppState) -> Option<Box<dyn hearth_bus::Subscription>> {
    state
        .hub
        .following
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let mut wait = Duration::from_millis(100);
    loop {
        if state.hub.is_stopped() {
            return None;
        }
        let after = state.hub.routed();
        let again = match state.bus.read_from(after).await {
            Ok(s) => Ok(s),
            // A bus without a durable copy of its log: follow from now.
            Err(hearth_bus::BusError::Invalid(_)) => state.bus.follow(0).await.map(|(s, _)| s),
            Err(e) => Err(e),
        };
        match again {
            Ok(s) => {
                state
                    .hub
                    .following
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(after, "gateway follows the bus log again");
                return Some(s);
            }
            Err(e) => {
                tracing::warn!(error = %e, "gateway cannot follow the bus log yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
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
        s.close(close::UNKNOWN_ERROR, "server overloaded; reconnect");
    }
}

/// Parses a log event once, keeps it in the window and routes it.
fn route_logged(state: &AppState, router: &Router, pos: u64, env: &Envelope) {
    let Ok(text) = std::str::from_utf8(&env.data) else {
        state.hub.mark_routed(pos);
        return;
    };
    let Ok(subject) = env.subject.parse::<Subject>() else {
        tracing::warn!(subject = %env.subject, "an event on an unknown subject");
        state.hub.mark_routed(pos);
        return;
    };
    let kind = EventKind::of_type(&env.ty);
    let tail = shared_tail(text);
    let change = kind.and_then(|k| decode_change(k, &subject, &tail));
    let ev = Arc::new(LogEvent {
        pos,
        subject,
        kind,
        change,
        tail,
        at: Instant::now(),
    });
    state.hub.ring.lock().push(ev.clone());
    state.metrics.gateway_log_position.set(pos as i64);
    match ev.subject.clone() {
        Subject::Channel(c, ch) => channel_event(state, router, &ev, c, ch),
        Subject::Community(c) => community_event(state, router, &ev, c),
        Subject::User(u) => user_event(state, router, &ev, u),
        Subject::Private(_) => private_event(state, router, &ev),
        _ => state.hub.mark_routed(pos),
    }
}

/// Marks `ev` routed for `s`; false if it already had it (caught up from
/// the window).
fn claim(s: &Session, ev: &LogEvent) -> bool {
    let mut g = s.inner.lock();
    if ev.pos <= g.pos {
        return false;
    }
    g.pos = ev.pos;
    true
}

fn claimed(state: &AppState, ev: &LogEvent, audience: &Audience) -> Vec<Arc<Session>> {
    state
        .hub
        .audience_at(ev.pos, audience)
        .into_iter()
        .filter(|s| claim(s, ev))
        .collect()
}

/// A channel's event: decided per user once (their shared view), then
/// sequenced per session. A CHANNEL_CREATE, UPDATE or DELETE first changes
/// the community's rules and every member's view of that channel.
///
/// A large audience is spread over the shards (`shards.rs`): this task
/// decides and claims, the shards sequence and wake the connections, on
/// every worker.
fn channel_event(
    state: &AppState,
    router: &Router,
    ev: &Arc<LogEvent>,
    c: CommunityId,
    ch: ChannelId,
) {
    let sessions = claimed(state, ev, &Audience::Community(c));
    let users: Vec<UserId> = sessions.iter().map(|s| s.user).collect();
    let access = state
        .hub
        .views
        .channel_access(c, ch, ev.change.as_ref(), &users);
    let spread = router.shards.spreads(sessions.len());
    for (s, a) in sessions.iter().zip(access) {
        match a {
            Access::Sees if spread => router.shards.queue(s, Kind::Log(ev.pos), &ev.tail),
            _ => deliver(state, &router.shards, s, ev, a),
        }
    }
}

/// A community's own event (members, roles, the community itself): every
/// member's sessions get it; a change of roles re-resolves views in memory
/// and tells only the users whose view changed.
fn community_event(state: &AppState, router: &Router, ev: &Arc<LogEvent>, c: CommunityId) {
    let diffs = match &ev.change {
        Some(change) => state.hub.views.community_change(c, change),
        None => Vec::new(),
    };
    let member = match &ev.change {
        Some(Change::MemberAdded(u) | Change::MemberRoles(u, _) | Change::MemberGone(u)) => {
            Some(*u)
        }
        _ => None,
    };
    let sessions = match member {
        // In a large community a member's comings and goings reach only
        // that member's sessions and the sessions showing them (those that
        // subscribed to their presence): clients page members on request,
        // and a join-leave loop must not cost every session of the
        // community.
        Some(u) if state.hub.views.is_large(c) => {
            let mut to = state.hub.audience_at(ev.pos, &Audience::User(u));
            to.extend(state.hub.watchers_of(u).into_iter().filter(|s| s.user != u));
            to.into_iter()
                .filter(|s| s.in_community(c) && claim(s, ev))
                .collect()
        }
        _ => claimed(state, ev, &Audience::Community(c)),
    };
    for s in sessions {
        deliver(state, &router.shards, &s, ev, Access::Sees);
    }
    tell_diffs(state, router, c, &diffs);
}

/// A user's own event. A join (COMMUNITY_CREATE) routes the user's
/// sessions for the community at once and loads the member beside routing;
/// the community's events for them wait until it is known.
fn user_event(state: &AppState, router: &Router, ev: &Arc<LogEvent>, u: UserId) {
    let sessions = claimed(state, ev, &Audience::User(u));
    for s in &sessions {
        deliver(state, &router.shards, s, ev, Access::Sees);
    }
    if let (Some(Change::Joined(c)), false) = (&ev.change, sessions.is_empty())
        && state.hub.views.hold(*c, u)
    {
        load_member(state, router, *c, u);
    }
}

/// A DM or group DM: a new one reaches exactly its participants' sessions
/// (the event names them), everything else the sessions that know it.
fn private_event(state: &AppState, router: &Router, ev: &Arc<LogEvent>) {
    let audience = match (&ev.change, &ev.subject) {
        (Some(Change::PrivateCreated(users)), _) => Audience::Users(users.clone()),
        (_, Subject::Private(ch)) => Audience::Private(*ch),
        _ => Audience::Nobody,
    };
    for s in claimed(state, ev, &audience) {
        deliver(state, &router.shards, &s, ev, Access::Sees);
    }
}

/// What one session gets of one log event; `access` is how its user sees
/// the event's channel (for channel events). Keeps the session's
/// communities and DMs current.
fn deliver(
    state: &AppState,
    shards: &Shards,
    s: &Arc<Session>,
    ev: &Arc<LogEvent>,
    access: Access,
) {
    let log = Kind::Log(ev.pos);
    let push = |kind: Kind, tail: &Arc<str>| shards.push(s, kind, tail);
    match &ev.subject {
        Subject::Channel(c, ch) => match access {
            Access::Wait => state.hub.views.keep(*c, s, ev),
            Access::Sees => push(log, &ev.tail),
            // An update that shows the channel is its CHANNEL_CREATE for
            // this session; one that hides it, its CHANNEL_DELETE.
            Access::Gained if ev.is(EventKind::ChannelUpdate) => {
                push(Kind::Inline, &as_created(&ev.tail));
            }
            Access::Gained => push(log, &ev.tail),
            Access::Lost if ev.is(EventKind::ChannelUpdate) => {
                push(Kind::Inline, &hidden(*c, *ch));
            }
            Access::Lost if ev.is(EventKind::ChannelDelete) => push(log, &ev.tail),
            Access::Lost | Access::Hidden => {}
        },
        Subject::Community(c) => {
            if state.hub.views.is_held(*c, s.user) {
                state.hub.views.keep(*c, s, ev);
                return;
            }
            push(log, &ev.tail);
            match &ev.change {
                Some(Change::MemberGone(u)) if *u == s.user => {
                    // The user left or was removed: tell them, then stop
                    // their events.
                    let gone = made_up(
                        EventKind::CommunityDelete,
                        json!({ "id": c.to_string(), "unavailable": false, "removed": true }),
                    );
                    push(Kind::Inline, &gone);
                    leave(state, s, *c);
                    state.hub.views.forget(*c, s.user);
                }
                Some(Change::CommunityGone) => leave(state, s, *c),
                _ => {}
            }
        }
        Subject::User(_) => {
            push(log, &ev.tail);
            if let Some(Change::Joined(c)) = &ev.change {
                s.inner.lock().communities.insert(*c);
                state.hub.join(s, *c);
            }
        }
        Subject::Private(ch) => {
            if matches!(ev.change, Some(Change::PrivateCreated(_))) {
                s.inner.lock().private.insert(*ch);
                state.hub.add_private(s, *ch);
            }
            push(log, &ev.tail);
        }
        _ => {}
    }
}

fn leave(state: &AppState, s: &Arc<Session>, c: CommunityId) {
    s.inner.lock().communities.remove(&c);
    state.hub.leave(s, c);
}

/// A CHANNEL_UPDATE's bytes as the CHANNEL_CREATE of the same channel.
fn as_created(tail: &Arc<str>) -> Arc<str> {
    let from = "\"t\":\"CHANNEL_UPDATE\"";
    match tail.rfind(from) {
        Some(at) => {
            let mut created = tail.to_string();
            created.replace_range(at..at + from.len(), "\"t\":\"CHANNEL_CREATE\"");
            Arc::from(created)
        }
        None => tail.clone(),
    }
}

fn hidden(c: CommunityId, ch: ChannelId) -> Arc<str> {
    made_up(
        EventKind::ChannelDelete,
        json!({ "id": ch.to_string(), "community_id": c.to_string(), "reason": "permissions" }),
    )
}

/// Tells each user whose view of `c` changed, on each of their sessions:
/// CHANNEL_DELETE for what they lost, CHANNEL_CREATE for what they gained.
fn tell_diffs(state: &AppState, router: &Router, c: CommunityId, diffs: &[Diff]) {
    for d in diffs {
        if state.hub.views.is_held(c, d.user) {
            continue; // they learn the channels with the member's view
        }
        let frames: Vec<Arc<str>> = d
            .lost
            .iter()
            .map(|ch| hidden(c, *ch))
            .chain(d.gained.iter().map(|ch| {
                made_up(
                    EventKind::ChannelCreate,
                    serde_json::to_value(wire::Channel::from(ch)).unwrap_or_default(),
                )
            }))
            .collect();
        for s in state.hub.of_user(d.user) {
            if s.in_community(c) {
                for f in &frames {
                    router.shards.push(&s, Kind::Inline, f);
                }
            }
        }
    }
}

fn route_live(state: &AppState, router: &Router, env: &Envelope) {
    let Ok(subject) = env.subject.parse::<Subject>() else {
        return;
    };
    match subject {
        // Cache invalidations apply whether or not anyone is connected here:
        // with a cluster bus these arrive from the node where the change
        // was made.
        Subject::Permissions(c) => {
            state.chat.invalidate_community(c);
            if state.voice.calls() > 0 {
                // Losing CONNECT or SPEAK ends or silences a call at once.
                let state = state.clone();
                tokio::spawn(async move { crate::voice::Voice::recheck(&state, Some(c)).await });
            }
            if state.hub.views.want_reload(c) {
                load_rules(state, router, c);
            }
        }
        Subject::AuthSession(sid) => {
            state.accounts.note_revoked(sid);
            revoke(state, sid);
        }
        Subject::VoiceSession(id) => {
            // A call hosted on another node speaks to its session here.
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&env.data) {
                crate::voice::Voice::to_local_session(state, &id, &v);
            }
        }
        Subject::Moved(id) => {
            // Resumed on another node (which now owns its record): let it go.
            if let Some(s) = state.hub.get(&id)
                && env.source != state.publisher.source()
            {
                state.hub.remove(&id);
                s.close(close::UNKNOWN_ERROR, "resumed elsewhere");
                if !state.hub.has_live_session(s.user) {
                    super::presence(state, s.user, "offline");
                }
            }
        }
        Subject::Presence(u) => {
            let Ok(text) = std::str::from_utf8(&env.data) else {
                return;
            };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
                state
                    .watched
                    .note(u.0, v["d"]["status"].as_str().unwrap_or("online"));
            }
            // Finding the audience may read the database: done aside, so a
            // wave of sign-ins never holds up messages.
            if router.presence.try_send((u, shared_tail(text))).is_err() {
                tracing::warn!("presence fan-out is behind; an update was dropped");
            }
        }
        _ => {}
    }
}

fn revoke(state: &AppState, sid: SessionId) {
    for s in state
        .hub
        .all()
        .into_iter()
        .filter(|s| s.auth_session == sid)
    {
        s.close(close::SESSION_REVOKED, "session revoked");
    }
}

/// Reloads a community's rules beside routing (retrying a failed read a
/// few times) and hands them back.
fn load_rules(state: &AppState, router: &Router, c: CommunityId) {
    let (state, tx) = (state.clone(), router.loads.clone());
    tokio::spawn(async move {
        for attempt in 0..4u32 {
            match state.chat.community_rules(c).await {
                Ok(rules) => {
                    let _ = tx.send(Loaded::Rules(c, rules));
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, community = %c, attempt, "reloading a community's rules");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        let _ = tx.send(Loaded::RulesFailed(c));
    });
}

/// Loads a member who just joined (and the community, if new here).
fn load_member(state: &AppState, router: &Router, c: CommunityId, u: UserId) {
    let need_community = !state.hub.views.has(c);
    let (state, tx) = (state.clone(), router.loads.clone());
    tokio::spawn(async move {
        let chat = &state.chat;
        let load = async {
            let fresh = if need_community {
                match chat.community_rules(c).await? {
                    Some(rules) => Some(Fresh {
                        rules,
                        members: chat.member_ids(c).await?,
                    }),
                    None => None,
                }
            } else {
                None
            };
            let roles = chat.membership(c, u).await?.map(|m| m.role_ids);
            Ok::<_, hearth_chat::ChatError>((fresh, roles))
        };
        let (fresh, roles) = match load.await {
            Ok(x) => x,
            Err(e) => {
                // Its channel events are dropped for this user; their
                // client reloads on reconnect.
                tracing::warn!(error = %e, community = %c, "loading a new member's view");
                (None, None)
            }
        };
        let _ = tx.send(Loaded::Member {
            community: c,
            user: u,
            fresh,
            roles,
        });
    });
}

/// Applies a load, in order with routing.
fn loaded(state: &AppState, router: &Router, l: Loaded) {
    match l {
        Loaded::Rules(c, rules) => {
            let (diffs, again) = state.hub.views.reloaded(c, rules);
            tell_diffs(state, router, c, &diffs);
            if again && state.hub.views.want_reload(c) {
                load_rules(state, router, c);
            }
        }
        Loaded::RulesFailed(c) => state.hub.views.reload_failed(c),
        Loaded::Member {
            community,
            user,
            fresh,
            roles,
        } => {
            // What waited for this member, in order, decided now.
            for (s, ev) in state.hub.views.joined(community, user, fresh, roles) {
                deliver_now(state, &router.shards, &s, &ev);
            }
        }
    }
}

/// [`deliver`] for an event routed earlier (held, or caught up from the
/// window), decided by the views as they are now.
fn deliver_now(state: &AppState, shards: &Shards, s: &Arc<Session>, ev: &Arc<LogEvent>) {
    let access = match &ev.subject {
        Subject::Channel(c, ch) => {
            if !s.in_community(*c) {
                return;
            }
            state
                .hub
                .views
                .channel_access(*c, *ch, None, &[s.user])
                .first()
                .copied()
                .unwrap_or(Access::Hidden)
        }
        Subject::Community(c) => {
            if !s.in_community(*c) {
                return;
            }
            Access::Sees
        }
        Subject::User(u) if *u != s.user => return,
        // The audit log's announcements are for the audit consumer only,
        // account events for the mail consumer, uploads for the image
        // pipeline.
        Subject::Audit(_) | Subject::Account(_) | Subject::Media(_) => return,
        Subject::Private(ch) => {
            let mine = s.inner.lock().private.contains(ch)
                || matches!(&ev.change, Some(Change::PrivateCreated(us)) if us.contains(&s.user));
            if !mine {
                return;
            }
            Access::Sees
        }
        _ => Access::Sees,
    };
    deliver(state, shards, s, ev, access);
}

/// Whether `ev` could change what this session may see. A session taken
/// over from another node cannot be trusted to follow such a change: its
/// view is rebuilt from the database *now*, and what the old node made of
/// the change (a CHANNEL_DELETE for a channel now hidden, say) may not have
/// been recorded yet. Such a resume answers `invalid_session` instead.
pub fn changes_view(ev: &LogEvent, s: &Session) -> bool {
    match ev.subject.community() {
        Some(c) => {
            changes_view_of(ev, s.user)
                && (s.in_community(c)
                    || ev.is(EventKind::CommunityDelete)
                    || ev.is(EventKind::MemberRemove))
        }
        None => changes_view_of(ev, s.user),
    }
}

/// [`changes_view`] for an event the user was sent (so in their view).
pub fn changes_view_of(ev: &LogEvent, user: UserId) -> bool {
    match &ev.subject {
        Subject::User(u) => *u == user && ev.is(EventKind::CommunityCreate),
        Subject::Community(_) | Subject::Channel(..) => {
            ev.kind.is_some_and(EventKind::changes_view)
        }
        _ => false,
    }
}

/// Catches a resumed session up from the window, then routes it live.
fn adopt(state: &AppState, a: Adopt) {
    let events = state.hub.ring.lock().after(a.from_pos);
    let Some(events) = events else {
        let _ = a.reply.send(false);
        return;
    };
    {
        let mut g = a.session.inner.lock();
        g.pos = a.from_pos;
        g.sequenced = a.from_pos;
    }
    // Not in the hub yet, so nothing is queued for it on any shard: its
    // catch-up is sequenced here and now, before the RESUMED that follows.
    let direct = Shards::with(0);
    for ev in &events {
        if changes_view(ev, &a.session) {
            let _ = a.reply.send(false);
            return;
        }
        if claim(&a.session, ev) {
            deliver_now(state, &direct, &a.session, ev);
        }
    }
    // Nothing can be routed between the catch-up and the insert: this task
    // is the only router.
    state.hub.insert(a.session.clone());
    if let Some(last) = events.last() {
        a.session.inner.lock().pos = last.pos;
    }
    let _ = a.reply.send(true);
}
