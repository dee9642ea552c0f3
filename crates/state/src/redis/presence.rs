//! Presence in Redis, as per-(user, node) keys with TTLs:
//!
//! - `{prefix}presence:e:{user}:{node}` = status, expiring after the TTL.
//!   Redis itself forgets a dead node's entries: that is the offline signal.
//! - `{prefix}presence:u:{user}` = set of nodes that may hold an entry for
//!   the user (read side), pruned of expired entries on read.
//! - `{prefix}presence:n:{node}` = set of users the node may hold (for the
//!   heartbeat), pruned on refresh.
//!
//! The index sets carry a TTL at least as long as their longest entry, so
//! they vanish too. A heartbeat is one script extending all of a node's
//! entries: O(users on the node) on the server, one round trip.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;

use super::{RedisConnection, millis};
use crate::{Presence, StateError, StateResult, Status};

/// Extends a key's TTL to at least ARGV-given ms (shared by the scripts).
const EXTEND: &str = r"
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
";

/// KEYS: entry, user's node set, node's user set.
/// ARGV: status, ttl ms, node, user.
static SET: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(&format!(
        r"{EXTEND}
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
extend(KEYS[2], ttl)
extend(KEYS[3], ttl)
return 1
"
    ))
});

/// KEYS: node's user set. ARGV: ttl ms, key prefix (`{prefix}presence:`),
/// node. Returns how many entries are still live.
static REFRESH: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(&format!(
        r"{EXTEND}
local ttl = tonumber(ARGV[1])
local live = 0
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('PEXPIRE', ARGV[2] .. 'e:' .. user .. ':' .. ARGV[3], ttl) == 1 then
    live = live + 1
    extend(ARGV[2] .. 'u:' .. user, ttl)
  else
    redis.call('SREM', KEYS[1], user)
  end
end
if live > 0 then extend(KEYS[1], ttl) end
return live
"
    ))
});

/// KEYS: each user's node set. ARGV: key prefix, then the users.
/// Returns, per user, the statuses of their live entries.
static GET: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local out = {}
for i, set in ipairs(KEYS) do
  local statuses = {}
  for _, node in ipairs(redis.call('SMEMBERS', set)) do
    local s = redis.call('GET', ARGV[1] .. 'e:' .. ARGV[i + 1] .. ':' .. node)
    if s then
      statuses[#statuses + 1] = s
    else
      redis.call('SREM', set, node)
    end
  end
  out[i] = statuses
end
return out
",
    )
});

/// Cluster-wide presence.
pub struct RedisPresence {
    redis: RedisConnection,
}

impl RedisPresence {
    pub fn new(redis: RedisConnection) -> Self {
        RedisPresence { redis }
    }

    fn entry(&self, user: i64, node: &str) -> String {
        self.redis.key(&format!("presence:e:{user}:{node}"))
    }
    fn user_nodes(&self, user: i64) -> String {
        self.redis.key(&format!("presence:u:{user}"))
    }
    fn node_users(&self, node: &str) -> String {
        self.redis.key(&format!("presence:n:{node}"))
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn set(&self, user: i64, node: &str, status: Status, ttl: Duration) -> StateResult<()> {
        if status == Status::Offline {
            return self.clear(user, node).await;
        }
        let _: i64 = SET
            .key(self.entry(user, node))
            .key(self.user_nodes(user))
            .key(self.node_users(node))
            .arg(status.as_str())
            .arg(millis(ttl))
            .arg(node)
            .arg(user)
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }

    async fn refresh(&self, node: &str, ttl: Duration) -> StateResult<usize> {
        let live: i64 = REFRESH
            .key(self.node_users(node))
            .arg(millis(ttl))
            .arg(self.redis.key("presence:"))
            .arg(node)
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(live.max(0) as usize)
    }

    async fn clear(&self, user: i64, node: &str) -> StateResult<()> {
        let () = ::redis::pipe()
            .atomic()
            .del(self.entry(user, node))
            .ignore()
            .srem(self.user_nodes(user), node)
            .ignore()
            .srem(self.node_users(node), user)
            .ignore()
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }

    async fn get(&self, users: &[i64]) -> StateResult<Vec<Status>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = GET.prepare_invoke();
        invocation.arg(self.redis.key("presence:"));
        for &user in users {
            invocation.key(self.user_nodes(user)).arg(user);
        }
        let found: Vec<Vec<String>> = invocation.invoke_async(&mut self.redis.conn()).await?;
        if found.len() != users.len() {
            return Err(StateError::Protocol(format!(
                "presence: {} answers for {} users",
                found.len(),
                users.len()
            )));
        }
        Ok(found
            .iter()
            .map(|statuses| Status::combine(statuses.iter().filter_map(|s| Status::parse(s))))
            .collect())
    }
}
