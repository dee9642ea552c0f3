//! Who is in which voice channel, the same on every node.
//!
//! One entry per user (a user is in at most one voice channel at a time):
//! the community and channel, the node hosting the call (the room's
//! holder), and the state itself as opaque bytes (the server's encoding of
//! mute, deafen, video and so on). The host writes entries and re-puts them
//! every few seconds; an entry lives until its TTL, so the participants of
//! a host that died vanish by themselves unless a new host takes them over.
//!
//! Redis layout: `{prefix}voice:u:{user}` = `community channel host\n` +
//! state, with a TTL; `{prefix}voice:c:{community}` = set of users that may
//! have an entry there, pruned on read. Each write is one script, so
//! moving between communities never leaves a user listed in both.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::redis::RedisConnection;
use crate::{StateError, StateResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoiceEntry {
    pub user: i64,
    pub community: i64,
    pub channel: i64,
    /// The node hosting the call.
    pub host: String,
    pub state: Vec<u8>,
}

#[async_trait]
pub trait VoiceStates: Send + Sync + 'static {
    /// Puts `entry` for `ttl`, replacing the user's entry wherever it was;
    /// returns the replaced one.
    async fn put(&self, entry: &VoiceEntry, ttl: Duration) -> StateResult<Option<VoiceEntry>>;
    /// Removes the user's entry, only if it is in `channel` (when given):
    /// a late leave from an old channel never removes a newer join.
    async fn remove(&self, user: i64, channel: Option<i64>) -> StateResult<Option<VoiceEntry>>;
    async fn of_user(&self, user: i64) -> StateResult<Option<VoiceEntry>>;
    /// Every live entry in the community.
    async fn in_community(&self, community: i64) -> StateResult<Vec<VoiceEntry>>;
}

/// Voice states within one process.
#[derive(Default)]
pub struct MemoryVoiceStates {
    users: Mutex<HashMap<i64, (VoiceEntry, Instant)>>,
}

impl MemoryVoiceStates {
    fn live(users: &mut HashMap<i64, (VoiceEntry, Instant)>, user: i64) -> Option<VoiceEntry> {
        match users.get(&user) {
            Some((e, until)) if *until > Instant::now() => Some(e.clone()),
            Some(_) => {
                users.remove(&user);
                None
            }
            None => None,
        }
    }
}

#[async_trait]
impl VoiceStates for MemoryVoiceStates {
    async fn put(&self, entry: &VoiceEntry, ttl: Duration) -> StateResult<Option<VoiceEntry>> {
        let mut users = self.users.lock();
        let old = Self::live(&mut users, entry.user);
        users.insert(entry.user, (entry.clone(), Instant::now() + ttl));
        Ok(old)
    }

    async fn remove(&self, user: i64, channel: Option<i64>) -> StateResult<Option<VoiceEntry>> {
        let mut users = self.users.lock();
        match Self::live(&mut users, user) {
            Some(e) if channel.is_none_or(|c| c == e.channel) => {
                users.remove(&user);
                Ok(Some(e))
            }
            _ => Ok(None),
        }
    }

    async fn of_user(&self, user: i64) -> StateResult<Option<VoiceEntry>> {
        Ok(Self::live(&mut self.users.lock(), user))
    }

    async fn in_community(&self, community: i64) -> StateResult<Vec<VoiceEntry>> {
        let now = Instant::now();
        let mut users = self.users.lock();
        users.retain(|_, (_, until)| *until > now);
        let mut out: Vec<VoiceEntry> = users
            .values()
            .filter(|(e, _)| e.community == community)
            .map(|(e, _)| e.clone())
            .collect();
        out.sort_by_key(|e| e.user);
        Ok(out)
    }
}

/// KEYS: user key, new community set, key prefix of community sets.
/// ARGV: encoded entry, ttl ms, user, new community. Returns the old value.
static PUT: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
if old then
  local c = string.match(old, '^(%-?%d+) ')
  if c and c ~= ARGV[4] then redis.call('SREM', KEYS[3] .. c, ARGV[3]) end
end
return old
",
    )
});

/// KEYS: user key, key prefix of community sets. ARGV: user, channel or ''.
static REMOVE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local old = redis.call('GET', KEYS[1])
if not old then return false end
local c, ch = string.match(old, '^(%-?%d+) (%-?%d+) ')
if ARGV[2] ~= '' and ch ~= ARGV[2] then return false end
redis.call('DEL', KEYS[1])
if c then redis.call('SREM', KEYS[2] .. c, ARGV[1]) end
return old
",
    )
});

/// KEYS: the community set. ARGV: prefix of user keys. Returns the live
/// entries, pruning users whose entry expired or moved elsewhere.
static LIST: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local out = {}
local community = string.match(KEYS[1], '(%-?%d+)$')
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. user)
  if v and string.match(v, '^(%-?%d+) ') == community then
    out[#out + 1] = user
    out[#out + 1] = v
  else
    redis.call('SREM', KEYS[1], user)
  end
end
return out
",
    )
});

/// Voice states in Redis, shared by every node.
pub struct RedisVoiceStates {
    redis: RedisConnection,
}

impl RedisVoiceStates {
    pub fn new(redis: RedisConnection) -> Self {
        RedisVoiceStates { redis }
    }

    fn user_key(&self, user: i64) -> String {
        self.redis.key(&format!("voice:u:{user}"))
    }
    fn community_key(&self, community: i64) -> String {
        self.redis.key(&format!("voice:c:{community}"))
    }
}

fn encode(e: &VoiceEntry) -> Vec<u8> {
    let mut out = format!("{} {} {}\n", e.community, e.channel, e.host).into_bytes();
    out.extend_from_slice(&e.state);
    out
}

fn decode(user: i64, raw: &[u8]) -> StateResult<VoiceEntry> {
    let bad = || StateError::Protocol("voice: a malformed entry".into());
    let nl = raw.iter().position(|b| *b == b'\n').ok_or_else(bad)?;
    let head = std::str::from_utf8(&raw[..nl]).map_err(|_| bad())?;
    let mut parts = head.splitn(3, ' ');
    let mut num =
        || -> StateResult<i64> { parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad) };
    let (community, channel) = (num()?, num()?);
    let host = parts.next().ok_or_else(bad)?.to_string();
    Ok(VoiceEntry {
        user,
        community,
        channel,
        host,
        state: raw[nl + 1..].to_vec(),
    })
}

#[async_trait]
impl VoiceStates for RedisVoiceStates {
    async fn put(&self, entry: &VoiceEntry, ttl: Duration) -> StateResult<Option<VoiceEntry>> {
        if entry.host.contains([' ', '\n']) {
            return Err(StateError::Protocol("voice: a host with spaces".into()));
        }
        let old: Option<Vec<u8>> = PUT
            .key(self.user_key(entry.user))
            .key(self.community_key(entry.community))
            .key(self.redis.key("voice:c:"))
            .arg(encode(entry))
            .arg(crate::redis::millis(ttl))
            .arg(entry.user)
            .arg(entry.community)
            .invoke_async(&mut self.redis.conn())
            .await?;
        old.map(|raw| decode(entry.user, &raw)).transpose()
    }

    async fn remove(&self, user: i64, channel: Option<i64>) -> StateResult<Option<VoiceEntry>> {
        let old: Option<Vec<u8>> = REMOVE
            .key(self.user_key(user))
            .key(self.redis.key("voice:c:"))
            .arg(user)
            .arg(channel.map(|c| c.to_string()).unwrap_or_default())
            .invoke_async(&mut self.redis.conn())
            .await?;
        old.map(|raw| decode(user, &raw)).transpose()
    }

    async fn of_user(&self, user: i64) -> StateResult<Option<VoiceEntry>> {
        let raw: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(self.user_key(user))
            .query_async(&mut self.redis.conn())
            .await?;
        raw.map(|raw| decode(user, &raw)).transpose()
    }

    async fn in_community(&self, community: i64) -> StateResult<Vec<VoiceEntry>> {
        let flat: Vec<Vec<u8>> = LIST
            .key(self.community_key(community))
            .arg(self.redis.key("voice:u:"))
            .invoke_async(&mut self.redis.conn())
            .await?;
        let mut out = Vec::with_capacity(flat.len() / 2);
        for pair in flat.chunks(2) {
            let [user, raw] = pair else {
                return Err(StateError::Protocol("voice: an odd answer".into()));
            };
            let user: i64 = std::str::from_utf8(user)
                .ok()
                .and_then(|u| u.parse().ok())
                .ok_or_else(|| StateError::Protocol("voice: a bad user".into()))?;
            out.push(decode(user, raw)?);
        }
        out.sort_by_key(|e| e.user);
        Ok(out)
    }
}
