//! Leases in Redis: `{prefix}lease:{key}` = holder (with the lease TTL),
//! `{prefix}lease:{key}:floor` = the highest number any holder left (a
//! decimal string, compared by length then digits, so 63-bit IDs stay
//! exact; Lua numbers are doubles), `{prefix}lease:{key}:ask` = a handover
//! request (short TTL). Each operation is one script.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;

use super::{RedisConnection, millis};
use crate::{Leases, StateResult};

/// KEYS: lease, floor. ARGV: holder, ttl ms. Returns the floor, or nil.
static ACQUIRE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('GET', KEYS[2]) or '0'
",
    )
});

/// KEYS: lease, floor. ARGV: holder, floor. Returns 1 if it was held.
static RELEASE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local old = redis.call('GET', KEYS[2]) or '0'
local new = ARGV[2]
if #new > #old or (#new == #old and new > old) then
  redis.call('SET', KEYS[2], new, 'EX', 86400)
end
redis.call('DEL', KEYS[1])
return 1
",
    )
});

pub struct RedisLeases {
    redis: RedisConnection,
}

impl RedisLeases {
    pub fn new(redis: RedisConnection) -> Self {
        RedisLeases { redis }
    }

    fn lease(&self, key: &str) -> String {
        self.redis.key(&format!("lease:{key}"))
    }
}

#[async_trait]
impl Leases for RedisLeases {
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> StateResult<Option<i64>> {
        let k = self.lease(key);
        let floor: Option<String> = ACQUIRE
            .key(&k)
            .key(format!("{k}:floor"))
            .arg(holder)
            .arg(millis(ttl))
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(floor.map(|f| f.parse().unwrap_or(0)))
    }

    async fn release(&self, key: &str, holder: &str, floor: i64) -> StateResult<bool> {
        let k = self.lease(key);
        let held: i64 = RELEASE
            .key(&k)
            .key(format!("{k}:floor"))
            .arg(holder)
            .arg(floor.max(0).to_string())
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(held == 1)
    }

    async fn request(&self, key: &str, ttl: Duration) -> StateResult<()> {
        let _: () = ::redis::cmd("SET")
            .arg(format!("{}:ask", self.lease(key)))
            .arg(1)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }

    async fn requested(&self, key: &str) -> StateResult<bool> {
        let n: i64 = ::redis::cmd("DEL")
            .arg(format!("{}:ask", self.lease(key)))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(n == 1)
    }
}
