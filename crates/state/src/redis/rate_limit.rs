//! GCRA in Redis. Key: `{prefix}rl:{key}` holding the theoretical arrival
//! time in microseconds of Redis server time, with a TTL of the time until
//! it is fully rested (then it equals "no key" and may as well vanish).
//!
//! Why a Lua script: GCRA is read TAT, decide, write TAT. Done as separate
//! commands from several nodes, two requests could read the same TAT and
//! both be allowed; WATCH/MULTI would retry under contention. A script runs
//! atomically on the server in one round trip, with no retries.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use async_trait::async_trait;

use super::RedisConnection;
use crate::{Decision, MemoryRateLimiter, Quota, RateLimiter, StateResult};

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

/// What a node does with a request while Redis cannot decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WhenDown {
    /// Count on this node alone until Redis is back: limits keep working, each node
    /// allowing a client the whole quota (so up to N times it across N nodes).
    #[default]
    Local,
    /// Allow everything until Redis is back: nothing is refused for an outage of the
    /// limiter, at the price of no limits meanwhile.
    Allow,
}

/// After a failed call, how long requests skip Redis and go straight to the outage
/// rule. A call to an unreachable Redis takes up to a second (the connection
/// manager's retries), and a request can check several keys.
const SKIP_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The cluster-wide limiter: every node counts against the same keys.
pub struct RedisRateLimiter {
    redis: RedisConnection,
    when_down: WhenDown,
    /// The per-node counts used while Redis is unreachable (`WhenDown::Local`).
    local: MemoryRateLimiter,
    /// Until when Redis is not asked (set by a failure).
    skip_until: Mutex<Option<Instant>>,
}

impl RedisRateLimiter {
    pub fn new(redis: RedisConnection) -> Self {
        RedisRateLimiter::with_outage(redis, WhenDown::default())
    }

    pub fn with_outage(redis: RedisConnection, when_down: WhenDown) -> Self {
        RedisRateLimiter {
            redis,
            when_down,
            local: MemoryRateLimiter::default(),
            skip_until: Mutex::new(None),
        }
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
    /// Never refuses for its own outage: when Redis is unreachable the request is
    /// counted on this node (`WhenDown::Local`) or allowed (`WhenDown::Allow`), and
    /// logged, since refusing all traffic is worse than briefly limiting it less.
    async fn check(&self, key: &str, quota: Quota) -> Decision {
        let skipping = self.skip_until.lock().is_some_and(|t| Instant::now() < t);
        if !skipping {
            match self.try_check(key, quota).await {
                Ok(decision) => return decision,
                Err(e) => {
                    tracing::warn!(error = %e, when_down = ?self.when_down, "rate limiter's Redis unavailable");
                    *self.skip_until.lock() = Some(Instant::now() + SKIP_AFTER_FAILURE);
                }
            }
        }
        match self.when_down {
            WhenDown::Local => self.local.check(key, quota).await,
            WhenDown::Allow => Decision::Allowed,
        }
    }
}
