//! The Redis implementations: one Redis shared by every node, so they all
//! see the same counters, presence and revocations.
//!
//! Every multi-step operation is either one Lua script or one MULTI
//! pipeline, so it is atomic and costs one round trip. Scripts read the
//! clock with Redis `TIME`, so all nodes measure expiry against one clock
//! and node clock skew cannot matter. Every key has a TTL.
//!
//! Scripts build some keys from their arguments (presence), so this targets
//! one Redis server (or a primary with replicas), not Redis Cluster.

mod files;
mod lease;
mod nonce;
mod presence;
mod rate_limit;
mod revocation;
mod sessions;
mod typing;

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::StateResult;

pub use files::RedisFileCache;
pub use lease::RedisLeases;
pub use nonce::RedisNonceGuard;
pub use presence::RedisPresence;
pub use rate_limit::{RedisRateLimiter, WhenDown};
pub use revocation::RedisRevocations;
pub use sessions::RedisSessionLog;
pub use typing::RedisTyping;

/// A connection to the shared Redis plus the key prefix (e.g. `hearth:`).
/// Cheap to clone: clones share one multiplexed connection, which
/// reconnects by itself after errors.
#[derive(Clone)]
pub struct RedisConnection {
    client: ::redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl RedisConnection {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`); fails if the
    /// server cannot be reached now, so a misconfigured node fails at start.
    pub async fn connect(url: &str, prefix: &str) -> StateResult<Self> {
        let client = ::redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(RedisConnection {
            client,
            conn,
            prefix: prefix.into(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// One round trip, for readiness checks.
    pub async fn ping(&self) -> StateResult<()> {
        let mut c = self.conn();
        let _: String = ::redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }

    /// The full key for `suffix`.
    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// A handle for one command; clones share the connection.
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// Milliseconds for a TTL argument: at least 1, since Redis rejects 0.
pub(crate) fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}
