//! GCRA in Redis. Key: `{prefix}rl:{key}` holding the theoretical arrival
//! time in microseconds of Redis server time, with a TTL of the time until
//! it is fully rested (then it equals "no key" and may as well vanish).
//!
//! Why a Lua script: GCRA is read TAT, decide, write TAT. Done as separate
//! commands from several nodes, two requests could read the same TAT and
//! both be allowed; WATCH/MULTI would retry under contention. A script runs
//! atomically on the server in one round trip, with no retries.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;

use super::RedisConnection;
use crate::{Decision, Quota, RateLimiter, StateResult};

/// KEYS[1] = the key; ARGV[1] = interval (µs), ARGV[2] = tolerance (µs).
/// Returns -1 when allowed, else how long until allowed (µs).
static GCRA: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
redis.replicate_commands()
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return allow_at - now
end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl_ms))
return -1
",
    )
});

/// The cluster-wide limiter: every node counts against the same keys.
pub struct RedisRateLimiter {
    redis: RedisConnection,
}

impl RedisRateLimiter {
    pub fn new(redis: RedisConnection) -> Self {
        RedisRateLimiter { redis }
    }

    /// The decision, or why Redis could not make it.
    pub async fn try_check(&self, key: &str, quota: Quota) -> StateResult<Decision> {
        let interval = quota.interval().as_micros() as u64;
        let tolerance = quota.tolerance().as_micros() as u64;
        let wait: i64 = GCRA
            .key(self.redis.key(&format!("rl:{key}")))
            .arg(interval.max(1))
            .arg(tolerance)
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(if wait < 0 {
            Decision::Allowed
        } else {
            Decision::Limited {
                retry_after: Duration::from_micros(wait.max(1) as u64),
            }
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    /// Fails open: when Redis is unreachable requests are allowed (and
    /// logged), since refusing all traffic is worse than briefly not
    /// limiting it.
    async fn check(&self, key: &str, quota: Quota) -> Decision {
        match self.try_check(key, quota).await {
            Ok(decision) => decision,
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter unavailable; allowing");
                Decision::Allowed
            }
        }
    }
}
