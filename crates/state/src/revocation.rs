//! Session revocations: a signed-out or compromised session must stop
//! working everywhere, fast.
//!
//! Access tokens are stateless, so each node checks [`Revocations::is_revoked`]
//! for the token's session; a revocation is kept at least as long as an
//! access token lives (configurable), after which the token has expired
//! anyway. Open sockets are not re-checked per frame, so revoking also
//! publishes the session id, and every node subscribed with
//! [`Revocations::subscribe`] closes that session's sockets within a second.
//! The publication is only a nudge: a node that misses one (reconnecting,
//! lagging) still refuses the session at its next check.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::StateResult;

/// Revoked session ids as they are published, from any node.
pub type RevocationStream = BoxStream<'static, i64>;

#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// Revokes `session` everywhere and tells every subscriber.
    async fn revoke(&self, session: i64) -> StateResult<()>;

    /// Whether `session` was revoked within the retention period.
    async fn is_revoked(&self, session: i64) -> StateResult<bool>;

    /// Revocations published from now on, by any node (this one included).
    async fn subscribe(&self) -> StateResult<RevocationStream>;
}

/// Turns a broadcast receiver into a stream; a lagging subscriber skips
/// what it missed (those sessions are still refused on their next check).
pub(crate) fn broadcast_stream(rx: broadcast::Receiver<i64>) -> RevocationStream {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(session) => return Some((session, rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "revocation subscriber lagged");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

/// One node's revocations: session to deadline, and a broadcast channel.
pub struct MemoryRevocations {
    retention: Duration,
    revoked: Mutex<HashMap<i64, Instant>>,
    tx: broadcast::Sender<i64>,
}

impl MemoryRevocations {
    /// Keeps each revocation for `retention` (at least the access-token
    /// lifetime).
    pub fn new(retention: Duration) -> Self {
        MemoryRevocations {
            retention,
            revoked: Mutex::new(HashMap::new()),
            tx: broadcast::channel(1024).0,
        }
    }
}

#[async_trait]
impl Revocations for MemoryRevocations {
    async fn revoke(&self, session: i64) -> StateResult<()> {
        let now = Instant::now();
        {
            let mut revoked = self.revoked.lock();
            revoked.retain(|_, deadline| *deadline > now);
            revoked.insert(session, now + self.retention);
        }
        // No subscribers is fine.
        let _ = self.tx.send(session);
        Ok(())
    }

    async fn is_revoked(&self, session: i64) -> StateResult<bool> {
        let now = Instant::now();
        Ok(self
            .revoked
            .lock()
            .get(&session)
            .is_some_and(|deadline| *deadline > now))
    }

    async fn subscribe(&self) -> StateResult<RevocationStream> {
        Ok(broadcast_stream(self.tx.subscribe()))
    }
}
