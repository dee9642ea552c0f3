//! A cache of small, immutable files (image previews, avatars, community
//! icons) in front of the blob store: a node serves a hot file from memory,
//! and in a cluster from the shared Redis, without a round trip to the
//! object store.
//!
//! Keys are the caller's (its blob keys); values are whole files. The cache
//! only speeds reads up: it is never the record, entries may vanish at any
//! moment (eviction, TTL, a restarted Redis) and callers fall back to the
//! blob store. It knows nothing of permissions: callers check access before
//! they ask, and only cache files that never change under a key.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use lru::LruCache;
use parking_lot::Mutex;

use crate::StateResult;

#[async_trait]
pub trait FileCache: Send + Sync {
    async fn get(&self, key: &str) -> StateResult<Option<Bytes>>;
    /// Keeps `bytes` under `key` for at most `ttl` (or until evicted).
    async fn put(&self, key: &str, bytes: Bytes, ttl: Duration) -> StateResult<()>;
    async fn remove(&self, key: &str) -> StateResult<()>;
}

struct Entry {
    bytes: Bytes,
    expires: Instant,
}

struct Lru {
    entries: LruCache<String, Entry>,
    /// The sum of the cached files' sizes.
    held: usize,
}

/// One node's cache: least recently used files go first once the total
/// passes `budget` bytes. A file larger than an eighth of the budget is not
/// kept (one would otherwise push out everything else).
pub struct MemoryFileCache {
    budget: usize,
    inner: Mutex<Lru>,
}

impl MemoryFileCache {
    pub fn new(budget: usize) -> Self {
        MemoryFileCache {
            budget,
            inner: Mutex::new(Lru {
                entries: LruCache::unbounded(),
                held: 0,
            }),
        }
    }

    /// The bytes held now.
    pub fn held(&self) -> usize {
        self.inner.lock().held
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_now(&self, key: &str, now: Instant) -> Option<Bytes> {
        let mut lru = self.inner.lock();
        let expired = match lru.entries.get(key) {
            None => return None,
            Some(e) if e.expires > now => return Some(e.bytes.clone()),
            Some(_) => true,
        };
        if expired && let Some(e) = lru.entries.pop(key) {
            lru.held -= e.bytes.len();
        }
        None
    }

    fn put_now(&self, key: &str, bytes: Bytes, expires: Instant) {
        if bytes.len() > self.budget / 8 {
            return;
        }
        let mut lru = self.inner.lock();
        let len = bytes.len();
        if let Some(old) = lru.entries.put(key.to_owned(), Entry { bytes, expires }) {
            lru.held -= old.bytes.len();
        }
        lru.held += len;
        while lru.held > self.budget {
            match lru.entries.pop_lru() {
                Some((_, e)) => lru.held -= e.bytes.len(),
                None => break,
            }
        }
    }
}

#[async_trait]
impl FileCache for MemoryFileCache {
    async fn get(&self, key: &str) -> StateResult<Option<Bytes>> {
        Ok(self.get_now(key, Instant::now()))
    }

    async fn put(&self, key: &str, bytes: Bytes, ttl: Duration) -> StateResult<()> {
        self.put_now(key, bytes, Instant::now() + ttl);
        Ok(())
    }

    async fn remove(&self, key: &str) -> StateResult<()> {
        let mut lru = self.inner.lock();
        if let Some(e) = lru.entries.pop(key) {
            lru.held -= e.bytes.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: usize, v: u8) -> Bytes {
        Bytes::from(vec![v; n])
    }

    #[test]
    fn bounded_by_bytes_least_recently_used_first() {
        let c = MemoryFileCache::new(800);
        let later = Instant::now() + Duration::from_secs(60);
        c.put_now("a", b(100, 1), later);
        c.put_now("b", b(100, 2), later);
        c.put_now("too-big", b(101, 3), later);
        assert_eq!((c.len(), c.held()), (2, 200), "over budget/8 is not kept");
        for i in 0..8 {
            // "a" stays hot.
            assert!(c.get_now("a", Instant::now()).is_some());
            c.put_now(&format!("k{i}"), b(100, 4), later);
        }
        assert!(c.held() <= 800);
        assert!(
            c.get_now("a", Instant::now()).is_some(),
            "the hot one stays"
        );
        assert!(
            c.get_now("b", Instant::now()).is_none(),
            "the cold one went"
        );
        // Replacing a key counts its size once.
        c.put_now("a", b(50, 9), later);
        let held: usize = c.held();
        assert!(held <= 800);
        assert_eq!(
            c.get_now("a", Instant::now()).as_deref(),
            Some(&[9u8; 50][..])
        );
    }

    #[test]
    fn entries_expire() {
        let c = MemoryFileCache::new(1000);
        let now = Instant::now();
        c.put_now("x", b(10, 1), now + Duration::from_millis(10));
        assert!(c.get_now("x", now).is_some());
        assert!(c.get_now("x", now + Duration::from_millis(11)).is_none());
        assert_eq!((c.len(), c.held()), (0, 0));
    }
}
