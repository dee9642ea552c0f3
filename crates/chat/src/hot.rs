//! Short-lived copies of the records every message send reads: its channel
//! and its author. Each send would otherwise spend two database round trips
//! on rows that almost never change. Entries live at most [`TTL`] and are
//! dropped at once when this node changes them; another node's change is
//! seen within the TTL (a send to a channel deleted elsewhere meanwhile
//! fails cleanly: the insert finds no channel and answers 404).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hearth_store::{ChannelRecord, UserRecord};
use hearth_types::{ChannelId, UserId};
use parking_lot::Mutex;

const TTL: Duration = Duration::from_secs(10);
const MAX: usize = 100_000;

#[derive(Default)]
pub(crate) struct HotRecords {
    channels: Mutex<HashMap<ChannelId, (ChannelRecord, Instant)>>,
    users: Mutex<HashMap<UserId, (UserRecord, Instant)>>,
}

fn get<K: std::hash::Hash + Eq, V: Clone>(m: &Mutex<HashMap<K, (V, Instant)>>, k: &K) -> Option<V> {
    let g = m.lock();
    let (v, at) = g.get(k)?;
    (at.elapsed() < TTL).then(|| v.clone())
}

fn put<K: std::hash::Hash + Eq, V>(m: &Mutex<HashMap<K, (V, Instant)>>, k: K, v: V) {
    let mut g = m.lock();
    if g.len() >= MAX {
        g.retain(|_, (_, at)| at.elapsed() < TTL);
        if g.len() >= MAX {
            g.clear();
        }
    }
    g.insert(k, (v, Instant::now()));
}

impl HotRecords {
    pub fn channel(&self, id: ChannelId) -> Option<ChannelRecord> {
        get(&self.channels, &id)
    }
    pub fn put_channel(&self, c: ChannelRecord) {
        put(&self.channels, c.id, c);
    }
    pub fn forget_channel(&self, id: ChannelId) {
        self.channels.lock().remove(&id);
    }
    pub fn user(&self, id: UserId) -> Option<UserRecord> {
        get(&self.users, &id)
    }
    pub fn put_user(&self, u: UserRecord) {
        put(&self.users, u.id, u);
    }
    pub fn forget_user(&self, id: UserId) {
        self.users.lock().remove(&id);
    }
}
