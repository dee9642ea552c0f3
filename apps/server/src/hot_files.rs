//! The hot-file cache on the serve path (issue #11 item 5): image previews,
//! avatars and community icons — small files that never change under their
//! blob key — kept in this node's memory (`hearth_state::MemoryFileCache`, an
//! LRU bounded in bytes) and, when the node runs with Redis, in Redis too
//! (`RedisFileCache`, with a TTL), so a node of a cluster serves a file
//! another node already read without going to the object store.
//!
//! Invariants: the HTTP layer checks access *before* asking (the cache
//! knows no permissions); only settled files are cached (an original the
//! image pipeline may still rewrite never is); a deleted file is forgotten
//! here and its row is gone, so it is 404 before the cache is asked. A Redis
//! that fails is skipped for two seconds (the blob store answers), never an
//! error for the client.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hearth_state::{FileCache, MemoryFileCache, RedisConnection, RedisFileCache};
use hearth_types::now_ms;
use prometheus::{IntCounterVec, IntGauge, Opts};

use crate::config::MediaConfig;
use crate::metrics::Metrics;

/// After a Redis error, how long the shared tier is left alone.
const REDIS_BACKOFF_MS: i64 = 2_000;

pub struct HotFiles {
    local: Option<MemoryFileCache>,
    shared: Option<RedisFileCache>,
    max_file: u64,
    ttl: Duration,
    redis_skip_until: AtomicI64,
    lookups: IntCounterVec,
    held: IntGauge,
}

impl HotFiles {
    pub fn new(cfg: &MediaConfig, redis: Option<&RedisConnection>, metrics: &Metrics) -> HotFiles {
        let lookups = IntCounterVec::new(
            Opts::new(
                "hearth_media_cache_total",
                "Hot-file cache lookups by tier (memory, redis) and result (hit, miss)",
            ),
            &["tier", "result"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let held = IntGauge::new(
            "hearth_media_cache_bytes",
            "Bytes held by this node's hot-file cache",
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        for c in [
            Box::new(lookups.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(held.clone()),
        ] {
            if let Err(e) = metrics.registry().register(c) {
                tracing::warn!(error = %e, "registering a cache metric");
            }
        }
        let on = cfg.hot_cache_max_file_bytes > 0;
        HotFiles {
            local: (on && cfg.hot_cache_bytes > 0)
                .then(|| MemoryFileCache::new(cfg.hot_cache_bytes as usize)),
            shared: redis.filter(|_| on).cloned().map(RedisFileCache::new),
            max_file: cfg.hot_cache_max_file_bytes,
            ttl: Duration::from_secs(cfg.hot_cache_ttl_secs.max(1)),
            redis_skip_until: AtomicI64::new(0),
            lookups,
            held,
        }
    }

    /// Whether a file of `size` bytes is worth caching at all.
    pub fn fits(&self, size: u64) -> bool {
        (self.local.is_some() || self.shared.is_some()) && size <= self.max_file
    }

    fn redis(&self) -> Option<&RedisFileCache> {
        self.shared
            .as_ref()
            .filter(|_| now_ms() >= self.redis_skip_until.load(Ordering::Relaxed))
    }

    fn redis_failed(&self, what: &str, e: hearth_state::StateError) {
        tracing::warn!(error = %e, "hot-file cache: {what} in Redis failed; skipping it for 2 s");
        self.redis_skip_until
            .store(now_ms() + REDIS_BACKOFF_MS, Ordering::Relaxed);
    }

    fn count(&self, tier: &str, hit: bool) {
        self.lookups
            .with_label_values(&[tier, if hit { "hit" } else { "miss" }])
            .inc();
    }

    /// The file under `key`, from memory or else Redis (then kept in memory).
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        if let Some(local) = &self.local {
            let found = local.get(key).await.ok().flatten();
            self.count("memory", found.is_some());
            if found.is_some() {
                return found;
            }
        }
        let shared = self.redis()?;
        match shared.get(key).await {
            Ok(Some(bytes)) => {
                self.count("redis", true);
                self.put_local(key, bytes.clone()).await;
                Some(bytes)
            }
            Ok(None) => {
                self.count("redis", false);
                None
            }
            Err(e) => {
                self.redis_failed("a read", e);
                None
            }
        }
    }

    async fn put_local(&self, key: &str, bytes: Bytes) {
        if let Some(local) = &self.local {
            let _ = local.put(key, bytes, self.ttl).await;
            self.held.set(local.held() as i64);
        }
    }

    /// Keeps a file just read from the blob store (in both tiers).
    pub async fn put(&self, key: &str, bytes: Bytes) {
        if bytes.len() as u64 > self.max_file {
            return;
        }
        self.put_local(key, bytes.clone()).await;
        if let Some(shared) = self.redis()
            && let Err(e) = shared.put(key, bytes, self.ttl).await
        {
            self.redis_failed("a write", e);
        }
    }

    /// Drops a deleted file (this node's memory and Redis; other nodes'
    /// memories keep it until evicted, but its row is gone, so it is 404
    /// before any cache is asked).
    pub async fn forget(&self, key: &str) {
        if let Some(local) = &self.local {
            let _ = local.remove(key).await;
            self.held.set(local.held() as i64);
        }
        if let Some(shared) = self.redis()
            && let Err(e) = shared.remove(key).await
        {
            self.redis_failed("a delete", e);
        }
    }
}
