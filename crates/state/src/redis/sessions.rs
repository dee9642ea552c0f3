//! Gateway session records in Redis:
//!
//! - `{prefix}gw:{session}` is a hash: `user`, `auth` (the sign-in session)
//!   and `gen`, the current generation.
//! - `{prefix}gw:{session}:{gen}` holds the frames of that generation as
//!   concatenated binary runs ([`crate::sessions::encode_run`]), appended
//!   with `APPEND`, so recording a batch costs a few bytes per frame.
//!
//! Both keys carry the resume window as TTL, extended on every write. Taking
//! over (open) bumps `gen` and deletes the previous generation's frames in
//! the same script; appends name their generation and are dropped when it is
//! not the current one, so a node that lost a session cannot corrupt it.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::AsyncCommands;
use async_trait::async_trait;

use super::{RedisConnection, millis};
use crate::sessions::{
    Append, Frame, SessionLog, SessionMeta, SessionRecord, decode_runs, encode_run,
};
use crate::{StateError, StateResult};

/// KEYS: the hash. ARGV: user, auth, ttl ms, first run. Returns the new generation.
static OPEN: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'auth', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[1] .. ':' .. (gen - 1))
redis.call('SET', KEYS[1] .. ':' .. gen, ARGV[4], 'PX', ARGV[3])
return gen
",
    )
});

/// KEYS: the hash. ARGV: generation, run, ttl ms, replace (0/1). Returns 1
/// (appended), 0 (another generation is current) or -1 (no record).
static APPEND: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then return -1 end
if gen ~= ARGV[1] then return 0 end
local frames = KEYS[1] .. ':' .. ARGV[1]
if ARGV[4] == '1' then
  redis.call('SET', frames, ARGV[2], 'PX', ARGV[3])
else
  redis.call('APPEND', frames, ARGV[2])
  redis.call('PEXPIRE', frames, ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
",
    )
});

pub struct RedisSessionLog {
    redis: RedisConnection,
}

impl RedisSessionLog {
    pub fn new(redis: RedisConnection) -> Self {
        RedisSessionLog { redis }
    }

    fn meta_key(&self, session: &str) -> String {
        self.redis.key(&format!("gw:{session}"))
    }
}

#[async_trait]
impl SessionLog for RedisSessionLog {
    async fn open(
        &self,
        session: &str,
        meta: &SessionMeta,
        first_seq: u64,
        frames: &[Frame],
        ttl: Duration,
    ) -> StateResult<u64> {
        let generation: u64 = OPEN
            .key(self.meta_key(session))
            .arg(meta.user)
            .arg(meta.auth_session)
            .arg(millis(ttl))
            .arg(encode_run(first_seq, frames))
            .invoke_async(&mut self.redis.conn())
            .await?;
        Ok(generation)
    }

    async fn append(&self, batch: &[Append], ttl: Duration) -> StateResult<Vec<usize>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // One pipeline: each script call is atomic, the batch one round trip.
        let mut pipe = ::redis::pipe();
        for a in batch {
            let mut inv = APPEND.key(self.meta_key(&a.session));
            inv.arg(a.generation.to_string())
                .arg(encode_run(a.first_seq, &a.frames))
                .arg(millis(ttl))
                .arg(if a.replace { "1" } else { "0" });
            pipe.invoke_script(&inv);
        }
        let mut c = self.redis.conn();
        let answers: Vec<i64> = match pipe.query_async(&mut c).await {
            Ok(a) => a,
            // The server lost the script cache (restart): load and retry once.
            Err(e)
                if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
            {
                APPEND.prepare_invoke().load_async(&mut c).await?;
                pipe.query_async(&mut c).await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(answers
            .iter()
            .enumerate()
            .filter(|(_, a)| **a < 0)
            .map(|(i, _)| i)
            .collect())
    }

    async fn load(&self, session: &str) -> StateResult<Option<SessionRecord>> {
        let mut c = self.redis.conn();
        let key = self.meta_key(session);
        let h: std::collections::HashMap<String, String> = c.hgetall(&key).await?;
        let field = |name: &str| -> StateResult<Option<i64>> {
            h.get(name)
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| StateError::Protocol(format!("session {name} {v:?}")))
                })
                .transpose()
        };
        let (Some(user), Some(auth), Some(generation)) =
            (field("user")?, field("auth")?, field("gen")?)
        else {
            return Ok(None);
        };
        let bytes: Option<Vec<u8>> = c.get(format!("{key}:{generation}")).await?;
        let Some((first_seq, frames)) = decode_runs(bytes.as_deref().unwrap_or_default())? else {
            return Ok(None);
        };
        Ok(Some(SessionRecord {
            meta: SessionMeta {
                user,
                auth_session: auth,
            },
            generation: generation as u64,
            first_seq,
            frames,
        }))
    }

    async fn remove(&self, session: &str) -> StateResult<()> {
        let mut c = self.redis.conn();
        let key = self.meta_key(session);
        let generation: Option<u64> = c.hget(&key, "gen").await?;
        let mut keys = vec![key.clone()];
        if let Some(g) = generation {
            keys.push(format!("{key}:{g}"));
        }
        let _: () = c.del(keys).await?;
        Ok(())
    }
}
