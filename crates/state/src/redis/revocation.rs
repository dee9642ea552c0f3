//! Revocations in Redis:
//!
//! - `{prefix}revoked:{session}` exists while the revocation is retained
//!   (a TTL of the configured retention, at least the access-token life).
//! - `{prefix}revocations` is the pub/sub channel carrying revoked session
//!   ids. Setting the key and publishing happen in one MULTI, so a
//!   subscriber that hears of a revocation always finds the key.
//!
//! Each `RedisRevocations` runs one background task holding a dedicated
//! pub/sub connection (a subscribed connection can do nothing else) and fans
//! messages out to local subscribers through a broadcast channel. The task
//! resubscribes after connection loss; messages sent meanwhile are missed,
//! which is safe because the key is what sessions are checked against.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use super::{RedisConnection, millis};
use crate::revocation::broadcast_stream;
use crate::{RevocationStream, Revocations, StateError, StateResult};

/// Cluster-wide revocations; dropping it stops its listener.
pub struct RedisRevocations {
    redis: RedisConnection,
    retention: Duration,
    channel: String,
    tx: broadcast::Sender<i64>,
    listener: JoinHandle<()>,
}

impl RedisRevocations {
    /// Keeps each revocation for `retention` and starts listening; returns
    /// once subscribed, so nothing published afterwards is missed.
    pub async fn new(redis: RedisConnection, retention: Duration) -> StateResult<Self> {
        let channel = redis.key("revocations");
        let (tx, _) = broadcast::channel(1024);
        let (ready_tx, ready_rx) = oneshot::channel();
        let listener = tokio::spawn(listen(
            redis.client.clone(),
            channel.clone(),
            tx.clone(),
            ready_tx,
        ));
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                listener.abort();
                return Err(e.into());
            }
            Err(_) => {
                return Err(StateError::Protocol(
                    "revocation listener stopped before subscribing".into(),
                ));
            }
        }
        Ok(RedisRevocations {
            redis,
            retention,
            channel,
            tx,
            listener,
        })
    }
}

impl Drop for RedisRevocations {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Subscribes, reports the first outcome through `ready`, then forwards
/// messages forever, resubscribing (with capped backoff) when the
/// connection drops.
async fn listen(
    client: ::redis::Client,
    channel: String,
    tx: broadcast::Sender<i64>,
    ready: oneshot::Sender<::redis::RedisResult<()>>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, ::redis::RedisError>(pubsub)
        }
        .await;
        match subscribed {
            Ok(pubsub) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Ok(()));
                }
                backoff = Duration::from_millis(100);
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    match msg.get_payload::<i64>() {
                        // No local subscribers is fine.
                        Ok(session) => {
                            let _ = tx.send(session);
                        }
                        Err(e) => tracing::warn!(error = %e, "bad revocation message"),
                    }
                }
                tracing::warn!("revocation subscription lost; resubscribing");
            }
            Err(e) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(e));
                    return;
                }
                tracing::warn!(error = %e, "revocation resubscribe failed");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[async_trait]
impl Revocations for RedisRevocations {
    async fn revoke(&self, session: i64) -> StateResult<()> {
        let () = ::redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.redis.key(&format!("revoked:{session}")))
            .arg(1)
            .arg("PX")
            .arg(millis(self.retention))
            .ignore()
            .cmd("PUBLISH")
            .arg(&self.channel)
            .arg(session)
            .ignore()
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(())
    }

    async fn is_revoked(&self, session: i64) -> StateResult<bool> {
        let exists: bool = ::redis::cmd("EXISTS")
            .arg(self.redis.key(&format!("revoked:{session}")))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(exists)
    }

    async fn subscribe(&self) -> StateResult<RevocationStream> {
        Ok(broadcast_stream(self.tx.subscribe()))
    }
}
