//! Typing in Redis: `{prefix}typing:{channel}` is a sorted set of user ids
//! scored by the millisecond (Redis server time) their typing expires.
//! Reads take scores after now; writes drop expired members; the key's own
//! TTL covers the longest entry, so a quiet channel's key vanishes.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;

use super::{RedisConnection, millis};
use crate::{StateResult, Typing};

/// The server clock in ms, shared by both scripts.
const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: the channel's set. ARGV: user, ttl ms.
static START: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(&format!(
        r"redis.replicate_commands()
{NOW}
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"
    ))
});

/// KEYS: the channel's set. Returns the users whose typing has not expired.
static ACTIVE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(&format!(
        r"{NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf')
"
    ))
});

/// Cluster-wide typing indicators.
pub struct RedisTyping {
    redis: RedisConnection,
}

impl RedisTyping {
    pub fn new(redis: RedisConnection) -> Self {
        RedisTyping { redis }
    }

    fn channel(&self, channel: i64) -> String {
        self.redis.key(&format!("typing:{channel}"))
    }
}

#[async_trait]
impl Typing for RedisTyping {
    async fn start(&self, channel: i64, user: i64, ttl: Duration) -> StateResult<()> {
        let _: i64 = START
            .key(self.channel(channel))
            .arg(user)
            .arg(millis(ttl))
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }

    async fn stop(&self, channel: i64, user: i64) -> StateResult<()> {
        let _: i64 = ::redis::cmd("ZREM")
            .arg(self.channel(channel))
            .arg(user)
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }

    async fn active(&self, channel: i64) -> StateResult<Vec<i64>> {
        let mut users: Vec<i64> = ACTIVE
            .key(self.channel(channel))
            .invoke_async(&mut self.redis.conn())
            .await?;
        users.sort_unstable();
        Ok(users)
    }
}
