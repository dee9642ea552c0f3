//! Repeated-message detection: per (community, author), the hashes and
//! times of the last [`RING`] messages, in a bounded LRU split into shards
//! so concurrent sends rarely share a lock.
//!
//! Memory is bounded by `max_authors` (about 300 bytes each); an author
//! evicted by the LRU simply starts again with an empty ring, which only
//! makes detection more lenient. State is per node: in a cluster an author
//! whose sends land on different nodes is counted on each separately.

use std::hash::{Hash, Hasher};

use hashlink::LruCache;
use hearth_types::{CommunityId, UserId};
use parking_lot::Mutex;

/// Messages remembered per author and community; a flood rule's
/// `max_repeats` is at most `RING - 1`.
pub const RING: usize = 16;

const SHARDS: usize = 16;

#[derive(Clone, Copy, Default)]
struct Ring {
    hashes: [u64; RING],
    times: [i64; RING],
    next: u8,
    len: u8,
}

/// The recent messages of one author with the same content as the current
/// one: their times (the current message included), newest last.
#[derive(Clone, Copy)]
pub struct Repeats {
    times: [i64; RING],
    len: usize,
}

impl Repeats {
    /// How many of them (the current message included) are at or after `since`.
    pub fn count_since(&self, since: i64) -> usize {
        self.times[..self.len]
            .iter()
            .filter(|&&t| t >= since)
            .count()
    }
}

/// Recent messages per (community, author), bounded in memory.
pub struct FloodTracker {
    shards: Vec<Mutex<LruCache<(CommunityId, UserId), Ring>>>,
}

impl FloodTracker {
    /// Remembers at most `max_authors` (community, author) pairs, least
    /// recently active forgotten first.
    pub fn new(max_authors: usize) -> FloodTracker {
        let per = max_authors.div_ceil(SHARDS).max(1);
        FloodTracker {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per)))
                .collect(),
        }
    }

    /// Authors remembered now, all shards together.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a message (its normalized text) at `now` (Unix ms) and
    /// returns the times of the remembered messages with the same text.
    pub fn record(&self, community: CommunityId, author: UserId, text: &str, now: i64) -> Repeats {
        let hash = {
            let mut h = std::hash::DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        let shard =
            (author.0 as u64 ^ community.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        let mut map = self.shards[shard as usize % SHARDS].lock();
        let key = (community, author);
        let ring = match map.get_mut(&key) {
            Some(r) => r,
            None => {
                map.insert(key, Ring::default());
                // Just inserted, so present (the LRU evicts others, not it).
                map.get_mut(&key).expect("entry just inserted")
            }
        };
        let i = usize::from(ring.next);
        ring.hashes[i] = hash;
        ring.times[i] = now;
        ring.next = ((i + 1) % RING) as u8;
        ring.len = (usize::from(ring.len) + 1).min(RING) as u8;
        let mut out = Repeats {
            times: [0; RING],
            len: 0,
        };
        for k in 0..usize::from(ring.len) {
            // Oldest first.
            let j = (usize::from(ring.next) + RING - usize::from(ring.len) + k) % RING;
            if ring.hashes[j] == hash {
                out.times[out.len] = ring.times[j];
                out.len += 1;
            }
        }
        out
    }
}
