//! Slowmode: a member waits `slowmode_secs` between messages in a channel.
//!
//! The clock must be the same on every node, or a member could send once
//! per node per period; the server backs [`Cooldowns`] with the shared
//! state in a cluster. One node uses [`MemoryCooldowns`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

#[async_trait]
pub trait Cooldowns: Send + Sync + 'static {
    /// Starts a cooldown of `period` on `key` unless one is running:
    /// `Ok(None)` started, `Ok(Some(left))` one runs for `left` more.
    /// `Err` when the shared state does not answer.
    async fn start(&self, key: &str, period: Duration) -> Result<Option<Duration>, String>;
}

/// Cooldowns within one process.
#[derive(Default)]
pub struct MemoryCooldowns {
    running: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl Cooldowns for MemoryCooldowns {
    async fn start(&self, key: &str, period: Duration) -> Result<Option<Duration>, String> {
        let now = Instant::now();
        let mut running = self.running.lock();
        if running.len() > 100_000 {
            running.retain(|_, until| *until > now);
        }
        match running.get(key) {
            Some(until) if *until > now => Ok(Some(*until - now)),
            _ => {
                running.insert(key.to_string(), now + period);
                Ok(None)
            }
        }
    }
}
