//! Typing indicators: who is typing in a channel right now.
//!
//! Clients send "typing" every few seconds while the user types and nothing
//! when they stop, so each entry simply expires ([`TYPING_TTL`], 9 s) unless
//! renewed; sending the message ends it early with [`Typing::stop`]. No
//! "stopped typing" event is needed for correctness, and a crashed node's
//! typists vanish on time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::StateResult;

/// How long one "typing" lasts unless renewed.
pub const TYPING_TTL: Duration = Duration::from_secs(9);

#[async_trait]
pub trait Typing: Send + Sync + 'static {
    /// `user` is typing in `channel`, for `ttl` from now.
    async fn start(&self, channel: i64, user: i64, ttl: Duration) -> StateResult<()>;

    /// `user` stopped (e.g. sent the message).
    async fn stop(&self, channel: i64, user: i64) -> StateResult<()>;

    /// The users typing in `channel` now, in ascending id order.
    async fn active(&self, channel: i64) -> StateResult<Vec<i64>>;
}

/// One node's typing state: per channel, each typist's deadline.
#[derive(Default)]
pub struct MemoryTyping {
    channels: Mutex<HashMap<i64, HashMap<i64, Instant>>>,
}

#[async_trait]
impl Typing for MemoryTyping {
    async fn start(&self, channel: i64, user: i64, ttl: Duration) -> StateResult<()> {
        let now = Instant::now();
        let mut channels = self.channels.lock();
        let typists = channels.entry(channel).or_default();
        typists.retain(|_, deadline| *deadline > now);
        typists.insert(user, now + ttl);
        // Keep memory bounded: drop quiet channels now and then.
        if channels.len() > 10_000 {
            channels.retain(|_, t| {
                t.retain(|_, deadline| *deadline > now);
                !t.is_empty()
            });
        }
        Ok(())
    }

    async fn stop(&self, channel: i64, user: i64) -> StateResult<()> {
        let mut channels = self.channels.lock();
        if let Some(typists) = channels.get_mut(&channel) {
            typists.remove(&user);
            if typists.is_empty() {
                channels.remove(&channel);
            }
        }
        Ok(())
    }

    async fn active(&self, channel: i64) -> StateResult<Vec<i64>> {
        let now = Instant::now();
        let channels = self.channels.lock();
        let mut users: Vec<i64> = channels
            .get(&channel)
            .into_iter()
            .flatten()
            .filter(|(_, deadline)| **deadline > now)
            .map(|(user, _)| *user)
            .collect();
        users.sort_unstable();
        Ok(users)
    }
}
