//! Counted slots under a key: "at most N of these at once", shared by every
//! node (e.g. a user's concurrent gateway sessions). A holder takes a slot
//! for a TTL and renews it while it lives; a node that dies stops renewing,
//! so its slots lapse by themselves and never lock anyone out for longer
//! than the TTL.
//!
//! Redis layout: `{prefix}slots:{key}` is a sorted set of holders scored
//! by their expiry (milliseconds on Redis's clock, `TIME`), with a key TTL
//! as long as the longest slot. Each operation is one script: expired
//! holders are dropped, then the set is counted and added to atomically, so
//! two nodes can never both take the last slot.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use crate::{StateError, StateResult};

#[async_trait]
pub trait Slots: Send + Sync + 'static {
    /// Takes a slot under `key` for `holder`, for `ttl`, if fewer than `max`
    /// live slots are held there. A holder that already has one keeps it
    /// (and it is extended): acquiring is re-entrant.
    async fn acquire(
        &self,
        key: &str,
        holder: &str,
        max: usize,
        ttl: Duration,
    ) -> StateResult<bool>;
    /// Extends each `(key, holder)` slot by `ttl`; one that lapsed is taken
    /// again whatever the count (its holder never stopped living).
    async fn renew(&self, slots: &[(String, String)], ttl: Duration) -> StateResult<()>;
    /// Gives a slot up (nothing if it is not held).
    async fn release(&self, key: &str, holder: &str) -> StateResult<()>;
    /// Live slots under `key`.
    async fn count(&self, key: &str) -> StateResult<usize>;
}

/// Slots within one process.
#[derive(Default)]
pub struct MemorySlots {
    keys: Mutex<HashMap<String, HashMap<String, Instant>>>,
}

impl MemorySlots {
    fn live<'a>(
        keys: &'a mut HashMap<String, HashMap<String, Instant>>,
        key: &str,
        now: Instant,
    ) -> &'a mut HashMap<String, Instant> {
        let held = keys.entry(key.to_string()).or_default();
        held.retain(|_, until| *until > now);
        held
    }
}

#[async_trait]
impl Slots for MemorySlots {
    async fn acquire(
        &self,
        key: &str,
        holder: &str,
        max: usize,
        ttl: Duration,
    ) -> StateResult<bool> {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        let held = Self::live(&mut keys, key, now);
        if held.contains_key(holder) || held.len() < max {
            held.insert(holder.to_string(), now + ttl);
            return Ok(true);
        }
        Ok(false)
    }

    async fn renew(&self, slots: &[(String, String)], ttl: Duration) -> StateResult<()> {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        for (key, holder) in slots {
            Self::live(&mut keys, key, now).insert(holder.clone(), now + ttl);
        }
        Ok(())
    }

    async fn release(&self, key: &str, holder: &str) -> StateResult<()> {
        let mut keys = self.keys.lock();
        if let Some(held) = keys.get_mut(key) {
            held.remove(holder);
            if held.is_empty() {
                keys.remove(key);
            }
        }
        Ok(())
    }

    async fn count(&self, key: &str) -> StateResult<usize> {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        let n = Self::live(&mut keys, key, now).len();
        if n == 0 {
            keys.remove(key);
        }
        Ok(n)
    }
}

/// KEYS: the set. ARGV: holder, max, ttl ms. Returns 1 if taken.
static ACQUIRE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
",
    )
});

/// KEYS: the sets. ARGV: ttl ms, then one holder per key.
static RENEW: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', k, ttl)
end
return 1
",
    )
});

/// KEYS: the set. Returns the live count.
static COUNT: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
",
    )
});

/// Slots in Redis, shared by every node. The connection is made on first
/// use (and remade by itself after errors).
pub struct RedisSlots {
    client: ::redis::Client,
    conn: OnceCell<::redis::aio::ConnectionManager>,
    prefix: String,
}

/// Renewals go in batches of this many slots (one script each).
const RENEW_BATCH: usize = 500;

impl RedisSlots {
    /// `url` as for [`crate::RedisConnection::connect`]; keys start with `prefix`.
    pub fn new(url: &str, prefix: &str) -> StateResult<Self> {
        Ok(RedisSlots {
            client: ::redis::Client::open(url)?,
            conn: OnceCell::new(),
            prefix: prefix.to_string(),
        })
    }

    async fn conn(&self) -> StateResult<::redis::aio::ConnectionManager> {
        let c = self
            .conn
            .get_or_try_init(|| async {
                let config = ::redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(1));
                ::redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .map_err(StateError::from)?;
        Ok(c.clone())
    }

    fn key(&self, key: &str) -> String {
        format!("{}slots:{key}", self.prefix)
    }
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

#[async_trait]
impl Slots for RedisSlots {
    async fn acquire(
        &self,
        key: &str,
        holder: &str,
        max: usize,
        ttl: Duration,
    ) -> StateResult<bool> {
        let taken: i64 = ACQUIRE
            .key(self.key(key))
            .arg(holder)
            .arg(max)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn().await?)
            .await?;
        Ok(taken == 1)
    }

    async fn renew(&self, slots: &[(String, String)], ttl: Duration) -> StateResult<()> {
        let mut conn = self.conn().await?;
        for batch in slots.chunks(RENEW_BATCH) {
            let mut inv = RENEW.prepare_invoke();
            inv.arg(millis(ttl));
            for (key, holder) in batch {
                inv.key(self.key(key));
                inv.arg(holder);
            }
            let _: i64 = inv.invoke_async(&mut conn).await?;
        }
        Ok(())
    }

    async fn release(&self, key: &str, holder: &str) -> StateResult<()> {
        let _: i64 = ::redis::cmd("ZREM")
            .arg(self.key(key))
            .arg(holder)
            .query_async(&mut self.conn().await?)
            .await?;
        Ok(())
    }

    async fn count(&self, key: &str) -> StateResult<usize> {
        let n: i64 = COUNT
            .key(self.key(key))
            .invoke_async(&mut self.conn().await?)
            .await?;
        Ok(n.max(0) as usize)
    }
}
