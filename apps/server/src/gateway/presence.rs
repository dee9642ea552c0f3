//! Presence across nodes. Each node records its users' statuses in the
//! shared [`Presence`] (Redis in a cluster) as entries with a TTL, renewed
//! every few seconds; a user's status is the combination over all nodes.
//! A node that dies stops renewing, so its entries expire; every node
//! sweeps the users it has seen online and announces those who are now
//! offline, so a dead node's users go offline for everyone within
//! [`TTL`] + [`SWEEP`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hearth_state::Status;
use hearth_types::UserId;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;

use super::hub::{Kind, Session};
use crate::events::{EventKind, Subject};
use crate::state::{AppState, Inner};

/// Entry lifetime without renewal.
pub const TTL: Duration = Duration::from_secs(20);
/// How often entries are renewed and the online users swept.
pub const SWEEP: Duration = Duration::from_secs(5);

/// Users this node has seen announced online (by any node).
#[derive(Default)]
pub struct Watched(Mutex<HashSet<i64>>);

impl Watched {
    pub fn note(&self, user: i64, status: &str) {
        let mut w = self.0.lock();
        if status == "offline" {
            w.remove(&user);
        } else {
            w.insert(user);
        }
    }
}

/// Records a local status change and announces the user's combined status.
pub fn set(state: &AppState, user: UserId, status: &'static str) {
    // A second tab or device coming online changes nothing for others.
    if !state.hub.set_presence(user, status) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let node = state.node_key.as_str();
        let st = Status::parse(status).unwrap_or(Status::Online);
        if let Err(e) = state.presence.set(user.0, node, st, TTL).await {
            tracing::warn!(error = %e, "recording presence");
        }
        let combined = match state.presence.get(&[user.0]).await {
            Ok(v) => v.first().copied().unwrap_or(st),
            Err(_) => st,
        };
        announce(&state, user.0, combined.as_str());
    });
}

fn announce(state: &AppState, user: i64, status: &str) {
    state.publisher.publish_event(
        EventKind::PresenceUpdate,
        Subject::Presence(UserId(user)),
        json!({ "user_id": user.to_string(), "status": status }),
    );
}

/// Renews this node's entries and announces users whose entries all
/// expired, every [`SWEEP`], until the gateway stops. Entries the shared
/// state lost (Redis restarted empty) are written again and announced, so
/// presence rebuilds within one sweep of Redis coming back.
pub fn start_sweeper(state: &AppState) {
    super::every(state, SWEEP, |state| async move {
        {
            match state.presence.refresh(&state.node_key, TTL).await {
                Ok(live) => restore_lost(&state, live).await,
                Err(e) => tracing::warn!(error = %e, "renewing presence"),
            }
            let users: Vec<i64> = state.watched.0.lock().iter().copied().collect();
            if users.is_empty() {
                return;
            }
            let Ok(statuses) = state.presence.get(&users).await else {
                return;
            };
            for (u, st) in users.iter().zip(statuses) {
                if st == Status::Offline {
                    state.watched.note(*u, "offline");
                    announce(&state, *u, "offline");
                }
            }
        }
    });
}

/// Fewer live entries than local users: write again the entries of the
/// users the shared state shows offline although they have a status here
/// (setting is idempotent), and announce each one's combined status, since
/// other nodes may have announced them offline meanwhile. The count alone
/// also falls short for a moment when a status set here is still on its
/// way to the shared state (a session moving in during a rolling restart),
/// so only the users found missing are rewritten, not every local one.
async fn restore_lost(state: &AppState, live: usize) {
    let local = state.hub.local_presence();
    if live >= local.len() {
        return;
    }
    let users: Vec<i64> = local.iter().map(|(u, _)| u.0).collect();
    let Ok(statuses) = state.presence.get(&users).await else {
        return;
    };
    let missing: Vec<(UserId, &'static str)> = local
        .iter()
        .zip(statuses)
        .filter(|(_, st)| *st == Status::Offline)
        .map(|(l, _)| *l)
        // Still here: one that went offline since needs nothing.
        .filter(|(u, _)| state.hub.presence_of(*u).is_some())
        .collect();
    if missing.is_empty() {
        return;
    }
    tracing::warn!(
        live,
        local = local.len(),
        missing = missing.len(),
        "presence entries were lost (shared state restarted?); writing them again"
    );
    let node = state.node_key.as_str();
    for (user, status) in &missing {
        let st = Status::parse(status).unwrap_or(Status::Online);
        if let Err(e) = state.presence.set(user.0, node, st, TTL).await {
            tracing::warn!(error = %e, "restoring presence");
            return;
        }
    }
    let users: Vec<i64> = missing.iter().map(|(u, _)| u.0).collect();
    if let Ok(statuses) = state.presence.get(&users).await {
        for (u, st) in users.iter().zip(statuses) {
            state.watched.note(*u, st.as_str());
            announce(state, *u, st.as_str());
        }
    }
}

/// Sends presence updates, wherever the user is connected (they may have
/// no session on this node at all), each once per session, to:
/// - the user's own sessions;
/// - every session in the user's small communities (at most
///   `gateway_presence_threshold` members);
/// - in large communities, only the sessions that subscribed to this user
///   (`subscribe_presence`), so a big community's presence costs what its
///   clients show, not members × members.
///
/// Runs beside routing: finding a remote user's communities reads the
/// database.
pub async fn fanout(state: Weak<Inner>, mut rx: mpsc::Receiver<(UserId, Arc<str>)>) {
    while let Some((u, tail)) = rx.recv().await {
        let Some(state) = state.upgrade().map(AppState) else {
            return;
        };
        let mut to: HashMap<String, Arc<Session>> = state
            .hub
            .of_user(u)
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        // The user's communities: known from their views here (the usual
        // case: they just signed in here), else from the database.
        let mut communities = state.hub.views.communities_of(u);
        if communities.is_empty() && to.is_empty() {
            communities = match state.chat.communities(u).await {
                Ok(list) => list.into_iter().map(|c| c.id).collect(),
                Err(_) => Vec::new(),
            };
        }
        let mut watchers: Option<Vec<Arc<Session>>> = None;
        for c in communities {
            if state.hub.views.is_large(c) {
                let w = watchers.get_or_insert_with(|| state.hub.watchers_of(u));
                for s in w.iter().filter(|s| s.in_community(c)) {
                    to.entry(s.id.clone()).or_insert_with(|| s.clone());
                }
            } else {
                for s in state.hub.in_community(c) {
                    to.entry(s.id.clone()).or_insert(s);
                }
            }
        }
        for s in to.values() {
            s.push(Kind::Inline, &tail);
        }
    }
}

/// The statuses of `users` who are not offline, for READY.
pub async fn of(state: &AppState, users: &[i64]) -> Vec<(i64, &'static str)> {
    match state.presence.get(users).await {
        Ok(v) => users
            .iter()
            .zip(v)
            .filter(|(_, s)| *s != Status::Offline)
            .map(|(u, s)| (*u, s.as_str()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub type Shared = Arc<Watched>;
