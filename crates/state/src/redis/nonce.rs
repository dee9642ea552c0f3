//! Nonce claims in Redis: `{prefix}nonce:{key}` = the winner's value, with
//! a TTL. Claiming is one script (read, else write with TTL) so it is atomic
//! across nodes and returns the existing value in the same round trip
//! (`SET NX GET` would too, but only on Redis 7+).

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;

use super::{RedisConnection, millis};
use crate::{Claim, NonceGuard, StateResult};

/// KEYS: the claim. ARGV: value, ttl ms. Returns the held value, or nil
/// when this call claimed it.
static CLAIM: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
",
    )
});

/// KEYS: the claim. ARGV: value. Deletes it only if it holds the value.
static RELEASE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// Cluster-wide idempotency claims.
pub struct RedisNonceGuard {
    redis: RedisConnection,
}

impl RedisNonceGuard {
    pub fn new(redis: RedisConnection) -> Self {
        RedisNonceGuard { redis }
    }
}

#[async_trait]
impl NonceGuard for RedisNonceGuard {
    async fn claim(&self, key: &str, value: &str, ttl: Duration) -> StateResult<Claim> {
        let held: Option<String> = CLAIM
            .key(self.redis.key(&format!("nonce:{key}")))
            .arg(value)
            .arg(millis(ttl))
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(match held {
            Some(value) => Claim::Existing(value),
            None => Claim::New,
        })
    }

    async fn release(&self, key: &str, value: &str) -> StateResult<bool> {
        let deleted: i64 = RELEASE
            .key(self.redis.key(&format!("nonce:{key}")))
            .arg(value)
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(deleted == 1)
    }
}
