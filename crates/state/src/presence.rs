//! Presence: which users are online, and how.
//!
//! Each (user, node) pair is one entry with a TTL. A user is online while any
//! node holds a live entry for them; a node keeps its entries alive with a
//! heartbeat, [`Presence::refresh`], every few seconds. Why TTLs rather than
//! explicit "went offline" writes: a node that crashes or is partitioned
//! never sends those, so its users would stay online forever. With TTLs they
//! go offline by themselves within one TTL ([`PRESENCE_TTL`], 30 s) of the
//! last heartbeat, with no cleanup job and no coordinator.
//!
//! Node ids should be per-process (e.g. the node lease holder), not reusable
//! numbers, so a restarted node never adopts a predecessor's entries — those
//! simply expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::StateResult;

/// How long an entry lives without a heartbeat: the bound on how long a dead
/// node's users still look online. Heartbeat at a third of this.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

/// A user's status as others see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Online,
    Idle,
    DoNotDisturb,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Idle => "idle",
            Status::DoNotDisturb => "dnd",
            Status::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "online" => Status::Online,
            "idle" => Status::Idle,
            "dnd" => Status::DoNotDisturb,
            "offline" => Status::Offline,
            _ => return None,
        })
    }

    /// Precedence when a user is connected through several nodes: an explicit
    /// do-not-disturb wins, then any active session, and idle only when every
    /// session is idle.
    fn rank(self) -> u8 {
        match self {
            Status::DoNotDisturb => 3,
            Status::Online => 2,
            Status::Idle => 1,
            Status::Offline => 0,
        }
    }

    /// Folds the statuses of one user's live entries into one.
    pub(crate) fn combine(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses
            .into_iter()
            .max_by_key(|s| s.rank())
            .unwrap_or(Status::Offline)
    }
}

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Records `user`'s status as seen by `node`, live for `ttl`. Setting
    /// [`Status::Offline`] is the same as [`Presence::clear`].
    async fn set(&self, user: i64, node: &str, status: Status, ttl: Duration) -> StateResult<()>;

    /// The heartbeat: extends every live entry `node` holds to `ttl` from
    /// now. Entries that already expired stay expired. Returns how many were
    /// live: fewer than the node holds means entries were lost (Redis
    /// restarted empty, or failed over to a replica behind), and the node
    /// should [`Presence::set`] its users again.
    async fn refresh(&self, node: &str, ttl: Duration) -> StateResult<usize>;

    /// Removes `node`'s entry for `user` (their last socket there closed).
    async fn clear(&self, user: i64, node: &str) -> StateResult<()>;

    /// The combined status of each user, in the order given;
    /// [`Status::Offline`] when no node holds a live entry.
    async fn get(&self, users: &[i64]) -> StateResult<Vec<Status>>;
}

/// One node's presence: per user, each node's status and deadline.
/// Expired entries are ignored on read and pruned on refresh.
#[derive(Default)]
pub struct MemoryPresence {
    users: Mutex<HashMap<i64, NodeEntries>>,
}

/// One user's entries: node to status and deadline.
type NodeEntries = HashMap<String, (Status, Instant)>;

#[async_trait]
impl Presence for MemoryPresence {
    async fn set(&self, user: i64, node: &str, status: Status, ttl: Duration) -> StateResult<()> {
        if status == Status::Offline {
            return self.clear(user, node).await;
        }
        self.users
            .lock()
            .entry(user)
            .or_default()
            .insert(node.to_string(), (status, Instant::now() + ttl));
        Ok(())
    }

    async fn refresh(&self, node: &str, ttl: Duration) -> StateResult<usize> {
        let now = Instant::now();
        let mut live = 0;
        let mut users = self.users.lock();
        users.retain(|_, nodes| {
            nodes.retain(|_, (_, deadline)| *deadline > now);
            if let Some((_, deadline)) = nodes.get_mut(node) {
                *deadline = now + ttl;
                live += 1;
            }
            !nodes.is_empty()
        });
        Ok(live)
    }

    async fn clear(&self, user: i64, node: &str) -> StateResult<()> {
        let mut users = self.users.lock();
        if let Some(nodes) = users.get_mut(&user) {
            nodes.remove(node);
            if nodes.is_empty() {
                users.remove(&user);
            }
        }
        Ok(())
    }

    async fn get(&self, users: &[i64]) -> StateResult<Vec<Status>> {
        let now = Instant::now();
        let map = self.users.lock();
        Ok(users
            .iter()
            .map(|u| {
                Status::combine(
                    map.get(u)
                        .into_iter()
                        .flat_map(|nodes| nodes.values())
                        .filter(|(_, deadline)| *deadline > now)
                        .map(|(status, _)| *status),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_combine() {
        for s in [
            Status::Online,
            Status::Idle,
            Status::DoNotDisturb,
            Status::Offline,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::combine([]), Status::Offline);
        assert_eq!(
            Status::combine([Status::Idle, Status::Online]),
            Status::Online
        );
        assert_eq!(
            Status::combine([Status::Online, Status::DoNotDisturb]),
            Status::DoNotDisturb
        );
    }
}
