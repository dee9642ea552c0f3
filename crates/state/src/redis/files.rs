//! The shared file cache in Redis: `{prefix}file:{key}` = the file's bytes,
//! with a TTL (plain GET and SET PX: one round trip each, nothing to keep
//! atomic). Meant for small files only; the caller decides what fits.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{RedisConnection, millis};
use crate::{FileCache, StateResult};

pub struct RedisFileCache {
    redis: RedisConnection,
}

impl RedisFileCache {
    pub fn new(redis: RedisConnection) -> Self {
        RedisFileCache { redis }
    }

    fn key(&self, key: &str) -> String {
        self.redis.key(&format!("file:{key}"))
    }
}

#[async_trait]
impl FileCache for RedisFileCache {
    async fn get(&self, key: &str) -> StateResult<Option<Bytes>> {
        let v: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(v.map(Bytes::from))
    }

    async fn put(&self, key: &str, bytes: Bytes, ttl: Duration) -> StateResult<()> {
        let _: () = ::redis::cmd("SET")
            .arg(self.key(key))
            .arg(bytes.as_ref())
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }

    async fn remove(&self, key: &str) -> StateResult<()> {
        let _: i64 = ::redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }
}
